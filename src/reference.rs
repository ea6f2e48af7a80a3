//! Scalar `f64` reference oracles: the loss formulas written out plainly, one
//! element (or row) at a time. Every kernel is tested against them; users and
//! fuzzers may call them too. They allocate and are slow on purpose.
//!
//! Each returns an [`Output`]: reduced loss, its gradient with respect to the
//! input, the unreduced losses and the [`Partial`] `(sum, Mean denominator)`.
//!
//! # Formulas (maximum likelihood, `seeds/000_*.txt`)
//!
//! - **Squared error**, eq. 7 (Gaussian noise): `l_i = (x_i - y_i)²`,
//!   gradient `2 (x_i - y_i)`.
//! - **Binary cross entropy**, eq. 12 (Bernoulli outcome):
//!   `l_i = -[y_i ln p_i + (1 - y_i) ln(1 - p_i)]`, gradient
//!   `(p_i - y_i) / (p_i (1 - p_i))`. On logits (`p = σ(x)`):
//!   `l_i = (1 - y_i) x_i + softplus(-x_i)`, gradient `σ(x_i) - y_i`.
//! - **Softmax cross entropy**, eq. 13 (categorical outcome, `C` classes):
//!   `row_i = -Σ_c t_ic logp_ic` with `logp_ic = z_ic - lse(z_i)` and
//!   `lse(z) = ln Σ_c e^{z_c}`; gradient `(Σ_c t_ic) p_ij - t_ij` with
//!   `p = softmax(z)`. An integer label `y` is the one-hot `t`: `lse - z_y`.
//!
//! # PyTorch options
//!
//! - BCE clamps each logarithm at `-100` and its gradient divides by
//!   `max(p (1 - p), 1e-12)` (PyTorch's `f32` constant, also for `f64`).
//!   Optional per-element weights `w_i` multiply loss and gradient.
//! - BCE with logits: `pos_weight[i % P]` (`P` columns) scales the positive
//!   term: `lw = 1 + (pw - 1) y`, `l = w [(1 - y) x + lw softplus(-x)]`,
//!   gradient `w [(1 - y) - lw σ(-x)] = w [(1 - y) σ(x) - pw y σ(-x)]`.
//! - Cross entropy with labels: class weights `w_c` (`W = Σ w_c`),
//!   `ignore_index` (loss 0, gradient 0, not counted), label smoothing `ε`:
//!   a kept row is `(1-ε) w_y (-logp_y) + (ε/C) Σ_c w_c (-logp_c)` (a class
//!   of weight 0 counts 0 there, even on a `-inf` logit), and
//!   `Mean` divides by `Σ w_y` over the kept rows. Beyond PyTorch: z-loss
//!   `z_loss · lse²` per kept row and softcap `z = s tanh(x / s)`.
//! - Cross entropy with probability targets: `t' = (1-ε) t + ε/C`,
//!   `row = -Σ_c w_c t'_c logp_c + z_loss · lse²`, where a term with
//!   `w_c t'_c = 0` counts 0 (PyTorch gives NaN for a masked `-inf` logit
//!   there); `Mean` divides by the row count.
//!
//! # Conventions
//!
//! - `Mean` divides the sum by its denominator `D`, `Sum` by 1, `DivideBy(d)`
//!   by `d`. A zero divisor gives `sum / 0` under [`EmptyMean::Nan`], `0`
//!   under [`EmptyMean::Zero`], and an all-zero gradient either way.
//! - `lse = M + ln S`, `M = max_c z_c`, `S = Σ_c e^{z_c - M}` computed as
//!   `ln_1p` of the terms other than the first maximum; so
//!   `-logp_c = (M - z_c) + ln S` adds two non-negative numbers and a
//!   confidently correct row (loss 1e-18) keeps its relative accuracy.
//! - A row holding NaN or `+inf` (after the softcap) has NaN lse, softmax,
//!   loss and gradient; an all `-inf` row has lse `-inf` and NaN softmax,
//!   loss and gradient. Other `-inf` logits are legal.
//! - Errors: shapes, then options, then the reduction, then values; the
//!   first offending index is reported.
//!
//! ```
//! use loss_kernels::reference::{self, CrossEntropyOptions};
//! use loss_kernels::{EmptyMean, Reduction};
//!
//! # fn main() -> Result<(), loss_kernels::LossError> {
//! // Eq. 7: the mean of (x - y)², gradient 2 (x - y) / n.
//! let (mean, nan) = (Reduction::Mean, EmptyMean::Nan);
//! let mse = reference::squared_error(&[1.0, 3.0], &[0.0, 0.0], mean, nan)?;
//! assert_eq!((mse.loss, mse.grad), (5.0, vec![1.0, 3.0]));
//! assert_eq!(mse.per_element, vec![1.0, 9.0]);
//!
//! // Eq. 12: predicting p = 0.5 costs ln 2 whatever the outcome.
//! let bce = reference::binary_cross_entropy(&[0.5, 0.5], &[1.0, 0.0], None, mean, nan)?;
//! assert!((bce.loss - 2f64.ln()).abs() < 1e-15);
//!
//! // Eq. 13: equal logits over 3 classes cost ln 3; the ignored row does not count.
//! let ce = reference::cross_entropy(&[0.0; 6], 3, &[2, -100], &CrossEntropyOptions::default())?;
//! assert!((ce.loss - 3f64.ln()).abs() < 1e-15);
//! assert_eq!((ce.per_element[1], ce.partial.weight), (0.0, 1.0));
//! # Ok(())
//! # }
//! ```

use crate::error::check_len;
use crate::options::check_non_negative;
use crate::{EmptyMean, LossError, Partial, Reduction};

