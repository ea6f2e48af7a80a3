//! Every public function against the scalar `f64` oracles of
//! `loss_kernels::reference`, on every backend this CPU has, in `f32` and
//! `f64`, with every option.
//!
//! - `proptest` cases for squared error, BCE, BCE with logits, cross entropy
//!   (labels and dense targets, every option: class weights, `ignore_index`
//!   including an index inside `0..classes`, label smoothing, z-loss,
//!   softcap, `Mean` / `Sum` / `DivideBy`, both `EmptyMean` policies, label
//!   types `i64` / `u32` / `usize`), the softmax primitives and
//!   [`LogSumExp::of`]; each case runs `loss`, `loss_grad`,
//!   `per_element`/`per_row` and `partial` (and the `_dense` variants).
//! - Deterministic sweeps over **every length 0..=300** for each elementwise
//!   loss, at several sub-slice offsets (unaligned input and output
//!   buffers), with guard elements after every output buffer so that a SIMD
//!   store past the end is caught.
//! - Gradients against central finite differences of the oracle's reduced
//!   loss (which also checks the oracle's own gradients).
//! - Errors: a kernel returns `Err` exactly when the oracle does, and the
//!   same error when the input has a single fault; shape and option errors
//!   leave output buffers untouched.
//!
//! # Tolerances
//!
//! Defined and justified once, in `tests/common/mod.rs`: `f32` squared error
//! 4 eps relative; `f32` BCE / CE losses 1e-5 relative (their terms are sums
//! of non-negative parts, each a few `exp`/`ln`/`log1p` of a few ulp);
//! gradients `1e-5 |g| + 1e-6 max|g|` in `f32`; `f64` 1e-12 (squared error
//! 4 eps). Two additions, both derived from `f32` rounding of the capped
//! logits `z = s tanh(x/s)` (an absolute error of a few eps times `s`, which
//! an `exp` turns into a relative one): with a softcap `s`, the relative loss
//! and gradient tolerances grow by `8 eps s`, and the gradient gets an
//! absolute `8 eps (1 + s) max|∂loss/∂z|` for the chain-rule factor
//! `1 - (z/s)²`.
//!
//! Run with `cargo test --release --test oracle`.

mod common;

use common::check::*;
use common::*;
use loss_kernels::reference::{self, CrossEntropyOptions, Output};
use loss_kernels::{
    Backend, BinaryCrossEntropy, BinaryCrossEntropyWithLogits, CrossEntropy, EmptyMean, LossError,
    Reduction, Softmax, SquaredError,
};
use proptest::prelude::*;

/// `cases` cases, no regression files (a failure prints its minimal input).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

// ============================================================ squared error

fn check_mse<T: Elem>(
    x: &[f64],
    y: &[f64],
    red: Reduction,
    em: EmptyMean,
    b: Backend,
    off: usize,
    strict: bool,
) {
    let (xb, yb) = (
        placed(&to_t::<T>(x), off, T::ZERO),
        placed(&to_t::<T>(y), off, T::ZERO),
    );
    let (xt, yt) = (&xb[off..off + x.len()], &yb[off..off + y.len()]);
    let want = reference::squared_error(&to_f64(xt), &to_f64(yt), red, em);
    let mse = SquaredError::new().reduction(red).empty_mean(em).backend(b);
    let ctx = format!("mse n={} {red:?} {em:?} {b:?} off={off}", x.len());
    check_methods::<T>(
        &ctx,
        &Methods {
            loss: &|| mse.loss(xt, yt),
            loss_grad: &|g| mse.loss_grad(xt, yt, g),
            per: &|o| mse.per_element(xt, yt, o),
            partial: &|| mse.partial(xt, yt),
        },
        &want,
        x.len(),
        x.len(),
        off,
        &Tol::mse::<T>(),
        false,
        strict,
    );
}

// ============================================================ BCE

#[allow(clippy::too_many_arguments)]
fn check_bce<T: Elem>(
    p: &[f64],
    y: &[f64],
    w: Option<&[f64]>,
    red: Reduction,
    em: EmptyMean,
    b: Backend,
    off: usize,
    strict: bool,
) {
    let (pb, yb) = (
        placed(&to_t::<T>(p), off, T::ZERO),
        placed(&to_t::<T>(y), off, T::ZERO),
    );
    let (pt, yt) = (&pb[off..off + p.len()], &yb[off..off + y.len()]);
    let wt: Option<Vec<T>> = w.map(to_t);
    let wo: Option<Vec<f64>> = wt.as_deref().map(to_f64);
    let want = reference::binary_cross_entropy(&to_f64(pt), &to_f64(yt), wo.as_deref(), red, em);
    let mut bce = BinaryCrossEntropy::<T>::new()
        .reduction(red)
        .empty_mean(em)
        .backend(b);
    if let Some(w) = wt.as_deref() {
        bce = bce.weight(w);
    }
    let ctx = format!(
        "bce n={} w={} {red:?} {em:?} {b:?} off={off}",
        p.len(),
        w.is_some()
    );
    check_methods::<T>(
        &ctx,
        &Methods {
            loss: &|| bce.loss(pt, yt),
            loss_grad: &|g| bce.loss_grad(pt, yt, g),
            per: &|o| bce.per_element(pt, yt, o),
            partial: &|| bce.partial(pt, yt),
        },
        &want,
        p.len(),
        p.len(),
        off,
        &Tol::loss::<T>(),
        true,
        strict,
    );
}

