//! Helpers shared by the oracle, identity and cross-entropy test suites:
//! element types with their tolerances, a deterministic RNG, comparisons
//! that understand NaN / infinities / overflow, and label conversions.
//!
//! # Tolerances (the one place they are defined)
//!
//! The kernels are compared with the scalar `f64` oracles of
//! `loss_kernels::reference`, evaluated on the *same* inputs (an `f32` input
//! is widened exactly to `f64` first), so the only differences are the
//! kernels' own rounding and the `exp`/`ln`/`log1p`/`tanh` approximations.
//!
//! - `f32` squared error: `(x - y)` rounds once (½ ulp), squaring adds ½ ulp
//!   and doubles the first; the sum is accumulated in `f64` and rounded once
//!   more at the end: at most ~2 ulp. We allow **4 eps** relative, for the
//!   loss, the per-element values, the partial sums and the gradient
//!   (`2 (x - y) / n`: three roundings).
//! - `f32` BCE, BCE with logits, cross entropy: every term is a sum of
//!   non-negative parts, each a couple of `exp`/`ln`/`log1p` (a few ulp each,
//!   stated by the SIMD math layer) and a few products, so the relative error
//!   of a term (and of any sum of terms) is a few tens of ulp at most: we
//!   allow **1e-5 relative** (~84 ulp).
//! - Gradients: `|g - g_ref| <= rel |g_ref| + abs · max_j |g_ref_j|`; the
//!   absolute part (`1e-6` for `f32`) covers components that are formed as a
//!   difference (softmax minus target, `(1 - y) - lw σ(-x)`), whose rounding
//!   error is relative to the magnitude of the row/batch gradient, not to the
//!   (possibly tiny) component itself.
//! - Log-domain values (log-sum-exp, log-softmax): an error in an argument of
//!   `exp` becomes a relative error of the result, so log-domain outputs are
//!   compared with an absolute tolerance `rel · (|value| + |row max| + 1)`;
//!   softmax values with the relative tolerance `rel · (|log p| + 1)`.
//! - `f64`: the same structure with **1e-12**; squared error **1e-13**: its
//!   `f64` terms are summed in `f64` in a different order than the oracle's,
//!   and each order errs by up to `n eps / 2` relative (n <= 300 here).
//! - A tiny absolute floor (`1e-36` for `f32`, `1e-300` for `f64`) accepts
//!   results that are flushed near the bottom of the exponent range.
//! - A finite oracle value that overflows the element type (e.g. an `f32`
//!   BCE term of 4.5e38) must be `+inf`.

#![allow(dead_code)]

pub mod check;

use loss_kernels::{Backend, EmptyMean, Float, Label, LossError, Reduction};
use proptest::prelude::*;

/// An element type under test, with its tolerances.
pub trait Elem: Float {
    /// Name for messages.
    const NAME: &'static str;
    /// Machine epsilon.
    const EPS: f64;
    /// Relative tolerance of squared-error values and gradients.
    const MSE_REL: f64;
    /// Relative tolerance of BCE / CE losses (reduced, per element, partial).
    const LOSS_REL: f64;
    /// Relative part of the gradient tolerance.
    const GRAD_REL: f64;
    /// Absolute part of the gradient tolerance, times `max |g_ref|`.
    const GRAD_ABS: f64;
    /// Results below this magnitude may be flushed.
    const TINY: f64;
}

impl Elem for f32 {
    const NAME: &'static str = "f32";
    const EPS: f64 = f32::EPSILON as f64;
    const MSE_REL: f64 = 4.0 * f32::EPSILON as f64;
    const LOSS_REL: f64 = 1e-5;
    const GRAD_REL: f64 = 1e-5;
    const GRAD_ABS: f64 = 1e-6;
    const TINY: f64 = 1e-36;
}

impl Elem for f64 {
    const NAME: &'static str = "f64";
    const EPS: f64 = f64::EPSILON;
    const MSE_REL: f64 = 1e-13;
    const LOSS_REL: f64 = 1e-12;
    const GRAD_REL: f64 = 1e-12;
    const GRAD_ABS: f64 = 1e-12;
    const TINY: f64 = 1e-300;
}

/// Every concrete backend this CPU can run (at least `Scalar`).
pub fn backends() -> Vec<Backend> {
    let b = Backend::available();
    assert!(
        b.contains(&Backend::Scalar),
        "Scalar must always be available"
    );
    b
}

/// Rounds `f64` data to the element type.
pub fn to_t<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

/// Widens element data to `f64` (exact).
pub fn to_f64<T: Float>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// `v` rounded to `T` and back: what a `T` result would hold.
pub fn round_t<T: Float>(v: f64) -> f64 {
    T::from_f64(v).to_f64()
}

