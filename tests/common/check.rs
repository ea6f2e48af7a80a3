//! The checking machinery of the oracle and cross-entropy suites: output
//! buffers between sentinels, the four methods of a loss compared with an
//! oracle `Output`, and cross-entropy cases with their tolerances.

use super::*;
use loss_kernels::reference::{self, CrossEntropyOptions, Output};
use loss_kernels::{
    Backend, CrossEntropy, EmptyMean, Float, Label, LogSumExp, LossError, Partial, Reduction,
    Softmax,
};

/// What untouched output elements hold.
pub const SENTINEL: f64 = -1234.5;
/// Elements after every output buffer that must stay `SENTINEL`.
pub const GUARD: usize = 9;

/// `v` placed at offset `off` of a larger buffer (filled with `fill`), with
/// guard elements after it.
pub fn placed<T: Copy>(v: &[T], off: usize, fill: T) -> Vec<T> {
    let mut b = vec![fill; off];
    b.extend_from_slice(v);
    b.extend(std::iter::repeat_n(fill, GUARD));
    b
}

/// An output buffer of `n` elements at offset `off`, between sentinels.
pub struct OutBuf<T> {
    pub data: Vec<T>,
    pub off: usize,
    pub n: usize,
}

impl<T: Float> OutBuf<T> {
    pub fn new(n: usize, off: usize) -> Self {
        OutBuf {
            data: vec![T::from_f64(SENTINEL); off + n + GUARD],
            off,
            n,
        }
    }
    pub fn slice(&mut self) -> &mut [T] {
        &mut self.data[self.off..self.off + self.n]
    }
    pub fn values(&self) -> Vec<f64> {
        to_f64(&self.data[self.off..self.off + self.n])
    }
    pub fn outside_intact(&self) -> bool {
        let s = T::from_f64(SENTINEL);
        self.data[..self.off].iter().all(|&v| v == s)
            && self.data[self.off + self.n..].iter().all(|&v| v == s)
    }
    pub fn untouched(&self) -> bool {
        let s = T::from_f64(SENTINEL);
        self.data.iter().all(|&v| v == s)
    }
}

/// The four methods every loss has, bound to one input.
pub struct Methods<'a, T> {
    pub loss: &'a dyn Fn() -> Result<T, LossError>,
    pub loss_grad: &'a dyn Fn(&mut [T]) -> Result<T, LossError>,
    pub per: &'a dyn Fn(&mut [T]) -> Result<(), LossError>,
    pub partial: &'a dyn Fn() -> Result<Partial, LossError>,
}

/// Tolerances of one check (see the file header).
pub struct Tol {
    pub loss_rel: f64,
    pub grad_rel: f64,
    pub grad_abs: f64,
    pub grad_extra: Option<Vec<f64>>,
}

impl Tol {
    pub fn mse<T: Elem>() -> Tol {
        Tol {
            loss_rel: T::MSE_REL,
            grad_rel: T::MSE_REL,
            grad_abs: 0.0,
            grad_extra: None,
        }
    }
    pub fn loss<T: Elem>() -> Tol {
        Tol {
            loss_rel: T::LOSS_REL,
            grad_rel: T::GRAD_REL,
            grad_abs: T::GRAD_ABS,
            grad_extra: None,
        }
    }
}

