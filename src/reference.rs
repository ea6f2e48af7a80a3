//! Scalar `f64` reference oracles: the loss formulas written out plainly,
//! one element (or one row) at a time.
//!
//! Each function returns an [`Output`]: the reduced loss, its gradient with
//! respect to the input, the unreduced losses and the [`Partial`]. The SIMD
//! kernels are tested against these functions, and users and fuzzers can
//! call them too. They allocate and are slow; they are meant to be easy to
//! check, not fast.
//!
//! # Formulas
//!
//! Maximum likelihood (`seeds/000_*.txt`) gives one loss for each
//! likelihood model:
//!
//! - **Squared error** (eq. 7, Gaussian noise): `l_i = (x_i - y_i)²`, with
//!   gradient `2 (x_i - y_i)`.
//! - **Binary cross entropy** (eq. 12, Bernoulli outcome):
//!   `l_i = -[y_i ln p_i + (1 - y_i) ln(1 - p_i)]`, with gradient
//!   `(p_i - y_i) / (p_i (1 - p_i))`. With logits `x_i` and `p_i = σ(x_i)`:
//!   `l_i = (1 - y_i) x_i + softplus(-x_i)`, with gradient `σ(x_i) - y_i`.
//! - **Softmax cross entropy** (eq. 13, categorical outcome over `C` classes):
//!   `row_i = -Σ_c t_ic ln softmax(z_i)_c`, and with an integer label
//!   `y_i` (one-hot `t`) `row_i = lse(z_i) - z_iy`, where
//!   `lse(z) = ln Σ_c e^{z_c}`. The gradient with respect to `z_ic` is
//!   `(Σ_k t_ik) softmax(z_i)_c - t_ic`.
//!
//! # PyTorch options
//!
//! The values follow PyTorch (`mse_loss`, `binary_cross_entropy`,
//! `binary_cross_entropy_with_logits`, `cross_entropy`):
//!
//! - BCE clamps each logarithm at `-100`, and its gradient divides by
//!   `max(p (1 - p), 1e-12)` (the `f32` constant, also for `f64`).
//!   Per-element weights `w_i` multiply loss and gradient.
//! - BCE with logits: `pos_weight` (one per column of the input viewed as
//!   `[n / P, P]`) scales the positive term: with `lw = 1 + (pw - 1) y`,
//!   `l = w [(1 - y) x + lw softplus(-x)]`, gradient `w [(1 - y) - lw σ(-x)]`.
//! - Cross entropy with labels: class weights `w_c`, `ignore_index` (such
//!   rows have loss 0, gradient 0, and do not count in the mean), label
//!   smoothing `ε`: a kept row is
//!   `(1 - ε) w_y (-logp_y) + (ε / C) Σ_c w_c (-logp_c)`, and `Mean` divides
//!   by `Σ w_y` over the kept rows. Two extensions PyTorch lacks: the z-loss
//!   `z_loss · lse²` added to each kept row, and the softcap
//!   `z = s tanh(x / s)` applied to the logits first.
//! - Cross entropy with probability targets: smoothing acts on the target,
//!   `t'_c = (1 - ε) t_c + ε / C`, `row = -Σ_c w_c t'_c logp_c (+ z_loss · lse²)`,
//!   and `Mean` divides by the row count. A term with `w_c t'_c = 0` counts
//!   0, so a masked `-inf` logit with zero target probability is allowed
//!   (PyTorch gives NaN there).
//!
//! # Conventions
//!
//! - `Reduction::Mean` divides by the denominator `D` (element count, summed
//!   weight of the kept labels, or row count), `Sum` by 1, `DivideBy(d)` by
//!   `d`. If the divisor is 0 the loss is `sum / 0` under [`EmptyMean::Nan`]
//!   and `0` under [`EmptyMean::Zero`]; the gradient is all zeros.
//!   [`Output::partial`] always holds `(sum, D)`.
//! - Log-sum-exp is computed as `M + ln S` with `M = max_c z_c` and
//!   `S = Σ_c e^{z_c - M}`; `ln S = ln_1p(Σ_{c ≠ k} e^{z_c - M})` with `k`
//!   the first maximum, so `-logp_c = (M - z_c) + ln S` is a sum of two
//!   non-negative terms and a confidently correct row (loss ~1e-18) keeps
//!   its relative accuracy.
//! - A row holding NaN or `+inf` (after the softcap) has NaN log-sum-exp,
//!   softmax, loss and gradient. A row of all `-inf` has log-sum-exp `-inf`
//!   and NaN softmax, loss and gradient. A `-inf` logit elsewhere is legal.
//! - Errors are checked in this order: shapes, options, reduction, then the
//!   values (probabilities, labels); the first offending index is reported.
//!
//! ```
//! use loss_kernels::reference::{self, CrossEntropyOptions};
//! use loss_kernels::{EmptyMean, Reduction};
//!
//! # fn main() -> Result<(), loss_kernels::LossError> {
//! // Eq. 7: the mean of (x - y)², and its gradient 2 (x - y) / n.
//! let mse = reference::squared_error(&[1.0, 3.0], &[0.0, 0.0], Reduction::Mean, EmptyMean::Nan)?;
//! assert_eq!(mse.loss, 5.0);
//! assert_eq!(mse.grad, vec![1.0, 3.0]);
//! assert_eq!(mse.per_element, vec![1.0, 9.0]);
//!
//! // Eq. 12: predicting p = 0.5 costs ln 2 whatever the outcome.
//! let bce = reference::binary_cross_entropy(&[0.5, 0.5], &[1.0, 0.0], None, Reduction::Mean, EmptyMean::Nan)?;
//! assert!((bce.loss - 2f64.ln()).abs() < 1e-15);
//!
//! // Eq. 13: equal logits over 3 classes cost ln 3; the ignored row does not count.
//! let ce = reference::cross_entropy(&[0.0; 6], 3, &[2, -100], &CrossEntropyOptions::default())?;
//! assert!((ce.loss - 3f64.ln()).abs() < 1e-15);
//! assert_eq!(ce.partial.weight, 1.0);
//! assert_eq!(ce.per_element[1], 0.0);
//! # Ok(())
//! # }
//! ```

