//! Options shared by every loss: reduction, the empty-mean policy, the
//! `(sum, weight)` partials, and the SIMD backend choice.

use crate::LossError;

/// How per-element (or per-row) losses are reduced to one number.
///
/// The gradient written by `loss_grad` is the gradient of the reduced loss.
///
/// ```
/// use loss_kernels::{Reduction, SquaredError};
///
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// let (p, t) = ([1.0_f64, 3.0], [0.0_f64, 0.0]);
/// assert_eq!(SquaredError::new().loss(&p, &t)?, 5.0); // Mean
/// assert_eq!(SquaredError::new().reduction(Reduction::Sum).loss(&p, &t)?, 10.0);
/// // A global normalizer, e.g. the token count of a whole accumulated batch:
/// assert_eq!(SquaredError::new().reduction(Reduction::DivideBy(20.0)).loss(&p, &t)?, 0.5);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Reduction {
    /// Sum divided by the loss's natural denominator: the element count for
    /// squared error and BCE, the summed class weight of the non-ignored
    /// targets for cross entropy with labels (their count when unweighted),
    /// the row count for cross entropy with probability targets. This is
    /// PyTorch's `reduction="mean"`.
    #[default]
    Mean,
    /// Plain sum (PyTorch's `reduction="sum"`).
    Sum,
    /// Sum divided by a caller-supplied denominator (finite and `> 0`).
    ///
    /// Use it with [`Partial`] when one logical batch is split into several
    /// calls (gradient accumulation, data parallelism): sum the partials'
    /// weights first, then pass that global weight here so every call's
    /// gradient is scaled by the same global count.
    DivideBy(f64),
}

/// What `Reduction::Mean` returns when its denominator is zero: an empty
/// input, or a cross-entropy batch whose every target is ignored.
///
/// The default, [`EmptyMean::Nan`], is PyTorch's behaviour (`0 / 0`). The
/// gradient is all zeros either way.
///
/// ```
/// use loss_kernels::{CrossEntropy, EmptyMean};
///
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// let logits = [1.0_f32, 2.0];
/// let labels = [-100_i64]; // the only row is ignored
/// assert!(CrossEntropy::new().loss(&logits, 2, &labels)?.is_nan());
/// let ce = CrossEntropy::new().empty_mean(EmptyMean::Zero);
/// assert_eq!(ce.loss(&logits, 2, &labels)?, 0.0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyMean {
    /// Return NaN, as PyTorch does.
    #[default]
    Nan,
    /// Return 0, as many training codebases patch it to.
    Zero,
}

/// The unreduced pieces of a loss: the sum of the per-element (per-row)
/// losses and the weight `Reduction::Mean` would divide it by.
///
/// Partials of different batches merge by adding both fields; the mean of
/// the union is `merged.sum / merged.weight`.
///
/// ```
/// use loss_kernels::{Partial, Reduction, SquaredError};
///
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// let mse = SquaredError::new();
/// let a = mse.partial(&[1.0_f64, 2.0], &[0.0, 0.0])?; // sum 5, weight 2
/// let b = mse.partial(&[3.0_f64], &[0.0])?; // sum 9, weight 1
/// let all = a.merge(b);
/// assert_eq!(all, Partial { sum: 14.0, weight: 3.0 });
/// assert_eq!(all.mean(), 14.0 / 3.0);
/// // Gradient of the global mean for the first micro-batch:
/// let mut grad = [0.0_f64; 2];
/// mse.reduction(Reduction::DivideBy(all.weight))
///     .loss_grad(&[1.0, 2.0], &[0.0, 0.0], &mut grad)?;
/// assert_eq!(grad, [2.0 / 3.0, 4.0 / 3.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Partial {
    /// Sum of the per-element (per-row) losses, in `f64`.
    pub sum: f64,
    /// The denominator of the mean: element count, row count, or summed
    /// class weight of the non-ignored targets.
    pub weight: f64,
}

impl Partial {
    /// Adds two partials field by field.
    #[must_use]
    pub fn merge(self, other: Partial) -> Partial {
        Partial {
            sum: self.sum + other.sum,
            weight: self.weight + other.weight,
        }
    }

    /// `sum / weight` (NaN when both are 0).
    #[must_use]
    pub fn mean(self) -> f64 {
        self.sum / self.weight
    }
}