/// Checks one scalar: `|got - want| <= tol` where the oracle value `want` is
/// finite in `T`; NaN must be NaN; an infinity (or a finite value that
/// overflows `T`) must be the same infinity.
pub fn check_scalar<T: Elem>(what: &dyn std::fmt::Display, got: f64, want: f64, tol: f64) {
    let want_t = round_t::<T>(want);
    if want.is_nan() {
        assert!(got.is_nan(), "{what} [{}]: got {got:e}, want NaN", T::NAME);
    } else if want_t.is_infinite() {
        assert!(
            got == want_t,
            "{what} [{}]: got {got:e}, want {want:e} (= {want_t} in {})",
            T::NAME,
            T::NAME
        );
    } else {
        let tol = tol.max(T::TINY);
        assert!(
            (got - want).abs() <= tol,
            "{what} [{}]: got {got:e}, want {want:e}, |diff| {:e} > tol {tol:e} (rel {:e})",
            T::NAME,
            (got - want).abs(),
            ((got - want) / want).abs()
        );
    }
}

/// Checks a value with a relative tolerance (plus the type's tiny floor).
pub fn check_rel<T: Elem>(what: &dyn std::fmt::Display, got: f64, want: f64, rel: f64) {
    check_scalar::<T>(what, got, want, rel * want.abs());
}

/// Checks a vector elementwise with a relative tolerance.
pub fn check_vec_rel<T: Elem>(what: &dyn std::fmt::Display, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        check_rel::<T>(&format_args!("{what}[{i}]"), g, w, rel);
    }
}

/// Largest finite magnitude in `v` (0 if none).
pub fn max_abs(v: &[f64]) -> f64 {
    v.iter()
        .filter(|x| x.is_finite())
        .fold(0.0, |m, x| m.max(x.abs()))
}

/// Checks a gradient: `|g - g_ref| <= rel |g_ref| + abs · max |g_ref| + extra_j`.
pub fn check_grad<T: Elem>(
    what: &dyn std::fmt::Display,
    got: &[f64],
    want: &[f64],
    rel: f64,
    abs: f64,
    extra: Option<&[f64]>,
) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = max_abs(want);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let e = extra.map_or(0.0, |e| e[i]);
        check_scalar::<T>(
            &format_args!("{what} grad[{i}]"),
            g,
            w,
            rel * w.abs() + abs * scale + e,
        );
    }
}

/// Whether some finite oracle term overflows `T` (the `f64` sums of `T`
/// terms may then legitimately be `+inf`).
pub fn overflows<T: Float>(terms: &[f64]) -> bool {
    terms
        .iter()
        .any(|&v| v.is_finite() && T::from_f64(v).to_f64().is_infinite())
}

/// Checks a reduced value or `f64` partial sum: as [`check_rel`], except
/// that `+inf` is accepted when a term overflows `T`.
pub fn check_sum<T: Elem>(
    what: &dyn std::fmt::Display,
    got: f64,
    want: f64,
    rel: f64,
    terms: &[f64],
) {
    if got == f64::INFINITY && overflows::<T>(terms) && !want.is_nan() {
        return;
    }
    check_rel::<T>(what, got, want, rel);
}

/// Checks an `f64` partial sum of `T` terms (not rounded to `T`): relative
/// tolerance; `+inf` is accepted when a term overflows `T`.
pub fn check_partial_sum<T: Elem>(
    what: &dyn std::fmt::Display,
    got: f64,
    want: f64,
    rel: f64,
    terms: &[f64],
) {
    if got == f64::INFINITY && overflows::<T>(terms) && !want.is_nan() {
        return;
    }
    check_scalar::<f64>(what, got, want, (rel * want.abs()).max(T::TINY));
}

/// The error an oracle and a kernel must agree on: both `Ok`, or both `Err`
/// with the same error.
pub fn check_err_parity<A, B>(
    what: &dyn std::fmt::Display,
    got: &Result<A, LossError>,
    want: &Result<B, LossError>,
) {
    match (got, want) {
        (Ok(_), Ok(_)) => {}
        // By their Debug text: an error holding a NaN value is not `==` to itself.
        (Err(g), Err(w)) => assert_eq!(
            format!("{g:?}"),
            format!("{w:?}"),
            "{what}: kernel and oracle report different errors"
        ),
        (Ok(_), Err(w)) => panic!("{what}: kernel returned Ok, oracle errs with {w:?}"),
        (Err(g), Ok(_)) => panic!("{what}: kernel errs with {g:?}, oracle returned Ok"),
    }
}

/// Deterministic pseudo-random numbers (SplitMix64).
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    pub fn normals(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
    pub fn uniforms(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.range(lo, hi)).collect()
    }
    /// A probability vector of length `n` (positive, sums to 1).
    pub fn simplex(&mut self, n: usize) -> Vec<f64> {
        let v: Vec<f64> = (0..n).map(|_| -self.uniform().max(1e-12).ln()).collect();
        let s: f64 = v.iter().sum();
        v.iter().map(|x| x / s).collect()
    }
}