/// Runs the four methods and compares them with the oracle's output.
/// `n_grad` / `n_per`: lengths of the gradient and per-element outputs.
/// `value_errors_write`: whether a value error may leave partial outputs.
#[allow(clippy::too_many_arguments)]
pub fn check_methods<T: Elem>(
    ctx: &str,
    m: &Methods<'_, T>,
    want: &Result<Output, LossError>,
    n_grad: usize,
    n_per: usize,
    off: usize,
    tol: &Tol,
    value_errors_write: bool,
    strict_errors: bool,
) {
    let parity = |what: &str, got_is_err: bool, got_err: Option<&LossError>| match want {
        Ok(_) => assert!(
            !got_is_err,
            "{ctx} {what}: kernel errs with {got_err:?}, oracle is Ok"
        ),
        Err(w) => {
            assert!(
                got_is_err,
                "{ctx} {what}: kernel is Ok, oracle errs with {w:?}"
            );
            if strict_errors {
                // Compared by their Debug text: an error holding a NaN value
                // is not `==` to itself.
                let got = format!("{:?}", got_err.unwrap());
                assert_eq!(got, format!("{w:?}"), "{ctx} {what}: different errors");
            }
        }
    };
    let got = (m.loss)();
    parity("loss", got.is_err(), got.as_ref().err());
    let mut g = OutBuf::<T>::new(n_grad, off);
    let got_g = (m.loss_grad)(g.slice());
    parity("loss_grad", got_g.is_err(), got_g.as_ref().err());
    assert!(g.outside_intact(), "{ctx}: loss_grad wrote outside `grad`");
    let mut p = OutBuf::<T>::new(n_per, off);
    let got_p = (m.per)(p.slice());
    parity("per_element", got_p.is_err(), got_p.as_ref().err());
    assert!(p.outside_intact(), "{ctx}: per_element wrote outside `out`");
    let got_part = (m.partial)();
    parity("partial", got_part.is_err(), got_part.as_ref().err());

    let w = match want {
        Err(e) => {
            let value_error = matches!(e, LossError::ProbabilityOutOfRange { .. });
            if !(value_errors_write && value_error) {
                assert!(
                    g.untouched(),
                    "{ctx}: `grad` written although the call failed with {e:?}"
                );
                assert!(
                    p.untouched(),
                    "{ctx}: `out` written although the call failed with {e:?}"
                );
            }
            return;
        }
        Ok(w) => w,
    };
    let terms = &w.per_element;
    let l = got.unwrap().to_f64();
    check_sum::<T>(&format_args!("{ctx} loss"), l, w.loss, tol.loss_rel, terms);
    let lg = got_g.unwrap().to_f64();
    check_sum::<T>(
        &format_args!("{ctx} loss_grad loss"),
        lg,
        w.loss,
        tol.loss_rel,
        terms,
    );
    check_grad::<T>(
        &format_args!("{ctx} loss_grad"),
        &g.values(),
        &w.grad,
        tol.grad_rel,
        tol.grad_abs,
        tol.grad_extra.as_deref(),
    );
    check_vec_rel::<T>(
        &format_args!("{ctx} per_element"),
        &p.values(),
        terms,
        tol.loss_rel,
    );
    let part = got_part.unwrap();
    check_partial_sum::<T>(
        &format_args!("{ctx} partial.sum"),
        part.sum,
        w.partial.sum,
        tol.loss_rel,
        terms,
    );
    assert!(
        (part.weight - w.partial.weight).abs() <= 1e-14 * w.partial.weight.abs(),
        "{ctx} partial.weight: got {}, want {}",
        part.weight,
        w.partial.weight
    );
}

// ============================================================ cross entropy

/// One cross-entropy case (data in `f64`, rounded to the element type).
#[derive(Debug, Clone)]
pub struct CeCase {
    pub classes: usize,
    pub logits: Vec<f64>,
    pub labels: Vec<i64>,
    /// Dense targets, `logits.len()` values.
    pub dense: Vec<f64>,
    pub weights: Option<Vec<f64>>,
    pub ignore: Option<i64>,
    pub eps: f64,
    pub z_loss: f64,
    pub cap: Option<f64>,
    pub red: Reduction,
    pub em: EmptyMean,
    pub label_kind: LabelKind,
    /// Whether the case has at most one fault (errors must then be equal).
    pub strict: bool,
}

impl CeCase {
    pub fn opts<'a>(&self, w: Option<&'a [f64]>) -> CrossEntropyOptions<'a> {
        CrossEntropyOptions {
            reduction: self.red,
            empty_mean: self.em,
            class_weights: w,
            ignore_index: self.ignore,
            label_smoothing: self.eps,
            z_loss: self.z_loss,
            softcap: self.cap,
        }
    }

    pub fn loss<'a, T: Float>(&self, w: Option<&'a [T]>, b: Backend) -> CrossEntropy<'a, T> {
        let mut ce = CrossEntropy::<T>::new()
            .reduction(self.red)
            .empty_mean(self.em)
            .backend(b)
            .label_smoothing(self.eps)
            .z_loss(self.z_loss);
        if let Some(w) = w {
            ce = ce.class_weights(w);
        }
        ce = match self.ignore {
            Some(i) => ce.ignore_index(i),
            None => ce.no_ignore_index(),
        };
        if let Some(s) = self.cap {
            ce = ce.softcap(s);
        }
        ce
    }
}

