//! The shared driver of the elementwise losses (squared error, BCE, BCE with
//! logits): shape checks, the deterministic parallel split, dispatch of the
//! SIMD kernel per leaf, and the reduction.

use crate::kernels::{
    BinaryCrossEntropyKernel, BinaryCrossEntropyWithLogitsKernel, Operand, Out, SquaredErrorKernel,
};
use crate::options::Plan;
use crate::parallel::{self, Job};
use crate::{simd, Backend, Float, LossError};

/// Elements per leaf of the parallel tree. Fixed for each loss: it decides
/// the summation order, so it must never depend on the thread count. Four
/// leaves at the parallel threshold, so that two threads balance their
/// work ([`parallel::reduce`]); BCE with logits, the costliest per element,
/// takes [`LEAF_LOGITS`].
pub(crate) const LEAF: usize = 1 << 14;
/// [`LEAF`] for BCE with logits: eight leaves at the threshold. The thread
/// that finishes first then has smaller pieces to take from the other,
/// which on a virtual machine whose idle pool thread wakes late is what
/// two threads gain (loss+grad 2^16, Intel guest, two threads: 32.8 µs
/// against 36.0 with 2^14, medians of six alternated pairs; as a join
/// tree of public calls, eight parts 27–32 µs against four 27–42; README
/// "Stored exponentials").
pub(crate) const LEAF_LOGITS: usize = 1 << 13;

/// The leaf of `kind`'s tree.
fn leaf(kind: Kind) -> usize {
    match kind {
        Kind::BinaryCrossEntropyWithLogits => LEAF_LOGITS,
        Kind::SquaredError | Kind::BinaryCrossEntropy => LEAF,
    }
}

/// Inputs shorter than this run serially.
pub(crate) const PARALLEL_MIN: usize = 1 << 16;
/// Inputs of at least this many bytes (the first operand) are prefetched
/// where [`simd::prefetch_streams`] says so; smaller ones are taken to be
/// in the caches already. Each leaf's kernel then asks for lines past its
/// own end too, the next leaf's start.
pub(crate) const PREFETCH_MIN_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    SquaredError,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
}

pub(crate) struct ElementwiseJob<'a, T> {
    pub kind: Kind,
    pub backend: Backend,
    pub x: &'a [T],
    pub y: &'a [T],
    pub weight: Operand<'a, T>,
    pub pos_weight: Operand<'a, T>,
    /// Index of `x[0]` in the whole input (for the `pos_weight` period and
    /// error messages).
    pub offset: usize,
    pub out: Out<'a, T>,
    /// Whether the kernels prefetch their inputs: set by [`run`] and
    /// [`run_sum`] for inputs of at least [`PREFETCH_MIN_BYTES`] on CPUs
    /// that want it ([`simd::prefetch_streams`]); the callers' value is
    /// replaced.
    pub far: bool,
}

impl<T: Float> Job for ElementwiseJob<'_, T> {
    type Output = f64;

    fn combine(a: f64, b: f64) -> f64 {
        a + b
    }

    fn units(&self) -> usize {
        self.x.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (x0, x1) = self.x.split_at(mid);
        let (y0, y1) = self.y.split_at(mid);
        let (w0, w1) = self.weight.split_at(mid);
        let (o0, o1) = self.out.split_at(mid);
        (
            ElementwiseJob {
                x: x0,
                y: y0,
                weight: w0,
                out: o0,
                ..self
            },
            ElementwiseJob {
                kind: self.kind,
                backend: self.backend,
                x: x1,
                y: y1,
                weight: w1,
                pos_weight: self.pos_weight,
                offset: self.offset + mid,
                out: o1,
                far: self.far,
            },
        )
    }

    fn run(self) -> Result<f64, LossError> {
        T::run_elementwise(self)
    }
}

impl<T: Float> ElementwiseJob<'_, T> {
    /// [`Job::run`], reached through [`Float`] so that it is compiled in this
    /// crate (see `float::sealed`).
    pub(crate) fn run_here(self) -> Result<f64, LossError> {
        let sum = match self.kind {
            Kind::SquaredError => simd::dispatch(
                self.backend,
                SquaredErrorKernel {
                    pred: self.x,
                    target: self.y,
                    out: self.out,
                    far: self.far,
                },
            ),
            Kind::BinaryCrossEntropy => {
                let sum = simd::dispatch(
                    self.backend,
                    BinaryCrossEntropyKernel {
                        prob: self.x,
                        target: self.y,
                        weight: self.weight,
                        out: self.out,
                        far: self.far,
                    },
                );
                if sum.is_nan() {
                    // A NaN sum may come from an input outside [0, 1]: find the first.
                    check_probabilities(self.x, self.y, self.offset)?;
                }
                sum
            }
            Kind::BinaryCrossEntropyWithLogits => {
                let period = match self.pos_weight {
                    Operand::Slice(pw) => pw.len().max(1),
                    Operand::Splat(_) => 1,
                };
                simd::dispatch(
                    self.backend,
                    BinaryCrossEntropyWithLogitsKernel {
                        logit: self.x,
                        target: self.y,
                        weight: self.weight,
                        pos_weight: self.pos_weight,
                        phase: self.offset % period,
                        out: self.out,
                        far: self.far,
                    },
                )
            }
        };
        Ok(sum)
    }
}

/// The first element of `prob` or `target` outside `[0, 1]`, as an error.
fn check_probabilities<T: Float>(prob: &[T], target: &[T], offset: usize) -> Result<(), LossError> {
    let ok = |v: f64| (0.0..=1.0).contains(&v);
    for (i, (&p, &y)) in prob.iter().zip(target).enumerate() {
        let (p, y) = (p.to_f64(), y.to_f64());
        if !ok(p) {
            return Err(LossError::ProbabilityOutOfRange {
                what: "input",
                index: offset + i,
                value: p,
            });
        }
        if !ok(y) {
            return Err(LossError::ProbabilityOutOfRange {
                what: "target",
                index: offset + i,
                value: y,
            });
        }
    }
    Ok(())
}

/// Runs a validated elementwise job and reduces its sum with `plan`.
pub(crate) fn run<T: Float>(job: ElementwiseJob<'_, T>, plan: &Plan) -> Result<T, LossError> {
    Ok(T::from_f64(plan.reduce(run_sum(job)?)))
}

/// Runs a validated elementwise job and returns its partial sum.
pub(crate) fn run_sum<T: Float>(job: ElementwiseJob<'_, T>) -> Result<f64, LossError> {
    let job = ElementwiseJob {
        out: job.out.stream_if_large(),
        far: is_far(job.x),
        ..job
    };
    let leaf = leaf(job.kind);
    parallel::reduce(job, leaf, PARALLEL_MIN)
}

/// Whether a job over `x` prefetches its inputs (see [`ElementwiseJob::far`]).
fn is_far<T>(x: &[T]) -> bool {
    core::mem::size_of_val(x) >= PREFETCH_MIN_BYTES && simd::prefetch_streams()
}
