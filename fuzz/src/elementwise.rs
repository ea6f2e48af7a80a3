//! The elementwise families: squared error, BCE on probabilities, BCE with
//! logits. One decoder, one driver; the family decides the oracle, the
//! kernel call and the per-element magnitudes of the tolerance.

use loss_kernels::reference::{self, Output};
use loss_kernels::{
    Backend, BinaryCrossEntropy, BinaryCrossEntropyWithLogits, EmptyMean, LossError, Partial,
    Reduction, SquaredError,
};

use crate::bytes::Bytes;
use crate::check::{self, outcome, Expect, Guarded, Snapshot};
use crate::elem::{widen, Elem};
use crate::gen::{self, Kind};
use crate::tol;

/// Which elementwise loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `SquaredError`
    SquaredError,
    /// `BinaryCrossEntropy`
    Bce,
    /// `BinaryCrossEntropyWithLogits`
    BceLogits,
}

/// One decoded case.
#[derive(Debug)]
pub struct Case<T: Elem> {
    pub family: Family,
    pub input: Vec<T>,
    pub target: Vec<T>,
    pub weight: Option<Vec<T>>,
    pub pos_weight: Option<Vec<T>>,
    pub reduction: Reduction,
    pub empty_mean: EmptyMean,
    pub backend: Backend,
    pub grad_len: usize,
    pub out_len: usize,
    pub pad: usize,
}

impl<T: Elem> Case<T> {
    /// Decodes a case of `family`.
    pub fn decode(family: Family, b: &mut Bytes) -> Self {
        let n = gen::elem_len(b);
        let target_len = gen::maybe_wrong_len(b, n);
        let reduction = gen::reduction(b);
        let empty_mean = gen::empty_mean(b);
        let backend = gen::backend(b);
        let grad_len = gen::maybe_wrong_len(b, n);
        let out_len = gen::maybe_wrong_len(b, n);
        let pad = gen::pad(b);
        let has_weight = family != Family::SquaredError && b.u8() >= 160;
        let weight_len = gen::maybe_wrong_len(b, n);
        let pos_weight_len = if family == Family::BceLogits && b.u8() >= 160 {
            Some(match b.u8() {
                0..=63 => 1,
                64..=239 => {
                    // A divisor of n (or any small length when n == 0).
                    let divisors: Vec<usize> = (1..=n.min(600)).filter(|d| n % d == 0).collect();
                    if divisors.is_empty() {
                        1 + b.below(4)
                    } else {
                        b.pick(&divisors)
                    }
                }
                240..=247 => 0,
                _ => 1 + b.below(n + 2),
            })
        } else {
            None
        };
        let input_kind = if family == Family::Bce {
            Kind::Prob
        } else {
            Kind::General
        };
        let target_kind = if family == Family::SquaredError {
            Kind::General
        } else if family == Family::Bce || b.u8() < 224 {
            Kind::Prob
        } else {
            Kind::General // BCE with logits accepts any target
        };
        let input = gen::values(b, n, input_kind);
        let target = gen::values(b, target_len, target_kind);
        // BCE's per-element weight is not validated: any value.
        let weight = has_weight.then(|| {
            let kind = if b.u8() < 224 {
                Kind::NonNeg
            } else {
                Kind::General
            };
            gen::values(b, weight_len, kind)
        });
        let pos_weight = pos_weight_len.map(|p| gen::values(b, p, Kind::NonNeg));
        Case {
            family,
            input,
            target,
            weight,
            pos_weight,
            reduction,
            empty_mean,
            backend,
            grad_len,
            out_len,
            pad,
        }
    }

    fn describe(&self) -> String {
        format!(
            "case: {:?} {} n={} target_len={} reduction={:?} empty_mean={:?} backend={:?} grad_len={} out_len={}\n  input={}\n  target={}\n  weight={}\n  pos_weight={}",
            self.family,
            T::NAME,
            self.input.len(),
            self.target.len(),
            self.reduction,
            self.empty_mean,
            self.backend,
            self.grad_len,
            self.out_len,
            check::show(&self.input),
            check::show(&self.target),
            self.weight.as_deref().map_or("None".into(), check::show),
            self.pos_weight.as_deref().map_or("None".into(), check::show),
        )
    }

    fn oracle(&self) -> Result<Output, LossError> {
        let x = widen(&self.input);
        let y = widen(&self.target);
        let w = self.weight.as_deref().map(widen);
        let pw = self.pos_weight.as_deref().map(widen);
        match self.family {
            Family::SquaredError => {
                reference::squared_error(&x, &y, self.reduction, self.empty_mean)
            }
            Family::Bce => reference::binary_cross_entropy(
                &x,
                &y,
                w.as_deref(),
                self.reduction,
                self.empty_mean,
            ),
            Family::BceLogits => reference::binary_cross_entropy_with_logits(
                &x,
                &y,
                w.as_deref(),
                pw.as_deref(),
                self.reduction,
                self.empty_mean,
            ),
        }
    }

