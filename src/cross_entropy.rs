//! Softmax cross entropy: the negative log-likelihood of categorical
//! outcomes, and the softmax primitives.
//!
//! A model that gives class `c` of example `i` the probability
//! `p_ic = softmax(z_i)_c = e^{z_ic} / Σ_k e^{z_ik}` has, for observed
//! one-hot (or soft) targets `t_ic`, the negative log-likelihood
//! `-Σ_i Σ_c t_ic ln p_ic` (seed eq. 13). With `lse_i = ln Σ_c e^{z_ic}`,
//! `-ln p_ic = lse_i - z_ic`, so a row's loss needs only `lse_i` and a few
//! sums over the row: the kernels ([`crate::ce_kernels`]) get them in one
//! read of the logits and never materialize `ln p`.
//!
//! Options follow PyTorch's `cross_entropy`: class weights, `ignore_index`,
//! label smoothing (the target becomes `(1 - ε) t + ε / C`, with PyTorch's
//! normalization of the mean), plus PaLM's z-loss (`λ · lse²` per row) and
//! Gemma 2's logit softcap (`z = s · tanh(x / s)`).

use crate::ce_kernels::{
    ln_1p_nonneg, ln_sum, max_of, pass1_store, pass2_segment, pass2_stored, rebase, shift_origin,
    sigmoid, softplus, store_exp, sweep, Cap, Dense, Flush, Pass2, Pass2Kernel, RowStats, Segment,
    Sweep, SweepKernel, Write,
};
use crate::error::check_len;
use crate::float::Labels;
use crate::math;
use crate::options::{check_non_negative, divide_gradient, Common};
use crate::parallel::{self, Job};
use crate::simd::{self, Kernel, Simd, Vector};
use crate::{Backend, EmptyMean, Float, Label, LongRowGradient, LossError, Partial, Reduction};
use core::marker::PhantomData;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};

/// Elements per leaf of the row-parallel tree (a leaf holds
/// `max(1, ROW_LEAF / classes)` rows).
const ROW_LEAF: usize = 1 << 15;
/// Inputs with fewer elements run serially.
const PARALLEL_MIN: usize = 1 << 16;
/// Rows longer than this are themselves split into column blocks of this
/// many classes, merged with the [`LogSumExp`] state.
const COL_LEAF: usize = 1 << 15;
/// Rows per leaf of the row-parallel tree for rows longer than
/// [`COL_LEAF`] (whose columns are split further): many, so that
/// [`huge_rows`] writes one row's gradient along the next row's pass 1 for
/// all but the leaf's last row, and zeroes its scratch rows once for all.
/// (256 x 131072 `f32`, 1 thread, standalone copy: leaves of 8 rows lost
/// 19% to the scratch allocation and the unpaired last rows.)
const HUGE_LEAF_ROWS: usize = 64;
/// Rows of at most this many classes may take [`huge_rows`]' pipelined form
/// (its two scratch rows: 8 MiB in `f32`; whether they do is
/// [`LongRowGradient`]'s choice); longer ones keep the exponentials in the
/// gradient row.
const PIPELINE_MAX_CLASSES: usize = 1 << 20;
/// Rows of at most this many bytes get their log-sum-exp in two reads (the
/// exact maximum, then the exponentials), longer ones in one (online).
const TWO_PASS_BYTES: usize = 16 << 10;

/// Softmax cross entropy over the last axis, PyTorch's `cross_entropy`.
///
/// Logits are row-major `[rows, classes]`; targets are one integer label per
/// row ([`loss`](Self::loss), [`loss_grad`](Self::loss_grad),
/// [`per_row`](Self::per_row), [`partial`](Self::partial)) or a row of
/// probabilities per row (the `_dense` methods, seed eq. 13).
///
/// For a kept row with label `y`, smoothing `ε`, class weights `w`
/// (`W = Σ w`), `C` classes and z-loss `λ`:
///
/// `loss = (1 - ε) w_y (lse - z_y) + (ε / C) Σ_c w_c (lse - z_c) + λ lse²`
///
/// and `Mean` divides the sum over rows by `Σ w_y` over the kept rows (their
/// count when unweighted), exactly as PyTorch does, smoothing included.
///
/// ```
/// use loss_kernels::CrossEntropy;
///
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// // 2 rows x 3 classes; the second row is ignored.
/// let logits = [1.0_f32, 2.0, 3.0, 0.0, 0.0, 0.0];
/// let labels = [2_i64, -100];
/// let mut grad = [0.0_f32; 6];
/// let ce = CrossEntropy::new();
/// let loss = ce.loss_grad(&logits, 3, &labels, &mut grad)?;
/// let lse = (1f32.exp() + 2f32.exp() + 3f32.exp()).ln();
/// assert!((loss - (lse - 3.0)).abs() < 1e-6);
/// assert_eq!(&grad[3..], &[0.0, 0.0, 0.0]); // ignored row
/// let softmax_sum: f32 = grad[..3].iter().sum();
/// assert!(softmax_sum.abs() < 1e-6); // softmax - one_hot sums to 0
///
/// // Label smoothing, class weights and z-loss compose:
/// let w = [1.0_f32, 2.0, 0.5];
/// let ce = CrossEntropy::new().class_weights(&w).label_smoothing(0.1).z_loss(1e-4);
/// let loss = ce.loss(&logits, 3, &labels)?;
/// assert!(loss.is_finite());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossEntropy<'a, T> {
    common: Common,
    class_weights: Option<&'a [T]>,
    ignore_index: Option<i64>,
    label_smoothing: f64,
    z_loss: f64,
    softcap: Option<f64>,
    long_rows: LongRowGradient,
}

impl<T: Float> Default for CrossEntropy<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A validated configuration, shared read-only by every leaf.
struct Config<'a, T> {
    backend: Backend,
    classes: usize,
    w: Option<&'a [T]>,
    /// `Σ_c w_c` (`C` when unweighted).
    w_sum: f64,
    ignore: Option<i64>,
    eps: f64,
    z_loss: f64,
    cap: Option<Cap<T>>,
    cap_f64: Option<f64>,
    grad_scale: f64,
    /// Whether per-class outputs are written with streaming stores.
    stream: bool,
    long_rows: LongRowGradient,
}