#[allow(clippy::too_many_arguments)]
fn check_bce_logits<T: Elem>(
    x: &[f64],
    y: &[f64],
    w: Option<&[f64]>,
    pw: Option<&[f64]>,
    red: Reduction,
    em: EmptyMean,
    b: Backend,
    off: usize,
    strict: bool,
) {
    let (xb, yb) = (
        placed(&to_t::<T>(x), off, T::ZERO),
        placed(&to_t::<T>(y), off, T::ZERO),
    );
    let (xt, yt) = (&xb[off..off + x.len()], &yb[off..off + y.len()]);
    let wt: Option<Vec<T>> = w.map(to_t);
    let pwt: Option<Vec<T>> = pw.map(to_t);
    let (wo, pwo): (Option<Vec<f64>>, Option<Vec<f64>>) =
        (wt.as_deref().map(to_f64), pwt.as_deref().map(to_f64));
    let want = reference::binary_cross_entropy_with_logits(
        &to_f64(xt),
        &to_f64(yt),
        wo.as_deref(),
        pwo.as_deref(),
        red,
        em,
    );
    let mut bce = BinaryCrossEntropyWithLogits::<T>::new()
        .reduction(red)
        .empty_mean(em)
        .backend(b);
    if let Some(w) = wt.as_deref() {
        bce = bce.weight(w);
    }
    if let Some(pw) = pwt.as_deref() {
        bce = bce.pos_weight(pw);
    }
    let ctx = format!(
        "bce_logits n={} w={} pw={:?} {red:?} {em:?} {b:?} off={off}",
        x.len(),
        w.is_some(),
        pw.map(<[f64]>::len)
    );
    check_methods::<T>(
        &ctx,
        &Methods {
            loss: &|| bce.loss(xt, yt),
            loss_grad: &|g| bce.loss_grad(xt, yt, g),
            per: &|o| bce.per_element(xt, yt, o),
            partial: &|| bce.partial(xt, yt),
        },
        &want,
        x.len(),
        x.len(),
        off,
        &Tol::loss::<T>(),
        false,
        strict,
    );
}

// ============================================================ sweeps 0..=300

/// Offsets of the sub-slices a sweep uses for length `n`.
fn offsets(n: usize) -> [usize; 2] {
    [0, 1 + n % 7]
}

fn sweep_reduction(n: usize) -> Reduction {
    match n % 3 {
        0 => Reduction::Mean,
        1 => Reduction::Sum,
        _ => Reduction::DivideBy(3.5),
    }
}

#[test]
fn sweep_squared_error_every_length() {
    for n in 0..=300 {
        let mut rng = Rng(1000 + n as u64);
        let x = rng.normals(n, 3.0);
        let y = rng.normals(n, 3.0);
        let (red, em) = (
            sweep_reduction(n),
            if n % 2 == 0 {
                EmptyMean::Nan
            } else {
                EmptyMean::Zero
            },
        );
        for b in backends() {
            for off in offsets(n) {
                check_mse::<f32>(&x, &y, red, em, b, off, true);
                check_mse::<f64>(&x, &y, red, em, b, off, true);
            }
        }
    }
}

#[test]
fn sweep_binary_cross_entropy_every_length() {
    for n in 0..=300 {
        let mut rng = Rng(2000 + n as u64);
        let p: Vec<f64> = (0..n)
            .map(|i| match i % 11 {
                0 => 0.0,
                5 => 1.0,
                _ => rng.uniform(),
            })
            .collect();
        let y: Vec<f64> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    rng.uniform()
                } else {
                    (i % 2) as f64
                }
            })
            .collect();
        let w = (n % 2 == 1).then(|| rng.uniforms(n, 0.0, 2.0));
        let (red, em) = (sweep_reduction(n), EmptyMean::Nan);
        for b in backends() {
            for off in offsets(n) {
                check_bce::<f32>(&p, &y, w.as_deref(), red, em, b, off, true);
                check_bce::<f64>(&p, &y, w.as_deref(), red, em, b, off, true);
            }
        }
    }
}

#[test]
fn sweep_binary_cross_entropy_with_logits_every_length() {
    for n in 0..=300 {
        let mut rng = Rng(3000 + n as u64);
        let x = rng.normals(n, 4.0);
        let y: Vec<f64> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    rng.uniform()
                } else {
                    (i % 2) as f64
                }
            })
            .collect();
        let w = (n % 2 == 1).then(|| rng.uniforms(n, 0.0, 2.0));
        // pos_weight with a period that divides n: cycle through the divisors.
        let pw = match n {
            0 => None,
            _ => {
                let d = divisors(n);
                let period = d[(n / 2) % d.len()];
                (n % 4 != 0).then(|| rng.uniforms(period, 0.0, 4.0))
            }
        };
        let (red, em) = (sweep_reduction(n), EmptyMean::Zero);
        for b in backends() {
            for off in offsets(n) {
                check_bce_logits::<f32>(&x, &y, w.as_deref(), pw.as_deref(), red, em, b, off, true);
                check_bce_logits::<f64>(&x, &y, w.as_deref(), pw.as_deref(), red, em, b, off, true);
            }
        }
    }
}

#[test]
fn sweep_cross_entropy_every_row_length() {
    // Elementwise-style sweep of the row kernels: 3 rows of every length
    // 1..=300 (all labels, smoothing, weights, z-loss on alternate lengths).
    for c in 1..=300usize {
        let mut rng = Rng(4000 + c as u64);
        let rows = 3;
        let logits = rng.normals(rows * c, 3.0);
        let labels: Vec<i64> = (0..rows).map(|r| ((r * 7 + c) % c) as i64).collect();
        let dense: Vec<f64> = (0..rows).flat_map(|_| rng.simplex(c)).collect();
        let case = CeCase {
            classes: c,
            logits,
            labels,
            dense,
            weights: (c % 2 == 0).then(|| rng.uniforms(c, 0.1, 2.0)),
            ignore: Some(-100),
            eps: if c % 3 == 0 { 0.1 } else { 0.0 },
            z_loss: if c % 5 == 0 { 1e-3 } else { 0.0 },
            cap: (c % 7 == 0).then_some(5.0),
            red: sweep_reduction(c),
            em: EmptyMean::Nan,
            label_kind: LabelKind::I64,
            strict: true,
        };
        for b in backends() {
            for off in offsets(c) {
                check_ce::<f32>(&case, b, off);
                check_ce::<f64>(&case, b, off);
            }
        }
    }
}

