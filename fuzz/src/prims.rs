//! The softmax primitives (`Softmax::{log_sum_exp, log_softmax, softmax}`
//! and the free functions) and the mergeable `LogSumExp` state.

use loss_kernels::reference;
use loss_kernels::{Backend, LogSumExp, LossError, Softmax};

use crate::bytes::Bytes;
use crate::check::{self, outcome, Expect, Guarded, Snapshot};
use crate::elem::{widen, Elem};
use crate::gen::{self, Kind};
use crate::tol;

/// One decoded primitives case.
#[derive(Debug)]
pub struct Case<T: Elem> {
    pub classes: usize,
    pub logits: Vec<T>,
    pub backend: Backend,
    pub lse_len: usize,
    pub out_len: usize,
    pub pad: usize,
}

impl<T: Elem> Case<T> {
    /// Decodes a case.
    pub fn decode(b: &mut Bytes) -> Self {
        let (classes, rows) = crate::ce::shape(b);
        let mut len = rows * classes;
        if classes > 1 && b.u8() >= 252 {
            len += 1 + b.below(classes - 1);
        }
        let backend = gen::backend(b);
        let lse_len = gen::maybe_wrong_len(b, rows);
        let out_len = gen::maybe_wrong_len(b, len);
        let pad = gen::pad(b);
        let logits = gen::values(b, len, Kind::General);
        Case {
            classes,
            logits,
            backend,
            lse_len,
            out_len,
            pad,
        }
    }

    fn describe(&self) -> String {
        format!(
            "case: primitives {} classes={} len={} backend={:?} lse_len={} out_len={}\n  logits={}",
            T::NAME,
            self.classes,
            self.logits.len(),
            self.backend,
            self.lse_len,
            self.out_len,
            check::show(&self.logits)
        )
    }
}

/// `(m, ln S)` of a row, `f64`, over the finite part.
fn m_ln_s(z: &[f64]) -> (f64, f64) {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = z.iter().map(|&v| (v - m).exp()).sum();
    (m, s.ln())
}

/// Decodes a primitives case (type by the first byte) and checks it.
pub fn fuzz_primitives(data: &[u8]) {
    let mut b = Bytes::new(data);
    if b.bool() {
        run(&Case::<f32>::decode(&mut b));
    } else {
        run(&Case::<f64>::decode(&mut b));
    }
}

