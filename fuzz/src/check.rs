//! The assertions: canaried output buffers, unchanged inputs, `Err`
//! exactly when the oracle errs, and numeric agreement.
//!
//! Every failed assertion panics with the call, the offending index, the
//! values and a description of the whole case, which is what libFuzzer
//! saves as a crash.

use std::fmt::Debug;

use loss_kernels::{Backend, LossError};

use crate::elem::Elem;

/// An output buffer inside a larger allocation whose ends (`pad` elements
/// before, `pad` after) hold the canary pattern. Writes past either end of
/// the buffer the kernel sees show up as changed canaries (ASan cannot see
/// them: they stay inside the allocation). The buffer itself starts filled
/// with the canary too, so "untouched after an error" can be checked.
pub struct Guarded<T: Elem> {
    buf: Vec<T>,
    lo: usize,
    len: usize,
}

impl<T: Elem> Guarded<T> {
    /// A buffer of `len` elements after `pad` canaries, followed by `pad` more.
    pub fn new(len: usize, pad: usize) -> Self {
        Guarded {
            buf: vec![T::canary(); len + 2 * pad],
            lo: pad,
            len,
        }
    }

    /// The buffer handed to the kernel.
    pub fn out(&mut self) -> &mut [T] {
        &mut self.buf[self.lo..self.lo + self.len]
    }

    /// The buffer, read-only.
    pub fn view(&self) -> &[T] {
        &self.buf[self.lo..self.lo + self.len]
    }

    /// Refills the buffer with the canary.
    pub fn reset(&mut self) {
        let c = T::canary();
        self.out().iter_mut().for_each(|x| *x = c);
    }

    /// Panics if a canary around the buffer changed.
    pub fn check_canaries(&self, call: &str, case: &dyn Fn() -> String) {
        let c = T::canary().bits();
        for (i, x) in self.buf.iter().enumerate() {
            let inside = i >= self.lo && i < self.lo + self.len;
            if !inside && x.bits() != c {
                let rel = i as isize - self.lo as isize;
                panic!(
                    "{call}: wrote {x:?} at offset {rel} of a {}-element output buffer (outside it)\n{}",
                    self.len,
                    case()
                );
            }
        }
    }

    /// Whether the buffer still holds only canaries.
    pub fn untouched(&self) -> bool {
        let c = T::canary().bits();
        self.view().iter().all(|x| x.bits() == c)
    }
}

/// Bit patterns of the inputs before the calls.
pub struct Snapshot(Vec<Vec<u64>>);

impl Snapshot {
    /// Records the inputs.
    pub fn of<T: Elem>(inputs: &[&[T]]) -> Self {
        Snapshot(
            inputs
                .iter()
                .map(|v| v.iter().map(|x| x.bits()).collect())
                .collect(),
        )
    }

