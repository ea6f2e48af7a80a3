//! The canonical workloads of `../shared/bench/PEERS.md`, all `f32`, each at
//! 1 and 2 threads, with three kinds of function side by side in one
//! criterion group so every ratio comes from one run:
//!
//! - `ours`: the public call (`SquaredError::new().loss(..)` etc.), run
//!   inside a rayon pool of 1 or 2 threads;
//! - `naive`: the loop a user writes by hand (`support::naive`); at 2
//!   threads the input is split into two halves with `rayon::join`;
//! - `limit_bw`: a hand-written AVX-512 kernel that moves the same bytes
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

/// One canonical elementwise group (`grad` empty for loss only).
fn elementwise_group(
    c: &mut Criterion,
    name: &str,
    (a, b, grad): (&[f32], &[f32], &mut [f32]),
    ours: OursElementwise<'_>,
    naive: Elementwise,
    limits: &[(&str, Elementwise)],
) {
    let n = a.len();
    let scale = 1.0 / n as f32;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(n as u64));
    size_settings(&mut group, n);
    for t in THREADS {
        let p = pool(t);
        let id = |f: &str| BenchmarkId::new(f, format!("t{t}"));
        group.bench_function(id("ours"), |bench| {
            p.install(|| bench.iter(|| ours(black_box(a), black_box(b), &mut *grad)))
        });
        let mut kernels = vec![("naive", naive)];
        kernels.extend_from_slice(limits);
        for (fname, kernel) in kernels {
            group.bench_function(id(fname), |bench| {
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

/// One canonical cross-entropy group (`grad` empty for loss only).
fn rows_group(
    c: &mut Criterion,
    name: &str,
    (logits, classes, labels, grad): (&[f32], usize, &[u32], &mut [f32]),
    ours: OursRows<'_>,
    naive: Rows,
    limits: &[(&str, Rows)],
) {
    let n = logits.len();
    let scale = 1.0 / labels.len() as f32;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(n as u64));
    size_settings(&mut group, n);
    for t in THREADS {
        let p = pool(t);
        let id = |f: &str| BenchmarkId::new(f, format!("t{t}"));
        group.bench_function(id("ours"), |bench| {
            p.install(|| {
                bench.iter(|| ours(black_box(logits), classes, black_box(labels), &mut *grad))
            })
        });
        let mut kernels = vec![("naive", naive)];
        kernels.extend_from_slice(limits);
        for (fname, kernel) in kernels {
            group.bench_function(id(fname), |bench| {
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
        let (pred, target) = data::regression(n);
        let mut grad = data::output(n);
        let fwd = |a: &[f32], b: &[f32], _: &mut [f32]| SquaredError::new().loss(a, b).unwrap();
        let fwd_grad =
            |a: &[f32], b: &[f32], g: &mut [f32]| SquaredError::new().loss_grad(a, b, g).unwrap();
        support::check(
            "mse",
            fwd(&pred, &target, &mut []),
            naive::exact::mse(&pred, &target),
        );
        elementwise_group(
            c,
            &format!("mse_{n}_fwd"),
            (&pred, &target, &mut []),
            &fwd,
            naive::mse_fwd,
            &[("limit_bw", reference::read2)],
        );
        elementwise_group(
            c,
            &format!("mse_{n}_fwd_grad"),
            (&pred, &target, &mut grad),
            &fwd_grad,
            naive::mse_fwd_grad,
            &[("limit_bw", reference::read2_write1)],
        );
    }
}

fn bce_logits(c: &mut Criterion) {
    for n in [1_usize << 16, 1 << 24] {
        let (x, y) = data::logits_binary(n);
        let mut grad = data::output(n);
        let fwd = |a: &[f32], b: &[f32], _: &mut [f32]| {
            BinaryCrossEntropyWithLogits::new().loss(a, b).unwrap()
        };
        let fwd_grad = |a: &[f32], b: &[f32], g: &mut [f32]| {
            BinaryCrossEntropyWithLogits::new()
                .loss_grad(a, b, g)
                .unwrap()
        };
        support::check(
            "bce_logits",
            fwd(&x, &y, &mut []),
            naive::exact::bce_logits(&x, &y),
        );
        elementwise_group(
            c,
            &format!("bce_logits_{n}_fwd"),
            (&x, &y, &mut []),
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
            (&x, &y, &mut grad),
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
    let (p, y) = data::probs_binary(n);
    let fwd = |a: &[f32], b: &[f32], _: &mut [f32]| BinaryCrossEntropy::new().loss(a, b).unwrap();
    support::check(
        "bce_probs",
        fwd(&p, &y, &mut []),
        naive::exact::bce_probs(&p, &y),
    );
    elementwise_group(
        c,
        &format!("bce_probs_{n}_fwd"),
        (&p, &y, &mut []),
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
        let (logits, labels) = data::classification(rows, classes);
        let mut grad = data::output(rows * classes);
        let fwd = |x: &[f32], c: usize, y: &[u32], _: &mut [f32]| {
            CrossEntropy::new().loss(x, c, y).unwrap()
        };
        let fwd_grad = |x: &[f32], c: usize, y: &[u32], g: &mut [f32]| {
            CrossEntropy::new().loss_grad(x, c, y, g).unwrap()
        };
        support::check(
            "ce_sparse",
            fwd(&logits, classes, &labels, &mut []),
            naive::exact::ce(&logits, classes, &labels),
        );
        ce_groups(
            c,
            rows,
            classes,
            (&logits, &labels, &mut grad),
            &fwd,
            &fwd_grad,
        );
    }
}

/// The loss and loss+grad groups of one cross-entropy shape.
fn ce_groups(
    c: &mut Criterion,
    rows: usize,
    classes: usize,
    (logits, labels, grad): (&[f32], &[u32], &mut [f32]),
    fwd: OursRows<'_>,
    fwd_grad: OursRows<'_>,
) {
    rows_group(
        c,
        &format!("ce_sparse_{rows}x{classes}_fwd"),
        (logits, classes, labels, &mut []),
        fwd,
        naive::ce_fwd,
        &[
            ("limit_bw", reference::read1_rows),
            ("limit_exp", reference::exp1_rows),
        ],
    );
    rows_group(
        c,
        &format!("ce_sparse_{rows}x{classes}_fwd_grad"),
        (logits, classes, labels, grad),
        fwd_grad,
        naive::ce_fwd_grad,
        &[
            ("limit_bw", reference::read1_write1_rows),
            ("limit_exp", reference::exp1_rows),
        ],
    );
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
        } else {
            "portable loops"
        }
    );
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .nresamples(20_000)
}

criterion_group! {
    name = canonical;
    config = config();
    targets = mse, bce_logits, bce_probs, ce_sparse
}
criterion_main!(canonical);
