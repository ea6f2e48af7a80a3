//! # Maximum likelihood, made runnable
//!
//! The crate's three losses are the negative log-likelihoods of three
//! observation models (the seed derivation, see the crate README):
//!
//! | model | observation given the prediction | loss |
//! | --- | --- | --- |
//! | linear-Gaussian | `y ~ N(a·x + b, σ²)` | squared error (seed eq. 7) |
//! | logistic-Bernoulli | `y ~ Bernoulli(σ(w·x + c))` | binary cross entropy (eq. 12) |
//! | softmax-categorical | `y ~ Categorical(softmax(W x + b))` | softmax cross entropy (eq. 13) |
//!
//! This example draws 100 000 samples from each model with known parameters
//! (fixed seed, so every run prints the same numbers), then recovers the
//! parameters by full-batch gradient descent with momentum. Every loss value
//! and every derivative of the loss with respect to the model's predictions
//! comes from the crate's fused `loss_grad` kernels
//! ([`SquaredError`], [`BinaryCrossEntropyWithLogits`], [`CrossEntropy`]);
//! the example itself only applies the chain rule from the predictions to the
//! parameters (`∂L/∂a = Σ_i ∂L/∂pred_i · x_i`, ...).
//!
//! For each model it prints progress lines while fitting, then a table of
//! true versus recovered parameters with their absolute errors and standard
//! errors (from the inverse Fisher information at the fit), the final loss,
//! the negative log-likelihood, and the kernels' throughput. It shows that
//!
//! - the minimizer of the mean squared error is the Gaussian maximum
//!   likelihood estimate: gradient descent lands on the closed-form
//!   least-squares solution, and with `σ̂² = SSE / n` the NLL is
//!   `n/2 · ln(2πσ̂²) + SSE / (2σ̂²)`;
//! - for the Bernoulli and categorical models the NLL *is* `n ×` the mean
//!   loss, checked against a direct `f64` sum of `−ln p(y | x)`;
//! - the fitted parameters are at least as likely as the true ones
//!   (`NLL(θ̂) ≤ NLL(θ)`), and they differ from the truth by sampling error only.
//!
//! The example checks all of this and exits with an error (non-zero status)
//! if a recovered parameter is far off (more than 0.1 absolute or 5 standard
//! errors), if a fit does not converge, or if an identity does not hold.
//!
//! It uses only the crate's public API and `std`: the random numbers come from
//! a small SplitMix64 generator and Box–Muller normals written below.
//!
//! Run it with
//!
//! ```text
//! cargo run --release --example mle
//! ```

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use loss_kernels::{Backend, BinaryCrossEntropyWithLogits, CrossEntropy, LossError, SquaredError};

/// Samples drawn from each model.
const N: usize = 100_000;
/// Seed of the data generator; each model draws from its own stream.
const SEED: u64 = 0x5EED_CAFE_F00D_0001;
/// Features of the Bernoulli and categorical models.
const FEATURES: usize = 3;
/// How long each model's kernel is re-run to measure its throughput.
const STEADY_STATE: Duration = Duration::from_millis(250);
/// Self-check: the largest acceptable absolute error of a recovered parameter.
const MAX_ABS_ERROR: f64 = 0.1;
/// Self-check: the largest acceptable error in standard errors.
const MAX_STD_ERRORS: f64 = 5.0;

fn main() -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "Maximum likelihood with loss-kernels: the seed's three models, fitted by gradient descent"
    );
    println!(
        "  SIMD backend: {:?} (detected at run time; this CPU can run {:?})",
        Backend::detected(),
        Backend::available()
    );
    println!("  {N} samples per model, seed {SEED:#x}, {threads} hardware threads");

    let mut checks = Checks::default();
    let summaries = [
        linear_gaussian(&mut Rng::new(SEED), &mut checks)?,
        logistic_bernoulli(&mut Rng::new(SEED ^ 1), &mut checks)?,
        softmax_categorical(&mut Rng::new(SEED ^ 2), &mut checks)?,
    ];

    println!("\n== Summary ==");
    println!(
        "  {:<18} {:>5} {:>11} {:>12} {:>10} {:>10} {:>9} {:>13} {:>13}",
        "model (loss)",
        "steps",
        "final loss",
        "NLL",
        "fit time",
        "in kernel",
        "elements",
        "elements/s",
        "steady el/s"
    );
    for s in &summaries {
        println!(
            "  {:<18} {:>5} {:>11.7} {:>12.3} {:>10} {:>10} {:>9} {:>13} {:>13}",
            s.name,
            s.steps,
            s.final_loss,
            s.nll,
            ms(s.fit_time),
            ms(s.clock.busy),
            s.clock.elements,
            si(s.clock.throughput()),
            si(s.steady.throughput())
        );
    }
    println!("  total wall time {}", ms(start.elapsed()));
    checks.finish()
}

