//! Softmax cross entropy, with integer labels (of every label type) and with
//! dense probability targets.

use loss_kernels::reference::{self, CrossEntropyOptions, Output};
use loss_kernels::{Backend, CrossEntropy, EmptyMean, Label, Reduction};

use crate::bytes::Bytes;
use crate::check::{self, outcome, Expect, Guarded, Snapshot};
use crate::elem::{widen, Elem};
use crate::gen::{self, Kind};
use crate::tol;

/// The label integer types the crate accepts, with a wrapping conversion
/// from `i64` (to build them) and the saturating one the contract states
/// (to feed the oracle), written independently of the crate's own.
pub trait LabelGen: Label + std::fmt::Debug {
    /// Type name.
    const NAME: &'static str;
    /// `v as Self`.
    fn wrap(v: i64) -> Self;
    /// The value as an `i64`, saturated at `i64::MAX`.
    fn saturate(self) -> i64;
}

macro_rules! label_gen {
    ($($t:ty),*) => {$(
        impl LabelGen for $t {
            const NAME: &'static str = stringify!($t);
            fn wrap(v: i64) -> Self {
                v as $t
            }
            fn saturate(self) -> i64 {
                (self as i128).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
            }
        }
    )*};
}
label_gen!(u8, u16, u32, u64, usize, i32, i64, isize);

/// The `ignore_index` setting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ignore {
    /// Not set: the default, `-100`.
    Default,
    /// `.no_ignore_index()`
    Nothing,
    /// `.ignore_index(v)`
    Value(i64),
}

impl Ignore {
    fn value(self) -> Option<i64> {
        match self {
            Ignore::Default => Some(-100),
            Ignore::Nothing => None,
            Ignore::Value(v) => Some(v),
        }
    }
}

/// The targets of a case.
#[derive(Debug)]
pub enum Targets<T> {
    /// Integer labels (as `i64`; built as the type `label_type` names).
    Labels { values: Vec<i64>, label_type: u8 },
    /// Probability rows.
    Dense(Vec<T>),
}

/// One decoded case.
#[derive(Debug)]
pub struct Case<T: Elem> {
    pub classes: usize,
    pub logits: Vec<T>,
    pub targets: Targets<T>,
    pub class_weights: Option<Vec<T>>,
    pub ignore: Ignore,
    pub label_smoothing: f64,
    pub z_loss: f64,
    pub softcap: Option<f64>,
    pub reduction: Reduction,
    pub empty_mean: EmptyMean,
    pub backend: Backend,
    pub grad_len: usize,
    pub out_len: usize,
    pub pad: usize,
}

/// `(classes, rows)`: classes mostly `1..=64` and the SIMD-width
/// neighbours, sometimes up to 1024, at 1/256 either one row longer than
/// the 32 768-class column leaf (the split long-row path) or enough rows to
/// cross the 65 536-element parallel threshold. `classes` is 0 at 1/256.
pub fn shape(b: &mut Bytes) -> (usize, usize) {
    let classes = match b.u8() {
        0 => 0,
        1..=24 => 1,
        25..=88 => b.pick(&gen::INTERESTING_LENS),
        89..=243 => 1 + b.below(64),
        244..=254 => 1 + b.below(1024),
        255 => {
            return if b.bool() {
                (32_760 + b.below(40_000), 1 + usize::from(b.u8() >= 192))
            } else {
                let c = 1 + b.below(2048);
                (c, (60_000 + b.below(30_000)) / c)
            };
        }
    };
    let max_rows = (600 / classes.max(1)).max(1);
    let rows = match b.u8() {
        0..=11 => 0,
        12..=43 => 1,
        _ => b.below(max_rows + 1),
    };
    (classes, rows)
}

