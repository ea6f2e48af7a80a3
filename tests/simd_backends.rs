//! Every SIMD backend this CPU has, forced through the public
//! `.backend(Backend::X)` option, against plain `f64` computations
//! (`loss_kernels::reference`) of squared error, BCE and BCE with logits:
//!
//! - all lengths `0..=300` at buffer offsets `0..=3` (sub-slices that start
//!   misaligned, so every tail length and alignment of every vector width
//!   is hit), in `f32` and `f64`;
//! - random large lengths (parallel split included);
//! - adversarial values: ±inf, NaN, subnormals, ±1e19, logits ±88.7 and
//!   beyond, probabilities 0, 1, 1e-45, 2^-24 and 1 − 2^-24;
//! - the accuracy claim: the `f32` MSE of 2^24 elements is within 2 ulp of
//!   the `f64` value (2^26 in an `#[ignore]`d test: a few seconds in
//!   release, run with `cargo test --release -- --ignored`).
//!
//! A backend the CPU lacks is skipped with a message, never failed.
//!
//! Tolerances are in ulp of the element type, relative to the reference
//! value rounded to it: per-element squared error 2 ulp (two roundings),
//! BCE terms 8 ulp (a sum of non-negative parts, each from a ≤ 2 ulp
//! `exp`/`ln`/`log1p` and a few products), gradients 8 ulp of the magnitude
//! of their parts (BCE-with-logits gradients are a difference of two
//! non-negative parts), reduced losses 4 ulp (MSE) and 8 ulp (BCE).

use loss_kernels::reference::{self, Output};
use loss_kernels::{
    Backend, BinaryCrossEntropy, BinaryCrossEntropyWithLogits, EmptyMean, Float, LossError,
    Reduction, SquaredError,
};

/// The concrete backends; those this CPU lacks are reported and skipped.
fn backends() -> Vec<Backend> {
    let mut out = Vec::new();
    for b in [
        Backend::Scalar,
        Backend::Portable,
        Backend::Avx2Fma,
        Backend::Avx512,
    ] {
        if b.is_available() {
            out.push(b);
        } else {
            println!("skipping backend {b:?}: not available on this CPU/build");
        }
    }
    out
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Roughly normal with standard deviation `sd` (sum of uniforms).
    fn normal(&mut self, sd: f64) -> f64 {
        let s: f64 = (0..4).map(|_| self.unit()).sum::<f64>() - 2.0;
        s * sd * 3f64.sqrt()
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// An element type under test.
trait Elem: Float {
    const NAME: &'static str;
    /// Unit roundoff scale: 2^-23 for `f32`, 2^-52 for `f64`.
    const EPS: f64;
    /// Smallest positive subnormal.
    const TINY: f64;
    const MAX: f64;
    fn round(x: f64) -> f64 {
        Self::from_f64(x).to_f64()
    }
}

impl Elem for f32 {
    const NAME: &'static str = "f32";
    const EPS: f64 = f32::EPSILON as f64;
    const TINY: f64 = 1.401_298_464_324_817e-45;
    const MAX: f64 = f32::MAX as f64;
}

impl Elem for f64 {
    const NAME: &'static str = "f64";
    const EPS: f64 = f64::EPSILON;
    const TINY: f64 = 5e-324;
    const MAX: f64 = f64::MAX;
}

/// One ulp of `x` rounded to `T` (subnormal ulp at the bottom).
fn ulp<T: Elem>(x: f64) -> f64 {
    let a = T::round(x).abs().min(T::MAX);
    if a == 0.0 {
        return T::TINY;
    }
    (2f64.powi(a.log2().floor() as i32) * T::EPS).max(T::TINY)
}

/// Whether `got` is within `ulps` ulp of `want` (plus `ulps` ulp of
/// `scale`, the magnitude of the parts `want` is a difference of).
/// NaN must be NaN; an infinite or overflowing `want` must be the same
/// infinity; `got = ±inf` is accepted for a `want` within `ulps` ulp of
/// overflow.
fn close<T: Elem>(got: T, want: f64, scale: f64, ulps: f64) -> bool {
    let g = got.to_f64();
    if want.is_nan() || g.is_nan() {
        return want.is_nan() && g.is_nan();
    }
    let w = T::round(want);
    if w.is_infinite() {
        return g == w;
    }
    if g.is_infinite() {
        return g.signum() == want.signum() && want.abs() >= T::MAX * (1.0 - ulps * T::EPS);
    }
    (g - want).abs() <= ulps * (ulp::<T>(want) + ulp::<T>(scale))
}

/// `v` placed at offset `off` of a buffer with `off` leading and 3 trailing
/// guard elements, so the slice starts misaligned.
struct Placed<T> {
    buf: Vec<T>,
    off: usize,
    len: usize,
}

impl<T: Elem> Placed<T> {
    fn new(v: &[f64], off: usize) -> Self {
        let mut buf = vec![T::from_f64(7.0); off + v.len() + 3];
        for (b, &x) in buf[off..].iter_mut().zip(v) {
            *b = T::from_f64(x);
        }
        Placed {
            buf,
            off,
            len: v.len(),
        }
    }
    /// A zeroed output buffer with guards of 7.
    fn out(len: usize, off: usize) -> Self {
        Self::new(&vec![0.0; len], off)
    }
    fn get(&self) -> &[T] {
        &self.buf[self.off..self.off + self.len]
    }
    fn get_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.off..self.off + self.len]
    }
    /// The values as `f64` (exact widening).
    fn values(&self) -> Vec<f64> {
        self.get().iter().map(|v| v.to_f64()).collect()
    }
    fn guards_intact(&self) -> bool {
        let seven = T::from_f64(7.0);
        self.buf[..self.off]
            .iter()
            .chain(&self.buf[self.off + self.len..])
            .all(|&v| v == seven)
    }
}