#[test]
fn sweep_primitives_every_row_length() {
    for c in 1..=300usize {
        let mut rng = Rng(5000 + c as u64);
        let mut logits = rng.normals(2 * c, 5.0);
        if c > 2 {
            logits[c / 2] = f64::NEG_INFINITY; // a masked class
        }
        for b in backends() {
            for off in offsets(c) {
                check_primitives::<f32>(&logits, c, b, off);
                check_primitives::<f64>(&logits, c, b, off);
            }
        }
    }
}

// ============================================================ proptests

/// A single fault injected into an elementwise case.
#[derive(Debug, Clone)]
enum Fault {
    None,
    /// The target is one element shorter or longer.
    TargetLen(bool),
    /// The weight slice has a wrong length.
    WeightLen,
    /// Element `i` (of the input or, if the flag is set, the target) is
    /// replaced by an out-of-range value.
    Value(prop::sample::Index, f64, bool),
    /// `pos_weight` of a length that does not divide n, or empty.
    PosWeightLen(bool),
    /// A negative or non-finite `pos_weight` value.
    PosWeightValue(f64),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        30 => Just(Fault::None),
        1 => any::<bool>().prop_map(Fault::TargetLen),
        1 => Just(Fault::WeightLen),
        2 => (any::<prop::sample::Index>(), prop::sample::select(vec![-0.1, 1.5, -1e-30, f64::NAN, f64::INFINITY]), any::<bool>())
            .prop_map(|(i, v, t)| Fault::Value(i, v, t)),
        1 => any::<bool>().prop_map(Fault::PosWeightLen),
        1 => prop::sample::select(vec![-1.0, f64::NAN, f64::INFINITY]).prop_map(Fault::PosWeightValue),
    ]
}

fn is_valid(r: Reduction) -> bool {
    match r {
        Reduction::DivideBy(d) => d.is_finite() && d > 0.0,
        _ => true,
    }
}

#[derive(Debug, Clone)]
struct ElemCase {
    x: Vec<f64>,
    y: Vec<f64>,
    w: Option<Vec<f64>>,
    pw: Option<Vec<f64>>,
    red: Reduction,
    em: EmptyMean,
    fault: Fault,
    off: usize,
}

impl ElemCase {
    /// Applies the fault; returns whether the case has at most one fault.
    fn apply_fault(&mut self, probabilities: bool) -> bool {
        let n = self.x.len();
        match self.fault.clone() {
            Fault::None => {}
            Fault::TargetLen(longer) => {
                // One shorter, or one longer (also when there is nothing to drop).
                if longer || self.y.pop().is_none() {
                    self.y.push(0.5);
                }
            }
            Fault::WeightLen => {
                let w = self.w.get_or_insert_with(|| vec![1.0; n]);
                w.push(1.0);
            }
            Fault::Value(i, v, target) => {
                if n > 0 && probabilities {
                    let i = i.index(n);
                    if target {
                        self.y[i] = v;
                    } else {
                        self.x[i] = v;
                    }
                }
            }
            Fault::PosWeightLen(empty) => {
                self.pw = Some(if empty || n == 0 {
                    vec![]
                } else {
                    vec![1.0; n + 1]
                });
            }
            Fault::PosWeightValue(v) => {
                if let Some(pw) = self.pw.as_mut().filter(|p| !p.is_empty()) {
                    pw[0] = v;
                }
            }
        }
        matches!(self.fault, Fault::None) || is_valid(self.red)
    }
}