    /// Per element: (loss-term magnitude, gradient magnitude before the
    /// reduction's scale, whether an intermediate overflows `T`, the factor
    /// of the underflow floor: an intermediate that underflows `T` (a
    /// `softplus` of 1e-46 in `f32`) is then multiplied by the weights).
    fn magnitudes(&self) -> Vec<(f64, f64, bool, f64)> {
        let n = self.input.len();
        let pw = self.pos_weight.as_deref().map(widen);
        (0..n)
            .map(|i| {
                let x = self.input[i].to_f64();
                let y = self.target[i].to_f64();
                let w = self.weight.as_ref().map_or(1.0, |w| w[i].to_f64());
                match self.family {
                    Family::SquaredError => {
                        let d = x - y;
                        (
                            d * d,
                            2.0 * d.abs(),
                            tol::overflows_t::<T>(d) || tol::overflows_t::<T>(d * d),
                            1.0,
                        )
                    }
                    Family::Bce => {
                        let l1 = x.ln().max(-100.0);
                        let l0 = (-x).ln_1p().max(-100.0);
                        let core = (y * l1).abs() + ((1.0 - y) * l0).abs();
                        let denom = (x * (1.0 - x)).max(1e-12_f32 as f64);
                        let g = (x.abs() + y.abs()) / denom;
                        let ovf = tol::overflows_t::<T>(w * core) || tol::overflows_t::<T>(w * g);
                        (w.abs() * core, w.abs() * g, ovf, 1.0 + w.abs())
                    }
                    Family::BceLogits => {
                        let p = pw.as_ref().map_or(1.0, |p| p[i % p.len()]);
                        let mut lw_mag = 1.0 + ((p - 1.0) * y).abs();
                        if crate::known::BCE_LOGITS_LW_CANCELS {
                            lw_mag = lw_mag.max((1.0 - y).abs() + (p * y).abs());
                        }
                        let sp = (-x).max(0.0) + (-x.abs()).exp().ln_1p();
                        let sig = if x <= 0.0 {
                            1.0 / (1.0 + x.exp())
                        } else {
                            (-x).exp() / (1.0 + (-x).exp())
                        };
                        let a = ((1.0 - y) * x).abs();
                        let core = a + lw_mag * sp;
                        let g = (1.0 - y).abs() + lw_mag * sig;
                        // `core` and `g` themselves too: with `w = 0` their
                        // products are NaN, which compares as no overflow,
                        // while the oracle's `0 · inf` is NaN and the
                        // kernel's exact `±0` (w meets the coefficients
                        // first) is right (session 5, CI seed 1, f64:
                        // x = -MAX, y = 1 + 2^-52, w = -0).
                        let ovf = tol::overflows_t::<T>(a)
                            || tol::overflows_t::<T>(lw_mag * sp)
                            || tol::overflows_t::<T>(core)
                            || tol::overflows_t::<T>(g)
                            || tol::overflows_t::<T>(w * core)
                            || tol::overflows_t::<T>(w * g)
                            || tol::overflows_t::<T>((p - 1.0) * y)
                            // The gradient is formed as σ(|x|)·(a·e^-|x| + b),
                            // {a, b} = {1 - y, -pw y}: the sum overflows when
                            // |1 - y| + |pw y| does (targets beyond MAX / 2).
                            || tol::overflows_t::<T>((1.0 - y).abs() + (p * y).abs());
                        (
                            w.abs() * core,
                            w.abs() * g,
                            ovf,
                            1.0 + w.abs() * (1.0 + lw_mag),
                        )
                    }
                }
            })
            .collect()
    }
}

/// The four methods of one family, on one configured loss value.
trait Calls<T: Elem> {
    fn loss(&self, c: &Case<T>) -> Result<T, LossError>;
    fn loss_grad(&self, c: &Case<T>, grad: &mut [T]) -> Result<T, LossError>;
    fn per_element(&self, c: &Case<T>, out: &mut [T]) -> Result<(), LossError>;
    fn partial(&self, c: &Case<T>) -> Result<Partial, LossError>;
}

impl<T: Elem> Calls<T> for SquaredError {
    fn loss(&self, c: &Case<T>) -> Result<T, LossError> {
        SquaredError::loss(self, &c.input, &c.target)
    }
    fn loss_grad(&self, c: &Case<T>, grad: &mut [T]) -> Result<T, LossError> {
        SquaredError::loss_grad(self, &c.input, &c.target, grad)
    }
    fn per_element(&self, c: &Case<T>, out: &mut [T]) -> Result<(), LossError> {
        SquaredError::per_element(self, &c.input, &c.target, out)
    }
    fn partial(&self, c: &Case<T>) -> Result<Partial, LossError> {
        SquaredError::partial(self, &c.input, &c.target)
    }
}