    /// Panics if an input changed.
    pub fn check<T: Elem>(&self, inputs: &[&[T]], case: &dyn Fn() -> String) {
        for (k, (before, now)) in self.0.iter().zip(inputs).enumerate() {
            for (i, (b, x)) in before.iter().zip(now.iter()).enumerate() {
                if *b != x.bits() {
                    panic!(
                        "input #{k} was modified at index {i}: now {x:?}\n{}",
                        case()
                    );
                }
            }
        }
    }
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Error equality, with NaN values equal to each other.
pub fn same_error(a: &LossError, b: &LossError) -> bool {
    match (a, b) {
        (
            LossError::ProbabilityOutOfRange { what, index, value },
            LossError::ProbabilityOutOfRange {
                what: w2,
                index: i2,
                value: v2,
            },
        ) => what == w2 && index == i2 && same_f64(*value, *v2),
        (
            LossError::InvalidOption {
                option,
                index,
                value,
                expected,
            },
            LossError::InvalidOption {
                option: o2,
                index: i2,
                value: v2,
                expected: e2,
            },
        ) => option == o2 && index == i2 && expected == e2 && same_f64(*value, *v2),
        _ => a == b,
    }
}

/// What a call is expected to return, beyond the oracle's verdict.
#[derive(Clone, Debug)]
pub struct Expect {
    /// The oracle's error, if it rejects the input.
    pub oracle_err: Option<LossError>,
    /// The backend the call forces.
    pub backend: Backend,
}

impl Expect {
    /// The errors the call may return (empty: it must succeed). `out` is
    /// the output argument's name, expected and actual length.
    pub fn allowed(&self, out: Option<(&'static str, usize, usize)>) -> Vec<LossError> {
        let mut v = Vec::new();
        if let Some(e) = &self.oracle_err {
            v.push(e.clone());
        }
        if !self.backend.is_available() {
            v.push(LossError::BackendUnavailable {
                backend: self.backend,
            });
        }
        if let Some((what, expected, found)) = out {
            if expected != found {
                v.push(LossError::LengthMismatch {
                    what,
                    expected,
                    found,
                });
            }
        }
        v
    }
}

/// Checks that `got` errs exactly when some error is allowed, and then with
/// one of the allowed errors (each rendered through `Display`, which must not
/// panic). Returns `got` once checked.
pub fn outcome<V: Debug>(
    call: &str,
    got: Result<V, LossError>,
    allowed: &[LossError],
    case: &dyn Fn() -> String,
) -> Result<V, LossError> {
    match got {
        Ok(v) => {
            if !allowed.is_empty() {
                panic!(
                    "{call}: returned Ok({v:?}) but expected an error, one of {allowed:?}\n{}",
                    case()
                );
            }
            Ok(v)
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty());
            let known_order = crate::known::CE_REDUCTION_CHECKED_AFTER_LABELS
                && matches!(e, LossError::LabelOutOfRange { .. })
                && allowed.iter().any(|a| {
                    matches!(
                        a,
                        LossError::InvalidOption {
                            option: "reduction",
                            ..
                        }
                    )
                });
            let known_length_order = crate::known::CE_LENGTH_CHECKED_AFTER_OPTIONS
                && matches!(
                    e,
                    LossError::InvalidOption { .. }
                        | LossError::LengthMismatch {
                            what: "class_weights",
                            ..
                        }
                )
                && allowed.iter().any(|a| {
                    matches!(
                        a,
                        LossError::LengthMismatch {
                            what: "labels" | "targets",
                            ..
                        }
                    )
                });
            if !known_order && !known_length_order && !allowed.iter().any(|a| same_error(a, &e)) {
                panic!(
                    "{call}: returned Err({e:?}) (\"{msg}\") but expected {}\n{}",
                    if allowed.is_empty() {
                        "Ok".to_string()
                    } else {
                        format!("one of {allowed:?}")
                    },
                    case()
                );
            }
            Err(e)
        }
    }
}

/// Whether the `T` result `got` agrees with the oracle's `want` within `tol`:
/// `want` rounded to `T` gives the class (NaN, `+inf`, `-inf`, finite) that
/// `got` must have; finite values must be within `tol` of `want` (signed
/// zeros are equal).
///
/// Two documented limits near overflow (see `crate::known::NEAR_OVERFLOW`):
/// a result within a factor [`NEAR_OVERFLOW`] of `T::MAX` may be `±inf` of
/// its sign (an intermediate overflowed), and a result beyond `T::MAX` may
/// be NaN instead of `±inf` (two overflowed parts of opposite signs).
/// The oracle has the same limit in `f64`: where it gives `±inf`, an `f64`
/// kernel's finite result of that sign within the factor of `f64::MAX`
/// passes (session 4, `ce_dense` f64: -1.4e308 where the oracle's grouping
/// overflowed to `-inf`).
pub fn close<T: Elem>(got: T, want: f64, tol: f64) -> bool {
    let g = got.to_f64();
    let w = T::from_f64(want).to_f64();
    if crate::known::NEAR_OVERFLOW && want.is_finite() {
        if w.is_infinite() && g.is_nan() {
            return true;
        }
        if want.abs() > T::MAX / NEAR_OVERFLOW && g.is_infinite() && g.signum() == want.signum() {
            return true;
        }
    }
    if crate::known::NEAR_OVERFLOW
        && want.is_infinite()
        && g.is_finite()
        && g.abs() > f64::MAX / NEAR_OVERFLOW
        && g.signum() == want.signum()
    {
        return true;
    }
    if w.is_nan() {
        return g.is_nan();
    }
    if w.is_infinite() {
        // A finite oracle value beyond `T::MAX` rounds to ±inf; a finite
        // result still passes when the tolerance reaches it (`z_loss =
        // 1e300`; reduced values with a bound beyond `T::MAX` are checked
        // by `expect_close_scaled` for their NaN class only).
        return g == w || (want.is_finite() && g.is_finite() && (g - want).abs() <= tol);
    }
    g.is_finite() && (g - want).abs() <= tol
}

/// How close to `T::MAX` a result may overflow; see [`close`].
pub const NEAR_OVERFLOW: f64 = 16.0;

/// As [`close`] for an `f64` result (a `Partial`).
pub fn close_f64(got: f64, want: f64, tol: f64) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    if want.is_infinite() {
        return got == want;
    }
    got.is_finite() && (got - want).abs() <= tol
}

