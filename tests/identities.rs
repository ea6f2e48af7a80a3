//! The seed's identities (`seeds/000_*.txt`), checked on the kernels (every
//! backend, `f32` and `f64`), not only on the oracles:
//!
//! - BCE is the two-outcome case of cross entropy (eq. 12 vs eq. 13):
//!   `BCE(σ(x), y) = BCE_with_logits(x, y) = CE([0, x], y)` (hard labels)
//!   `= CE_dense([0, x], [1 - y, y])` (soft labels), losses and gradients;
//!   `pos_weight` is the class weight of the positive class.
//! - Dense cross entropy with one-hot targets is sparse cross entropy (with
//!   class weights, smoothing, z-loss, softcap and ignored rows); the `Mean`
//!   denominators differ (rows vs `Σ w_y`), so sums are compared.
//! - Label smoothing is a mixture: `CE_ε = (1 - ε) CE + ε CE(uniform)`.
//! - Minimizing squared error is Gaussian maximum likelihood (eq. 2–7):
//!   gradient descent with the crate's `loss_grad` reaches the sample mean
//!   (and least-squares line), where the gradient vanishes and the loss is
//!   the MLE of σ². Likewise BCE and CE are stationary at the empirical
//!   frequencies (the Bernoulli and categorical MLE).
//!
//! Tolerances: `f32` 1e-5 relative, `f64` 1e-12, as in `tests/common`;
//! where an identity feeds a rounded probability `p = σ(x)` to BCE, the
//! rounding of `p` costs up to `eps / (2 (1 - p))` relative in `ln(1 - p)`,
//! so those comparisons allow `4 eps e^{|x|}` more (|x| <= 6 here).

mod common;

use common::*;
use loss_kernels::{
    Backend, BinaryCrossEntropy, BinaryCrossEntropyWithLogits, CrossEntropy, Float, Reduction,
    SquaredError,
};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Compensated (Neumaier) sum, so that summing many gradient elements adds
/// no error of its own.
fn sum(v: impl IntoIterator<Item = f64>) -> f64 {
    let (mut s, mut comp) = (0.0_f64, 0.0_f64);
    for x in v {
        let t = s + x;
        comp += if s.abs() >= x.abs() {
            (s - t) + x
        } else {
            (x - t) + s
        };
        s = t;
    }
    s + comp
}

fn eval<T: Float>(r: Result<T, loss_kernels::LossError>) -> f64 {
    r.unwrap().to_f64()
}

// ============================================================ BCE = 2-class CE

