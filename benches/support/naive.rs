//! The loops a user writes by hand in idiomatic Rust: `f32` throughout,
//! `zip`/`map`/`sum`, std `exp`/`ln`/`ln_1p`, a plain running sum. They are
//! the "naive" baseline of every canonical group (PEERS.md's `naive_rust`).
//!
//! Each returns the unnormalized sum; the gradient kernels write
//! `d(sum)/dx * scale` with `scale = 1 / count`, so the gradient is that of
//! the mean, as the library computes it.

/// Squared error, loss: `Σ (p - t)²`.
pub fn mse_fwd(pred: &[f32], target: &[f32], _grad: &mut [f32], _scale: f32) -> f32 {
    pred.iter()
        .zip(target)
        .map(|(&p, &t)| (p - t) * (p - t))
        .sum()
}

/// Squared error, loss and gradient `2 (p - t) / n`.
pub fn mse_fwd_grad(pred: &[f32], target: &[f32], grad: &mut [f32], scale: f32) -> f32 {
    let two_scale = 2.0 * scale;
    let mut sum = 0.0;
    for ((g, &p), &t) in grad.iter_mut().zip(pred).zip(target) {
        let d = p - t;
        *g = two_scale * d;
        sum += d * d;
    }
    sum
}

/// BCE with logits, loss, in the stable form PyTorch documents:
/// `max(x, 0) - x y + ln(1 + e^{-|x|})`.
pub fn bce_logits_fwd(x: &[f32], y: &[f32], _grad: &mut [f32], _scale: f32) -> f32 {
    x.iter()
        .zip(y)
        .map(|(&x, &y)| x.max(0.0) - x * y + (-x.abs()).exp().ln_1p())
        .sum()
}

/// BCE with logits, loss and gradient `(sigmoid(x) - y) / n`, with the
/// sigmoid written the way users write it.
pub fn bce_logits_fwd_grad(x: &[f32], y: &[f32], grad: &mut [f32], scale: f32) -> f32 {
    let mut sum = 0.0;
    for ((g, &x), &y) in grad.iter_mut().zip(x).zip(y) {
        let sigmoid = 1.0 / (1.0 + (-x).exp());
        *g = (sigmoid - y) * scale;
        sum += x.max(0.0) - x * y + (-x.abs()).exp().ln_1p();
    }
    sum
}

/// BCE on probabilities, loss, with PyTorch's clamp of each log at -100.
pub fn bce_probs_fwd(p: &[f32], y: &[f32], _grad: &mut [f32], _scale: f32) -> f32 {
    p.iter()
        .zip(y)
        .map(|(&p, &y)| -(y * p.ln().max(-100.0) + (1.0 - y) * (1.0 - p).ln().max(-100.0)))
        .sum()
}

/// Softmax cross entropy, loss: per row, the max, the sum of exps, then
/// `max + ln(sum) - x[label]`.
pub fn ce_fwd(
    logits: &[f32],
    classes: usize,
    labels: &[u32],
    _grad: &mut [f32],
    _scale: f32,
) -> f32 {
    logits
        .chunks_exact(classes)
        .zip(labels)
        .map(|(row, &label)| {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
            max + sum.ln() - row[label as usize]
        })
        .sum()
}

/// Softmax cross entropy, loss and gradient `(softmax - one_hot) / rows`.
pub fn ce_fwd_grad(
    logits: &[f32],
    classes: usize,
    labels: &[u32],
    grad: &mut [f32],
    scale: f32,
) -> f32 {
    let mut total = 0.0;
    for ((row, g), &label) in logits
        .chunks_exact(classes)
        .zip(grad.chunks_exact_mut(classes))
        .zip(labels)
    {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        for (gi, &v) in g.iter_mut().zip(row) {
            *gi = (v - max).exp() / sum * scale;
        }
        g[label as usize] -= scale;
        total += max + sum.ln() - row[label as usize];
    }
    total
}

/// The same formulas in `f64` with an `f64` sum: the value the setup checks
/// compare our kernel against (not timed).
pub mod exact {
    pub fn mse(pred: &[f32], target: &[f32]) -> f64 {
        let s: f64 = pred
            .iter()
            .zip(target)
            .map(|(&p, &t)| (f64::from(p) - f64::from(t)).powi(2))
            .sum();
        s / pred.len() as f64
    }

    pub fn bce_logits(x: &[f32], y: &[f32]) -> f64 {
        let s: f64 = x
            .iter()
            .zip(y)
            .map(|(&x, &y)| {
                let (x, y) = (f64::from(x), f64::from(y));
                x.max(0.0) - x * y + (-x.abs()).exp().ln_1p()
            })
            .sum();
        s / x.len() as f64
    }

    pub fn bce_probs(p: &[f32], y: &[f32]) -> f64 {
        let s: f64 = p
            .iter()
            .zip(y)
            .map(|(&p, &y)| {
                let (p, y) = (f64::from(p), f64::from(y));
                -(y * p.ln().max(-100.0) + (1.0 - y) * (-p).ln_1p().max(-100.0))
            })
            .sum();
        s / p.len() as f64
    }

    pub fn ce(logits: &[f32], classes: usize, labels: &[u32]) -> f64 {
        let s: f64 = logits
            .chunks_exact(classes)
            .zip(labels)
            .map(|(row, &label)| {
                let max = row
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
                let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
                max + sum.ln() - f64::from(row[label as usize])
            })
            .sum();
        s / labels.len() as f64
    }
}