use crate::{EmptyMean, LossError, Partial, Reduction};

/// PyTorch's floor of `p (1 - p)` in the BCE gradient: the `f32` constant
/// `1e-12` (`9.999999960041972e-13`), which PyTorch uses for `f64` too.
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

/// Options of [`cross_entropy`] and [`cross_entropy_dense`].
///
/// The default is PyTorch's: `Mean`, NaN for an empty mean, no class
/// weights, `ignore_index = Some(-100)`, no smoothing, no z-loss, no softcap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossEntropyOptions<'a> {
    /// How the per-row losses are reduced.
    pub reduction: Reduction,
    /// What `Mean` returns when its denominator is 0.
    pub empty_mean: EmptyMean,
    /// One weight per class (finite, `>= 0`); `None` means all 1.
    pub class_weights: Option<&'a [f64]>,
    /// Rows with this label are ignored (integer labels only); `None`
    /// ignores nothing.
    pub ignore_index: Option<i64>,
    /// Label smoothing `ε` in `[0, 1]`.
    pub label_smoothing: f64,
    /// Weight of the z-loss `lse²` per kept row (finite, `>= 0`).
    pub z_loss: f64,
    /// Softcap `s` (finite, `> 0`): the logits become `s tanh(x / s)`.
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

fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), LossError> {
    if expected == found {
        Ok(())
    } else {
        Err(LossError::LengthMismatch { what, expected, found })
    }
}

fn check_non_negative(option: &'static str, index: Option<usize>, value: f64) -> Result<(), LossError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(LossError::InvalidOption { option, index, value, expected: "a finite value >= 0" })
    }
}

fn check_reduction(reduction: Reduction) -> Result<(), LossError> {
    match reduction {
        Reduction::DivideBy(d) if !(d.is_finite() && d > 0.0) => Err(LossError::InvalidOption {
            option: "reduction",
            index: None,
            value: d,
            expected: "Reduction::DivideBy(d) with d finite and > 0",
        }),
        _ => Ok(()),
    }
}

/// Sum with Neumaier compensation (the plain sum if that is not finite).
fn sum(values: &[f64]) -> f64 {
    let naive: f64 = values.iter().sum();
    if !naive.is_finite() {
        return naive;
    }
    let (mut s, mut c) = (0.0_f64, 0.0_f64);
    for &v in values {
        let t = s + v;
        c += if s.abs() >= v.abs() { (s - t) + v } else { (v - t) + s };
        s = t;
    }
    s + c
}