/// The targets of a block of rows.
#[derive(Clone, Copy)]
enum Targets<'a, T> {
    Labels(Labels<'a>),
    Dense(&'a [T]),
    /// The primitives: no targets.
    None,
}

/// What a block of rows writes.
enum RowsOut<'a, T> {
    None,
    /// Gradient, `rows × classes`.
    Grad(&'a mut [T]),
    /// One value per row: the loss, or the log-sum-exp for the primitive.
    PerRow(&'a mut [T]),
    /// `rows × classes` log-softmax or softmax.
    PerClass(&'a mut [T], Write),
}

impl<'a, T: Float> CrossEntropy<'a, T> {
    /// Mean reduction, `ignore_index = -100`, no weights, no smoothing, no
    /// z-loss, no softcap, automatic backend.
    #[must_use]
    pub fn new() -> Self {
        CrossEntropy {
            common: Common::default(),
            class_weights: None,
            ignore_index: Some(-100),
            label_smoothing: 0.0,
            z_loss: 0.0,
            softcap: None,
            long_rows: LongRowGradient::Auto,
        }
    }

    /// Sets the reduction (default [`Reduction::Mean`]).
    #[must_use]
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.common.reduction = reduction;
        self
    }

    /// Sets what a mean over zero kept rows is (default [`EmptyMean::Nan`],
    /// PyTorch's behaviour).
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

    /// Per-class weights (length `classes`, finite and `>= 0`).
    #[must_use]
    pub fn class_weights(mut self, weights: &'a [T]) -> Self {
        self.class_weights = Some(weights);
        self
    }

    /// Rows whose label equals `index` contribute nothing (default `-100`,
    /// as in PyTorch). An index inside `0..classes` ignores that class.
    #[must_use]
    pub fn ignore_index(mut self, index: i64) -> Self {
        self.ignore_index = Some(index);
        self
    }

    /// No label is ignored: every label must be in `0..classes`.
    #[must_use]
    pub fn no_ignore_index(mut self) -> Self {
        self.ignore_index = None;
        self
    }

    /// Label smoothing `ε` in `[0, 1]`: the target becomes `(1 - ε) one_hot + ε / C`.
    #[must_use]
    pub fn label_smoothing(mut self, epsilon: f64) -> Self {
        self.label_smoothing = epsilon;
        self
    }

    /// Adds `λ · lse²` per kept row (PaLM's z-loss; finite, `>= 0`;
    /// unweighted, divided by the same denominator as the rest).
    #[must_use]
    pub fn z_loss(mut self, lambda: f64) -> Self {
        self.z_loss = lambda;
        self
    }

    /// Caps the logits softly, `z = s · tanh(x / s)`, before everything
    /// else; the gradient includes the chain rule. `s` must be in
    /// `[1e-30, 1e30]` (practical caps are 30 or 50): outside it `s` or
    /// `1 / s` is not a normal `f32`, and the kernels compute in `f32`.
    #[must_use]
    pub fn softcap(mut self, s: f64) -> Self {
        self.softcap = Some(s);
        self
    }

    /// Sets how the gradient of long rows too large for the caches is
    /// written (default [`LongRowGradient::Auto`]); the results are bitwise
    /// the same for every choice.
    #[must_use]
    pub fn long_row_gradient(mut self, form: LongRowGradient) -> Self {
        self.long_rows = form;
        self
    }

    /// Checks the shapes — `classes`, the logits, then every other length
    /// (`lengths`, given the row count: targets and output buffers; then the
    /// class weights) — and only then the option values; returns the row
    /// count and a config whose `grad_scale` is not yet set.
    fn configure(
        &self,
        logits: &[T],
        classes: usize,
        lengths: impl FnOnce(usize) -> Result<(), LossError>,
    ) -> Result<(usize, Config<'a, T>), LossError> {
        let rows = check_shape(logits, classes)?;
        lengths(rows)?;
        if let Some(w) = self.class_weights {
            check_len("class_weights", classes, w.len())?;
        }
        let mut w_sum = classes as f64;
        if let Some(w) = self.class_weights {
            w_sum = 0.0;
            for (i, &v) in w.iter().enumerate() {
                check_non_negative("class_weights", Some(i), v.to_f64())?;
                w_sum += v.to_f64();
            }
        }
        let eps = self.label_smoothing;
        if !(0.0..=1.0).contains(&eps) {
            return Err(LossError::InvalidOption {
                option: "label_smoothing",
                index: None,
                value: eps,
                expected: "a value in [0, 1]",
            });
        }
        check_non_negative("z_loss", None, self.z_loss)?;
        if let Some(s) = self.softcap {
            if !(crate::options::SOFTCAP_MIN..=crate::options::SOFTCAP_MAX).contains(&s) {
                return Err(LossError::InvalidOption {
                    option: "softcap",
                    index: None,
                    value: s,
                    expected: crate::options::SOFTCAP_EXPECTED,
                });
            }
        }
        let backend = self.common.backend.resolve()?;
        Ok((
            rows,
            Config {
                backend,
                classes,
                w: self.class_weights,
                w_sum,
                ignore: self.ignore_index,
                eps,
                z_loss: self.z_loss,
                cap: self.softcap.map(|s| Cap {
                    cap: T::from_f64(s),
                    inv: T::from_f64(1.0 / s),
                }),
                cap_f64: self.softcap,
                grad_scale: 0.0,
                stream: false,
                long_rows: self.long_rows,
            },
        ))
    }

    /// Validates the labels and returns the mean's denominator: the summed
    /// class weight of the kept rows.
    fn label_weight<L: Label>(&self, cfg: &Config<'_, T>, labels: &[L]) -> Result<f64, LossError> {
        let mut total = 0.0;
        for (row, &label) in labels.iter().enumerate() {
            let l = label.to_i64();
            if Some(l) == cfg.ignore {
                continue;
            }
            if l < 0 || l as u64 >= cfg.classes as u64 {
                return Err(LossError::LabelOutOfRange {
                    index: row,
                    label: l,
                    classes: cfg.classes,
                });
            }
            total += cfg.w.map_or(1.0, |w| w[l as usize].to_f64());
        }
        Ok(total)
    }

    fn run_labels<L: Label>(
        &self,
        logits: &[T],
        classes: usize,
        labels: &[L],
        out: RowsOut<'_, T>,
    ) -> Result<(f64, Partial, Option<f64>), LossError> {
        let (_, mut cfg) = self.configure(logits, classes, |rows| {
            check_len("labels", rows, labels.len())?;
            check_out(&out, rows, logits.len())
        })?;
        self.common.check_reduction()?;
        let weight = self.label_weight(&cfg, labels)?;
        let plan = self.common.plan(weight)?;
        let (kernel_scale, divisor) = plan.kernel_grad_scale::<T>();
        cfg.grad_scale = kernel_scale;
        let sum = run_rows(&cfg, logits, Targets::Labels(L::labels(labels)), out)?;
        Ok((plan.reduce(sum), Partial { sum, weight }, divisor))
    }

    fn run_dense(
        &self,
        logits: &[T],
        classes: usize,
        targets: &[T],
        out: RowsOut<'_, T>,
    ) -> Result<(f64, Partial, Option<f64>), LossError> {
        let (rows, mut cfg) = self.configure(logits, classes, |rows| {
            check_len("targets", logits.len(), targets.len())?;
            check_out(&out, rows, logits.len())
        })?;
        let weight = rows as f64;
        let plan = self.common.plan(weight)?;
        let (kernel_scale, divisor) = plan.kernel_grad_scale::<T>();
        cfg.grad_scale = kernel_scale;
        let sum = run_rows::<T>(&cfg, logits, Targets::Dense(targets), out)?;
        Ok((plan.reduce(sum), Partial { sum, weight }, divisor))
    }

    /// The reduced loss with integer labels (one per row).
    ///
    /// # Errors
    /// [`LossError::ZeroClasses`], [`LossError::NotDivisible`],
    /// [`LossError::LengthMismatch`] (labels, class weights),
    /// [`LossError::InvalidOption`], [`LossError::LabelOutOfRange`],
    /// [`LossError::BackendUnavailable`].
    pub fn loss<L: Label>(
        &self,
        logits: &[T],
        classes: usize,
        labels: &[L],
    ) -> Result<T, LossError> {
        self.run_labels(logits, classes, labels, RowsOut::None)
            .map(|(l, _, _)| T::from_f64(l))
    }

    /// The reduced loss, and its gradient with respect to the logits written
    /// into `grad` (same length as `logits`): one read of the logits for the
    /// log-sum-exp, one more for the gradient.
    ///
    /// # Errors
    /// As [`CrossEntropy::loss`], plus [`LossError::LengthMismatch`] for
    /// `grad`. `grad` is untouched when an error is returned.
    pub fn loss_grad<L: Label>(
        &self,
        logits: &[T],
        classes: usize,
        labels: &[L],
        grad: &mut [T],
    ) -> Result<T, LossError> {
        let (loss, _, divisor) =
            self.run_labels(logits, classes, labels, RowsOut::Grad(&mut *grad))?;
        divide_gradient(grad, divisor);
        Ok(T::from_f64(loss))
    }

    /// The loss of each row into `out` (length `rows`); ignored rows get 0.
    ///
    /// # Errors
    /// As [`CrossEntropy::loss`], plus [`LossError::LengthMismatch`] for `out`.
    pub fn per_row<L: Label>(
        &self,
        logits: &[T],
        classes: usize,
        labels: &[L],
        out: &mut [T],
    ) -> Result<(), LossError> {
        self.run_labels(logits, classes, labels, RowsOut::PerRow(out))
            .map(|_| ())
    }

    /// The `(sum of row losses, summed weight of the kept rows)` pair; see
    /// [`Partial`].
    ///
    /// # Errors
    /// As [`CrossEntropy::loss`].
    pub fn partial<L: Label>(
        &self,
        logits: &[T],
        classes: usize,
        labels: &[L],
    ) -> Result<Partial, LossError> {
        self.run_labels(logits, classes, labels, RowsOut::None)
            .map(|(_, p, _)| p)
    }

    /// The reduced loss with probability targets (`targets` has the shape of
    /// `logits`), seed eq. 13: `row = -Σ_c w_c t'_c ln p_c` with
    /// `t' = (1 - ε) t + ε / C`; `Mean` divides by the row count (as PyTorch
    /// does). A term with `w_c t'_c = 0` counts 0, so a masked `-inf` logit
    /// with zero target probability is fine (PyTorch returns NaN there).
    /// `ignore_index` does not apply.
    ///
    /// ```
    /// use loss_kernels::CrossEntropy;
    ///
    /// # fn main() -> Result<(), loss_kernels::LossError> {
    /// let logits = [0.0_f64, 0.0];
    /// let targets = [0.25_f64, 0.75];
    /// let loss = CrossEntropy::new().loss_dense(&logits, 2, &targets)?;
    /// assert!((loss - 2.0_f64.ln()).abs() < 1e-15);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`CrossEntropy::loss`] (no label errors), and
    /// [`LossError::LengthMismatch`] for `targets`.
    pub fn loss_dense(&self, logits: &[T], classes: usize, targets: &[T]) -> Result<T, LossError> {
        self.run_dense(logits, classes, targets, RowsOut::None)
            .map(|(l, _, _)| T::from_f64(l))
    }

    /// [`loss_dense`](Self::loss_dense) and its gradient into `grad`.
    ///
    /// # Errors
    /// As [`CrossEntropy::loss_dense`], plus [`LossError::LengthMismatch`] for `grad`.
    pub fn loss_grad_dense(
        &self,
        logits: &[T],
        classes: usize,
        targets: &[T],
        grad: &mut [T],
    ) -> Result<T, LossError> {
        let (loss, _, divisor) =
            self.run_dense(logits, classes, targets, RowsOut::Grad(&mut *grad))?;
        divide_gradient(grad, divisor);
        Ok(T::from_f64(loss))
    }

    /// The loss of each row with probability targets into `out` (length `rows`).
    ///
    /// # Errors
    /// As [`CrossEntropy::loss_dense`], plus [`LossError::LengthMismatch`] for `out`.
    pub fn per_row_dense(
        &self,
        logits: &[T],
        classes: usize,
        targets: &[T],
        out: &mut [T],
    ) -> Result<(), LossError> {
        self.run_dense(logits, classes, targets, RowsOut::PerRow(out))
            .map(|_| ())
    }

    /// The `(sum of row losses, row count)` pair with probability targets.
    ///
    /// # Errors
    /// As [`CrossEntropy::loss_dense`].
    pub fn partial_dense(
        &self,
        logits: &[T],
        classes: usize,
        targets: &[T],
    ) -> Result<Partial, LossError> {
        self.run_dense(logits, classes, targets, RowsOut::None)
            .map(|(_, p, _)| p)
    }
}

/// Checks `classes` and the logits length; returns the row count.
fn check_shape<T>(logits: &[T], classes: usize) -> Result<usize, LossError> {
    if classes == 0 {
        return Err(LossError::ZeroClasses);
    }
    if !logits.len().is_multiple_of(classes) {
        return Err(LossError::NotDivisible {
            len: logits.len(),
            classes,
        });
    }
    Ok(logits.len() / classes)
}

fn check_out<T>(out: &RowsOut<'_, T>, rows: usize, len: usize) -> Result<(), LossError> {
    match out {
        RowsOut::None => Ok(()),
        RowsOut::Grad(g) => check_len("grad", len, g.len()),
        RowsOut::PerRow(o) => check_len("out", rows, o.len()),
        RowsOut::PerClass(o, _) => check_len("out", len, o.len()),
    }
}

/// Per-class outputs (gradients, softmax) at least this large are written
/// with streaming stores, which skip the read for ownership of a plain store
/// and leave the caches to the inputs. Set above the L3 of the machine this
/// was measured on (32 MiB): at 16 MiB (4096 x 1000 `f32`, which fits in L3
/// together with its logits) streaming measured slower than plain stores
/// (best of 25: 3.4 ms vs 2.9 ms), because a plain-stored gradient stays in
/// L3 between calls. Labelled loss + gradient without a softcap does not
/// recompute the exponentials for a streamed gradient: rows of up to
/// [`COL_LEAF`] classes store them in the gradient and rescale them in
/// place, which measured faster (`f32`, 1 thread, median of 15 calls: 32768
/// × 1000 2.28 against 1.49 G elements/s); longer rows either do the same
/// or store them in a scratch row and stream the gradient from there,
/// whichever [`LongRowGradient`] chooses (see [`huge_rows`]).
const STREAM_MIN_BYTES: usize = 64 << 20;

/// Runs every row of a validated call through the deterministic tree.
fn run_rows<T: Float>(
    cfg: &Config<'_, T>,
    logits: &[T],
    targets: Targets<'_, T>,
    out: RowsOut<'_, T>,
) -> Result<f64, LossError> {
    let leaf_rows = if cfg.classes > COL_LEAF {
        HUGE_LEAF_ROWS
    } else {
        (ROW_LEAF / cfg.classes).max(1)
    };
    let rows = logits.len() / cfg.classes;
    let parallel_rows = (PARALLEL_MIN / cfg.classes).max(2);
    let per_class = match &out {
        RowsOut::Grad(g) | RowsOut::PerClass(g, _) => g.len(),
        RowsOut::None | RowsOut::PerRow(_) => 0,
    };
    let cfg = &Config {
        stream: per_class * core::mem::size_of::<T>() >= STREAM_MIN_BYTES,
        ..*cfg
    };
    let job = RowsJob {
        cfg,
        logits,
        targets,
        out,
        rows,
    };
    parallel::reduce(job, leaf_rows, parallel_rows)
}

pub(crate) struct RowsJob<'a, 'c, T> {
    cfg: &'c Config<'c, T>,
    logits: &'a [T],
    targets: Targets<'a, T>,
    out: RowsOut<'a, T>,
    rows: usize,
}

impl<T: Float> Job for RowsJob<'_, '_, T> {
    type Output = f64;

    fn combine(a: f64, b: f64) -> f64 {
        a + b
    }

    fn units(&self) -> usize {
        self.rows
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let c = self.cfg.classes;
        let (l0, l1) = self.logits.split_at(mid * c);
        let (t0, t1) = match self.targets {
            Targets::Labels(l) => {
                let (a, b) = l.split_at(mid);
                (Targets::Labels(a), Targets::Labels(b))
            }
            Targets::Dense(t) => {
                let (a, b) = t.split_at(mid * c);
                (Targets::Dense(a), Targets::Dense(b))
            }
            Targets::None => (Targets::None, Targets::None),
        };
        let (o0, o1) = match self.out {
            RowsOut::None => (RowsOut::None, RowsOut::None),
            RowsOut::Grad(g) => {
                let (a, b) = g.split_at_mut(mid * c);
                (RowsOut::Grad(a), RowsOut::Grad(b))
            }
            RowsOut::PerRow(o) => {
                let (a, b) = o.split_at_mut(mid);
                (RowsOut::PerRow(a), RowsOut::PerRow(b))
            }
            RowsOut::PerClass(o, w) => {
                let (a, b) = o.split_at_mut(mid * c);
                (RowsOut::PerClass(a, w), RowsOut::PerClass(b, w))
            }
        };
        (
            RowsJob {
                cfg: self.cfg,
                logits: l0,
                targets: t0,
                out: o0,
                rows: mid,
            },
            RowsJob {
                cfg: self.cfg,
                logits: l1,
                targets: t1,
                out: o1,
                rows: self.rows - mid,
            },
        )
    }

    fn run(self) -> Result<f64, LossError> {
        T::run_rows(self)
    }
}

impl<T: Float> RowsJob<'_, '_, T> {
    /// [`Job::run`], reached through [`Float`] so that it is compiled in this
    /// crate (see `float::sealed`).
    pub(crate) fn run_here(self) -> Result<f64, LossError> {
        if self.cfg.classes <= COL_LEAF {
            Ok(simd::dispatch(self.cfg.backend, self))
        } else {
            Ok(huge_rows(self))
        }
    }
}

/// What pass 2 of a row needs, from the row's statistics (all `f64`).
struct RowPlan {
    /// The row's loss (0 for an ignored row, the lse for the primitive).
    loss: f64,
    m: f64,
    ln_s: f64,
    alpha: f64,
    b1: f64,
    b0: f64,
    /// Gradient of the target class (labels only), overriding pass 2's value.
    target_grad: Option<(usize, f64)>,
    /// `(M_off, e^{M_off - lse})` (`M_off`: the maximum of the classes
    /// other than the target) when the plan has the latter without an
    /// `exp` of its own (the common labelled row): the scale of
    /// exponentials stored from the origin `M_off`, before `alpha`.
    off_scale: Option<(f64, f64)>,
    /// `(w, v)` when the row's loss is `w·ln(1 + v)` and that logarithm is
    /// left to the caller (a common labelled row planned with `defer_ln`):
    /// [`Losses`] takes several rows' at once. `loss` is then 0 and `ln_s`
    /// NaN (pass 2 scales by `off_scale`).
    deferred: Option<(f64, f64)>,
}

/// The target of one row.
#[derive(Clone, Copy)]
enum RowTarget<'a, T> {
    Ignored,
    Label(usize),
    Dense(&'a [T]),
    None,
}

impl<T: Float> Config<'_, T> {
    fn cap_value(&self, x: f64) -> f64 {
        match self.cap_f64 {
            Some(s) => s * (x / s).tanh(),
            None => x,
        }
    }

    /// `dz/dx = 1 - tanh²(x / s) = 1 / cosh²(x / s)`, from `x`: the form
    /// `1 - (z / s)²` cancels when the cap saturates.
    fn cap_factor(&self, x: f64) -> f64 {
        match self.cap_f64 {
            Some(s) => {
                let c = (x / s).cosh();
                1.0 / (c * c)
            }
            None => 1.0,
        }
    }

    /// Dense targets of a row with the smoothing coefficients.
    fn dense<'t>(&self, t: &'t [T]) -> Dense<'t, T> {
        Dense {
            t,
            keep: T::from_f64(1.0 - self.eps),
            add: T::from_f64(self.eps / self.classes as f64),
        }
    }

    /// Pass 1 of a row, given a runner of sweeps over class ranges; `grad`:
    /// whether pass 2 runs (else only `loss` of the plan is used).
    /// (Inlined into the SIMD kernel, so the runner is compiled there too.)
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn plan_row(
        &self,
        row: &[T],
        target: RowTarget<'_, T>,
        grad: bool,
        defer_ln: bool,
        mut sweep: impl FnMut(&[(usize, usize)], Option<Dense<'_, T>>, Sweep<T>) -> RowStats,
    ) -> RowPlan {
        let c = self.classes;
        let g = self.grad_scale;
        let eps = self.eps;
        let lambda = self.z_loss;
        match target {
            RowTarget::Ignored => RowPlan::IGNORED,
            RowTarget::None => {
                let st = sweep(&[(0, c)], None, Sweep::Lse);
                RowPlan {
                    loss: st.lse(),
                    m: st.m,
                    ln_s: st.s.ln(),
                    alpha: 0.0,
                    b1: 0.0,
                    b0: 0.0,
                    target_grad: None,
                    off_scale: None,
                    deferred: None,
                }
            }
            RowTarget::Label(t) => {
                let ranges = [(0, t), (t + 1, c)];
                let off = sweep(&ranges, None, Sweep::Lse);
                let x_t = row.get(t).map_or(f64::NAN, |x| x.to_f64());
                // A +inf target logit makes the row's lse NaN, as any +inf
                // logit does (the off-target sweep alone cannot see it).
                let z_t = match self.cap_value(x_t) {
                    f64::INFINITY => f64::NAN,
                    z => z,
                };
                let w_t = self.w.and_then(|w| w.get(t)).map_or(1.0, |w| w.to_f64());
                let gap = off.m - z_t;
                if eps == 0.0 && gap.is_finite() && gap < 700.0 && off.s.is_finite() {
                    // The common row: finite, no smoothing. With
                    // v = e^u = S_off e^{M_off - z_t} (no overflow), lse - z_t =
                    // ln_1p(v), σ(u) = 1 / (1 + 1/v): two libm calls a row.
                    let e_gap = gap.exp();
                    let v = off.s * e_gap;
                    // Without a z-loss nothing else needs ln(1 + v) (pass 2
                    // scales stored exponentials by `off_scale`): the
                    // caller may take it, with other rows'.
                    let deferred = (defer_ln && lambda == 0.0).then_some((w_t, v));
                    let nll = match deferred {
                        Some(_) => f64::NAN,
                        None => ln_1p_nonneg(v),
                    };
                    let lse = z_t + nll;
                    let mut loss = if deferred.is_some() { 0.0 } else { w_t * nll };
                    let mut k = 0.0;
                    if lambda > 0.0 {
                        loss += lambda * lse * lse;
                        k += 2.0 * lambda * lse;
                    }
                    if !grad {
                        return RowPlan {
                            loss,
                            deferred,
                            ..RowPlan::IGNORED
                        };
                    }
                    // σ(u) = 1 / (1 + 1/v) and p_t = σ(-u) = 1 / (1 + v):
                    // 1 - σ(u) would lose p_t's digits for an unlikely target.
                    let sig = 1.0 / (1.0 + 1.0 / v);
                    let p_t = 1.0 / (1.0 + v);
                    let grad_t = g * (-w_t * sig + k * p_t) * self.cap_factor(x_t);
                    let m = off.m.max(z_t);
                    return RowPlan {
                        loss,
                        m,
                        // lse - m, exact up to one rounding of the sum.
                        ln_s: (z_t - m) + nll,
                        alpha: g * (w_t + k),
                        b1: 0.0,
                        b0: 0.0,
                        target_grad: Some((t, grad_t)),
                        // e^{M_off - lse} = e^{gap - ln(1 + v)}.
                        off_scale: Some((off.m, e_gap / (1.0 + v))),
                        deferred,
                    };
                }
                let all = off.merge(RowStats {
                    m: z_t,
                    s: 1.0,
                    ..RowStats::EMPTY
                });
                let lse = all.lse();
                // lse - z_t = softplus(u), u = ln(off-target mass / e^{z_t}).
                let u = off.s.ln() + (off.m - z_t);
                let nll = softplus(u);
                let mut loss = (1.0 - eps) * w_t * nll;
                let mut k = 0.0;
                if eps > 0.0 {
                    // Σ_c w_c (lse - z_c): the off-target classes' non-negative
                    // terms, plus the target's w_t · nll.
                    let off_sum = off_target_nll(off, all, u, |kind| sweep(&ranges, None, kind));
                    loss += eps / c as f64 * (off_sum + w_t * nll);
                    k += eps * self.w_sum / c as f64;
                }
                if lambda > 0.0 {
                    loss += lambda * lse * lse;
                    k += 2.0 * lambda * lse;
                }
                // p_t - 1 = -σ(u) and p_t = σ(-u): the target's gradient
                // without cancellation (1 - σ(u) loses p_t's digits when the
                // target is unlikely).
                let sig = sigmoid(u);
                let p_t = sigmoid(-u);
                let grad_t = g
                    * (-(1.0 - eps) * w_t * sig + k * p_t - eps * w_t / c as f64)
                    * self.cap_factor(x_t);
                RowPlan {
                    loss,
                    m: all.m,
                    ln_s: all.s.ln(),
                    alpha: g * ((1.0 - eps) * w_t + k),
                    b1: 0.0,
                    b0: g * eps / c as f64,
                    target_grad: Some((t, grad_t)),
                    off_scale: None,
                    deferred: None,
                }
            }
            RowTarget::Dense(t) => {
                let ranges = [(0, c)];
                let dense = Some(self.dense(t));
                let st = sweep(&ranges, dense, Sweep::Lse);
                let origin = shift_origin(st.m);
                let side = sweep(&ranges, dense, Sweep::Side(T::from_f64(origin)));
                let mut ln_s = st.s.ln();
                // Σ_c w_c t'_c (lse - z_c) = a ln s + d (for a finite max):
                // two non-negative terms. When it is small against a, ln s
                // must keep its relative accuracy: s - 1 without cancellation.
                // Targets outside [0, 1] (not validated, as in PyTorch) can
                // make a negative, and then a ln s is a term of its own,
                // however small ln s is against d: pass 1's s, summed in T
                // lanes before f64, made ln s = 3.4e-6 0.7% off (fuzz,
                // ce_dense f32 on the scalar backend, t = -8.2e23).
                let a = side.a;
                let small = if a > 0.0 {
                    ln_s + side.d / a < 1.0
                } else {
                    a < 0.0 && ln_s < 1.0
                };
                if st.lse().is_finite() && small {
                    ln_s = ln_sum(sweep(&ranges, None, Sweep::Excess(T::from_f64(st.m))));
                }
                let lse = st.m + ln_s;
                // A NaN or +inf logit makes the row NaN, and so does a row
                // of only `-inf` logits (lse = -inf), even where every w t'
                // is 0 (then a = d = 0).
                let mut loss = if lse.is_nan() || lse == f64::NEG_INFINITY {
                    f64::NAN
                } else {
                    rebase(side.d, side.a, (st.m - origin) + ln_s)
                };
                let mut k = side.a;
                if lambda > 0.0 {
                    loss += lambda * lse * lse;
                    k += 2.0 * lambda * lse;
                }
                RowPlan {
                    loss,
                    m: st.m,
                    ln_s,
                    alpha: g * k,
                    b1: g * (1.0 - eps),
                    b0: g * eps / c as f64,
                    target_grad: None,
                    off_scale: None,
                    deferred: None,
                }
            }
        }
    }
}