fn elem_case(
    x: impl Strategy<Value = f64> + Clone,
    y: impl Strategy<Value = f64> + Clone,
) -> impl Strategy<Value = ElemCase> {
    (0usize..=300).prop_flat_map(move |n| {
        (
            prop::collection::vec(x.clone(), n),
            prop::collection::vec(y.clone(), n),
            prop::option::weighted(0.5, prop::collection::vec(weight_value(), n)),
            prop::option::weighted(
                0.5,
                (
                    any::<prop::sample::Index>(),
                    prop::collection::vec(0.0..5.0f64, 300),
                ),
            ),
            reduction(),
            empty_mean(),
            fault(),
            0usize..8,
        )
            .prop_map(move |(x, y, w, pw, red, em, fault, off)| {
                let pw = pw.filter(|_| n > 0).map(|(i, vals)| {
                    let d = divisors(n);
                    vals[..d[i.index(d.len())]].to_vec()
                });
                ElemCase {
                    x,
                    y,
                    w,
                    pw,
                    red,
                    em,
                    fault,
                    off,
                }
            })
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn prop_squared_error(mut case in elem_case(real(), real())) {
        let strict = case.apply_fault(false);
        for b in backends() {
            check_mse::<f32>(&case.x, &case.y, case.red, case.em, b, case.off, strict);
            check_mse::<f64>(&case.x, &case.y, case.red, case.em, b, case.off, strict);
        }
    }

    #[test]
    fn prop_binary_cross_entropy(mut case in elem_case(prob(), bce_target())) {
        let strict = case.apply_fault(true);
        for b in backends() {
            let w = case.w.as_deref();
            check_bce::<f32>(&case.x, &case.y, w, case.red, case.em, b, case.off, strict);
            check_bce::<f64>(&case.x, &case.y, w, case.red, case.em, b, case.off, strict);
        }
    }

    #[test]
    fn prop_binary_cross_entropy_with_logits(mut case in elem_case(logit(false), bce_logits_target())) {
        let strict = case.apply_fault(false);
        for b in backends() {
            let (w, pw) = (case.w.as_deref(), case.pw.as_deref());
            check_bce_logits::<f32>(&case.x, &case.y, w, pw, case.red, case.em, b, case.off, strict);
            check_bce_logits::<f64>(&case.x, &case.y, w, pw, case.red, case.em, b, case.off, strict);
        }
    }

    /// As above with logits up to `f32::MAX`.
    #[test]
    fn prop_binary_cross_entropy_with_logits_near_overflow(mut case in elem_case(logit(true), bce_logits_target())) {
        let strict = case.apply_fault(false);
        for b in backends() {
            let (w, pw) = (case.w.as_deref(), case.pw.as_deref());
            check_bce_logits::<f32>(&case.x, &case.y, w, pw, case.red, case.em, b, case.off, strict);
            check_bce_logits::<f64>(&case.x, &case.y, w, pw, case.red, case.em, b, case.off, strict);
        }
    }
}

/// A fault injected into a cross-entropy case.
#[derive(Debug, Clone, Copy)]
enum CeFault {
    None,
    LabelOutOfRange(usize, i64),
    LabelsLen,
    ZeroClasses,
    NotDivisible,
    WeightsLen,
    WeightValue(f64),
    Smoothing(f64),
    ZLoss(f64),
    Softcap(f64),
}

fn ce_fault() -> impl Strategy<Value = CeFault> {
    prop_oneof![
        40 => Just(CeFault::None),
        2 => (0usize..64, prop::sample::select(vec![-1i64, -2, 1 << 40, i64::MIN]))
            .prop_map(|(r, v)| CeFault::LabelOutOfRange(r, v)),
        1 => Just(CeFault::LabelsLen),
        1 => Just(CeFault::ZeroClasses),
        1 => Just(CeFault::NotDivisible),
        1 => Just(CeFault::WeightsLen),
        1 => prop::sample::select(vec![-0.5, f64::NAN, f64::INFINITY]).prop_map(CeFault::WeightValue),
        1 => prop::sample::select(vec![-0.01, 1.01, f64::NAN]).prop_map(CeFault::Smoothing),
        1 => prop::sample::select(vec![-1e-3, f64::NAN, f64::INFINITY]).prop_map(CeFault::ZLoss),
        1 => prop::sample::select(vec![0.0, -2.0, f64::NAN, f64::INFINITY]).prop_map(CeFault::Softcap),
    ]
}

/// A logit: moderate (scale and common shift chosen per case), sometimes
/// masked. `moderate`: no shift, scale at most 3.
fn ce_logits(n: usize, moderate: bool) -> impl Strategy<Value = Vec<f64>> {
    let (scales, shifts) = if moderate {
        (vec![0.5, 1.0, 3.0], vec![0.0])
    } else {
        (vec![0.5, 3.0, 10.0], vec![0.0, 0.0, 20.0, -50.0])
    };
    (
        prop::sample::select(scales),
        prop::sample::select(shifts),
        prop::collection::vec(
            prop_oneof![
                30 => -3.0..3.0f64,
                1 => Just(f64::NEG_INFINITY),
            ],
            n,
        ),
    )
        .prop_map(|(scale, shift, v)| v.into_iter().map(|x| x * scale + shift).collect())
}

/// Cross-entropy cases. `soft`: dense targets bounded away from 0 (each at
/// least `0.2 / C`), at least 2 classes and moderate logits.
/// `zero_weights_with_smoothing`: whether a class weight may be exactly 0
/// when label smoothing is on (see
/// `cross_entropy_smoothing_keeps_relative_accuracy`).
fn ce_case(soft: bool, zero_weights_with_smoothing: bool) -> impl Strategy<Value = CeCase> {
    (0usize..=6, if soft { 2usize..=40 } else { 1usize..=40 })
        .prop_flat_map(move |(rows, c)| {
            let n = rows * c;
            (
                Just((rows, c)),
                ce_logits(n, soft),
                prop::collection::vec((0..c as i64, 0u8..10), rows),
                prop::collection::vec(
                    prop_oneof![3 => 0.0..1.0f64, 1 => Just(0.0), 1 => Just(1.0)],
                    n,
                ),
                if soft { 3u8..4 } else { 0u8..3 },
                prop::option::weighted(0.5, prop::collection::vec(weight_value(), c)),
                (0u8..3, 0..c as i64),
                (
                    prop::sample::select(vec![0.0, 0.0, 0.1, 0.5, 1.0]),
                    prop::sample::select(vec![0.0, 0.0, 1e-4, 0.05]),
                    prop::sample::select(vec![None, None, Some(1.5), Some(5.0), Some(20.0)]),
                ),
                (reduction(), empty_mean()),
                (
                    prop::sample::select(vec![
                        LabelKind::I64,
                        LabelKind::I64,
                        LabelKind::U32,
                        LabelKind::Usize,
                    ]),
                    ce_fault(),
                ),
            )
        })
        .prop_map(
            move |(
                (rows, c),
                logits,
                labels,
                raw_dense,
                dense_kind,
                weights,
                (ignore_kind, ignore_class),
                opts,
                (red, em),
                (label_kind, fault),
            )| {
                let ignore = match ignore_kind {
                    0 => Some(-100),
                    1 => Some(ignore_class),
                    _ => None,
                };
                // Labels: mostly uniform classes, sometimes the ignore index.
                let mut labels: Vec<i64> = labels
                    .into_iter()
                    .map(|(l, k)| match (k, ignore) {
                        (0 | 1, Some(i)) => i,
                        _ => l,
                    })
                    .collect();
                // Dense targets: a probability row, a one-hot row, or raw values.
                let dense: Vec<f64> = raw_dense
                    .chunks(c)
                    .enumerate()
                    .flat_map(|(r, row)| match dense_kind {
                        0 => {
                            let s: f64 = row.iter().sum();
                            row.iter()
                                .map(|v| if s > 0.0 { v / s } else { 1.0 / c as f64 })
                                .collect::<Vec<_>>()
                        }
                        1 => (0..c)
                            .map(|j| if j == (r * 5) % c { 1.0 } else { 0.0 })
                            .collect(),
                        2 => row.to_vec(),
                        _ => {
                            let s: f64 = row.iter().map(|v| 0.8 * v + 0.2).sum();
                            row.iter().map(|v| (0.8 * v + 0.2) / s).collect()
                        }
                    })
                    .collect();
                let (eps, z_loss, cap) = opts;
                let weights = match weights {
                    Some(w) if eps > 0.0 && !zero_weights_with_smoothing => Some(
                        w.into_iter()
                            .map(|v| if v == 0.0 { 0.5 } else { v })
                            .collect(),
                    ),
                    w => w,
                };
                let mut case = CeCase {
                    classes: c,
                    logits,
                    labels: Vec::new(),
                    dense,
                    weights,
                    ignore,
                    eps,
                    z_loss,
                    cap,
                    red,
                    em,
                    label_kind,
                    strict: true,
                };
                match fault {
                    CeFault::None => {}
                    CeFault::LabelOutOfRange(r, v) => {
                        if rows > 0 {
                            let v = if v == -2 { c as i64 } else { v };
                            labels[r % rows] = v;
                        }
                    }
                    CeFault::LabelsLen => labels.push(0),
                    CeFault::ZeroClasses => case.classes = 0,
                    CeFault::NotDivisible => {
                        if c > 1 {
                            case.logits.push(0.0);
                            case.dense.push(0.0);
                        }
                    }
                    CeFault::WeightsLen => {
                        case.weights.get_or_insert_with(|| vec![1.0; c]).push(1.0);
                    }
                    CeFault::WeightValue(v) => {
                        case.weights.get_or_insert_with(|| vec![1.0; c])[0] = v
                    }
                    CeFault::Smoothing(v) => case.eps = v,
                    CeFault::ZLoss(v) => case.z_loss = v,
                    CeFault::Softcap(v) => case.cap = Some(v),
                }
                case.labels = labels;
                // Several faults at once (an invalid DivideBy, or labels the
                // label type cannot hold): only Ok/Err parity is required.
                let wraps = label_kind != LabelKind::I64 && case.labels.iter().any(|&l| l < 0);
                case.strict = (matches!(fault, CeFault::None) || is_valid(red)) && !wraps;
                case
            },
        )
}

proptest! {
    #![proptest_config(config(768))]

    /// Integer labels, every option (no zero class weight with smoothing:
    /// the twin below).
    #[test]
    fn prop_cross_entropy(case in ce_case(false, false), off in 0usize..8) {
        for b in backends() {
            check_ce_sparse::<f32>(&case, b, off);
            check_ce_sparse::<f64>(&case, b, off);
        }
    }

    /// As above, zero class weights with smoothing too.
    #[test]
    fn prop_cross_entropy_zero_weights_with_smoothing(case in ce_case(false, true), off in 0usize..8) {
        for b in backends() {
            check_ce_sparse::<f32>(&case, b, off);
            check_ce_sparse::<f64>(&case, b, off);
        }
    }

    /// Dense targets of every kind (probability rows, one-hot rows, raw
    /// values), every option, shifted logits.
    #[test]
    fn prop_cross_entropy_dense(case in ce_case(false, true), off in 0usize..8) {
        for b in backends() {
            check_ce_dense::<f32>(&case, b, off);
            check_ce_dense::<f64>(&case, b, off);
        }
    }

    /// Dense targets bounded away from 0 with moderate logits: the row loss
    /// is at least the targets' entropy, well above the rounding of `w t z`
    /// (runs while `prop_cross_entropy_dense` is ignored).
    #[test]
    fn prop_cross_entropy_dense_soft_targets(case in ce_case(true, true), off in 0usize..8) {
        for b in backends() {
            check_ce_dense::<f32>(&case, b, off);
            check_ce_dense::<f64>(&case, b, off);
        }
    }
}

fn primitive_logits() -> impl Strategy<Value = (Vec<f64>, usize)> {
    (0usize..=5, 0usize..=70).prop_flat_map(|(rows, c)| {
        let n = rows * c.max(1) + usize::from(c == 0);
        (
            prop::collection::vec(
                prop_oneof![
                    40 => -30.0..30.0f64,
                    2 => Just(f64::NEG_INFINITY),
                    1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, 1e30, -1e30, 3e38]),
                ],
                n,
            ),
            Just(c),
            any::<bool>(),
        )
            .prop_map(move |(mut v, c, all_masked)| {
                if all_masked && rows > 0 && c > 0 {
                    v[..c].fill(f64::NEG_INFINITY);
                }
                (v, c)
            })
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn prop_primitives((logits, c) in primitive_logits(), off in 0usize..8) {
        for b in backends() {
            check_primitives::<f32>(&logits, c, b, off);
            check_primitives::<f64>(&logits, c, b, off);
        }
    }
}

// ============================================================ kernel-only errors

#[test]
fn output_buffers_of_the_wrong_length_are_rejected_untouched() {
    let x = [0.5_f32, 0.25, 0.75];
    let y = [1.0_f32, 0.0, 1.0];
    for b in backends() {
        for len in [0, 2, 4] {
            let mut g = vec![7.0_f32; len];
            let e = LossError::LengthMismatch {
                what: "grad",
                expected: 3,
                found: len,
            };
            assert_eq!(
                SquaredError::new().backend(b).loss_grad(&x, &y, &mut g),
                Err(e.clone())
            );
            assert_eq!(
                BinaryCrossEntropy::new()
                    .backend(b)
                    .loss_grad(&x, &y, &mut g),
                Err(e.clone())
            );
            assert_eq!(
                BinaryCrossEntropyWithLogits::new()
                    .backend(b)
                    .loss_grad(&x, &y, &mut g),
                Err(e)
            );
            let e = LossError::LengthMismatch {
                what: "out",
                expected: 3,
                found: len,
            };
            assert_eq!(
                SquaredError::new().backend(b).per_element(&x, &y, &mut g),
                Err(e.clone())
            );
            assert_eq!(
                BinaryCrossEntropy::new()
                    .backend(b)
                    .per_element(&x, &y, &mut g),
                Err(e.clone())
            );
            assert_eq!(
                BinaryCrossEntropyWithLogits::new()
                    .backend(b)
                    .per_element(&x, &y, &mut g),
                Err(e)
            );
            assert!(g.iter().all(|&v| v == 7.0));

            // Cross entropy: 1 row of 3 classes.
            let ce = CrossEntropy::<f32>::new().backend(b);
            let e = LossError::LengthMismatch {
                what: "grad",
                expected: 3,
                found: len,
            };
            assert_eq!(ce.loss_grad(&x, 3, &[0u32], &mut g), Err(e.clone()));
            assert_eq!(ce.loss_grad_dense(&x, 3, &y, &mut g), Err(e));
            let e = |expected| LossError::LengthMismatch {
                what: "out",
                expected,
                found: len,
            };
            if len != 1 {
                assert_eq!(ce.per_row(&x, 3, &[0u32], &mut g), Err(e(1)));
                assert_eq!(ce.per_row_dense(&x, 3, &y, &mut g), Err(e(1)));
                assert_eq!(
                    Softmax::new().backend(b).log_sum_exp(&x, 3, &mut g),
                    Err(e(1))
                );
            }
            assert_eq!(Softmax::new().backend(b).softmax(&x, 3, &mut g), Err(e(3)));
            assert_eq!(
                Softmax::new().backend(b).log_softmax(&x, 3, &mut g),
                Err(e(3))
            );
            assert!(g.iter().all(|&v| v == 7.0));
        }
    }
}

#[test]
fn unavailable_backends_are_an_error() {
    for b in [
        Backend::Scalar,
        Backend::Portable,
        Backend::Avx2Fma,
        Backend::Avx512,
    ] {
        let r = SquaredError::new().backend(b).loss(&[1.0_f32], &[0.0]);
        if b.is_available() {
            assert_eq!(r, Ok(1.0));
        } else {
            assert_eq!(r, Err(LossError::BackendUnavailable { backend: b }));
        }
    }
    assert!(Backend::Auto.is_available());
    assert!(Backend::available().contains(&Backend::detected()));
}

// ============================================================ finite differences

/// A kernel's `loss_grad` on given inputs, writing the gradient.
type KernelGrad<'a, T> = &'a dyn Fn(&[T], &mut [T]) -> Result<T, LossError>;
/// As [`KernelGrad`], on a given backend.
type BackendGrad<'a, T> = &'a dyn Fn(Backend, &[T], &mut [T]) -> Result<T, LossError>;

/// Central finite difference of `f` at `x` in every coordinate (step
/// `h (1 + |x_i|)`, Richardson-extrapolated: error O(h⁴)).
fn finite_differences(f: &dyn Fn(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let step = h * (1.0 + x[i].abs());
            let d = |h: f64| {
                let (mut a, mut b) = (x.to_vec(), x.to_vec());
                a[i] += h;
                b[i] -= h;
                (f(&a) - f(&b)) / (2.0 * h)
            };
            (4.0 * d(step / 2.0) - d(step)) / 3.0
        })
        .collect()
}

/// Compares a kernel gradient with finite differences: `|g - fd| <= rel
/// (|fd| + max|fd|) + abs`.
fn check_fd(ctx: &str, got: &[f64], fd: &[f64], rel: f64, abs: f64) {
    let scale = max_abs(fd);
    for (i, (&g, &d)) in got.iter().zip(fd).enumerate() {
        assert!(
            (g - d).abs() <= rel * (d.abs() + scale) + abs,
            "{ctx}: grad[{i}] = {g:e}, finite difference {d:e}"
        );
    }
}

/// The kernel's gradient in `T` at `x` (rounded to `T`) vs finite
/// differences of the oracle's loss at the same point.
fn fd_case<T: Elem>(
    ctx: &str,
    x: &[f64],
    oracle: &dyn Fn(&[f64]) -> Output,
    kernel: KernelGrad<'_, T>,
) {
    let xt: Vec<T> = to_t(x);
    let xo = to_f64(&xt);
    let fd = finite_differences(&|v| oracle(v).loss, &xo, 1e-4);
    // The oracle's own gradient first.
    let rel_oracle = 1e-7;
    check_fd(
        &format!("{ctx} oracle"),
        &oracle(&xo).grad,
        &fd,
        rel_oracle,
        1e-10,
    );
    let mut g = vec![T::ZERO; x.len()];
    kernel(&xt, &mut g).unwrap();
    // f32 gradients carry their own ~1e-6 rounding (relative to the
    // gradient's components, which may cancel to 0: hence an absolute 8 eps
    // too); f64 ones are at the finite-difference accuracy.
    let rel = if T::EPS > 1e-10 { 2e-5 } else { rel_oracle };
    check_fd(
        &format!("{ctx} [{}]", T::NAME),
        &to_f64(&g),
        &fd,
        rel,
        8.0 * T::EPS,
    );
}

fn fd_all_backends<T: Elem>(
    ctx: &str,
    x: &[f64],
    oracle: &dyn Fn(&[f64]) -> Output,
    kernel: BackendGrad<'_, T>,
) {
    for b in backends() {
        fd_case::<T>(&format!("{ctx} {b:?}"), x, oracle, &|xt, g| {
            kernel(b, xt, g)
        });
    }
}

const FD_REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::DivideBy(7.0)];

