//! Softmax cross entropy in depth, on every backend, `f32` and `f64`,
//! against the `f64` oracle (tolerances: `tests/common/mod.rs`):
//!
//! - shapes: rows 0..=40 × classes 1..=300 (all of 1..=70, 120..=136,
//!   250..=260 and 300, every 10th class count in between; each class count
//!   with two row counts cycling through 0..=40, options cycling too), and
//!   the vocabularies 50 257 and 131 072 (rows longer than the column leaf
//!   are split across threads with the mergeable state);
//! - every option combination (class weights × `ignore_index` × smoothing ×
//!   z-loss × softcap × reduction × empty-mean policy), including a batch
//!   whose every row is ignored;
//! - adversarial logits: `-inf` masks, a target on `-inf` (loss `+inf`), an
//!   all `-inf` row (NaN), NaN and `+inf` (NaN), 1e30 and 3e38 logits (the
//!   finite truth, in `f32` too);
//! - a confidently correct row (loss ~1e-8 in `f32`) keeps its relative
//!   accuracy, loss and gradient (against finite differences);
//! - `LogSumExp` states of any split of a row merge into the whole row;
//! - `loss` and `loss_grad` return the same loss bits.
//!
//! Run with `cargo test --release --test cross_entropy`.

mod common;

use common::check::*;
use common::*;
use loss_kernels::reference::{self, CrossEntropyOptions};
use loss_kernels::{Backend, CrossEntropy, EmptyMean, LogSumExp, LongRowGradient, Reduction};

/// A case with default options; fields are overridden by the callers.
fn case(classes: usize, logits: Vec<f64>, labels: Vec<i64>, dense: Vec<f64>) -> CeCase {
    CeCase {
        classes,
        logits,
        labels,
        dense,
        weights: None,
        ignore: Some(-100),
        eps: 0.0,
        z_loss: 0.0,
        cap: None,
        red: Reduction::Mean,
        em: EmptyMean::Nan,
        label_kind: LabelKind::I64,
        strict: true,
    }
}

fn check_all(c: &CeCase) {
    for b in backends() {
        check_ce::<f32>(c, b, 0);
        check_ce::<f64>(c, b, 0);
    }
}

/// Random data for `rows × classes`: logits `N(0, scale²)`, labels (every
/// `ignore_every`-th row set to `ignore`), probability rows.
fn data(
    rng: &mut Rng,
    rows: usize,
    c: usize,
    scale: f64,
    ignore: Option<i64>,
    ignore_every: usize,
) -> CeCase {
    let logits = rng.normals(rows * c, scale);
    let labels = (0..rows)
        .map(|r| match ignore {
            Some(i) if r % ignore_every == ignore_every - 1 => i,
            _ => rng.below(c) as i64,
        })
        .collect();
    let dense = (0..rows).flat_map(|_| rng.simplex(c)).collect();
    let mut k = case(c, logits, labels, dense);
    k.ignore = ignore;
    k
}

// ============================================================ shapes

