//! The canonical workloads of `../shared/bench/PEERS.md`, all `f32`, each at
//! 1 and 2 threads, with three kinds of function side by side in one
//! criterion group so every ratio comes from one run:
//!
//! - `ours`: the public call (`SquaredError::new().loss(..)` etc.), run
//!   inside a rayon pool of 1 or 2 threads;
//! - `naive`: the loop a user writes by hand (`support::naive`); at 2
//!   threads the input is split into two halves with `rayon::join`;
//! - `limit_bw`: a hand-written AVX-512 (else AVX2+FMA) kernel that moves the same bytes
//!   (reads the same inputs; for loss+grad also writes a gradient-sized
//!   buffer), and for the losses with transcendentals `limit_exp`: the same
//!   input through a polynomial `exp`, once or twice per element
//!   (`support::reference`). The limit of a row is the faster one's time,
//!   i.e. the smaller elem/s: PEERS.md's roofline, measured here.
//!
//! Group ids: `<loss>_<shape>_<fwd|fwd_grad>`, functions
//! `ours|naive|limit_bw|limit_exp`, parameter `t1|t2`. `scripts/bench-report`
//! runs this binary and reads `target/criterion/<group>/<fn>/<t>/new/`.
//!
//! The timing loop itself runs on a thread of the pool (`pool.install(||
//! b.iter(..))`), so the cost of injecting a job into a pool from outside
//! (a few µs) is not charged to any of the three; the `scaling` binary's
//! `small_*` groups measure calls from outside a pool.
//!
//! Run: `cargo bench --bench losses [-- <regex>]`.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use loss_kernels::{
    Backend, BinaryCrossEntropy, BinaryCrossEntropyWithLogits, CrossEntropy, SquaredError,
};
use support::{data, naive, pool, reference, Elementwise, Rows};

/// Thread counts of every canonical workload.
const THREADS: [usize; 2] = [1, 2];

/// Our public call on an elementwise workload: `(a, b, grad) -> loss`.
type OursElementwise<'a> = &'a (dyn Fn(&[f32], &[f32], &mut [f32]) -> f32 + Sync);
/// Our public call on a cross-entropy workload: `(logits, classes, labels, grad) -> loss`.
type OursRows<'a> = &'a (dyn Fn(&[f32], usize, &[u32], &mut [f32]) -> f32 + Sync);

/// Inputs of a two-array workload, and a gradient-sized output buffer.
struct Pair {
    a: Vec<f32>,
    b: Vec<f32>,
    grad: Vec<f32>,
}

/// Inputs of a cross-entropy workload, and a gradient-sized output buffer.
struct Batch {
    logits: Vec<f32>,
    labels: Vec<u32>,
    grad: Vec<f32>,
}

/// A workload's inputs, built (and checked) on first use. Criterion calls a
/// benchmark's closure only when its id matches the filter, so a filtered
/// run (`-- '^mse_65536'`, `scripts/default-vs-native`) neither generates
/// nor checks the data of the groups it skips.
struct Lazy<T> {
    value: Option<T>,
    make: Box<dyn Fn() -> T>,
}

impl<T> Lazy<T> {
    fn new(make: impl Fn() -> T + 'static) -> Self {
        Lazy {
            value: None,
            make: Box::new(make),
        }
    }

    fn get(&mut self) -> &mut T {
        self.value.get_or_insert_with(&self.make)
    }
}

/// Big inputs take tens to hundreds of ms an iteration: one iteration per
/// sample, 10 samples, instead of criterion's linear ramp.
fn size_settings(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    elements: usize,
) {
    if elements >= 1 << 20 {
        group.sampling_mode(SamplingMode::Flat).sample_size(10);
    }
}

