//! Squared error: the negative log-likelihood of Gaussian noise.
//!
//! If each observation is `y_i = x_i + noise` with `noise ~ N(0, σ²)`, the
//! log-likelihood is `Σ_i [-ln(σ√(2π)) - (y_i - x_i)² / (2σ²)]`; maximizing it
//! over the predictions `x` is minimizing `Σ_i (x_i - y_i)²` (seed eq. 7).
//!
//! Per element `l_i = (x_i - y_i)²`, `∂l_i/∂x_i = 2 (x_i - y_i)`; as PyTorch
//! does, the gradient is `(x_i - y_i) · (2 / denominator)`.

use crate::elementwise::{self, ElementwiseJob, Kind};
use crate::error::check_len;
use crate::kernels::{Operand, Out};
use crate::options::{divide_gradient, Common, Plan};
use crate::{Backend, EmptyMean, Float, LossError, Partial, Reduction};

/// Squared error (mean squared error with the default [`Reduction::Mean`]),
/// PyTorch's `mse_loss`.
///
/// ```
/// use loss_kernels::SquaredError;
///
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// let pred = [1.0_f32, 2.0, 4.0];
/// let target = [1.0_f32, 0.0, 1.0];
/// let mut grad = [0.0_f32; 3];
/// let loss = SquaredError::new().loss_grad(&pred, &target, &mut grad)?;
/// assert_eq!(loss, 13.0 / 3.0);
/// assert_eq!(grad, [0.0, 4.0 / 3.0, 2.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SquaredError {
    common: Common,
}

impl SquaredError {
    /// Mean reduction, `EmptyMean::Nan`, automatic backend.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the reduction (default [`Reduction::Mean`]).
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

    fn prepare<'a, T: Float>(
        &self,
        pred: &'a [T],
        target: &'a [T],
        out: Out<'a, T>,
    ) -> Result<(ElementwiseJob<'a, T>, Plan), LossError> {
        check_len("target", pred.len(), target.len())?;
        let plan = self.common.plan(pred.len() as f64)?;
        let job = ElementwiseJob {
            kind: Kind::SquaredError,
            backend: plan.backend,
            x: pred,
            y: target,
            weight: Operand::Splat(T::ONE),
            pos_weight: Operand::Splat(T::ONE),
            offset: 0,
            out,
            far: false,
        };
        Ok((job, plan))
    }

    /// The reduced loss.
    ///
    /// # Errors
    /// [`LossError::LengthMismatch`] if `target.len() != pred.len()`;
    /// [`LossError::InvalidOption`] for a bad [`Reduction::DivideBy`];
    /// [`LossError::BackendUnavailable`] for a forced backend this CPU lacks.
    pub fn loss<T: Float>(&self, pred: &[T], target: &[T]) -> Result<T, LossError> {
        let (job, plan) = self.prepare(pred, target, Out::None)?;
        elementwise::run(job, &plan)
    }

    /// The reduced loss, and its gradient with respect to `pred` written into
    /// `grad` (same length as `pred`), in one pass.
    ///
    /// # Errors
    /// As [`SquaredError::loss`], plus [`LossError::LengthMismatch`] for
    /// `grad`; `grad` is not written when an error is returned.
    pub fn loss_grad<T: Float>(
        &self,
        pred: &[T],
        target: &[T],
        grad: &mut [T],
    ) -> Result<T, LossError> {
        check_len("target", pred.len(), target.len())?;
        check_len("grad", pred.len(), grad.len())?;
        // d/dx (x - y)^2 = 2 (x - y): fold the 2 into the scale.
        let plan = self.common.plan(pred.len() as f64)?;
        let (kernel_scale, divisor) = plan.kernel_grad_scale::<T>();
        let scale = T::from_f64(2.0 * kernel_scale);
        let (job, plan) = self.prepare(pred, target, Out::Grad(&mut *grad, scale, false))?;
        let loss = elementwise::run(job, &plan)?;
        divide_gradient(grad, divisor);
        Ok(loss)
    }

    /// The per-element loss `(pred[i] - target[i])²` into `out`.
    ///
    /// # Errors
    /// As [`SquaredError::loss`], plus [`LossError::LengthMismatch`] for `out`.
    pub fn per_element<T: Float>(
        &self,
        pred: &[T],
        target: &[T],
        out: &mut [T],
    ) -> Result<(), LossError> {
        check_len("target", pred.len(), target.len())?;
        check_len("out", pred.len(), out.len())?;
        let (job, _) = self.prepare(pred, target, Out::PerElement(out, false))?;
        elementwise::run_sum(job).map(|_| ())
    }

    /// The `(sum of per-element losses, element count)` pair; see [`Partial`].
    ///
    /// # Errors
    /// As [`SquaredError::loss`].
    pub fn partial<T: Float>(&self, pred: &[T], target: &[T]) -> Result<Partial, LossError> {
        let (job, _) = self.prepare(pred, target, Out::None)?;
        let sum = elementwise::run_sum(job)?;
        Ok(Partial {
            sum,
            weight: pred.len() as f64,
        })
    }
}