/// Checks the three primitives (and, for `Auto`, the free functions, which
/// must give bitwise the same results).
pub fn run<T: Elem>(c: &Case<T>) {
    let case = || c.describe();
    let x = widen(&c.logits);
    let snap = Snapshot::of(&[&c.logits]);
    let len = c.logits.len();
    let rows = if c.classes == 0 { 0 } else { len / c.classes };
    let sm = Softmax::new().backend(c.backend);
    let rel = tol::rel::<T>();
    let fl = tol::floor::<T>();
    let stats: Vec<(f64, f64)> = if c.classes > 0 && len % c.classes == 0 {
        x.chunks_exact(c.classes).map(m_ln_s).collect()
    } else {
        Vec::new()
    };
    type Prim<T> = fn(&Softmax, &[T], usize, &mut [T]) -> Result<(), LossError>;
    type Free<T> = fn(&[T], usize, &mut [T]) -> Result<(), LossError>;
    let prims: [(&str, Prim<T>, Free<T>, usize); 3] = [
        (
            "log_sum_exp",
            |s, l, c, o| s.log_sum_exp(l, c, o),
            loss_kernels::log_sum_exp::<T>,
            c.lse_len,
        ),
        (
            "log_softmax",
            |s, l, c, o| s.log_softmax(l, c, o),
            loss_kernels::log_softmax::<T>,
            c.out_len,
        ),
        (
            "softmax",
            |s, l, c, o| s.softmax(l, c, o),
            loss_kernels::softmax::<T>,
            c.out_len,
        ),
    ];
    for (k, (name, prim, free, out_len)) in prims.into_iter().enumerate() {
        let oracle = match k {
            0 => reference::log_sum_exp(&x, c.classes),
            1 => reference::log_softmax(&x, c.classes),
            _ => reference::softmax(&x, c.classes),
        };
        let exp = Expect {
            oracle_err: oracle.as_ref().err().cloned(),
            backend: c.backend,
        };
        let want_len = if k == 0 { rows } else { len };
        let allowed = exp.allowed(Some(("out", want_len, out_len)));
        let mut out = Guarded::<T>::new(out_len, c.pad);
        let r = prim(&sm, &c.logits, c.classes, out.out());
        out.check_canaries(name, &case);
        match outcome(name, r, &allowed, &case) {
            Ok(()) => {
                let want = oracle.as_ref().unwrap();
                for (i, (&g, &w)) in out.view().iter().zip(want).enumerate() {
                    let (r, j) = if k == 0 {
                        (i, 0)
                    } else {
                        (i / c.classes, i % c.classes)
                    };
                    let (m, ln_s) = stats[r];
                    // ln S is a log of a sum of T exps: an absolute error
                    // of a few eps_T even when ln S is tiny (the
                    // log-softmax of a dominant class is -ln S, a
                    // difference, as in PyTorch).
                    let lse_abs = 8.0 * T::EPS + tol::sum_rel(c.classes);
                    let t = match k {
                        0 => rel * (m.abs() + ln_s.abs()) + lse_abs + fl,
                        1 => rel * ((x[i] - m).abs() + ln_s.abs()) + lse_abs + fl,
                        _ => {
                            w.abs()
                                * (rel * ((x[i] - m).abs() + ln_s.abs()) + lse_abs + 8.0 * T::EPS)
                                + fl
                        }
                    };
                    let _ = j;
                    check::expect_close(name, Some(i), g, w, tol::sane(t), &case);
                }
            }
            Err(e) => {
                if !out.untouched() {
                    panic!("{name}: returned Err({e:?}) but wrote into out\n{}", case());
                }
            }
        }
        if c.backend == Backend::Auto {
            let mut out2 = Guarded::<T>::new(out_len, c.pad);
            let r2 = free(&c.logits, c.classes, out2.out());
            out2.check_canaries(name, &case);
            let _ = outcome(name, r2, &allowed, &case);
            let same = out
                .view()
                .iter()
                .zip(out2.view())
                .all(|(a, b)| a.bits() == b.bits());
            assert!(
                same,
                "free function {name} differs from Softmax::new().{name}\n{}",
                case()
            );
        }
    }
    snap.check(&[&c.logits], &case);
}

/// A `LogSumExp` merge case.
#[derive(Debug)]
pub struct MergeCase<T: Elem> {
    pub values: Vec<T>,
    /// Cut points (sorted, in `0..=len`).
    pub cuts: Vec<usize>,
    /// Order in which the parts are merged (a permutation), and whether
    /// as a left fold or a balanced tree.
    pub order: Vec<usize>,
    pub tree: bool,
    /// Arbitrary states merged with each other (robustness).
    pub raw: Vec<(f64, f64)>,
}

impl<T: Elem> MergeCase<T> {
    /// Decodes a case.
    pub fn decode(b: &mut Bytes) -> Self {
        let n = match b.u8() {
            0..=253 => gen::elem_len(b).min(1200),
            // Longer than the 32 768-value column leaf: `of` merges leaves.
            _ => 32_000 + b.below(40_000),
        };
        let parts = 1 + b.below(8);
        let mut cuts: Vec<usize> = (0..parts - 1).map(|_| b.below(n + 1)).collect();
        cuts.sort_unstable();
        let mut order: Vec<usize> = (0..parts).collect();
        for i in (1..parts).rev() {
            let j = b.below(i + 1);
            order.swap(i, j);
        }
        let tree = b.bool();
        let raw_specials = [
            0.0,
            1.0,
            -1.0,
            2.5,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MAX,
            f64::MIN_POSITIVE,
            -0.0,
            5e-324,
            700.0,
            -800.0,
            88.7,
        ];
        let raw = (0..b.below(4))
            .map(|_| {
                let mut v = || {
                    if b.bool() {
                        f64::from_bits(b.u64())
                    } else {
                        b.pick(&raw_specials)
                    }
                };
                (v(), v())
            })
            .collect();
        let values = gen::values(b, n, Kind::General);
        MergeCase {
            values,
            cuts,
            order,
            tree,
            raw,
        }
    }

