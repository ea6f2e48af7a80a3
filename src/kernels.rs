//! Hand-vectorized elementwise loss kernels, written once over the backend
//! trait ([`crate::simd::Vector`]).
//!
//! Every elementwise loss is a term `l(x_i, y_i)` and its derivative
//! `l'(x_i, y_i)`. The driver [`drive`] walks the slices four vectors at a
//! time with four independent `f64` accumulators (lanes are widened before
//! they are added, so an `f32` sum over any length stays within an ulp or
//! two of the exact sum), then whole vectors, then one partial vector whose
//! unused lanes are zeroed before they reach the accumulator. Depending on
//! the mode it also stores `l' * scale` (the gradient of the reduced loss)
//! or `l` (the per-element loss).

use crate::math;
use crate::simd::{Kernel, Simd, Vector};
use crate::Float;

/// What a kernel writes besides the sum.
pub(crate) enum Out<'a, T> {
    /// Nothing.
    None,
    /// `grad[i] = l'(i) * scale`.
    Grad(&'a mut [T], T),
    /// `out[i] = l(i)`.
    PerElement(&'a mut [T]),
}

impl<'a, T: Copy> Out<'a, T> {
    /// Splits the output buffer at `mid`.
    pub(crate) fn split_at(self, mid: usize) -> (Out<'a, T>, Out<'a, T>) {
        match self {
            Out::None => (Out::None, Out::None),
            Out::Grad(g, s) => {
                let (a, b) = g.split_at_mut(mid);
                (Out::Grad(a, s), Out::Grad(b, s))
            }
            Out::PerElement(o) => {
                let (a, b) = o.split_at_mut(mid);
                (Out::PerElement(a), Out::PerElement(b))
            }
        }
    }
}

const MODE_LOSS: u8 = 0;
const MODE_GRAD: u8 = 1;
const MODE_PER: u8 = 2;

/// Walks `n` elements; `f(i, s)` returns `(l, l')` for the vector starting
/// at element `i` (a full vector when `i + LANES <= n`, else the partial
/// vector of the tail, loaded with [`Vector::load_partial`]).
#[inline(always)]
pub(crate) fn drive<S, V, F>(s: S, n: usize, out: Out<'_, V::Elem>, f: F) -> f64
where
    S: Simd,
    V: Vector<Simd = S>,
    F: Fn(usize) -> (V, V),
{
    match out {
        Out::None => drive_mode::<S, V, F, MODE_LOSS>(s, n, &mut [], <V::Elem as Float>::ONE, f),
        Out::Grad(g, scale) => drive_mode::<S, V, F, MODE_GRAD>(s, n, g, scale, f),
        Out::PerElement(o) => {
            drive_mode::<S, V, F, MODE_PER>(s, n, o, <V::Elem as Float>::ONE, f)
        }
    }
}

#[inline(always)]
fn drive_mode<S, V, F, const MODE: u8>(
    s: S,
    n: usize,
    out: &mut [V::Elem],
    scale: V::Elem,
    f: F,
) -> f64
where
    S: Simd,
    V: Vector<Simd = S>,
    F: Fn(usize) -> (V, V),
{
    let lanes = V::LANES;
    let vscale = V::splat(s, scale);
    let mut acc = [V::acc_zero(s); 4];
    let mut i = 0;
    let emit = |out: &mut [V::Elem], i: usize, l: V, d: V| {
        if MODE == MODE_GRAD {
            d.mul(vscale).store(&mut out[i..]);
        } else if MODE == MODE_PER {
            l.store(&mut out[i..]);
        }
    };
    while i + 4 * lanes <= n {
        for (k, a) in acc.iter_mut().enumerate() {
            let (l, d) = f(i + k * lanes);
            *a = V::acc_add(*a, l);
            emit(out, i + k * lanes, l, d);
        }
        i += 4 * lanes;
    }
    while i + lanes <= n {
        let (l, d) = f(i);
        acc[0] = V::acc_add(acc[0], l);
        emit(out, i, l, d);
        i += lanes;
    }
    if i < n {
        let rest = n - i;
        let (l, d) = f(i);
        // Zero the unused lanes before they reach the accumulator.
        let mut buf = [<V::Elem as Float>::ZERO; 64];
        l.store(&mut buf[..lanes]);
        let l_masked = V::load_partial(s, &buf[..rest], <V::Elem as Float>::ZERO);
        acc[1] = V::acc_add(acc[1], l_masked);
        if MODE == MODE_GRAD {
            d.mul(vscale).store_partial(&mut out[i..]);
        } else if MODE == MODE_PER {
            l.store_partial(&mut out[i..]);
        }
    }
    let a = V::acc_merge(V::acc_merge(acc[0], acc[1]), V::acc_merge(acc[2], acc[3]));
    V::acc_sum(a)
}

/// Loads the vector at `i` of `src` (partial with `fill` past the end).
#[inline(always)]
pub(crate) fn load_at<V: Vector>(s: V::Simd, src: &[V::Elem], i: usize, fill: V::Elem) -> V {
    let rest = &src[i..];
    if rest.len() >= V::LANES {
        V::load(s, rest)
    } else {
        V::load_partial(s, rest, fill)
    }
}

/// A per-element input that is either a slice or one value for every element.
#[derive(Clone, Copy)]
pub(crate) enum Operand<'a, T> {
    /// One value per element.
    Slice(&'a [T]),
    /// The same value for every element.
    Splat(T),
}

impl<'a, T: Float> Operand<'a, T> {
    #[inline(always)]
    fn load<S: Simd>(self, s: S, i: usize) -> T::Vec<S> {
        match self {
            Operand::Slice(v) => load_at(s, v, i, T::ONE),
            Operand::Splat(x) => T::Vec::<S>::splat(s, x),
        }
    }

    pub(crate) fn split_at(self, mid: usize) -> (Self, Self) {
        match self {
            Operand::Slice(v) => {
                let (a, b) = v.split_at(mid);
                (Operand::Slice(a), Operand::Slice(b))
            }
            Operand::Splat(x) => (Operand::Splat(x), Operand::Splat(x)),
        }
    }
}

/// Squared error `(x - y)^2`, derivative `2 (x - y)`; the factor 2 is folded
/// into the gradient scale by the caller (as PyTorch does).
pub(crate) struct SquaredErrorKernel<'a, T> {
    pub pred: &'a [T],
    pub target: &'a [T],
    pub out: Out<'a, T>,
}

impl<T: Float> Kernel for SquaredErrorKernel<'_, T> {
    type Output = f64;
    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> f64 {
        let (pred, target) = (self.pred, self.target);
        let n = pred.len().min(target.len());
        drive::<S, T::Vec<S>, _>(s, n, self.out, |i| {
            let x: T::Vec<S> = load_at(s, pred, i, T::ZERO);
            let y: T::Vec<S> = load_at(s, target, i, T::ZERO);
            let d = x.sub(y);
            (d.mul(d), d)
        })
    }
}