impl<T: Elem> Case<T> {
    /// Decodes a case; `dense` picks probability targets.
    pub fn decode(b: &mut Bytes, dense: bool) -> Self {
        let (classes, rows) = shape(b);
        let mut len = rows * classes;
        if classes > 1 && b.u8() >= 252 {
            len += 1 + b.below(classes - 1); // not a multiple of classes
        }
        let reduction = gen::reduction(b);
        let empty_mean = gen::empty_mean(b);
        let backend = gen::backend(b);
        let label_smoothing = gen::label_smoothing(b);
        let z_loss = gen::z_loss(b);
        let softcap = gen::softcap(b);
        let grad_len = gen::maybe_wrong_len(b, len);
        let out_len = gen::maybe_wrong_len(b, rows);
        let pad = gen::pad(b);
        let ignore = match b.u8() {
            0..=127 => Ignore::Default,
            128..=159 => Ignore::Nothing,
            _ => Ignore::Value(match b.u8() % 12 {
                0 => -100,
                1 => -1,
                2 => 0,
                3 => classes as i64 - 1,
                4 => classes as i64,
                5 => i64::MAX,
                6 => i64::MIN,
                7 => 255,
                8 => i64::from(u32::MAX),
                9 => -(1 << 31),
                _ => b.below(classes.max(1)) as i64,
            }),
        };
        let class_weights = (b.u8() >= 176).then(|| {
            let n = gen::maybe_wrong_len(b, classes);
            gen::values(b, n, Kind::NonNeg)
        });
        let targets = if dense {
            let t_len = gen::maybe_wrong_len(b, len);
            let kind = if b.u8() < 208 {
                Kind::Prob
            } else {
                Kind::General
            };
            let mut t: Vec<T> = gen::values(b, t_len, kind);
            // Most rows of a probability target sum to 1: normalize them
            // (in f64) unless the case asks for raw targets.
            if kind == Kind::Prob && classes > 0 && b.u8() < 192 {
                for row in t.chunks_mut(classes) {
                    let s: f64 = row.iter().map(|v| v.to_f64()).sum();
                    if s.is_finite() && s > 0.0 {
                        row.iter_mut()
                            .for_each(|v| *v = T::from_f64(v.to_f64() / s));
                    }
                }
            }
            Targets::Dense(t)
        } else {
            let label_type = b.u8() % 4;
            let n = gen::maybe_wrong_len(b, rows);
            let risky = b.u8() >= 192;
            let ig = ignore.value().unwrap_or(-100);
            let values = (0..n)
                .map(|_| {
                    let t = b.u8();
                    if t < 224 || (!risky && t < 240) {
                        b.below(classes) as i64
                    } else if t < 240 || !risky {
                        ig
                    } else {
                        match b.u8() % 16 {
                            0 => classes as i64,
                            1 => classes as i64 + 1,
                            2 => -1,
                            3 => -100,
                            4 => i64::MIN,
                            5 => i64::MAX,
                            6 => i64::from(u32::MAX),
                            7 => 255,
                            8 => 256,
                            9 => 65_535,
                            10 => 65_536,
                            11 => -(1 << 31),
                            12 => 1 << 31,
                            13 => 1 << 32,
                            14 => -101,
                            _ => b.u64() as i64,
                        }
                    }
                })
                .collect();
            Targets::Labels { values, label_type }
        };
        let logits = gen::values(b, len, Kind::General);
        Case {
            classes,
            logits,
            targets,
            class_weights,
            ignore,
            label_smoothing,
            z_loss,
            softcap,
            reduction,
            empty_mean,
            backend,
            grad_len,
            out_len,
            pad,
        }
    }

    fn describe(&self) -> String {
        let targets = match &self.targets {
            Targets::Labels { values, label_type } => {
                format!("labels (type #{label_type}) = {}", check::show(values))
            }
            Targets::Dense(t) => format!("dense targets = {}", check::show(t)),
        };
        format!(
            "case: cross entropy {} classes={} rows={} len={} reduction={:?} empty_mean={:?} backend={:?} ignore={:?} smoothing={:e} z_loss={:e} softcap={:?} grad_len={} out_len={}\n  logits={}\n  {targets}\n  class_weights={}",
            T::NAME,
            self.classes,
            if self.classes == 0 { 0 } else { self.logits.len() / self.classes },
            self.logits.len(),
            self.reduction,
            self.empty_mean,
            self.backend,
            self.ignore,
            self.label_smoothing,
            self.z_loss,
            self.softcap,
            self.grad_len,
            self.out_len,
            check::show(&self.logits),
            self.class_weights.as_deref().map_or("None".into(), check::show),
        )
    }