/// The class counts of the shape sweep.
fn class_counts() -> Vec<usize> {
    let mut v: Vec<usize> = (1..=70).chain(120..=136).chain(250..=260).collect();
    v.extend((80..=290).step_by(10));
    v.push(300);
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn rows_0_to_40_by_classes_1_to_300() {
    let mut rng = Rng(31);
    let counts = class_counts();
    for (k, &c) in counts.iter().enumerate() {
        for rows in [k % 41, (k * 13 + 7) % 41] {
            let ignore = match k % 3 {
                0 => Some(-100),
                1 => Some((k % c) as i64),
                _ => None,
            };
            let mut x = data(&mut rng, rows, c, 3.0, ignore, 4);
            x.weights = (k % 2 == 0).then(|| rng.uniforms(c, 0.1, 2.0));
            x.eps = [0.0, 0.1, 0.0, 1.0][k % 4];
            x.z_loss = [0.0, 1e-3][(k / 2) % 2];
            x.cap = [None, None, Some(7.0)][(k / 3) % 3];
            x.red = [Reduction::Mean, Reduction::Sum, Reduction::DivideBy(13.0)][k % 3];
            x.em = [EmptyMean::Nan, EmptyMean::Zero][(k / 5) % 2];
            x.label_kind = [LabelKind::I64, LabelKind::U32, LabelKind::Usize][(k / 7) % 3];
            if x.label_kind != LabelKind::I64 && x.labels.iter().any(|&l| l < 0) {
                x.label_kind = LabelKind::I64;
            }
            check_all(&x);
        }
    }
}

/// The large-vocabulary cases: default options, then weights + smoothing +
/// z-loss + softcap with `Sum`.
fn large_vocabulary_cases() -> Vec<CeCase> {
    let mut rng = Rng(32);
    let mut cases = Vec::new();
    for (rows, c) in [(3, 50_257), (2, 131_072)] {
        let mut x = data(&mut rng, rows, c, 4.0, Some(-100), 3);
        cases.push(x.clone());
        x.weights = Some(rng.uniforms(c, 0.1, 2.0));
        x.eps = 0.1;
        x.z_loss = 1e-4;
        x.cap = Some(30.0);
        x.red = Reduction::Sum;
        cases.push(x);
    }
    cases
}

/// Losses (reduced, per row, partial; labels and dense) of the large
/// vocabularies. Every row value is ~ln C or more, so this holds even with
/// the lse error of `large_vocabularies` below.
fn check_large_vocabulary_losses<T: Elem>(x: &CeCase, b: Backend) {
    let c = x.classes;
    let rows = x.labels.len();
    let (xt, dt): (Vec<T>, Vec<T>) = (to_t(&x.logits), to_t(&x.dense));
    let (xo, dto) = (to_f64(&xt), to_f64(&dt));
    let wt: Option<Vec<T>> = x.weights.as_deref().map(to_t);
    let wo: Option<Vec<f64>> = wt.as_deref().map(to_f64);
    let ce = x.loss::<T>(wt.as_deref(), b);
    let opts = x.opts(wo.as_deref());
    let rel = T::LOSS_REL + x.cap.map_or(0.0, |s| 8.0 * T::EPS * s);
    let ctx = format!("{b:?} {rows}x{c} eps={}", x.eps);
    let want = reference::cross_entropy(&xo, c, &x.labels, &opts).unwrap();
    check_rel::<T>(
        &format_args!("{ctx} loss"),
        ce.loss(&xt, c, &x.labels).unwrap().to_f64(),
        want.loss,
        rel,
    );
    let mut per = vec![T::ZERO; rows];
    ce.per_row(&xt, c, &x.labels, &mut per).unwrap();
    check_vec_rel::<T>(
        &format_args!("{ctx} per_row"),
        &to_f64(&per),
        &want.per_element,
        rel,
    );
    let p = ce.partial(&xt, c, &x.labels).unwrap();
    check_partial_sum::<T>(
        &format_args!("{ctx} partial"),
        p.sum,
        want.partial.sum,
        rel,
        &want.per_element,
    );
    let want = reference::cross_entropy_dense(&xo, c, &dto, &opts).unwrap();
    let got = ce.loss_dense(&xt, c, &dt).unwrap().to_f64();
    check_rel::<T>(&format_args!("{ctx} dense loss"), got, want.loss, rel);
    ce.per_row_dense(&xt, c, &dt, &mut per).unwrap();
    check_vec_rel::<T>(
        &format_args!("{ctx} dense per_row"),
        &to_f64(&per),
        &want.per_element,
        rel,
    );
}

#[test]
fn large_vocabulary_losses() {
    for x in large_vocabulary_cases() {
        for b in backends() {
            check_large_vocabulary_losses::<f32>(&x, b);
            check_large_vocabulary_losses::<f64>(&x, b);
        }
    }
}

/// Everything of the large vocabularies: gradients, softmax primitives.
#[test]
fn large_vocabularies() {
    for x in large_vocabulary_cases() {
        check_all(&x);
        for b in backends() {
            check_primitives::<f32>(&x.logits, x.classes, b, 0);
            check_primitives::<f64>(&x.logits, x.classes, b, 0);
        }
    }
}

// ============================================================ options

#[test]
fn every_option_combination() {
    let mut rng = Rng(33);
    let (rows, c) = (5, 37);
    let base = data(&mut rng, rows, c, 3.0, None, 1);
    let w = rng.uniforms(c, 0.1, 2.0);
    let mut n = 0;
    for weighted in [false, true] {
        for ignore in [Some(-100), Some(2), None] {
            for eps in [0.0, 0.1, 1.0] {
                for z_loss in [0.0, 1e-3] {
                    for cap in [None, Some(5.0)] {
                        for red in [Reduction::Mean, Reduction::Sum, Reduction::DivideBy(3.0)] {
                            for em in [EmptyMean::Nan, EmptyMean::Zero] {
                                let mut x = base.clone();
                                x.weights = weighted.then(|| w.clone());
                                x.ignore = ignore;
                                x.eps = eps;
                                x.z_loss = z_loss;
                                x.cap = cap;
                                x.red = red;
                                x.em = em;
                                // Row 1 ignored (-100 or class 2), row 3 has label 2.
                                x.labels = vec![0, ignore.unwrap_or(1), 36, 2, 17];
                                check_all(&x);
                                // Every row ignored: Mean is 0/0 (policy), gradient 0.
                                if let Some(i) = ignore {
                                    x.labels = vec![i; rows];
                                    check_all(&x);
                                    let ce = CrossEntropy::<f32>::new()
                                        .ignore_index(i)
                                        .reduction(red)
                                        .empty_mean(em)
                                        .label_smoothing(eps)
                                        .z_loss(z_loss);
                                    let mut g = vec![1.0_f32; rows * c];
                                    let l = ce
                                        .loss_grad(&to_t(&x.logits), c, &x.labels, &mut g)
                                        .unwrap();
                                    assert!(g.iter().all(|&v| v == 0.0), "all ignored: gradient 0");
                                    match (red, em) {
                                        (Reduction::Mean, EmptyMean::Nan) => assert!(l.is_nan()),
                                        _ => assert_eq!(l, 0.0),
                                    }
                                }
                                n += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(n, 2 * 3 * 3 * 2 * 2 * 3 * 2);
}

// ============================================================ adversarial logits

const INF: f64 = f64::INFINITY;
const NEG_INF: f64 = f64::NEG_INFINITY;
const NAN: f64 = f64::NAN;

/// (row, label): masks, a masked target, non-finite and huge logits.
fn adversarial_rows() -> Vec<(Vec<f64>, i64)> {
    vec![
        (vec![0.0, NEG_INF, 1.0, NEG_INF], 2),
        (vec![0.0, NEG_INF, 1.0, NEG_INF], 1),
        (vec![NEG_INF; 4], 0),
        (vec![0.0, NAN, 1.0, 2.0], 0),
        (vec![0.0, INF, 1.0, 2.0], 3),
        (vec![1e30, 0.0, -1e30, 5.0], 0),
        (vec![1e30, 0.0, -1e30, 5.0], 1),
        (vec![1e30, 1e30, 0.0, -1.0], 1),
        (vec![3e38, 3e38, 0.0, -1.0], 0),
        (vec![3e38, -3e38, 0.0, 1.0], 0),
        (vec![-3e38, 3e38, 3e38, 1.0], 2),
        (vec![3e38, 1.0, 2.0, NEG_INF], 1),
    ]
}

/// Runs every adversarial row (alone, and after an ordinary row) through
/// `check` with default options, then smoothing + z-loss + weights, then a
/// softcap too.
fn adversarial(rows: &[(Vec<f64>, i64)], check: impl Fn(&CeCase)) {
    let c = 4;
    for (row, label) in rows {
        for before in [false, true] {
            let mut logits = if before {
                vec![0.5, -0.5, 1.0, 0.0]
            } else {
                vec![]
            };
            logits.extend_from_slice(row);
            let mut labels = if before { vec![2] } else { vec![] };
            labels.push(*label);
            let dense: Vec<f64> = (0..logits.len() / c)
                .flat_map(|_| [0.1, 0.2, 0.3, 0.4])
                .collect();
            let mut x = case(c, logits, labels, dense);
            check(&x);
            x.eps = 0.1;
            x.z_loss = 1e-3;
            x.weights = Some(vec![0.5, 1.5, 1.0, 2.0]);
            x.red = Reduction::Sum;
            check(&x);
            x.cap = Some(10.0);
            check(&x);
        }
    }
}

#[test]
fn adversarial_logits_match_the_oracle() {
    adversarial(&adversarial_rows(), |x| {
        for b in backends() {
            check_ce_sparse::<f32>(x, b, 0);
            check_ce_sparse::<f64>(x, b, 0);
        }
    });
    // Dense targets: the rows whose terms stay below f32::MAX (the others: below).
    let rows: Vec<_> = adversarial_rows()
        .into_iter()
        .filter(|(r, _)| !(r.contains(&3e38) && r.contains(&-3e38)))
        .collect();
    adversarial(&rows, |x| {
        for b in backends() {
            check_ce_dense::<f32>(x, b, 0);
            check_ce_dense::<f64>(x, b, 0);
        }
    });
}

/// Rows longer than the column leaf (2^15 classes) take their log-sum-exp
/// in blocks of 16 KiB (each block's exact maximum, then its
/// exponentials, kept in the gradient of labelled rows and rescaled in
/// place): blocks of only `-inf`, a target alone in its block, targets on
/// block boundaries, NaN and `+inf` deep in a block, block maxima far
/// below the row's (their scale underflows), 3e38 logits; against the
/// oracle, labels and dense targets, default options and all options, and
/// the primitives.
#[test]
fn long_rows_with_adversarial_blocks() {
    let c = 3 * 16_384 + 17; // 49 169 classes: 13 f32 blocks, the last partial
    let mut rng = Rng(77);
    let ordinary = |rng: &mut Rng| -> Vec<f64> { (0..c).map(|_| rng.normal() * 3.0).collect() };
    let mut rows: Vec<(Vec<f64>, i64)> = Vec::new();
    // Only the target's block is finite; targets at block edges.
    for t in [0, 4095, 4096, 8191, c - 1] {
        let mut r = vec![NEG_INF; c];
        let b0 = t / 4096 * 4096;
        for (i, v) in r.iter_mut().enumerate().skip(b0).take(4096) {
            *v = (i % 7) as f64 - 3.0;
        }
        rows.push((r, t as i64));
    }
    // A target alone in an otherwise -inf block, other blocks finite.
    let mut r = ordinary(&mut rng);
    r[4096..8192].fill(NEG_INF);
    r[5000] = 2.0;
    rows.push((r, 5000));
    // A masked target (+inf loss); an all -inf row (NaN).
    let mut r = ordinary(&mut rng);
    r[123] = NEG_INF;
    rows.push((r, 123));
    rows.push((vec![NEG_INF; c], 7));
    // NaN and +inf deep in the row (NaN rows).
    let mut r = ordinary(&mut rng);
    r[40_000] = NAN;
    rows.push((r, 1));
    let mut r = ordinary(&mut rng);
    r[20_000] = INF;
    rows.push((r, 30_000));
    // Block maxima spread far below the row's: block k near -40 k.
    let r: Vec<f64> = (0..c)
        .map(|i| -40.0 * (i / 4096) as f64 + rng.normal())
        .collect();
    rows.push((r.clone(), 0));
    rows.push((r, 45_000));
    // A confidently correct row, and huge logits.
    let mut r = ordinary(&mut rng);
    r[33_000] = 60.0;
    rows.push((r, 33_000));
    let mut r = ordinary(&mut rng);
    r[10] = 3e38;
    r[30_000] = -3e38;
    r[48_000] = 3e38;
    rows.push((r, 48_000));
    for (row, label) in &rows {
        let dense: Vec<f64> = (0..c)
            .map(|i| if i % 1000 == 3 { 1.0 / 50.0 } else { 0.0 })
            .collect();
        let mut x = case(c, row.clone(), vec![*label], dense);
        let check = |x: &CeCase| {
            for b in backends() {
                check_ce_sparse::<f32>(x, b, 0);
                check_ce_sparse::<f64>(x, b, 0);
                if !(row.contains(&3e38) && row.contains(&-3e38)) {
                    check_ce_dense::<f32>(x, b, 0);
                    check_ce_dense::<f64>(x, b, 0);
                }
            }
        };
        check(&x);
        x.eps = 0.1;
        x.z_loss = 1e-3;
        x.weights = Some((0..c).map(|i| 0.5 + (i % 5) as f64 * 0.25).collect());
        x.red = Reduction::Sum;
        check(&x);
        for b in backends() {
            check_primitives::<f32>(row, c, b, 0);
            check_primitives::<f64>(row, c, b, 0);
            // The gradient does not depend on what the buffer held before
            // (the exponentials are stored in it first).
            let xf: Vec<f32> = row.iter().map(|&v| v as f32).collect();
            for ce in [
                CrossEntropy::<f32>::new().backend(b),
                CrossEntropy::<f32>::new().backend(b).label_smoothing(0.1),
            ] {
                let mut g_nan = vec![f32::NAN; c];
                let mut g_zero = vec![0.0_f32; c];
                let l1 = ce.loss_grad(&xf, c, &[*label], &mut g_nan).unwrap();
                let l2 = ce.loss_grad(&xf, c, &[*label], &mut g_zero).unwrap();
                assert_eq!(l1.to_bits(), l2.to_bits(), "{b:?} label {label}");
                let same = g_nan
                    .iter()
                    .zip(&g_zero)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{b:?} label {label}: the gradient depends on the buffer"
                );
            }
        }
    }
}

/// Dense targets on rows with logits of both signs near `f32::MAX`: the
/// row loss is finite in `f32` (e.g. [3e38, -3e38, 0, 1] with targets
/// [.1, .2, .3, .4] costs 3.3e38) but `lse - z = 6e38` overflows on the way.
#[test]
fn adversarial_logits_dense_near_overflow() {
    adversarial(&adversarial_rows(), |x| {
        for b in backends() {
            check_ce_dense::<f32>(x, b, 0);
            check_ce_dense::<f64>(x, b, 0);
        }
    });
}

/// The documented results, stated without the oracle.
#[test]
fn adversarial_logits_documented_results() {
    for b in backends() {
        let ce = CrossEntropy::<f32>::new()
            .backend(b)
            .reduction(Reduction::Sum);
        let row = |x: &[f32], label: u32| {
            let mut out = [0.0_f32];
            ce.per_row(x, x.len(), &[label], &mut out).unwrap();
            let mut g = vec![0.0_f32; x.len()];
            let l = ce.loss_grad(x, x.len(), &[label], &mut g).unwrap();
            let same = l.to_bits() == out[0].to_bits() || (l.is_nan() && out[0].is_nan());
            assert!(same, "{b:?} {x:?}: per_row {} vs loss_grad {l}", out[0]);
            (l, g)
        };
        let ninf = f32::NEG_INFINITY;
        // Masked classes are legal; a masked target costs +inf.
        let (l, g) = row(&[0.0, ninf, 0.0], 0);
        assert!(
            (l - std::f32::consts::LN_2).abs() < 1e-6 && g[1] == 0.0,
            "{b:?}: {l} {g:?}"
        );
        let (l, g) = row(&[0.0, ninf, 0.0], 1);
        assert_eq!(l, f32::INFINITY, "{b:?}: target on -inf");
        assert!(
            g.iter().all(|v| v.is_finite()),
            "{b:?}: gradient of a masked target {g:?}"
        );
        // An all -inf row, NaN and +inf: NaN.
        assert!(row(&[ninf, ninf], 0).0.is_nan(), "{b:?}: all -inf row");
        assert!(row(&[0.0, f32::NAN], 0).0.is_nan(), "{b:?}: NaN logit");
        assert!(
            row(&[0.0, f32::INFINITY], 0).0.is_nan(),
            "{b:?}: +inf logit"
        );
        // Huge logits: the finite truth.
        assert_eq!(row(&[1e30, 0.0], 0).0, 0.0, "{b:?}");
        assert_eq!(row(&[1e30, 0.0], 1).0, 1e30, "{b:?}");
        let (l, g) = row(&[3e38, 3e38, 0.0], 0);
        assert!(
            (l - std::f32::consts::LN_2).abs() < 1e-6,
            "{b:?}: [3e38, 3e38] gives {l}"
        );
        assert!(
            (g[0] + 0.5).abs() < 1e-6 && (g[1] - 0.5).abs() < 1e-6 && g[2] == 0.0,
            "{b:?}: {g:?}"
        );
        assert_eq!(row(&[3e38, -3e38], 0).0, 0.0, "{b:?}");
        assert_eq!(row(&[3e38, 1.0], 1).0, 3e38, "{b:?}");
        let (l, g) = row(&[-3e38, 3e38, 3e38], 2);
        assert!(
            (l - std::f32::consts::LN_2).abs() < 1e-6 && g[0] == 0.0,
            "{b:?}: {l} {g:?}"
        );
    }
}

// ============================================================ confidently correct

/// Central finite difference (Richardson-extrapolated) of `f` at `x`.
fn finite_differences(f: &dyn Fn(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let d = |h: f64| {
                let (mut a, mut b) = (x.to_vec(), x.to_vec());
                a[i] += h;
                b[i] -= h;
                (f(&a) - f(&b)) / (2.0 * h)
            };
            (4.0 * d(h / 2.0) - d(h)) / 3.0
        })
        .collect()
}

/// Logits `[m + 20, m, m, …]` with target 0: loss `ln(1 + (C-1) e^-20)`
/// ~ `(C-1) · 2.06e-9`. In `f32`, `lse - x_t` would be 0 (the spacing of
/// `f32` at 20 is 1.9e-6): the loss must keep a relative accuracy of 1e-5,
/// and so must every gradient element (checked against finite differences
/// of the oracle).
#[test]
fn confidently_correct_rows_keep_relative_accuracy() {
    for c in [2, 3, 10, 100, 1000, 50_257] {
        for shift in [0.0, 100.0, -37.5] {
            let mut logits = vec![shift; c];
            logits[0] = shift + 20.0;
            let want = ((c - 1) as f64 * (-20f64).exp()).ln_1p();
            let opts = CrossEntropyOptions {
                reduction: Reduction::Sum,
                ..Default::default()
            };
            let o = reference::cross_entropy(&logits, c, &[0], &opts).unwrap();
            // (The oracle adds C - 1 equal terms: ~C eps/4 relative error.)
            assert!(
                (o.loss - want).abs() <= 1e-11 * want,
                "oracle: {} vs {want}",
                o.loss
            );
            let fd = if c <= 100 {
                Some(finite_differences(
                    &|x| reference::cross_entropy(x, c, &[0], &opts).unwrap().loss,
                    &logits,
                    1e-3,
                ))
            } else {
                None
            };
            for b in backends() {
                let ce = CrossEntropy::<f32>::new()
                    .backend(b)
                    .reduction(Reduction::Sum);
                let x: Vec<f32> = to_t(&logits);
                let mut g = vec![0.0_f32; c];
                let l = ce.loss_grad(&x, c, &[0u32], &mut g).unwrap() as f64;
                let ctx = format!("{b:?} C={c} shift={shift}");
                assert!(
                    (l - want).abs() <= 1e-5 * want,
                    "{ctx}: loss {l:e}, want {want:e}"
                );
                let mut per = [0.0_f32];
                ce.per_row(&x, c, &[0u32], &mut per).unwrap();
                assert!(
                    (per[0] as f64 - want).abs() <= 1e-5 * want,
                    "{ctx}: per_row {:e}",
                    per[0]
                );
                // Every gradient element to 1e-5 relative: the oracle's
                // gradient, and finite differences where affordable.
                for (j, (&gj, &oj)) in g.iter().zip(&o.grad).enumerate() {
                    assert!(
                        (gj as f64 - oj).abs() <= 1e-5 * oj.abs(),
                        "{ctx}: grad[{j}] {gj:e} vs {oj:e}"
                    );
                }
                if let Some(fd) = &fd {
                    for (j, (&gj, &dj)) in g.iter().zip(fd).enumerate() {
                        assert!(
                            (gj as f64 - dj).abs() <= 1e-4 * dj.abs(),
                            "{ctx}: grad[{j}] {gj:e} vs fd {dj:e}"
                        );
                    }
                }
                // f64 at e^-40: 4.2e-18 per class.
                let x64: Vec<f64> = logits
                    .iter()
                    .map(|&v| if v == shift + 20.0 { shift + 40.0 } else { v })
                    .collect();
                let want64 = ((c - 1) as f64 * (-40f64).exp()).ln_1p();
                let ce64 = CrossEntropy::<f64>::new()
                    .backend(b)
                    .reduction(Reduction::Sum);
                let l64 = ce64.loss(&x64, c, &[0u32]).unwrap();
                assert!(
                    (l64 - want64).abs() <= 1e-12 * want64,
                    "{ctx} f64: {l64:e} vs {want64:e}"
                );
            }
            // The same row through the generic oracle comparison, with options
            // (dense targets: `cross_entropy_dense_keeps_relative_accuracy`
            // in tests/oracle.rs).
            let mut k = case(c, logits.clone(), vec![0], vec![0.0; c]);
            k.red = Reduction::Sum;
            for b in backends() {
                check_ce_sparse::<f32>(&k, b, 0);
                check_ce_sparse::<f64>(&k, b, 0);
            }
            k.weights = Some((0..c).map(|j| 0.5 + (j % 3) as f64).collect());
            k.z_loss = 1e-6;
            k.red = Reduction::Mean;
            for b in backends() {
                check_ce_sparse::<f32>(&k, b, 0);
                check_ce_sparse::<f64>(&k, b, 0);
            }
        }
    }
}

// ============================================================ LogSumExp merging

fn lse_tol(value: f64, max: f64, eps: f64) -> f64 {
    16.0 * eps * (value.abs() + max.abs() + 1.0)
}

fn check_merges<T: Elem>(row: &[f64]) {
    let xt: Vec<T> = to_t(row);
    let xo = to_f64(&xt);
    let want = reference::log_sum_exp(&xo, xo.len()).unwrap()[0];
    let max = xo.iter().fold(NEG_INF, |a, &v| a.max(v));
    let tol = lse_tol(want, max, T::EPS);
    let of = |a: usize, b: usize| LogSumExp::of(&xt[a..b]).unwrap();
    let whole = of(0, xt.len());
    assert!(
        (whole.value() - want).abs() <= tol,
        "[{}] whole: {} vs {want}",
        T::NAME,
        whole.value()
    );
    let n = xt.len();
    // Every split point into two.
    for k in 0..=n {
        let m = of(0, k).merge(of(k, n));
        assert!(
            (m.value() - want).abs() <= tol,
            "[{}] split at {k}: {} vs {want}",
            T::NAME,
            m.value()
        );
        assert_eq!(m.max, whole.max, "[{}] split at {k}: max", T::NAME);
        // Commutative up to rounding.
        let r = of(k, n).merge(of(0, k));
        assert!(
            (r.value() - want).abs() <= tol,
            "[{}] reversed split at {k}",
            T::NAME
        );
    }
    // Splits into three, both groupings.
    for i in (0..=n).step_by(7) {
        for j in (i..=n).step_by(5) {
            let (a, b, c) = (of(0, i), of(i, j), of(j, n));
            let left = a.merge(b).merge(c);
            let right = a.merge(b.merge(c));
            for (what, m) in [("(ab)c", left), ("a(bc)", right)] {
                assert!(
                    (m.value() - want).abs() <= tol,
                    "[{}] {what} at {i},{j}: {} vs {want}",
                    T::NAME,
                    m.value()
                );
            }
        }
    }
    // Merging is deterministic; EMPTY is its identity.
    let (a, b) = (of(0, n / 3), of(n / 3, n));
    assert_eq!(a.merge(b), a.merge(b));
    assert_eq!(LogSumExp::EMPTY.merge(whole), whole);
    assert_eq!(whole.merge(LogSumExp::EMPTY), whole);
    assert_eq!(of(0, 0), LogSumExp::EMPTY);
}

#[test]
fn log_sum_exp_states_of_any_split_merge_into_the_whole_row() {
    let mut rng = Rng(34);
    let mut rows = vec![
        rng.normals(300, 1.0),
        rng.normals(300, 30.0),
        (0..300).map(|i| i as f64 * 0.5 - 100.0).collect::<Vec<_>>(), // increasing: the max moves at every split
        (0..300).map(|i| 200.0 - i as f64 * 0.7).collect(),           // decreasing
    ];
    let mut masked = rng.normals(300, 5.0);
    for v in masked.iter_mut().step_by(3) {
        *v = NEG_INF; // parts that are all -inf merge as the empty state
    }
    masked[..40].fill(NEG_INF);
    rows.push(masked);
    for row in &rows {
        check_merges::<f32>(row);
        check_merges::<f64>(row);
    }
    // Non-finite parts: NaN poisons, +inf gives a NaN value, -inf only is -inf.
    let nan = LogSumExp::of(&[1.0_f64, f64::NAN]).unwrap();
    assert!(nan
        .merge(LogSumExp::of(&[2.0_f64]).unwrap())
        .value()
        .is_nan());
    assert!(LogSumExp::of(&[1.0_f64])
        .unwrap()
        .merge(nan)
        .value()
        .is_nan());
    let pinf = LogSumExp::of(&[f64::INFINITY]).unwrap();
    assert!(pinf
        .merge(LogSumExp::of(&[2.0_f64]).unwrap())
        .value()
        .is_nan());
    let minf = LogSumExp::of(&[NEG_INF, NEG_INF]).unwrap();
    assert_eq!(minf.value(), NEG_INF);
    assert_eq!(minf.merge(minf).value(), NEG_INF);
    let one = LogSumExp::of(&[3.0_f32]).unwrap();
    assert_eq!(minf.merge(one).value(), 3.0);
}

// ============================================================ determinism

/// `loss` and `loss_grad` (and `loss_dense` / `loss_grad_dense`) return the
/// same bits, for serial, row-parallel and column-split shapes.
#[test]
fn loss_and_loss_grad_return_identical_bits() {
    let mut rng = Rng(35);
    for (rows, c) in [(1, 7), (7, 300), (100, 1000), (1, 40_000), (2, 70_001)] {
        let x = data(&mut rng, rows, c, 3.0, Some(-100), 5);
        let w = rng.uniforms(c, 0.1, 2.0);
        for (eps, z, cap, weighted) in [(0.0, 0.0, None, false), (0.1, 1e-4, Some(20.0), true)] {
            for b in backends() {
                macro_rules! each {
                    ($T:ty) => {{
                        let (xt, dt, wt) =
                            (to_t::<$T>(&x.logits), to_t::<$T>(&x.dense), to_t::<$T>(&w));
                        let mut ce = CrossEntropy::<$T>::new()
                            .backend(b)
                            .label_smoothing(eps)
                            .z_loss(z);
                        if weighted {
                            ce = ce.class_weights(&wt);
                        }
                        if let Some(s) = cap {
                            ce = ce.softcap(s);
                        }
                        let mut g = vec![0.0 as $T; rows * c];
                        let ctx = format!("{b:?} {rows}x{c} eps={eps} [{}]", stringify!($T));
                        let l = ce.loss(&xt, c, &x.labels).unwrap();
                        let lg = ce.loss_grad(&xt, c, &x.labels, &mut g).unwrap();
                        assert_eq!(
                            l.to_bits(),
                            lg.to_bits(),
                            "{ctx}: loss {l} vs loss_grad {lg}"
                        );
                        let l = ce.loss_dense(&xt, c, &dt).unwrap();
                        let lg = ce.loss_grad_dense(&xt, c, &dt, &mut g).unwrap();
                        assert_eq!(l.to_bits(), lg.to_bits(), "{ctx}: dense loss {l} vs {lg}");
                    }};
                }
                each!(f32);
                each!(f64);
            }
        }
    }
}

/// Forcing each backend gives the same as `Backend::Auto` resolved.
#[test]
fn auto_is_the_detected_backend() {
    let mut rng = Rng(36);
    let x: Vec<f32> = to_t(&rng.normals(3 * 129, 2.0));
    let labels = [0u32, 64, 128];
    let auto = CrossEntropy::<f32>::new().loss(&x, 129, &labels).unwrap();
    let forced = CrossEntropy::<f32>::new()
        .backend(Backend::detected())
        .loss(&x, 129, &labels)
        .unwrap();
    assert_eq!(auto.to_bits(), forced.to_bits());
}

/// Long labelled rows whose gradient is larger than the caches (64 MiB and
/// up) take a pipelined form: each block's exponentials go to a scratch row
/// instead of the gradient, and each row's gradient is written with
/// streaming stores along the next row's pass 1 (leaves of 64 rows). Its
/// gradient must be bitwise the one of the same rows called one at a time
/// (whose gradient is small: exponentials kept in it, rescaled in place),
/// for adversarial rows, rows ignored or falling back to the plain sweep
/// between pipelined ones, leaf boundaries (342 rows), an unaligned
/// gradient, every option pass 2 reads, every backend, and 1, 2 and 3
/// threads. Also with the exponentials kept in the gradient instead
/// ([`LongRowGradient::InPlace`], the other form `Auto` may choose).
#[test]
fn pipelined_long_rows_equal_row_by_row() {
    let c = 3 * 16_384 + 17; // 49 169 classes: the last block partial
    let rows = 342; // 342 x 49 169 f32 = 67 MB: the streamed gradient
    let mut rng = Rng(2024);
    let mut logits: Vec<f32> = (0..rows * c).map(|_| (rng.normal() * 3.0) as f32).collect();
    let mut labels: Vec<i64> = (0..rows).map(|_| rng.below(c) as i64).collect();
    let row = |r: usize| r * c..(r + 1) * c;
    // Only the target's block finite (a block edge); a target alone in an
    // otherwise -inf block; a masked target (+inf); NaN and +inf (the plain
    // sweep); 3e38 logits; an ignored row; at and next to leaf boundaries.
    logits[row(1)].fill(f32::NEG_INFINITY);
    logits[c + 4096..c + 8192].fill(0.5);
    labels[1] = 4096;
    logits[2 * c + 8192..2 * c + 12_288].fill(f32::NEG_INFINITY);
    logits[2 * c + 9000] = 1.0;
    labels[2] = 9000;
    logits[3 * c + 77] = f32::NEG_INFINITY;
    labels[3] = 77;
    logits[63 * c + 40_000] = f32::NAN;
    logits[64 * c + 20_000] = f32::INFINITY;
    logits[65 * c + 10] = 3e38;
    logits[65 * c + 48_000] = 3e38;
    labels[65] = 48_000;
    labels[66] = -100;
    labels[127] = -100;
    labels[128] = (c - 1) as i64;
    let w: Vec<f32> = (0..c).map(|j| 0.5 + (j % 5) as f32 * 0.25).collect();
    // One element on: the gradient's rows are not 64-byte aligned.
    let mut g_buf = vec![0.0_f32; rows * c + 1];
    let mut g1 = vec![0.0_f32; c];
    for b in backends() {
        // Both forms of the streamed-size gradient, and `Auto`'s choice
        // (the first calls of the process: its trials run both).
        let options = [
            CrossEntropy::<f32>::new(),
            CrossEntropy::<f32>::new().long_row_gradient(LongRowGradient::Streamed),
            CrossEntropy::<f32>::new().long_row_gradient(LongRowGradient::InPlace),
            CrossEntropy::<f32>::new().class_weights(&w),
            CrossEntropy::<f32>::new()
                .class_weights(&w)
                .label_smoothing(0.1)
                .z_loss(1e-3),
        ];
        for ce in options {
            let ce = ce.backend(b).reduction(Reduction::Sum);
            let mut want = vec![0.0_f32; rows * c];
            let mut want_loss = 0.0_f64;
            for r in 0..rows {
                let l = ce
                    .loss_grad(&logits[row(r)], c, &labels[r..r + 1], &mut g1)
                    .unwrap();
                want_loss += f64::from(l);
                want[row(r)].copy_from_slice(&g1);
            }
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let g = &mut g_buf[1..];
                g.fill(f32::NAN);
                let loss = pool.install(|| ce.loss_grad(&logits, c, &labels, g).unwrap());
                // The row losses are summed in another order: NaN here.
                assert!(loss.is_nan() && want_loss.is_nan(), "{b:?}: {loss}");
                let bad = (0..rows * c).find(|&i| g[i].to_bits() != want[i].to_bits());
                if let Some(i) = bad {
                    panic!(
                        "{b:?}, {threads} threads: row {} class {}: {} vs {} row by row",
                        i / c,
                        i % c,
                        g[i],
                        want[i]
                    );
                }
            }
        }
    }
}