// ---------------------------------------------------------------------------
// Model 1: linear-Gaussian, fitted with squared error.
// ---------------------------------------------------------------------------

/// `y = a·x + b + σ·ε`, `x ~ U(-2, 2)`, `ε ~ N(0, 1)`.
fn linear_gaussian(rng: &mut Rng, checks: &mut Checks) -> Result<Summary, Box<dyn Error>> {
    const A: f64 = 2.5;
    const B: f64 = -1.0;
    const SIGMA: f64 = 0.7;
    println!("\n== 1/3 linear-Gaussian: y = a·x + b + σ·ε, x ~ U(-2, 2), ε ~ N(0, 1) -> squared error ==");

    let t = Instant::now();
    let mut x = Vec::with_capacity(N);
    let mut y = Vec::with_capacity(N);
    for _ in 0..N {
        let xi = rng.uniform_in(-2.0, 2.0);
        x.push(xi as f32);
        y.push((A * xi + B + SIGMA * rng.normal()) as f32);
    }
    println!("  generated {N} samples in {}", ms(t.elapsed()));

    // Predictions `pred_i = a·x_i + b`; the kernel returns the mean squared
    // error and writes `∂MSE/∂pred_i` into `grad`.
    let mse = SquaredError::new();
    let mut pred = vec![0.0_f32; N];
    let mut grad = vec![0.0_f32; N];
    let mut clock = KernelClock::default();
    let mut theta = [0.0_f64; 2];
    let optimizer = Optimizer {
        learning_rate: 0.4,
        momentum: 0.0,
        max_steps: 500,
        tolerance: 1e-7,
        report_every: 4,
    };
    let fit = optimizer.minimize(&mut theta, |th, d_th| {
        for (p, &xi) in pred.iter_mut().zip(&x) {
            *p = (th[0] * f64::from(xi) + th[1]) as f32;
        }
        let loss = clock.time(N, || mse.loss_grad(&pred, &y, &mut grad))?;
        // Chain rule: ∂L/∂a = Σ_i ∂L/∂pred_i · x_i, ∂L/∂b = Σ_i ∂L/∂pred_i.
        let (mut da, mut db) = (0.0, 0.0);
        for (&g, &xi) in grad.iter().zip(&x) {
            da += f64::from(g) * f64::from(xi);
            db += f64::from(g);
        }
        d_th.copy_from_slice(&[da, db]);
        Ok(f64::from(loss))
    })?;
    let [a, b] = theta;

    // The noise scale has its own closed-form MLE given the fitted line:
    // σ̂² = SSE / n. The SSE comes from the crate, as an f64 partial sum.
    let sse = mse.partial(&prediction(&x, a, b), &y)?.sum;
    let sigma2 = sse / N as f64;
    let sigma = sigma2.sqrt();

    // Standard errors: Cov(a, b) = σ̂² (X̃ᵀX̃)⁻¹ with rows x̃_i = [x_i, 1];
    // the MLE of σ has standard error σ̂ / √(2n).
    let (sx, sxx) = x
        .iter()
        .map(|&v| f64::from(v))
        .fold((0.0, 0.0), |(s, ss), v| (s + v, ss + v * v));
    let xtx = [sxx, sx, sx, N as f64];
    let cov = invert(&xtx, 2).ok_or("XᵀX is singular")?;
    let params = [
        Param::new("a (slope)", A, a, (sigma2 * cov[0]).sqrt()),
        Param::new("b (intercept)", B, b, (sigma2 * cov[3]).sqrt()),
        Param::new("σ (noise)", SIGMA, sigma, sigma / (2.0 * N as f64).sqrt()),
    ];
    print_params("linear-Gaussian", &params, checks);
    checks.require(fit.converged, || {
        format!("linear-Gaussian: no convergence in {} steps", fit.steps)
    });

    // The MSE minimizer is the least-squares solution, in closed form.
    let (a_ls, b_ls) = least_squares(&x, &y);
    let gap = (a - a_ls).abs().max((b - b_ls).abs());
    println!("  final loss (MSE)          {:.7}", fit.loss);
    println!(
        "  closed-form least squares a = {a_ls:.7}, b = {b_ls:.7}; gradient descent is {gap:.1e} away:"
    );
    println!("    minimizing the squared error found the maximum-likelihood line (seed eq. 7)");
    checks.require(gap < 1e-5, || {
        format!("linear-Gaussian: GD is {gap:e} from least squares")
    });

    let nll = gaussian_nll(sse, sigma2);
    println!("  NLL at σ̂² = SSE/n = {sigma2:.7}:");
    println!(
        "    n/2·ln(2πσ̂²) + SSE/(2σ̂²) = {:.3} + {:.3} (= n/2) = {nll:.3}",
        N as f64 / 2.0 * (std::f64::consts::TAU * sigma2).ln(),
        sse / (2.0 * sigma2)
    );
    let sse_true = mse.partial(&prediction(&x, A, B), &y)?.sum;
    let nll_true = gaussian_nll(sse_true, SIGMA * SIGMA);
    nll_comparison(nll, nll_true, "linear-Gaussian", checks);
    let steady = KernelClock::steady_state(N, || mse.loss_grad(&pred, &y, &mut grad))?;
    report_throughput(&clock, &steady);

    Ok(Summary {
        name: "Gaussian (MSE)",
        steps: fit.steps,
        final_loss: fit.loss,
        nll,
        clock,
        steady,
        fit_time: fit.time,
    })
}