/// How [`CrossEntropy::loss_grad`](crate::CrossEntropy::loss_grad) with
/// integer labels writes the gradient of long rows (more than 32 768
/// classes, up to 2^20) when the gradient is too large for the caches (at
/// least 64 MiB) and there are no class weights and no softcap.
///
/// Both forms compute every exponential once, in blocks of 16 KiB, and give
/// **bitwise the same loss and gradient**; they differ only in speed, and
/// which one is faster depends on the CPU: with 256 × 131 072 `f32` logits
/// and 1 thread, [`Streamed`](Self::Streamed) measured 3.76 against 3.11 G
/// elements/s on an AMD Zen 5, and [`InPlace`](Self::InPlace) 2.1 against
/// 1.5 G elements/s on a Zen 4. [`Auto`](Self::Auto) (the default) times
/// both on this process's first such calls and keeps the faster one; the
/// other variants fix the form, for benchmarks that should not depend on
/// that measurement. Any other call ignores this option.
///
/// ```
/// use loss_kernels::{CrossEntropy, LongRowGradient};
///
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// // A benchmark that should time one form, whatever `Auto` would measure.
/// let ce = CrossEntropy::<f32>::new().long_row_gradient(LongRowGradient::InPlace);
/// // (This call is too small for either form; the option changes nothing here.)
/// let mut grad = [0.0_f32; 3];
/// let loss = ce.loss_grad(&[0.0, 0.0, 0.0], 3, &[1_i64], &mut grad)?;
/// assert!((loss - 3f32.ln()).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LongRowGradient {
    /// Time both forms on the first calls that can use either (three leaves
    /// of at least 16 rows each, per element type), then keep the faster.
    #[default]
    Auto,
    /// The exponentials go to a scratch row; each row's gradient is written
    /// with streaming stores along the next row's first pass, so that the
    /// stores overlap its reads and `exp`s.
    Streamed,
    /// The exponentials go into the gradient row, which a second sweep
    /// rescales in place (from the cache).
    InPlace,
}

/// Which SIMD instruction set runs the kernels.
///
/// [`Backend::Auto`] (the default of every loss) uses the best backend of the
/// running CPU, detected once at run time: a default `cargo build` still runs
/// AVX-512 or AVX2+FMA code on a CPU that has it. The other variants force a
/// backend, for tests and benchmarks; forcing one the CPU lacks gives
/// [`LossError::BackendUnavailable`].
///
/// ```
/// use loss_kernels::{Backend, SquaredError};
///
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// println!("running on {:?}", Backend::detected());
/// for backend in Backend::available() {
///     let mse = SquaredError::new().backend(backend).loss(&[1.0_f32], &[0.0])?;
///     assert_eq!(mse, 1.0);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Backend {
    /// The best available backend, detected at run time.
    #[default]
    Auto,
    /// One lane at a time, plain Rust: the baseline.
    Scalar,
    /// The `wide` crate's vectors: NEON on aarch64, SSE2 on a default
    /// x86-64 build (more when the final binary enables more features).
    Portable,
    /// x86-64 AVX2 with FMA, 256-bit vectors.
    Avx2Fma,
    /// x86-64 AVX-512 (F, DQ, BW, VL), 512-bit vectors.
    Avx512,
}

impl Backend {
    /// The backend `Auto` resolves to on this CPU (cached after the first call).
    #[must_use]
    pub fn detected() -> Backend {
        crate::simd::detected()
    }

    /// Whether this backend can run on this CPU (`Auto` always can).
    #[must_use]
    pub fn is_available(self) -> bool {
        crate::simd::is_available(self)
    }

    /// The concrete backends this CPU can run, slowest first.
    #[must_use]
    pub fn available() -> Vec<Backend> {
        [
            Backend::Scalar,
            Backend::Portable,
            Backend::Avx2Fma,
            Backend::Avx512,
        ]
        .into_iter()
        .filter(|b| b.is_available())
        .collect()
    }

    /// Resolves `Auto` and checks availability.
    pub(crate) fn resolve(self) -> Result<Backend, LossError> {
        match self {
            Backend::Auto => Ok(Backend::detected()),
            b if b.is_available() => Ok(b),
            b => Err(LossError::BackendUnavailable { backend: b }),
        }
    }
}

/// The common options every loss carries.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Common {
    pub reduction: Reduction,
    pub empty_mean: EmptyMean,
    pub backend: Backend,
}

/// What a validated call needs to finish: the backend to run and the
/// denominator of the reduction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub backend: Backend,
    /// The reduction's denominator (may be 0 for an empty mean).
    pub denominator: f64,
    pub empty_mean: EmptyMean,
    /// Scale of the gradient: `1 / denominator`, or 0 when the denominator
    /// is 0 (an empty mean has an all-zero gradient).
    pub grad_scale: f64,
}

impl Common {
    /// Validates the options and computes the reduction's denominator from
    /// the loss's natural mean weight.
    pub(crate) fn plan(&self, mean_weight: f64) -> Result<Plan, LossError> {
        let backend = self.backend.resolve()?;
        let denominator = match self.reduction {
            Reduction::Mean => mean_weight,
            Reduction::Sum => 1.0,
            Reduction::DivideBy(d) => {
                if !(d.is_finite() && d > 0.0) {
                    return Err(LossError::InvalidOption {
                        option: "reduction",
                        index: None,
                        value: d,
                        expected: "Reduction::DivideBy(d) with d finite and > 0",
                    });
                }
                d
            }
        };
        Ok(Plan {
            backend,
            denominator,
            empty_mean: self.empty_mean,
            grad_scale: if denominator == 0.0 {
                0.0
            } else {
                1.0 / denominator
            },
        })
    }
}