#[test]
fn gradients_match_finite_differences_elementwise() {
    let mut rng = Rng(77);
    for trial in 0..3 {
        let n = [1, 7, 23][trial];
        let x = rng.normals(n, 2.0);
        let y = rng.normals(n, 2.0);
        let p = rng.uniforms(n, 0.05, 0.95);
        let t: Vec<f64> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    rng.uniform()
                } else {
                    (i % 4 / 2) as f64
                }
            })
            .collect();
        let w = rng.uniforms(n, 0.0, 2.0);
        let d = divisors(n);
        let pw = rng.uniforms(d[d.len() / 2], 0.2, 3.0);
        for red in FD_REDUCTIONS {
            let em = EmptyMean::Nan;
            macro_rules! each_type {
                ($T:ty) => {{
                    let yt = to_f64(&to_t::<$T>(&y));
                    let tt = to_f64(&to_t::<$T>(&t));
                    let wt = to_f64(&to_t::<$T>(&w));
                    let pwt = to_f64(&to_t::<$T>(&pw));
                    let (yk, tk, wk, pwk) = (
                        to_t::<$T>(&y),
                        to_t::<$T>(&t),
                        to_t::<$T>(&w),
                        to_t::<$T>(&pw),
                    );
                    fd_all_backends::<$T>(
                        &format!("mse n={n} {red:?}"),
                        &x,
                        &|v| reference::squared_error(v, &yt, red, em).unwrap(),
                        &|b, v, g| {
                            SquaredError::new()
                                .reduction(red)
                                .backend(b)
                                .loss_grad(v, &yk, g)
                        },
                    );
                    for weighted in [false, true] {
                        let wo = weighted.then_some(&wt[..]);
                        fd_all_backends::<$T>(
                            &format!("bce n={n} {red:?} w={weighted}"),
                            &p,
                            &|v| reference::binary_cross_entropy(v, &tt, wo, red, em).unwrap(),
                            &|b, v, g| {
                                let mut l = BinaryCrossEntropy::new().reduction(red).backend(b);
                                if weighted {
                                    l = l.weight(&wk);
                                }
                                l.loss_grad(v, &tk, g)
                            },
                        );
                        let pwo = weighted.then_some(&pwt[..]);
                        fd_all_backends::<$T>(
                            &format!("bce_logits n={n} {red:?} w,pw={weighted}"),
                            &x,
                            &|v| {
                                reference::binary_cross_entropy_with_logits(
                                    v, &tt, wo, pwo, red, em,
                                )
                                .unwrap()
                            },
                            &|b, v, g| {
                                let mut l = BinaryCrossEntropyWithLogits::new()
                                    .reduction(red)
                                    .backend(b);
                                if weighted {
                                    l = l.weight(&wk).pos_weight(&pwk);
                                }
                                l.loss_grad(v, &tk, g)
                            },
                        );
                    }
                }};
            }
            each_type!(f32);
            each_type!(f64);
        }
    }
}

