//! Binary cross entropy: the negative log-likelihood of Bernoulli outcomes.
//!
//! If outcome `y_i ∈ {0, 1}` is 1 with predicted probability `p_i`, its
//! likelihood is `p_i^{y_i} (1 - p_i)^{1 - y_i}` (seed eq. 8); the negative
//! log-likelihood of the sample is
//! `-Σ_i [y_i ln p_i + (1 - y_i) ln(1 - p_i)]` (seed eq. 12). Soft targets
//! `y_i ∈ [0, 1]` use the same formula.
//!
//! [`BinaryCrossEntropy`] takes the probabilities; as PyTorch does, it clamps
//! each logarithm at `-100` so that `p = 0` or `1` gives a finite loss.
//! [`BinaryCrossEntropyWithLogits`] takes logits `x` with `p = σ(x)` and uses
//! the stable form `(1 - y) x + softplus(-x)`, which never forms `σ(x)` and
//! so never loses precision when `|x|` is large.

use crate::elementwise::{self, ElementwiseJob, Kind};
use crate::error::check_len;
use crate::kernels::{Operand, Out};
use crate::options::{
    check_non_negative, divide_gradient, weight_and_divide_gradient, Common, Plan,
};
use crate::{Backend, EmptyMean, Float, LossError, Partial, Reduction};

macro_rules! common_setters {
    () => {
        /// Sets the reduction (default [`Reduction::Mean`]: divide by the element count).
        #[must_use]
        pub fn reduction(mut self, reduction: Reduction) -> Self {
            self.common.reduction = reduction;
            self
        }

        /// Sets what the mean of an empty input is (default [`EmptyMean::Nan`]).
        #[must_use]
        pub fn empty_mean(mut self, policy: EmptyMean) -> Self {
            self.common.empty_mean = policy;
            self
        }

        /// Forces a SIMD backend (default [`Backend::Auto`]).
        #[must_use]
        pub fn backend(mut self, backend: Backend) -> Self {
            self.common.backend = backend;
            self
        }

        /// Per-element weights `w` (same length as the input): each element's
        /// loss and gradient is multiplied by `w[i]`. The mean still divides
        /// by the element count, as in PyTorch.
        #[must_use]
        pub fn weight(mut self, weight: &'a [T]) -> Self {
            self.weight = Some(weight);
            self
        }
    };
}

macro_rules! common_methods {
    ($loss:literal) => {
        /// The reduced loss.
        ///
        /// # Errors
        /// [`LossError::LengthMismatch`] if `target` or the weight slices do not
        /// fit the input; [`LossError::InvalidOption`] for a bad option;
        /// [`LossError::BackendUnavailable`] for a forced backend this CPU lacks;
        #[doc = $loss]
        pub fn loss(&self, input: &[T], target: &[T]) -> Result<T, LossError> {
            let (job, plan) = self.prepare(input, target, Out::None)?;
            elementwise::run(job, &plan)
        }

        /// The reduced loss, and its gradient with respect to the input
        /// written into `grad` (same length as the input), in one pass.
        ///
        /// # Errors
        /// As `loss`, plus [`LossError::LengthMismatch`] for `grad`. Shape and
        /// option errors leave `grad` untouched; after a value error its
        /// contents are unspecified.
        pub fn loss_grad(&self, input: &[T], target: &[T], grad: &mut [T]) -> Result<T, LossError> {
            check_len("grad", input.len(), grad.len())?;
            let plan = self.plan(input, target)?;
            let (kernel_scale, divisor) = plan.kernel_grad_scale::<T>();
            if let (Some(w), Some(d)) = (self.weight, divisor) {
                if d != 0.0 {
                    return self.weighted_tiny_divide_by(input, target, w, grad);
                }
            }
            let scale = T::from_f64(kernel_scale);
            let (job, plan) = self.prepare(input, target, Out::Grad(&mut *grad, scale, false))?;
            let loss = elementwise::run(job, &plan)?;
            divide_gradient(grad, divisor);
            Ok(loss)
        }

        /// `loss_grad` for weights with a tiny [`Reduction::DivideBy`] (beyond
        /// the kernel's gradient scale, see `Plan::kernel_grad_scale`), a rare
        /// path: the loss from the weighted kernel, the gradient from the
        /// unweighted one with a unit scale, then `w_i g_i / d` in `f64`
        /// ([`weight_and_divide_gradient`]), so that a subnormal weight times
        /// a term does not underflow before `1 / d` applies (finding 13).
        fn weighted_tiny_divide_by(
            &self,
            input: &[T],
            target: &[T],
            weight: &[T],
            grad: &mut [T],
        ) -> Result<T, LossError> {
            let (job, plan) = self.prepare(input, target, Out::None)?;
            let loss = elementwise::run(job, &plan)?;
            let (mut job, plan) =
                self.prepare(input, target, Out::Grad(&mut *grad, T::ONE, false))?;
            job.weight = Operand::Splat(T::ONE);
            elementwise::run_sum(job)?;
            weight_and_divide_gradient(grad, weight, plan.denominator);
            Ok(loss)
        }

        /// The per-element (unreduced) loss into `out`.
        ///
        /// # Errors
        /// As `loss`, plus [`LossError::LengthMismatch`] for `out`.
        pub fn per_element(
            &self,
            input: &[T],
            target: &[T],
            out: &mut [T],
        ) -> Result<(), LossError> {
            check_len("out", input.len(), out.len())?;
            let (job, _) = self.prepare(input, target, Out::PerElement(out, false))?;
            elementwise::run_sum(job).map(|_| ())
        }

        /// The `(sum of per-element losses, element count)` pair; see [`Partial`].
        ///
        /// # Errors
        /// As `loss`.
        pub fn partial(&self, input: &[T], target: &[T]) -> Result<Partial, LossError> {
            let (job, _) = self.prepare(input, target, Out::None)?;
            let sum = elementwise::run_sum(job)?;
            Ok(Partial {
                sum,
                weight: input.len() as f64,
            })
        }
    };
}