/// `Σ_{c ≠ t} w_c (lse - z_c)` of a labelled row with smoothing, from the
/// off-target state `off`, the whole row's state `all` and
/// `u = ln S_off + M_off - z_t`; `side` runs a sweep over the off-target
/// classes.
///
/// With the off-target maximum `M` as origin it is `a (lse - M) + d`, and
/// `lse - M = ln S_off + softplus(-u)`: non-negative terms, each accurate,
/// so a confident row keeps its relative accuracy (`ln S_off` from an
/// excess sweep when it matters).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn off_target_nll<T: Float>(
    off: RowStats,
    all: RowStats,
    u: f64,
    mut side: impl FnMut(Sweep<T>) -> RowStats,
) -> f64 {
    let origin = shift_origin(off.m);
    let sums = side(Sweep::Side(T::from_f64(origin)));
    if sums.a == 0.0 {
        return sums.d;
    }
    let lse_minus_origin = if off.m.is_finite() && all.lse().is_finite() {
        let tail = softplus(-u);
        let mut ln_s = off.s.ln();
        if ln_s + tail + sums.d / sums.a < 1.0 {
            ln_s = ln_sum(side(Sweep::Excess(T::from_f64(off.m))));
        }
        ln_s + tail
    } else {
        all.lse() - origin
    };
    rebase(sums.d, sums.a, lse_minus_origin)
}