#[test]
fn gradients_match_finite_differences_cross_entropy() {
    let mut rng = Rng(78);
    let option_sets: [(bool, f64, f64, Option<f64>); 6] = [
        (false, 0.0, 0.0, None),
        (true, 0.0, 0.0, None),
        (false, 0.2, 0.0, None),
        (false, 0.0, 0.01, None),
        (false, 0.0, 0.0, Some(4.0)),
        (true, 0.15, 0.02, Some(3.0)), // smoothing + weights + z-loss + softcap
    ];
    for (rows, c) in [(1, 1), (2, 3), (3, 17), (4, 40)] {
        let x = rng.normals(rows * c, 2.0);
        let labels: Vec<i64> = (0..rows)
            .map(|r| if r == 1 { -100 } else { rng.below(c) as i64 })
            .collect();
        let dense: Vec<f64> = (0..rows).flat_map(|_| rng.simplex(c)).collect();
        let w = rng.uniforms(c, 0.2, 2.0);
        for (weighted, eps, z, cap) in option_sets {
            for red in FD_REDUCTIONS {
                macro_rules! each_type {
                    ($T:ty) => {{
                        let wt = to_f64(&to_t::<$T>(&w));
                        let dt = to_f64(&to_t::<$T>(&dense));
                        let (wk, dk) = (to_t::<$T>(&w), to_t::<$T>(&dense));
                        let opts = CrossEntropyOptions {
                            reduction: red,
                            class_weights: weighted.then_some(&wt[..]),
                            label_smoothing: eps,
                            z_loss: z,
                            softcap: cap,
                            ..Default::default()
                        };
                        let ce = |b: Backend| {
                            let mut ce = CrossEntropy::<$T>::new()
                                .reduction(red)
                                .backend(b)
                                .label_smoothing(eps)
                                .z_loss(z);
                            if weighted {
                                ce = ce.class_weights(&wk);
                            }
                            if let Some(s) = cap {
                                ce = ce.softcap(s);
                            }
                            ce
                        };
                        let ctx = format!(
                            "ce {rows}x{c} w={weighted} eps={eps} z={z} cap={cap:?} {red:?}"
                        );
                        fd_all_backends::<$T>(
                            &ctx,
                            &x,
                            &|v| reference::cross_entropy(v, c, &labels, &opts).unwrap(),
                            &|b, v, g| ce(b).loss_grad(v, c, &labels, g),
                        );
                        fd_all_backends::<$T>(
                            &format!("{ctx} dense"),
                            &x,
                            &|v| reference::cross_entropy_dense(v, c, &dt, &opts).unwrap(),
                            &|b, v, g| ce(b).loss_grad_dense(v, c, &dk, g),
                        );
                    }};
                }
                each_type!(f32);
                each_type!(f64);
            }
        }
    }
}

