//! The one error type of the crate.
//!
//! Every public function returns `Result<_, LossError>`. Shape errors
//! (lengths, `classes`) are found before any output buffer is written.
//! Value errors that need a look at every element (a probability outside
//! `[0, 1]`) are found in the same pass that computes the loss, so an output
//! buffer may then hold partial results; its contents are unspecified.

use core::fmt;

/// What went wrong with the input of a loss call.
///
/// Every message names the offending argument, index or value and what was
/// expected.
///
/// ```
/// use loss_kernels::{LossError, SquaredError};
///
/// let err = SquaredError::new().loss(&[1.0_f32, 2.0], &[1.0]).unwrap_err();
/// assert_eq!(
///     err,
///     LossError::LengthMismatch { what: "target", expected: 2, found: 1 }
/// );
/// assert_eq!(err.to_string(), "`target` has length 1, expected 2");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LossError {
    /// A slice argument does not have the length the other arguments imply.
    LengthMismatch {
        /// Name of the argument with the wrong length (`"target"`, `"grad"`, …).
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        found: usize,
    },
    /// `classes` was 0: a softmax needs at least one class.
    ZeroClasses,
    /// The logits length is not a multiple of `classes`.
    NotDivisible {
        /// Length of the logits slice.
        len: usize,
        /// The number of classes given.
        classes: usize,
    },
    /// `pos_weight` of binary cross entropy with logits is empty or its
    /// length does not divide the input length.
    PosWeightLength {
        /// Length of the input.
        input_len: usize,
        /// Length of `pos_weight`.
        found: usize,
    },
    /// A class label is neither in `0..classes` nor equal to `ignore_index`.
    LabelOutOfRange {
        /// Row of the offending label.
        index: usize,
        /// The label value (saturated to the `i64` range).
        label: i64,
        /// The number of classes.
        classes: usize,
    },
    /// A probability input or target of binary cross entropy is outside
    /// `[0, 1]` (or NaN).
    ProbabilityOutOfRange {
        /// `"input"` or `"target"`.
        what: &'static str,
        /// Index of the offending element.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// An option value is outside its domain (label smoothing outside `[0, 1]`,
    /// a negative or non-finite z-loss, softcap, normalizer or weight, …).
    InvalidOption {
        /// Name of the option (`"label_smoothing"`, `"class_weights[3]"`, …).
        option: &'static str,
        /// Index within the option slice, for slice-valued options.
        index: Option<usize>,
        /// The rejected value.
        value: f64,
        /// What the option accepts.
        expected: &'static str,
    },
    /// The requested SIMD backend is not supported by this CPU or build.
    BackendUnavailable {
        /// The backend that was asked for.
        backend: crate::Backend,
    },
}

impl fmt::Display for LossError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LossError::LengthMismatch {
                what,
                expected,
                found,
            } => write!(f, "`{what}` has length {found}, expected {expected}"),
            LossError::ZeroClasses => write!(f, "`classes` is 0, expected at least 1"),
            LossError::NotDivisible { len, classes } => write!(
                f,
                "logits length {len} is not a multiple of classes = {classes}"
            ),
            LossError::PosWeightLength { input_len, found } => write!(
                f,
                "`pos_weight` has length {found}, expected a non-zero divisor of the input length {input_len}"
            ),
            LossError::LabelOutOfRange {
                index,
                label,
                classes,
            } => write!(
                f,
                "label {label} at row {index} is out of range: expected 0..{classes} or the ignore_index"
            ),
            LossError::ProbabilityOutOfRange { what, index, value } => write!(
                f,
                "`{what}[{index}]` = {value} is not a probability: expected a value in [0, 1]"
            ),
            LossError::InvalidOption {
                option,
                index,
                value,
                expected,
            } => match index {
                Some(i) => write!(f, "option `{option}[{i}]` = {value} is invalid: expected {expected}"),
                None => write!(f, "option `{option}` = {value} is invalid: expected {expected}"),
            },
            LossError::BackendUnavailable { backend } => write!(
                f,
                "backend {backend:?} is not available on this CPU/build (available: {:?})",
                crate::Backend::available()
            ),
        }
    }
}

impl std::error::Error for LossError {}

/// Checks that a slice argument has the expected length.
pub(crate) fn check_len(
    what: &'static str,
    expected: usize,
    found: usize,
) -> Result<(), LossError> {
    if expected == found {
        Ok(())
    } else {
        Err(LossError::LengthMismatch {
            what,
            expected,
            found,
        })
    }
}
