//! Bad input through the public API: every `LossError` variant with its
//! message, output buffers untouched by shape and option errors, and the
//! NaN / ±inf propagation policy of every loss (DESIGN.md, "Errors and bad
//! input" and "Semantics"), on `f32` and `f64` and every backend this CPU
//! runs.

use loss_kernels::reference::{self, CrossEntropyOptions};
use loss_kernels::{
    Backend, BinaryCrossEntropy, BinaryCrossEntropyWithLogits, CrossEntropy, EmptyMean, Float,
    LogSumExp, LossError, Reduction, Softmax, SquaredError,
};

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;

fn v<T: Float>(x: &[f64]) -> Vec<T> {
    x.iter().map(|&a| T::from_f64(a)).collect()
}

/// `Auto` and every backend this CPU can run.
fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Auto];
    b.extend(Backend::available());
    b
}

/// A value no kernel writes: the output buffers start full of it.
fn sentinel<T: Float>() -> T {
    T::from_f64(-12_345.678_9)
}

fn untouched<T: Float>(buf: &[T]) -> bool {
    buf.iter().all(|&x| x == sentinel::<T>())
}

// ---------------------------------------------------------------------------
// Every variant, with its message.
// ---------------------------------------------------------------------------

#[test]
fn length_mismatch_names_the_argument() {
    let e = SquaredError::new()
        .loss(&[1.0_f32, 2.0], &[1.0])
        .unwrap_err();
    assert_eq!(
        e,
        LossError::LengthMismatch {
            what: "target",
            expected: 2,
            found: 1
        }
    );
    assert_eq!(e.to_string(), "`target` has length 1, expected 2");

    let mut g = [0.0_f64; 3];
    let e = SquaredError::new()
        .loss_grad(&[1.0, 2.0], &[1.0, 2.0], &mut g)
        .unwrap_err();
    assert_eq!(e.to_string(), "`grad` has length 3, expected 2");

    let mut o = [0.0_f32; 1];
    let e = SquaredError::new()
        .per_element(&[1.0, 2.0], &[1.0, 2.0], &mut o)
        .unwrap_err();
    assert_eq!(e.to_string(), "`out` has length 1, expected 2");

    let w = [1.0_f32; 3];
    let e = BinaryCrossEntropy::new()
        .weight(&w)
        .loss(&[0.5, 0.5], &[0.0, 1.0])
        .unwrap_err();
    assert_eq!(e.to_string(), "`weight` has length 3, expected 2");
    let e = BinaryCrossEntropyWithLogits::new()
        .weight(&w)
        .loss(&[0.5, 0.5], &[0.0, 1.0])
        .unwrap_err();
    assert_eq!(
        e,
        LossError::LengthMismatch {
            what: "weight",
            expected: 2,
            found: 3
        }
    );

    let e = CrossEntropy::new()
        .loss(&[0.0_f32; 6], 3, &[0_u32])
        .unwrap_err();
    assert_eq!(e.to_string(), "`labels` has length 1, expected 2");
    let cw = [1.0_f32; 2];
    let e = CrossEntropy::new()
        .class_weights(&cw)
        .loss(&[0.0_f32; 6], 3, &[0_u32, 1])
        .unwrap_err();
    assert_eq!(e.to_string(), "`class_weights` has length 2, expected 3");
    let e = CrossEntropy::new()
        .loss_dense(&[0.0_f64; 6], 3, &[0.5; 5])
        .unwrap_err();
    assert_eq!(e.to_string(), "`targets` has length 5, expected 6");
    let mut g = [0.0_f32; 5];
    let e = CrossEntropy::new()
        .loss_grad(&[0.0_f32; 6], 3, &[0_i64, 1], &mut g)
        .unwrap_err();
    assert_eq!(e.to_string(), "`grad` has length 5, expected 6");
    let mut o = [0.0_f32; 3];
    let e = CrossEntropy::new()
        .per_row(&[0.0_f32; 6], 3, &[0_u32, 1], &mut o)
        .unwrap_err();
    assert_eq!(e.to_string(), "`out` has length 3, expected 2");

    let mut o = [0.0_f32; 3];
    let e = Softmax::new()
        .log_sum_exp(&[0.0_f32; 6], 3, &mut o)
        .unwrap_err();
    assert_eq!(e.to_string(), "`out` has length 3, expected 2");
    let e = Softmax::new()
        .softmax(&[0.0_f32; 6], 2, &mut o)
        .unwrap_err();
    assert_eq!(e.to_string(), "`out` has length 3, expected 6");
}