/// PyTorch's floor of `p (1 - p)` in the BCE gradient (`f32` `1e-12`).
const BCE_EPS: f64 = 1e-12_f32 as f64;

/// Everything an oracle computes for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The reduced loss under the requested reduction and empty-mean policy.
    pub loss: f64,
    /// Gradient of the reduced loss w.r.t. the input (same length as the input).
    pub grad: Vec<f64>,
    /// The unreduced loss: per element (elementwise losses) or per row (cross entropy).
    pub per_element: Vec<f64>,
    /// (sum of the unreduced losses, the Mean denominator).
    pub partial: Partial,
}

/// Options of [`cross_entropy`] and [`cross_entropy_dense`]. The default is
/// PyTorch's: `Mean`, NaN empty mean, no weights, `ignore_index` `-100`, no
/// smoothing, no z-loss, no softcap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossEntropyOptions<'a> {
    /// How the per-row losses are reduced.
    pub reduction: Reduction,
    /// What `Mean` returns when its denominator is 0.
    pub empty_mean: EmptyMean,
    /// One weight per class, finite and `>= 0` (`None`: all 1).
    pub class_weights: Option<&'a [f64]>,
    /// Label of ignored rows (integer labels only; `None`: none ignored).
    pub ignore_index: Option<i64>,
    /// Label smoothing `ε` in `[0, 1]`.
    pub label_smoothing: f64,
    /// Weight of the per-row z-loss `lse²`, finite and `>= 0`.
    pub z_loss: f64,
    /// Softcap `s`, finite and `> 0`: logits become `s tanh(x / s)`.
    pub softcap: Option<f64>,
}

impl Default for CrossEntropyOptions<'_> {
    fn default() -> Self {
        CrossEntropyOptions {
            reduction: Reduction::Mean,
            empty_mean: EmptyMean::Nan,
            class_weights: None,
            ignore_index: Some(-100),
            label_smoothing: 0.0,
            z_loss: 0.0,
            softcap: None,
        }
    }
}

/// `InvalidOption` for a scalar option unless `ok`.
fn check(
    ok: bool,
    option: &'static str,
    value: f64,
    expected: &'static str,
) -> Result<(), LossError> {
    let index = None;
    if ok {
        Ok(())
    } else {
        Err(LossError::InvalidOption {
            option,
            index,
            value,
            expected,
        })
    }
}

fn check_reduction(reduction: Reduction) -> Result<(), LossError> {
    match reduction {
        Reduction::DivideBy(d) => {
            let expected = "Reduction::DivideBy(d) with d finite and > 0";
            check(d.is_finite() && d > 0.0, "reduction", d, expected)
        }
        Reduction::Mean | Reduction::Sum => Ok(()),
    }
}

/// Reduces the unreduced losses and scales the gradient of their sum.
fn finish(per_element: Vec<f64>, grad: Vec<f64>, d: f64, r: Reduction, e: EmptyMean) -> Output {
    let sum: f64 = per_element.iter().sum();
    let divisor = match r {
        Reduction::Mean => d,
        Reduction::Sum => 1.0,
        Reduction::DivideBy(d) => d,
    };
    let zero = divisor == 0.0;
    let loss = if zero && e == EmptyMean::Zero {
        0.0
    } else {
        sum / divisor
    };
    // Divide by the divisor (not times 1 / divisor, which overflows for a
    // subnormal divisor); all zeros (even for NaN terms) when it is 0.
    let scale = |g: f64| if zero { 0.0 } else { g / divisor };
    let grad = grad.into_iter().map(scale).collect();
    let partial = Partial { sum, weight: d };
    Output {
        loss,
        grad,
        per_element,
        partial,
    }
}

/// Squared error (eq. 7), PyTorch's `mse_loss`: `(x - y)²` per element,
/// gradient `2 (x - y)`; `Mean` divides by `n`.
///
/// # Errors
/// `LengthMismatch` (`"target"`), then `InvalidOption` (`"reduction"`).
pub fn squared_error(
    pred: &[f64],
    target: &[f64],
    reduction: Reduction,
    empty_mean: EmptyMean,
) -> Result<Output, LossError> {
    check_len("target", pred.len(), target.len())?;
    check_reduction(reduction)?;
    let diff: Vec<f64> = pred.iter().zip(target).map(|(&x, &y)| x - y).collect();
    let per = diff.iter().map(|d| d * d).collect();
    let grad = diff.iter().map(|d| 2.0 * d).collect();
    Ok(finish(per, grad, pred.len() as f64, reduction, empty_mean))
}

/// Binary cross entropy on probabilities (eq. 12), PyTorch's
/// `binary_cross_entropy`: `-w (y max(ln p, -100) + (1-y) max(ln(1-p), -100))`,
/// gradient `w (p - y) / max(p (1 - p), 1e-12)`; `Mean` divides by `n`.
///
/// # Errors
/// `LengthMismatch` (`"target"`, `"weight"`), `InvalidOption`
/// (`"reduction"`), then `ProbabilityOutOfRange` for the first input or
/// target outside `[0, 1]` or NaN (input first at the same index).
pub fn binary_cross_entropy(
    input: &[f64],
    target: &[f64],
    weight: Option<&[f64]>,
    reduction: Reduction,
    empty_mean: EmptyMean,
) -> Result<Output, LossError> {
    let n = input.len();
    check_len("target", n, target.len())?;
    check_len("weight", n, weight.map_or(n, <[f64]>::len))?;
    check_reduction(reduction)?;
    for (index, (&p, &y)) in input.iter().zip(target).enumerate() {
        for (what, value) in [("input", p), ("target", y)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(LossError::ProbabilityOutOfRange { what, index, value });
            }
        }
    }
    let w = weight.map_or_else(|| vec![1.0; n], <[f64]>::to_vec);
    let (mut per, mut grad) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for ((&p, &y), &w) in input.iter().zip(target).zip(&w) {
        per.push(-w * (y * p.ln().max(-100.0) + (1.0 - y) * (-p).ln_1p().max(-100.0)));
        grad.push(w * (p - y) / (p * (1.0 - p)).max(BCE_EPS));
    }
    Ok(finish(per, grad, n as f64, reduction, empty_mean))
}