/// One canonical elementwise group of `n` elements, loss only or loss+grad.
#[allow(clippy::too_many_arguments)]
fn elementwise_group(
    c: &mut Criterion,
    name: &str,
    n: usize,
    inputs: &mut Lazy<Pair>,
    with_grad: bool,
    ours: OursElementwise<'_>,
    naive: Elementwise,
    limits: &[(&str, Elementwise)],
) {
    let scale = 1.0 / n as f32;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(n as u64));
    size_settings(&mut group, n);
    for t in THREADS {
        let p = pool(t);
        let id = |f: &str| BenchmarkId::new(f, format!("t{t}"));
        group.bench_function(id("ours"), |bench| {
            let Pair { a, b, grad } = inputs.get();
            let (a, b): (&[f32], &[f32]) = (a, b);
            let grad: &mut [f32] = if with_grad { grad } else { &mut [] };
            p.install(|| bench.iter(|| ours(black_box(a), black_box(b), &mut *grad)))
        });
        let mut kernels = vec![("naive", naive)];
        kernels.extend_from_slice(limits);
        for (fname, kernel) in kernels {
            group.bench_function(id(fname), |bench| {
                let Pair { a, b, grad } = inputs.get();
                let (a, b): (&[f32], &[f32]) = (a, b);
                let grad: &mut [f32] = if with_grad { grad } else { &mut [] };
                p.install(|| {
                    bench.iter(|| {
                        let (a, b) = (black_box(a), black_box(b));
                        let sum = if t == 1 {
                            kernel(a, b, &mut *grad, scale)
                        } else {
                            support::elementwise_halves(kernel, a, b, &mut *grad, scale)
                        };
                        sum * scale
                    })
                })
            });
        }
    }
    group.finish();
}

/// One canonical cross-entropy group of `rows × classes`, loss only or loss+grad.
#[allow(clippy::too_many_arguments)]
fn rows_group(
    c: &mut Criterion,
    name: &str,
    (rows, classes): (usize, usize),
    inputs: &mut Lazy<Batch>,
    with_grad: bool,
    ours: OursRows<'_>,
    naive: Rows,
    limits: &[(&str, Rows)],
) {
    let n = rows * classes;
    let scale = 1.0 / rows as f32;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(n as u64));
    size_settings(&mut group, n);
    for t in THREADS {
        let p = pool(t);
        let id = |f: &str| BenchmarkId::new(f, format!("t{t}"));
        group.bench_function(id("ours"), |bench| {
            let Batch {
                logits,
                labels,
                grad,
            } = inputs.get();
            let (logits, labels): (&[f32], &[u32]) = (logits, labels);
            let grad: &mut [f32] = if with_grad { grad } else { &mut [] };
            p.install(|| {
                bench.iter(|| ours(black_box(logits), classes, black_box(labels), &mut *grad))
            })
        });
        let mut kernels = vec![("naive", naive)];
        kernels.extend_from_slice(limits);
        for (fname, kernel) in kernels {
            group.bench_function(id(fname), |bench| {
                let Batch {
                    logits,
                    labels,
                    grad,
                } = inputs.get();
                let (logits, labels): (&[f32], &[u32]) = (logits, labels);
                let grad: &mut [f32] = if with_grad { grad } else { &mut [] };
                p.install(|| {
                    bench.iter(|| {
                        let (x, y) = (black_box(logits), black_box(labels));
                        let sum = if t == 1 {
                            kernel(x, classes, y, &mut *grad, scale)
                        } else {
                            support::rows_halves(kernel, x, classes, y, &mut *grad, scale)
                        };
                        sum * scale
                    })
                })
            });
        }
    }
    group.finish();
}

fn mse(c: &mut Criterion) {
    for n in [1_usize << 16, 1 << 24] {
        let mut inputs = Lazy::new(move || {
            let (a, b) = data::regression(n);
            let ours = SquaredError::new().loss(&a, &b).unwrap();
            support::check("mse", ours, naive::exact::mse(&a, &b));
            let grad = data::output(n);
            Pair { a, b, grad }
        });
        let fwd = |a: &[f32], b: &[f32], _: &mut [f32]| SquaredError::new().loss(a, b).unwrap();
        let fwd_grad =
            |a: &[f32], b: &[f32], g: &mut [f32]| SquaredError::new().loss_grad(a, b, g).unwrap();
        elementwise_group(
            c,
            &format!("mse_{n}_fwd"),
            n,
            &mut inputs,
            false,
            &fwd,
            naive::mse_fwd,
            &[("limit_bw", reference::read2)],
        );
        elementwise_group(
            c,
            &format!("mse_{n}_fwd_grad"),
            n,
            &mut inputs,
            true,
            &fwd_grad,
            naive::mse_fwd_grad,
            &[("limit_bw", reference::read2_write1)],
        );
    }
}