    fn loss_fn(&self) -> CrossEntropy<'_, T> {
        let mut l = CrossEntropy::new()
            .reduction(self.reduction)
            .empty_mean(self.empty_mean)
            .backend(self.backend)
            .label_smoothing(self.label_smoothing)
            .z_loss(self.z_loss);
        match self.ignore {
            Ignore::Default => {}
            Ignore::Nothing => l = l.no_ignore_index(),
            Ignore::Value(v) => l = l.ignore_index(v),
        }
        if let Some(s) = self.softcap {
            l = l.softcap(s);
        }
        if let Some(w) = &self.class_weights {
            l = l.class_weights(w);
        }
        l
    }
}

/// Per-row tolerance data, from the inputs in `f64`.
struct RowTol {
    /// Absolute tolerance of the row's loss.
    loss: f64,
    /// Absolute tolerance of each gradient element before the reduction's scale.
    grad: Vec<f64>,
    /// The magnitude of the row's gradient coefficient (`w_y + ε W / C +
    /// 2 λ |lse|`, or `Σ |w t'| + 2 λ |lse|`) before the reduction's scale;
    /// see [`crate::known::GRAD_COEF_OVERFLOW`].
    coef: f64,
    /// What the per-call coefficients `b0 = (ε / C) / divisor` and
    /// `b1 = (1 - ε) / divisor` multiply in each gradient element, `w_j` and
    /// `w_j |t_j|` (dense rows only; 0 for labelled rows, whose target
    /// element is formed in `f64`), times the softcap factor: when one of
    /// them is subnormal in `T`, its rounding error times this is added
    /// to the tolerance ([`crate::known::GRAD_COEF_UNDERFLOW`]).
    grad_b0: Vec<f64>,
    grad_b1: Vec<f64>,
    /// A dense row whose finite parts of the kernel's grouping
    /// `lse Σ w t' - Σ w t' z` (over the classes with a finite logit) exceed
    /// `T::MAX`: where the oracle's row is `±inf` (a `-inf` logit with a
    /// nonzero target), the kernel may add that `±inf` to an overflowed part
    /// of the other sign and give NaN, the documented limit of
    /// [`crate::known::NEAR_OVERFLOW`] ("a result beyond `T::MAX` may be NaN
    /// rather than `±inf`"), so only non-finiteness is compared there.
    parts_overflow: bool,
}

/// `(z, dz)` after the softcap, in `f64`.
fn capped(x: &[f64], softcap: Option<f64>) -> (Vec<f64>, Vec<f64>) {
    match softcap {
        None => (x.to_vec(), vec![1.0; x.len()]),
        Some(s) => x
            .iter()
            .map(|&v| {
                let t = (v / s).tanh();
                (s * t, 1.0 - t * t)
            })
            .unzip(),
    }
}

/// `(lse, logp, p, |m| + |ln S| + 1)` of a row (stable, `f64`). The last is
/// the scale of the absolute rounding error of `lse = m + ln S`: that of
/// the sum, plus `ln S` of a rounded `S >= 1`, whose absolute error is the
/// relative error of `S` (a few `eps`) however small `ln S` is. An `lse`
/// near 0 is therefore not relatively accurate (`m = 2e-308` with
/// `S = 1 + 6e-22` gives `lse = 2e-308`, truth `6e-22`), nor is the z-loss
/// term `2 λ lse` (classes B and C of fuzz/findings, z-loss gradients with
/// `lse = -0.0024` and with `λ = 1e300`).
fn softmax_row(z: &[f64]) -> (f64, Vec<f64>, Vec<f64>, f64) {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = z.iter().map(|&v| (v - m).exp()).sum();
    let ln_s = s.ln();
    let logp: Vec<f64> = z.iter().map(|&v| (v - m) - ln_s).collect();
    let p = logp.iter().map(|l| l.exp()).collect();
    (m + ln_s, logp, p, m.abs() + ln_s.abs() + 1.0)
}