/// `σ(u) = 1 / (1 + e^{-u})` without overflow.
fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        u.exp() / (1.0 + u.exp())
    }
}

/// Binary cross entropy on logits, PyTorch's `binary_cross_entropy_with_logits`:
/// with `pw = pos_weight[i % P]` (1 if `None`) and `lw = 1 + (pw - 1) y`,
/// `w ((1 - y) x + lw softplus(-x))`, `softplus(-x) = max(-x, 0) + ln(1 + e^{-|x|})`,
/// gradient `w ((1 - y) - lw σ(-x))`; `Mean` divides by `n`. For finite `x`
/// both are evaluated regrouped, without cancellation:
/// `w ((1-y) max(x, 0) + pw y max(-x, 0) + lw ln(1 + e^{-|x|}))` and
/// `w ((1 - y) σ(x) - pw y σ(-x))`.
///
/// # Errors
/// `LengthMismatch` (`"target"`, `"weight"`), `PosWeightLength` (empty or
/// not dividing `n`), `InvalidOption` (`"pos_weight"` negative or not
/// finite, then `"reduction"`).
pub fn binary_cross_entropy_with_logits(
    input: &[f64],
    target: &[f64],
    weight: Option<&[f64]>,
    pos_weight: Option<&[f64]>,
    reduction: Reduction,
    empty_mean: EmptyMean,
) -> Result<Output, LossError> {
    let n = input.len();
    check_len("target", n, target.len())?;
    check_len("weight", n, weight.map_or(n, <[f64]>::len))?;
    let pos_weight = pos_weight.unwrap_or(&[1.0]);
    if pos_weight.is_empty() || !n.is_multiple_of(pos_weight.len()) {
        let found = pos_weight.len();
        return Err(LossError::PosWeightLength {
            input_len: n,
            found,
        });
    }
    for (i, &v) in pos_weight.iter().enumerate() {
        check_non_negative("pos_weight", Some(i), v)?;
    }
    check_reduction(reduction)?;
    let w = weight.map_or_else(|| vec![1.0; n], <[f64]>::to_vec);
    let (mut per, mut grad) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let pw_cycle = pos_weight.iter().cycle();
    for (((&x, &y), &w), &pw) in input.iter().zip(target).zip(&w).zip(pw_cycle) {
        // lw = 1 + (pw - 1) y; for y in [0, 1] as (1 - y) + pw y, two
        // non-negative parts (1 + (pw - 1) y cancels for small pw, y ≈ 1).
        let lw = if (0.0..=1.0).contains(&y) {
            (1.0 - y) + pw * y
        } else {
            1.0 + (pw - 1.0) * y
        };
        let l1p = (-x.abs()).exp().ln_1p();
        per.push(if x.is_finite() {
            // The same value, regrouped as a sum of non-negative terms (for
            // y in [0, 1]): no cancellation of x against softplus(-x).
            w * ((1.0 - y) * x.max(0.0) + pw * y * (-x).max(0.0) + lw * l1p)
        } else {
            // The literal form, so that 0 * inf is NaN where PyTorch has it.
            w * ((1.0 - y) * x + lw * ((-x).max(0.0) + l1p))
        });
        // (1 - y) - lw σ(-x), regrouped likewise.
        grad.push(w * ((1.0 - y) * sigmoid(x) - pw * y * sigmoid(-x)));
    }
    Ok(finish(per, grad, n as f64, reduction, empty_mean))
}

/// Checks `classes` and the logits length; returns the row count.
fn rows_of(len: usize, classes: usize) -> Result<usize, LossError> {
    match classes {
        0 => Err(LossError::ZeroClasses),
        _ if !len.is_multiple_of(classes) => Err(LossError::NotDivisible { len, classes }),
        _ => Ok(len / classes),
    }
}

/// Validates the cross-entropy options (not `ignore_index`) in contract
/// order; returns the class weights (all 1 if none).
fn ce_options(classes: usize, opts: &CrossEntropyOptions) -> Result<Vec<f64>, LossError> {
    if let Some(w) = opts.class_weights {
        check_len("class_weights", classes, w.len())?;
        for (c, &v) in w.iter().enumerate() {
            check_non_negative("class_weights", Some(c), v)?;
        }
    }
    let eps = opts.label_smoothing;
    check(
        (0.0..=1.0).contains(&eps),
        "label_smoothing",
        eps,
        "a value in [0, 1]",
    )?;
    check_non_negative("z_loss", None, opts.z_loss)?;
    if let Some(s) = opts.softcap {
        check(
            (crate::options::SOFTCAP_MIN..=crate::options::SOFTCAP_MAX).contains(&s),
            "softcap",
            s,
            crate::options::SOFTCAP_EXPECTED,
        )?;
    }
    check_reduction(opts.reduction)?;
    Ok(opts
        .class_weights
        .map_or_else(|| vec![1.0; classes], <[f64]>::to_vec))
}

/// One row of logits after the softcap.
struct Row {
    /// `dz_c / dx_c`: 1, or `1 - tanh²(x_c / s) = 1 / cosh²(x_c / s)` with a softcap.
    dz: Vec<f64>,
    /// `ln Σ_c e^{z_c}`.
    lse: f64,
    /// `logp_c = z_c - lse`, computed as `(z_c - M) - ln S`.
    logp: Vec<f64>,
}