/// `a·x_i + b` for every sample, rounded to `f32` once.
fn prediction(x: &[f32], a: f64, b: f64) -> Vec<f32> {
    x.iter().map(|&xi| (a * f64::from(xi) + b) as f32).collect()
}

/// The Gaussian negative log-likelihood `n/2·ln(2πσ²) + SSE/(2σ²)`.
fn gaussian_nll(sse: f64, sigma2: f64) -> f64 {
    N as f64 / 2.0 * (std::f64::consts::TAU * sigma2).ln() + sse / (2.0 * sigma2)
}

/// Ordinary least squares `y ≈ a·x + b` in closed form (centred sums, `f64`).
fn least_squares(x: &[f32], y: &[f32]) -> (f64, f64) {
    let n = x.len() as f64;
    let x_mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let y_mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (sxy, sxx) = x.iter().zip(y).fold((0.0, 0.0), |(sxy, sxx), (&xi, &yi)| {
        let dx = f64::from(xi) - x_mean;
        (sxy + dx * (f64::from(yi) - y_mean), sxx + dx * dx)
    });
    let a = sxy / sxx;
    (a, y_mean - a * x_mean)
}

// ---------------------------------------------------------------------------
// Model 2: logistic-Bernoulli, fitted with binary cross entropy on logits.
// ---------------------------------------------------------------------------