/// The checks shared by every loss: `loss`, `loss_grad` and `per_element`
/// of the kernel against the oracle output `want` (computed on the same,
/// rounded inputs), with tolerances in ulp.
struct Check<'a> {
    what: String,
    want: &'a Output,
    /// Magnitude of the parts of each gradient component (for cancellation).
    grad_scale: &'a [f64],
    /// Magnitude of the parts the oracle forms each term from (its own
    /// rounding, visible in `f64` only), or empty.
    term_scale: &'a [f64],
    loss_ulps: f64,
    term_ulps: f64,
    grad_ulps: f64,
}

impl Check<'_> {
    fn loss<T: Elem>(&self, got: Result<T, LossError>) {
        let got = got.unwrap_or_else(|e| panic!("{}: loss failed: {e}", self.what));
        assert!(
            close::<T>(got, self.want.loss, 0.0, self.loss_ulps),
            "{}: loss {got:?} vs {:e}",
            self.what,
            self.want.loss
        );
    }
    fn grad<T: Elem>(&self, got: Result<T, LossError>, grad: &Placed<T>) {
        self.loss(got);
        assert!(
            grad.guards_intact(),
            "{}: wrote outside the gradient",
            self.what
        );
        for (i, (&g, &w)) in grad.get().iter().zip(&self.want.grad).enumerate() {
            assert!(
                close::<T>(g, w, self.grad_scale[i], self.grad_ulps),
                "{}: grad[{i}] {g:?} vs {w:e} (parts {:e})",
                self.what,
                self.grad_scale[i]
            );
        }
    }
    fn per_element<T: Elem>(&self, got: Result<(), LossError>, out: &Placed<T>) {
        got.unwrap_or_else(|e| panic!("{}: per_element failed: {e}", self.what));
        assert!(
            out.guards_intact(),
            "{}: wrote outside the output",
            self.what
        );
        for (i, (&g, &w)) in out.get().iter().zip(&self.want.per_element).enumerate() {
            assert!(
                close::<T>(
                    g,
                    w,
                    self.term_scale.get(i).copied().unwrap_or(0.0),
                    self.term_ulps
                ),
                "{}: per_element[{i}] {g:?} vs {w:e} ({:.1} ulp)",
                self.what,
                (g.to_f64() - w).abs() / ulp::<T>(w)
            );
        }
    }
}