/// Binary cross entropy on probabilities, PyTorch's form:
/// `l = w [(y - 1) max(log1p(-p), -100) - y max(ln p, -100)]`,
/// `l' = w (p - y) / max((1 - p) p, 1e-12)`.
/// An input or target outside `[0, 1]` (or NaN) makes its term NaN, which
/// the caller turns into an error naming the first such element.
pub(crate) struct BinaryCrossEntropyKernel<'a, T> {
    pub prob: &'a [T],
    pub target: &'a [T],
    pub weight: Operand<'a, T>,
    pub out: Out<'a, T>,
}

impl<T: Float> Kernel for BinaryCrossEntropyKernel<'_, T> {
    type Output = f64;
    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> f64 {
        let (prob, target, weight) = (self.prob, self.target, self.weight);
        let n = prob.len().min(target.len());
        let zero = T::Vec::<S>::splat(s, T::ZERO);
        let one = T::Vec::<S>::splat(s, T::ONE);
        let floor = T::Vec::<S>::splat(s, T::from_f64(-100.0));
        // PyTorch uses the f32 constant 1e-12 for both element types.
        let eps = T::Vec::<S>::splat(s, T::from_f64(1e-12_f32 as f64));
        let nan = T::Vec::<S>::splat(s, T::from_f64(f64::NAN));
        drive::<S, T::Vec<S>, _>(s, n, self.out, |i| {
            let p: T::Vec<S> = load_at(s, prob, i, T::ZERO);
            let y: T::Vec<S> = load_at(s, target, i, T::ZERO);
            let w = weight.load(s, i);
            let log_p = math::ln(s, p).max(floor);
            let log_q = math::log1p(s, p.neg()).max(floor);
            let l = y.sub(one).mul(log_q).sub(y.mul(log_p)).mul(w);
            let bad = <T::Vec<S> as Vector>::mask_or(
                <T::Vec<S> as Vector>::mask_or(p.lt(zero), one.lt(p)),
                <T::Vec<S> as Vector>::mask_or(
                    <T::Vec<S> as Vector>::mask_or(y.lt(zero), one.lt(y)),
                    <T::Vec<S> as Vector>::mask_or(p.is_nan(), y.is_nan()),
                ),
            );
            let l = <T::Vec<S> as Vector>::select(bad, nan, l);
            let d = p.sub(y).div(one.sub(p).mul(p).max(eps)).mul(w);
            (l, d)
        })
    }
}