/// `y ~ Bernoulli(σ(w·x + c))`, `x ~ N(0, I₃)`.
fn logistic_bernoulli(rng: &mut Rng, checks: &mut Checks) -> Result<Summary, Box<dyn Error>> {
    const D: usize = FEATURES;
    const W: [f64; D] = [1.5, -2.0, 0.75];
    const C: f64 = -0.5;
    println!("\n== 2/3 logistic-Bernoulli: y ~ Bernoulli(σ(w·x + c)), x ~ N(0, I₃) -> binary cross entropy ==");

    let t = Instant::now();
    let x: Vec<f32> = (0..N * D).map(|_| rng.normal() as f32).collect();
    let truth = [W[0], W[1], W[2], C];
    let y: Vec<f32> = x
        .chunks_exact(D)
        .map(|xi| {
            let p = 1.0 / (1.0 + (-linear(&truth, xi)).exp());
            if rng.uniform() < p {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let positives = y.iter().filter(|&&v| v == 1.0).count();
    println!(
        "  generated {N} samples in {} ({positives} positives)",
        ms(t.elapsed())
    );

    // Logits `z_i = w·x_i + c`; the kernel returns the mean BCE and writes
    // `∂BCE/∂z_i = (σ(z_i) − y_i) / n` into `grad`.
    let bce = BinaryCrossEntropyWithLogits::new();
    let mut logits = vec![0.0_f32; N];
    let mut grad = vec![0.0_f32; N];
    let mut clock = KernelClock::default();
    let mut theta = [0.0_f64; D + 1];
    let optimizer = Optimizer {
        learning_rate: 4.0,
        momentum: 0.5,
        max_steps: 2_000,
        tolerance: 1e-7,
        report_every: 10,
    };
    let fit = optimizer.minimize(&mut theta, |th, d_th| {
        for (z, xi) in logits.iter_mut().zip(x.chunks_exact(D)) {
            *z = linear(th, xi) as f32;
        }
        let loss = clock.time(N, || bce.loss_grad(&logits, &y, &mut grad))?;
        // Chain rule: ∂L/∂w_j = Σ_i ∂L/∂z_i · x_ij, ∂L/∂c = Σ_i ∂L/∂z_i.
        d_th.fill(0.0);
        for (&g, xi) in grad.iter().zip(x.chunks_exact(D)) {
            let g = f64::from(g);
            for (d, &xij) in d_th.iter_mut().zip(xi) {
                *d += g * f64::from(xij);
            }
            d_th[D] += g;
        }
        Ok(f64::from(loss))
    })?;

    // Standard errors from the inverse Fisher information Σ_i p_i(1−p_i) x̃_i x̃_iᵀ.
    let mut info = vec![0.0; (D + 1) * (D + 1)];
    for xi in x.chunks_exact(D) {
        let p = 1.0 / (1.0 + (-linear(&theta, xi)).exp());
        add_outer(&mut info, p * (1.0 - p), &augmented(xi));
    }
    let cov = invert(&info, D + 1).ok_or("the Fisher information is singular")?;
    let names = ["w1", "w2", "w3", "c (bias)"];
    let params: Vec<Param> = (0..=D)
        .map(|k| Param::new(names[k], truth[k], theta[k], cov[k * (D + 1) + k].sqrt()))
        .collect();
    print_params("logistic-Bernoulli", &params, checks);
    checks.require(fit.converged, || {
        format!("logistic-Bernoulli: no convergence in {} steps", fit.steps)
    });

    // NLL = −Σ_i ln p(y_i | x_i) = Σ_i BCE_i = n × mean BCE (seed eq. 12).
    for (z, xi) in logits.iter_mut().zip(x.chunks_exact(D)) {
        *z = linear(&theta, xi) as f32;
    }
    let nll = bce.partial(&logits, &y)?.sum;
    let direct = bernoulli_nll(&theta, &x, &y);
    println!("  final loss (mean BCE)     {:.7}", fit.loss);
    println!(
        "  NLL = n × mean BCE = {N} × {:.7} = {nll:.3}",
        nll / N as f64
    );
    identity(
        "direct f64 sum of −[y ln p + (1−y) ln(1−p)] (eq. 12)",
        nll,
        direct,
        "logistic-Bernoulli",
        checks,
    );
    nll_comparison(
        nll,
        bernoulli_nll(&truth, &x, &y),
        "logistic-Bernoulli",
        checks,
    );
    let steady = KernelClock::steady_state(N, || bce.loss_grad(&logits, &y, &mut grad))?;
    report_throughput(&clock, &steady);

    Ok(Summary {
        name: "Bernoulli (BCE)",
        steps: fit.steps,
        final_loss: fit.loss,
        nll,
        clock,
        steady,
        fit_time: fit.time,
    })
}

/// `−Σ_i [y_i ln p_i + (1 − y_i) ln(1 − p_i)]` with `p_i = σ(w·x_i + c)`,
/// transcribed from seed eq. 12 in `f64`, independent of the crate.
fn bernoulli_nll(theta: &[f64], x: &[f32], y: &[f32]) -> f64 {
    x.chunks_exact(FEATURES)
        .zip(y)
        .map(|(xi, &yi)| {
            let p = 1.0 / (1.0 + (-linear(theta, xi)).exp());
            let yi = f64::from(yi);
            -(yi * p.ln() + (1.0 - yi) * (1.0 - p).ln())
        })
        .sum()
}

// ---------------------------------------------------------------------------
// Model 3: softmax-categorical, fitted with softmax cross entropy.
// ---------------------------------------------------------------------------

/// `y ~ Categorical(softmax(W x + b))`, 4 classes, `x ~ N(0, I₃)`.
///
/// Adding the same number to every class's logit does not change the
/// softmax, so only parameters modulo a per-feature constant are identified.
/// The true `W` and `b` are chosen centred (each column sums to 0 over the
/// classes); gradient descent from zero keeps that sum at 0 because the
/// gradient `softmax − onehot` of every row sums to 0, and the fit is
/// re-centred before it is compared.
fn softmax_categorical(rng: &mut Rng, checks: &mut Checks) -> Result<Summary, Box<dyn Error>> {
    const K: usize = 4;
    const D: usize = FEATURES;
    /// Row `k` is class `k`'s `[w_k1, w_k2, w_k3, b_k]`.
    const TRUTH: [[f64; D + 1]; K] = [
        [1.0, -0.5, 0.0, 0.2],
        [-1.0, 1.5, 0.5, -0.3],
        [0.5, -1.0, 1.0, 0.4],
        [-0.5, 0.0, -1.5, -0.3],
    ];
    println!(
        "\n== 3/3 softmax-categorical: y ~ Categorical(softmax(W x + b)), {K} classes, x ~ N(0, I₃) -> cross entropy =="
    );
    let truth: Vec<f64> = TRUTH.iter().flatten().copied().collect();

    let t = Instant::now();
    let x: Vec<f32> = (0..N * D).map(|_| rng.normal() as f32).collect();
    let mut counts = [0_usize; K];
    let labels: Vec<u32> = x
        .chunks_exact(D)
        .map(|xi| {
            let mut z = [0.0; K];
            class_logits(&truth, xi, &mut z);
            let k = rng.categorical(&softmax(&z));
            counts[k] += 1;
            k as u32
        })
        .collect();
    println!(
        "  generated {N} samples in {} (class counts {counts:?})",
        ms(t.elapsed())
    );

    // Logits `z_ik = w_k·x_i + b_k`, row-major `[N, K]`; the kernel returns
    // the mean cross entropy and writes `∂CE/∂z_ik = (softmax_ik − [y_i = k]) / n`.
    let ce = CrossEntropy::new();
    let mut logits = vec![0.0_f32; N * K];
    let mut grad = vec![0.0_f32; N * K];
    let mut clock = KernelClock::default();
    let mut theta = vec![0.0_f64; K * (D + 1)];
    let optimizer = Optimizer {
        learning_rate: 3.0,
        momentum: 0.5,
        max_steps: 2_000,
        tolerance: 1e-7,
        report_every: 10,
    };
    let fit = optimizer.minimize(&mut theta, |th, d_th| {
        fill_logits(th, &x, &mut logits);
        let loss = clock.time(N * K, || ce.loss_grad(&logits, K, &labels, &mut grad))?;
        // Chain rule: ∂L/∂w_kj = Σ_i ∂L/∂z_ik · x_ij, ∂L/∂b_k = Σ_i ∂L/∂z_ik.
        d_th.fill(0.0);
        for (gi, xi) in grad.chunks_exact(K).zip(x.chunks_exact(D)) {
            let xi = augmented(xi);
            for (&g, d_k) in gi.iter().zip(d_th.chunks_exact_mut(D + 1)) {
                let g = f64::from(g);
                for (d, &xij) in d_k.iter_mut().zip(&xi) {
                    *d += g * xij;
                }
            }
        }
        Ok(f64::from(loss))
    })?;
    let drift = centre(&mut theta, K);

    // Standard errors from the Fisher information Σ_i (diag p_i − p_i p_iᵀ) ⊗ x̃_i x̃_iᵀ.
    // It is singular along the unidentified directions (a per-feature
    // constant added to every class); its pseudo-inverse is the covariance of
    // the centred estimate. With N the projector on those directions,
    // pinv(F) = (F + N)⁻¹ − N (F and N act on orthogonal subspaces).
    let dim = K * (D + 1);
    let mut info = vec![0.0; dim * dim];
    let mut z = [0.0; K];
    for xi in x.chunks_exact(D) {
        class_logits(&theta, xi, &mut z);
        let p = softmax(&z);
        let xt = augmented(xi);
        for (r, row) in info.chunks_exact_mut(dim).enumerate() {
            let (k, j) = (r / (D + 1), r % (D + 1));
            for (c, v) in row.iter_mut().enumerate() {
                let (l, m) = (c / (D + 1), c % (D + 1));
                let a = if k == l {
                    p[k] * (1.0 - p[k])
                } else {
                    -p[k] * p[l]
                };
                *v += a * xt[j] * xt[m];
            }
        }
    }
    let projector = |r: usize, c: usize| {
        if r % (D + 1) == c % (D + 1) {
            1.0 / K as f64
        } else {
            0.0
        }
    };
    let scaled: Vec<f64> = info
        .iter()
        .enumerate()
        .map(|(i, &v)| v / N as f64 + projector(i / dim, i % dim))
        .collect();
    let inv = invert(&scaled, dim).ok_or("the Fisher information is singular")?;
    let params: Vec<Param> = (0..dim)
        .map(|i| {
            let (k, j) = (i / (D + 1), i % (D + 1));
            let name = if j == D {
                format!("b{}", k + 1)
            } else {
                format!("W{}{}", k + 1, j + 1)
            };
            let var = (inv[i * dim + i] - projector(i, i)) / N as f64;
            Param::new(&name, truth[i], theta[i], var.sqrt())
        })
        .collect();
    print_params("softmax-categorical", &params, checks);
    println!("  (W and b are centred over the classes; the fit drifted {drift:.1e} off centre before re-centring)");
    checks.require(fit.converged, || {
        format!("softmax-categorical: no convergence in {} steps", fit.steps)
    });

    // NLL = −Σ_i ln softmax(z_i)_{y_i} = Σ_i CE_i = n × mean CE (seed eq. 13).
    fill_logits(&theta, &x, &mut logits);
    let nll = ce.partial(&logits, K, &labels)?.sum;
    println!("  final loss (mean CE)      {:.7}", fit.loss);
    println!(
        "  NLL = n × mean CE = {N} × {:.7} = {nll:.3}",
        nll / N as f64
    );
    let direct = categorical_nll(&theta, &x, &labels);
    identity(
        "direct f64 sum of −ln softmax(z)_y (eq. 13)",
        nll,
        direct,
        "softmax-categorical",
        checks,
    );
    nll_comparison(
        nll,
        categorical_nll(&truth, &x, &labels),
        "softmax-categorical",
        checks,
    );
    let steady = KernelClock::steady_state(N * K, || ce.loss_grad(&logits, K, &labels, &mut grad))?;
    report_throughput(&clock, &steady);

    Ok(Summary {
        name: "categorical (CE)",
        steps: fit.steps,
        final_loss: fit.loss,
        nll,
        clock,
        steady,
        fit_time: fit.time,
    })
}

/// Writes the `f32` logits, row-major `[samples, classes]`, of every sample
/// for the class rows `[w_k, b_k]` of `theta`.
fn fill_logits(theta: &[f64], x: &[f32], logits: &mut [f32]) {
    let classes = theta.len() / (FEATURES + 1);
    for (zi, xi) in logits
        .chunks_exact_mut(classes)
        .zip(x.chunks_exact(FEATURES))
    {
        for (z, row) in zi.iter_mut().zip(theta.chunks_exact(FEATURES + 1)) {
            *z = linear(row, xi) as f32;
        }
    }
}

/// `z_k = w_k·x + b_k` for every class row `[w_k, b_k]` of `theta`.
fn class_logits(theta: &[f64], x: &[f32], z: &mut [f64]) {
    for (zk, row) in z.iter_mut().zip(theta.chunks_exact(x.len() + 1)) {
        *zk = linear(row, x);
    }
}

/// `softmax(z)` in `f64`, computed stably.
fn softmax<const K: usize>(z: &[f64; K]) -> [f64; K] {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e = z.map(|v| (v - max).exp());
    let sum: f64 = e.iter().sum();
    e.map(|v| v / sum)
}

/// `−Σ_i ln softmax(z_i)_{y_i}` in `f64`, independent of the crate.
fn categorical_nll(theta: &[f64], x: &[f32], labels: &[u32]) -> f64 {
    let mut z = vec![0.0; theta.len() / (FEATURES + 1)];
    x.chunks_exact(FEATURES)
        .zip(labels)
        .map(|(xi, &y)| {
            class_logits(theta, xi, &mut z);
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            lse - z[y as usize]
        })
        .sum()
}

/// Subtracts, for each feature (and the bias), its mean over the `k` class
/// rows; returns the largest mean removed.
fn centre(theta: &mut [f64], k: usize) -> f64 {
    let width = theta.len() / k;
    let mut drift: f64 = 0.0;
    for j in 0..width {
        let mean = theta.iter().skip(j).step_by(width).sum::<f64>() / k as f64;
        theta
            .iter_mut()
            .skip(j)
            .step_by(width)
            .for_each(|v| *v -= mean);
        drift = drift.max(mean.abs());
    }
    drift
}

// ---------------------------------------------------------------------------
// Shared pieces: the optimizer, timing, reporting, linear algebra, the RNG.
// ---------------------------------------------------------------------------

/// `θ·[x, 1]`: a linear predictor whose last parameter is the bias.
fn linear(theta: &[f64], x: &[f32]) -> f64 {
    let (bias, w) = theta.split_last().map_or((0.0, theta), |(b, w)| (*b, w));
    w.iter()
        .zip(x)
        .fold(bias, |acc, (&wj, &xj)| acc + wj * f64::from(xj))
}

/// `[x, 1]` in `f64`.
fn augmented(x: &[f32]) -> [f64; FEATURES + 1] {
    let mut out = [1.0; FEATURES + 1];
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f64::from(v);
    }
    out
}

/// `m += s · v vᵀ` for a square row-major `m`.
fn add_outer(m: &mut [f64], s: f64, v: &[f64]) {
    for (row, &vr) in m.chunks_exact_mut(v.len()).zip(v) {
        for (mc, &vc) in row.iter_mut().zip(v) {
            *mc += s * vr * vc;
        }
    }
}

/// Full-batch gradient descent with heavy-ball momentum:
/// `v ← β v − η ∇L(θ)`, `θ ← θ + v`, until `max |∇L| < tolerance`.
struct Optimizer {
    learning_rate: f64,
    momentum: f64,
    max_steps: usize,
    tolerance: f64,
    report_every: usize,
}

/// The outcome of [`Optimizer::minimize`].
struct Fit {
    steps: usize,
    loss: f64,
    converged: bool,
    time: Duration,
}

impl Optimizer {
    /// Minimizes the loss that `objective(θ, ∇)` returns (writing its
    /// gradient into `∇`), starting from `theta`; prints a progress line
    /// every `report_every` steps.
    fn minimize(
        &self,
        theta: &mut [f64],
        mut objective: impl FnMut(&[f64], &mut [f64]) -> Result<f64, LossError>,
    ) -> Result<Fit, Box<dyn Error>> {
        println!(
            "  gradient descent: learning rate {}, momentum {}, stop when max|∂L/∂θ| < {:e}",
            self.learning_rate, self.momentum, self.tolerance
        );
        let start = Instant::now();
        let mut grad = vec![0.0; theta.len()];
        let mut velocity = vec![0.0; theta.len()];
        let mut step = 0;
        loop {
            let loss = objective(theta, &mut grad)?;
            let grad_max = grad.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
            if !loss.is_finite() || !grad_max.is_finite() {
                return Err(Failure(format!(
                    "gradient descent diverged at step {step} (loss {loss})"
                ))
                .into());
            }
            let converged = grad_max < self.tolerance;
            let last = converged || step == self.max_steps;
            if step % self.report_every == 0 || last {
                println!(
                    "    step {step:>5}  loss {loss:.7}  max|∂L/∂θ| {grad_max:.1e}  elapsed {}{}",
                    ms(start.elapsed()),
                    if converged { "  converged" } else { "" }
                );
            }
            if last {
                return Ok(Fit {
                    steps: step,
                    loss,
                    converged,
                    time: start.elapsed(),
                });
            }
            for ((t, v), g) in theta.iter_mut().zip(&mut velocity).zip(&grad) {
                *v = self.momentum * *v - self.learning_rate * g;
                *t += *v;
            }
            step += 1;
        }
    }
}

/// Time spent inside the crate's `loss_grad` calls, and the elements they saw.
#[derive(Default)]
struct KernelClock {
    calls: u64,
    elements: u64,
    busy: Duration,
}

impl KernelClock {
    /// Runs one kernel call over `elements` inputs and accounts for it.
    fn time<T>(&mut self, elements: usize, call: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = call();
        self.busy += start.elapsed();
        self.calls += 1;
        self.elements += elements as u64;
        result
    }

    /// Elements per second.
    fn throughput(&self) -> f64 {
        self.elements as f64 / self.busy.as_secs_f64().max(1e-12)
    }

    /// A fit makes only tens of calls, too few to time well: repeats the
    /// same call for [`STEADY_STATE`] more and returns that clock.
    fn steady_state<T>(
        elements: usize,
        mut call: impl FnMut() -> Result<T, LossError>,
    ) -> Result<KernelClock, LossError> {
        let mut clock = KernelClock::default();
        while clock.busy < STEADY_STATE || clock.calls < 3 {
            clock.time(elements, &mut call)?;
        }
        Ok(clock)
    }
}

/// Prints the throughput during the fit and in the steady state.
fn report_throughput(fit: &KernelClock, steady: &KernelClock) {
    println!(
        "  throughput of loss_grad: during the fit {} calls, {} elements in {} = {} elements/s;",
        fit.calls,
        fit.elements,
        ms(fit.busy),
        si(fit.throughput())
    );
    println!(
        "    repeated {} more times ({} elements in {}) = {} elements/s",
        steady.calls,
        steady.elements,
        ms(steady.busy),
        si(steady.throughput())
    );
}

/// One model's line in the summary.
struct Summary {
    name: &'static str,
    steps: usize,
    final_loss: f64,
    nll: f64,
    /// The kernel calls of the fit.
    clock: KernelClock,
    /// The same call repeated, for a steadier throughput.
    steady: KernelClock,
    fit_time: Duration,
}

/// A true parameter, its estimate and the estimate's standard error.
struct Param {
    name: String,
    truth: f64,
    fit: f64,
    std_error: f64,
}

impl Param {
    fn new(name: &str, truth: f64, fit: f64, std_error: f64) -> Self {
        Param {
            name: name.to_owned(),
            truth,
            fit,
            std_error,
        }
    }
}

/// Prints the parameter table and checks every estimate.
fn print_params(model: &str, params: &[Param], checks: &mut Checks) {
    println!(
        "  {:<14} {:>9} {:>11} {:>10} {:>10} {:>8}",
        "parameter", "true", "recovered", "|error|", "std.err", "|err|/se"
    );
    for p in params {
        let error = (p.fit - p.truth).abs();
        let z = error / p.std_error;
        let ok = error <= MAX_ABS_ERROR && z <= MAX_STD_ERRORS;
        println!(
            "  {:<14} {:>9.4} {:>11.6} {:>10.6} {:>10.6} {:>8.2}{}",
            p.name,
            p.truth,
            p.fit,
            error,
            p.std_error,
            z,
            if ok { "" } else { "  <-- FAR OFF" }
        );
        checks.require(ok, || {
            format!(
                "{model}: parameter {} recovered as {:.6}, true {:.6}: error {error:.6} ({z:.1} standard errors; \
                 allowed {MAX_ABS_ERROR} and {MAX_STD_ERRORS})",
                p.name, p.fit, p.truth
            )
        });
    }
}

/// Prints and checks that the NLL of the fit is not above the NLL of the truth.
fn nll_comparison(nll_fit: f64, nll_true: f64, model: &str, checks: &mut Checks) {
    println!(
        "  NLL at the true parameters {nll_true:.3}: the fit is {:.3} nats more likely (the MLE maximizes the likelihood)",
        nll_true - nll_fit
    );
    checks.require(nll_fit <= nll_true + 1e-6 * nll_true.abs(), || {
        format!(
            "{model}: NLL of the fit {nll_fit} is above the NLL of the true parameters {nll_true}"
        )
    });
}

/// Prints and checks that the crate's NLL agrees with a direct computation.
fn identity(what: &str, nll: f64, direct: f64, model: &str, checks: &mut Checks) {
    let rel = (nll - direct).abs() / direct.abs();
    println!("  {what}: {direct:.3} (relative difference {rel:.1e})");
    checks.require(rel < 1e-5, || {
        format!("{model}: n × mean loss = {nll} but the direct NLL is {direct}")
    });
}

/// Inverts a square row-major matrix by Gauss–Jordan elimination with
/// partial pivoting; `None` if it is (numerically) singular.
fn invert(matrix: &[f64], dim: usize) -> Option<Vec<f64>> {
    let scale = matrix.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let mut rows: Vec<Vec<f64>> = matrix
        .chunks_exact(dim)
        .enumerate()
        .map(|(r, row)| {
            let mut ext = row.to_vec();
            ext.extend((0..dim).map(|c| if c == r { 1.0 } else { 0.0 }));
            ext
        })
        .collect();
    for col in 0..dim {
        let pivot =
            (col..dim).max_by(|&a, &b| rows[a][col].abs().total_cmp(&rows[b][col].abs()))?;
        if rows[pivot][col].abs() <= 1e-13 * scale {
            return None;
        }
        rows.swap(col, pivot);
        let inv = 1.0 / rows[col][col];
        rows[col].iter_mut().for_each(|v| *v *= inv);
        let pivot_row = rows[col].clone();
        for (r, row) in rows.iter_mut().enumerate() {
            let factor = row[col];
            if r != col && factor != 0.0 {
                for (v, p) in row.iter_mut().zip(&pivot_row) {
                    *v -= factor * p;
                }
            }
        }
    }
    Some(
        rows.into_iter()
            .flat_map(|row| row.into_iter().skip(dim))
            .collect(),
    )
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, fast, deterministic
/// generator, plenty for drawing example data.
struct Rng {
    state: u64,
    /// The second normal of the last Box–Muller pair.
    spare: Option<f64>,
}

impl Rng {
    fn new(seed: u64) -> Self {
        Rng {
            state: seed,
            spare: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, with 53 random bits.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1_u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal by the Box–Muller transform: two uniforms give two
    /// independent normals `r cos θ` and `r sin θ`, `r = √(−2 ln u₁)`, `θ = 2π u₂`.
    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // in (0, 1]: ln(u1) is finite
        let r = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * self.uniform()).sin_cos();
        self.spare = Some(r * sin);
        r * cos
    }

    /// A class index drawn with probabilities `p` (which sum to 1).
    fn categorical(&mut self, p: &[f64]) -> usize {
        let u = self.uniform();
        let mut cumulative = 0.0;
        for (k, &pk) in p.iter().enumerate() {
            cumulative += pk;
            if u < cumulative {
                return k;
            }
        }
        p.len() - 1
    }
}

/// Collects failed self-checks; [`Checks::finish`] turns them into an error.
#[derive(Default)]
struct Checks {
    failures: Vec<String>,
}

impl Checks {
    fn require(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(message());
        }
    }

    fn finish(self) -> Result<(), Box<dyn Error>> {
        if self.failures.is_empty() {
            println!("  self-check passed: every parameter within {MAX_ABS_ERROR} and {MAX_STD_ERRORS} standard errors, identities hold");
            Ok(())
        } else {
            let list: Vec<String> = self.failures.iter().map(|f| format!("  - {f}")).collect();
            Err(Failure(format!("self-check failed:\n{}", list.join("\n"))).into())
        }
    }
}

/// An error whose `Debug` is its message, so `main` prints it readably.
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Failure {}

/// A duration in milliseconds.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// A rate with an SI prefix.
fn si(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.1} M", v / 1e6),
        v => format!("{:.0}", v),
    }
}