/// Tolerance of a reduced loss: `base` ulp, plus, for `f64`, the error of
/// the oracle's own sequential sum (`n/2` ulp for non-negative terms; the
/// kernels' `f64` tree sum is far better). For `f32` the oracle's sum is
/// exact to well below an `f32` ulp.
fn loss_ulps<T: Elem>(base: f64, n: usize) -> f64 {
    if T::EPS < 1e-10 {
        base + n as f64 / 2.0
    } else {
        base
    }
}

// ---------------------------------------------------------------- squared error

fn check_squared_error<T: Elem>(x: &[f64], y: &[f64], off: usize, b: Backend, red: Reduction) {
    let (px, py) = (Placed::<T>::new(x, off), Placed::<T>::new(y, 3 - off));
    let (xv, yv) = (px.values(), py.values());
    let want = reference::squared_error(&xv, &yv, red, EmptyMean::Nan).expect("valid");
    let scale = vec![0.0; x.len()];
    let c = Check {
        what: format!(
            "{} squared error n={} off={off} {b:?} {red:?}",
            T::NAME,
            x.len()
        ),
        want: &want,
        grad_scale: &scale,
        term_scale: &[],
        loss_ulps: loss_ulps::<T>(4.0, x.len()),
        term_ulps: 2.0,
        grad_ulps: 3.0,
    };
    let mse = SquaredError::new().backend(b).reduction(red);
    c.loss(mse.loss(px.get(), py.get()));
    let mut grad = Placed::<T>::out(x.len(), off);
    c.grad(mse.loss_grad(px.get(), py.get(), grad.get_mut()), &grad);
    let mut per = Placed::<T>::out(x.len(), (off + 1) % 4);
    c.per_element(mse.per_element(px.get(), py.get(), per.get_mut()), &per);
}

// ------------------------------------------------------------- BCE (probabilities)

fn check_bce<T: Elem>(p: &[f64], y: &[f64], w: Option<&[f64]>, off: usize, b: Backend) {
    let (pp, py) = (Placed::<T>::new(p, off), Placed::<T>::new(y, (off + 2) % 4));
    let pw = w.map(|w| Placed::<T>::new(w, 1));
    let (pv, yv) = (pp.values(), py.values());
    let wv = pw.as_ref().map(|w| w.values());
    let want =
        reference::binary_cross_entropy(&pv, &yv, wv.as_deref(), Reduction::Mean, EmptyMean::Nan)
            .expect("valid probabilities");
    let scale = vec![0.0; p.len()];
    let c = Check {
        what: format!(
            "{} BCE n={} off={off} weighted={} {b:?}",
            T::NAME,
            p.len(),
            w.is_some()
        ),
        want: &want,
        grad_scale: &scale,
        term_scale: &[],
        loss_ulps: loss_ulps::<T>(8.0, p.len()),
        term_ulps: 8.0,
        grad_ulps: 8.0,
    };
    let mut bce = BinaryCrossEntropy::<T>::new().backend(b);
    if let Some(w) = &pw {
        bce = bce.weight(w.get());
    }
    c.loss(bce.loss(pp.get(), py.get()));
    let mut grad = Placed::<T>::out(p.len(), off);
    c.grad(bce.loss_grad(pp.get(), py.get(), grad.get_mut()), &grad);
    let mut per = Placed::<T>::out(p.len(), 3 - off);
    c.per_element(bce.per_element(pp.get(), py.get(), per.get_mut()), &per);
}

// -------------------------------------------------------------- BCE with logits

fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        u.exp() / (1.0 + u.exp())
    }
}