// ============================================================ accuracy at the edges

/// Confidently correct BCE-with-logits elements (`x = -20, y = 0`: loss
/// `ln(1 + e^-20) = 2.06e-9`) must keep their relative accuracy, as the
/// oracle's regrouped sum of non-negative terms does: `(1 - y) x +
/// softplus(-x)` computed literally is `-20 + 20.000000002`, which is 0 in
/// `f32`.
#[test]
fn bce_with_logits_confident_elements_keep_relative_accuracy() {
    for x0 in [2.0, 5.0, 20.0, 30.0] {
        for (x, y) in [(-x0, 0.0), (x0, 1.0)] {
            for pw in [None, Some(3.0)] {
                let n = 37;
                let xs = vec![x; n];
                let ys = vec![y; n];
                let pws = pw.map(|p| vec![p]);
                for b in backends() {
                    check_bce_logits::<f32>(
                        &xs,
                        &ys,
                        None,
                        pws.as_deref(),
                        Reduction::Mean,
                        EmptyMean::Nan,
                        b,
                        0,
                        true,
                    );
                    check_bce_logits::<f64>(
                        &xs,
                        &ys,
                        None,
                        pws.as_deref(),
                        Reduction::Mean,
                        EmptyMean::Nan,
                        b,
                        0,
                        true,
                    );
                }
            }
        }
    }
}