impl Plan {
    /// The gradient scale to apply inside the kernel for element type `T`,
    /// and a divisor to apply to the gradient afterwards in `f64` when
    /// `1 / denominator` is too large to be a factor in `T` (a tiny
    /// [`Reduction::DivideBy`]): scaling by an overflowed `inf` would turn
    /// zero gradients into NaN.
    pub(crate) fn kernel_grad_scale<T: crate::Float>(&self) -> (f64, Option<f64>) {
        // Powers of two (2^60 ≈ 1.2e18, 2^500 ≈ 3.3e150): exact in `T`, so
        // the kernel's factor and the divisor below cancel exactly.
        let limit = if core::mem::size_of::<T>() == 4 {
            2f64.powi(60)
        } else {
            2f64.powi(500)
        };
        if self.grad_scale == 0.0 {
            // A zero denominator (an empty mean): the gradient is all zeros,
            // even where a term is NaN; `divide_gradient` writes them.
            (0.0, Some(0.0))
        } else if self.grad_scale <= limit {
            (self.grad_scale, None)
        } else {
            // Scale by `limit` in the kernel and divide by the rest after:
            // an unscaled f32 gradient of 1e-46 would underflow to 0 before
            // a `DivideBy(1e-300)` could bring it back.
            (limit, Some(self.denominator * limit))
        }
    }

    /// The reduced loss from the sum of the terms: `sum / denominator`, with
    /// the [`EmptyMean`] policy when the denominator is 0.
    pub(crate) fn reduce(&self, sum: f64) -> f64 {
        if self.denominator == 0.0 && self.empty_mean == EmptyMean::Zero {
            0.0
        } else {
            sum / self.denominator
        }
    }
}

/// Checks an option that must be finite and non-negative.
pub(crate) fn check_non_negative(
    option: &'static str,
    index: Option<usize>,
    value: f64,
) -> Result<(), LossError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(LossError::InvalidOption {
            option,
            index,
            value,
            expected: "a finite value >= 0",
        })
    }
}

/// Divides a gradient written with a unit scale by `divisor`, in `f64`, or
/// writes zeros for a divisor of 0 (an empty mean; see
/// [`Plan::kernel_grad_scale`]).
pub(crate) fn divide_gradient<T: crate::Float>(grad: &mut [T], divisor: Option<f64>) {
    if divisor == Some(0.0) {
        grad.fill(T::ZERO);
    } else if let Some(d) = divisor {
        for g in grad {
            *g = T::from_f64(g.to_f64() / d);
        }
    }
}

/// For a tiny [`Reduction::DivideBy`] (`divisor` is `Some(d)` with
/// `d > 0`, see [`Plan::kernel_grad_scale`]) with per-element weights: the
/// gradient `grad` holds the unweighted, unscaled terms `g_i`, and this
/// writes `w_i g_i / denominator`, formed in `f64` in an order that cannot
/// underflow or overflow when the result fits (see [`weighted_quotient`]).
/// A weighted term `w_i g_i` formed in `T` first underflows for a subnormal
/// `w_i` (finding 13), and the kernel's scale (2^60 in `f32`) cannot bring
/// back what `1 / denominator` (up to 1e300 and beyond) would.
pub(crate) fn weight_and_divide_gradient<T: crate::Float>(
    grad: &mut [T],
    weight: &[T],
    denominator: f64,
) {
    for (g, &w) in grad.iter_mut().zip(weight) {
        *g = T::from_f64(weighted_quotient(g.to_f64(), w.to_f64(), denominator));
    }
}

/// `g w / d` for `0 < d < 1` (a tiny denominator), without an intermediate
/// underflow or overflow when the result is representable: `(g w) / d` when
/// `g w` is a normal number (or 0, ±inf, NaN as the exact product would be;
/// `/ d` only makes it larger), else (`g w` underflowed) `g (w / d)` or, if
/// `w / d` overflows, `(g / d) w`, which then fits (`g < 2^-1074 / w` and
/// `w > f64::MAX d` give `g / d < 2^50`). For `f32` inputs `g w` is exact
/// and never underflows `f64`, so this is one rounding.
pub(crate) fn weighted_quotient(g: f64, w: f64, d: f64) -> f64 {
    let gw = g * w;
    if gw.abs() >= f64::MIN_POSITIVE || !gw.is_finite() || g == 0.0 || w == 0.0 {
        return gw / d;
    }
    let wd = w / d;
    if wd.is_finite() {
        g * wd
    } else {
        (g / d) * w
    }
}

impl Common {
    /// Validates the reduction alone (so that option errors come before
    /// value errors, whatever the denominator turns out to be).
    pub(crate) fn check_reduction(&self) -> Result<(), LossError> {
        self.plan(1.0).map(|_| ())
    }
}

/// The smallest accepted logit softcap: `s` and `1 / s` are normal `f32`s
/// across `[SOFTCAP_MIN, SOFTCAP_MAX]`, so the `f32` kernels compute
/// `s · tanh(x · (1 / s))` without underflow to 0 or overflow to `inf`.
pub(crate) const SOFTCAP_MIN: f64 = 1e-30;
/// The largest accepted logit softcap; see [`SOFTCAP_MIN`].
pub(crate) const SOFTCAP_MAX: f64 = 1e30;
/// What an invalid softcap's error says was expected.
pub(crate) const SOFTCAP_EXPECTED: &str = "a value in [1e-30, 1e30]";
