//! # Cross-entropy throughput on this machine, in a loop
//!
//! Calls [`CrossEntropy::loss`] or [`CrossEntropy::loss_grad`] on one
//! `rows × classes` batch of `f32` logits, again and again for a few
//! seconds, in a rayon pool of the given size, and prints the rate of each
//! second and their median in elements (`rows × classes`) per second.
//!
//! It answers "how fast is it here" without criterion, and it is the loop
//! to put under a profiler: `perf record -e cpu-clock` on it shows the
//! kernel and nothing else (the data is drawn once, before the clock
//! starts).
//!
//! ```text
//! cargo run --release --example ce_throughput -- [loss|loss_grad] [ROWS] [CLASSES] [SECONDS] [THREADS] [FORM] [BACKEND]
//! ```
//!
//! Defaults: `loss_grad 4096 1000 3 1 auto` (issue 4's in-cache workload).
//! `FORM` is the [`LongRowGradient`] of long rows' loss + gradient (`auto`,
//! `streamed` or `in_place`): e.g. `loss_grad 256 131072 5 2 streamed`
//! against `... in_place` compares the two forms at two threads.
//! `BACKEND` is the [`Backend`] (`auto`, `scalar`, `portable`, `avx2` or
//! `avx512`): `loss 256 131072 3 1 auto avx2` times the AVX2 kernels on an
//! AVX-512 machine. The
//! logits are Gaussian with standard deviation 2 and the labels uniform, as
//! in the crate's benchmarks, from a fixed seed.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use loss_kernels::{Backend, CrossEntropy, LongRowGradient};

const USAGE: &str =
    "usage: ce_throughput [loss|loss_grad] [ROWS] [CLASSES] [SECONDS] [THREADS] [FORM] [BACKEND]
  FORM: auto, streamed or in_place (the long-row gradient form)
  BACKEND: auto, scalar, portable, avx2 or avx512
  defaults: loss_grad 4096 1000 3 1 auto auto";

struct Args {
    grad: bool,
    rows: usize,
    classes: usize,
    seconds: f64,
    threads: usize,
    form: LongRowGradient,
    backend: Backend,
}

fn parse() -> Result<Args, String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.len() > 7 {
        return Err(format!("expected at most 7 arguments, got {}", argv.len()));
    }
    let grad = match argv.first().map(String::as_str) {
        None | Some("loss_grad") => true,
        Some("loss") => false,
        Some(other) => return Err(format!("mode must be loss or loss_grad, got {other:?}")),
    };
    let number = |k: usize, name: &str, default: usize| -> Result<usize, String> {
        match argv.get(k) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(0) | Err(_) => Err(format!("{name} must be a positive integer, got {v:?}")),
                Ok(n) => Ok(n),
            },
        }
    };
    let rows = number(1, "ROWS", 4096)?;
    let classes = number(2, "CLASSES", 1000)?;
    let seconds = number(3, "SECONDS", 3)? as f64;
    let threads = number(4, "THREADS", 1)?;
    let form = match argv.get(5).map(String::as_str) {
        None | Some("auto") => LongRowGradient::Auto,
        Some("streamed") => LongRowGradient::Streamed,
        Some("in_place") => LongRowGradient::InPlace,
        Some(other) => {
            return Err(format!(
                "FORM must be auto, streamed or in_place, got {other:?}"
            ))
        }
    };
    let backend = match argv.get(6).map(String::as_str) {
        None | Some("auto") => Backend::Auto,
        Some("scalar") => Backend::Scalar,
        Some("portable") => Backend::Portable,
        Some("avx2") => Backend::Avx2Fma,
        Some("avx512") => Backend::Avx512,
        Some(other) => {
            return Err(format!(
                "BACKEND must be auto, scalar, portable, avx2 or avx512, got {other:?}"
            ))
        }
    };
    if !backend.is_available() {
        return Err(format!("backend {backend:?} is not available on this CPU"));
    }
    if rows.checked_mul(classes).is_none_or(|n| n > 1 << 31) {
        return Err(format!(
            "ROWS × CLASSES must be at most 2^31 elements, got {rows} × {classes}"
        ));
    }
    Ok(Args {
        grad,
        rows,
        classes,
        seconds,
        threads,
        form,
        backend,
    })
}

/// Gaussian logits (standard deviation 2) and uniform labels, from a fixed
/// seed (a 64-bit LCG and the Box–Muller transform).
fn data(rows: usize, classes: usize) -> (Vec<f32>, Vec<u32>) {
    let mut state = 0x5eed_0003_u64;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // 53 random bits in (0, 1].
        ((state >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    };
    let logits = (0..rows * classes)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            (2.0 * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect();
    let labels = (0..rows)
        .map(|_| ((uniform() * classes as f64) as usize).min(classes - 1) as u32)
        .collect();
    (logits, labels)
}

/// `println!` that ignores a closed standard output (`| head`), where
/// `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ce_throughput: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "ce_throughput: cannot build a pool of {} threads: {e}",
                args.threads
            );
            return ExitCode::FAILURE;
        }
    };
    let n = args.rows * args.classes;
    let mode = if args.grad { "loss_grad" } else { "loss" };
    say!(
        "cross entropy {mode}, {} x {} f32 ({:.1} MiB of logits), {} thread(s), {} s, long-row gradient {:?}, backend {:?} ({:?})",
        args.rows,
        args.classes,
        (n * 4) as f64 / (1 << 20) as f64,
        args.threads,
        args.seconds,
        args.form,
        args.backend,
        if args.backend == Backend::Auto {
            Backend::detected()
        } else {
            args.backend
        }
    );
    let t0 = Instant::now();
    let (logits, labels) = data(args.rows, args.classes);
    let mut grad = vec![0.0f32; if args.grad { n } else { 0 }];
    say!("data drawn in {:.2} s", t0.elapsed().as_secs_f64());

    let ce = CrossEntropy::new()
        .long_row_gradient(args.form)
        .backend(args.backend);
    let mut call = || {
        if args.grad {
            ce.loss_grad(&logits, args.classes, &labels, &mut grad)
        } else {
            ce.loss(&logits, args.classes, &labels)
        }
    };
    let result = pool.install(|| {
        let loss = call()?;
        let mut rates = Vec::new();
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < args.seconds {
            let second = Instant::now();
            let mut calls = 0u64;
            while second.elapsed() < Duration::from_secs(1) {
                call()?;
                calls += 1;
            }
            let rate = (calls * n as u64) as f64 / second.elapsed().as_secs_f64();
            say!(
                "  second {:>3}: {calls:>6} calls, {:.3} G elem/s",
                rates.len() + 1,
                rate / 1e9
            );
            rates.push(rate);
        }
        Ok::<_, loss_kernels::LossError>((loss, rates))
    });
    match result {
        Ok((loss, mut rates)) => {
            rates.sort_by(f64::total_cmp);
            let median = rates[rates.len() / 2];
            say!(
                "loss {loss:.6}; median {:.3} G elem/s over {} seconds",
                median / 1e9,
                rates.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ce_throughput: {e}");
            ExitCode::FAILURE
        }
    }
}