/// Caps the row, then `M = max_c z_c` (first at `k`) and
/// `ln S = ln_1p(Σ_{c ≠ k} e^{z_c - M})`: the term `e^0 = 1` of `k` is left
/// out of the sum. NaN or `+inf` anywhere: NaN; all `-inf`: `S = 0`.
fn row(x: &[f64], softcap: Option<f64>) -> Row {
    let cap = |v: f64| match softcap {
        None => (v, 1.0),
        // dz/dx = 1 - tanh² = 1 / cosh², in the form that does not cancel.
        Some(s) => ((v / s).tanh() * s, (v / s).cosh().powi(2).recip()),
    };
    let (z, dz): (Vec<f64>, Vec<f64>) = x.iter().map(|&v| cap(v)).unzip();
    let (mut k, mut m) = (0, f64::NEG_INFINITY);
    for (c, &v) in z.iter().enumerate() {
        if v > m {
            (k, m) = (c, v);
        }
    }
    let ln_s = if z.iter().any(|&v| v.is_nan() || v == f64::INFINITY) {
        f64::NAN
    } else if m == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else {
        let others = z.iter().enumerate().filter(|&(c, _)| c != k);
        others.map(|(_, &v)| (v - m).exp()).sum::<f64>().ln_1p()
    };
    let logp = z.iter().map(|&zc| (zc - m) - ln_s).collect();
    Row {
        dz,
        lse: m + ln_s,
        logp,
    }
}

/// Softmax cross entropy with integer labels (eq. 13, one-hot targets),
/// PyTorch's `cross_entropy` plus z-loss and softcap. A kept row (label
/// `y != ignore_index`) has loss `(1-ε) w_y (-logp_y)` plus
/// `(ε/C) Σ_c w_c (-logp_c)` if `ε > 0`, plus `z_loss lse²` if `z_loss > 0`;
/// its gradient is `(1-ε) w_y (p_j - [j = y])`, plus `(ε/C) (W p_j - w_j)`,
/// plus `2 z_loss lse p_j`, times `1 - tanh²(x_j / s)` with a softcap.
/// Ignored rows: 0. `Mean` divides by `Σ w_y` over the kept rows;
/// `per_element` is per row.
///
/// # Errors
/// In order: `ZeroClasses`, `NotDivisible`, `LengthMismatch` (`"labels"`,
/// `"class_weights"`), `InvalidOption` (`"class_weights"`,
/// `"label_smoothing"`, `"z_loss"`, `"softcap"`, `"reduction"`), then
/// `LabelOutOfRange` for the first bad row.
pub fn cross_entropy(
    logits: &[f64],
    classes: usize,
    labels: &[i64],
    opts: &CrossEntropyOptions,
) -> Result<Output, LossError> {
    let rows = rows_of(logits.len(), classes)?;
    check_len("labels", rows, labels.len())?;
    let w = ce_options(classes, opts)?;
    let mut targets: Vec<Option<usize>> = Vec::with_capacity(rows);
    for (index, &label) in labels.iter().enumerate() {
        match usize::try_from(label) {
            _ if opts.ignore_index == Some(label) => targets.push(None),
            Ok(y) if y < classes => targets.push(Some(y)),
            _ => {
                return Err(LossError::LabelOutOfRange {
                    index,
                    label,
                    classes,
                })
            }
        }
    }
    let w_total: f64 = w.iter().sum();
    let (eps, z_loss, c) = (opts.label_smoothing, opts.z_loss, classes as f64);
    let (mut per_row, mut grad, mut denominator) = (vec![0.0; rows], vec![0.0; logits.len()], 0.0);
    let rows_iter = logits
        .chunks_exact(classes)
        .zip(grad.chunks_exact_mut(classes));
    for (((x, g), loss), &target) in rows_iter.zip(&mut per_row).zip(&targets) {
        let Some(y) = target else { continue };
        // `y < classes = w.len() = logp.len()`: validated above.
        denominator += w[y];
        let r = row(x, opts.softcap);
        if !r.lse.is_finite() {
            *loss = f64::NAN;
            g.fill(f64::NAN);
            continue;
        }
        *loss = (1.0 - eps) * w[y] * -r.logp[y];
        if eps > 0.0 {
            // A class of weight 0 counts 0, even on a masked -inf logit
            // (PyTorch gives NaN there: 0 * inf).
            let smooth = w
                .iter()
                .zip(&r.logp)
                .map(|(&wc, &lp)| if wc == 0.0 { 0.0 } else { wc * -lp });
            *loss += (eps / c) * smooth.sum::<f64>();
        }
        if z_loss > 0.0 {
            *loss += z_loss * r.lse * r.lse;
        }
        for (j, (gj, &lp)) in g.iter_mut().zip(&r.logp).enumerate() {
            let p = lp.exp();
            // p_y - 1 as e^{logp_y} - 1: accurate when p_y is close to 1.
            *gj = (1.0 - eps) * w[y] * if j == y { lp.exp_m1() } else { p };
            if eps > 0.0 {
                *gj += (eps / c) * (w_total * p - w[j]);
            }
            if z_loss > 0.0 {
                *gj += 2.0 * z_loss * r.lse * p;
            }
            *gj *= r.dz[j];
        }
    }
    let (reduction, empty_mean) = (opts.reduction, opts.empty_mean);
    Ok(finish(per_row, grad, denominator, reduction, empty_mean))
}

