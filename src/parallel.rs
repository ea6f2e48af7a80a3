//! Deterministic splitting of work across the caller's rayon pool.
//!
//! Every loss goes through [`reduce`]: the input is cut into leaves of a
//! fixed number of units (elements, or rows), whose boundaries depend only
//! on the input's shape, never on the number of threads. Leaf results (`f64`
//! partial sums) are combined by a binary tree whose shape also depends only
//! on the leaf count: the left subtree always holds the first
//! `floor(leaves / 2)` leaves. In a job large enough to run in parallel,
//! every node of the tree runs its two subtrees through `rayon::join`; a
//! smaller job runs them serially. Both combine in the same order, so the
//! result is bitwise the same for 1 thread, 8 threads, or a build without
//! the `rayon` feature. The pairwise tree also
//! keeps the `f64` sum accurate for any input length.

use crate::LossError;

/// A piece of work that can be cut at a unit boundary.
pub(crate) trait Job: Send + Sized {
    /// What a leaf produces (a sum, or a mergeable state).
    type Output: Send;
    /// Combines the outputs of two adjacent parts (left, right).
    fn combine(left: Self::Output, right: Self::Output) -> Self::Output;
    /// Number of units (elements or rows) in this job.
    fn units(&self) -> usize;
    /// Cuts the job after `mid` units.
    fn split_at(self, mid: usize) -> (Self, Self);
    /// Runs one leaf serially.
    fn run(self) -> Result<Self::Output, LossError>;
}

/// Runs `job` as a fixed tree of leaves of `leaf` units (the last may be
/// shorter) and returns the leaf results combined in tree order. A job of
/// at least `parallel_min` units runs every subtree through `rayon::join`,
/// down to the pairs of leaves; a smaller one runs serially. On errors the
/// leftmost one wins, so the reported error does not depend on scheduling
/// either.
///
/// The whole tree is parallel, not only its subtrees of `parallel_min`
/// units or more: with four leaves or more, the thread that finishes first
/// takes a leaf from the other. With only two parallel halves, a pool
/// thread that has finished its half has nothing to take, sleeps, and on a
/// virtual machine wakes tens of microseconds late (BCE with logits
/// loss+grad on 2^16 elements, Intel guest, 2 threads over 1, as a join
/// tree of public calls: two halves 1.20–1.50×, four parts 1.64–1.75×,
/// `cargo bench --bench scaling -- join_parts`; the crate's own call went
/// from 1.29–1.64× to 1.70–1.75× with four leaves: README "Intel,
/// afternoon (2026-12-02)").
pub(crate) fn reduce<J: Job>(
    job: J,
    leaf: usize,
    parallel_min: usize,
) -> Result<J::Output, LossError> {
    let parallel = job.units() >= parallel_min;
    tree(job, leaf.max(1), parallel)
}

fn tree<J: Job>(job: J, leaf: usize, parallel: bool) -> Result<J::Output, LossError> {
    let n = job.units();
    if n <= leaf {
        return job.run();
    }
    let leaves = n.div_ceil(leaf);
    let mid = (leaves / 2) * leaf;
    let (left, right) = job.split_at(mid);
    let (a, b) = join(
        parallel,
        || tree(left, leaf, parallel),
        || tree(right, leaf, parallel),
    );
    match (a, b) {
        (Ok(a), Ok(b)) => Ok(J::combine(a, b)),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

#[cfg(feature = "rayon")]
#[inline]
fn join<A, B, RA, RB>(parallel: bool, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if parallel && rayon::current_num_threads() > 1 {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

#[cfg(not(feature = "rayon"))]
#[inline]
fn join<A, B, RA, RB>(_parallel: bool, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    (a(), b())
}

/// Splits an optional input slice at `mid`.
pub(crate) fn split_opt_ref<T>(s: Option<&[T]>, mid: usize) -> (Option<&[T]>, Option<&[T]>) {
    match s {
        Some(s) => {
            let (a, b) = s.split_at(mid);
            (Some(a), Some(b))
        }
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Range(usize, usize);
    impl Job for Range {
        type Output = f64;
        fn combine(a: f64, b: f64) -> f64 {
            a + b
        }
        fn units(&self) -> usize {
            self.1 - self.0
        }
        fn split_at(self, mid: usize) -> (Self, Self) {
            (Range(self.0, self.0 + mid), Range(self.0 + mid, self.1))
        }
        fn run(self) -> Result<f64, LossError> {
            if self.0 >= 1000 {
                return Err(LossError::ZeroClasses);
            }
            Ok((self.0..self.1).map(|i| i as f64).sum())
        }
    }

    #[test]
    fn sums_every_unit_once() {
        for n in [0usize, 1, 7, 64, 65, 999] {
            let got = reduce(Range(0, n), 8, 16).unwrap();
            assert_eq!(got, (0..n).map(|i| i as f64).sum::<f64>());
        }
    }

    #[test]
    fn leftmost_error_wins() {
        assert!(reduce(Range(0, 5000), 100, 200).is_err());
    }
}