/// Reduces the unreduced losses and scales the raw (sum-reduction) gradient.
fn finish(per_element: Vec<f64>, mut grad: Vec<f64>, mean_denominator: f64, reduction: Reduction, empty_mean: EmptyMean) -> Output {
    let total = sum(&per_element);
    let divisor = match reduction {
        Reduction::Mean => mean_denominator,
        Reduction::Sum => 1.0,
        Reduction::DivideBy(d) => d,
    };
    let loss = if divisor == 0.0 && empty_mean == EmptyMean::Zero { 0.0 } else { total / divisor };
    if divisor == 0.0 {
        grad.fill(0.0);
    } else {
        let scale = 1.0 / divisor;
        grad.iter_mut().for_each(|g| *g *= scale);
    }
    Output { loss, grad, per_element, partial: Partial { sum: total, weight: mean_denominator } }
}

/// Squared error (seed eq. 7), PyTorch's `mse_loss`: per element `(x - y)²`,
/// gradient `2 (x - y) / divisor`, `Mean` denominator `n`.
///
/// # Errors
/// [`LossError::LengthMismatch`] (`"target"`); [`LossError::InvalidOption`]
/// for a bad `Reduction::DivideBy`.
pub fn squared_error(pred: &[f64], target: &[f64], reduction: Reduction, empty_mean: EmptyMean) -> Result<Output, LossError> {
    check_len("target", pred.len(), target.len())?;
    check_reduction(reduction)?;
    let diff: Vec<f64> = pred.iter().zip(target).map(|(&x, &y)| x - y).collect();
    let per = diff.iter().map(|d| d * d).collect();
    let grad = diff.iter().map(|d| 2.0 * d).collect();
    Ok(finish(per, grad, pred.len() as f64, reduction, empty_mean))
}

/// Binary cross entropy on probabilities (seed eq. 12), PyTorch's
/// `binary_cross_entropy`: per element
/// `-w (y max(ln p, -100) + (1 - y) max(ln(1 - p), -100))`, gradient
/// `w (p - y) / max(p (1 - p), 1e-12)` over the divisor, `Mean` denominator `n`.
///
/// # Errors
/// [`LossError::LengthMismatch`] (`"target"`, `"weight"`);
/// [`LossError::InvalidOption`] for a bad `Reduction::DivideBy`;
/// [`LossError::ProbabilityOutOfRange`] for the first input or target
/// outside `[0, 1]` or NaN (input before target at the same index).
pub fn binary_cross_entropy(input: &[f64], target: &[f64], weight: Option<&[f64]>, reduction: Reduction, empty_mean: EmptyMean) -> Result<Output, LossError> {
    let n = input.len();
    check_len("target", n, target.len())?;
    if let Some(w) = weight {
        check_len("weight", n, w.len())?;
    }
    check_reduction(reduction)?;
    for (index, (&p, &y)) in input.iter().zip(target).enumerate() {
        for (what, value) in [("input", p), ("target", y)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(LossError::ProbabilityOutOfRange { what, index, value });
            }
        }
    }
    let w: Vec<f64> = weight.map_or_else(|| vec![1.0; n], <[f64]>::to_vec);
    let mut per = Vec::with_capacity(n);
    let mut grad = Vec::with_capacity(n);
    for ((&p, &y), &w) in input.iter().zip(target).zip(&w) {
        per.push(-w * (y * p.ln().max(-100.0) + (1.0 - y) * (-p).ln_1p().max(-100.0)));
        grad.push(w * (p - y) / (p * (1.0 - p)).max(BCE_EPS));
    }
    Ok(finish(per, grad, n as f64, reduction, empty_mean))
}

/// `σ(u) = 1 / (1 + e^{-u})`, without overflow.
fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