/// Softmax cross entropy is invariant under a common shift of a row's
/// logits, and so is the accuracy it can be computed with (`-log p_c =
/// (M - z_c) + ln S` is a sum of non-negative terms): label smoothing and
/// dense targets must not turn into `W lse - Σ w z`, a difference of two
/// numbers of the size of the shift.
#[test]
fn cross_entropy_accuracy_does_not_depend_on_a_logit_shift() {
    for shift in [0.0, 20.0, -50.0, 1000.0, -1000.0] {
        let mut rng = Rng(99);
        let (rows, c) = (4, 33);
        let logits: Vec<f64> = rng
            .normals(rows * c, 2.0)
            .iter()
            .map(|v| v + shift)
            .collect();
        let labels: Vec<i64> = (0..rows as i64).map(|r| r * 5).collect();
        let dense: Vec<f64> = (0..rows).flat_map(|_| rng.simplex(c)).collect();
        for eps in [0.0, 0.1] {
            let case = CeCase {
                classes: c,
                logits: logits.clone(),
                labels: labels.clone(),
                dense: dense.clone(),
                weights: None,
                ignore: Some(-100),
                eps,
                z_loss: 0.0,
                cap: None,
                red: Reduction::Sum,
                em: EmptyMean::Nan,
                label_kind: LabelKind::I64,
                strict: true,
            };
            for b in backends() {
                check_ce::<f32>(&case, b, 0);
                check_ce::<f64>(&case, b, 0);
            }
        }
    }
}

/// A weighted BCE-with-logits term that fits in `f32` must not overflow in
/// an intermediate product: `w · pw · y · |x|` with `x = -3e38`, `y = 1`,
/// `pw = 2.52`, `w = 0.0958` is 7.24e37, but `(pw y |x|) · w` overflows first;
/// with `w = 0` (a masked element) the term is 0 but `inf · 0` gives NaN,
/// which poisons the whole reduced loss.
#[test]
fn bce_with_logits_weighted_terms_do_not_overflow_early() {
    let x = [-3e38, -2e38, 3e38, -3e38];
    let y = [1.0, 1.0, 0.0, 1.0];
    let w = [0.0958, 0.5, 1.0, 0.0];
    let pw = [2.52, 2.0, 1.0, 2.0];
    for b in backends() {
        for red in [Reduction::Sum, Reduction::Mean] {
            check_bce_logits::<f32>(&x, &y, Some(&w), Some(&pw), red, EmptyMean::Nan, b, 0, true);
            check_bce_logits::<f64>(&x, &y, Some(&w), Some(&pw), red, EmptyMean::Nan, b, 0, true);
        }
    }
}

/// Dense cross entropy is a sum of non-negative terms `w_c t'_c (lse -
/// z_c)`, exactly 0 for a single class and tiny for a confident one-hot row:
/// it must keep its relative accuracy (and never be negative).
#[test]
fn cross_entropy_dense_keeps_relative_accuracy() {
    // (classes, logits, dense targets, class weights)
    type Case = (usize, Vec<f64>, Vec<f64>, Vec<f64>);
    let cases: [Case; 4] = [
        // One class: loss exactly 0 (the kernel gave -7.8e-8 in f32).
        (1, vec![-1.3620449], vec![1.0], vec![1.7854656]),
        // Confident weighted one-hot row: 1.86e-17 (the kernel gave -6.6e-7).
        (
            3,
            vec![38.564087, 0.0, -1.1],
            vec![1.0, 0.0, 0.0],
            vec![0.7797, 1.0, 1.0],
        ),
        // Confident one-hot row, unweighted: ln(1 + e^-20) = 2.06e-9 (the
        // kernel gave 0 in f32: lse - z_t).
        (2, vec![20.0, 0.0], vec![1.0, 0.0], vec![1.0, 1.0]),
        // Confident soft row with smoothing below.
        (
            4,
            vec![15.3, 0.2, -0.7, 1.1],
            vec![0.97, 0.01, 0.01, 0.01],
            vec![0.61, 1.3, 0.9, 1.7],
        ),
    ];
    for (c, logits, dense, w) in cases {
        for eps in [0.0, 0.05] {
            let case = CeCase {
                classes: c,
                labels: vec![0; logits.len() / c],
                logits: logits.clone(),
                dense: dense.clone(),
                weights: Some(w.clone()),
                ignore: Some(-100),
                eps,
                z_loss: 0.0,
                cap: None,
                red: Reduction::Sum,
                em: EmptyMean::Nan,
                label_kind: LabelKind::I64,
                strict: true,
            };
            for b in backends() {
                check_ce_dense::<f32>(&case, b, 0);
                check_ce_dense::<f64>(&case, b, 0);
            }
        }
    }
}

/// The smoothing term `ε/C Σ_c w_c (lse - z_c)` is a sum of non-negative
/// terms too. With zero weight on every class but the (confident) maximum it
/// is `ε/C w_max (lse - m) = ε/C w_max ln(1 + e^-22.5)` ~ 1.4e-11, which
/// `W ln S` with `S = 1 + 1.6e-10` rounded gets only to ~3e-7 relative in
/// `f64` (0 in `f32` when the two classes share a lane, e.g. `Scalar`).
#[test]
fn cross_entropy_smoothing_keeps_relative_accuracy() {
    for (logits, weights) in [
        (vec![0.0, 22.53142701905885], vec![0.0, 1.6702712377100082]),
        (vec![0.0, 12.0, -3.0], vec![0.0, 1.0, 0.0]),
    ] {
        let c = logits.len();
        let mut case = CeCase {
            classes: c,
            labels: vec![0],
            dense: vec![0.0; c],
            logits,
            weights: Some(weights),
            ignore: None,
            eps: 0.1,
            z_loss: 0.0,
            cap: None,
            red: Reduction::Sum,
            em: EmptyMean::Nan,
            label_kind: LabelKind::I64,
            strict: true,
        };
        case.dense[0] = 1.0;
        for b in backends() {
            check_ce::<f32>(&case, b, 0);
            check_ce::<f64>(&case, b, 0);
        }
    }
}
