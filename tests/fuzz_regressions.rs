//! Regression tests for the bugs the fuzz targets (`fuzz/`) found: each
//! test is the minimized input of one finding, with the value the oracle
//! (`loss_kernels::reference`, PyTorch semantics) gives.

use loss_kernels::reference::{self, CrossEntropyOptions};
use loss_kernels::{
    BinaryCrossEntropy, BinaryCrossEntropyWithLogits, CrossEntropy, Reduction, SquaredError,
};

/// Every backend this CPU runs, plus `Auto`.
fn backends() -> Vec<loss_kernels::Backend> {
    let mut v = loss_kernels::Backend::available();
    v.push(loss_kernels::Backend::Auto);
    v
}

/// Finding 1: with `Reduction::DivideBy(d)` and `1/d` beyond `f32::MAX`
/// (any `d < 2.9e-39`, which validation accepts: finite and > 0), the `f32`
/// gradient scale rounds to `inf`, so a zero gradient element becomes NaN
/// (`0 · inf`) and a finite one `±inf`. The scale must be applied without
/// overflowing (e.g. in `f64`, or as `x / d`).
#[test]
fn f32_gradient_with_tiny_divide_by_is_not_nan() {
    let tiny = Reduction::DivideBy(1e-40);
    for b in backends() {
        // MSE: grad = 2 (x - y) / d = [0, 2e-39 / 1e-40 = 20].
        let mut g = [0.0_f32; 2];
        SquaredError::new()
            .reduction(tiny)
            .backend(b)
            .loss_grad(&[1.0_f32, 1e-39], &[1.0, 0.0], &mut g)
            .unwrap();
        assert_eq!(g[0], 0.0, "{b:?} MSE grad of x == y: {g:?}");
        assert!(
            (g[1] - 20.0).abs() < 1e-3,
            "{b:?} MSE grad: {g:?}, expected [0, 20]"
        );

        // BCE at p == y: the gradient is 0.
        let mut g = [0.0_f32; 1];
        BinaryCrossEntropy::new()
            .reduction(tiny)
            .backend(b)
            .loss_grad(&[0.5_f32], &[0.5], &mut g)
            .unwrap();
        assert_eq!(g[0], 0.0, "{b:?} BCE grad at p == y: {g:?}");

        // BCE with logits at sigmoid(x) == y: the gradient is 0.
        BinaryCrossEntropyWithLogits::new()
            .reduction(tiny)
            .backend(b)
            .loss_grad(&[0.0_f32], &[0.5], &mut g)
            .unwrap();
        assert_eq!(
            g[0], 0.0,
            "{b:?} BCE-with-logits grad at sigmoid(x) == y: {g:?}"
        );

        // CE: a masked class has softmax 0, hence gradient 0.
        let mut g = [0.0_f32; 2];
        CrossEntropy::new()
            .reduction(tiny)
            .backend(b)
            .loss_grad(&[0.0_f32, f32::NEG_INFINITY], 2, &[0_u32], &mut g)
            .unwrap();
        let want = reference::cross_entropy(
            &[0.0, f64::NEG_INFINITY],
            2,
            &[0],
            &CrossEntropyOptions {
                reduction: tiny,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(want.grad, vec![0.0, 0.0]);
        assert_eq!(g, [0.0, 0.0], "{b:?} CE grad of a masked class");
    }
}

/// Finding 2: cross entropy with labels checks the labels before the
/// reduction, so an invalid `Reduction::DivideBy` together with an
/// out-of-range label reports the label. The contract order (DESIGN.md,
/// `reference` docs: shapes, options, reduction, then values) and the
/// oracle report the option.
#[test]
fn ce_option_errors_come_before_label_errors() {
    let bad = Reduction::DivideBy(-1.0);
    let want = reference::cross_entropy(
        &[0.0],
        1,
        &[5],
        &CrossEntropyOptions {
            reduction: bad,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(
        want,
        loss_kernels::LossError::InvalidOption {
            option: "reduction",
            ..
        }
    ));
    let got = CrossEntropy::<f32>::new()
        .reduction(bad)
        .loss(&[0.0_f32], 1, &[5_u32])
        .unwrap_err();
    assert_eq!(got, want);
}

/// Finding 3: dense cross entropy forms the products `w_c t_c z_c` in the
/// element type and the row loss as `lse · Σ w t - Σ w t z`, a difference
/// of two large numbers: a one-class row (loss exactly 0) gets a non-zero
/// loss, and a confidently correct weighted one-hot row gets a *negative*
/// loss instead of the sparse path's accurate 7.3e-10. The seed's identity
/// "dense CE with one-hot targets equals sparse CE" fails.
#[test]
fn dense_ce_products_keep_accuracy() {
    // One class: log_softmax is 0, so the loss is 0 whatever the weight.
    let w = [704.213_87_f32];
    let loss = CrossEntropy::new()
        .class_weights(&w)
        .reduction(Reduction::Sum)
        .loss_dense(
            &[-0.772_705_1_f32, 0.529_968_26, -0.386_779_8],
            1,
            &[1.0, 1.0, 1.0],
        )
        .unwrap();
    assert!(
        loss.abs() < 1e-12,
        "one-class rows: loss {loss:e}, expected 0"
    );

    // A confidently correct row with class weights, dense one-hot vs labels.
    let w3 = [0.3_f32, 1.0, 1.0];
    let x = [20.3_f32, 0.1, -0.7];
    let ce = CrossEntropy::new()
        .class_weights(&w3)
        .reduction(Reduction::Sum);
    let sparse = ce.loss(&x, 3, &[0_u32]).unwrap();
    let dense = ce.loss_dense(&x, 3, &[1.0, 0.0, 0.0]).unwrap();
    let want = reference::cross_entropy_dense(
        &x.map(f64::from),
        3,
        &[1.0, 0.0, 0.0],
        &CrossEntropyOptions {
            class_weights: Some(&w3.map(f64::from)),
            reduction: Reduction::Sum,
            ..Default::default()
        },
    )
    .unwrap()
    .loss;
    assert!(
        (f64::from(sparse) - want).abs() <= 1e-5 * want,
        "sparse {sparse:e} vs oracle {want:e}"
    );
    assert!(dense >= 0.0, "dense loss is negative: {dense:e}");
    assert!(
        (f64::from(dense) - want).abs() <= 1e-4 * want,
        "dense {dense:e} vs oracle {want:e} (sparse {sparse:e})"
    );
}

/// Finding 4: BCE with logits computes the positive-term weight
/// `lw = 1 + (pw - 1) y` as `(1 - y) + pw y`. For a target far outside
/// `[0, 1]` (targets are not validated, as in PyTorch) the two large terms
/// cancel and `lw` becomes 0 even without `pos_weight`, dropping the
/// `softplus(-x)` term: at `x = 0` the loss is 0 instead of `ln 2`.
/// `(pw - 1).mul_add(y, 1)` keeps it exact when `pw = 1`.
#[test]
fn bce_logits_log_weight_without_cancellation() {
    let want = reference::binary_cross_entropy_with_logits(
        &[0.0, 0.0],
        &[-1e12, 3e9],
        None,
        None,
        Reduction::Mean,
        loss_kernels::EmptyMean::Nan,
    )
    .unwrap()
    .loss;
    assert!((want - std::f64::consts::LN_2).abs() < 1e-12);
    for b in backends() {
        let got = BinaryCrossEntropyWithLogits::new()
            .backend(b)
            .loss(&[0.0_f32, 0.0], &[-1e12, 3e9])
            .unwrap();
        assert!(
            (f64::from(got) - want).abs() < 1e-6,
            "{b:?}: f32 loss {got:e}, expected ln 2"
        );
        let got = BinaryCrossEntropyWithLogits::new()
            .backend(b)
            .loss(&[0.0_f64], &[-1e20])
            .unwrap();
        assert!(
            (got - want).abs() < 1e-12,
            "{b:?}: f64 loss {got:e}, expected ln 2"
        );
    }
}

/// Finding 5: cross entropy validates the options before the length of
/// `labels` (and of dense `targets`), so a batch with both a wrong labels
/// length and an invalid option reports the option; the contract order
/// (shapes — every length — then options) and the oracle report the
/// length.
#[test]
fn ce_length_errors_come_before_option_errors() {
    let opts = CrossEntropyOptions {
        softcap: Some(-0.0),
        ..Default::default()
    };
    let want = reference::cross_entropy(&[0.0; 6], 3, &[0], &opts).unwrap_err();
    assert_eq!(
        want,
        loss_kernels::LossError::LengthMismatch {
            what: "labels",
            expected: 2,
            found: 1
        }
    );
    let got = CrossEntropy::new()
        .softcap(-0.0)
        .loss(&[0.0_f32; 6], 3, &[0_u32])
        .unwrap_err();
    assert_eq!(got, want);

    let want = reference::cross_entropy_dense(&[0.0; 6], 3, &[0.5; 5], &opts).unwrap_err();
    assert_eq!(
        want,
        loss_kernels::LossError::LengthMismatch {
            what: "targets",
            expected: 6,
            found: 5
        }
    );
    let got = CrossEntropy::new()
        .softcap(-0.0)
        .loss_dense(&[0.0_f32; 6], 3, &[0.5; 5])
        .unwrap_err();
    assert_eq!(got, want);
}

/// Finding 6 (in the oracle): `reference` scales the gradient by
/// `1 / divisor`, which is `inf` for a subnormal `Reduction::DivideBy(d)`
/// (`d < 1 / f64::MAX ≈ 5.6e-309`, valid: finite and > 0), so a zero
/// gradient element becomes NaN (`0 · inf`). The kernels (since the fix of
/// finding 1) divide, `g / d`, and give 0.
#[test]
fn oracle_gradient_with_subnormal_divide_by() {
    let d = Reduction::DivideBy(5e-324);
    let o = reference::squared_error(&[1.0, 2.0], &[1.0, 2.0], d, loss_kernels::EmptyMean::Nan)
        .unwrap();
    assert_eq!(o.grad, vec![0.0, 0.0], "oracle");
    let mut g = [1.0_f64; 2];
    SquaredError::new()
        .reduction(d)
        .loss_grad(&[1.0, 2.0], &[1.0, 2.0], &mut g)
        .unwrap();
    assert_eq!(g, [0.0, 0.0], "kernel");
}

/// Finding 7 (session 2, `ce_labels` / `ce_dense`): a softcap `s` whose
/// `f32` value or reciprocal is not a normal number (`1e-40`, `2.2e-308`)
/// was accepted (finite and > 0), and the `f32` kernels computed
/// `s · tanh(x · (1 / s))` with `s = 0` or `1 / s = inf`: a zero logit gave
/// `0 · inf = NaN`, a row's gradient `-inf`. Now `s` must be in
/// `[1e-30, 1e30]` (oracle and kernels alike); the bounds themselves work.
#[test]
fn softcap_outside_the_f32_range_is_an_error() {
    let x = [0.0_f32, 1.0, -2.0, 0.5, 3.0, 0.0];
    for s in [1e-40, 2.2e-308, 1e31, 3e38] {
        let opts = CrossEntropyOptions {
            softcap: Some(s),
            ..Default::default()
        };
        let want = reference::cross_entropy(&[0.0; 6], 3, &[0, 1], &opts).unwrap_err();
        assert!(
            matches!(
                want,
                loss_kernels::LossError::InvalidOption {
                    option: "softcap",
                    ..
                }
            ),
            "oracle, s = {s:e}: {want:?}"
        );
        let got = CrossEntropy::new()
            .softcap(s)
            .loss(&x, 3, &[0_u32, 1])
            .unwrap_err();
        assert_eq!(got, want, "s = {s:e}");
        assert!(got.to_string().contains("[1e-30, 1e30]"), "{got}");
    }
    for s in [1e-30, 1e30] {
        let opts = CrossEntropyOptions {
            softcap: Some(s),
            ..Default::default()
        };
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let want = reference::cross_entropy(&x64, 3, &[0, 1], &opts).unwrap();
        for b in backends() {
            let mut g = [f32::NAN; 6];
            let got = CrossEntropy::new()
                .softcap(s)
                .backend(b)
                .loss_grad(&x, 3, &[0_u32, 1], &mut g)
                .unwrap();
            assert!(
                (f64::from(got) - want.loss).abs() <= 1e-6 * want.loss.abs().max(1.0),
                "{b:?} s = {s:e}: loss {got} vs {}",
                want.loss
            );
            for (j, (&gj, &wj)) in g.iter().zip(&want.grad).enumerate() {
                assert!(
                    (f64::from(gj) - wj).abs() <= 1e-6,
                    "{b:?} s = {s:e}: grad[{j}] {gj} vs {wj}"
                );
            }
        }
    }
}

/// Finding 8 (session 2, `ce_labels`): a `+inf` logit on the target class
/// gave loss 0 and a zero gradient (the off-target sweep excludes the
/// target, so it never saw the `+inf`), where the policy, as for any `+inf`
/// logit, is a NaN row: NaN loss and NaN gradient.
#[test]
fn ce_inf_target_logit_gives_a_nan_row() {
    for (logits, classes, labels) in [
        (vec![f32::INFINITY], 1, vec![0_u32]),
        (vec![0.5, f32::INFINITY, -1.0, 2.0, 0.0, 1.0], 3, vec![1, 0]),
    ] {
        let x64: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
        let l64: Vec<i64> = labels.iter().map(|&v| i64::from(v)).collect();
        let want = reference::cross_entropy(
            &x64,
            classes,
            &l64,
            &CrossEntropyOptions {
                reduction: Reduction::Sum,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(want.per_element[0].is_nan() && want.grad[..classes].iter().all(|g| g.is_nan()));
        for b in backends() {
            let ce = CrossEntropy::new().reduction(Reduction::Sum).backend(b);
            let mut g = vec![0.0_f32; logits.len()];
            let loss = ce.loss_grad(&logits, classes, &labels, &mut g).unwrap();
            assert!(loss.is_nan(), "{b:?} C={classes}: loss {loss}");
            assert!(
                g[..classes].iter().all(|v| v.is_nan()),
                "{b:?} C={classes}: row 0 {g:?}"
            );
            // The other row is unaffected and matches the oracle.
            for (j, (&gj, &wj)) in g[classes..].iter().zip(&want.grad[classes..]).enumerate() {
                assert!(
                    (f64::from(gj) - wj).abs() < 1e-6,
                    "{b:?}: grad[{}] {gj} vs {wj}",
                    classes + j
                );
            }
            let mut rows = vec![0.0_f32; labels.len()];
            ce.per_row(&logits, classes, &labels, &mut rows).unwrap();
            assert!(rows[0].is_nan(), "{b:?}: per_row {rows:?}");
        }
    }
}

/// Finding 9 (session 2, `ce_labels`): a `Mean` whose total weight is 0
/// (every kept row's class has weight 0) has a zero gradient, even where a
/// row's logits are NaN (the empty-mean policy, as in the oracle); the
/// kernel multiplied the NaN softmax by the zero scale and wrote NaN.
#[test]
fn empty_mean_gradient_is_zero_even_with_nan_logits() {
    let w = [0.0_f32, 1.0, 1.0];
    let logits = [f32::NAN, 1.0, 2.0, 0.5, -1.0, 3.0];
    let labels = [0_u32, 0];
    let cw: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    let opts = CrossEntropyOptions {
        class_weights: Some(&cw),
        ..Default::default()
    };
    let x64: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
    let want = reference::cross_entropy(&x64, 3, &[0, 0], &opts).unwrap();
    assert_eq!(want.grad, vec![0.0; 6], "oracle");
    for b in backends() {
        let mut g = [f32::NAN; 6];
        CrossEntropy::new()
            .class_weights(&w)
            .backend(b)
            .loss_grad(&logits, 3, &labels, &mut g)
            .unwrap();
        assert_eq!(g, [0.0; 6], "{b:?}");
    }
}

/// Finding 10 (session 2, `ce_labels`, `f64`): the target class's gradient
/// lost its relative accuracy when the target is unlikely: its z-loss /
/// smoothing part `k p_t` was formed as `k (1 - σ(u))` (a 1e-7 relative
/// error for `p_t ≈ 1e-9`), and the softcap's factor as `1 - (z / s)²`
/// (cancelling when the cap saturates). Now `σ(-u)` and `1 / cosh²(x / s)`.
#[test]
fn ce_target_gradient_keeps_relative_accuracy() {
    let w = [1.0_f64, 1.0, 0.0];
    let cw = w.to_vec();
    for (logits, softcap) in [
        ([0.0_f64, 20.0, -1.0], None),
        ([0.0, 20.0, -30.0], Some(5.0)),
    ] {
        let opts = CrossEntropyOptions {
            class_weights: Some(&cw),
            z_loss: 1.0,
            softcap,
            reduction: Reduction::Sum,
            ..Default::default()
        };
        let want = reference::cross_entropy(&logits, 3, &[2], &opts).unwrap();
        for b in backends() {
            let mut ce = CrossEntropy::new()
                .class_weights(&w)
                .z_loss(1.0)
                .reduction(Reduction::Sum)
                .backend(b);
            if let Some(s) = softcap {
                ce = ce.softcap(s);
            }
            let mut g = [0.0_f64; 3];
            ce.loss_grad(&logits, 3, &[2_u32], &mut g).unwrap();
            let rel = (g[2] - want.grad[2]).abs() / want.grad[2].abs();
            assert!(
                rel < 1e-13,
                "{b:?} softcap {softcap:?}: grad[2] {:e} vs {:e} (rel {rel:e})",
                g[2],
                want.grad[2]
            );
        }
    }
}

/// Finding 11 (session 2, `ce_dense`): a dense row with a NaN logit and
/// all-zero targets had loss 0 (every term `w t' = 0` counts 0, so the
/// NaN never reached the sum); the policy, as for labels, is a NaN row.
#[test]
fn dense_row_with_nan_logit_and_zero_targets_is_nan() {
    let logits = [0.5_f64, f64::NAN, 1.0, 0.0, 1.0, 2.0];
    let targets = [0.0_f64, 0.0, 0.0, 0.2, 0.3, 0.5];
    let want =
        reference::cross_entropy_dense(&logits, 3, &targets, &CrossEntropyOptions::default())
            .unwrap();
    assert!(want.per_element[0].is_nan());
    for b in backends() {
        let ce = CrossEntropy::new().backend(b);
        let mut rows = [0.0_f64; 2];
        ce.per_row_dense(&logits, 3, &targets, &mut rows).unwrap();
        assert!(rows[0].is_nan(), "{b:?}: {rows:?}");
        assert!(
            (rows[1] - want.per_element[1]).abs() < 1e-12,
            "{b:?}: {rows:?}"
        );
        let l32: Vec<f32> = logits.iter().map(|&v| v as f32).collect();
        let t32: Vec<f32> = targets.iter().map(|&v| v as f32).collect();
        assert!(
            ce_f32(b).loss_dense(&l32, 3, &t32).unwrap().is_nan(),
            "{b:?} f32"
        );
    }
}

fn ce_f32(b: loss_kernels::Backend) -> CrossEntropy<'static, f32> {
    CrossEntropy::new().backend(b)
}

/// Finding 12 (session 2, `bce_logits`): with a subnormal weight (`f32`
/// 1.4e-45) and a huge logit, the weighted term `w (1 - y) |x|` was formed
/// as `((1 - y) w) |x|`: the subnormal product kept a few bits, so the loss
/// was up to 60% off (4.2e-7 for 2.58e-7). Now `|x|` meets the smaller
/// factor first.
#[test]
fn bce_logits_subnormal_weight_times_huge_logit() {
    // 1.4e-45, the smallest positive subnormal f32.
    let w = [f32::from_bits(1), f32::from_bits(1)];
    let x = [3.0e38_f32, 1.587_219_3e29];
    let y = [0.386_678_87_f32, 0.999_999_94];
    let pw = [0.809_643_7_f32];
    let (x64, y64, w64, pw64): (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) = (
        x.iter().map(|&v| f64::from(v)).collect(),
        y.iter().map(|&v| f64::from(v)).collect(),
        w.iter().map(|&v| f64::from(v)).collect(),
        pw.iter().map(|&v| f64::from(v)).collect(),
    );
    let want = reference::binary_cross_entropy_with_logits(
        &x64,
        &y64,
        Some(&w64),
        Some(&pw64),
        Reduction::Sum,
        loss_kernels::EmptyMean::Nan,
    )
    .unwrap();
    for b in backends() {
        let mut out = [0.0_f32; 2];
        BinaryCrossEntropyWithLogits::new()
            .weight(&w)
            .pos_weight(&pw)
            .backend(b)
            .per_element(&x, &y, &mut out)
            .unwrap();
        for (i, (&got, &exact)) in out.iter().zip(&want.per_element).enumerate() {
            let rel = (f64::from(got) - exact).abs() / exact;
            assert!(rel < 1e-5, "{b:?}: [{i}] {got:e} vs {exact:e}");
        }
    }
}

/// Finding 13 (session 2, `bce`): with weights and a `Reduction::DivideBy(d)`
/// whose `1 / d` exceeds the kernel's gradient scale (2^60 in `f32`, 2^500
/// in `f64`), the weighted term `w (p - y) / (p (1 - p))` was formed in `T`
/// before the scale: with a subnormal `w` it underflowed to 0 (or kept a
/// few bits) where the true `w g / d` is large. The weights and `1 / d` are
/// now applied together in `f64`, in an order that cannot underflow.
#[test]
fn weighted_gradient_with_subnormal_weight_and_tiny_divide_by() {
    let half_up = f32::from_bits(0.5_f32.to_bits() + 1); // 0.5 + 2^-24
    let w = [f32::from_bits(1), f32::from_bits(1), 1.0, f32::from_bits(7)];
    let p = [0.5_f32, 0.25, 0.5, 0.75];
    let y = [half_up, 0.75, 0.5, 0.0];
    let w64: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    let p64: Vec<f64> = p.iter().map(|&v| f64::from(v)).collect();
    let y64: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
    // 1e-60: every element finite in f32 (-3.3e8 for the first, which was
    // 0); 1e-300: the nonzero ones are -inf / +inf in f32.
    for d in [1e-60, 1e-300] {
        let r = Reduction::DivideBy(d);
        let nan = loss_kernels::EmptyMean::Nan;
        let want = reference::binary_cross_entropy(&p64, &y64, Some(&w64), r, nan).unwrap();
        // Logits 0 (sigmoid 0.5, exact): terms -2^-25, -0.25, 0, 0.5.
        let x = [0.0_f32; 4];
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let want_l =
            reference::binary_cross_entropy_with_logits(&x64, &y64, Some(&w64), None, r, nan)
                .unwrap();
        assert!(want.grad[0] < -3e8, "{d:e}: oracle {:?}", want.grad);
        for b in backends() {
            let mut g = [0.0_f32; 4];
            BinaryCrossEntropy::new()
                .weight(&w)
                .reduction(r)
                .backend(b)
                .loss_grad(&p, &y, &mut g)
                .unwrap();
            let mut gl = [0.0_f32; 4];
            BinaryCrossEntropyWithLogits::new()
                .weight(&w)
                .reduction(r)
                .backend(b)
                .loss_grad(&x, &y, &mut gl)
                .unwrap();
            for (what, got, want) in [("bce", g, &want.grad), ("logits", gl, &want_l.grad)] {
                for (i, (&got, &exact)) in got.iter().zip(want.iter()).enumerate() {
                    let exact32 = exact as f32;
                    let ok = if exact32.is_finite() {
                        (f64::from(got) - exact).abs() <= 1e-5 * exact.abs()
                    } else {
                        got == exact32
                    };
                    assert!(
                        ok,
                        "{b:?} {what} d={d:e} [{i}]: {got:e} vs oracle {exact:e}"
                    );
                }
            }
        }
    }

    // f64: a weight of 2^-1074 and a term of -2^-51 give 2^-1125 before the
    // division by 1e-300, below f64's range (the oracle's own product
    // underflows too); the oracle with the weight and divisor both scaled
    // by 2^600 (exactly) gives the true value, -2.2e-39.
    let half_up = f64::from_bits(0.5_f64.to_bits() + 1); // 0.5 + 2^-53
    let (p, y, w) = (
        [0.5_f64, 0.25],
        [half_up, 0.75],
        [f64::from_bits(1), 1e-310],
    );
    let k = 2f64.powi(600);
    let w_scaled: Vec<f64> = w.iter().map(|&v| v * k).collect();
    let want = reference::binary_cross_entropy(
        &p,
        &y,
        Some(&w_scaled),
        Reduction::DivideBy(1e-300 * k),
        loss_kernels::EmptyMean::Nan,
    )
    .unwrap();
    assert!(
        want.grad[0] < -2e-39 && want.grad[0] > -3e-39,
        "{:?}",
        want.grad
    );
    for b in backends() {
        let mut g = [0.0_f64; 2];
        BinaryCrossEntropy::new()
            .weight(&w)
            .reduction(Reduction::DivideBy(1e-300))
            .backend(b)
            .loss_grad(&p, &y, &mut g)
            .unwrap();
        for (i, (&got, &exact)) in g.iter().zip(&want.grad).enumerate() {
            assert!(
                (got - exact).abs() <= 1e-12 * exact.abs(),
                "{b:?} f64 [{i}]: {got:e} vs {exact:e}"
            );
        }
    }
}

/// Session 3 (`bce_logits`, seed 1): weights are not validated, and the
/// weighted term `w (coef |x|)` picked the factor `|x|` meets first by
/// comparing `|coef| < w` without the magnitude of `w`: for a negative
/// weight `|x|` met `w` first, `2.7e11 · -7.9e27` overflowed `f32` to
/// `-inf`, and `-inf · coef` with `coef = 1 - y = 0` gave NaN where the
/// oracle gives `-0`.
#[test]
fn bce_logits_negative_weight_and_zero_coefficient() {
    let x = [265_686_040_000.0_f32, -328_460_700_000.0];
    let y = [1.0_f32, 0.0];
    let w = [-7.873_535e27_f32, -7.873_535e27];
    let pw = [0.980_483_7_f32];
    let widen = |v: &[f32]| v.iter().map(|&e| f64::from(e)).collect::<Vec<f64>>();
    let want = reference::binary_cross_entropy_with_logits(
        &widen(&x),
        &widen(&y),
        Some(&widen(&w)),
        Some(&widen(&pw)),
        Reduction::Sum,
        loss_kernels::EmptyMean::Nan,
    )
    .unwrap();
    assert_eq!(want.per_element, vec![0.0, 0.0]);
    for b in backends() {
        let l = BinaryCrossEntropyWithLogits::new()
            .weight(&w)
            .pos_weight(&pw)
            .backend(b);
        let mut out = [f32::NAN; 2];
        l.per_element(&x, &y, &mut out).unwrap();
        assert_eq!(out, [0.0, 0.0], "{b:?} per_element");
        // Without pos_weight the same selection is made.
        let mut out = [f32::NAN; 2];
        BinaryCrossEntropyWithLogits::new()
            .weight(&w)
            .backend(b)
            .per_element(&x, &y, &mut out)
            .unwrap();
        assert_eq!(out, [0.0, 0.0], "{b:?} per_element without pos_weight");
        assert_eq!(l.reduction(Reduction::Sum).loss(&x, &y).unwrap(), 0.0);
    }
}

/// Class A of the `ce_labels` campaign (`fuzz/findings/`, 41 inputs): `f32`
/// label smoothing with logits near `±3e38` or class weights near `3e37`
/// gave `inf` (once NaN) for a loss that fits `f32`: the smoothing term
/// `w_c (m/2 - z_c/2)` and the weight sum were formed in `f32` before they
/// reached the `f64` accumulators. Both are now formed in `f64`.
#[test]
fn f32_label_smoothing_side_sums_do_not_overflow() {
    let classes = 20;
    // Row 1: one huge logit, the others -3e38 or 0 (lse - z_c up to 6e38).
    let huge: Vec<f32> = (0..classes)
        .map(|c| match c {
            0 => 3e38,
            c if c % 2 == 1 => -3e38,
            _ => 0.0,
        })
        .collect();
    // Row 2: moderate logits, class weights whose sum (6e38) overflows f32.
    let moderate: Vec<f32> = (0..classes).map(|c| (c as f32 - 9.5) * 0.5).collect();
    let heavy = vec![3e37_f32; classes];
    /// (logits, class weights, smoothing).
    type Case<'a> = (&'a [f32], Option<&'a [f32]>, f64);
    let cases: [Case<'_>; 2] = [(&huge, None, 0.5), (&moderate, Some(&heavy), 1.0)];
    for (logits, weights, eps) in cases {
        let w64: Option<Vec<f64>> = weights.map(|w| w.iter().map(|&v| f64::from(v)).collect());
        let x64: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
        let want = reference::cross_entropy(
            &x64,
            classes,
            &[0],
            &CrossEntropyOptions {
                reduction: Reduction::Sum,
                class_weights: w64.as_deref(),
                label_smoothing: eps,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(
            want.loss.is_finite() && want.loss < f64::from(f32::MAX),
            "the truth fits f32: {}",
            want.loss
        );
        for b in backends() {
            let mut ce = CrossEntropy::new()
                .backend(b)
                .reduction(Reduction::Sum)
                .label_smoothing(eps);
            if let Some(w) = weights {
                ce = ce.class_weights(w);
            }
            let mut g = vec![0.0_f32; classes];
            let got = [
                ce.loss(logits, classes, &[0_i64]).unwrap(),
                ce.loss_grad(logits, classes, &[0_i64], &mut g).unwrap(),
            ];
            for l in got {
                let rel = (f64::from(l) - want.loss).abs() / want.loss;
                assert!(rel < 1e-5, "{b:?} eps {eps}: {l} vs {}", want.loss);
            }
            for (j, (&gj, &wj)) in g.iter().zip(&want.grad).enumerate() {
                let tol = 1e-5 * wj.abs().max(f64::from(f32::MIN_POSITIVE));
                assert!(
                    (f64::from(gj) - wj).abs() <= tol,
                    "{b:?} eps {eps} grad[{j}]: {gj} vs {wj}"
                );
            }
        }
    }
}

/// `ce_dense` at seed 1 (session 4): a dense row of only `-inf` logits
/// whose targets are all 0 had loss 0 (every `w t'` is 0, so the side sums
/// are 0); the contract (and the oracle) give such a row NaN, as a labelled
/// row of only `-inf` logits.
#[test]
fn dense_row_of_only_neg_inf_is_nan() {
    let ninf = f64::NEG_INFINITY;
    for classes in [1, 3, 20] {
        // Row 0 all -inf with zero targets; row 1 ordinary.
        let mut x = vec![ninf; classes];
        x.extend((0..classes).map(|c| c as f64 * 0.25));
        let mut t = vec![0.0; classes];
        t.extend((0..classes).map(|c| if c == 0 { 1.0 } else { 0.0 }));
        let want = reference::cross_entropy_dense(&x, classes, &t, &Default::default()).unwrap();
        assert!(want.per_element[0].is_nan() && want.per_element[1].is_finite());
        for b in backends() {
            let ce = CrossEntropy::new().backend(b);
            let mut per_row = [0.0; 2];
            ce.per_row_dense(&x, classes, &t, &mut per_row).unwrap();
            assert!(per_row[0].is_nan(), "{b:?} C={classes}: {per_row:?}");
            assert!((per_row[1] - want.per_element[1]).abs() < 1e-12);
            let mut g = vec![0.0; 2 * classes];
            let l = ce.loss_grad_dense(&x, classes, &t, &mut g).unwrap();
            assert!(l.is_nan(), "{b:?} C={classes}: loss {l}");
            assert!(g[..classes].iter().all(|v| v.is_nan()), "{b:?}: {g:?}");
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let tf: Vec<f32> = t.iter().map(|&v| v as f32).collect();
            let mut pf = [0.0_f32; 2];
            CrossEntropy::new()
                .backend(b)
                .per_row_dense(&xf, classes, &tf, &mut pf)
                .unwrap();
            assert!(pf[0].is_nan() && pf[1].is_finite(), "{b:?} f32: {pf:?}");
        }
    }
}

/// `ce_dense` 30-minute campaign (session 4, f32): the gradient's target
/// term `w_c t_c / n` was formed as `((1/n) · t_c) · w_c`; with a subnormal
/// target the first product underflowed, so the term was lost or kept a
/// few bits (7e-19 where the exact gradient is 0; 0.12% off with
/// `t = -7.2e-42`). Now `w_c t_c` is formed first.
#[test]
fn dense_gradient_with_subnormal_targets_and_large_weights() {
    /// (classes, one row's logits, its targets, class weights).
    type Case = (usize, Vec<f32>, Vec<f32>, Vec<f32>);
    let cases: [Case; 3] = [
        (1, vec![-1.0], vec![1e-45], vec![2.19e29]),
        (
            2,
            vec![2.0, 2.0],
            vec![-7.21e-42, 1.0],
            vec![3.5e12, 1.39e-32],
        ),
        // The other side (CI seed 1, after the first fix): w·t first
        // overflowed (4064 · -2.3e36 = -9.5e39) where (t / n)·w fits.
        (
            2,
            vec![819.6875, -785.75],
            vec![-2.332186e36, 1.36000795e-27],
            vec![4064.062, 8191.125],
        ),
    ];
    let rows = 64;
    for (classes, row_x, row_t, w) in cases {
        let x: Vec<f32> = row_x.iter().copied().cycle().take(rows * classes).collect();
        let t: Vec<f32> = row_t.iter().copied().cycle().take(rows * classes).collect();
        let f = |v: &[f32]| -> Vec<f64> { v.iter().map(|&a| f64::from(a)).collect() };
        let w64 = f(&w);
        let want = reference::cross_entropy_dense(
            &f(&x),
            classes,
            &f(&t),
            &CrossEntropyOptions {
                class_weights: Some(&w64),
                ..Default::default()
            },
        )
        .unwrap();
        // The magnitude of each element: (Σ |w t|) p_j + |w_j t_j|, over n.
        let wt: Vec<f64> = (0..classes)
            .map(|c| (w64[c] * f64::from(row_t[c])).abs())
            .collect();
        let wt_sum: f64 = wt.iter().sum();
        for b in backends() {
            let mut g = vec![0.0_f32; rows * classes];
            CrossEntropy::new()
                .backend(b)
                .class_weights(&w)
                .loss_grad_dense(&x, classes, &t, &mut g)
                .unwrap();
            for (j, (&gj, &wj)) in g.iter().zip(&want.grad).enumerate() {
                let c = j % classes;
                let tol = 1e-5 * (wt_sum + wt[c]) / rows as f64 + 1e-44;
                assert!(
                    (f64::from(gj) - wj).abs() <= tol,
                    "{b:?} C={classes} grad[{j}]: {gj:e} vs {wj:e} (tol {tol:e})"
                );
            }
        }
    }
}

/// `bce_logits` campaign (session 4, f32): with a subnormal weight the
/// weighted term `w · coef · |x|` met `|x|` first whenever `|x| >= 1`, so
/// `55 · 1.4e-45` kept a few bits before `coef = pw·y = 2.7e11` scaled it
/// back up (5e-4 and 1.5e-3 off). Now the largest factor meets the
/// smallest first.
#[test]
fn bce_logits_subnormal_weight_meets_the_largest_factor_first() {
    let w = [1e-45_f32];
    // (x, y, pos_weight)
    let cases: [(f32, f32, Option<f32>); 2] = [
        (-54.970703, 0.53798735, Some(4.972152e11)),
        (62.09375, -6.8063357e11, None),
    ];
    for (x, y, pw) in cases {
        let want = reference::binary_cross_entropy_with_logits(
            &[f64::from(x)],
            &[f64::from(y)],
            Some(&[f64::from(w[0])]),
            pw.map(|p| [f64::from(p)]).as_ref().map(|p| &p[..]),
            Reduction::Sum,
            Default::default(),
        )
        .unwrap();
        assert!(want.loss > 1e-33, "a normal f32 loss: {}", want.loss);
        for b in backends() {
            let pwv = pw.map(|p| [p]);
            let mut bce = BinaryCrossEntropyWithLogits::new()
                .backend(b)
                .reduction(Reduction::Sum)
                .weight(&w);
            if let Some(p) = pwv.as_ref() {
                bce = bce.pos_weight(p);
            }
            let l = bce.loss(&[x], &[y]).unwrap();
            let rel = (f64::from(l) - want.loss).abs() / want.loss;
            assert!(rel < 1e-5, "{b:?} x={x}: {l:e} vs {:e}", want.loss);
        }
    }
}

/// Session 5, `ce_dense` f32 at CI seeds 2 and 3 (scalar backend): dense
/// targets outside `[0, 1]` (not validated) with a negative sum `a = Σ t`
/// on a confident row. The loss is `a ln S + d`, and `ln S = 3.4e-6` came
/// from pass 1's `S` summed in `f32` lanes, 0.7% off (`-2.8252e18` for
/// `-2.8057e18`); such rows now take `S - 1` without cancellation, as rows
/// with `a > 0` did.
#[test]
fn dense_negative_target_sum_on_a_confident_row() {
    let x = [-3.032_714_8_f32, 9.549_316];
    let t = [-5_393.989_f32, -8.172_343e23];
    // The exact loss in f64: -Σ t_c log p_c, log p_1 = -ln(1 + e^{z_0 - z_1}).
    let (z0, z1) = (f64::from(x[0]), f64::from(x[1]));
    let lp1 = -(z0 - z1).exp().ln_1p();
    let lp0 = (z0 - z1) + lp1;
    let want = -(f64::from(t[0]) * lp0 + f64::from(t[1]) * lp1);
    assert!(
        (want / -2.805_686_158_969_71e18 - 1.0).abs() < 1e-6,
        "{want}"
    );
    for b in backends() {
        let mut out = [0.0_f32];
        ce_f32(b).per_row_dense(&x, 2, &t, &mut out).unwrap();
        let rel = (f64::from(out[0]) / want - 1.0).abs();
        assert!(rel < 1e-5, "{b:?}: {} for {want} ({rel:e} off)", out[0]);
    }
}

/// Session 5, CI seed 1, `bce_logits` f64 (a gap of the fuzz harness, not a
/// kernel bug; pinned here so the kernel keeps it): a zero weight on an
/// element whose unweighted term lies beyond `T::MAX` (`x = -MAX`,
/// `y = 1 + eps`: `y |x|` overflows) gives the exact `±0`, because the
/// weight meets the coefficients before `|x|` does. The oracle's grouping
/// `w · ((1 - y) x + softplus(-x))` gives `0 · inf = NaN` there; the harness
/// now treats such an element as an overflowing intermediate.
#[test]
fn bce_logits_zero_weight_on_a_term_beyond_max() {
    fn check<T>(x: T, y: T, finite: T)
    where
        T: loss_kernels::Float + std::fmt::Debug,
    {
        // The overflowing element between two ordinary ones, weighted -0.
        let xs = [finite, x, finite];
        let ys = [y, y, y];
        let w = [T::ONE, T::from_f64(-0.0), T::ONE];
        for b in backends() {
            let l = BinaryCrossEntropyWithLogits::new()
                .weight(&w)
                .reduction(Reduction::Sum)
                .backend(b);
            let mut out = [T::from_f64(f64::NAN); 3];
            l.per_element(&xs, &ys, &mut out).unwrap();
            let o = out[1].to_f64();
            assert!(o == 0.0 && o.is_sign_negative(), "{b:?} per_element {o:e}");
            let outer = out[0].to_f64();
            assert!(outer.is_finite() && outer > 0.0, "{b:?} {outer:e}");
            let mut grad = [T::from_f64(f64::NAN); 3];
            let loss = l.loss_grad(&xs, &ys, &mut grad).unwrap().to_f64();
            assert_eq!(loss, 2.0 * outer, "{b:?} loss");
            let g = grad[1].to_f64();
            assert_eq!(g, 0.0, "{b:?} grad");
            let plain = l.loss(&xs, &ys).unwrap().to_f64();
            assert_eq!(plain, loss, "{b:?} loss vs loss_grad");
        }
    }
    check(-f64::MAX, 1.0 + f64::EPSILON, -3.5);
    check(-f32::MAX, 1.0 + f32::EPSILON, -3.5);
}