#[test]
fn zero_classes_and_not_divisible() {
    let e = CrossEntropy::new()
        .loss(&[0.0_f32; 4], 0, &[0_u32])
        .unwrap_err();
    assert_eq!(e, LossError::ZeroClasses);
    assert_eq!(e.to_string(), "`classes` is 0, expected at least 1");
    // Even with no logits at all.
    let e = CrossEntropy::new()
        .loss_dense(&[] as &[f64], 0, &[])
        .unwrap_err();
    assert_eq!(e, LossError::ZeroClasses);
    let mut o = [0.0_f32; 0];
    assert_eq!(
        Softmax::new()
            .softmax(&[] as &[f32], 0, &mut o)
            .unwrap_err(),
        LossError::ZeroClasses
    );

    let e = CrossEntropy::new()
        .loss(&[0.0_f32; 5], 2, &[0_u32, 1])
        .unwrap_err();
    assert_eq!(e, LossError::NotDivisible { len: 5, classes: 2 });
    assert_eq!(
        e.to_string(),
        "logits length 5 is not a multiple of classes = 2"
    );
    let mut o = [0.0_f64; 2];
    let e = Softmax::new()
        .log_sum_exp(&[0.0_f64; 5], 2, &mut o)
        .unwrap_err();
    assert_eq!(e, LossError::NotDivisible { len: 5, classes: 2 });
}

#[test]
fn pos_weight_length() {
    let x = [0.0_f32; 4];
    let y = [1.0_f32; 4];
    let pw = [1.0_f32; 3];
    let e = BinaryCrossEntropyWithLogits::new()
        .pos_weight(&pw)
        .loss(&x, &y)
        .unwrap_err();
    assert_eq!(
        e,
        LossError::PosWeightLength {
            input_len: 4,
            found: 3
        }
    );
    assert_eq!(
        e.to_string(),
        "`pos_weight` has length 3, expected a non-zero divisor of the input length 4"
    );
    let empty: [f32; 0] = [];
    let e = BinaryCrossEntropyWithLogits::new()
        .pos_weight(&empty)
        .loss(&x, &y)
        .unwrap_err();
    assert_eq!(
        e,
        LossError::PosWeightLength {
            input_len: 4,
            found: 0
        }
    );
    // A divisor is fine: 2 columns.
    let pw = [1.0_f32, 2.0];
    assert!(BinaryCrossEntropyWithLogits::new()
        .pos_weight(&pw)
        .loss(&x, &y)
        .is_ok());
}

#[test]
fn label_out_of_range() {
    let logits = [0.0_f32; 9];
    let e = CrossEntropy::new()
        .loss(&logits, 3, &[0_u32, 3, 1])
        .unwrap_err();
    assert_eq!(
        e,
        LossError::LabelOutOfRange {
            index: 1,
            label: 3,
            classes: 3
        }
    );
    assert_eq!(
        e.to_string(),
        "label 3 at row 1 is out of range: expected 0..3 or the ignore_index"
    );
    // A negative label that is not the ignore index.
    let e = CrossEntropy::new()
        .loss(&logits, 3, &[0_i64, 1, -1])
        .unwrap_err();
    assert_eq!(
        e,
        LossError::LabelOutOfRange {
            index: 2,
            label: -1,
            classes: 3
        }
    );
    // The default ignore index (-100) is ignored; without an ignore index it is a bad label.
    assert!(CrossEntropy::new()
        .loss(&logits, 3, &[0_i64, -100, 2])
        .is_ok());
    let e = CrossEntropy::new()
        .no_ignore_index()
        .loss(&logits, 3, &[0_i64, -100, 2])
        .unwrap_err();
    assert_eq!(
        e,
        LossError::LabelOutOfRange {
            index: 1,
            label: -100,
            classes: 3
        }
    );
    // u64 labels above i64::MAX saturate in the message.
    let e = CrossEntropy::new()
        .loss(&logits, 3, &[0_u64, 1, u64::MAX])
        .unwrap_err();
    assert_eq!(
        e,
        LossError::LabelOutOfRange {
            index: 2,
            label: i64::MAX,
            classes: 3
        }
    );
    // Every label type reports the first bad row.
    let e = CrossEntropy::new()
        .loss(&logits, 3, &[7_i32, 9, 1])
        .unwrap_err();
    assert_eq!(
        e,
        LossError::LabelOutOfRange {
            index: 0,
            label: 7,
            classes: 3
        }
    );
    let e = CrossEntropy::new()
        .loss(&logits, 3, &[0_i32, 1, i32::MIN])
        .unwrap_err();
    assert_eq!(
        e,
        LossError::LabelOutOfRange {
            index: 2,
            label: i64::from(i32::MIN),
            classes: 3
        }
    );
}