fn row_tol<T: Elem>(c: &Case<T>, w: &[f64], x: &[f64], target: RowTarget<'_>) -> RowTol {
    let rel = tol::rel::<T>();
    let fl = tol::floor::<T>();
    let classes = c.classes;
    let cf = classes as f64;
    let (eps, lambda) = (c.label_smoothing, c.z_loss);
    let (z, dz) = capped(x, c.softcap);
    let (lse, logp, p, lse_mag) = softmax_row(&z);
    let zmax = z
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, |a, v| a.max(v.abs()));
    let (e_z, e_dz) = if c.softcap.is_some() {
        (8.0 * T::EPS * zmax, 64.0 * T::EPS)
    } else {
        (0.0, 0.0)
    };
    // The z-loss coefficient's magnitude, `lse` counted as its error scale
    // `|m| + |ln S| + 1` (see `softmax_row`).
    let z_term = 2.0 * lambda * lse_mag;
    // Each row sum over the C classes (`S`, and the smoothing or dense
    // sums) is a plain `f64` sum: a relative error up to `C eps_f64` (class B
    // of fuzz/findings: rows of 32 760 to 70 143 classes 1-2x beyond
    // `1024 eps` in `f64`).
    let row_sum_rel = tol::sum_rel(classes);
    match target {
        RowTarget::Ignored => RowTol {
            loss: fl,
            grad: vec![fl; classes],
            coef: 0.0,
            grad_b0: vec![0.0; classes],
            grad_b1: vec![0.0; classes],
            parts_overflow: false,
        },
        RowTarget::Label(y) => {
            let wy = w[y];
            let wsum: f64 = w.iter().sum();
            let mut mag = (1.0 - eps) * wy * logp[y].abs() + lambda * lse_mag * lse_mag;
            if eps > 0.0 {
                mag += eps / cf
                    * w.iter()
                        .zip(&logp)
                        .map(|(wc, lp)| wc * lp.abs())
                        .sum::<f64>();
            }
            let coef = (1.0 - eps) * wy + eps / cf * wsum + z_term;
            // ln S summed over C terms (f64): an absolute error of C eps_f64.
            let mut loss =
                (rel + row_sum_rel) * mag + (2.0 * e_z + row_sum_rel) * coef + fl * (1.0 + coef);
            if crate::known::CE_PRODUCTS_IN_T && eps > 0.0 {
                loss += eps / cf * products_allowance::<T>(w, &z, lse);
            }
            let grad = (0..classes)
                .map(|j| {
                    let onehot = if j == y { 1.0 } else { 0.0 };
                    let pj = (1.0 - eps) * wy * p[j] + eps / cf * wsum * p[j] + z_term * p[j];
                    let mag = pj + (1.0 - eps) * wy * onehot + eps / cf * w[j];
                    // p_j = e^(z_j - lse) carries the rounding of its
                    // argument (about eps |z_j - lse|) and of the C-term
                    // sum inside lse (`row_sum_rel`).
                    let cond = if pj == 0.0 {
                        0.0
                    } else {
                        rel * (z[j] - lse).abs() + row_sum_rel
                    };
                    (dz[j] + e_dz) * (rel * mag + (2.0 * e_z + cond) * pj)
                        + e_dz * mag
                        + fl * (1.0 + coef)
                })
                .collect();
            RowTol {
                loss,
                grad,
                coef,
                grad_b0: (0..classes).map(|j| w[j] * (dz[j] + e_dz)).collect(),
                grad_b1: vec![0.0; classes],
                parts_overflow: false,
            }
        }
        RowTarget::Dense(t) => {
            let wt: Vec<f64> = w
                .iter()
                .zip(t)
                .map(|(&wc, &tc)| {
                    wc * if eps > 0.0 {
                        (1.0 - eps) * tc + eps / cf
                    } else {
                        tc
                    }
                })
                .collect();
            let wt_mag: Vec<f64> = w
                .iter()
                .zip(t)
                .map(|(&wc, &tc)| wc * ((1.0 - eps) * tc.abs() + eps / cf))
                .collect();
            let wt_abs_sum: f64 = wt_mag.iter().sum();
            let mag: f64 = wt
                .iter()
                .zip(&wt_mag)
                .zip(&logp)
                .map(|((&a, &m), &lp)| if a == 0.0 { 0.0 } else { m * lp.abs() })
                .sum::<f64>()
                + lambda * lse_mag * lse_mag;
            let coef = wt_abs_sum + z_term;
            let mut loss =
                (rel + row_sum_rel) * mag + (2.0 * e_z + row_sum_rel) * coef + fl * (cf + coef);
            if crate::known::CE_PRODUCTS_IN_T {
                loss += products_allowance::<T>(&wt_mag, &z, lse);
            }
            let grad = (0..classes)
                .map(|j| {
                    let pj = wt_abs_sum * p[j] + z_term * p[j];
                    let mag = pj + wt_mag[j];
                    // p_j = e^(z_j - lse) carries the rounding of its
                    // argument (about eps |z_j - lse|) and of the C-term
                    // sum inside lse (`row_sum_rel`).
                    let cond = if pj == 0.0 {
                        0.0
                    } else {
                        rel * (z[j] - lse).abs() + row_sum_rel
                    };
                    (dz[j] + e_dz) * (rel * mag + (2.0 * e_z + cond) * pj)
                        + e_dz * mag
                        + fl * (1.0 + coef)
                })
                .collect();
            let (mut a_sum, mut az_sum) = (0.0, 0.0);
            for (a, zc) in wt_mag.iter().zip(&z) {
                if zc.is_finite() && *a != 0.0 {
                    a_sum += a.abs();
                    az_sum += (a * zc).abs();
                }
            }
            let parts_overflow = crate::known::NEAR_OVERFLOW
                && lse.is_finite()
                && (tol::overflows_t::<T>(a_sum * lse) || tol::overflows_t::<T>(az_sum));
            RowTol {
                loss,
                grad,
                coef,
                grad_b0: (0..classes).map(|j| w[j] * (dz[j] + e_dz)).collect(),
                grad_b1: (0..classes)
                    .map(|j| w[j] * t[j].abs() * (dz[j] + e_dz))
                    .collect(),
                parts_overflow,
            }
        }
    }
}