/// Binary cross entropy on logits, PyTorch's
/// `binary_cross_entropy_with_logits`: with `pw = pos_weight[i % P]` (1 if
/// none) and `lw = 1 + (pw - 1) y`, per element
/// `w ((1 - y) x + lw softplus(-x))` where
/// `softplus(-x) = max(-x, 0) + ln(1 + e^{-|x|})`; gradient
/// `w ((1 - y) - lw σ(-x))` over the divisor; `Mean` denominator `n`.
///
/// # Errors
/// [`LossError::LengthMismatch`] (`"target"`, `"weight"`);
/// [`LossError::PosWeightLength`] if `pos_weight` is empty or its length
/// does not divide `n`; [`LossError::InvalidOption`] for a negative or
/// non-finite `pos_weight` value or a bad `Reduction::DivideBy`.
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
    if let Some(w) = weight {
        check_len("weight", n, w.len())?;
    }
    if let Some(pw) = pos_weight {
        if pw.is_empty() || n % pw.len() != 0 {
            return Err(LossError::PosWeightLength { input_len: n, found: pw.len() });
        }
        for (i, &v) in pw.iter().enumerate() {
            check_non_negative("pos_weight", Some(i), v)?;
        }
    }
    check_reduction(reduction)?;
    let w: Vec<f64> = weight.map_or_else(|| vec![1.0; n], <[f64]>::to_vec);
    let pw: Vec<f64> = match pos_weight {
        Some(pw) => pw.iter().copied().cycle().take(n).collect(),
        None => vec![1.0; n],
    };
    let mut per = Vec::with_capacity(n);
    let mut grad = Vec::with_capacity(n);
    for (((&x, &y), &w), &pw) in input.iter().zip(target).zip(&w).zip(&pw) {
        let lw = 1.0 + (pw - 1.0) * y;
        let softplus_neg_x = (-x).max(0.0) + (-x.abs()).exp().ln_1p();
        per.push(w * ((1.0 - y) * x + lw * softplus_neg_x));
        grad.push(w * ((1.0 - y) - lw * sigmoid(-x)));
    }
    Ok(finish(per, grad, n as f64, reduction, empty_mean))
}

/// Checks `classes` and the logits length; returns the row count.
fn rows_of(len: usize, classes: usize) -> Result<usize, LossError> {
    if classes == 0 {
        return Err(LossError::ZeroClasses);
    }
    if len % classes != 0 {
        return Err(LossError::NotDivisible { len, classes });
    }
    Ok(len / classes)
}

/// Validates the cross-entropy options (not `ignore_index`) in contract order.
fn check_ce_options(classes: usize, opts: &CrossEntropyOptions) -> Result<(), LossError> {
    if let Some(w) = opts.class_weights {
        check_len("class_weights", classes, w.len())?;
        for (c, &v) in w.iter().enumerate() {
            check_non_negative("class_weights", Some(c), v)?;
        }
    }
    let eps = opts.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        return Err(LossError::InvalidOption { option: "label_smoothing", index: None, value: eps, expected: "a value in [0, 1]" });
    }
    check_non_negative("z_loss", None, opts.z_loss)?;
    if let Some(s) = opts.softcap {
        if !(s.is_finite() && s > 0.0) {
            return Err(LossError::InvalidOption { option: "softcap", index: None, value: s, expected: "a finite value > 0" });
        }
    }
    check_reduction(opts.reduction)
}

/// `(M, ln S)` of a row: `M = max_c z_c`, `S = Σ_c e^{z_c - M}`, with
/// `ln S = ln_1p(Σ_{c ≠ k} e^{z_c - M})` (`k` the first maximum, whose term
/// is exactly 1). NaN or `+inf` anywhere gives `(NaN, NaN)`; a row of all
/// `-inf` has no term, `S = 0`: `(-inf, -inf)`.
fn max_and_ln_sum(z: &[f64]) -> (f64, f64) {
    if z.iter().any(|&v| v.is_nan() || v == f64::INFINITY) {
        return (f64::NAN, f64::NAN);
    }
    let mut first_max = None;
    let mut m = f64::NEG_INFINITY;
    for (c, &v) in z.iter().enumerate() {
        if v > m {
            m = v;
            first_max = Some(c);
        }
    }
    let Some(k) = first_max else {
        return (f64::NEG_INFINITY, f64::NEG_INFINITY);
    };
    let rest: f64 = z.iter().enumerate().filter(|&(c, _)| c != k).map(|(_, &v)| (v - m).exp()).sum();
    (m, rest.ln_1p())
}

/// One row of logits after the softcap.
struct Row {
    /// `dz_c / dx_c`: 1, or `1 - tanh²(x_c / s)` with a softcap.
    dz: Vec<f64>,
    /// `ln Σ_c e^{z_c}`.
    lse: f64,
    /// `logp_c = z_c - lse`, computed as `(z_c - M) - ln S`.
    logp: Vec<f64>,
}