/// Binary cross entropy on probabilities, PyTorch's `binary_cross_entropy`.
///
/// Per element `l_i = -w_i [y_i max(ln p_i, -100) + (1 - y_i) max(ln(1 - p_i), -100)]`;
/// gradient `w_i (p_i - y_i) / max((1 - p_i) p_i, 1e-12)` divided by the
/// reduction's denominator. Inputs and targets must lie in `[0, 1]`.
///
/// ```
/// use loss_kernels::BinaryCrossEntropy;
///
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// let p = [0.9_f64, 0.2];
/// let y = [1.0_f64, 0.0];
/// let loss = BinaryCrossEntropy::new().loss(&p, &y)?;
/// assert!((loss - (-(0.9_f64.ln()) - 0.8_f64.ln()) / 2.0).abs() < 1e-15);
/// // p = 0 with y = 1 is clamped at 100, not infinite:
/// assert_eq!(BinaryCrossEntropy::new().loss(&[0.0_f32], &[1.0])?, 100.0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BinaryCrossEntropy<'a, T> {
    common: Common,
    weight: Option<&'a [T]>,
}

impl<'a, T: Float> BinaryCrossEntropy<'a, T> {
    /// Mean reduction, no weights, automatic backend.
    #[must_use]
    pub fn new() -> Self {
        BinaryCrossEntropy {
            common: Common::default(),
            weight: None,
        }
    }

    common_setters!();

    fn plan(&self, input: &[T], target: &[T]) -> Result<Plan, LossError> {
        check_len("target", input.len(), target.len())?;
        if let Some(w) = self.weight {
            check_len("weight", input.len(), w.len())?;
        }
        self.common.plan(input.len() as f64)
    }

    fn prepare<'b>(
        &self,
        input: &'b [T],
        target: &'b [T],
        out: Out<'b, T>,
    ) -> Result<(ElementwiseJob<'b, T>, Plan), LossError>
    where
        'a: 'b,
    {
        let plan = self.plan(input, target)?;
        let job = ElementwiseJob {
            kind: Kind::BinaryCrossEntropy,
            backend: plan.backend,
            x: input,
            y: target,
            weight: self.weight.map_or(Operand::Splat(T::ONE), Operand::Slice),
            pos_weight: Operand::Splat(T::ONE),
            offset: 0,
            out,
            far: false,
        };
        Ok((job, plan))
    }

    common_methods!(
        "[`LossError::ProbabilityOutOfRange`] for an input or target outside `[0, 1]` or NaN."
    );
}