fn check_bce_logits<T: Elem>(
    x: &[f64],
    y: &[f64],
    w: Option<&[f64]>,
    pos_weight: Option<&[f64]>,
    off: usize,
    b: Backend,
) {
    let (px, py) = (Placed::<T>::new(x, off), Placed::<T>::new(y, (off + 1) % 4));
    let pw = w.map(|w| Placed::<T>::new(w, 2));
    let ppos = pos_weight.map(|p| Placed::<T>::new(p, 3));
    let (xv, yv) = (px.values(), py.values());
    let wv = pw.as_ref().map(|w| w.values());
    let posv = ppos.as_ref().map(|p| p.values());
    let want = reference::binary_cross_entropy_with_logits(
        &xv,
        &yv,
        wv.as_deref(),
        posv.as_deref(),
        Reduction::Mean,
        EmptyMean::Nan,
    )
    .expect("valid");
    // |(1 - y) σ(x)| + |pw y σ(-x)|, times w / n.
    let n = x.len() as f64;
    let scale: Vec<f64> = (0..x.len())
        .map(|i| {
            let pwi = posv.as_ref().map_or(1.0, |p| p[i % p.len()]);
            let wi = wv.as_ref().map_or(1.0, |w| w[i]);
            (wi * ((1.0 - yv[i]).abs() * sigmoid(xv[i]) + (pwi * yv[i]).abs() * sigmoid(-xv[i]))
                / n)
                .abs()
        })
        .collect();
    // The oracle forms lw = 1 + (pw - 1) y, which cancels for y near 1 and
    // pw near 0: |w| (1 + |pw - 1| |y|) ln(1 + e^{-|x|}) bounds its parts.
    let terms: Vec<f64> = (0..x.len())
        .map(|i| {
            let pwi = posv.as_ref().map_or(1.0, |p| p[i % p.len()]);
            let wi = wv.as_ref().map_or(1.0, |w| w[i]);
            (wi * (1.0 + (pwi - 1.0).abs() * yv[i].abs()) * (-xv[i].abs()).exp().ln_1p()).abs()
        })
        .collect();
    let c = Check {
        what: format!(
            "{} BCE-logits n={} off={off} weighted={} pos_weight={:?} {b:?}",
            T::NAME,
            x.len(),
            w.is_some(),
            pos_weight.map(<[f64]>::len)
        ),
        want: &want,
        grad_scale: &scale,
        term_scale: &terms,
        loss_ulps: loss_ulps::<T>(8.0, x.len()),
        term_ulps: 8.0,
        grad_ulps: 8.0,
    };
    let mut bce = BinaryCrossEntropyWithLogits::<T>::new().backend(b);
    if let Some(w) = &pw {
        bce = bce.weight(w.get());
    }
    if let Some(p) = &ppos {
        bce = bce.pos_weight(p.get());
    }
    c.loss(bce.loss(px.get(), py.get()));
    let mut grad = Placed::<T>::out(x.len(), off);
    c.grad(bce.loss_grad(px.get(), py.get(), grad.get_mut()), &grad);
    let mut per = Placed::<T>::out(x.len(), 3 - off);
    c.per_element(bce.per_element(px.get(), py.get(), per.get_mut()), &per);
}

// ------------------------------------------------------------------ value sets

const ADVERSARIAL: [f64; 16] = [
    0.0, -0.0, 1e-45, -1e-45, 1e-40, 1.5e-38, 1e19, -1e19, 88.7, -88.7, 88.8, -103.9, -104.0, 20.0,
    -20.0, 0.5,
];

/// Regression-like values with an adversarial value every ~20 elements
/// (only finite ones when `finite`).
fn regression_values(rng: &mut Rng, n: usize, finite: bool) -> Vec<f64> {
    (0..n)
        .map(|_| {
            if rng.next().is_multiple_of(20) {
                let specials: &[f64] = if finite {
                    &ADVERSARIAL
                } else {
                    &[
                        f64::INFINITY,
                        f64::NEG_INFINITY,
                        f64::NAN,
                        1e19,
                        -1e19,
                        1e-45,
                    ]
                };
                rng.pick(specials)
            } else {
                rng.normal(1.0)
            }
        })
        .collect()
}

fn logits(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            if rng.next().is_multiple_of(16) {
                rng.pick(&ADVERSARIAL)
            } else {
                rng.normal(2.0)
            }
        })
        .collect()
}

