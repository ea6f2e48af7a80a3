//! Bitwise determinism across thread counts (issue: parallel execution).
//!
//! Every loss, on inputs large enough to be split across threads, must give
//! the same bits for the loss and for every gradient element whether it runs
//! in a pool of 1, 2, 3 or 8 threads, and the same as the serial entry (a
//! 1-thread pool). Many threads calling at once get the same bits too.
//! Select with `cargo test --release determinism`.

use loss_kernels::{
    BinaryCrossEntropy, BinaryCrossEntropyWithLogits, CrossEntropy, LogSumExp, Reduction, Softmax,
    SquaredError,
};
use rayon::ThreadPoolBuilder;

/// Deterministic pseudo-random values (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    fn vec_f32(&mut self, n: usize, scale: f64) -> Vec<f32> {
        (0..n).map(|_| (self.normal() * scale) as f32).collect()
    }
    fn probs_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform() as f32).collect()
    }
}

/// Runs `f` in pools of 1, 2, 3 and 8 threads and asserts every result has
/// the same bits as the first.
fn same_bits_across_pools<R: PartialEq + std::fmt::Debug + Send>(
    what: &str,
    f: impl Fn() -> R + Sync,
) {
    let mut first: Option<R> = None;
    for threads in [1, 2, 3, 8] {
        let pool = ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let got = pool.install(&f);
        match &first {
            None => first = Some(got),
            Some(want) => assert!(
                *want == got,
                "{what}: {threads} threads differ from 1 thread"
            ),
        }
    }
}