/// Panics unless `close(got, want, tol)`.
pub fn expect_close<T: Elem>(
    call: &str,
    index: Option<usize>,
    got: T,
    want: f64,
    tol: f64,
    case: &dyn Fn() -> String,
) {
    if !close(got, want, tol) {
        fail(call, index, got.to_f64(), want, tol, case);
    }
}

/// As [`expect_close`], except that when `relaxed` and the oracle's value
/// is not finite, any non-finite `got` (NaN or either infinity) passes.
pub fn expect_close_relaxed<T: Elem>(
    call: &str,
    index: Option<usize>,
    got: T,
    want: f64,
    tol: f64,
    relaxed: bool,
    case: &dyn Fn() -> String,
) {
    let w = T::from_f64(want).to_f64();
    if relaxed && !w.is_finite() && !got.to_f64().is_finite() {
        return;
    }
    expect_close(call, index, got, want, tol, case);
}

/// As [`expect_close_relaxed`] for a tolerance `raw` as the harness forms it
/// for a reduced value, before [`crate::tol::sane`]: a NaN (an `inf · 0` in
/// a magnitude) becomes `+inf` and is class-checked only, while a bound
/// beyond `T::MAX` says the inputs cannot bound the error there, nor so the
/// class: only NaN against not-NaN is checked. That is a reduction scale
/// `1 / d` lifting the rounding error past the range (2026-12-02, CI seed
/// 1, `bce_logits` f32, `DivideBy(5e-324)`: x = 1e-8, y = 0.5 has
/// `σ(x) - y = 2.5e-9`, within the documented `eps · ((1 - y) + σ)` of the
/// `0` that `f32` gives (σ(1e-8) rounds to 0.5, in PyTorch too), while the
/// oracle's `w g / d` overflows `f64` to `inf`).
pub fn expect_close_scaled<T: Elem>(
    call: &str,
    index: Option<usize>,
    got: T,
    want: f64,
    raw: f64,
    relaxed: bool,
    case: &dyn Fn() -> String,
) {
    if !unbounded::<T>(raw) {
        expect_close_relaxed(call, index, got, want, crate::tol::sane(raw), relaxed, case);
    } else if got.to_f64().is_nan() != T::from_f64(want).to_f64().is_nan() {
        fail(call, index, got.to_f64(), want, raw, case);
    }
}

/// Whether an error bound exceeds the range of `T` (false for NaN).
fn unbounded<T: Elem>(raw: f64) -> bool {
    raw > T::MAX
}

/// Panics unless `close_f64(got, want, tol)`.
pub fn expect_close_f64(call: &str, got: f64, want: f64, tol: f64, case: &dyn Fn() -> String) {
    if !close_f64(got, want, tol) {
        fail(call, None, got, want, tol, case);
    }
}