fn binary_targets(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| match rng.next() % 4 {
            0 => rng.unit(),
            1 | 2 => (rng.next() % 2) as f64,
            _ => rng.pick(&[0.0, 1.0, 0.25, 1.0 - 2f64.powi(-24)]),
        })
        .collect()
}

fn probabilities(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            if rng.next().is_multiple_of(8) {
                rng.pick(&[
                    0.0,
                    1.0,
                    1e-45,
                    1e-40,
                    2f64.powi(-24),
                    1.0 - 2f64.powi(-24),
                    0.5,
                    1e-7,
                ])
            } else {
                rng.unit()
            }
        })
        .collect()
}

fn weights(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            if rng.next().is_multiple_of(10) {
                0.0
            } else {
                2.0 * rng.unit()
            }
        })
        .collect()
}

// ------------------------------------------------------------------------ tests

fn every_length<T: Elem>() {
    let bs = backends();
    let mut rng = Rng(0x5eed_0000 + T::EPS.to_bits());
    for n in 0..=300usize {
        let x = regression_values(&mut rng, n, true);
        let y = regression_values(&mut rng, n, true);
        let lg = logits(&mut rng, n);
        let t = binary_targets(&mut rng, n);
        let p = probabilities(&mut rng, n);
        let w = weights(&mut rng, n);
        // A pos_weight period that divides n (1 when n is prime or 0).
        let period = [7, 5, 3, 2]
            .into_iter()
            .find(|d| n % d == 0)
            .unwrap_or(1)
            .min(n.max(1));
        let pos: Vec<f64> = (0..period).map(|_| 3.0 * rng.unit()).collect();
        for &b in &bs {
            for off in 0..=3 {
                let red = [Reduction::Mean, Reduction::Sum][(n + off) % 2];
                check_squared_error::<T>(&x, &y, off, b, red);
                check_bce::<T>(&p, &t, None, off, b);
                check_bce_logits::<T>(&lg, &t, None, None, off, b);
                if off == (n % 4) {
                    check_bce::<T>(&p, &t, Some(&w), off, b);
                    check_bce_logits::<T>(&lg, &t, Some(&w), Some(&pos), off, b);
                    check_bce_logits::<T>(&lg, &t, None, Some(&pos[..1]), off, b);
                }
            }
        }
    }
}

#[test]
fn every_length_0_to_300_every_offset_f32() {
    every_length::<f32>();
}

#[test]
fn every_length_0_to_300_every_offset_f64() {
    every_length::<f64>();
}

#[test]
fn non_finite_values_propagate() {
    // ±inf and NaN in squared error and BCE with logits, on every backend:
    // the oracle's NaN/inf must come out (checked value by value).
    let mut rng = Rng(42);
    for &b in &backends() {
        for n in [1usize, 15, 16, 17, 33, 100] {
            let x = regression_values(&mut rng, n, false);
            let y = regression_values(&mut rng, n, false);
            check_squared_error::<f32>(&x, &y, n % 4, b, Reduction::Sum);
            check_squared_error::<f64>(&x, &y, n % 4, b, Reduction::Sum);
            let mut lg = logits(&mut rng, n);
            lg[n / 2] = rng.pick(&[f64::INFINITY, f64::NEG_INFINITY, f64::NAN]);
            let t = binary_targets(&mut rng, n);
            check_bce_logits::<f32>(&lg, &t, None, None, (n + 1) % 4, b);
            check_bce_logits::<f64>(&lg, &t, None, None, (n + 1) % 4, b);
        }
    }
}

#[test]
fn logits_at_the_exp_thresholds() {
    // Every logit around the f32 exp overflow/underflow thresholds, both
    // targets, in one vector-crossing run.
    let mut lg = Vec::new();
    for base in [
        88.7f32, 88.72283, 88.7229, 103.97, 104.0, 87.3, 1e-20, 1e19, 0.881_374,
    ] {
        for k in -3i32..=3 {
            let v = f32::from_bits((base.to_bits() as i32 + k) as u32);
            lg.push(v as f64);
            lg.push(-v as f64);
        }
    }
    for &b in &backends() {
        for t in [0.0, 1.0, 0.5] {
            let y = vec![t; lg.len()];
            check_bce_logits::<f32>(&lg, &y, None, None, 1, b);
            check_bce_logits::<f64>(&lg, &y, None, None, 2, b);
        }
    }
}