/// The error of `lse Σ a_c - Σ (a_c z_c)_T` beyond the shift-invariant
/// tolerance: `2 eps_T Σ |a_c z_c|` for the products rounded in `T`, plus
/// `4 eps_f64 |lse| Σ |a_c|` for the `f64` cancellation. See
/// [`crate::known::CE_PRODUCTS_IN_T`].
fn products_allowance<T: Elem>(a: &[f64], z: &[f64], lse: f64) -> f64 {
    let az: f64 = a
        .iter()
        .zip(z)
        .filter(|(&a, _)| a != 0.0)
        .map(|(a, z)| (a * z).abs())
        .sum();
    let a_sum: f64 = a.iter().map(|v| v.abs()).sum();
    2.0 * T::EPS * az + 4.0 * f64::EPSILON * (lse.abs() * a_sum + az)
}

#[derive(Clone, Copy)]
enum RowTarget<'a> {
    Ignored,
    Label(usize),
    Dense(&'a [f64]),
}

/// Decodes a case (labels or dense; type by the first byte) and checks it.
pub fn fuzz(data: &[u8], dense: bool) {
    let mut b = Bytes::new(data);
    if b.bool() {
        run(&Case::<f32>::decode(&mut b, dense));
    } else {
        run(&Case::<f64>::decode(&mut b, dense));
    }
}

/// Checks every method of a case against the oracle.
pub fn run<T: Elem>(c: &Case<T>) {
    match &c.targets {
        Targets::Dense(t) => drive::<T, u32>(c, None, Some(t)),
        Targets::Labels { values, label_type } => {
            macro_rules! with {
                ($t:ty) => {{
                    let labels: Vec<$t> = values.iter().map(|&v| <$t>::wrap(v)).collect();
                    drive::<T, $t>(c, Some(&labels), None)
                }};
            }
            // Four of the eight label types: each one instantiates the whole
            // cross-entropy kernel stack for every backend, and all eight
            // make the instrumented build take too long. u32 (token ids),
            // i64 (PyTorch), u64 (saturation above i64::MAX) and i32
            // (negative 32-bit) cover the conversions; tests/bad_input.rs
            // covers the other types.
            match label_type % 4 {
                0 => with!(u32),
                1 => with!(i64),
                2 => with!(u64),
                _ => with!(i32),
            }
        }
    }
}