impl RowPlan {
    /// The plan of an ignored row: no loss, zero gradient.
    const IGNORED: RowPlan = RowPlan {
        loss: 0.0,
        m: 0.0,
        ln_s: 0.0,
        alpha: 0.0,
        b1: 0.0,
        b0: 0.0,
        target_grad: None,
        off_scale: None,
        deferred: None,
    };

    fn coefficients<T: Float>(&self, stream: bool) -> Pass2<T> {
        let (target, value) = self.target_grad.unwrap_or((usize::MAX, 0.0));
        Pass2 {
            m: T::from_f64(self.m),
            ln_s: T::from_f64(self.ln_s),
            alpha: T::from_f64(self.alpha),
            b1: T::from_f64(self.b1),
            b0: T::from_f64(self.b0),
            target,
            target_value: T::from_f64(value),
            stream,
        }
    }
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn row_target<'a, T>(cfg: &Config<'_, T>, targets: &Targets<'a, T>, r: usize) -> RowTarget<'a, T> {
    let c = cfg.classes;
    match *targets {
        Targets::Labels(labels) => match labels.get(r) {
            Some(l) => {
                if Some(l) == cfg.ignore || l < 0 || l as u64 >= c as u64 {
                    RowTarget::Ignored
                } else {
                    RowTarget::Label(l as usize)
                }
            }
            None => RowTarget::Ignored,
        },
        Targets::Dense(t) => RowTarget::Dense(&t[r * c..(r + 1) * c]),
        Targets::None => RowTarget::None,
    }
}

/// Writes a row's outputs from its plan, given a pass-2 runner.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn finish_row<T: Float>(
    plan: &RowPlan,
    target: RowTarget<'_, T>,
    out: &mut RowsOut<'_, T>,
    r: usize,
    c: usize,
    stream: bool,
    mut pass2: impl FnMut(Pass2<T>, Option<&[T]>, Write, &mut [T]),
) {
    // The target class's gradient is written by pass 2 itself (so that a
    // streamed row is never touched again by a plain store).
    match out {
        RowsOut::None => {}
        RowsOut::PerRow(o) => o[r] = T::from_f64(plan.loss),
        RowsOut::Grad(g) => {
            let gr = &mut g[r * c..(r + 1) * c];
            match target {
                RowTarget::Ignored => gr.fill(T::ZERO),
                RowTarget::Dense(t) => pass2(plan.coefficients(stream), Some(t), Write::Grad, gr),
                _ => pass2(plan.coefficients(stream), None, Write::Grad, gr),
            }
        }
        RowsOut::PerClass(o, write) => {
            let w = *write;
            pass2(
                plan.coefficients(stream),
                None,
                w,
                &mut o[r * c..(r + 1) * c],
            );
        }
    }
}

impl<T: Float> Kernel for RowsJob<'_, '_, T> {
    type Output = f64;

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn run<S: Simd>(self, s: S) -> f64 {
        rows_kernel::<S, T>(s, self)
    }
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn rows_kernel<S: Simd, T: Float>(s: S, job: RowsJob<'_, '_, T>) -> f64 {
    let cfg = job.cfg;
    let c = cfg.classes;
    let w = cfg.w;
    let cap = cfg.cap;
    let mut out = job.out;
    let grad = !matches!(out, RowsOut::None | RowsOut::PerRow(_));
    let mut sum = 0.0;
    // Labelled rows' loss + gradient without a softcap keep pass 1's
    // exponentials in the gradient row (one `exp` a class, not two; see
    // `STREAM_MIN_BYTES`).
    let keep_exp = cap.is_none() && matches!(job.targets, Targets::Labels(_));
    // Rows that stay in the L1 cache: the exact maximum first, then the
    // exponentials (measured 1.2 against 1.6 ms for 4096 × 1000 `f32`); a
    // longer row is read once, with the online maximum.
    let two_pass = c * core::mem::size_of::<T>() <= TWO_PASS_BYTES;
    // The common labelled row's ln(1 + v) is taken for several rows at
    // once where nothing else needs it: no per-row loss is written, and a
    // gradient is a rescale of stored exponentials (pass 2 from the logits
    // takes the plan's `ln_s`, which needs it).
    let defer_ln = match out {
        RowsOut::None => true,
        RowsOut::Grad(_) => keep_exp,
        RowsOut::PerRow(_) | RowsOut::PerClass(..) => false,
    };
    let mut losses = Losses::<S>::new();
    for (r, row) in job.logits.chunks_exact(c).enumerate() {
        let target = row_target(cfg, &job.targets, r);
        // The origin `M` of the exponentials stored in the gradient row.
        let mut stored: Option<f64> = None;
        let plan = {
            let mut dst = match &mut out {
                RowsOut::Grad(g) if keep_exp => Some(&mut g[r * c..(r + 1) * c]),
                _ => None,
            };
            cfg.plan_row(
                row,
                target,
                grad,
                defer_ln,
                #[cfg_attr(not(debug_assertions), inline(always))]
                #[cfg_attr(debug_assertions, inline)]
                |ranges, t, kind| {
                    let first_lse = matches!(kind, Sweep::Lse) && stored.is_none();
                    if let (true, None, Some(skip)) = (first_lse, cap, left_out(ranges, c)) {
                        if two_pass || dst.is_some() {
                            // (The second read asks for the next row's logits.)
                            let d = dst.as_deref_mut();
                            if let Some(st) = pass1_store::<S, T>(s, row, skip, d, c) {
                                stored = dst.is_some().then_some(st.m);
                                return st;
                            }
                        }
                    }
                    let seg = |(lo, hi): (usize, usize)| Segment {
                        z: &row[lo..hi],
                        w: w.map(|w| &w[lo..hi]),
                        t: t.map(|t| t.slice(lo, hi)),
                    };
                    match *ranges {
                        [a] => sweep::<S, T>(s, &[seg(a)], cap, kind),
                        [a, b] => sweep::<S, T>(s, &[seg(a), seg(b)], cap, kind),
                        _ => RowStats::EMPTY,
                    }
                },
            )
        };
        sum = losses.push(s, sum, plan.loss, plan.deferred);
        if let (Some(origin), RowsOut::Grad(g), RowTarget::Label(_)) = (stored, &mut out, target) {
            let (t, value) = plan.target_grad.unwrap_or((usize::MAX, 0.0));
            // α p_c = α e^{z_c - lse} = (α e^{M - lse}) e^{z_c - M}. When
            // the origin `M` is the off-target maximum (pass 1 read the row
            // without the target) the plan may have e^{M - lse} already,
            // which saves a libm `exp` a row (4096 x 1000 `f32` loss+grad,
            // 1 thread, four alternated runs: 3.47-3.58 -> 3.35-3.73 G
            // elem/s, medians 3.53 -> 3.65).
            // A deferred row has no `ln_s`: its exponentials must be the
            // ones `off_scale` scales.
            debug_assert!(
                plan.deferred.is_none() || plan.off_scale.is_some_and(|(m, _)| m == origin),
                "a deferred row's pass 2 needs off_scale"
            );
            let scale = plan.alpha
                * match plan.off_scale {
                    Some((m_off, e)) if m_off == origin => e,
                    _ => ((origin - plan.m) - plan.ln_s).exp(),
                };
            pass2_stored::<S, T>(
                s,
                w,
                T::from_f64(scale),
                T::from_f64(plan.b0),
                (t, T::from_f64(value)),
                &mut g[r * c..(r + 1) * c],
                c,
            );
            continue;
        }
        debug_assert!(
            plan.deferred.is_none() || !grad,
            "pass 2 needs the plan's ln_s"
        );
        finish_row(
            &plan,
            target,
            &mut out,
            r,
            c,
            cfg.stream,
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            |coef, t, write, dst| match write {
                Write::Grad => {
                    pass2_segment::<S, T, { Write::Grad as u8 }>(s, row, w, t, cap, coef, dst)
                }
                Write::LogSoftmax => pass2_segment::<S, T, { Write::LogSoftmax as u8 }>(
                    s, row, None, None, None, coef, dst,
                ),
                Write::Softmax => pass2_segment::<S, T, { Write::Softmax as u8 }>(
                    s, row, None, None, None, coef, dst,
                ),
            },
        );
    }
    sum = losses.flush(s, sum);
    if cfg.stream {
        T::Vec::<S>::stream_fence(s);
    }
    sum
}

/// The class a sweep over class `ranges` of a `c`-class row leaves out:
/// `Some(None)` for the whole row, `Some(Some(t))` for the row but class
/// `t` (a labelled row's target, as [`Config::plan_row`] asks), and `None`
/// for any other ranges (the sweep then reads them as they are).
fn left_out(ranges: &[(usize, usize)], c: usize) -> Option<Option<usize>> {
    match *ranges {
        [(0, hi)] if hi == c => Some(None),
        [(0, t), (lo, hi)] if lo == t + 1 && hi == c => Some(Some(t)),
        _ => None,
    }
}

/// Row losses added in row order, where a row's loss may be `w·ln(1 + v)`
/// with the logarithm still to take ([`RowPlan::deferred`]): from the first
/// of those on, rows are held until an `f64` vector of them is full, and
/// the deferred ones then take one vector [`math::log1p`] (`f64`, within 1 ulp of `std`)
/// instead of a libm call each (about 5% of cross entropy loss 4096 × 1000
/// `f32` at 1 thread, where a row takes about 250 ns). The sum is the same
/// sequence of additions in the same order, so it does not depend on
/// where a batch starts.
struct Losses<S: Simd> {
    /// A row's loss, or its `w`.
    loss: [f64; LOSS_BATCH],
    /// A deferred row's `v`, else 0.
    v: [f64; LOSS_BATCH],
    deferred: [bool; LOSS_BATCH],
    len: usize,
    /// How many of the `len` held rows are deferred.
    held: usize,
    _s: PhantomData<S>,
}

/// The most rows [`Losses`] holds (the most `f64` lanes of a backend).
const LOSS_BATCH: usize = 8;

impl<S: Simd> Losses<S> {
    fn new() -> Self {
        Losses {
            loss: [0.0; LOSS_BATCH],
            v: [0.0; LOSS_BATCH],
            deferred: [false; LOSS_BATCH],
            len: 0,
            held: 0,
            _s: PhantomData,
        }
    }