#[test]
fn probability_out_of_range() {
    let bce = BinaryCrossEntropy::new();
    let e = bce
        .loss(&[0.5_f32, 0.2, 1.5], &[1.0, 0.0, 1.0])
        .unwrap_err();
    assert_eq!(
        e,
        LossError::ProbabilityOutOfRange {
            what: "input",
            index: 2,
            value: 1.5
        }
    );
    assert_eq!(
        e.to_string(),
        "`input[2]` = 1.5 is not a probability: expected a value in [0, 1]"
    );
    let e = BinaryCrossEntropy::new()
        .loss(&[0.5_f64, 0.2], &[1.0, -0.5])
        .unwrap_err();
    assert_eq!(
        e,
        LossError::ProbabilityOutOfRange {
            what: "target",
            index: 1,
            value: -0.5
        }
    );
    assert_eq!(
        e.to_string(),
        "`target[1]` = -0.5 is not a probability: expected a value in [0, 1]"
    );
    // NaN is not a probability either (inputs before targets at the same index).
    let e = bce
        .loss(&[0.5_f32, f32::NAN], &[1.0, f32::NAN])
        .unwrap_err();
    match e {
        LossError::ProbabilityOutOfRange {
            what: "input",
            index: 1,
            value,
        } => assert!(value.is_nan()),
        e => panic!("{e:?}"),
    }
    // Found wherever it is, on every backend and every method, also past
    // the SIMD tails and across the parallel split.
    for n in [1_usize, 15, 16, 17, 33, 70_000] {
        let mut p = vec![0.5_f32; n];
        let y = vec![0.25_f32; n];
        p[n - 1] = -1e-30;
        for b in backends() {
            let bce = BinaryCrossEntropy::new().backend(b);
            let want = LossError::ProbabilityOutOfRange {
                what: "input",
                index: n - 1,
                value: f64::from(-1e-30_f32),
            };
            assert_eq!(bce.loss(&p, &y).unwrap_err(), want, "{b:?} n={n}");
            assert_eq!(bce.partial(&p, &y).unwrap_err(), want, "{b:?} n={n}");
            let mut g = vec![0.0_f32; n];
            assert_eq!(
                bce.loss_grad(&p, &y, &mut g).unwrap_err(),
                want,
                "{b:?} n={n}"
            );
            assert_eq!(
                bce.per_element(&p, &y, &mut g).unwrap_err(),
                want,
                "{b:?} n={n}"
            );
        }
    }
}