fn bce_is_two_class_ce<T: Elem>(b: Backend) {
    let mut rng = Rng(11);
    let n = 97;
    let x = to_f64(&to_t::<T>(&rng.uniforms(n, -6.0, 6.0)));
    let hard: Vec<f64> = (0..n).map(|i| (i % 3 == 0) as u8 as f64).collect();
    let soft = to_f64(&to_t::<T>(&rng.uniforms(n, 0.0, 1.0)));
    let p: Vec<f64> = x.iter().map(|&v| sigmoid(v)).collect();
    let pt = to_t::<T>(&p);
    let pair: Vec<f64> = x.iter().flat_map(|&v| [0.0, v]).collect();
    let pair_t = to_t::<T>(&pair);
    let xt = to_t::<T>(&x);
    let allowance: f64 = x
        .iter()
        .map(|v| 4.0 * T::EPS * v.abs().exp())
        .fold(0.0, f64::max);

    for red in [Reduction::Mean, Reduction::Sum] {
        for y in [&hard, &soft] {
            let yt = to_t::<T>(y);
            let ctx = format!("{b:?} {red:?} soft={}", std::ptr::eq(y, &soft));
            let (mut g_logit, mut g_prob) = (vec![T::ZERO; n], vec![T::ZERO; n]);
            let l_logit = eval(
                BinaryCrossEntropyWithLogits::new()
                    .reduction(red)
                    .backend(b)
                    .loss_grad(&xt, &yt, &mut g_logit),
            );
            let l_prob = eval(
                BinaryCrossEntropy::new()
                    .reduction(red)
                    .backend(b)
                    .loss_grad(&pt, &yt, &mut g_prob),
            );
            check_rel::<T>(
                &format_args!("{ctx} BCE(σ(x)) vs with logits"),
                l_prob,
                l_logit,
                T::LOSS_REL + allowance,
            );
            // Chain rule: d/dx = d/dp · σ'(x) = d/dp · p (1 - p).
            for i in 0..n {
                let via_p = g_prob[i].to_f64() * p[i] * (1.0 - p[i]);
                check_scalar::<T>(
                    &format_args!("{ctx} grad[{i}] chain rule"),
                    via_p,
                    g_logit[i].to_f64(),
                    (T::GRAD_REL + allowance) * g_logit[i].to_f64().abs() + T::GRAD_ABS / n as f64,
                );
            }
            // Dense 2-class CE with targets [1 - y, y].
            let dense: Vec<T> = y
                .iter()
                .flat_map(|&v| [T::from_f64(1.0 - v), T::from_f64(v)])
                .collect();
            let mut g_dense = vec![T::ZERO; 2 * n];
            let l_dense = eval(
                CrossEntropy::new()
                    .reduction(red)
                    .backend(b)
                    .loss_grad_dense(&pair_t, 2, &dense, &mut g_dense),
            );
            check_rel::<T>(
                &format_args!("{ctx} CE_dense([0,x])"),
                l_dense,
                l_logit,
                T::LOSS_REL,
            );
            for i in 0..n {
                let g = g_logit[i].to_f64();
                let tol = T::GRAD_REL * g.abs() + T::GRAD_ABS / n as f64;
                check_scalar::<T>(
                    &format_args!("{ctx} dense grad x[{i}]"),
                    g_dense[2 * i + 1].to_f64(),
                    g,
                    tol,
                );
                check_scalar::<T>(
                    &format_args!("{ctx} dense grad 0[{i}]"),
                    g_dense[2 * i].to_f64(),
                    -g,
                    tol,
                );
            }
        }
        // Sparse 2-class CE with integer labels (hard targets only).
        let labels: Vec<u32> = hard.iter().map(|&v| v as u32).collect();
        let yt = to_t::<T>(&hard);
        let mut g_logit = vec![T::ZERO; n];
        let l_logit = eval(
            BinaryCrossEntropyWithLogits::new()
                .reduction(red)
                .backend(b)
                .loss_grad(&xt, &yt, &mut g_logit),
        );
        let mut g_ce = vec![T::ZERO; 2 * n];
        let l_ce = eval(
            CrossEntropy::new()
                .reduction(red)
                .backend(b)
                .loss_grad(&pair_t, 2, &labels, &mut g_ce),
        );
        check_rel::<T>(
            &format_args!("{b:?} {red:?} CE([0,x], y)"),
            l_ce,
            l_logit,
            T::LOSS_REL,
        );
        for i in 0..n {
            let g = g_logit[i].to_f64();
            let tol = T::GRAD_REL * g.abs() + T::GRAD_ABS / n as f64;
            check_scalar::<T>(
                &format_args!("{b:?} {red:?} CE grad x[{i}]"),
                g_ce[2 * i + 1].to_f64(),
                g,
                tol,
            );
            check_scalar::<T>(
                &format_args!("{b:?} {red:?} CE grad 0[{i}]"),
                g_ce[2 * i].to_f64(),
                -g,
                tol,
            );
        }
        // pos_weight pw is the class weight of class 1 (Sum: CE's Mean divides by Σ w_y).
        if red == Reduction::Sum {
            let pw = [T::from_f64(2.5)];
            let cw = [T::ONE, T::from_f64(2.5)];
            let l_pw = eval(
                BinaryCrossEntropyWithLogits::new()
                    .reduction(red)
                    .backend(b)
                    .pos_weight(&pw)
                    .loss(&xt, &yt),
            );
            let l_cw = eval(
                CrossEntropy::new()
                    .reduction(red)
                    .backend(b)
                    .class_weights(&cw)
                    .loss(&pair_t, 2, &labels),
            );
            check_rel::<T>(
                &format_args!("{b:?} pos_weight = class weight"),
                l_cw,
                l_pw,
                T::LOSS_REL,
            );
        }
    }
}

#[test]
fn bce_equals_bce_with_logits_equals_two_class_cross_entropy() {
    for b in backends() {
        bce_is_two_class_ce::<f32>(b);
        bce_is_two_class_ce::<f64>(b);
    }
}