    /// Adds a row's loss (or holds it) after the rows before it; returns
    /// the running sum.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn push(&mut self, s: S, sum: f64, loss: f64, deferred: Option<(f64, f64)>) -> f64 {
        match deferred {
            None if self.len == 0 => sum + loss,
            None => {
                self.hold(loss, 0.0, false);
                self.flush_if_full(s, sum)
            }
            Some((w, v)) => {
                self.hold(w, v, true);
                self.held += 1;
                self.flush_if_full(s, sum)
            }
        }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn hold(&mut self, loss: f64, v: f64, deferred: bool) {
        self.loss[self.len] = loss;
        self.v[self.len] = v;
        self.deferred[self.len] = deferred;
        self.len += 1;
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn flush_if_full(&mut self, s: S, sum: f64) -> f64 {
        if self.len == <f64 as Float>::Vec::<S>::LANES.min(LOSS_BATCH) {
            self.flush(s, sum)
        } else {
            sum
        }
    }

    /// Takes the held logarithms and adds every held row, in order.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn flush(&mut self, s: S, mut sum: f64) -> f64 {
        type V<S> = <f64 as Float>::Vec<S>;
        let lanes = V::<S>::LANES.min(LOSS_BATCH);
        let mut ln = [0.0; LOSS_BATCH];
        if self.held > 0 {
            let v = V::<S>::load_partial(s, &self.v[..lanes], 0.0);
            math::log1p(s, v).store_partial(&mut ln[..lanes]);
        }
        let held = self.loss.iter().zip(&self.deferred).zip(&ln);
        for ((&loss, &deferred), &ln) in held.take(self.len) {
            sum += if deferred { loss * ln } else { loss };
        }
        (self.len, self.held) = (0, 0);
        sum
    }
}

/// Rows longer than [`COL_LEAF`]: each row's passes are split into column
/// blocks that run in parallel; pass 1 merges their [`RowStats`] in a fixed
/// tree order.
///
/// Labelled loss + gradient without a softcap keeps pass 1's exponentials
/// in the gradient row, as [`rows_kernel`] does for shorter rows, in blocks
/// of [`store_block`] classes: each block's exact maximum `M_b` first (a
/// read from memory), then `e^{z_c - M_b}` stored and summed (a read from
/// L1); the blocks' `(M_b, S_b)` merge in block order, and pass 2 only
/// rescales the stored values, by `α e^{M_b - lse}`: one `exp` per class
/// instead of two (256 × 131072 `f32`, 1 thread, `scripts/bench-report
/// --quick`: 1.93 against 1.47 G elements/s). With a streamed gradient and
/// no class weights the exponentials may go to a scratch row instead, the
/// rescale then written along the next row's pass 1 (below): the
/// [`LongRowGradient`] option, `Auto` by timing both ([`Tuner`]).
fn huge_rows<T: Float>(job: RowsJob<'_, '_, T>) -> f64 {
    let cfg = job.cfg;
    let c = cfg.classes;
    let mut out = job.out;
    let grad = !matches!(out, RowsOut::None | RowsOut::PerRow(_));
    let keep_exp = cfg.cap.is_none()
        && matches!(job.targets, Targets::Labels(_))
        && matches!(out, RowsOut::Grad(_));
    // Each block's `(M_b, Σ e^{z_c - M_b})` (rows without a softcap), then
    // its pass-2 scale (stored exponentials).
    let blocks_len = c.div_ceil(store_block::<T>());
    let mut blocks = vec![(f64::NEG_INFINITY, 0.0); if cfg.cap.is_none() { blocks_len } else { 0 }];
    let mut scales = vec![T::ZERO; if keep_exp { blocks_len } else { 0 }];
    // A gradient larger than the caches: the exponentials go to a scratch
    // row instead (two, used in turn), and each row's pass 2 is written
    // with streaming stores along the next row's pass 1 (`pending`: the
    // row, `b0`, target and value; its block scales stay in `scales`), so
    // that the stores overlap that row's reads and `exp`s and the gradient
    // is never read for ownership. Rows without class weights only: the
    // streaming step then is one load, one `mul_add` and one store a vector
    // (256 x 131072 `f32`, 1 thread: with the weights' and the target's
    // checks in that step the crate ran 20% below a standalone copy of the
    // scheme, without them 7%).
    //
    // Which of the two is faster depends on the CPU (see
    // [`LongRowGradient`]): `Auto` asks the [`Tuner`].
    let rows = job.logits.len() / c;
    let (pipelined, trial) =
        if keep_exp && cfg.stream && cfg.w.is_none() && c <= PIPELINE_MAX_CLASSES {
            match cfg.long_rows {
                LongRowGradient::Streamed => (true, false),
                LongRowGradient::InPlace => (false, false),
                LongRowGradient::Auto => Tuner::of::<T>().pick(rows),
            }
        } else {
            (false, false)
        };
    let start = trial.then(std::time::Instant::now);
    // Each scratch row starts on a 64-byte boundary (a large `Vec` often
    // starts 16 bytes past one), so that pass 1's stores into it are
    // aligned whatever the logits' and the gradient's alignment.
    let line = 64 / core::mem::size_of::<T>();
    let stride = if pipelined {
        c.next_multiple_of(line)
    } else {
        0
    };
    let mut scratch_buf = vec![T::ZERO; if pipelined { 2 * stride + line } else { 0 }];
    let skip = scratch_buf.as_ptr().align_offset(64).min(scratch_buf.len());
    let scratch = &mut scratch_buf[skip..];
    let mut pending: Option<PendingRow<T>> = None;
    let mut sum = 0.0;
    for (r, row) in job.logits.chunks_exact(c).enumerate() {
        let target = row_target(cfg, &job.targets, r);
        // Whether pass 1 left its exponentials in the gradient row (or in
        // the scratch row).
        let mut stored = false;
        let plan = {
            let (lo_half, hi_half) = scratch.split_at_mut(stride);
            let (cur, prev_src) = if r % 2 == 0 {
                (lo_half, &*hi_half)
            } else {
                (hi_half, &*lo_half)
            };
            let cur = &mut cur[..c.min(stride)];
            let prev_src = &prev_src[..c.min(stride)];
            let (mut dst, mut prev): (Option<&mut [T]>, _) = match &mut out {
                RowsOut::Grad(g) if pipelined => {
                    let prev = pending
                        .take()
                        .map(|p| p.pass2(cfg.backend, &scales, prev_src, g, c));
                    (Some(cur), prev)
                }
                RowsOut::Grad(g) if keep_exp => (Some(&mut g[r * c..(r + 1) * c]), None),
                _ => (None, None),
            };
            let plan = cfg.plan_row(row, target, grad, false, |ranges, t, kind| {
                // The class the sweep leaves out (`usize::MAX` for none).
                let skip = left_out(ranges, c).map(|t| t.unwrap_or(usize::MAX));
                if let (true, Sweep::Lse, false, Some(skip)) =
                    (cfg.cap.is_none(), kind, stored, skip)
                {
                    let job = ColumnExp {
                        backend: cfg.backend,
                        z: row,
                        lo: 0,
                        target: skip,
                        dst: dst.as_deref_mut(),
                        blocks: &mut blocks[..],
                        prev: prev.take(),
                    };
                    let _ = parallel::reduce(job, COL_LEAF, 2 * COL_LEAF);
                    let st = blocks.iter().fold(RowStats::EMPTY, |acc, &(m, s)| {
                        acc.merge(RowStats {
                            m,
                            s,
                            ..RowStats::EMPTY
                        })
                    });
                    if st.m.is_finite() {
                        stored = dst.is_some();
                        return st;
                    }
                }
                ranges.iter().fold(RowStats::EMPTY, |acc, &(lo, hi)| {
                    let col = ColumnPass1 {
                        backend: cfg.backend,
                        z: &row[lo..hi],
                        w: cfg.w.map(|w| &w[lo..hi]),
                        t: t.map(|t| t.slice(lo, hi)),
                        cap: cfg.cap,
                        kind,
                    };
                    acc.merge(
                        parallel::reduce(col, COL_LEAF, 2 * COL_LEAF).unwrap_or(RowStats {
                            m: f64::NAN,
                            s: f64::NAN,
                            ..RowStats::EMPTY
                        }),
                    )
                })
            });
            // The previous row's pass 2, if this row's pass 1 did not
            // take it along (a row without the stored sweep).
            if let Some(p) = prev {
                let _ = parallel::reduce(p, COL_LEAF, 2 * COL_LEAF);
            }
            plan
        };
        sum += plan.loss;
        if let (true, RowsOut::Grad(g), RowTarget::Label(_)) = (stored, &mut out, target) {
            let (t, value) = plan.target_grad.unwrap_or((usize::MAX, 0.0));
            // α p_c = α e^{z_c - lse} = (α e^{M_b - lse}) e^{z_c - M_b}.
            for (sc, &(m_b, _)) in scales.iter_mut().zip(&blocks) {
                *sc = T::from_f64(plan.alpha * ((m_b - plan.m) - plan.ln_s).exp());
            }
            if pipelined {
                pending = Some(PendingRow {
                    row: r,
                    b0: T::from_f64(plan.b0),
                    target: t,
                    value: T::from_f64(value),
                });
                continue;
            }
            let col = ColumnStored {
                backend: cfg.backend,
                w: cfg.w,
                scales: &scales,
                b0: T::from_f64(plan.b0),
                target: t,
                value: T::from_f64(value),
                src: None,
                out: &mut g[r * c..(r + 1) * c],
            };
            let _ = parallel::reduce(col, COL_LEAF, 2 * COL_LEAF);
            continue;
        }
        finish_row(
            &plan,
            target,
            &mut out,
            r,
            c,
            cfg.stream,
            |coef, t, write, dst| {
                let col = ColumnPass2 {
                    backend: cfg.backend,
                    x: row,
                    w: if write == Write::Grad { cfg.w } else { None },
                    t,
                    cap: if write == Write::Grad { cfg.cap } else { None },
                    coef,
                    write,
                    out: dst,
                };
                let _ = parallel::reduce(col, COL_LEAF, 2 * COL_LEAF);
            },
        );
    }
    if let (Some(p), RowsOut::Grad(g)) = (pending, &mut out) {
        let src = &scratch[(p.row % 2) * stride..][..c];
        let _ = parallel::reduce(
            p.pass2(cfg.backend, &scales, src, g, c),
            COL_LEAF,
            2 * COL_LEAF,
        );
    }
    if let Some(t0) = start {
        let per_element = t0.elapsed().as_secs_f64() / (rows * c) as f64;
        Tuner::of::<T>().record(pipelined, per_element);
    }
    sum
}

/// [`LongRowGradient::Auto`]'s choice between [`huge_rows`]' two forms, one
/// per element size. Until it has decided, each leaf of at least
/// [`Tuner::TRIAL_ROWS`] rows runs the form measured fewer times so far and
/// reports its time per element; after [`Tuner::TRIALS`] leaves of each, the
/// form with the lower best time stays for the rest of the process. (The
/// best, not the median: on a loaded machine a trial is only ever slowed
/// down. The first leaves also pay for the gradient's first touch.) The two
/// forms give the same bits, so the choice never changes a result.
struct Tuner {
    /// [`Tuner::UNDECIDED`], [`Tuner::STREAMED`] or [`Tuner::IN_PLACE`].
    choice: AtomicU8,
    trials: Mutex<Trials>,
}

/// The measurements of a [`Tuner`], index 0 the streamed form, 1 in place.
struct Trials {
    started: [u32; 2],
    done: [u32; 2],
    /// The best seconds per element of each form.
    best: [f64; 2],
}

impl Tuner {
    const UNDECIDED: u8 = 0;
    const STREAMED: u8 = 1;
    const IN_PLACE: u8 = 2;
    /// Leaves of each form measured before deciding.
    const TRIALS: u32 = 3;
    /// Leaves with fewer rows are not measured (the streamed form's first
    /// and last rows run alone); they take the streamed form.
    const TRIAL_ROWS: usize = 16;