/// The integer label types the tests exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    I64,
    U32,
    Usize,
}

/// What the kernel sees of an `i64` label stored as `L`, as an `i64` (the
/// crate's `Label::to_i64`: wrapping conversion into `L`, then saturating).
pub fn label_value<L: Label>(l: L) -> i64 {
    l.to_i64()
}

pub fn labels_u32(l: &[i64]) -> Vec<u32> {
    l.iter().map(|&v| v as u32).collect()
}

pub fn labels_usize(l: &[i64]) -> Vec<usize> {
    l.iter().map(|&v| v as usize).collect()
}

/// The labels the oracle must see for labels stored as `L`.
pub fn oracle_labels<L: Label>(l: &[L]) -> Vec<i64> {
    l.iter().map(|&v| v.to_i64()).collect()
}

// ---------------------------------------------------------------- strategies

/// Moderate reals: mostly `[-10, 10]`, sometimes magnitudes `2^-30..2^30`,
/// sometimes exact specials.
pub fn real() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        10 => -10.0..10.0f64,
        2 => (-30i32..30, -1.0..1.0f64).prop_map(|(e, m)| m * 2f64.powi(e)),
        1 => prop::sample::select(vec![0.0, -0.0, 1.0, -1.0, 0.5, 1e-30, -1e-30, 1e15, -1e15]),
    ]
}

/// Logits for BCE with logits: moderate, wide, and non-finite. `huge`:
/// magnitudes up to `f32::MAX` (3e38); otherwise at most ~5e36, where no
/// product of a logit with a weight (< 3) and `pos_weight` (< 5) overflows.
pub fn logit(huge: bool) -> impl Strategy<Value = f64> + Clone {
    let (max_exp, big) = if huge { (127, 3e38) } else { (122, 1e30) };
    prop_oneof![
        12 => -20.0..20.0f64,
        2 => (-30i32..max_exp, -1.0..1.0f64).prop_map(|(e, m)| m * 2f64.powi(e)),
        1 => prop::sample::select(vec![
            0.0, -0.0, 1e30, -1e30, big, -big, 88.0, -88.0, 104.0, -104.0, f64::INFINITY,
            f64::NEG_INFINITY, f64::NAN,
        ]),
    ]
}

/// Probabilities: uniform, close to 0 and 1 (including `f32` subnormals and
/// values that round to exactly 1 in `f32`), and exact specials.
pub fn prob() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        10 => 0.0..=1.0f64,
        2 => (1i32..150).prop_map(|e| 2f64.powi(-e)),
        2 => (1i32..60).prop_map(|e| 1.0 - 2f64.powi(-e)),
        1 => prop::sample::select(vec![0.0, 1.0, 0.5, 1e-12, 1e-40, 1e-44, 3.7e-44, 1.0 - 1e-7]),
    ]
}

/// Targets of BCE: hard labels or probabilities.
pub fn bce_target() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        2 => prop::sample::select(vec![0.0, 1.0]),
        2 => 0.0..=1.0f64,
        1 => prob(),
    ]
}

/// Targets of BCE with logits: as [`bce_target`] but no smaller than 2^-100
/// (when not 0): `pw · y` must not be subnormal in `f32`, where a product
/// keeps only a few significant bits (no "few ulp" bound holds there).
pub fn bce_logits_target() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        2 => prop::sample::select(vec![0.0, 1.0]),
        2 => 0.0..=1.0f64,
        1 => (1i32..=100).prop_map(|e| 2f64.powi(-e)),
        1 => (1i32..60).prop_map(|e| 1.0 - 2f64.powi(-e)),
    ]
}

/// Non-negative weights, sometimes exactly 0.
pub fn weight_value() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        8 => 0.0..3.0f64,
        1 => Just(0.0),
        1 => Just(1.0),
    ]
}

/// Every reduction, including an invalid `DivideBy` now and then.
pub fn reduction() -> impl Strategy<Value = Reduction> {
    prop_oneof![
        4 => Just(Reduction::Mean),
        3 => Just(Reduction::Sum),
        3 => (0.25..1000.0f64).prop_map(Reduction::DivideBy),
        1 => prop::sample::select(vec![0.0, -1.0, f64::NAN, f64::INFINITY]).prop_map(Reduction::DivideBy),
    ]
}

pub fn empty_mean() -> impl Strategy<Value = EmptyMean> {
    prop_oneof![Just(EmptyMean::Nan), Just(EmptyMean::Zero)]
}

/// The divisors of `n` (`n > 0`).
pub fn divisors(n: usize) -> Vec<usize> {
    (1..=n).filter(|&d| n.is_multiple_of(d)).collect()
}