/// Binary cross entropy with logits, PyTorch's stable form with `pos_weight`
/// `pw` (broadcast over the last dimension of length `pw.len()`):
/// `l = w [(1 - y) x + (1 + (pw - 1) y) softplus(-x)]`,
/// `softplus(-x) = max(-x, 0) + log1p(e^{-|x|})`,
/// `l' = w [(1 - y) - (1 + (pw - 1) y) sigmoid(-x)]`.
pub(crate) struct BinaryCrossEntropyWithLogitsKernel<'a, T> {
    pub logit: &'a [T],
    pub target: &'a [T],
    pub weight: Operand<'a, T>,
    /// `pos_weight` as a whole slice (period `len`), or one value.
    pub pos_weight: Operand<'a, T>,
    /// Position of `logit[0]` within the `pos_weight` period.
    pub phase: usize,
    pub out: Out<'a, T>,
}

impl<T: Float> Kernel for BinaryCrossEntropyWithLogitsKernel<'_, T> {
    type Output = f64;
    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> f64 {
        match self.pos_weight {
            Operand::Splat(pw) => bce_logits_segment(
                s,
                self.logit,
                self.target,
                self.weight,
                Operand::Splat(pw),
                self.out,
            ),
            Operand::Slice(pw) => {
                // Walk segments that line up with one period of `pos_weight`.
                let period = pw.len().max(1);
                let (mut logit, mut target, mut weight) = (self.logit, self.target, self.weight);
                let mut out = self.out;
                let mut phase = self.phase % period;
                let mut sum = 0.0;
                while !logit.is_empty() {
                    let len = (period - phase).min(logit.len());
                    let (l0, l1) = logit.split_at(len);
                    let (t0, t1) = target.split_at(len.min(target.len()));
                    let (w0, w1) = weight.split_at(len);
                    let (o0, o1) = out.split_at(len);
                    let pw_seg = &pw[phase..phase + len];
                    sum += bce_logits_segment(s, l0, t0, w0, Operand::Slice(pw_seg), o0);
                    (logit, target, weight, out) = (l1, t1, w1, o1);
                    phase = 0;
                }
                sum
            }
        }
    }
}

#[inline(always)]
fn bce_logits_segment<S: Simd, T: Float>(
    s: S,
    logit: &[T],
    target: &[T],
    weight: Operand<'_, T>,
    pos_weight: Operand<'_, T>,
    out: Out<'_, T>,
) -> f64 {
    let n = logit.len().min(target.len());
    let zero = T::Vec::<S>::splat(s, T::ZERO);
    let one = T::Vec::<S>::splat(s, T::ONE);
    drive::<S, T::Vec<S>, _>(s, n, out, |i| {
        let x: T::Vec<S> = load_at(s, logit, i, T::ZERO);
        let y: T::Vec<S> = load_at(s, target, i, T::ZERO);
        let w = weight.load(s, i);
        let pw = pos_weight.load(s, i);
        // e = e^{-|x|} in (0, 1]: the only exponential.
        let e = math::exp(s, x.abs().neg());
        let softplus_neg_x = x.neg().max(zero).add(math::log1p(s, e));
        let log_weight = pw.sub(one).mul_add(y, one);
        let one_minus_y = one.sub(y);
        let l = one_minus_y.mul_add(x, log_weight.mul(softplus_neg_x)).mul(w);
        // sigmoid(-x) = e/(1+e) for x >= 0 (e = e^{-x}), 1/(1+e) for x < 0 (e = e^{x}).
        let r = one.div(one.add(e));
        let sig_neg = <T::Vec<S> as Vector>::select(x.lt(zero), r, e.mul(r));
        let d = one_minus_y.sub(log_weight.mul(sig_neg)).mul(w);
        (l, d)
    })
}