// ============================================================ dense one-hot = sparse

/// `scale`: the logits' standard deviation (3: some rows are confident;
/// 1: none is, every row loss is well above the rounding of its parts).
fn one_hot_dense_is_sparse<T: Elem>(b: Backend, scale: f64, shapes: &[(usize, usize)]) {
    let mut rng = Rng(12);
    for &(rows, c) in shapes {
        let x = to_t::<T>(&rng.normals(rows * c, scale));
        let mut labels: Vec<i64> = (0..rows).map(|_| rng.below(c) as i64).collect();
        if rows > 2 {
            labels[1] = -100;
        }
        let w = to_t::<T>(&rng.uniforms(c, 0.2, 2.0));
        // Dense targets of the kept rows only (an ignored row has no target).
        let kept: Vec<usize> = (0..rows).filter(|&r| labels[r] >= 0).collect();
        let x_kept: Vec<T> = kept
            .iter()
            .flat_map(|&r| x[r * c..(r + 1) * c].to_vec())
            .collect();
        let one_hot: Vec<T> = kept
            .iter()
            .flat_map(|&r| {
                let y = labels[r];
                (0..c).map(move |j| if j as i64 == y { T::ONE } else { T::ZERO })
            })
            .collect();
        for weighted in [false, true] {
            for (eps, z, cap) in [
                (0.0, 0.0, None),
                (0.1, 0.0, None),
                (0.0, 1e-3, Some(4.0)),
                (0.3, 1e-2, Some(10.0)),
            ] {
                let ce = |red| {
                    let mut ce = CrossEntropy::new()
                        .reduction(red)
                        .backend(b)
                        .label_smoothing(eps)
                        .z_loss(z);
                    if weighted {
                        ce = ce.class_weights(&w);
                    }
                    if let Some(s) = cap {
                        ce = ce.softcap(s);
                    }
                    ce
                };
                let ctx = format!("{b:?} {rows}x{c} w={weighted} eps={eps} z={z} cap={cap:?}");
                let cap_rel = cap.map_or(0.0, |s| 8.0 * T::EPS * s);
                let mut g_sparse = vec![T::ZERO; rows * c];
                let l_sparse = eval(ce(Reduction::Sum).loss_grad(&x, c, &labels, &mut g_sparse));
                let mut g_dense = vec![T::ZERO; kept.len() * c];
                let l_dense =
                    eval(ce(Reduction::Sum).loss_grad_dense(&x_kept, c, &one_hot, &mut g_dense));
                check_rel::<T>(
                    &format_args!("{ctx} Sum"),
                    l_dense,
                    l_sparse,
                    T::LOSS_REL + cap_rel,
                );
                let scale = max_abs(&to_f64(&g_sparse)).max(1.0);
                for (k, &r) in kept.iter().enumerate() {
                    for j in 0..c {
                        let (gs, gd) = (g_sparse[r * c + j].to_f64(), g_dense[k * c + j].to_f64());
                        let tol = (T::GRAD_REL + cap_rel) * gs.abs() + 4.0 * T::GRAD_ABS * scale;
                        check_scalar::<T>(&format_args!("{ctx} grad[{r},{j}]"), gd, gs, tol);
                    }
                }
                // Per-row values and partial sums agree too.
                let mut per_sparse = vec![T::ZERO; rows];
                ce(Reduction::Sum)
                    .per_row(&x, c, &labels, &mut per_sparse)
                    .unwrap();
                let mut per_dense = vec![T::ZERO; kept.len()];
                ce(Reduction::Sum)
                    .per_row_dense(&x_kept, c, &one_hot, &mut per_dense)
                    .unwrap();
                for (k, &r) in kept.iter().enumerate() {
                    let tol = T::LOSS_REL + cap_rel;
                    check_rel::<T>(
                        &format_args!("{ctx} row {r}"),
                        per_dense[k].to_f64(),
                        per_sparse[r].to_f64(),
                        tol,
                    );
                }
                // Mean: sparse divides by Σ w_y, dense by the row count.
                let p_sparse = ce(Reduction::Mean).partial(&x, c, &labels).unwrap();
                let p_dense = ce(Reduction::Mean)
                    .partial_dense(&x_kept, c, &one_hot)
                    .unwrap();
                check_rel::<T>(
                    &format_args!("{ctx} partial sums"),
                    p_dense.sum,
                    p_sparse.sum,
                    T::LOSS_REL + cap_rel,
                );
                assert_eq!(p_dense.weight, kept.len() as f64);
                let w_y: f64 = kept
                    .iter()
                    .map(|&r| {
                        if weighted {
                            w[labels[r] as usize].to_f64()
                        } else {
                            1.0
                        }
                    })
                    .sum();
                assert!((p_sparse.weight - w_y).abs() <= 1e-12 * w_y, "{ctx}: Σ w_y");
                let m_sparse = eval(ce(Reduction::Mean).loss(&x, c, &labels));
                let m_dense = eval(ce(Reduction::Mean).loss_dense(&x_kept, c, &one_hot));
                check_rel::<T>(
                    &format_args!("{ctx} Mean · denominator"),
                    m_dense * kept.len() as f64,
                    m_sparse * w_y,
                    2.0 * T::LOSS_REL + cap_rel,
                );
                if !weighted && kept.len() == rows {
                    check_rel::<T>(
                        &format_args!("{ctx} unweighted Mean"),
                        m_dense,
                        m_sparse,
                        T::LOSS_REL + cap_rel,
                    );
                }
            }
        }
    }
}