fn row(x: &[f64], softcap: Option<f64>) -> Row {
    let (z, dz): (Vec<f64>, Vec<f64>) = match softcap {
        None => (x.to_vec(), vec![1.0; x.len()]),
        Some(s) => x
            .iter()
            .map(|&v| {
                let t = (v / s).tanh();
                (s * t, 1.0 - t * t)
            })
            .unzip(),
    };
    let (m, ln_s) = max_and_ln_sum(&z);
    let logp = z.iter().map(|&zc| (zc - m) - ln_s).collect();
    Row { dz, lse: m + ln_s, logp }
}

/// Softmax cross entropy with integer labels (seed eq. 13 with one-hot
/// targets), PyTorch's `cross_entropy` plus z-loss and softcap. A kept row
/// (label `y` not `ignore_index`) has loss
/// `(1-ε) w_y (-logp_y) + (ε/C) Σ_c w_c (-logp_c) + z_loss lse²` (the last
/// two terms only when `ε > 0`, `z_loss > 0`) and gradient with respect to
/// `z_j` `(1-ε) w_y (p_j - [j = y]) + (ε/C)(W p_j - w_j) + 2 z_loss lse p_j`
/// (`W = Σ_c w_c`), times `1 - tanh²(x_j / s)` with a softcap, over the
/// divisor. Ignored rows: loss 0, gradient 0. `Mean` denominator: `Σ w_y`
/// over the kept rows. `per_element` holds one loss per row.
///
/// # Errors
/// In this order: [`LossError::ZeroClasses`], [`LossError::NotDivisible`],
/// [`LossError::LengthMismatch`] (`"labels"`, `"class_weights"`),
/// [`LossError::InvalidOption`] (class weights, label smoothing, z-loss,
/// softcap, reduction), [`LossError::LabelOutOfRange`] (first bad row).
pub fn cross_entropy(logits: &[f64], classes: usize, labels: &[i64], opts: &CrossEntropyOptions) -> Result<Output, LossError> {
    let rows = rows_of(logits.len(), classes)?;
    check_len("labels", rows, labels.len())?;
    check_ce_options(classes, opts)?;
    let mut targets: Vec<Option<usize>> = Vec::with_capacity(rows);
    for (index, &label) in labels.iter().enumerate() {
        if opts.ignore_index == Some(label) {
            targets.push(None);
            continue;
        }
        match usize::try_from(label) {
            Ok(y) if y < classes => targets.push(Some(y)),
            _ => return Err(LossError::LabelOutOfRange { index, label, classes }),
        }
    }
    let w: Vec<f64> = opts.class_weights.map_or_else(|| vec![1.0; classes], <[f64]>::to_vec);
    let w_total = sum(&w);
    let (eps, z_loss, c) = (opts.label_smoothing, opts.z_loss, classes as f64);
    let mut per_row = vec![0.0; rows];
    let mut grad = vec![0.0; logits.len()];
    let mut denominator = 0.0;
    let row_iter = logits.chunks_exact(classes).zip(grad.chunks_exact_mut(classes)).zip(&mut per_row).zip(&targets);
    for (((x, g), loss), &target) in row_iter {
        let Some(y) = target else { continue };
        // y < classes == w.len() == logp.len(): validated above.
        let w_y = w[y];
        denominator += w_y;
        let r = row(x, opts.softcap);
        if !r.lse.is_finite() {
            *loss = f64::NAN;
            g.fill(f64::NAN);
            continue;
        }
        let mut l = (1.0 - eps) * w_y * -r.logp[y];
        if eps > 0.0 {
            l += (eps / c) * w.iter().zip(&r.logp).map(|(wc, lp)| wc * -lp).sum::<f64>();
        }
        if z_loss > 0.0 {
            l += z_loss * r.lse * r.lse;
        }
        *loss = l;
        for (j, ((gj, &lp), (&wj, &dzj))) in g.iter_mut().zip(&r.logp).zip(w.iter().zip(&r.dz)).enumerate() {
            let p = lp.exp();
            // p_y - 1 = e^{logp_y} - 1, accurate when p_y is close to 1.
            let p_minus_onehot = if j == y { lp.exp_m1() } else { p };
            let mut v = (1.0 - eps) * w_y * p_minus_onehot;
            if eps > 0.0 {
                v += (eps / c) * (w_total * p - wj);
            }
            if z_loss > 0.0 {
                v += 2.0 * z_loss * r.lse * p;
            }
            *gj = v * dzj;
        }
    }
    Ok(finish(per_row, grad, denominator, opts.reduction, opts.empty_mean))
}

