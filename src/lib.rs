//! # loss-kernels
//!
//! SIMD-optimized CPU kernels for the three losses that maximum likelihood
//! gives, with fused gradients, deterministic multi-threading and scalar
//! `f64` reference oracles.
//!
//! | likelihood model | loss | type |
//! | --- | --- | --- |
//! | Gaussian noise around a prediction | squared error | [`SquaredError`] |
//! | Bernoulli outcome, predicted probability | binary cross entropy | [`BinaryCrossEntropy`] |
//! | Bernoulli outcome, predicted logit | binary cross entropy with logits | [`BinaryCrossEntropyWithLogits`] |
//! | categorical outcome over `C` classes | softmax cross entropy | [`CrossEntropy`] |
//!
//! Maximizing the likelihood of the observations is minimizing the negative
//! log-likelihood; under each model above that negative log-likelihood is the
//! loss in the same row (see the crate README for the derivation).
//!
//! ## Shape of the API
//!
//! Slices in, scalars or caller-owned buffers out; nothing allocates in
//! proportion to the input. Every loss is a small `Copy` options value built
//! with chained setters, and has the same methods:
//!
//! - `loss(..) -> Result<T>`: the reduced loss ([`Reduction::Mean`] by default);
//! - `loss_grad(.., grad) -> Result<T>`: the reduced loss, and its gradient
//!   with respect to the predictions written into `grad` (fused: one pass);
//! - `per_element(.., out)` / `per_row(.., out)`: the unreduced loss;
//! - `partial(..) -> Result<Partial>`: the `(loss sum, weight)` pair that
//!   lets gradient accumulation and data-parallel training divide by the
//!   global count ([`Reduction::DivideBy`]).
//!
//! ```
//! use loss_kernels::{CrossEntropy, Reduction, SquaredError};
//!
//! # fn main() -> Result<(), loss_kernels::LossError> {
//! let pred = [0.5_f32, 1.5, 2.0];
//! let target = [1.0_f32, 1.0, 2.0];
//! let mut grad = [0.0_f32; 3];
//! let mse = SquaredError::new().loss_grad(&pred, &target, &mut grad)?;
//! assert!((mse - 0.5 / 3.0).abs() < 1e-7);
//! assert!((grad[0] - (-1.0 / 3.0)).abs() < 1e-7);
//!
//! // 2 rows of 3 classes, integer labels.
//! let logits = [2.0_f32, 0.5, -1.0, 0.0, 0.0, 3.0];
//! let labels = [0_u32, 2];
//! let ce = CrossEntropy::new().reduction(Reduction::Sum).loss(&logits, 3, &labels)?;
//! assert!(ce > 0.0);
//! # Ok(())
//! # }
//! ```
//!
//! ## Semantics
//!
//! Values follow PyTorch's documented definitions (`mse_loss`,
//! `binary_cross_entropy`, `binary_cross_entropy_with_logits`,
//! `cross_entropy`), including the `-100` clamp of BCE's logarithms, the
//! stable form of BCE with logits and `pos_weight`, and cross entropy's
//! `ignore_index`, class weights and label smoothing. The [`mod@reference`]
//! module holds plain `f64` transcriptions of every formula; the tests check
//! every kernel against it.
//!
//! ## Errors
//!
//! No input makes a public function panic. Shape errors are reported before
//! any output is written; see [`LossError`].
//!
//! ## Crate features
//!
//! - `rayon` (default): large inputs are split across the threads of the
//!   caller's current rayon pool (so `ThreadPool::install` controls it).
//!   Results are bitwise identical for any number of threads, and identical
//!   to a build without the feature, which runs everything serially.
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

mod bce;
mod ce_kernels;
mod cross_entropy;
mod elementwise;
mod error;
mod float;
mod kernels;
mod math;
mod options;
mod parallel;
pub mod reference;
mod simd;
mod squared_error;

pub use bce::{BinaryCrossEntropy, BinaryCrossEntropyWithLogits};
pub use cross_entropy::{log_softmax, log_sum_exp, softmax, CrossEntropy, LogSumExp, Softmax};
pub use error::LossError;
pub use float::{Float, Label};
pub use options::{Backend, EmptyMean, LongRowGradient, Partial, Reduction};
pub use squared_error::SquaredError;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
