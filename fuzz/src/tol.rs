//! Tolerances of the comparison with the `f64` oracle.
//!
//! # The rule
//!
//! A kernel computing in `T` (`f32` or `f64`) is compared with the oracle,
//! which computes in `f64` from the same (widened, hence exact) inputs.
//! Every value is checked against an **absolute** tolerance
//!
//! ```text
//! tol = REL_T · magnitude + floor_T
//! ```
//!
//! where `magnitude` is the sum of the absolute values of the terms the
//! formula adds up (computed by the harness from the inputs, in `f64`) —
//! the classic bound on the rounding error of a sum, which covers
//! cancellation: a result that is the small difference of large terms gets
//! a tolerance scaled by the large terms, never by itself.
//!
//! - `REL_T = 1024 · eps_T`: `1.2e-4` for `f32` (the "relative ~1e-4 for
//!   `f32`" of the issue), `2.3e-13` for `f64`. The kernels' own error is a
//!   few ulp per operation (vector `exp`/`ln` of a few ulp, one rounding per
//!   arithmetic operation, `f64` accumulation of the sums), so 1024 ulp of
//!   headroom never flags a correct kernel, and still flags any algorithmic
//!   loss of precision (a confidently correct cross-entropy row computed as
//!   `lse - z_y`, `ln(1 - p)` instead of `ln_1p(-p)`, an unscaled
//!   reduction…), which shows up as errors of 1e-3 to 100 %.
//! - Losses of non-negative terms: the magnitude is the loss itself, so the
//!   reduced loss is checked **relatively** (`1.2e-4` for `f32`).
//! - Gradients: the magnitude of element `j` is the sum of the absolute
//!   values of the terms of `∂loss/∂x_j` (e.g. `|w| (|1-y| + |lw| σ(-x))`
//!   for BCE with logits, `(1-ε) w_y (p_j + [j=y]) + (ε/C)(W p_j + w_j) +
//!   2 λ |lse| p_j` for cross entropy), times the reduction's scale: an
//!   absolute tolerance scaled by the largest term of that gradient element.
//! - With a softcap, the capped logits `s·tanh(x/s)` are computed in `T`;
//!   their absolute error `E_z = 8 eps_T max|z|` shifts every `ln p` by up to
//!   `2 E_z`, which is added; the derivative `1 - tanh²` has an absolute
//!   error of a few `eps_T`, added as `64 eps_T` to the factor.
//! - `floor_T = 16 · MIN_POSITIVE_T` per term: results in the subnormal
//!   range may be flushed or rounded differently.
//!
//! Non-finite results must have the same class (NaN, `+inf`, `-inf`) as the
//! oracle's value rounded to `T` (so an `f64` value beyond `f32::MAX` must
//! be `+inf` in `f32`).
//!
//! # The relaxation
//!
//! When an intermediate quantity of an element's formula exceeds `T::MAX`
//! (e.g. `x - y` of two `f32` near `±3e38`, `w · term` with `w = 3e38`), the
//! kernel legitimately overflows where the `f64` oracle does not; the values
//! that depend on that element (its gradient, the reduced loss and partial
//! sum) are then not compared. Such elements are flagged per family by
//! `overflows_t`.

use crate::elem::Elem;

/// Relative part of the tolerance.
pub fn rel<T: Elem>() -> f64 {
    1024.0 * T::EPS
}

/// Relative error of an `f64` sum of `n` non-negative terms without
/// compensation (`(n - 1) eps_f64`, the worst case of a sequential sum),
/// added to `rel` for reduced losses and partial sums: an `f64` kernel
/// summing 70 000 terms per lane legitimately drifts beyond `1024 eps`.
pub fn sum_rel(n: usize) -> f64 {
    n as f64 * f64::EPSILON
}

/// Whether gradients are not compared for this reduction scale `1/divisor`:
/// see [`crate::known::GRAD_SCALE_OVERFLOW`] (the scale overflows `T`) and
/// [`crate::known::ORACLE_GRAD_RECIPROCAL_OVERFLOW`] (it overflows `f64`).
pub fn scale_overflows<T: Elem>(scale: f64) -> bool {
    (crate::known::GRAD_SCALE_OVERFLOW && T::from_f64(scale).to_f64().is_infinite())
        || (crate::known::ORACLE_GRAD_RECIPROCAL_OVERFLOW && scale.is_infinite())
        || (crate::known::TINY_DIVIDE_BY_UNDERFLOW && scale > T::MAX.sqrt().sqrt())
}

/// Absolute floor per term.
pub fn floor<T: Elem>() -> f64 {
    16.0 * T::MIN_POS
}

/// Whether `x` does not fit in `T` (beyond `T::MAX`).
pub fn overflows_t<T: Elem>(x: f64) -> bool {
    x.abs() > T::MAX
}

/// `tol` with a NaN (from `inf · 0` in a magnitude) replaced by `+inf`:
/// such a value is only class-checked.
pub fn sane(tol: f64) -> f64 {
    if tol.is_nan() {
        f64::INFINITY
    } else {
        tol
    }
}