    const fn new() -> Self {
        Tuner {
            choice: AtomicU8::new(Self::UNDECIDED),
            trials: Mutex::new(Trials {
                started: [0; 2],
                done: [0; 2],
                best: [f64::INFINITY; 2],
            }),
        }
    }

    fn of<T>() -> &'static Tuner {
        static TUNERS: [Tuner; 2] = [Tuner::new(), Tuner::new()];
        &TUNERS[usize::from(core::mem::size_of::<T>() > 4)]
    }

    fn trials(&self) -> std::sync::MutexGuard<'_, Trials> {
        // Nothing panics while the lock is held; a poisoned lock still
        // holds consistent counts.
        self.trials.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The form for a leaf of `rows` rows, and whether to time it.
    fn pick(&self, rows: usize) -> (bool, bool) {
        match self.choice.load(Ordering::Relaxed) {
            Self::STREAMED => return (true, false),
            Self::IN_PLACE => return (false, false),
            _ => {}
        }
        if rows < Self::TRIAL_ROWS {
            return (true, false);
        }
        let mut t = self.trials();
        let streamed = t.started[0] <= t.started[1];
        t.started[usize::from(!streamed)] += 1;
        (streamed, true)
    }

    /// A timed leaf of the `streamed` form (or not): its seconds per element.
    fn record(&self, streamed: bool, per_element: f64) {
        let mut t = self.trials();
        let i = usize::from(!streamed);
        t.done[i] += 1;
        t.best[i] = t.best[i].min(per_element);
        if t.done.iter().all(|&d| d >= Self::TRIALS) {
            let form = if t.best[0] <= t.best[1] {
                Self::STREAMED
            } else {
                Self::IN_PLACE
            };
            self.choice.store(form, Ordering::Relaxed);
        }
    }
}

/// A row of [`huge_rows`]' pipelined form whose pass 2 waits for the next
/// row's pass 1: its index, `b0`, and the target class with its value.
#[derive(Clone, Copy)]
struct PendingRow<T> {
    row: usize,
    b0: T,
    target: usize,
    value: T,
}

impl<T: Float> PendingRow<T> {
    /// Its pass 2 from the scratch row `src` (its exponentials) into its row
    /// of the gradient `g` (rows of `c` classes), with the block `scales`.
    /// The pipelined form has no class weights.
    fn pass2<'a>(
        self,
        backend: Backend,
        scales: &'a [T],
        src: &'a [T],
        g: &'a mut [T],
        c: usize,
    ) -> ColumnStored<'a, T> {
        ColumnStored {
            backend,
            w: None,
            scales,
            b0: self.b0,
            target: self.target,
            value: self.value,
            src: Some(src),
            out: &mut g[self.row * c..(self.row + 1) * c],
        }
    }
}

/// Elements per block of the stored exponentials of long rows: 16 KiB, so
/// that each block's second read (after its exact maximum) hits L1.
fn store_block<T>() -> usize {
    TWO_PASS_BYTES / core::mem::size_of::<T>()
}

/// Columns of a long row for its stored-exponential pass 1 (see
/// [`huge_rows`]), in blocks of [`store_block`] classes counted from the
/// row's start: each block's exact maximum `M_b` (the `target` class left
/// out), `e^{z_c - M_b}` stored into `dst` and `(M_b, Σ e^{z_c - M_b})`
/// into `blocks` (`(-inf, 0)` and zeros stored for a block of only `-inf`;
/// `M_b = +inf` leaves the block unwritten, and the row falls back to the
/// plain sweep).
pub(crate) struct ColumnExp<'a, T> {
    backend: Backend,
    z: &'a [T],
    /// Where `z` starts in the row (a multiple of the block).
    lo: usize,
    target: usize,
    dst: Option<&'a mut [T]>,
    blocks: &'a mut [(f64, f64)],
    /// The previous row's pass 2 from the scratch row (the same columns),
    /// written along this pass ([`huge_rows`]' pipelined form).
    prev: Option<ColumnStored<'a, T>>,
}