fn fail(
    call: &str,
    index: Option<usize>,
    got: f64,
    want: f64,
    tol: f64,
    case: &dyn Fn() -> String,
) -> ! {
    let at = index.map_or(String::new(), |i| format!("[{i}]"));
    panic!(
        "{call}{at}: got {got:e}, oracle {want:e}, |diff| = {:e} > tol {tol:e}\n{}",
        (got - want).abs(),
        case()
    );
}

/// A short rendering of an array for crash reports (at most 48 values).
pub fn show<T: Debug>(v: &[T]) -> String {
    if v.len() <= 48 {
        format!("{v:?}")
    } else {
        format!("(len {}) {:?} … {:?}", v.len(), &v[..40], &v[v.len() - 8..])
    }
}

#[cfg(test)]
mod tests {
    use super::{close, unbounded};

    #[test]
    fn a_bound_beyond_the_range_checks_only_nan() {
        // The finding of 2026-12-02: got 0, oracle inf, raw bound inf.
        assert!(unbounded::<f32>(f64::INFINITY));
        assert!(unbounded::<f32>(1e39));
        assert!(!unbounded::<f32>(1e38));
        assert!(!unbounded::<f64>(1e308));
        // A NaN bound (`inf · 0`) is not unbounded: `sane` makes it `+inf`
        // for `close`, which still checks the class.
        assert!(!unbounded::<f32>(f64::NAN));
        assert!(!close::<f32>(0.0, f64::INFINITY, f64::INFINITY));
        assert!(close::<f32>(1.0, 2.0, f64::INFINITY));
        assert!(!close::<f32>(f32::INFINITY, 1.0, f64::INFINITY));
    }

    #[test]
    fn an_f64_sum_near_its_max_may_overflow() {
        // The finding of 2026-12-02 (`ce_dense` f64, `partial.sum`): the
        // oracle's sum is f64::MAX, the kernel's grouping overflowed.
        use super::close_f64;
        assert!(!close_f64(f64::INFINITY, f64::MAX, 4.2e295));
        assert!(close::<f64>(f64::INFINITY, f64::MAX, 4.2e295));
        // Only of the same sign, and only near the top of the range.
        assert!(!close::<f64>(f64::NEG_INFINITY, f64::MAX, 4.2e295));
        assert!(!close::<f64>(f64::INFINITY, 1e300, 1e290));
        // Finite results are still held to the bound.
        assert!(!close::<f64>(1e308, f64::MAX, 4.2e295));
    }

    #[test]
    fn expect_close_scaled_passes_any_class_but_nan_beyond_the_range() {
        let case = || String::new();
        super::expect_close_scaled::<f32>(
            "g",
            Some(0),
            0.0,
            f64::INFINITY,
            f64::INFINITY,
            false,
            &case,
        );
        super::expect_close_scaled::<f32>("g", Some(0), f32::INFINITY, 1.0, 1e39, false, &case);
        super::expect_close_scaled::<f32>(
            "g",
            Some(0),
            f32::NAN,
            f64::NAN,
            f64::INFINITY,
            false,
            &case,
        );
        super::expect_close_scaled::<f32>("g", Some(0), 1.5, 1.0, 1.0, false, &case);
        let fails = |got: f32, want: f64, raw: f64| {
            std::panic::catch_unwind(|| {
                super::expect_close_scaled::<f32>("g", Some(0), got, want, raw, false, &|| {
                    String::new()
                })
            })
            .is_err()
        };
        assert!(fails(f32::NAN, f64::INFINITY, f64::INFINITY));
        assert!(fails(0.0, f64::NAN, f64::INFINITY));
        // Within the range of `T` (or a NaN bound) the class still matters.
        assert!(fails(0.0, f64::INFINITY, 1e38));
        assert!(fails(0.0, f64::INFINITY, f64::NAN));
        assert!(fails(2.5, 1.0, 1.0));
    }
}