/// Binary cross entropy on logits, PyTorch's `binary_cross_entropy_with_logits`.
///
/// Per element, with `pw` the positive-class weight of the element's column:
/// `l_i = w_i [(1 - y_i) x_i + (1 + (pw - 1) y_i) softplus(-x_i)]`, where
/// `softplus(-x) = max(-x, 0) + ln(1 + e^{-|x|})`; gradient
/// `w_i [(1 - y_i) - (1 + (pw - 1) y_i) σ(-x_i)]` (which is `w_i (σ(x_i) - y_i)`
/// without `pos_weight`) divided by the reduction's denominator.
///
/// Targets are not range-checked (as in PyTorch). The gradient is formed as
/// `σ(|x|)·(a·e^{-|x|} + b)` with `{a, b} = {1 - y, -pw·y}`, which keeps
/// its relative accuracy near 0 but overflows when `|1 - y| + |pw·y|`
/// exceeds the type's maximum (`|y| > 1.7e38` in `f32`): such an element
/// may be `±inf` where the exact gradient is finite.
///
/// ```
/// use loss_kernels::BinaryCrossEntropyWithLogits;
///
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// let x = [2.0_f64, -1.0];
/// let y = [1.0_f64, 0.0];
/// let loss = BinaryCrossEntropyWithLogits::new().loss(&x, &y)?;
/// let softplus = |z: f64| (1.0 + z.exp()).ln();
/// assert!((loss - (softplus(-2.0) + softplus(-1.0)) / 2.0).abs() < 1e-15);
///
/// // Two columns (x viewed as [rows, 2]), positives of column 1 weighted 3x:
/// let pw = [1.0_f64, 3.0];
/// let l = BinaryCrossEntropyWithLogits::new().pos_weight(&pw).loss(&[0.0, 0.0], &[1.0, 1.0])?;
/// assert!((l - 2.0 * 2.0_f64.ln()).abs() < 1e-15);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BinaryCrossEntropyWithLogits<'a, T> {
    common: Common,
    weight: Option<&'a [T]>,
    pos_weight: Option<&'a [T]>,
}

impl<'a, T: Float> BinaryCrossEntropyWithLogits<'a, T> {
    /// Mean reduction, no weights, automatic backend.
    #[must_use]
    pub fn new() -> Self {
        BinaryCrossEntropyWithLogits {
            common: Common::default(),
            weight: None,
            pos_weight: None,
        }
    }

    common_setters!();

    /// Weights of the positive term, one per column: the input is viewed as
    /// `[len / P, P]` with `P = pos_weight.len()` and column `j` uses
    /// `pos_weight[j]`, as PyTorch broadcasts it. `P` must divide the input
    /// length and every value must be finite and `>= 0`.
    #[must_use]
    pub fn pos_weight(mut self, pos_weight: &'a [T]) -> Self {
        self.pos_weight = Some(pos_weight);
        self
    }

    fn plan(&self, input: &[T], target: &[T]) -> Result<Plan, LossError> {
        check_len("target", input.len(), target.len())?;
        if let Some(w) = self.weight {
            check_len("weight", input.len(), w.len())?;
        }
        if let Some(pw) = self.pos_weight {
            if pw.is_empty() || !input.len().is_multiple_of(pw.len()) {
                return Err(LossError::PosWeightLength {
                    input_len: input.len(),
                    found: pw.len(),
                });
            }
            for (i, &v) in pw.iter().enumerate() {
                check_non_negative("pos_weight", Some(i), v.to_f64())?;
            }
        }
        self.common.plan(input.len() as f64)
    }

    fn prepare<'b>(
        &self,
        input: &'b [T],
        target: &'b [T],
        out: Out<'b, T>,
    ) -> Result<(ElementwiseJob<'b, T>, Plan), LossError>
    where
        'a: 'b,
    {
        let plan = self.plan(input, target)?;
        let pos_weight = match self.pos_weight {
            Some([pw]) => Operand::Splat(*pw),
            Some(pw) => Operand::Slice(pw),
            None => Operand::Splat(T::ONE),
        };
        let job = ElementwiseJob {
            kind: Kind::BinaryCrossEntropyWithLogits,
            backend: plan.backend,
            x: input,
            y: target,
            weight: self.weight.map_or(Operand::Splat(T::ONE), Operand::Slice),
            pos_weight,
            offset: 0,
            out,
            far: false,
        };
        Ok((job, plan))
    }

    common_methods!("and no value errors: any finite or infinite logit is accepted.");
}