/// Tolerances of a cross-entropy check (see the header).
///
/// A kept row's gradient is `((A + 2λ lse) p_j - a_j) dz_j / D` with
/// `a_j >= 0` the (smoothed, weighted) target mass of class `j`, `A = Σ a_j`
/// (`mass[row]`) and `D` the reduction's divisor: a difference of two terms
/// each at most `S = (2A + 2λ|lse|) / D`. Its rounding error is relative to
/// `S`, not to the (possibly tiny, e.g. for a confident row) difference, so
/// every element of the row gets an absolute allowance of `GRAD_ABS · S`,
/// plus `8 eps (1 + s) S` with a softcap `s` (the capped logits and the
/// chain-rule factor `1 - (z/s)²` carry an absolute error of a few eps).
pub fn ce_tol<T: Elem>(
    case: &CeCase,
    xo: &[f64],
    mass: &[f64],
    want: &Result<Output, LossError>,
) -> Tol {
    let cap = case.cap.filter(|s| s.is_finite() && *s > 0.0);
    let cap_rel = cap.map_or(0.0, |s| 8.0 * T::EPS * s);
    let mut tol = Tol {
        loss_rel: T::LOSS_REL + cap_rel,
        grad_rel: T::GRAD_REL + cap_rel,
        grad_abs: T::GRAD_ABS,
        grad_extra: None,
    };
    let (Ok(w), c) = (want, case.classes) else {
        return tol;
    };
    let d = match case.red {
        Reduction::Mean => w.partial.weight,
        Reduction::Sum => 1.0,
        Reduction::DivideBy(d) => d,
    };
    let z: Vec<f64> = match cap {
        Some(s) => xo.iter().map(|&x| s * (x / s).tanh()).collect(),
        None => xo.to_vec(),
    };
    let lse = reference::log_sum_exp(&z, c).unwrap();
    let k = T::GRAD_ABS + cap.map_or(0.0, |s| 8.0 * T::EPS * (1.0 + s));
    let extra = (0..xo.len())
        .map(|i| {
            let r = i / c;
            let s = (2.0 * mass[r] + 2.0 * case.z_loss * lse[r].abs()) / d.abs();
            if s.is_finite() {
                k * s
            } else {
                0.0
            }
        })
        .collect();
    tol.grad_extra = Some(extra);
    tol
}

pub fn check_ce<T: Elem>(case: &CeCase, b: Backend, off: usize) {
    check_ce_sparse::<T>(case, b, off);
    check_ce_dense::<T>(case, b, off);
}

pub fn check_ce_sparse<T: Elem>(case: &CeCase, b: Backend, off: usize) {
    match case.label_kind {
        LabelKind::I64 => check_ce_labels::<T, i64>(case, &case.labels, b, off),
        LabelKind::U32 => check_ce_labels::<T, u32>(case, &labels_u32(&case.labels), b, off),
        LabelKind::Usize => check_ce_labels::<T, usize>(case, &labels_usize(&case.labels), b, off),
    }
}

