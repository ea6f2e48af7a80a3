//! Known bugs of the crate, reported with a regression test in
//! `tests/fuzz_regressions.rs`, that the harness steps around so that a
//! fuzzing run can look for new ones instead of finding the same one again.
//! Set an entry to `false` once the bug is fixed (all of them are fixed as
//! of the commit that set them to `false`; they stay as documentation of
//! what each relaxation would cover if a regression reappears).

/// Finding 1 (`f32_gradient_with_tiny_divide_by_is_not_nan`): with
/// `Reduction::DivideBy(d)` and `1/d > T::MAX`, the gradient scale
/// overflows `T`. When set, gradients are not compared in that case.
pub const GRAD_SCALE_OVERFLOW: bool = false;

/// Finding 2 (`ce_option_errors_come_before_label_errors`): cross entropy
/// with labels reports `LabelOutOfRange` where the contract order (shapes,
/// options, reduction, then values) and the oracle report the invalid
/// `Reduction::DivideBy`. When set, either error is accepted.
pub const CE_REDUCTION_CHECKED_AFTER_LABELS: bool = false;

/// Finding 3 (`dense_ce_products_keep_accuracy`): the dense cross entropy
/// (and the smoothing term with labels) forms `w_c t'_c z_c` (`w_c z_c`)
/// in `T` and the loss as `lse Σ w t' - Σ w t' z`, so its absolute error
/// is `eps_T Σ |w t' z|` rather than relative to the loss (a one-class row
/// has a loss of exactly 0 but gets about `-eps_T |w z|`). When set, that
/// much is added to the tolerance of the affected rows.
pub const CE_PRODUCTS_IN_T: bool = false;

/// Finding 4 (`bce_logits_log_weight_without_cancellation`): BCE with
/// logits forms `lw = 1 + (pw - 1) y` as `(1 - y) + pw y`, which cancels
/// to 0 for a target far outside `[0, 1]` (accepted: targets are not
/// validated) even without `pos_weight`. When set, the tolerance uses the
/// magnitude of that grouping.
pub const BCE_LOGITS_LW_CANCELS: bool = false;

/// Finding 5 (`ce_length_errors_come_before_option_errors`): cross entropy
/// checks the options before the length of `labels` / `targets`; the
/// oracle checks the length first. When set, the kernel's option error is
/// accepted where the oracle reports that length.
pub const CE_LENGTH_CHECKED_AFTER_OPTIONS: bool = false;

/// Finding 6 (`oracle_gradient_with_subnormal_divide_by`), a bug of the
/// oracle: it scales gradients by `1 / d`, which overflows for a subnormal
/// `Reduction::DivideBy(d)`. When set, gradients are not compared when
/// `1 / d` is infinite.
pub const ORACLE_GRAD_RECIPROCAL_OVERFLOW: bool = false;

/// Not a bug, a documented limit: cross entropy forms each row's gradient
/// coefficient (`(w_y + ε W / C + 2 λ lse) / divisor`) in `T` before it
/// multiplies `p_j` and the softcap's chain-rule factor, so when that
/// coefficient (or `λ` itself) overflows `T` the row's gradient has
/// unspecified non-finite elements where the `f64` oracle may still give
/// `0 · huge = 0`. Only absurd options reach it (`z_loss = 1e300` in
/// `f32`). When set, such rows' gradients are not compared.
pub const GRAD_COEF_OVERFLOW: bool = true;

/// Not a bug, a documented limit (the underflow side of
/// [`GRAD_COEF_OVERFLOW`]): the per-call gradient coefficients
/// `(ε / C) / divisor` and `(1 - ε) / divisor` are rounded to `T` before
/// they multiply the class weight `w_j` (and the target `t_j`), so when one
/// is subnormal in `T` (a `Mean` over label weights summing beyond
/// `1e38`) it keeps only a few bits, and the term `w_j · b` is off by up to
/// `w_j` times `T`'s subnormal spacing even where the result is a normal
/// number (session 5, CI seed 1, `ce_labels` f32: weights up to `3e38`,
/// divisor `2.1e39`, `b0 = 1.3e-42`, gradient `1.9781e-13` for
/// `1.9772e-13`). When set, each gradient element's tolerance gains
/// `w_j (1 + |t'_j|)` times that spacing (times the softcap factor).
pub const GRAD_COEF_UNDERFLOW: bool = true;

/// Not a bug, a documented limit: a result within a factor 16 of `T::MAX`
/// (an `f32` loss of 3e38) may come out `±inf`, because an intermediate of
/// the kernel's grouping (`(1 - y)|x| + lw softplus`, `a ln S + d`, the
/// weighted smoothing sum) overflows first; and a result beyond `T::MAX`
/// may be NaN rather than `±inf` (overflowed parts of opposite signs, e.g.
/// dense targets outside `[0, 1]`). When set, [`crate::check::close`]
/// accepts those, and a dense cross-entropy row whose oracle value is `±inf`
/// (a `-inf` logit with a nonzero target) while the finite parts of the
/// kernel's grouping exceed `T::MAX` may be NaN (`parts_overflow` in
/// `src/ce.rs`; session 3, `ce_dense` f32 at seed 1: row 2 NaN for `+inf`,
/// targets up to ±1e35 against logits of 1e30).
pub const NEAR_OVERFLOW: bool = true;

/// Finding 13 (fixed; session 2, `bce`;
/// `weighted_gradient_with_subnormal_weight_and_tiny_divide_by`): for a
/// `Reduction::DivideBy(d)` with `1 / d` beyond 2^60 (`f32`) or 2^500
/// (`f64`), the kernels scaled the gradient by 2^60 and divided by the rest
/// afterwards; a weighted BCE term `w (p - y) / (p (1 - p))` was formed
/// before that scale, so with a subnormal `w` it underflowed to 0 (true
/// value `-5.6e-48 / 1e-300`, `-inf` in `f32`). Now, on that path, the
/// kernel writes the unweighted terms and `w g / d` is formed in `f64` in
/// an order that cannot underflow. When set, gradients are not compared
/// for reduction scales above `T::MAX^(1/4)` (2^32 in `f32`).
pub const TINY_DIVIDE_BY_UNDERFLOW: bool = false;