impl<T: Elem> Calls<T> for BinaryCrossEntropy<'_, T> {
    fn loss(&self, c: &Case<T>) -> Result<T, LossError> {
        BinaryCrossEntropy::loss(self, &c.input, &c.target)
    }
    fn loss_grad(&self, c: &Case<T>, grad: &mut [T]) -> Result<T, LossError> {
        BinaryCrossEntropy::loss_grad(self, &c.input, &c.target, grad)
    }
    fn per_element(&self, c: &Case<T>, out: &mut [T]) -> Result<(), LossError> {
        BinaryCrossEntropy::per_element(self, &c.input, &c.target, out)
    }
    fn partial(&self, c: &Case<T>) -> Result<Partial, LossError> {
        BinaryCrossEntropy::partial(self, &c.input, &c.target)
    }
}

impl<T: Elem> Calls<T> for BinaryCrossEntropyWithLogits<'_, T> {
    fn loss(&self, c: &Case<T>) -> Result<T, LossError> {
        BinaryCrossEntropyWithLogits::loss(self, &c.input, &c.target)
    }
    fn loss_grad(&self, c: &Case<T>, grad: &mut [T]) -> Result<T, LossError> {
        BinaryCrossEntropyWithLogits::loss_grad(self, &c.input, &c.target, grad)
    }
    fn per_element(&self, c: &Case<T>, out: &mut [T]) -> Result<(), LossError> {
        BinaryCrossEntropyWithLogits::per_element(self, &c.input, &c.target, out)
    }
    fn partial(&self, c: &Case<T>) -> Result<Partial, LossError> {
        BinaryCrossEntropyWithLogits::partial(self, &c.input, &c.target)
    }
}

/// Decodes a case of `family` (type chosen by the first byte) and checks it.
pub fn fuzz(family: Family, data: &[u8]) {
    let mut b = Bytes::new(data);
    if b.bool() {
        run(&Case::<f32>::decode(family, &mut b));
    } else {
        run(&Case::<f64>::decode(family, &mut b));
    }
}

/// Runs every method of the case's family and checks it against the oracle.
pub fn run<T: Elem>(c: &Case<T>) {
    match c.family {
        Family::SquaredError => {
            let l = SquaredError::new()
                .reduction(c.reduction)
                .empty_mean(c.empty_mean)
                .backend(c.backend);
            drive(c, &l);
        }
        Family::Bce => {
            let mut l = BinaryCrossEntropy::new()
                .reduction(c.reduction)
                .empty_mean(c.empty_mean)
                .backend(c.backend);
            if let Some(w) = &c.weight {
                l = l.weight(w);
            }
            drive(c, &l);
        }
        Family::BceLogits => {
            let mut l = BinaryCrossEntropyWithLogits::new()
                .reduction(c.reduction)
                .empty_mean(c.empty_mean)
                .backend(c.backend);
            if let Some(w) = &c.weight {
                l = l.weight(w);
            }
            if let Some(pw) = &c.pos_weight {
                l = l.pos_weight(pw);
            }
            drive(c, &l);
        }
    }
}