impl<T: Float> Job for ColumnExp<'_, T> {
    type Output = ();
    fn combine(_: (), _: ()) {}
    fn units(&self) -> usize {
        self.z.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        // `mid` is a multiple of COL_LEAF, hence of the block.
        let (z0, z1) = self.z.split_at(mid);
        let (d0, d1) = match self.dst {
            Some(d) => {
                let (a, b) = d.split_at_mut(mid);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let (b0, b1) = self.blocks.split_at_mut(mid / store_block::<T>());
        let (p0, p1) = match self.prev {
            Some(p) => {
                let (a, b) = p.split_at(mid);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        (
            ColumnExp {
                z: z0,
                dst: d0,
                blocks: b0,
                prev: p0,
                ..self
            },
            ColumnExp {
                z: z1,
                lo: self.lo + mid,
                dst: d1,
                blocks: b1,
                prev: p1,
                ..self
            },
        )
    }
    fn run(self) -> Result<(), LossError> {
        T::run_column_exp(self)
    }
}

impl<T: Float> ColumnExp<'_, T> {
    /// [`Job::run`], reached through [`Float`] so that it is compiled in this
    /// crate (see `float::sealed`).
    pub(crate) fn run_here(self) -> Result<(), LossError> {
        simd::dispatch(self.backend, self);
        Ok(())
    }
}

impl<T: Float> Kernel for ColumnExp<'_, T> {
    type Output = ();
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn run<S: Simd>(self, s: S) {
        let b = store_block::<T>();
        let mut dst = self.dst;
        let mut prev = self.prev;
        for (k, (z, st)) in self.z.chunks(b).zip(self.blocks.iter_mut()).enumerate() {
            let mut d = dst.as_deref_mut().map(|d| &mut d[k * b..k * b + z.len()]);
            let mut flush = prev.as_mut().map(|p| p.flush_block::<S>(s, k, z.len()));
            let t = self.target.wrapping_sub(self.lo + k * b);
            let n = z.len();
            let (ranges, nr) = if t < n {
                ([(0, t), (t + 1, n)], 2)
            } else {
                ([(0, n), (n, n)], 1)
            };
            let ranges = &ranges[..nr];
            // (A NaN maximum, whichever way the vector max treats NaN,
            // stays NaN and sends the row to the plain sweep. Loops, not
            // iterator closures: see `pass1_store`.)
            let mut m = f64::NEG_INFINITY;
            for &(lo, hi) in ranges {
                let mr = max_of::<S, T, true>(s, &z[lo..hi]).to_f64();
                m = if m.is_nan() || mr.is_nan() {
                    f64::NAN
                } else {
                    m.max(mr)
                };
            }
            *st = if m == f64::NEG_INFINITY {
                // No mass in this block (only -inf besides the target).
                if let Some(d) = d {
                    d.fill(T::ZERO);
                }
                (m, 0.0)
            } else if m.is_finite() {
                let origin = T::from_f64(m);
                // How far ahead the sweep asks for logits, so that a later
                // block's first read (its maximum) finds them in the cache:
                // the next block with stores (loss+grad), the one after it
                // without (loss; 256 x 131072 `f32`, 1 thread, simd_quick,
                // five alternated runs: 0.77-0.81 of the read reference one
                // block ahead, 0.80-0.84 two; half a block 0.60, none 0.55).
                // On Intel the loss asks three blocks ahead, into L2 only:
                // into L1, three blocks (48 KiB) would evict the block being
                // read (Xeon model 207, 48 KiB L1d, 1 thread,
                // `ce_throughput loss 256 131072`, three alternated runs:
                // 2.64-2.67 against 1.99-2.19 G elem/s for two blocks into
                // L1; into L2, two blocks 2.36-2.61, four 2.55-2.73; see
                // the README).
                let ahead = if d.is_some() {
                    (b, false)
                } else if simd::is_intel() {
                    (3 * b, true)
                } else {
                    (2 * b, false)
                };
                let mut sum = 0.0;
                for &(lo, hi) in ranges {
                    let d = d.as_deref_mut().map(|d| &mut d[lo..hi]);
                    sum += store_exp::<S, T>(s, &z[lo..hi], origin, d, ahead, flush.as_mut());
                }
                (m, sum)
            } else {
                (f64::INFINITY, f64::NAN)
            };
            if let Some(f) = flush {
                f.finish(s);
            }
        }
        if let Some(p) = prev {
            p.fence_and_target(s);
        }
    }
}

/// A column block of a long row's pass 2 from stored exponentials (in
/// `out` itself, or in `src`): see [`pass2_stored`].
pub(crate) struct ColumnStored<'a, T> {
    backend: Backend,
    /// Class weights: always `None` with `src` (the streaming step of
    /// [`Flush`] has none; see [`PendingRow::pass2`]).
    w: Option<&'a [T]>,
    /// The scale of each block of [`store_block`] classes.
    scales: &'a [T],
    b0: T,
    /// The target class within this block (past its end for none).
    target: usize,
    value: T,
    /// Where the exponentials are when not in `out` itself (the scratch
    /// row of [`huge_rows`]' pipelined form): then `out` gets streaming
    /// stores, and the run ends with a fence.
    src: Option<&'a [T]>,
    out: &'a mut [T],
}

impl<T: Float> Job for ColumnStored<'_, T> {
    type Output = ();
    fn combine(_: (), _: ()) {}
    fn units(&self) -> usize {
        self.out.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (o0, o1) = self.out.split_at_mut(mid);
        let (w0, w1) = parallel::split_opt_ref(self.w, mid);
        let (s0, s1) = parallel::split_opt_ref(self.src, mid);
        let (c0, c1) = self.scales.split_at(mid / store_block::<T>());
        (
            ColumnStored {
                w: w0,
                scales: c0,
                src: s0,
                out: o0,
                ..self
            },
            ColumnStored {
                w: w1,
                scales: c1,
                src: s1,
                out: o1,
                // An index below `mid` wraps past the right half's end.
                target: self.target.wrapping_sub(mid),
                ..self
            },
        )
    }
    fn run(self) -> Result<(), LossError> {
        T::run_column_stored(self)
    }
}

impl<T: Float> ColumnStored<'_, T> {
    /// [`Job::run`], reached through [`Float`] so that it is compiled in this
    /// crate (see `float::sealed`).
    pub(crate) fn run_here(self) -> Result<(), LossError> {
        simd::dispatch(self.backend, self);
        Ok(())
    }
}

impl<T: Float> Kernel for ColumnStored<'_, T> {
    type Output = ();
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn run<S: Simd>(mut self, s: S) {
        let b = store_block::<T>();
        if self.src.is_some() {
            debug_assert!(self.w.is_none(), "the streamed pass 2 has no class weights");
            let n = self.out.len();
            for k in 0..n.div_ceil(b) {
                let len = b.min(n - k * b);
                self.flush_block::<S>(s, k, len).finish(s);
            }
            self.fence_and_target(s);
            return;
        }
        let mut out = self.out;
        let mut k = 0;
        while !out.is_empty() {
            let len = b.min(out.len());
            let (o, rest) = out.split_at_mut(len);
            let w = self.w.map(|w| &w[k * b..k * b + len]);
            let t = self.target.wrapping_sub(k * b);
            pass2_stored::<S, T>(s, w, self.scales[k], self.b0, (t, self.value), o, 0);
            out = rest;
            k += 1;
        }
    }
}

impl<T: Float> ColumnStored<'_, T> {
    /// The [`Flush`] of block `k` (`len` classes) from `src`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn flush_block<S: Simd>(&mut self, s: S, k: usize, len: usize) -> Flush<'_, S, T> {
        let lo = k * store_block::<T>();
        let src = self.src.unwrap_or(&[]);
        Flush::new(
            s,
            &src[lo..lo + len],
            &mut self.out[lo..lo + len],
            (self.scales[k], self.b0),
        )
    }

    /// After the streaming stores of every [`Flush`]: the fence, then the
    /// target class's value (which the flushes wrote as any other class).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn fence_and_target<S: Simd>(self, s: S) {
        T::Vec::<S>::stream_fence(s);
        if let Some(o) = self.out.get_mut(self.target) {
            *o = self.value;
        }
    }
}

pub(crate) struct ColumnPass1<'a, T> {
    backend: Backend,
    z: &'a [T],
    w: Option<&'a [T]>,
    t: Option<Dense<'a, T>>,
    cap: Option<Cap<T>>,
    kind: Sweep<T>,
}

impl<T: Float> Job for ColumnPass1<'_, T> {
    type Output = RowStats;
    fn combine(a: RowStats, b: RowStats) -> RowStats {
        a.merge(b)
    }
    fn units(&self) -> usize {
        self.z.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let n = self.z.len();
        let (z0, z1) = self.z.split_at(mid);
        (
            ColumnPass1 {
                z: z0,
                w: self.w.map(|w| &w[..mid]),
                t: self.t.map(|t| t.slice(0, mid)),
                ..self
            },
            ColumnPass1 {
                z: z1,
                w: self.w.map(|w| &w[mid..]),
                t: self.t.map(|t| t.slice(mid, n)),
                ..self
            },
        )
    }
    fn run(self) -> Result<RowStats, LossError> {
        T::run_column_pass1(self)
    }
}

impl<T: Float> ColumnPass1<'_, T> {
    /// [`Job::run`], reached through [`Float`] so that it is compiled in this
    /// crate (see `float::sealed`).
    pub(crate) fn run_here(self) -> Result<RowStats, LossError> {
        Ok(simd::dispatch(
            self.backend,
            SweepKernel {
                z: self.z,
                w: self.w,
                t: self.t,
                cap: self.cap,
                kind: self.kind,
            },
        ))
    }
}

pub(crate) struct ColumnPass2<'a, T> {
    backend: Backend,
    x: &'a [T],
    w: Option<&'a [T]>,
    t: Option<&'a [T]>,
    cap: Option<Cap<T>>,
    coef: Pass2<T>,
    write: Write,
    out: &'a mut [T],
}

impl<T: Float> Job for ColumnPass2<'_, T> {
    type Output = ();
    fn combine(_: (), _: ()) {}
    fn units(&self) -> usize {
        self.x.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (x0, x1) = self.x.split_at(mid);
        let (o0, o1) = self.out.split_at_mut(mid);
        let (w0, w1) = parallel::split_opt_ref(self.w, mid);
        let (t0, t1) = parallel::split_opt_ref(self.t, mid);
        (
            ColumnPass2 {
                backend: self.backend,
                x: x0,
                w: w0,
                t: t0,
                cap: self.cap,
                coef: self.coef,
                write: self.write,
                out: o0,
            },
            ColumnPass2 {
                backend: self.backend,
                x: x1,
                w: w1,
                t: t1,
                cap: self.cap,
                coef: Pass2 {
                    // An index below `mid` wraps past the right half's end.
                    target: self.coef.target.wrapping_sub(mid),
                    ..self.coef
                },
                write: self.write,
                out: o1,
            },
        )
    }
    fn run(self) -> Result<(), LossError> {
        T::run_column_pass2(self)
    }
}

impl<T: Float> ColumnPass2<'_, T> {
    /// [`Job::run`], reached through [`Float`] so that it is compiled in this
    /// crate (see `float::sealed`).
    pub(crate) fn run_here(self) -> Result<(), LossError> {
        simd::dispatch(
            self.backend,
            Pass2Kernel {
                x: self.x,
                w: self.w,
                t: self.t,
                cap: self.cap,
                coef: self.coef,
                write: self.write,
                out: self.out,
            },
        );
        Ok(())
    }
}