/// Softmax cross entropy with probability targets (eq. 13): with
/// `t'_c = (1-ε) t_c + ε/C`, a row has loss `-Σ_c w_c t'_c logp_c`
/// (a term with `w_c t'_c = 0` counts 0) `+ z_loss lse²` and gradient
/// `(Σ_c w_c t'_c) p_j - w_j t'_j + 2 z_loss lse p_j` (times the softcap
/// factor). `Mean` divides by the row count. `ignore_index` is not used and
/// targets are not validated.
///
/// # Errors
/// As [`cross_entropy`], with `LengthMismatch` (`"targets"`, expected
/// `logits.len()`) in place of the label checks.
pub fn cross_entropy_dense(
    logits: &[f64],
    classes: usize,
    targets: &[f64],
    opts: &CrossEntropyOptions,
) -> Result<Output, LossError> {
    let rows = rows_of(logits.len(), classes)?;
    check_len("targets", logits.len(), targets.len())?;
    let w = ce_options(classes, opts)?;
    let (eps, z_loss, c) = (opts.label_smoothing, opts.z_loss, classes as f64);
    let smoothed = |t: f64| {
        if eps > 0.0 {
            (1.0 - eps) * t + eps / c
        } else {
            t
        }
    };
    let (mut per_row, mut grad) = (vec![0.0; rows], vec![0.0; logits.len()]);
    let rows_iter = logits
        .chunks_exact(classes)
        .zip(targets.chunks_exact(classes));
    for (((x, t), g), loss) in rows_iter
        .zip(grad.chunks_exact_mut(classes))
        .zip(&mut per_row)
    {
        let r = row(x, opts.softcap);
        if !r.lse.is_finite() {
            *loss = f64::NAN;
            g.fill(f64::NAN);
            continue;
        }
        // w_c t'_c, and the loss terms (0 where w_c t'_c is 0).
        let wt: Vec<f64> = w
            .iter()
            .zip(t)
            .map(|(&wc, &tc)| wc * smoothed(tc))
            .collect();
        let terms = wt
            .iter()
            .zip(&r.logp)
            .map(|(&a, &lp)| if a == 0.0 { 0.0 } else { a * lp });
        *loss = -terms.sum::<f64>();
        if z_loss > 0.0 {
            *loss += z_loss * r.lse * r.lse;
        }
        let wt_total: f64 = wt.iter().sum();
        for (j, (gj, &lp)) in g.iter_mut().zip(&r.logp).enumerate() {
            let p = lp.exp();
            *gj = wt_total * p - wt[j];
            if z_loss > 0.0 {
                *gj += 2.0 * z_loss * r.lse * p;
            }
            *gj *= r.dz[j];
        }
    }
    let (reduction, empty_mean) = (opts.reduction, opts.empty_mean);
    Ok(finish(per_row, grad, rows as f64, reduction, empty_mean))
}

/// `ln Σ_c e^{z_c}` of each row of row-major `[rows, classes]` logits: NaN
/// if the row holds NaN or `+inf`, `-inf` if it is all `-inf`.
///
/// # Errors
/// `ZeroClasses`, `NotDivisible`.
pub fn log_sum_exp(logits: &[f64], classes: usize) -> Result<Vec<f64>, LossError> {
    rows_of(logits.len(), classes)?;
    Ok(logits
        .chunks_exact(classes)
        .map(|z| row(z, None).lse)
        .collect())
}

/// `z_c - lse(z)` for every element of `[rows, classes]` logits.
///
/// # Errors
/// `ZeroClasses`, `NotDivisible`.
pub fn log_softmax(logits: &[f64], classes: usize) -> Result<Vec<f64>, LossError> {
    rows_of(logits.len(), classes)?;
    Ok(logits
        .chunks_exact(classes)
        .flat_map(|z| row(z, None).logp)
        .collect())
}