pub fn check_ce_labels<T: Elem, L: Label>(case: &CeCase, labels: &[L], b: Backend, off: usize) {
    let c = case.classes;
    let xb = placed(&to_t::<T>(&case.logits), off, T::ZERO);
    let xt = &xb[off..off + case.logits.len()];
    let xo = to_f64(xt);
    let wt: Option<Vec<T>> = case.weights.as_deref().map(to_t);
    let wo: Option<Vec<f64>> = wt.as_deref().map(to_f64);
    let lo = oracle_labels(labels);
    let opts = case.opts(wo.as_deref());
    let want = reference::cross_entropy(&xo, c, &lo, &opts);
    let ce = case.loss::<T>(wt.as_deref(), b);
    let rows = xt.len().checked_div(c).unwrap_or(0);
    let ctx = format!(
        "ce rows={rows} C={c} w={} ignore={:?} eps={} z={} cap={:?} {:?} {:?} {:?} {b:?} off={off}",
        case.weights.is_some(),
        case.ignore,
        case.eps,
        case.z_loss,
        case.cap,
        case.red,
        case.em,
        case.label_kind
    );
    let wsum: f64 = wo.as_deref().map_or(c as f64, |w| w.iter().sum());
    let mass: Vec<f64> = lo
        .iter()
        .map(|&l| match usize::try_from(l) {
            Ok(y) if y < c && case.ignore != Some(l) => {
                let wy = wo.as_deref().map_or(1.0, |w| w[y]);
                (1.0 - case.eps) * wy + case.eps * wsum / c as f64
            }
            _ => 0.0,
        })
        .collect();
    let tol = ce_tol::<T>(case, &xo, &mass, &want);
    check_methods::<T>(
        &ctx,
        &Methods {
            loss: &|| ce.loss(xt, c, labels),
            loss_grad: &|g| ce.loss_grad(xt, c, labels, g),
            per: &|o| ce.per_row(xt, c, labels, o),
            partial: &|| ce.partial(xt, c, labels),
        },
        &want,
        xt.len(),
        rows.max(labels.len()),
        off,
        &tol,
        false,
        case.strict,
    );
}

pub fn check_ce_dense<T: Elem>(case: &CeCase, b: Backend, off: usize) {
    let c = case.classes;
    let xb = placed(&to_t::<T>(&case.logits), off, T::ZERO);
    let xt = &xb[off..off + case.logits.len()];
    let tb = placed(&to_t::<T>(&case.dense), off, T::ZERO);
    let tt = &tb[off..off + case.dense.len()];
    let (xo, to) = (to_f64(xt), to_f64(tt));
    let wt: Option<Vec<T>> = case.weights.as_deref().map(to_t);
    let wo: Option<Vec<f64>> = wt.as_deref().map(to_f64);
    let opts = case.opts(wo.as_deref());
    let want = reference::cross_entropy_dense(&xo, c, &to, &opts);
    let ce = case.loss::<T>(wt.as_deref(), b);
    let rows = xt.len().checked_div(c).unwrap_or(0);
    let ctx = format!(
        "ce_dense rows={rows} C={c} w={} eps={} z={} cap={:?} {:?} {:?} {b:?} off={off}",
        case.weights.is_some(),
        case.eps,
        case.z_loss,
        case.cap,
        case.red,
        case.em
    );
    let mass: Vec<f64> = if c == 0 {
        Vec::new()
    } else {
        to.chunks(c)
            .map(|t| {
                t.iter()
                    .enumerate()
                    .map(|(j, &tj)| {
                        let wj = wo.as_deref().and_then(|w| w.get(j)).map_or(1.0, |w| *w);
                        (wj * ((1.0 - case.eps) * tj + case.eps / c as f64)).abs()
                    })
                    .sum()
            })
            .collect()
    };
    let tol = ce_tol::<T>(case, &xo, &mass, &want);
    check_methods::<T>(
        &ctx,
        &Methods {
            loss: &|| ce.loss_dense(xt, c, tt),
            loss_grad: &|g| ce.loss_grad_dense(xt, c, tt, g),
            per: &|o| ce.per_row_dense(xt, c, tt, o),
            partial: &|| ce.partial_dense(xt, c, tt),
        },
        &want,
        xt.len(),
        rows,
        off,
        &tol,
        false,
        case.strict,
    );
}

// ============================================================ primitives

