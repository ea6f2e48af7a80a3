//! Shared pieces of the benchmark binaries: deterministic inputs, the rayon
//! pools, the naive loops a user writes by hand, and the reference kernels
//! that measure this machine's limit for the same data movement.
//!
//! Every kernel here returns an *unnormalized* sum (the caller divides by
//! the element or row count), so the 2-thread versions split the work into
//! two halves with `rayon::join` and add the two halves' sums.

// Each bench binary uses a different subset of this module.
#![allow(dead_code)]

pub mod naive;
pub mod reference;

use std::sync::OnceLock;

use rayon::{ThreadPool, ThreadPoolBuilder};

/// A pool of exactly `threads` threads (1 or 2), built once.
pub fn pool(threads: usize) -> &'static ThreadPool {
    static POOLS: [OnceLock<ThreadPool>; 2] = [OnceLock::new(), OnceLock::new()];
    assert!((1..=2).contains(&threads), "benches use 1 or 2 threads");
    POOLS[threads - 1].get_or_init(|| {
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |i| format!("bench-t{threads}-{i}"))
            .build()
            .expect("building a rayon pool")
    })
}

/// SplitMix64: a small, fast, seedable generator (no dependency needed).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: bias below 2^-32 for the n used here.
        ((self.next_u64() >> 32) * n) >> 32
    }

    /// `count` samples of N(0, std²) (Box–Muller).
    pub fn normals(&mut self, count: usize, std: f64) -> Vec<f32> {
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let (u, v) = (self.uniform(), self.uniform());
            let r = (-2.0 * u.ln()).sqrt() * std;
            let t = std::f64::consts::TAU * v;
            out.push((r * t.cos()) as f32);
            if out.len() < count {
                out.push((r * t.sin()) as f32);
            }
        }
        out
    }
}

/// Inputs of the canonical workloads, generated as `../shared/bench/PEERS.md`
/// describes them: regression values ~ N(0, 1), logits ~ N(0, 2²), binary
/// targets in {0, 1}, probabilities = sigmoid of N(0, 2²) logits, labels
/// uniform. Fixed seeds, so every run sees the same bytes.
pub mod data {
    use super::Rng;

    /// `(pred, target)` for squared error.
    pub fn regression(n: usize) -> (Vec<f32>, Vec<f32>) {
        let mut rng = Rng::new(0x5eed_0001 ^ n as u64);
        (rng.normals(n, 1.0), rng.normals(n, 1.0))
    }

    /// `(logits, targets)` for BCE with logits.
    pub fn logits_binary(n: usize) -> (Vec<f32>, Vec<f32>) {
        let mut rng = Rng::new(0x5eed_0002 ^ n as u64);
        let x = rng.normals(n, 2.0);
        let y = (0..n).map(|_| (rng.next_u64() >> 63) as f32).collect();
        (x, y)
    }

    /// `(probabilities, targets)` for BCE on probabilities.
    pub fn probs_binary(n: usize) -> (Vec<f32>, Vec<f32>) {
        let (x, y) = logits_binary(n);
        let p = x.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect();
        (p, y)
    }

    /// `(logits [rows × classes], labels [rows])` for cross entropy.
    pub fn classification(rows: usize, classes: usize) -> (Vec<f32>, Vec<u32>) {
        let mut rng = Rng::new(0x5eed_0003 ^ (rows as u64) << 32 ^ classes as u64);
        let logits = rng.normals(rows * classes, 2.0);
        let labels = (0..rows)
            .map(|_| rng.below(classes as u64) as u32)
            .collect();
        (logits, labels)
    }

    /// A gradient-sized output buffer whose pages are already mapped, so the
    /// first timed write does not pay page faults (and a read of it would not
    /// hit the shared zero page).
    pub fn output(n: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(n);
        v.resize(n, 1.0_f32);
        v
    }
}

/// An elementwise kernel: `(a, b, grad, grad_scale) -> unnormalized sum`.
/// Loss-only kernels ignore `grad` (they receive an empty slice).
pub type Elementwise = fn(&[f32], &[f32], &mut [f32], f32) -> f32;

/// A cross-entropy kernel: `(logits, classes, labels, grad, grad_scale) ->
/// unnormalized sum`. Loss-only kernels ignore `grad`.
pub type Rows = fn(&[f32], usize, &[u32], &mut [f32], f32) -> f32;

/// Runs `kernel` over two halves of the input with `rayon::join` (in the
/// current pool) and adds the halves' sums. The cut is a multiple of 64
/// elements, so both halves start at the same cache-line offset.
pub fn elementwise_halves(
    kernel: Elementwise,
    a: &[f32],
    b: &[f32],
    grad: &mut [f32],
    scale: f32,
) -> f32 {
    let mid = (a.len() / 2) & !63;
    let (a0, a1) = a.split_at(mid);
    let (b0, b1) = b.split_at(mid);
    let (g0, g1) = grad.split_at_mut(if grad.is_empty() { 0 } else { mid });
    let (s0, s1) = rayon::join(|| kernel(a0, b0, g0, scale), || kernel(a1, b1, g1, scale));
    s0 + s1
}

/// Runs a cross-entropy `kernel` over the two halves of the rows.
pub fn rows_halves(
    kernel: Rows,
    logits: &[f32],
    classes: usize,
    labels: &[u32],
    grad: &mut [f32],
    scale: f32,
) -> f32 {
    let mid_rows = labels.len() / 2;
    let mid = mid_rows * classes;
    let (x0, x1) = logits.split_at(mid);
    let (y0, y1) = labels.split_at(mid_rows);
    let (g0, g1) = grad.split_at_mut(if grad.is_empty() { 0 } else { mid });
    let (s0, s1) = rayon::join(
        || kernel(x0, classes, y0, g0, scale),
        || kernel(x1, classes, y1, g1, scale),
    );
    s0 + s1
}

/// Relative difference, for the setup-time sanity checks.
pub fn rel_diff(got: f64, want: f64) -> f64 {
    ((got - want) / want).abs()
}

/// Warns (does not panic: a benchmark run must still finish) when our loss
/// disagrees with the `f64` value of the same formula.
pub fn check(what: &str, ours: f32, want: f64) {
    let d = rel_diff(f64::from(ours), want);
    // NaN-safe: a NaN difference warns too.
    if d.is_nan() || d >= 1e-3 {
        eprintln!(
            "WARNING {what}: ours = {ours}, f64 value = {want} (relative difference {d:.2e})"
        );
    }
}