fn drive<T: Elem, L: LabelGen>(c: &Case<T>, labels: Option<&[L]>, dense: Option<&[T]>) {
    let case = || {
        format!(
            "{}\n  label type {}: {}",
            c.describe(),
            L::NAME,
            labels.map_or(String::new(), check::show)
        )
    };
    let x = widen(&c.logits);
    let cw = c.class_weights.as_deref().map(widen);
    let opts = CrossEntropyOptions {
        reduction: c.reduction,
        empty_mean: c.empty_mean,
        class_weights: cw.as_deref(),
        ignore_index: c.ignore.value(),
        label_smoothing: c.label_smoothing,
        z_loss: c.z_loss,
        softcap: c.softcap,
    };
    let oracle_labels: Option<Vec<i64>> = labels.map(|l| l.iter().map(|v| v.saturate()).collect());
    let dense_f64 = dense.map(widen);
    let oracle = match (&oracle_labels, &dense_f64) {
        (Some(l), _) => reference::cross_entropy(&x, c.classes, l, &opts),
        (None, Some(t)) => reference::cross_entropy_dense(&x, c.classes, t, &opts),
        _ => unreachable!(),
    };
    let exp = Expect {
        oracle_err: oracle.as_ref().err().cloned(),
        backend: c.backend,
    };
    let mut inputs: Vec<&[T]> = vec![&c.logits];
    if let Some(t) = dense {
        inputs.push(t);
    }
    if let Some(w) = &c.class_weights {
        inputs.push(w);
    }
    let snap = Snapshot::of(&inputs);
    let label_snap: Option<Vec<i64>> = labels.map(|l| l.iter().map(|v| v.saturate()).collect());
    let len = c.logits.len();
    let rows = if c.classes == 0 { 0 } else { len / c.classes };
    let l = c.loss_fn();

    // Tolerances (only needed when the oracle succeeds).
    let ok: Option<&Output> = oracle.as_ref().ok();
    let tols: Option<Vec<RowTol>> = ok.map(|_| {
        let ones = vec![1.0; c.classes];
        let w: &[f64] = cw.as_deref().unwrap_or(&ones);
        (0..rows)
            .map(|r| {
                let xr = &x[r * c.classes..(r + 1) * c.classes];
                let target = match (&oracle_labels, &dense_f64) {
                    (Some(lb), _) => {
                        if Some(lb[r]) == c.ignore.value() {
                            RowTarget::Ignored
                        } else {
                            RowTarget::Label(lb[r] as usize)
                        }
                    }
                    (None, Some(t)) => RowTarget::Dense(&t[r * c.classes..(r + 1) * c.classes]),
                    _ => unreachable!(),
                };
                row_tol(c, w, xr, target)
            })
            .collect()
    });
    let divisor = ok.map_or(f64::NAN, |o| match c.reduction {
        Reduction::Mean => o.partial.weight,
        Reduction::Sum => 1.0,
        Reduction::DivideBy(d) => d,
    });
    let scale = if divisor == 0.0 {
        0.0
    } else {
        1.0 / divisor.abs()
    };
    let sum_tol: f64 = tols
        .as_ref()
        .map_or(0.0, |t| t.iter().map(|r| r.loss).sum::<f64>())
        * (1.0 + tol::sum_rel(rows) / tol::rel::<T>());
    let skip_grad = tol::scale_overflows::<T>(scale);
    // The absolute rounding error of the coefficients b0 and b1 when they
    // are subnormal in T (see `RowTol::grad_b0`), else 0.
    let sub_err = |b: f64| {
        if crate::known::GRAD_COEF_UNDERFLOW && b != 0.0 && b.abs() < T::MIN_POS {
            T::MIN_POS * T::EPS
        } else {
            0.0
        }
    };
    let cf = c.classes as f64;
    let (sub_b0, sub_b1) = (
        sub_err(scale * c.label_smoothing / cf),
        sub_err(scale * (1.0 - c.label_smoothing)),
    );
    let loss_tol = sum_tol * scale + tol::floor::<T>();
    // Rows with an infinite dense target probability (not validated): the
    // oracle's -Σ t log p gives ±inf where the kernel's grouping may give
    // NaN; both are "no number", so only non-finiteness is compared there.
    let inf_rows: Vec<bool> = (0..rows)
        .map(|r| {
            dense.is_some_and(|t| {
                t.get(r * c.classes..(r + 1) * c.classes)
                    .is_some_and(|t| t.iter().any(|v| v.to_f64().is_infinite()))
            })
        })
        .collect();
    // ... and rows whose finite parts overflow T (see `RowTol::parts_overflow`).
    let inf_rows: Vec<bool> = inf_rows
        .iter()
        .enumerate()
        .map(|(r, &b)| b || tols.as_ref().is_some_and(|t| t[r].parts_overflow))
        .collect();
    let any_inf_row = inf_rows.iter().any(|&b| b);
    // Rows whose f64 logits span more than f64::MAX (|x| > MAX / 4, no
    // softcap): the oracle's `lse - x_c` overflows to ±inf (then ±inf or
    // NaN) where the kernel's grouping `a ln S + Σ u (m - z)` can still
    // give the finite true value (seen: a dense row whose true loss is
    // -2.27e306). Where the oracle is not finite there, nothing is compared.
    //
    // Likewise dense rows whose oracle terms `w_c t_c · logp_c` may
    // overflow `f64` (targets near `f64::MAX`, not validated): the oracle
    // adds `+inf` and `-inf` (NaN) where the kernel's grouping
    // `a ln S + d` gives a number (seen at CI seed 1: targets `-MAX, +MAX,
    // 0.32` on three equal capped logits, oracle NaN, kernel 0).
    let ones = vec![1.0; c.classes];
    let wts: &[f64] = cw.as_deref().unwrap_or(&ones);
    let ovf_rows: Vec<bool> = (0..rows)
        .map(|r| {
            let xr = &x[r * c.classes..(r + 1) * c.classes];
            let logits_span =
                c.softcap.is_none() && xr.iter().any(|v| v.is_finite() && v.abs() > f64::MAX / 4.0);
            let terms_overflow = dense_f64.as_ref().is_some_and(|t| {
                let (z, _) = capped(xr, c.softcap);
                let zmax = z
                    .iter()
                    .filter(|v| v.is_finite())
                    .fold(0.0_f64, |a, v| a.max(v.abs()));
                let logp_bound = 2.0 * zmax + (c.classes as f64).ln() + 1.0;
                // (Targets of a wrong length are a shape error: no row.)
                t.get(r * c.classes..(r + 1) * c.classes).is_some_and(|t| {
                    t.iter()
                        .zip(wts)
                        .any(|(tc, wc)| (tc * wc).abs() * logp_bound > f64::MAX / 4.0)
                })
            });
            logits_span || terms_overflow
        })
        .collect();
    let any_ovf_row = ovf_rows.iter().any(|&b| b);
    let oracle_lost = |ovf: bool, want: f64| ovf && !T::from_f64(want).to_f64().is_finite();
    let check_loss = |call: &str, got: T| {
        if oracle_lost(any_ovf_row, ok.unwrap().loss) {
            return;
        }
        check::expect_close_scaled(
            call,
            None,
            got,
            ok.unwrap().loss,
            loss_tol,
            any_inf_row,
            &case,
        );
    };

    // loss
    let allowed = exp.allowed(None);
    let r = match (labels, dense) {
        (Some(lb), _) => l.loss(&c.logits, c.classes, lb),
        (None, Some(t)) => l.loss_dense(&c.logits, c.classes, t),
        _ => unreachable!(),
    };
    if let Ok(v) = outcome("loss", r, &allowed, &case) {
        check_loss("loss", v);
    }

    // loss_grad
    let mut grad = Guarded::<T>::new(c.grad_len, c.pad);
    let allowed = exp.allowed(Some(("grad", len, c.grad_len)));
    let r = match (labels, dense) {
        (Some(lb), _) => l.loss_grad(&c.logits, c.classes, lb, grad.out()),
        (None, Some(t)) => l.loss_grad_dense(&c.logits, c.classes, t, grad.out()),
        _ => unreachable!(),
    };
    grad.check_canaries("loss_grad", &case);
    match outcome("loss_grad", r, &allowed, &case) {
        Ok(v) => {
            check_loss("loss_grad", v);
            let o = ok.unwrap();
            let t = tols.as_ref().unwrap();
            for (i, (&g, &want)) in grad.view().iter().zip(&o.grad).enumerate() {
                if skip_grad {
                    break;
                }
                let row = &t[i / c.classes];
                if crate::known::GRAD_COEF_OVERFLOW
                    && (tol::overflows_t::<T>(row.coef * scale) || tol::overflows_t::<T>(c.z_loss))
                {
                    continue;
                }
                // The floor: the oracle's gradient may be below T's smallest
                // subnormal (e^-150 of a row in f32 is exactly 0).
                let j = i % c.classes;
                let sub = sub_b0 * row.grad_b0[j] + sub_b1 * row.grad_b1[j];
                let tl = row.grad[j] * scale + sub + tol::floor::<T>();
                let relaxed = inf_rows[i / c.classes];
                if oracle_lost(ovf_rows[i / c.classes], want) {
                    continue;
                }
                check::expect_close_scaled("loss_grad grad", Some(i), g, want, tl, relaxed, &case);
            }
        }
        Err(e) => {
            if !grad.untouched() {
                panic!(
                    "loss_grad: returned Err({e:?}) but wrote into grad\n{}",
                    case()
                );
            }
        }
    }

    // per_row
    let mut out = Guarded::<T>::new(c.out_len, c.pad);
    let allowed = exp.allowed(Some(("out", rows, c.out_len)));
    let r = match (labels, dense) {
        (Some(lb), _) => l.per_row(&c.logits, c.classes, lb, out.out()),
        (None, Some(t)) => l.per_row_dense(&c.logits, c.classes, t, out.out()),
        _ => unreachable!(),
    };
    out.check_canaries("per_row", &case);
    match outcome("per_row", r, &allowed, &case) {
        Ok(()) => {
            let o = ok.unwrap();
            let t = tols.as_ref().unwrap();
            for (i, (&g, &want)) in out.view().iter().zip(&o.per_element).enumerate() {
                if oracle_lost(ovf_rows[i], want) {
                    continue;
                }
                check::expect_close_relaxed(
                    "per_row",
                    Some(i),
                    g,
                    want,
                    tol::sane(t[i].loss),
                    inf_rows[i],
                    &case,
                );
            }
        }
        Err(e) => {
            if !out.untouched() {
                panic!(
                    "per_row: returned Err({e:?}) but wrote into out\n{}",
                    case()
                );
            }
        }
    }

    // partial
    let allowed = exp.allowed(None);
    let r = match (labels, dense) {
        (Some(lb), _) => l.partial(&c.logits, c.classes, lb),
        (None, Some(t)) => l.partial_dense(&c.logits, c.classes, t),
        _ => unreachable!(),
    };
    if let Ok(p) = outcome("partial", r, &allowed, &case) {
        let o = ok.unwrap();
        // A row loss beyond T::MAX (an f32 row whose true loss is 1e66):
        // the kernels form the side sums in T, so `Partial::sum` (f64) is
        // then `inf`, as `loss` is; a documented limit, not compared.
        let row_beyond_t = o.per_element.iter().any(|&v| tol::overflows_t::<T>(v));
        if !(any_inf_row && !o.partial.sum.is_finite() && !p.sum.is_finite())
            && !(any_ovf_row && !o.partial.sum.is_finite())
            && !(row_beyond_t && !p.sum.is_finite())
        {
            // `Partial::sum` is an `f64` result: `close::<f64>` applies the
            // documented near-overflow limit to it (a sum within a factor 16
            // of `f64::MAX` may be `±inf`; CI seed 1, 2026-12-02, `ce_dense`
            // f64: `inf` for the oracle's `f64::MAX`).
            check::expect_close::<f64>(
                "partial.sum",
                None,
                p.sum,
                o.partial.sum,
                tol::sane(sum_tol),
                &case,
            );
        }
        let wtol = 1e-12 * o.partial.weight.abs();
        check::expect_close_f64("partial.weight", p.weight, o.partial.weight, wtol, &case);
    }

    snap.check(&inputs, &case);
    if let (Some(l), Some(before)) = (labels, &label_snap) {
        let now: Vec<i64> = l.iter().map(|v| v.saturate()).collect();
        assert!(&now == before, "labels were modified\n{}", case());
    }
}

#[cfg(test)]
mod dump {
    /// Prints the whole decoded case of an input file (`FUZZ_INPUT`, and
    /// `FUZZ_DENSE=1` for `ce_dense`): `cargo test --release -- --ignored
    /// --nocapture dump_ce_case`. Crash reports show only 48 values.
    #[test]
    #[ignore]
    fn dump_ce_case() {
        let Ok(path) = std::env::var("FUZZ_INPUT") else {
            return;
        };
        let data = std::fs::read(path).expect("FUZZ_INPUT");
        let dense = std::env::var("FUZZ_DENSE").is_ok_and(|v| v == "1");
        let mut b = crate::bytes::Bytes::new(&data);
        if b.bool() {
            println!("{:#?}", super::Case::<f32>::decode(&mut b, dense));
        } else {
            println!("{:#?}", super::Case::<f64>::decode(&mut b, dense));
        }
    }
}