fn bits32(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

const SIZES: [usize; 4] = [1 << 16, (1 << 17) + 13, 3 << 16, 1 << 20];

#[test]
fn determinism_squared_error() {
    let mut rng = Rng(1);
    for &n in &SIZES {
        let (x, y) = (rng.vec_f32(n, 1.0), rng.vec_f32(n, 1.0));
        for red in [Reduction::Mean, Reduction::Sum] {
            same_bits_across_pools("mse", || {
                let mut g = vec![0.0f32; n];
                let l = SquaredError::new()
                    .reduction(red)
                    .loss_grad(&x, &y, &mut g)
                    .unwrap();
                let l2 = SquaredError::new().reduction(red).loss(&x, &y).unwrap();
                assert_eq!(l.to_bits(), l2.to_bits(), "loss and loss_grad agree");
                (l.to_bits(), bits32(&g))
            });
        }
    }
}

#[test]
fn determinism_bce() {
    let mut rng = Rng(2);
    for &n in &SIZES {
        let (p, y, w) = (rng.probs_f32(n), rng.probs_f32(n), rng.probs_f32(n));
        same_bits_across_pools("bce", || {
            let mut g = vec![0.0f32; n];
            let l = BinaryCrossEntropy::new()
                .weight(&w)
                .loss_grad(&p, &y, &mut g)
                .unwrap();
            (l.to_bits(), bits32(&g))
        });
    }
}

#[test]
fn determinism_bce_with_logits() {
    let mut rng = Rng(3);
    for &n in &SIZES {
        let (x, y, w) = (rng.vec_f32(n, 3.0), rng.probs_f32(n), rng.probs_f32(n));
        // A period that divides n and is not a multiple of the vector width.
        let period = if n % 5 == 0 { 5 } else { 16 };
        let pw: Vec<f32> = rng.probs_f32(period).iter().map(|v| v * 4.0).collect();
        same_bits_across_pools("bce_logits", || {
            let mut g = vec![0.0f32; n];
            let l = BinaryCrossEntropyWithLogits::new()
                .weight(&w)
                .pos_weight(&pw)
                .loss_grad(&x, &y, &mut g)
                .unwrap();
            (l.to_bits(), bits32(&g))
        });
    }
}

#[test]
fn determinism_cross_entropy() {
    let mut rng = Rng(4);
    for &(rows, classes) in &[
        (4096usize, 100usize),
        (700, 1000),
        (3, 70_000),
        (1, 262_144),
    ] {
        let x = rng.vec_f32(rows * classes, 2.0);
        let labels: Vec<i64> = (0..rows)
            .map(|r| {
                if r % 7 == 3 {
                    -100
                } else {
                    (rng.next_u64() % classes as u64) as i64
                }
            })
            .collect();
        let cw: Vec<f32> = (0..classes).map(|c| 0.5 + (c % 3) as f32 * 0.25).collect();
        let dense: Vec<f32> = {
            let mut t = rng.probs_f32(rows * classes);
            for row in t.chunks_mut(classes) {
                let s: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
            t
        };
        for smoothing in [0.0, 0.1] {
            let ce = CrossEntropy::new()
                .class_weights(&cw)
                .label_smoothing(smoothing)
                .z_loss(1e-4);
            same_bits_across_pools("ce", || {
                let mut g = vec![0.0f32; rows * classes];
                let l = ce.loss_grad(&x, classes, &labels, &mut g).unwrap();
                let l2 = ce.loss(&x, classes, &labels).unwrap();
                assert_eq!(l.to_bits(), l2.to_bits());
                (l.to_bits(), bits32(&g))
            });
            same_bits_across_pools("ce_dense", || {
                let mut g = vec![0.0f32; rows * classes];
                let l = ce.loss_grad_dense(&x, classes, &dense, &mut g).unwrap();
                (l.to_bits(), bits32(&g))
            });
        }
        same_bits_across_pools("softmax", || {
            let mut out = vec![0.0f32; rows * classes];
            let mut lse = vec![0.0f32; rows];
            Softmax::new().softmax(&x, classes, &mut out).unwrap();
            Softmax::new().log_sum_exp(&x, classes, &mut lse).unwrap();
            (bits32(&out), bits32(&lse))
        });
    }
}

#[test]
fn determinism_log_sum_exp_state() {
    let mut rng = Rng(5);
    let x = rng.vec_f32(1 << 20, 4.0);
    same_bits_across_pools("LogSumExp::of", || {
        let s = LogSumExp::of(&x).unwrap();
        (s.max.to_bits(), s.sum.to_bits())
    });
}

#[test]
fn determinism_concurrent_callers() {
    let mut rng = Rng(6);
    let n = 1 << 18;
    let (x, y) = (rng.vec_f32(n, 2.0), rng.probs_f32(n));
    let reference = {
        let mut g = vec![0.0f32; n];
        let l = BinaryCrossEntropyWithLogits::new()
            .loss_grad(&x, &y, &mut g)
            .unwrap();
        (l.to_bits(), bits32(&g))
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut g = vec![0.0f32; n];
                    let l = BinaryCrossEntropyWithLogits::new()
                        .loss_grad(&x, &y, &mut g)
                        .unwrap();
                    (l.to_bits(), bits32(&g))
                })
            })
            .collect();
        for h in handles {
            assert!(
                h.join().unwrap() == reference,
                "a concurrent caller got different bits"
            );
        }
    });
}

#[test]
fn determinism_inside_custom_pool() {
    // Work runs in the caller's pool: a 3-thread pool executes it.
    let pool = ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    let mut rng = Rng(7);
    let n = 1 << 20;
    let (x, y) = (rng.vec_f32(n, 1.0), rng.vec_f32(n, 1.0));
    let inside = pool.install(|| {
        assert_eq!(rayon::current_num_threads(), 3);
        SquaredError::new().loss(&x, &y).unwrap()
    });
    let outside = SquaredError::new().loss(&x, &y).unwrap();
    assert_eq!(inside.to_bits(), outside.to_bits());
    let want: f64 = x
        .iter()
        .zip(&y)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum::<f64>()
        / n as f64;
    assert!((inside as f64 - want).abs() <= 2.0 * f32::EPSILON as f64 * want);
}