    fn describe(&self) -> String {
        format!(
            "case: LogSumExp {} n={} cuts={:?} order={:?} tree={} raw={:?}\n  values={}",
            T::NAME,
            self.values.len(),
            self.cuts,
            self.order,
            self.tree,
            self.raw,
            check::show(&self.values)
        )
    }
}

fn merge_tree(states: &[LogSumExp]) -> LogSumExp {
    match states.len() {
        0 => LogSumExp::EMPTY,
        1 => states[0],
        n => merge_tree(&states[..n / 2]).merge(merge_tree(&states[n / 2..])),
    }
}

fn same_state(a: LogSumExp, b: LogSumExp) -> bool {
    let eq = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
    eq(a.max, b.max) && eq(a.sum, b.sum)
}

/// Decodes a merge case (type by the first byte) and checks it.
pub fn fuzz_merge(data: &[u8]) {
    let mut b = Bytes::new(data);
    if b.bool() {
        run_merge(&MergeCase::<f32>::decode(&mut b));
    } else {
        run_merge(&MergeCase::<f64>::decode(&mut b));
    }
}

/// Checks `LogSumExp::of` on the whole and on the parts, every merge
/// grouping, the `EMPTY` identity and commutativity, against the oracle.
pub fn run_merge<T: Elem>(c: &MergeCase<T>) {
    let case = || c.describe();
    let snap = Snapshot::of(&[&c.values]);
    let x = widen(&c.values);
    let n = x.len();
    let rel = tol::rel::<T>();
    let want = if n == 0 {
        f64::NEG_INFINITY
    } else {
        reference::log_sum_exp(&x, n).expect("one row")[0]
    };
    let (m, ln_s) = m_ln_s(&x);
    let t = tol::sane(
        rel * (m.abs() + ln_s.abs()) + 8.0 * T::EPS + tol::sum_rel(n) + tol::floor::<T>(),
    );

    let whole = outcome("LogSumExp::of", LogSumExp::of(&c.values), &[], &case).unwrap();
    check::expect_close_f64("LogSumExp::of(..).value()", whole.value(), want, t, &case);
    // The state's max is the exact max of the values (no NaN / +inf).
    if !x.iter().any(|v| v.is_nan() || *v == f64::INFINITY) {
        assert!(
            whole.max == m,
            "LogSumExp::of(..).max = {:e}, the values' max is {m:e}\n{}",
            whole.max,
            case()
        );
    }

    let mut bounds = vec![0];
    bounds.extend(&c.cuts);
    bounds.push(n);
    let parts: Vec<LogSumExp> = bounds
        .windows(2)
        .map(|w| {
            outcome(
                "LogSumExp::of",
                LogSumExp::of(&c.values[w[0]..w[1]]),
                &[],
                &case,
            )
            .unwrap()
        })
        .collect();
    let ordered: Vec<LogSumExp> = c.order.iter().map(|&i| parts[i]).collect();
    let merged = if c.tree {
        merge_tree(&ordered)
    } else {
        ordered.iter().fold(LogSumExp::EMPTY, |a, p| a.merge(*p))
    };
    check::expect_close_f64("merged parts .value()", merged.value(), want, t, &case);

    // Robustness on arbitrary states: no panic; merge commutes; EMPTY is
    // the identity of valid states.
    let mut states: Vec<LogSumExp> = c
        .raw
        .iter()
        .map(|&(max, sum)| LogSumExp { max, sum })
        .collect();
    states.push(whole);
    states.push(LogSumExp::EMPTY);
    for &a in &states {
        for &b in &states {
            let ab = a.merge(b);
            let ba = b.merge(a);
            let _ = ab.value();
            assert!(
                same_state(ab, ba),
                "merge does not commute: {a:?}.merge({b:?}) = {ab:?}, reverse {ba:?}\n{}",
                case()
            );
        }
        let valid = (a.max.is_finite() && a.sum.is_finite() && a.sum >= 0.0)
            || (a.max == f64::NEG_INFINITY && a.sum == 0.0);
        if valid {
            let e = a.merge(LogSumExp::EMPTY);
            assert!(same_state(e, a), "{a:?}.merge(EMPTY) = {e:?}\n{}", case());
        }
    }
    assert!(LogSumExp::EMPTY.value() == f64::NEG_INFINITY);
    snap.check(&[&c.values], &case);
}