fn bce_logits(c: &mut Criterion) {
    for n in [1_usize << 16, 1 << 24] {
        let mut inputs = Lazy::new(move || {
            let (a, b) = data::logits_binary(n);
            let ours = BinaryCrossEntropyWithLogits::new().loss(&a, &b).unwrap();
            support::check("bce_logits", ours, naive::exact::bce_logits(&a, &b));
            let grad = data::output(n);
            Pair { a, b, grad }
        });
        let fwd = |a: &[f32], b: &[f32], _: &mut [f32]| {
            BinaryCrossEntropyWithLogits::new().loss(a, b).unwrap()
        };
        let fwd_grad = |a: &[f32], b: &[f32], g: &mut [f32]| {
            BinaryCrossEntropyWithLogits::new()
                .loss_grad(a, b, g)
                .unwrap()
        };
        elementwise_group(
            c,
            &format!("bce_logits_{n}_fwd"),
            n,
            &mut inputs,
            false,
            &fwd,
            naive::bce_logits_fwd,
            &[
                ("limit_bw", reference::read2),
                ("limit_exp", reference::exp2),
            ],
        );
        elementwise_group(
            c,
            &format!("bce_logits_{n}_fwd_grad"),
            n,
            &mut inputs,
            true,
            &fwd_grad,
            naive::bce_logits_fwd_grad,
            &[
                ("limit_bw", reference::read2_write1),
                ("limit_exp", reference::exp2),
            ],
        );
    }
}

fn bce_probs(c: &mut Criterion) {
    let n = 1_usize << 24;
    let mut inputs = Lazy::new(move || {
        let (a, b) = data::probs_binary(n);
        let ours = BinaryCrossEntropy::new().loss(&a, &b).unwrap();
        support::check("bce_probs", ours, naive::exact::bce_probs(&a, &b));
        Pair {
            a,
            b,
            grad: Vec::new(),
        }
    });
    let fwd = |a: &[f32], b: &[f32], _: &mut [f32]| BinaryCrossEntropy::new().loss(a, b).unwrap();
    elementwise_group(
        c,
        &format!("bce_probs_{n}_fwd"),
        n,
        &mut inputs,
        false,
        &fwd,
        naive::bce_probs_fwd,
        &[
            ("limit_bw", reference::read2),
            ("limit_exp", reference::exp2),
        ],
    );
}

fn ce_sparse(c: &mut Criterion) {
    for (rows, classes) in [(4096_usize, 1000_usize), (256, 131_072)] {
        let mut inputs = Lazy::new(move || {
            let (logits, labels) = data::classification(rows, classes);
            let ours = CrossEntropy::new().loss(&logits, classes, &labels).unwrap();
            support::check(
                "ce_sparse",
                ours,
                naive::exact::ce(&logits, classes, &labels),
            );
            let grad = data::output(rows * classes);
            Batch {
                logits,
                labels,
                grad,
            }
        });
        let fwd = |x: &[f32], c: usize, y: &[u32], _: &mut [f32]| {
            CrossEntropy::new().loss(x, c, y).unwrap()
        };
        let fwd_grad = |x: &[f32], c: usize, y: &[u32], g: &mut [f32]| {
            CrossEntropy::new().loss_grad(x, c, y, g).unwrap()
        };
        rows_group(
            c,
            &format!("ce_sparse_{rows}x{classes}_fwd"),
            (rows, classes),
            &mut inputs,
            false,
            &fwd,
            naive::ce_fwd,
            &[
                ("limit_bw", reference::read1_rows),
                ("limit_exp", reference::exp1_rows),
            ],
        );
        rows_group(
            c,
            &format!("ce_sparse_{rows}x{classes}_fwd_grad"),
            (rows, classes),
            &mut inputs,
            true,
            &fwd_grad,
            naive::ce_fwd_grad,
            &[
                ("limit_bw", reference::read1_write1_rows),
                ("limit_exp", reference::exp1_rows),
            ],
        );
    }
}

/// Defaults for a full run; criterion's CLI (`--warm-up-time`,
/// `--measurement-time`, `--sample-size`) overrides them, which is how
/// `scripts/bench-report --quick` shortens the run.
fn config() -> Criterion {
    // Read by `scripts/bench-report` (which backend `ours` ran on).
    eprintln!(
        "loss-kernels backend: {:?} (available {:?}); reference kernels: {}",
        Backend::detected(),
        Backend::available(),
        if reference::uses_avx512() {
            "AVX-512"
        } else if reference::uses_avx2() {
            "AVX2+FMA"
        } else {
            "portable loops"
        }
    );
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .nresamples(20_000)
        // Criterion renders plots with gnuplot when it is installed: ~4 s a
        // benchmark on this machine, for SVGs nothing links to (the
        // `html_reports` feature is off). The numbers are in `estimates.json`.
        .without_plots()
}

criterion_group! {
    name = canonical;
    config = config();
    targets = mse, bce_logits, bce_probs, ce_sparse
}
criterion_main!(canonical);