/// `e^{z_c - lse(z)}` for every element of `[rows, classes]` logits.
///
/// # Errors
/// `ZeroClasses`, `NotDivisible`.
pub fn softmax(logits: &[f64], classes: usize) -> Result<Vec<f64>, LossError> {
    Ok(log_softmax(logits, classes)?
        .into_iter()
        .map(f64::exp)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::LN_2;

    type Opts = CrossEntropyOptions<'static>;
    type LossFn<'a> = &'a dyn Fn(&[f64]) -> Output;
    const INF: f64 = f64::INFINITY;
    const MEAN: Reduction = Reduction::Mean;
    const SUM: Reduction = Reduction::Sum;
    const NAN: EmptyMean = EmptyMean::Nan;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        a == b || (a - b).abs() <= rel * b.abs()
    }
    fn all_close(a: &[f64], b: &[f64], rel: f64) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| close(x, y, rel))
    }
    fn opts(f: impl FnOnce(&mut Opts)) -> Opts {
        let mut o = Opts::default();
        f(&mut o);
        o
    }
    fn ce(x: &[f64], c: usize, labels: &[i64], o: Opts) -> Output {
        cross_entropy(x, c, labels, &o).unwrap()
    }
    fn ce_err(x: &[f64], c: usize, labels: &[i64], o: Opts) -> LossError {
        cross_entropy(x, c, labels, &o).unwrap_err()
    }
    fn bce(p: &[f64], y: &[f64], w: Option<&[f64]>, r: Reduction) -> Result<Output, LossError> {
        binary_cross_entropy(p, y, w, r, NAN)
    }
    fn bcel(x: &[f64], y: &[f64], pw: Option<&[f64]>) -> Result<Output, LossError> {
        binary_cross_entropy_with_logits(x, y, None, pw, MEAN, NAN)
    }
    fn len_err(what: &'static str, expected: usize, found: usize) -> LossError {
        LossError::LengthMismatch {
            what,
            expected,
            found,
        }
    }
    /// `(option, index)` of an `InvalidOption`.
    fn option_of(e: LossError) -> (&'static str, Option<usize>) {
        match e {
            LossError::InvalidOption { option, index, .. } => (option, index),
            e => panic!("not an InvalidOption: {e:?}"),
        }
    }

    #[test]
    fn squared_error_by_hand() {
        let (p, t) = ([1.0, 2.0, 3.0], [0.0, 0.0, 1.0]);
        let m = squared_error(&p, &t, MEAN, NAN).unwrap();
        assert_eq!((m.loss, m.per_element), (3.0, vec![1.0, 4.0, 4.0]));
        assert!(all_close(
            &m.grad,
            &[2.0 / 3.0, 4.0 / 3.0, 4.0 / 3.0],
            1e-15
        ));
        let s = squared_error(&p, &t, SUM, NAN).unwrap();
        assert_eq!((s.loss, s.grad), (9.0, vec![2.0, 4.0, 4.0]));
        assert_eq!((m.partial.sum, m.partial.weight), (9.0, 3.0));
        assert_eq!(s.partial, m.partial);
        let d = squared_error(&p, &t, Reduction::DivideBy(2.0), NAN).unwrap();
        assert_eq!((d.loss, d.grad), (4.5, vec![1.0, 2.0, 2.0]));
        let err = squared_error(&p, &t[..2], MEAN, NAN).unwrap_err();
        assert_eq!(err, len_err("target", 3, 2));
        for d in [0.0, -1.0, f64::NAN, INF] {
            let err = squared_error(&p, &t, Reduction::DivideBy(d), NAN).unwrap_err();
            assert_eq!(option_of(err), ("reduction", None));
        }
    }

    #[test]
    fn empty_mean_policy() {
        let zero = EmptyMean::Zero;
        assert!(squared_error(&[], &[], MEAN, NAN).unwrap().loss.is_nan());
        assert_eq!(squared_error(&[], &[], MEAN, zero).unwrap().loss, 0.0);
        assert_eq!(squared_error(&[], &[], SUM, NAN).unwrap().loss, 0.0);
        // Every row ignored (one of them NaN): NaN or 0 by policy, zero gradient.
        let (x, labels) = ([1.0, 2.0, f64::NAN, 0.0], [-100, -100]);
        let o = ce(&x, 2, &labels, Opts::default());
        assert!(o.loss.is_nan());
        assert_eq!((o.grad, o.partial), (vec![0.0; 4], Partial::default()));
        assert_eq!(ce(&x, 2, &labels, opts(|o| o.empty_mean = zero)).loss, 0.0);
        assert_eq!(ce(&x, 2, &labels, opts(|o| o.reduction = SUM)).loss, 0.0);
        // A kept row of class weight 0: D = 0, and the gradient is still 0.
        let o = opts(|o| (o.class_weights, o.empty_mean) = (Some(&[0.0, 1.0][..]), zero));
        let o = ce(&[0.0, 0.0], 2, &[0], o);
        assert_eq!((o.loss, o.grad), (0.0, vec![0.0, 0.0]));
    }

    #[test]
    fn bce_by_hand() {
        let o = bce(&[0.5, 0.5], &[1.0, 0.0], None, MEAN).unwrap();
        assert!(close(o.loss, LN_2, 1e-15) && o.grad == vec![-1.0, 1.0]);
        // The -100 clamp, PyTorch's f32 EPS (grad -1/EPS at p = 0, y = 1), weights.
        let w = [2.0, 1.0, 1.0];
        let o = bce(&[0.0, 1.0, 0.0], &[1.0, 1.0, 0.0], Some(&w), SUM).unwrap();
        assert_eq!(o.per_element, vec![200.0, 0.0, 0.0]);
        assert_eq!(o.grad, vec![-2.0 * 1000000003995.8029, 0.0, 0.0]);
        // The first bad index; input before target at the same index.
        let oob = |what, index, value| LossError::ProbabilityOutOfRange { what, index, value };
        let err = |p: &[f64], y: &[f64]| bce(p, y, None, MEAN).unwrap_err();
        assert_eq!(err(&[0.5, 1.5], &[0.5, 0.5]), oob("input", 1, 1.5));
        assert_eq!(err(&[0.5, -0.5], &[0.5, 2.0]), oob("input", 1, -0.5));
        assert_eq!(err(&[0.5, -0.5], &[2.0, 0.5]), oob("target", 0, 2.0));
        let nan = err(&[0.5], &[f64::NAN]);
        assert!(matches!(
            nan,
            LossError::ProbabilityOutOfRange { what: "target", .. }
        ));
        assert_eq!(
            bce(&[0.5], &[0.5], Some(&[]), MEAN).unwrap_err(),
            len_err("weight", 1, 0)
        );
    }

    #[test]
    fn bce_with_logits_by_hand() {
        let o = bcel(&[0.0], &[1.0], None).unwrap();
        assert!(close(o.loss, LN_2, 1e-15) && o.grad == vec![-0.5]);
        let o = bcel(&[-800.0, 800.0, -40.0], &[1.0, 1.0, 0.0], None).unwrap();
        assert_eq!(o.per_element[..2], [800.0, 0.0]);
        // ln(1 + e^-40) and σ(-40)/3 keep their relative accuracy.
        assert!(close(o.per_element[2], 4.248354255291589e-18, 1e-14));
        assert!(close(o.grad[2], 4.248354255291589e-18 / 3.0, 1e-14));
        // Column 1 weights its positives 3x: (ln 2 + 3 ln 2) / 2.
        let o = bcel(&[0.0, 0.0], &[1.0, 1.0], Some(&[1.0, 3.0])).unwrap();
        assert!(close(o.loss, 2.0 * LN_2, 1e-15) && o.grad == vec![-0.25, -0.75]);
        for pw in [&[][..], &[1.0, 1.0, 1.0]] {
            let found = pw.len();
            let want = LossError::PosWeightLength {
                input_len: 2,
                found,
            };
            assert_eq!(bcel(&[0.0; 2], &[0.0; 2], Some(pw)).unwrap_err(), want);
        }
        let err = bcel(&[0.0; 2], &[0.0; 2], Some(&[1.0, -1.0])).unwrap_err();
        assert_eq!(option_of(err), ("pos_weight", Some(1)));
    }

    #[test]
    fn bce_with_logits_is_two_class_softmax() {
        // The seed's identity: BCE on logit x is softmax CE on logits [0, x].
        for x in [-30.0, -2.5, 0.0, 0.7, 40.0] {
            for y in [0, 1] {
                let b = bcel(&[x], &[y as f64], None).unwrap();
                let c = ce(&[0.0, x], 2, &[y], Opts::default());
                assert!(
                    close(b.loss, c.loss, 1e-14),
                    "{x} {y}: {} {}",
                    b.loss,
                    c.loss
                );
                assert!(close(b.grad[0], c.grad[1], 1e-14), "{x} {y}");
            }
        }
    }

    #[test]
    fn cross_entropy_by_hand() {
        let o = ce(&[0.0; 8], 4, &[3, 0], Opts::default());
        assert!(close(o.loss, 4f64.ln(), 1e-15));
        let g = [0.125, 0.125, 0.125, -0.375, -0.375, 0.125, 0.125, 0.125];
        assert!(all_close(&o.grad, &g, 1e-15));
        // Smoothing 0.2; rows [0, ln 3] (p = 1/4, 3/4) label 1, [0, 0] label 0.
        let x = [0.0, 3f64.ln(), 0.0, 0.0];
        let o = ce(&x, 2, &[1, 0], opts(|o| o.label_smoothing = 0.2));
        assert!(all_close(
            &o.per_element,
            &[0.3975433013185919, LN_2],
            1e-15
        ));
        assert!(close(o.loss, 0.5453452409392686, 1e-15));
        assert!(all_close(&o.grad, &[0.075, -0.075, -0.2, 0.2], 1e-14));
        // Class weights [1, 3]: rows 3 (-ln 3/4) and ln 2, Mean over 3 + 1.
        let o = ce(
            &x,
            2,
            &[1, 0],
            opts(|o| o.class_weights = Some(&[1.0, 3.0])),
        );
        assert!(all_close(
            &o.per_element,
            &[0.8630462173553427, LN_2],
            1e-15
        ));
        assert!(close(o.loss, 0.389048349478822, 1e-15) && o.partial.weight == 4.0);
        // z-loss on [0, 0]: ln 2 + 0.1 ln² 2.
        let o = ce(&[0.0, 0.0], 2, &[0], opts(|o| o.z_loss = 0.1));
        assert!(close(o.loss, LN_2 + 0.1 * LN_2 * LN_2, 1e-15));
        // Softcap 2 maps 2 atanh(0.5) to 1.
        let x = [2.0 * 0.5f64.atanh(), 0.0];
        let capped = ce(&x, 2, &[1], opts(|o| o.softcap = Some(2.0))).loss;
        assert!(close(
            capped,
            ce(&[1.0, 0.0], 2, &[1], Opts::default()).loss,
            1e-14
        ));
    }

    #[test]
    fn cross_entropy_ignore_and_non_finite_rows() {
        let o = ce(
            &[5.0, 0.0, 0.0, 0.0],
            2,
            &[1, 0],
            opts(|o| o.ignore_index = Some(1)),
        );
        assert_eq!((o.per_element[0], o.partial.weight), (0.0, 1.0));
        let err = ce_err(&[0.0, 0.0], 2, &[-100], opts(|o| o.ignore_index = None));
        assert_eq!(
            err,
            LossError::LabelOutOfRange {
                index: 0,
                label: -100,
                classes: 2
            }
        );
        // A masked class is harmless; a masked target costs +inf, finite gradient.
        let o = ce(&[0.0, 0.0, -INF], 3, &[0], Opts::default());
        assert!(close(o.loss, LN_2, 1e-15) && o.grad == vec![-0.5, 0.5, 0.0]);
        let o = ce(&[0.0, -INF], 2, &[1], Opts::default());
        assert_eq!((o.loss, o.grad), (INF, vec![1.0, -1.0]));
        for bad in [[f64::NAN, 0.0], [INF, 0.0], [-INF, -INF]] {
            let o = ce(&[bad[0], bad[1], 0.0, 0.0], 2, &[1, 0], Opts::default());
            assert!(o.per_element[0].is_nan() && o.grad[..2].iter().all(|g| g.is_nan()));
            assert!(close(o.per_element[1], LN_2, 1e-15) && o.grad[2..] == [-0.25, 0.25]);
        }
    }

    #[test]
    fn confident_row_keeps_relative_accuracy() {
        // ln(1 + e^-40) = 4.248354255291589e-18, whatever the shift.
        let tiny = 4.248354255291589e-18;
        for x in [[0.0, -40.0], [100.0, 60.0]] {
            let o = ce(&x, 2, &[0], Opts::default());
            assert!(close(o.loss, tiny, 1e-14), "{}", o.loss);
            assert!(close(o.grad[0], -tiny, 1e-14) && close(o.grad[1], tiny, 1e-14));
        }
    }

    #[test]
    fn dense_matches_sparse_and_allows_masked_zero_targets() {
        let x = [0.3, -1.2, 2.0, 0.5, 0.5, -0.7];
        let one_hot = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let o = opts(|o| {
            (o.reduction, o.class_weights) = (SUM, Some(&[0.5, 2.0, 1.5][..]));
            (o.label_smoothing, o.z_loss, o.softcap) = (0.1, 0.01, Some(3.0));
        });
        let (s, d) = (
            ce(&x, 3, &[2, 0], o),
            cross_entropy_dense(&x, 3, &one_hot, &o).unwrap(),
        );
        assert!(close(d.loss, s.loss, 1e-14) && all_close(&d.grad, &s.grad, 1e-13));
        let t = [0.5, 0.5, 0.0];
        let o = cross_entropy_dense(&[0.0, 0.0, -INF], 3, &t, &Opts::default()).unwrap();
        assert!(close(o.loss, LN_2, 1e-15) && o.grad == vec![0.0, 0.0, 0.0]);
        let err = cross_entropy_dense(&x, 3, &t, &Opts::default()).unwrap_err();
        assert_eq!(err, len_err("targets", 6, 3));
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = [0.3, -1.2, 2.0, 0.5, 4.0, -0.7, 1.1, 0.0, -2.2];
        let t = [0.2, 0.0, 0.8, 0.1, 0.6, 0.3, 0.0, 1.0, 0.0];
        let y = [0.0, 1.0, 0.3, 0.9, 0.5, 0.0, 1.0, 0.2, 0.7];
        let (w, w9) = ([0.5, 2.0, 1.5], [0.5, 2.0, 1.5].repeat(3));
        let o = opts(|o| {
            (o.class_weights, o.label_smoothing) = (Some(&[0.5, 2.0, 1.5][..]), 0.1);
            (o.z_loss, o.softcap) = (0.01, Some(3.0));
        });
        let p: Vec<f64> = x.iter().map(|&v| sigmoid(v)).collect();
        let losses: [(&[f64], LossFn); 5] = [
            (&x, &|x| ce(x, 3, &[2, -100, 1], o)),
            (&x, &|x| cross_entropy_dense(x, 3, &t, &o).unwrap()),
            (&x, &|x| {
                binary_cross_entropy_with_logits(x, &y, Some(&w9), Some(&w), MEAN, NAN).unwrap()
            }),
            (&p, &|p| bce(p, &y, None, MEAN).unwrap()),
            (&x, &|x| squared_error(x, &y, MEAN, NAN).unwrap()),
        ];
        for (k, (at, f)) in losses.iter().enumerate() {
            let grad = f(at).grad;
            for (i, &g) in grad.iter().enumerate() {
                let h = 1e-6;
                let (mut a, mut b) = (at.to_vec(), at.to_vec());
                (a[i], b[i]) = (a[i] + h, b[i] - h);
                let fd = (f(&a).loss - f(&b).loss) / (2.0 * h);
                assert!(
                    (fd - g).abs() < 1e-7 * (1.0 + fd.abs()),
                    "{k} {i}: {fd} {g}"
                );
            }
        }
    }

    #[test]
    fn cross_entropy_validation_order() {
        let (d, z4, l) = (Opts::default(), [0.0; 4], [0, 7]);
        assert_eq!(ce_err(&z4, 0, &[0], d), LossError::ZeroClasses);
        let err = ce_err(&[0.0; 5], 2, &[0], d);
        assert_eq!(err, LossError::NotDivisible { len: 5, classes: 2 });
        assert_eq!(ce_err(&z4, 2, &[0], d), len_err("labels", 2, 1));
        let err = ce_err(&z4, 2, &l, opts(|o| o.class_weights = Some(&[1.0])));
        assert_eq!(err, len_err("class_weights", 2, 1));
        let bad: [(Opts, (&str, Option<usize>)); 6] = [
            (
                opts(|o| o.class_weights = Some(&[1.0, f64::NAN])),
                ("class_weights", Some(1)),
            ),
            (opts(|o| o.label_smoothing = 1.5), ("label_smoothing", None)),
            (
                opts(|o| o.label_smoothing = f64::NAN),
                ("label_smoothing", None),
            ),
            (opts(|o| o.z_loss = -1.0), ("z_loss", None)),
            (opts(|o| o.softcap = Some(0.0)), ("softcap", None)),
            (
                opts(|o| o.reduction = Reduction::DivideBy(0.0)),
                ("reduction", None),
            ),
        ];
        for (o, want) in bad {
            assert_eq!(option_of(ce_err(&z4, 2, &l, o)), want);
        }
        let oob = |index, label| LossError::LabelOutOfRange {
            index,
            label,
            classes: 2,
        };
        assert_eq!(ce_err(&z4, 2, &l, d), oob(1, 7));
        assert_eq!(ce_err(&z4, 2, &[-1, 2], d), oob(0, -1));
    }

    #[test]
    fn primitives() {
        let x = [0.0, 3f64.ln(), -INF, -INF];
        let lse = log_sum_exp(&x, 2).unwrap();
        assert!(close(lse[0], 4f64.ln(), 1e-15) && lse[1] == -INF);
        let p = softmax(&x, 2).unwrap();
        assert!(all_close(&p[..2], &[0.25, 0.75], 1e-15) && p[2..].iter().all(|v| v.is_nan()));
        let lp = log_softmax(&x[..2], 2).unwrap();
        assert!(all_close(&lp, &[-(4f64.ln()), 0.75f64.ln()], 1e-15));
        assert!(log_sum_exp(&[1.0, f64::NAN], 2).unwrap()[0].is_nan());
        assert_eq!(softmax(&x, 0).unwrap_err(), LossError::ZeroClasses);
        let err = log_softmax(&x, 3).unwrap_err();
        assert_eq!(err, LossError::NotDivisible { len: 4, classes: 3 });
        assert!(log_sum_exp(&[], 3).unwrap().is_empty());
    }
}