/// Softmax cross entropy with probability targets (seed eq. 13): with
/// `t'_c = (1-ε) t_c + ε/C`, a row has loss
/// `-Σ_c w_c t'_c logp_c + z_loss lse²` (terms with `w_c t'_c = 0` count 0)
/// and gradient with respect to `z_j`
/// `(Σ_c w_c t'_c) p_j - w_j t'_j + 2 z_loss lse p_j`, times the softcap
/// factor, over the divisor. `Mean` denominator: the row count.
/// `ignore_index` is not used; targets are not validated.
///
/// # Errors
/// As [`cross_entropy`], with [`LossError::LengthMismatch`] (`"targets"`,
/// expected `logits.len()`) in place of the labels checks.
pub fn cross_entropy_dense(logits: &[f64], classes: usize, targets: &[f64], opts: &CrossEntropyOptions) -> Result<Output, LossError> {
    let rows = rows_of(logits.len(), classes)?;
    check_len("targets", logits.len(), targets.len())?;
    check_ce_options(classes, opts)?;
    let w: Vec<f64> = opts.class_weights.map_or_else(|| vec![1.0; classes], <[f64]>::to_vec);
    let (eps, z_loss, c) = (opts.label_smoothing, opts.z_loss, classes as f64);
    let mut per_row = vec![0.0; rows];
    let mut grad = vec![0.0; logits.len()];
    let row_iter = logits.chunks_exact(classes).zip(targets.chunks_exact(classes)).zip(grad.chunks_exact_mut(classes)).zip(&mut per_row);
    for (((x, t), g), loss) in row_iter {
        let r = row(x, opts.softcap);
        if !r.lse.is_finite() {
            *loss = f64::NAN;
            g.fill(f64::NAN);
            continue;
        }
        // w_c t'_c
        let wt: Vec<f64> = w.iter().zip(t).map(|(&wc, &tc)| wc * if eps > 0.0 { (1.0 - eps) * tc + eps / c } else { tc }).collect();
        let mut l = -wt.iter().zip(&r.logp).map(|(&a, &lp)| if a == 0.0 { 0.0 } else { a * lp }).sum::<f64>();
        if z_loss > 0.0 {
            l += z_loss * r.lse * r.lse;
        }
        *loss = l;
        let wt_total: f64 = wt.iter().sum();
        for ((gj, &lp), (&wtj, &dzj)) in g.iter_mut().zip(&r.logp).zip(wt.iter().zip(&r.dz)) {
            let p = lp.exp();
            let mut v = wt_total * p - wtj;
            if z_loss > 0.0 {
                v += 2.0 * z_loss * r.lse * p;
            }
            *gj = v * dzj;
        }
    }
    Ok(finish(per_row, grad, rows as f64, opts.reduction, opts.empty_mean))
}

/// `ln Σ_c e^{z_c}` of each row of `[rows, classes]` logits (NaN if the row
/// holds NaN or `+inf`, `-inf` if it is all `-inf`).
///
/// # Errors
/// [`LossError::ZeroClasses`], [`LossError::NotDivisible`].
pub fn log_sum_exp(logits: &[f64], classes: usize) -> Result<Vec<f64>, LossError> {
    rows_of(logits.len(), classes)?;
    Ok(logits
        .chunks_exact(classes)
        .map(|z| {
            let (m, ln_s) = max_and_ln_sum(z);
            m + ln_s
        })
        .collect())
}

/// `z_c - lse(z)` for each element of `[rows, classes]` logits.
///
/// # Errors
/// [`LossError::ZeroClasses`], [`LossError::NotDivisible`].
pub fn log_softmax(logits: &[f64], classes: usize) -> Result<Vec<f64>, LossError> {
    rows_of(logits.len(), classes)?;
    Ok(logits.chunks_exact(classes).flat_map(|z| row(z, None).logp).collect())
}

/// `e^{z_c - lse(z)}` for each element of `[rows, classes]` logits.
///
/// # Errors
/// [`LossError::ZeroClasses`], [`LossError::NotDivisible`].
pub fn softmax(logits: &[f64], classes: usize) -> Result<Vec<f64>, LossError> {
    Ok(log_softmax(logits, classes)?.into_iter().map(f64::exp).collect())
}