/// Softmax primitives and `LogSumExp::of` against the oracle.
pub fn check_primitives<T: Elem>(logits: &[f64], classes: usize, b: Backend, off: usize) {
    let xb = placed(&to_t::<T>(logits), off, T::ZERO);
    let xt = &xb[off..off + logits.len()];
    let xo = to_f64(xt);
    let ctx = format!("primitives n={} C={classes} {b:?} off={off}", logits.len());
    let sm = Softmax::new().backend(b);
    let rows = xt.len().checked_div(classes).unwrap_or(0);
    let tol = 16.0 * T::EPS;

    let want_lse = reference::log_sum_exp(&xo, classes);
    let want_lsm = reference::log_softmax(&xo, classes);
    let want_sm = reference::softmax(&xo, classes);

    let mut lse = OutBuf::<T>::new(rows, off);
    let got = sm.log_sum_exp(xt, classes, lse.slice());
    check_err_parity(&format_args!("{ctx} log_sum_exp"), &got, &want_lse);
    assert!(
        lse.outside_intact(),
        "{ctx}: log_sum_exp wrote outside `out`"
    );
    let mut lsm = OutBuf::<T>::new(xt.len(), off);
    let got_lsm = sm.log_softmax(xt, classes, lsm.slice());
    check_err_parity(&format_args!("{ctx} log_softmax"), &got_lsm, &want_lsm);
    assert!(
        lsm.outside_intact(),
        "{ctx}: log_softmax wrote outside `out`"
    );
    let mut smx = OutBuf::<T>::new(xt.len(), off);
    let got_sm = sm.softmax(xt, classes, smx.slice());
    check_err_parity(&format_args!("{ctx} softmax"), &got_sm, &want_sm);
    assert!(smx.outside_intact(), "{ctx}: softmax wrote outside `out`");
    let (Ok(want_lse), Ok(want_lsm), Ok(want_sm)) = (want_lse, want_lsm, want_sm) else {
        assert!(
            lse.untouched() && lsm.untouched() && smx.untouched(),
            "{ctx}: output written on error"
        );
        return;
    };
    // The free functions run the automatic backend: same values.
    let mut free_lse = vec![T::ZERO; rows];
    loss_kernels::log_sum_exp(xt, classes, &mut free_lse).unwrap();
    let mut free_lsm = vec![T::ZERO; xt.len()];
    loss_kernels::log_softmax(xt, classes, &mut free_lsm).unwrap();
    let mut free_sm = vec![T::ZERO; xt.len()];
    loss_kernels::softmax(xt, classes, &mut free_sm).unwrap();

    let (got_lse, got_lsm, got_sm) = (lse.values(), lsm.values(), smx.values());
    for (r, row) in xo.chunks_exact(classes).enumerate() {
        let m = row.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
        let m = if m.is_finite() { m.abs() } else { 0.0 };
        let t = tol * (want_lse[r].abs() + m + 1.0);
        check_scalar::<T>(&format_args!("{ctx} lse[{r}]"), got_lse[r], want_lse[r], t);
        check_scalar::<T>(
            &format_args!("{ctx} free lse[{r}]"),
            free_lse[r].to_f64(),
            want_lse[r],
            t,
        );
        // LogSumExp::of (automatic backend, f64 state).
        let st = LogSumExp::of(&xt[r * classes..(r + 1) * classes]).unwrap();
        check_scalar::<f64>(
            &format_args!("{ctx} LogSumExp::of[{r}]"),
            st.value(),
            want_lse[r],
            t,
        );
        if want_lse[r].is_finite() {
            assert_eq!(
                st.max,
                row.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v)),
                "{ctx} state max"
            );
        }
        for c in 0..classes {
            let i = r * classes + c;
            let lp = want_lsm[i];
            let t = tol * (lp.abs() + 1.0);
            check_scalar::<T>(&format_args!("{ctx} log_softmax[{i}]"), got_lsm[i], lp, t);
            check_scalar::<T>(
                &format_args!("{ctx} free log_softmax[{i}]"),
                free_lsm[i].to_f64(),
                lp,
                t,
            );
            let t = tol * (lp.abs() + 1.0) * want_sm[i].abs();
            check_scalar::<T>(
                &format_args!("{ctx} softmax[{i}]"),
                got_sm[i],
                want_sm[i],
                t,
            );
            check_scalar::<T>(
                &format_args!("{ctx} free softmax[{i}]"),
                free_sm[i].to_f64(),
                want_sm[i],
                t,
            );
        }
    }
}