fn drive<T: Elem, L: Calls<T>>(c: &Case<T>, l: &L) {
    let case = || c.describe();
    let oracle = c.oracle();
    let exp = Expect {
        oracle_err: oracle.as_ref().err().cloned(),
        backend: c.backend,
    };
    let mut inputs: Vec<&[T]> = vec![&c.input, &c.target];
    if let Some(w) = &c.weight {
        inputs.push(w);
    }
    if let Some(pw) = &c.pos_weight {
        inputs.push(pw);
    }
    let snap = Snapshot::of(&inputs);
    let n = c.input.len();
    // An error found in the pass (a probability out of range) may leave
    // partial results in the output buffers; any other error must not
    // touch them.
    let may_write = |e: &LossError| matches!(e, LossError::ProbabilityOutOfRange { .. });

    let ok = oracle.as_ref().ok();
    let mags = ok.map(|_| c.magnitudes());
    let rel = tol::rel::<T>();
    let fl = tol::floor::<T>();
    let any_ovf = mags.as_ref().is_some_and(|m| m.iter().any(|e| e.2));
    let sum_mag: f64 = mags.as_ref().map_or(0.0, |m| m.iter().map(|e| e.0).sum());
    let divisor = match c.reduction {
        Reduction::Mean => n as f64,
        Reduction::Sum => 1.0,
        Reduction::DivideBy(d) => d,
    };
    let scale = if divisor == 0.0 { 0.0 } else { 1.0 / divisor };
    let sum_rel = rel + tol::sum_rel(n);
    let sum_floor: f64 = mags.as_ref().map_or(0.0, |m| m.iter().map(|e| e.3).sum());
    let loss_tol = (sum_rel * sum_mag + fl * sum_floor) * scale.abs() + fl;
    let skip_grad = tol::scale_overflows::<T>(scale);
    let check_loss = |call: &str, got: T, o: &Output| {
        if !any_ovf {
            check::expect_close_scaled(call, None, got, o.loss, loss_tol, false, &case);
        }
    };

    // loss
    let allowed = exp.allowed(None);
    if let Ok(v) = outcome("loss", l.loss(c), &allowed, &case) {
        check_loss("loss", v, ok.unwrap());
    }

    // loss_grad
    let mut grad = Guarded::<T>::new(c.grad_len, c.pad);
    let allowed = exp.allowed(Some(("grad", n, c.grad_len)));
    let r = l.loss_grad(c, grad.out());
    grad.check_canaries("loss_grad", &case);
    match outcome("loss_grad", r, &allowed, &case) {
        Ok(v) => {
            let o = ok.unwrap();
            check_loss("loss_grad", v, o);
            let m = mags.as_ref().unwrap();
            for (i, (&g, &want)) in grad.view().iter().zip(&o.grad).enumerate() {
                if !m[i].2 && !skip_grad {
                    let t = (rel * m[i].1 + fl * m[i].3) * scale.abs() + fl;
                    check::expect_close_scaled("loss_grad grad", Some(i), g, want, t, false, &case);
                }
            }
        }
        Err(e) => {
            if !may_write(&e) && !grad.untouched() {
                panic!(
                    "loss_grad: returned Err({e:?}) but wrote into grad\n{}",
                    case()
                );
            }
        }
    }

    // per_element
    let mut out = Guarded::<T>::new(c.out_len, c.pad);
    let allowed = exp.allowed(Some(("out", n, c.out_len)));
    let r = l.per_element(c, out.out());
    out.check_canaries("per_element", &case);
    match outcome("per_element", r, &allowed, &case) {
        Ok(()) => {
            let o = ok.unwrap();
            let m = mags.as_ref().unwrap();
            for (i, (&g, &want)) in out.view().iter().zip(&o.per_element).enumerate() {
                if !m[i].2 {
                    let t = tol::sane(rel * m[i].0 + fl * m[i].3);
                    check::expect_close("per_element", Some(i), g, want, t, &case);
                }
            }
        }
        Err(e) => {
            if !may_write(&e) && !out.untouched() {
                panic!(
                    "per_element: returned Err({e:?}) but wrote into out\n{}",
                    case()
                );
            }
        }
    }

    // partial
    let allowed = exp.allowed(None);
    if let Ok(p) = outcome("partial", l.partial(c), &allowed, &case) {
        let o = ok.unwrap();
        if !any_ovf {
            let t = tol::sane(sum_rel * sum_mag + fl * sum_floor);
            // An `f64` result: the near-overflow limit applies (see `ce.rs`).
            check::expect_close::<f64>("partial.sum", None, p.sum, o.partial.sum, t, &case);
        }
        check::expect_close_f64("partial.weight", p.weight, o.partial.weight, 0.0, &case);
    }

    snap.check(&inputs, &case);
}

#[cfg(test)]
mod dump {
    /// Prints element `FUZZ_INDEX` of the decoded case of an input file
    /// (`FUZZ_INPUT`; `FUZZ_FAMILY` = `mse`, `bce` or `bce_logits`), exactly
    /// (`{:e}`): `cargo test --release -- --ignored --nocapture dump_elem_case`.
    #[test]
    #[ignore]
    fn dump_elem_case() {
        let Ok(path) = std::env::var("FUZZ_INPUT") else {
            return;
        };
        let data = std::fs::read(path).expect("FUZZ_INPUT");
        let i: usize = std::env::var("FUZZ_INDEX").map_or(0, |v| v.parse().expect("FUZZ_INDEX"));
        let family = match std::env::var("FUZZ_FAMILY").as_deref() {
            Ok("mse") => super::Family::SquaredError,
            Ok("bce") => super::Family::Bce,
            _ => super::Family::BceLogits,
        };
        fn show<T: crate::elem::Elem>(c: &super::Case<T>, i: usize) {
            let at = |v: &Option<Vec<T>>| v.as_ref().map(|v| v[i % v.len()].to_f64());
            println!(
                "n={} reduction={:?} backend={:?}\n x[{i}]={:e} y={:e} w={:?} pw={:?}",
                c.input.len(),
                c.reduction,
                c.backend,
                c.input[i].to_f64(),
                c.target[i].to_f64(),
                at(&c.weight),
                at(&c.pos_weight)
            );
        }
        let mut b = crate::bytes::Bytes::new(&data);
        if b.bool() {
            show(&super::Case::<f32>::decode(family, &mut b), i);
        } else {
            show(&super::Case::<f64>::decode(family, &mut b), i);
        }
    }
}