#[test]
fn random_large_lengths() {
    let mut rng = Rng(7);
    for &n in &[1_000usize, 4_099, 65_537, 100_003, (1 << 17) + 5] {
        let x = regression_values(&mut rng, n, true);
        let y = regression_values(&mut rng, n, true);
        let lg = logits(&mut rng, n);
        let t = binary_targets(&mut rng, n);
        let p = probabilities(&mut rng, n);
        for &b in &backends() {
            check_squared_error::<f32>(&x, &y, n % 4, b, Reduction::Mean);
            check_bce::<f32>(&p, &t, None, n % 4, b);
            check_bce_logits::<f32>(&lg, &t, None, None, n % 4, b);
            check_squared_error::<f64>(&x, &y, (n + 1) % 4, b, Reduction::Mean);
            check_bce_logits::<f64>(&lg, &t, None, None, (n + 1) % 4, b);
        }
    }
}

#[test]
fn bce_rejects_the_first_out_of_range_probability_on_every_backend() {
    let mut rng = Rng(11);
    for &b in &backends() {
        for n in [1usize, 17, 40, 333] {
            let mut p = probabilities(&mut rng, n);
            let t = binary_targets(&mut rng, n);
            let bad = (rng.next() % n as u64) as usize;
            p[bad] = rng.pick(&[-1e-30, 1.0 + 1e-6, f64::NAN, -0.5, 2.0]);
            let pf: Vec<f32> = p.iter().map(|&v| v as f32).collect();
            let tf: Vec<f32> = t.iter().map(|&v| v as f32).collect();
            let got = BinaryCrossEntropy::<f32>::new().backend(b).loss(&pf, &tf);
            match got {
                Err(LossError::ProbabilityOutOfRange {
                    what: "input",
                    index,
                    ..
                }) => {
                    assert_eq!(index, bad, "{b:?} n={n}")
                }
                other => panic!("{b:?} n={n}: expected the error at {bad}, got {other:?}"),
            }
        }
    }
}

/// The `f32` MSE of `n` random elements against its exact (`f64`) value.
fn mse_accuracy(n: usize) {
    let mut rng = Rng(0xacc);
    let x: Vec<f32> = (0..n).map(|_| rng.normal(1.0) as f32).collect();
    let y: Vec<f32> = (0..n).map(|_| rng.normal(1.0) as f32).collect();
    // Terms (x - y)² of f32 values are exact in f64 up to one rounding, and
    // the f64 sum of 2^26 of them errs by far less than an f32 ulp.
    let exact: f64 = x
        .iter()
        .zip(&y)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum::<f64>()
        / n as f64;
    // A naive f32 running sum for comparison (what the issue measured).
    let naive = x
        .iter()
        .zip(&y)
        .fold(0f32, |s, (&a, &b)| s + (a - b) * (a - b))
        / n as f32;
    for &b in &backends() {
        let got = SquaredError::new().backend(b).loss(&x, &y).expect("valid");
        let err_ulp = (got as f64 - exact).abs() / ulp::<f32>(exact);
        println!(
            "MSE n=2^{} {b:?}: {got} vs exact {exact:.9} ({err_ulp:.2} ulp); naive f32 sum {naive} ({:.1} ulp)",
            n.trailing_zeros(),
            (naive as f64 - exact).abs() / ulp::<f32>(exact)
        );
        assert!(err_ulp <= 2.0, "{b:?}: {err_ulp} ulp");
    }
}

#[test]
fn mse_f32_of_2_pow_24_elements_is_within_2_ulp() {
    mse_accuracy(1 << 24);
}

#[test]
#[ignore = "2^26 elements (512 MiB of inputs): run with --ignored in release"]
fn mse_f32_of_2_pow_26_elements_is_within_2_ulp() {
    mse_accuracy(1 << 26);
}