#[test]
fn invalid_options_name_the_option() {
    let (x, y) = ([1.0_f32, 2.0], [0.0_f32, 0.0]);
    for d in [0.0, -1.0, NAN, INF, -0.0] {
        let e = SquaredError::new()
            .reduction(Reduction::DivideBy(d))
            .loss(&x, &y)
            .unwrap_err();
        match e {
            LossError::InvalidOption {
                option: "reduction",
                index: None,
                value,
                ..
            } => {
                assert!(value.to_bits() == d.to_bits() || (value.is_nan() && d.is_nan()));
            }
            e => panic!("DivideBy({d}): {e:?}"),
        }
    }
    let e = SquaredError::new()
        .reduction(Reduction::DivideBy(0.0))
        .loss(&x, &y)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "option `reduction` = 0 is invalid: expected Reduction::DivideBy(d) with d finite and > 0"
    );

    let logits = [0.0_f32; 6];
    let labels = [0_u32, 1];
    let e = CrossEntropy::new()
        .label_smoothing(1.5)
        .loss(&logits, 3, &labels)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "option `label_smoothing` = 1.5 is invalid: expected a value in [0, 1]"
    );
    let e = CrossEntropy::new()
        .label_smoothing(NAN)
        .loss(&logits, 3, &labels)
        .unwrap_err();
    assert!(
        matches!(
            e,
            LossError::InvalidOption {
                option: "label_smoothing",
                ..
            }
        ),
        "{e:?}"
    );
    let e = CrossEntropy::new()
        .z_loss(-1e-4)
        .loss(&logits, 3, &labels)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "option `z_loss` = -0.0001 is invalid: expected a finite value >= 0"
    );
    let e = CrossEntropy::new()
        .z_loss(INF)
        .loss(&logits, 3, &labels)
        .unwrap_err();
    assert!(
        matches!(
            e,
            LossError::InvalidOption {
                option: "z_loss",
                ..
            }
        ),
        "{e:?}"
    );
    let e = CrossEntropy::new()
        .softcap(0.0)
        .loss(&logits, 3, &labels)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "option `softcap` = 0 is invalid: expected a value in [1e-30, 1e30]"
    );
    let e = CrossEntropy::new()
        .softcap(-30.0)
        .loss(&logits, 3, &labels)
        .unwrap_err();
    assert!(
        matches!(
            e,
            LossError::InvalidOption {
                option: "softcap",
                ..
            }
        ),
        "{e:?}"
    );
    let cw = [1.0_f32, -1.0, 1.0];
    let e = CrossEntropy::new()
        .class_weights(&cw)
        .loss(&logits, 3, &labels)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "option `class_weights[1]` = -1 is invalid: expected a finite value >= 0"
    );
    let cw = [1.0_f32, 1.0, f32::INFINITY];
    let e = CrossEntropy::new()
        .class_weights(&cw)
        .loss_dense(&logits, 3, &logits)
        .unwrap_err();
    assert!(
        matches!(
            e,
            LossError::InvalidOption {
                option: "class_weights",
                index: Some(2),
                ..
            }
        ),
        "{e:?}"
    );
    let e = CrossEntropy::new()
        .reduction(Reduction::DivideBy(-2.0))
        .loss_dense(&logits, 3, &logits)
        .unwrap_err();
    assert!(
        matches!(
            e,
            LossError::InvalidOption {
                option: "reduction",
                ..
            }
        ),
        "{e:?}"
    );

    let pw = [1.0_f32, f32::NAN];
    let e = BinaryCrossEntropyWithLogits::new()
        .pos_weight(&pw)
        .loss(&x, &y)
        .unwrap_err();
    assert!(
        matches!(
            e,
            LossError::InvalidOption {
                option: "pos_weight",
                index: Some(1),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "option `pos_weight[1]` = NaN is invalid: expected a finite value >= 0"
    );
}

#[test]
fn backend_unavailable() {
    let all = [
        Backend::Scalar,
        Backend::Portable,
        Backend::Avx2Fma,
        Backend::Avx512,
    ];
    for b in all {
        let r = SquaredError::new().backend(b).loss(&[1.0_f32], &[0.0]);
        let mut o = [0.0_f32; 1];
        let p = Softmax::new().backend(b).softmax(&[1.0_f32], 1, &mut o);
        if b.is_available() {
            assert_eq!(r, Ok(1.0));
            assert_eq!(o, [1.0]);
        } else {
            let e = r.unwrap_err();
            assert_eq!(e, LossError::BackendUnavailable { backend: b });
            assert_eq!(p.unwrap_err(), e);
            assert!(e
                .to_string()
                .starts_with(&format!("backend {b:?} is not available on this CPU/build")));
        }
    }
    // The message, whether or not this CPU lacks a backend.
    let msg = LossError::BackendUnavailable {
        backend: Backend::Avx512,
    }
    .to_string();
    assert_eq!(
        msg,
        format!(
            "backend Avx512 is not available on this CPU/build (available: {:?})",
            Backend::available()
        )
    );
    assert!(Backend::Auto.is_available() && Backend::Scalar.is_available());
}

// ---------------------------------------------------------------------------
// Shape and option errors are found before any output is written.
// ---------------------------------------------------------------------------

fn elementwise_untouched<T: Float>() {
    let s = sentinel::<T>();
    for b in backends() {
        let x: Vec<T> = v(&[0.25; 33]);
        let short: Vec<T> = v(&[0.5; 32]);
        let w_bad: Vec<T> = v(&[1.0; 34]);
        let pw_bad: Vec<T> = v(&[1.0; 5]);
        let pw_neg: Vec<T> = v(&[-1.0]);
        let mut g = vec![s; 33];
        let mut g_short = vec![s; 32];
        let bad_div = Reduction::DivideBy(0.0);

        let mse = SquaredError::new().backend(b);
        assert!(mse.loss_grad(&x, &short, &mut g).is_err());
        assert!(mse.per_element(&x, &short, &mut g).is_err());
        assert!(mse.reduction(bad_div).loss_grad(&x, &x, &mut g).is_err());
        assert!(mse.loss_grad(&x, &x, &mut g_short).is_err());
        assert!(untouched(&g) && untouched(&g_short), "{b:?} MSE");

        let bce = BinaryCrossEntropy::new().backend(b);
        assert!(bce.loss_grad(&x, &short, &mut g).is_err());
        assert!(bce.weight(&w_bad).loss_grad(&x, &x, &mut g).is_err());
        assert!(bce.weight(&w_bad).per_element(&x, &x, &mut g).is_err());
        assert!(bce.reduction(bad_div).loss_grad(&x, &x, &mut g).is_err());
        assert!(bce.per_element(&x, &x, &mut g_short).is_err());
        assert!(untouched(&g) && untouched(&g_short), "{b:?} BCE");

        let bcel = BinaryCrossEntropyWithLogits::new().backend(b);
        assert!(bcel.loss_grad(&x, &short, &mut g).is_err());
        assert!(bcel.weight(&w_bad).loss_grad(&x, &x, &mut g).is_err());
        assert!(bcel.pos_weight(&pw_bad).loss_grad(&x, &x, &mut g).is_err());
        assert!(bcel
            .pos_weight(&pw_neg)
            .per_element(&x, &x, &mut g)
            .is_err());
        assert!(bcel.reduction(bad_div).loss_grad(&x, &x, &mut g).is_err());
        assert!(bcel.loss_grad(&x, &x, &mut g_short).is_err());
        assert!(
            untouched(&g) && untouched(&g_short),
            "{b:?} BCE with logits"
        );
    }
}

fn cross_entropy_untouched<T: Float>() {
    let s = sentinel::<T>();
    for b in backends() {
        let c = 17;
        let logits: Vec<T> = v(&(0..3 * c).map(|i| (i % 7) as f64 - 3.0).collect::<Vec<_>>());
        let targets: Vec<T> = v(&vec![1.0 / c as f64; 3 * c]);
        let labels = [0_u32, 5, 16];
        let mut g = vec![s; 3 * c];
        let mut o = vec![s; 3];
        let cw_short: Vec<T> = v(&[1.0; 16]);
        let cw_neg: Vec<T> = v(&[-1.0; 17]);
        let ce = CrossEntropy::<T>::new().backend(b);
        let calls: [(&str, CrossEntropy<'_, T>, usize, &[u32]); 9] = [
            ("classes 0", ce, 0, &labels),
            ("not divisible", ce, 16, &labels),
            ("labels length", ce, c, &labels[..2]),
            (
                "class_weights length",
                ce.class_weights(&cw_short),
                c,
                &labels,
            ),
            ("class_weights value", ce.class_weights(&cw_neg), c, &labels),
            ("smoothing", ce.label_smoothing(-0.1), c, &labels),
            ("softcap", ce.softcap(f64::NAN), c, &labels),
            (
                "reduction",
                ce.reduction(Reduction::DivideBy(f64::NAN)),
                c,
                &labels,
            ),
            ("label value", ce, c, &[0, 17, 1]),
        ];
        for (what, ce, classes, labels) in calls {
            assert!(
                ce.loss_grad(&logits, classes, labels, &mut g).is_err(),
                "{what}"
            );
            assert!(
                ce.per_row(&logits, classes, labels, &mut o).is_err(),
                "{what}"
            );
            if what != "labels length" && what != "label value" {
                assert!(
                    ce.loss_grad_dense(&logits, classes, &targets, &mut g)
                        .is_err(),
                    "{what} dense"
                );
                assert!(
                    ce.per_row_dense(&logits, classes, &targets, &mut o)
                        .is_err(),
                    "{what} dense"
                );
            }
            assert!(untouched(&g) && untouched(&o), "{b:?} {what}");
        }
        // Wrong output lengths.
        let mut g_long = vec![s; 3 * c + 1];
        let mut o_short = vec![s; 2];
        assert!(ce.loss_grad(&logits, c, &labels, &mut g_long).is_err());
        assert!(ce.per_row(&logits, c, &labels, &mut o_short).is_err());
        assert!(ce
            .loss_grad_dense(&logits, c, &targets[1..], &mut g)
            .is_err());
        assert!(
            untouched(&g_long) && untouched(&o_short) && untouched(&g),
            "{b:?} output lengths"
        );

        let sm = Softmax::new().backend(b);
        assert!(sm.softmax(&logits, 16, &mut g).is_err());
        assert!(sm.log_softmax(&logits, c, &mut g_long).is_err());
        assert!(sm.log_sum_exp(&logits, c, &mut o_short).is_err());
        assert!(sm.log_sum_exp(&logits, 0, &mut o).is_err());
        assert!(
            untouched(&g) && untouched(&g_long) && untouched(&o_short) && untouched(&o),
            "{b:?} primitives"
        );
    }
}

#[test]
fn shape_and_option_errors_leave_outputs_untouched() {
    elementwise_untouched::<f32>();
    elementwise_untouched::<f64>();
    cross_entropy_untouched::<f32>();
    cross_entropy_untouched::<f64>();
}

// ---------------------------------------------------------------------------
// NaN / ±inf propagation.
// ---------------------------------------------------------------------------

fn squared_error_non_finite<T: Float>() {
    for b in backends() {
        let mse = SquaredError::new().backend(b);
        // NaN anywhere: NaN loss; the NaN element's gradient is NaN, the others stay finite.
        for n in [1_usize, 17, 33] {
            let mut x: Vec<T> = v(&vec![1.0; n]);
            let y: Vec<T> = v(&vec![0.0; n]);
            x[n - 1] = T::from_f64(NAN);
            let mut g = vec![T::ZERO; n];
            assert!(
                mse.loss_grad(&x, &y, &mut g).unwrap().to_f64().is_nan(),
                "{b:?} n={n}"
            );
            assert!(g[n - 1].to_f64().is_nan());
            assert!(g[..n - 1].iter().all(
                |v| v.to_f64() == 2.0 / n as f64 || (v.to_f64() - 2.0 / n as f64).abs() < 1e-6
            ));
        }
        // inf: +inf loss; inf - inf: NaN.
        let l = mse
            .loss(&v::<T>(&[INF, 1.0]), &v::<T>(&[0.0, 1.0]))
            .unwrap();
        assert_eq!(l.to_f64(), INF, "{b:?}");
        let l = mse
            .loss(&v::<T>(&[0.0, -INF]), &v::<T>(&[0.0, 1.0]))
            .unwrap();
        assert_eq!(l.to_f64(), INF, "{b:?}");
        let l = mse.loss(&v::<T>(&[INF]), &v::<T>(&[INF])).unwrap();
        assert!(l.to_f64().is_nan(), "{b:?}");
    }
}

fn bce_non_finite<T: Float>() {
    for b in backends() {
        // Probabilities: 0 and 1 are legal and clamped (log >= -100), never inf.
        let bce = BinaryCrossEntropy::new()
            .backend(b)
            .reduction(Reduction::Sum);
        assert_eq!(
            bce.loss(&v::<T>(&[0.0]), &v::<T>(&[1.0])).unwrap().to_f64(),
            100.0,
            "{b:?}"
        );
        assert_eq!(
            bce.loss(&v::<T>(&[1.0]), &v::<T>(&[0.0])).unwrap().to_f64(),
            100.0,
            "{b:?}"
        );
        assert_eq!(
            bce.loss(&v::<T>(&[1.0, 0.0]), &v::<T>(&[1.0, 0.0]))
                .unwrap()
                .to_f64(),
            0.0,
            "{b:?}"
        );
        // inf / NaN probabilities are errors, not NaN losses.
        for bad in [INF, -INF, NAN] {
            assert!(matches!(
                bce.loss(&v::<T>(&[0.5, bad]), &v::<T>(&[1.0, 1.0])),
                Err(LossError::ProbabilityOutOfRange {
                    what: "input",
                    index: 1,
                    ..
                })
            ));
        }
        // A NaN weight propagates.
        let w: Vec<T> = v(&[1.0, NAN]);
        assert!(BinaryCrossEntropy::new()
            .backend(b)
            .weight(&w)
            .loss(&v::<T>(&[0.5, 0.5]), &v::<T>(&[1.0, 1.0]))
            .unwrap()
            .to_f64()
            .is_nan());

        // Logits: every finite logit is fine, even ±MAX; ±inf and NaN follow the oracle
        // (PyTorch's formula: (1 - y) x - ln σ(x)).
        let bcel = BinaryCrossEntropyWithLogits::new()
            .backend(b)
            .reduction(Reduction::Sum);
        let big = T::from_f64(3e38).to_f64();
        for (x, y) in [(big, 1.0), (-big, 0.0), (40.0, 1.0), (-40.0, 0.0)] {
            let l = bcel.loss(&v::<T>(&[x]), &v::<T>(&[y])).unwrap().to_f64();
            assert!((0.0..1e-17).contains(&l), "{b:?} x={x} y={y}: {l:e}");
        }
        for x in [INF, -INF, NAN] {
            for y in [0.0, 0.5, 1.0] {
                let got = bcel.loss(&v::<T>(&[x]), &v::<T>(&[y])).unwrap().to_f64();
                let want = reference::binary_cross_entropy_with_logits(
                    &[x],
                    &[y],
                    None,
                    None,
                    Reduction::Sum,
                    EmptyMean::Nan,
                )
                .unwrap()
                .loss;
                assert!(
                    got == want || (got.is_nan() && want.is_nan()),
                    "{b:?} x={x} y={y}: {got} vs oracle {want}"
                );
                let mut g = [T::ZERO];
                bcel.loss_grad(&v::<T>(&[x]), &v::<T>(&[y]), &mut g)
                    .unwrap();
                let want_g = reference::binary_cross_entropy_with_logits(
                    &[x],
                    &[y],
                    None,
                    None,
                    Reduction::Sum,
                    EmptyMean::Nan,
                )
                .unwrap()
                .grad[0];
                let got_g = g[0].to_f64();
                assert!(
                    got_g == want_g || (got_g.is_nan() && want_g.is_nan()),
                    "{b:?} grad x={x} y={y}: {got_g} vs {want_g}"
                );
            }
        }
        // +inf logit, y = 0: infinitely wrong.
        assert_eq!(
            bcel.loss(&v::<T>(&[INF]), &v::<T>(&[0.0]))
                .unwrap()
                .to_f64(),
            INF
        );
    }
}

fn cross_entropy_non_finite<T: Float>() {
    for b in backends() {
        for c in [2_usize, 17, 33] {
            let ce = CrossEntropy::<T>::new()
                .backend(b)
                .reduction(Reduction::Sum);
            let base: Vec<f64> = (0..c).map(|i| (i % 5) as f64 * 0.5).collect();
            let row = |f: &dyn Fn(&mut Vec<f64>)| {
                let mut r = base.clone();
                f(&mut r);
                v::<T>(&r)
            };
            let mut g = vec![T::ZERO; c];
            // +inf logit anywhere: NaN loss and gradient.
            let x = row(&|r| r[c - 1] = INF);
            assert!(
                ce.loss_grad(&x, c, &[0_u32], &mut g)
                    .unwrap()
                    .to_f64()
                    .is_nan(),
                "{b:?} c={c} +inf"
            );
            assert!(g.iter().all(|v| v.to_f64().is_nan()));
            // NaN logit: NaN.
            let x = row(&|r| r[1] = NAN);
            assert!(
                ce.loss(&x, c, &[0_u32]).unwrap().to_f64().is_nan(),
                "{b:?} c={c} NaN"
            );
            // -inf target logit: +inf loss.
            let x = row(&|r| r[0] = -INF);
            assert_eq!(
                ce.loss(&x, c, &[0_u32]).unwrap().to_f64(),
                INF,
                "{b:?} c={c} -inf target"
            );
            // -inf elsewhere (a masked class): finite, the masked class gets gradient 0,
            // and the loss equals that of the row without the class.
            let x = row(&|r| r[c - 1] = -INF);
            let l = ce.loss_grad(&x, c, &[0_u32], &mut g).unwrap().to_f64();
            assert!(l.is_finite(), "{b:?} c={c} masked: {l}");
            assert_eq!(g[c - 1].to_f64(), 0.0);
            let without = CrossEntropy::<T>::new()
                .backend(b)
                .reduction(Reduction::Sum)
                .loss(&x[..c - 1], c - 1, &[0_u32])
                .unwrap();
            assert!(
                (l - without.to_f64()).abs() <= 1e-5 * l.abs().max(1.0),
                "{b:?} c={c}: {l} vs {without:?}"
            );
            // A row of only -inf: NaN (no class has probability).
            let x = row(&|r| r.iter_mut().for_each(|v| *v = -INF));
            assert!(
                ce.loss(&x, c, &[0_u32]).unwrap().to_f64().is_nan(),
                "{b:?} c={c} all -inf"
            );
            // NaN in an ignored row does not leak into the loss or the other rows.
            let mut two = row(&|_| {});
            two.extend(row(&|r| r.iter_mut().for_each(|v| *v = NAN)));
            let mut g2 = vec![T::ZERO; 2 * c];
            let l = CrossEntropy::<T>::new()
                .backend(b)
                .loss_grad(&two, c, &[1_i64, -100], &mut g2)
                .unwrap();
            assert!(l.to_f64().is_finite(), "{b:?} c={c} ignored NaN row: {l:?}");
            assert!(g2[c..].iter().all(|v| v.to_f64() == 0.0));
            assert!(g2[..c].iter().all(|v| v.to_f64().is_finite()));

            // Dense targets: a masked class with zero target probability is fine
            // (PyTorch would give NaN); with a positive probability, +inf.
            let x = row(&|r| r[c - 1] = -INF);
            let mut t = vec![1.0 / (c - 1) as f64; c];
            t[c - 1] = 0.0;
            let l = ce.loss_dense(&x, c, &v::<T>(&t)).unwrap().to_f64();
            assert!(l.is_finite(), "{b:?} c={c} dense masked: {l}");
            t[c - 1] = 0.5;
            assert_eq!(
                ce.loss_dense(&x, c, &v::<T>(&t)).unwrap().to_f64(),
                INF,
                "{b:?} c={c} dense"
            );
            // 3e38 (f32) logits are legal: shift invariance.
            let big: Vec<f64> = base
                .iter()
                .map(|v| v + T::from_f64(3e38).to_f64())
                .collect();
            let l_big = ce.loss(&v::<T>(&big), c, &[1_u32]).unwrap().to_f64();
            let want = reference::cross_entropy(
                &v::<T>(&big).iter().map(|v| v.to_f64()).collect::<Vec<_>>(),
                c,
                &[1],
                &CrossEntropyOptions {
                    reduction: Reduction::Sum,
                    ..Default::default()
                },
            )
            .unwrap()
            .loss;
            assert!(
                (l_big - want).abs() <= 1e-4 * want.abs().max(1e-30),
                "{b:?} c={c} 3e38 logits: {l_big} vs {want}"
            );
        }
    }
}

fn primitives_non_finite<T: Float>() {
    for b in backends() {
        let sm = Softmax::new().backend(b);
        let x: Vec<T> = v(&[
            0.0, -INF, 0.0, -INF, -INF, -INF, 1.0, INF, 0.0, NAN, 0.0, 1.0,
        ]);
        let mut lse = vec![T::ZERO; 4];
        sm.log_sum_exp(&x, 3, &mut lse).unwrap();
        let ln2 = std::f64::consts::LN_2;
        assert!((lse[0].to_f64() - ln2).abs() < 1e-6, "{b:?} {lse:?}");
        assert_eq!(lse[1].to_f64(), -INF, "{b:?} all -inf row");
        assert!(
            lse[2].to_f64().is_nan() && lse[3].to_f64().is_nan(),
            "{b:?} +inf / NaN rows"
        );
        let mut p = vec![T::ZERO; 12];
        sm.softmax(&x, 3, &mut p).unwrap();
        assert_eq!(p[1].to_f64(), 0.0, "{b:?} masked class");
        assert!((p[0].to_f64() - 0.5).abs() < 1e-6);
        assert!(p[3..].iter().all(|v| v.to_f64().is_nan()), "{b:?} {p:?}");
        let mut lp = vec![T::ZERO; 12];
        sm.log_softmax(&x, 3, &mut lp).unwrap();
        assert_eq!(lp[1].to_f64(), -INF, "{b:?}");
        assert!(lp[3..].iter().all(|v| v.to_f64().is_nan()), "{b:?} {lp:?}");
    }
    // The mergeable state.
    assert_eq!(LogSumExp::EMPTY.value(), -INF);
    let empty: [T; 0] = [];
    assert_eq!(LogSumExp::of(&empty).unwrap(), LogSumExp::EMPTY);
    assert_eq!(LogSumExp::of(&v::<T>(&[-INF, -INF])).unwrap().value(), -INF);
    assert!(LogSumExp::of(&v::<T>(&[0.0, INF]))
        .unwrap()
        .value()
        .is_nan());
    assert!(LogSumExp::of(&v::<T>(&[0.0, NAN]))
        .unwrap()
        .value()
        .is_nan());
    let a = LogSumExp::of(&v::<T>(&[0.0])).unwrap();
    assert!(a
        .merge(LogSumExp::of(&v::<T>(&[NAN])).unwrap())
        .value()
        .is_nan());
    assert_eq!(a.merge(LogSumExp::EMPTY), a);
}

#[test]
fn non_finite_propagation_f32() {
    squared_error_non_finite::<f32>();
    bce_non_finite::<f32>();
    cross_entropy_non_finite::<f32>();
    primitives_non_finite::<f32>();
}

#[test]
fn non_finite_propagation_f64() {
    squared_error_non_finite::<f64>();
    bce_non_finite::<f64>();
    cross_entropy_non_finite::<f64>();
    primitives_non_finite::<f64>();
}

/// The empty-mean policy: NaN (PyTorch) by default, 0 on request; the
/// gradient is all zeros either way.
#[test]
fn empty_mean_policies() {
    let empty: [f32; 0] = [];
    assert!(SquaredError::new().loss(&empty, &empty).unwrap().is_nan());
    assert_eq!(
        SquaredError::new()
            .empty_mean(EmptyMean::Zero)
            .loss(&empty, &empty)
            .unwrap(),
        0.0
    );
    let logits = [1.0_f32, 2.0, 3.0, 4.0];
    let mut g = [1.0_f32; 4];
    assert!(CrossEntropy::new()
        .loss_grad(&logits, 2, &[-100_i64, -100], &mut g)
        .unwrap()
        .is_nan());
    assert_eq!(g, [0.0; 4]);
    let mut g = [1.0_f32; 4];
    assert_eq!(
        CrossEntropy::new()
            .empty_mean(EmptyMean::Zero)
            .loss_grad(&logits, 2, &[-100_i64, -100], &mut g)
            .unwrap(),
        0.0
    );
    assert_eq!(g, [0.0; 4]);
}