/// The softmax primitives, on a chosen backend.
///
/// ```
/// use loss_kernels::{Backend, Softmax};
///
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// let logits = [0.0_f32, 0.0, 1.0, 1.0];
/// let mut lse = [0.0_f32; 2];
/// Softmax::new().backend(Backend::Scalar).log_sum_exp(&logits, 2, &mut lse)?;
/// assert!((lse[0] - 2f32.ln()).abs() < 1e-6 && (lse[1] - (1.0 + 2f32.ln())).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Softmax {
    backend: Backend,
}

impl Softmax {
    /// Automatic backend.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Forces a SIMD backend (default [`Backend::Auto`]).
    #[must_use]
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    fn run<T: Float>(
        &self,
        logits: &[T],
        classes: usize,
        out: RowsOut<'_, T>,
    ) -> Result<(), LossError> {
        let rows = check_shape(logits, classes)?;
        check_out(&out, rows, logits.len())?;
        let cfg = Config {
            backend: self.backend.resolve()?,
            classes,
            w: None,
            w_sum: classes as f64,
            ignore: None,
            eps: 0.0,
            z_loss: 0.0,
            cap: None,
            cap_f64: None,
            grad_scale: 0.0,
            stream: false,
            long_rows: LongRowGradient::Auto,
        };
        run_rows::<T>(&cfg, logits, Targets::None, out).map(|_| ())
    }

    /// `out[r] = ln Σ_c e^{logits[r, c]}` for each row, computed stably.
    ///
    /// # Errors
    /// [`LossError::ZeroClasses`], [`LossError::NotDivisible`],
    /// [`LossError::LengthMismatch`] (`out` must have one element per row),
    /// [`LossError::BackendUnavailable`].
    pub fn log_sum_exp<T: Float>(
        &self,
        logits: &[T],
        classes: usize,
        out: &mut [T],
    ) -> Result<(), LossError> {
        self.run(logits, classes, RowsOut::PerRow(out))
    }

    /// `out[r, c] = logits[r, c] - lse_r` (same shape as `logits`).
    ///
    /// # Errors
    /// As [`Softmax::log_sum_exp`], with `out` of the logits' length.
    pub fn log_softmax<T: Float>(
        &self,
        logits: &[T],
        classes: usize,
        out: &mut [T],
    ) -> Result<(), LossError> {
        self.run(logits, classes, RowsOut::PerClass(out, Write::LogSoftmax))
    }

    /// `out[r, c] = e^{logits[r, c] - lse_r}` (same shape as `logits`).
    ///
    /// # Errors
    /// As [`Softmax::log_sum_exp`], with `out` of the logits' length.
    pub fn softmax<T: Float>(
        &self,
        logits: &[T],
        classes: usize,
        out: &mut [T],
    ) -> Result<(), LossError> {
        self.run(logits, classes, RowsOut::PerClass(out, Write::Softmax))
    }
}

/// Log-sum-exp of each row of `logits` (`[rows, classes]`) into `out`
/// (length `rows`), on the automatic backend; see [`Softmax::log_sum_exp`].
///
/// ```
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// let mut out = [0.0_f64];
/// loss_kernels::log_sum_exp(&[1000.0_f64, 1000.0], 2, &mut out)?;
/// assert!((out[0] - (1000.0 + 2f64.ln())).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`Softmax::log_sum_exp`].
pub fn log_sum_exp<T: Float>(logits: &[T], classes: usize, out: &mut [T]) -> Result<(), LossError> {
    Softmax::new().log_sum_exp(logits, classes, out)
}

/// Log-softmax of each row into `out`; see [`Softmax::log_softmax`].
///
/// ```
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// let mut out = [0.0_f32; 2];
/// loss_kernels::log_softmax(&[0.0_f32, 0.0], 2, &mut out)?;
/// assert!((out[0] + 2f32.ln()).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`Softmax::log_softmax`].
pub fn log_softmax<T: Float>(logits: &[T], classes: usize, out: &mut [T]) -> Result<(), LossError> {
    Softmax::new().log_softmax(logits, classes, out)
}

/// Softmax of each row into `out`; see [`Softmax::softmax`].
///
/// ```
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// let mut out = [0.0_f32; 3];
/// loss_kernels::softmax(&[1.0_f32, 1.0, f32::NEG_INFINITY], 3, &mut out)?;
/// assert_eq!(out, [0.5, 0.5, 0.0]);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`Softmax::softmax`].
pub fn softmax<T: Float>(logits: &[T], classes: usize, out: &mut [T]) -> Result<(), LossError> {
    Softmax::new().softmax(logits, classes, out)
}

/// A mergeable log-sum-exp state: `max` of the values seen and
/// `sum = Σ e^{x - max}`, so that `value() = max + ln sum`.
///
/// States of disjoint parts of a row merge into the state of the whole row,
/// in any grouping: compute them on different threads, or on different
/// machines (vocabulary-parallel training), exchange the two numbers with an
/// existing all-reduce, and merge. `merge` is deterministic; different
/// groupings agree to within rounding.
///
/// ```
/// use loss_kernels::LogSumExp;
///
/// # fn main() -> Result<(), loss_kernels::LossError> {
/// let row: Vec<f64> = (0..300).map(|i| (i as f64 * 0.37).sin() * 20.0).collect();
/// // Three "machines" each hold a third of the vocabulary.
/// let parts: Vec<LogSumExp> = row.chunks(100).map(LogSumExp::of).collect::<Result<_, _>>()?;
/// let merged = parts.iter().fold(LogSumExp::EMPTY, |acc, p| acc.merge(*p));
/// let whole = LogSumExp::of(&row)?;
/// assert!((merged.value() - whole.value()).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogSumExp {
    /// Maximum of the values seen (`-inf` if none).
    pub max: f64,
    /// `Σ e^{x - max}` over the values seen.
    pub sum: f64,
}

impl LogSumExp {
    /// The state of no values: the identity of [`merge`](Self::merge).
    pub const EMPTY: LogSumExp = LogSumExp {
        max: f64::NEG_INFINITY,
        sum: 0.0,
    };

    /// The state of `values` (one read, SIMD, on the automatic backend).
    ///
    /// # Errors
    /// Only [`LossError::BackendUnavailable`], which `Auto` never gives.
    pub fn of<T: Float>(values: &[T]) -> Result<LogSumExp, LossError> {
        let backend = Backend::Auto.resolve()?;
        let col = ColumnPass1 {
            backend,
            z: values,
            w: None,
            t: None,
            cap: None,
            kind: Sweep::Lse,
        };
        let st = parallel::reduce(col, COL_LEAF, 2 * COL_LEAF)?;
        Ok(LogSumExp {
            max: st.m,
            sum: st.s,
        })
    }

    /// The state of the union of two disjoint sets of values.
    #[must_use]
    pub fn merge(self, other: LogSumExp) -> LogSumExp {
        let (max, sum) = crate::ce_kernels::merge_lse(self.max, self.sum, other.max, other.sum);
        LogSumExp { max, sum }
    }

    /// `ln Σ e^x = max + ln sum` (`-inf` for no values).
    #[must_use]
    pub fn value(self) -> f64 {
        self.max + self.sum.ln()
    }
}

#[cfg(test)]
mod tests {
    use super::{Losses, Tuner};
    use crate::simd::{self, Kernel, Simd};
    use crate::Backend;
    use std::sync::atomic::Ordering;

    /// Rows `(loss, deferred)` pushed into a [`Losses`], then flushed.
    struct PushAll<'a>(&'a [(f64, Option<(f64, f64)>)]);

    impl Kernel for PushAll<'_> {
        type Output = f64;
        fn run<S: Simd>(self, s: S) -> f64 {
            let mut losses = Losses::<S>::new();
            let mut sum = 0.0;
            for &(loss, deferred) in self.0 {
                sum = losses.push(s, sum, loss, deferred);
            }
            losses.flush(s, sum)
        }
    }

    /// The held rows are added in row order, each deferred one as
    /// `w·ln(1 + v)` within a few ulp of `std`'s, and the sum's bits do not
    /// depend on where a batch starts (how many rows a leaf held before).
    #[test]
    fn losses_add_deferred_rows_in_order() {
        // Plain and deferred rows mixed, runs of each longer than a batch,
        // v from 1e-300 to 1e300 (ln(1 + v) from tiny to 690).
        let mut rows = Vec::new();
        for k in 0..40_u32 {
            let v = 10f64.powi((k as i32 * 15) % 601 - 300);
            let deferred = k % 7 != 3 && !(20..26).contains(&k);
            let w = 0.5 + f64::from(k) / 16.0;
            rows.push(if deferred {
                (0.0, Some((w, v)))
            } else {
                (w, None)
            });
        }
        let want = rows.iter().fold(0.0, |sum, &(loss, deferred)| {
            sum + deferred.map_or(loss, |(w, v)| w * v.ln_1p())
        });
        for b in Backend::available() {
            let got = simd::dispatch(b, PushAll(&rows));
            assert!(
                (got - want).abs() <= 1e-14 * want,
                "{b:?}: {got} against {want}"
            );
            for lead in 0..=9 {
                // After `lead` deferred rows, batches start elsewhere; the
                // additions are still each row's own value, in order.
                let mut all = vec![(0.0, Some((0.25, 3.0))); lead];
                all.extend_from_slice(&rows);
                let got = simd::dispatch(b, PushAll(&all));
                let alone = all
                    .iter()
                    .fold(0.0, |sum, &row| sum + simd::dispatch(b, PushAll(&[row])));
                assert_eq!(got.to_bits(), alone.to_bits(), "{b:?}, lead {lead}");
            }
        }
    }

    /// Trials alternate between the forms, short leaves are not measured,
    /// and after three of each the form with the lower best time stays.
    #[test]
    fn tuner_keeps_the_faster_form() {
        for (streamed_time, in_place_time, want) in [(2.0, 1.0, false), (1.0, 3.0, true)] {
            let t = Tuner::new();
            assert_eq!(t.pick(Tuner::TRIAL_ROWS - 1), (true, false));
            for round in 0..Tuner::TRIALS {
                assert_eq!(t.pick(64), (true, true), "round {round}");
                assert_eq!(t.pick(64), (false, true), "round {round}");
                // A slow first round counts only through the best times.
                let noise = if round == 0 { 10.0 } else { 1.0 };
                t.record(true, streamed_time * noise);
                let undecided = t.choice.load(Ordering::Relaxed) == Tuner::UNDECIDED;
                assert!(undecided, "decided in round {round}");
                t.record(false, in_place_time * noise);
            }
            assert_eq!(t.pick(64), (want, false));
            assert_eq!(t.pick(1), (want, false));
        }
    }
}