#[test]
fn one_hot_dense_cross_entropy_equals_sparse() {
    for b in backends() {
        let shapes = [(5, 2), (9, 17), (4, 130)];
        one_hot_dense_is_sparse::<f32>(b, 1.0, &shapes);
        one_hot_dense_is_sparse::<f64>(b, 1.0, &shapes);
    }
}

/// As above with confident rows and a single class (loss exactly 0).
#[test]
fn one_hot_dense_cross_entropy_equals_sparse_on_confident_rows() {
    for b in backends() {
        let shapes = [(1, 1), (5, 2), (9, 17), (4, 130)];
        one_hot_dense_is_sparse::<f32>(b, 3.0, &shapes);
        one_hot_dense_is_sparse::<f64>(b, 3.0, &shapes);
    }
}

// ============================================================ smoothing is a mixture

fn smoothing_is_a_mixture<T: Elem>(b: Backend) {
    let mut rng = Rng(13);
    for (rows, c) in [(3, 2), (6, 11), (4, 257)] {
        let x = to_t::<T>(&rng.normals(rows * c, 2.5));
        let labels: Vec<usize> = (0..rows).map(|_| rng.below(c)).collect();
        let uniform = vec![T::from_f64(1.0 / c as f64); rows * c];
        let w = to_t::<T>(&rng.uniforms(c, 0.2, 2.0));
        for weighted in [false, true] {
            for (z, cap) in [(0.0, None), (1e-3, Some(6.0))] {
                for eps in [0.05, 0.3, 1.0] {
                    let ce = |eps: f64| {
                        let mut ce = CrossEntropy::new()
                            .reduction(Reduction::Sum)
                            .backend(b)
                            .label_smoothing(eps)
                            .z_loss(z);
                        if weighted {
                            ce = ce.class_weights(&w);
                        }
                        if let Some(s) = cap {
                            ce = ce.softcap(s);
                        }
                        ce
                    };
                    let ctx = format!("{b:?} {rows}x{c} w={weighted} z={z} cap={cap:?} eps={eps}");
                    let cap_rel = cap.map_or(0.0, |s| 8.0 * T::EPS * s);
                    let n = rows * c;
                    let (mut g_s, mut g_p, mut g_u) =
                        (vec![T::ZERO; n], vec![T::ZERO; n], vec![T::ZERO; n]);
                    let smoothed = eval(ce(eps).loss_grad(&x, c, &labels, &mut g_s));
                    let plain = eval(ce(0.0).loss_grad(&x, c, &labels, &mut g_p));
                    let unif = eval(ce(0.0).loss_grad_dense(&x, c, &uniform, &mut g_u));
                    // The 1/C targets are rounded to T: allow that relative error.
                    let mix = (1.0 - eps) * plain + eps * unif;
                    check_rel::<T>(
                        &format_args!("{ctx} loss"),
                        smoothed,
                        mix,
                        2.0 * T::LOSS_REL + cap_rel,
                    );
                    let gm: Vec<f64> = (0..n)
                        .map(|i| (1.0 - eps) * g_p[i].to_f64() + eps * g_u[i].to_f64())
                        .collect();
                    let scale = max_abs(&gm).max(1.0 / c as f64);
                    for i in 0..n {
                        let tol = (T::GRAD_REL + cap_rel) * gm[i].abs() + 4.0 * T::GRAD_ABS * scale;
                        check_scalar::<T>(
                            &format_args!("{ctx} grad[{i}]"),
                            g_s[i].to_f64(),
                            gm[i],
                            tol,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn label_smoothing_is_a_mixture_with_uniform_targets() {
    for b in backends() {
        smoothing_is_a_mixture::<f32>(b);
        smoothing_is_a_mixture::<f64>(b);
    }
}

// ============================================================ maximum likelihood

/// Gradient descent on a constant prediction θ for Gaussian data reaches the
/// sample mean (the MLE of μ); there the gradient is zero and the mean
/// squared error is the MLE of σ².
fn mse_recovers_gaussian_mle<T: Elem>(b: Backend) {
    let mut rng = Rng(14);
    let n = 1000;
    let (mu, sigma) = (3.0, 2.0);
    let y = to_t::<T>(
        &rng.normals(n, sigma)
            .iter()
            .map(|v| v + mu)
            .collect::<Vec<_>>(),
    );
    let yo = to_f64(&y);
    let mean = sum(yo.iter().copied()) / n as f64;
    let var = sum(yo.iter().map(|v| (v - mean) * (v - mean))) / n as f64;
    let mse = SquaredError::new().backend(b);
    let mut grad = vec![T::ZERO; n];
    // dL/dθ = Σ_i ∂L/∂pred_i; with L the mean this is 2 (θ - mean): step 1/2.
    let mut theta = 0.0_f64;
    for _ in 0..60 {
        let pred = vec![T::from_f64(theta); n];
        mse.loss_grad(&pred, &y, &mut grad).unwrap();
        let d = sum(grad.iter().map(|g| g.to_f64()));
        theta -= 0.4 * d;
    }
    let tol = 8.0 * T::EPS * (mean.abs() + sigma);
    assert!(
        (theta - mean).abs() <= tol,
        "{b:?} [{}]: θ = {theta}, mean = {mean}",
        T::NAME
    );
    // At the mean (rounded to T): zero gradient, loss = σ²_MLE.
    let m = T::from_f64(mean);
    let pred = vec![m; n];
    let loss = mse.loss_grad(&pred, &y, &mut grad).unwrap().to_f64();
    let d = sum(grad.iter().map(|g| g.to_f64()));
    let bias = m.to_f64() - mean; // rounding of the mean to T
    let tol = 2.0 * bias.abs() + 4.0 * T::EPS * (mean.abs() + sigma);
    assert!(
        d.abs() <= tol,
        "{b:?} [{}]: gradient at the mean {d:e}",
        T::NAME
    );
    check_rel::<T>(
        &format_args!("{b:?} loss at the mean = σ²_MLE"),
        loss,
        var + bias * bias,
        T::MSE_REL + 1e-12,
    );
    // A slightly different θ has a larger loss: the mean is the minimizer.
    for delta in [1e-2, -1e-2] {
        let other = vec![T::from_f64(mean + delta); n];
        assert!(
            mse.loss(&other, &y).unwrap().to_f64() > loss,
            "{b:?}: not a minimum"
        );
    }
}

/// Linear-Gaussian regression `y = a x + c + noise`: gradient descent on
/// `(a, c)` through the crate's gradient reaches the least-squares solution
/// (the normal equations), which is the Gaussian MLE.
fn mse_recovers_least_squares_line<T: Elem>(b: Backend) {
    let mut rng = Rng(15);
    let n = 500;
    let x = to_f64(&to_t::<T>(&rng.uniforms(n, -2.0, 2.0)));
    let y: Vec<f64> = x
        .iter()
        .map(|&v| 1.5 * v - 0.7 + 0.3 * rng.normal())
        .collect();
    let y = to_f64(&to_t::<T>(&y));
    let (mx, my) = (
        x.iter().sum::<f64>() / n as f64,
        y.iter().sum::<f64>() / n as f64,
    );
    let sxy: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let (a_ls, c_ls) = (sxy / sxx, my - sxy / sxx * mx);
    let yt = to_t::<T>(&y);
    let mse = SquaredError::new().backend(b);
    let mut grad = vec![T::ZERO; n];
    let (mut a, mut c) = (0.0_f64, 0.0_f64);
    for _ in 0..400 {
        let pred: Vec<T> = x.iter().map(|&v| T::from_f64(a * v + c)).collect();
        mse.loss_grad(&pred, &yt, &mut grad).unwrap();
        let da = sum(grad.iter().zip(&x).map(|(g, v)| g.to_f64() * v));
        let dc = sum(grad.iter().map(|g| g.to_f64()));
        a -= 0.3 * da;
        c -= 0.3 * dc;
    }
    let tol = if T::EPS > 1e-10 { 2e-5 } else { 1e-10 };
    assert!(
        (a - a_ls).abs() < tol && (c - c_ls).abs() < tol,
        "{b:?} [{}]: ({a}, {c}) vs ({a_ls}, {c_ls})",
        T::NAME
    );
}

#[test]
fn minimizing_squared_error_recovers_the_gaussian_mle() {
    for b in backends() {
        mse_recovers_gaussian_mle::<f32>(b);
        mse_recovers_gaussian_mle::<f64>(b);
        mse_recovers_least_squares_line::<f32>(b);
        mse_recovers_least_squares_line::<f64>(b);
    }
}

/// BCE and softmax CE are stationary at the empirical frequencies: a
/// constant logit `ln(q / (1 - q))` for Bernoulli data with frequency `q`,
/// constant logits `ln f_c` for categorical data with frequencies `f`.
fn bce_and_ce_are_stationary_at_the_frequencies<T: Elem>(b: Backend) {
    let n = 400;
    // 130 ones out of 400.
    let y: Vec<T> = (0..n)
        .map(|i| T::from_f64(((i * 7) % 400 < 130) as u8 as f64))
        .collect();
    let q: f64 = 130.0 / 400.0;
    let x = vec![T::from_f64((q / (1.0 - q)).ln()); n];
    let mut g = vec![T::ZERO; n];
    BinaryCrossEntropyWithLogits::new()
        .backend(b)
        .loss_grad(&x, &y, &mut g)
        .unwrap();
    let d = sum(g.iter().map(|v| v.to_f64()));
    assert!(
        d.abs() < 16.0 * T::EPS,
        "{b:?} [{}]: BCE gradient at the MLE {d:e}",
        T::NAME
    );
    let p = vec![T::from_f64(q); n];
    BinaryCrossEntropy::new()
        .backend(b)
        .loss_grad(&p, &y, &mut g)
        .unwrap();
    let d = sum(g.iter().map(|v| v.to_f64()));
    assert!(
        d.abs() < 64.0 * T::EPS,
        "{b:?} [{}]: BCE(p) gradient at the MLE {d:e}",
        T::NAME
    );

    // Categorical: 5 classes with counts 40, 100, 60, 0 (masked), 200.
    let counts = [40usize, 100, 60, 0, 200];
    let c = counts.len();
    let total: usize = counts.iter().sum();
    let labels: Vec<u32> = counts
        .iter()
        .enumerate()
        .flat_map(|(k, &m)| vec![k as u32; m])
        .collect();
    let row: Vec<f64> = counts
        .iter()
        .map(|&m| {
            if m == 0 {
                f64::NEG_INFINITY
            } else {
                (m as f64 / total as f64).ln()
            }
        })
        .collect();
    let logits: Vec<T> = (0..total).flat_map(|_| to_t::<T>(&row)).collect();
    let mut g = vec![T::ZERO; total * c];
    CrossEntropy::new()
        .backend(b)
        .loss_grad(&logits, c, &labels, &mut g)
        .unwrap();
    for k in 0..c {
        let d = sum((0..total).map(|r| g[r * c + k].to_f64()));
        assert!(
            d.abs() < 16.0 * T::EPS,
            "{b:?} [{}]: CE gradient of class {k} at the MLE {d:e}",
            T::NAME
        );
    }
}

#[test]
fn bce_and_cross_entropy_are_stationary_at_the_empirical_frequencies() {
    for b in backends() {
        bce_and_ce_are_stationary_at_the_frequencies::<f32>(b);
        bce_and_ce_are_stationary_at_the_frequencies::<f64>(b);
    }
}
