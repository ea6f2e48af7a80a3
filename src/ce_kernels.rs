//! The fused softmax cross-entropy kernels, written once over the backend
//! trait.
//!
//! For a row of logits `z` (after the optional softcap `z = s·tanh(x/s)`),
//! `lse = ln Σ_c e^{z_c}` and the loss terms all follow from a handful of
//! per-row statistics, gathered in **one read** of the row (pass 1):
//!
//! - the online log-sum-exp state `(m, s)` with `s = Σ e^{z_c - m}`, kept per
//!   vector lane: a block of four vectors updates the lane maxima once, and
//!   the lane sums are rescaled only when a maximum grew (rare after the
//!   first blocks), so the cost is one `exp` per element;
//! - for label smoothing and dense targets, with per-class weights
//!   `u_c = w_c` (smoothing) or `u_c = w_c t'_c` (dense): `a = Σ u_c` and
//!   `d = Σ u_c (m - z_c)`, so that `Σ_c u_c (lse - z_c) = a ln s + d`. Every
//!   term is non-negative (`d` is shifted when a lane maximum grows, by
//!   `(m_new - m_old) a`), so a loss near 0 keeps its relative accuracy;
//!   the naive `lse Σ u - Σ u z` would cancel.
//!
//! For integer labels the target class is *excluded* from the state (the
//! row is read as `[..t]` and `[t+1..]`), which gives the off-target mass
//! `S_off · e^{M_off}` exactly. The loss of the target is then
//! `lse - z_t = softplus(u)` with `u = ln S_off + M_off - z_t`, computed in
//! `f64`: a confidently correct row (loss 1e-8) keeps its relative accuracy
//! instead of being the difference of two nearly equal numbers, and the
//! target's gradient `p_t - 1 = -σ(u)` is accurate too.
//!
//! Pass 2 (only when a gradient or a per-class output is asked for) reads
//! the row once more and writes `α·softmax(z)_c - β_c` (times the softcap
//! derivative `1 - (z_c/s)²`). No `N × C` temporary exists at any time.

use crate::kernels::load_at;
use crate::math;
use crate::simd::{Kernel, Simd, Vector};
use crate::Float;

/// Dense (probability) targets of a row segment, smoothed on the fly:
/// `t' = keep·t + add` with `keep = 1 - ε`, `add = ε / C`.
#[derive(Clone, Copy)]
pub(crate) struct Dense<'a, T> {
    pub t: &'a [T],
    pub keep: T,
    pub add: T,
}

impl<'a, T> Dense<'a, T> {
    pub(crate) fn slice(self, lo: usize, hi: usize) -> Dense<'a, T> {
        Dense {
            t: &self.t[lo..hi],
            ..self
        }
    }
}

/// Mergeable per-row statistics of pass 1, in `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RowStats {
    /// Maximum of the (capped) logits seen.
    pub m: f64,
    /// `Σ e^{z_c - m}` over the logits seen.
    pub s: f64,
    /// `a = Σ u_c` of the per-class weights `u` (see the module docs; only
    /// when asked for).
    pub a: f64,
    /// `d = Σ u_c (m° - z_c)` with `m° = m`, or 0 when `m = -inf`; terms with
    /// `u_c = 0` count 0.
    pub d: f64,
}

impl RowStats {
    pub(crate) const EMPTY: RowStats = RowStats {
        m: f64::NEG_INFINITY,
        s: 0.0,
        a: 0.0,
        d: 0.0,
    };

    /// Combines the statistics of two disjoint parts of a row.
    pub(crate) fn merge(self, o: RowStats) -> RowStats {
        let (m, s) = merge_lse(self.m, self.s, o.m, o.s);
        let ms = shift_origin(m);
        RowStats {
            m,
            s,
            a: self.a + o.a,
            d: rebase(self.d, self.a, ms - shift_origin(self.m))
                + rebase(o.d, o.a, ms - shift_origin(o.m)),
        }
    }

    /// `Σ u_c (lse - z_c) = a (lse - m°) + d`: two non-negative terms.
    pub(crate) fn weighted_nll(&self) -> f64 {
        let lse_minus_origin = (self.m - shift_origin(self.m)) + self.s.ln();
        rebase(self.d, self.a, lse_minus_origin)
    }

    /// `ln Σ e^{z}`: `m + ln s` (`-inf` for an empty or all `-inf` row).
    pub(crate) fn lse(&self) -> f64 {
        self.m + self.s.ln()
    }
}

/// The origin `m°` of `d`: the maximum, or 0 while it is `-inf`.
pub(crate) fn shift_origin(m: f64) -> f64 {
    if m == f64::NEG_INFINITY {
        0.0
    } else {
        m
    }
}

/// `d + delta·a`, where `a = 0` contributes nothing (even for an infinite delta).
pub(crate) fn rebase(d: f64, a: f64, delta: f64) -> f64 {
    if a == 0.0 {
        d
    } else {
        d + delta * a
    }
}

/// Merges two `(max, sum of e^{x - max})` states.
pub(crate) fn merge_lse(m1: f64, s1: f64, m2: f64, s2: f64) -> (f64, f64) {
    if m1.is_nan() || m2.is_nan() || s1.is_nan() || s2.is_nan() {
        return (f64::NAN, f64::NAN);
    }
    let m = m1.max(m2);
    if m == f64::NEG_INFINITY {
        return (m, s1 + s2);
    }
    if m == f64::INFINITY {
        // An infinite logit: the row's softmax is undefined.
        return (m, f64::NAN);
    }
    let scaled = |mi: f64, si: f64| if mi == m { si } else { si * (mi - m).exp() };
    (m, scaled(m1, s1) + scaled(m2, s2))
}

/// `ln(1 + e^u)`, accurate for every `u` (`f64`).
pub(crate) fn softplus(u: f64) -> f64 {
    if u > 36.0 {
        u + (-u).exp()
    } else {
        u.exp().ln_1p()
    }
}

/// `1 / (1 + e^{-u})` (`f64`).
pub(crate) fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

/// The softcap transform applied on load, and its derivative.
#[derive(Clone, Copy)]
pub(crate) struct Cap<T> {
    pub cap: T,
    pub inv: T,
}

#[inline(always)]
fn capped<S: Simd, T: Float>(s: S, x: T::Vec<S>, cap: Option<Cap<T>>) -> T::Vec<S> {
    match cap {
        None => x,
        Some(c) => {
            let vc = T::Vec::<S>::splat(s, c.cap);
            let vi = T::Vec::<S>::splat(s, c.inv);
            math::tanh(s, x.mul(vi)).mul(vc)
        }
    }
}

/// A contiguous piece of a row for pass 1: logits, and the class weights
/// and dense targets aligned with them.
#[derive(Clone, Copy)]
pub(crate) struct Segment<'a, T> {
    pub z: &'a [T],
    pub w: Option<&'a [T]>,
    pub t: Option<Dense<'a, T>>,
}

/// Pass 1 over one contiguous segment of a row: returns its [`RowStats`].
#[inline(always)]
pub(crate) fn pass1_segment<S: Simd, T: Float, const SIDE: bool>(
    s: S,
    z: &[T],
    w: Option<&[T]>,
    t: Option<Dense<'_, T>>,
    cap: Option<Cap<T>>,
) -> RowStats {
    pass1::<S, T, SIDE>(s, &[Segment { z, w, t }], cap)
}

/// Pass 1 over the segments of a row, in order, with one lane state (the
/// target class of a labelled row is left out by passing the row as two
/// segments): returns their combined [`RowStats`].
///
/// `w`: class weights aligned with `z` (for `Σ w z` and dense sums),
/// `t`: dense targets aligned with `z`, used as the smoothed target
/// `t' = keep·t + add`. `SIDE` asks for the side sums `a`, `d` of the
/// per-class weights `u = w t'` (dense) or `u = w` (smoothing).
#[inline(always)]
pub(crate) fn pass1<S: Simd, T: Float, const SIDE: bool>(
    s: S,
    segments: &[Segment<'_, T>],
    cap: Option<Cap<T>>,
) -> RowStats {
    type V<S, T> = <T as Float>::Vec<S>;
    let lanes = V::<S, T>::LANES;
    if segments.iter().all(|seg| seg.z.is_empty()) {
        return RowStats::EMPTY;
    }
    let ninf = V::<S, T>::splat(s, T::from_f64(f64::NEG_INFINITY));
    let zero = V::<S, T>::splat(s, T::ZERO);
    let mut m = ninf;
    let mut sum = zero;
    // Side sums per lane: a = Σ u, d = Σ u (m° - z), m° = m or 0 while -inf.
    let mut acc_a = zero;
    let mut acc_d = zero;

    // The per-class weights `u` of one vector at element `i` (only lanes
    // below `valid` count: the others get u = 0).
    #[inline(always)]
    fn weights<S: Simd, T: Float>(
        s: S,
        w: Option<&[T]>,
        t: Option<Dense<'_, T>>,
        i: usize,
        valid: usize,
    ) -> T::Vec<S> {
        let wv: T::Vec<S> = match w {
            Some(w) => load_at(s, w, i, T::ZERO),
            None => T::Vec::<S>::splat(s, T::ONE),
        };
        let u = match t {
            Some(t) => {
                let tv: T::Vec<S> = load_at(s, t.t, i, T::ZERO);
                let keep = T::Vec::<S>::splat(s, t.keep);
                let add = T::Vec::<S>::splat(s, t.add);
                wv.mul(keep.mul_add(tv, add))
            }
            None => wv,
        };
        if valid < <T::Vec<S> as Vector>::LANES {
            let mut buf = [T::ZERO; 64];
            u.store(&mut buf[..<T::Vec<S> as Vector>::LANES]);
            T::Vec::<S>::load_partial(s, &buf[..valid], T::ZERO)
        } else {
            u
        }
    }

    // Moves the lane maxima to `m_new`: rescales the sums and shifts `d`.
    macro_rules! raise_max {
        ($m_new:expr) => {{
            let m_new = $m_new;
            let origin_new = V::<S, T>::select(m_new.eq(ninf), zero, m_new);
            if V::<S, T>::any(m.lt(m_new)) {
                // e^{-inf} = 0 for a lane that had seen only -inf (its sum is 0).
                sum = sum.mul(math::exp(s, m.sub(origin_new)));
                if SIDE {
                    let origin_old = V::<S, T>::select(m.eq(ninf), zero, m);
                    let shifted = origin_new.sub(origin_old).mul_add(acc_a, acc_d);
                    acc_d = V::<S, T>::select(acc_a.eq(zero), acc_d, shifted);
                }
            }
            m = m_new;
            origin_new
        }};
    }

    for seg in segments {
        let (z, w, t) = (seg.z, seg.w, seg.t);
        let n = z.len();
        let mut i = 0;
        while i + 4 * lanes <= n {
            let x0 = capped(s, V::<S, T>::load(s, &z[i..]), cap);
            let x1 = capped(s, V::<S, T>::load(s, &z[i + lanes..]), cap);
            let x2 = capped(s, V::<S, T>::load(s, &z[i + 2 * lanes..]), cap);
            let x3 = capped(s, V::<S, T>::load(s, &z[i + 3 * lanes..]), cap);
            let block_max = x0.max(x1).max(x2.max(x3));
            let origin = raise_max!(m.max(block_max));
            let e0 = math::exp(s, x0.sub(origin));
            let e1 = math::exp(s, x1.sub(origin));
            let e2 = math::exp(s, x2.sub(origin));
            let e3 = math::exp(s, x3.sub(origin));
            sum = sum.add(e0.add(e1).add(e2.add(e3)));
            if SIDE {
                for (k, xk) in [x0, x1, x2, x3].into_iter().enumerate() {
                    let u = weights(s, w, t, i + k * lanes, lanes);
                    let term = V::<S, T>::select(u.eq(zero), zero, u.mul(origin.sub(xk)));
                    acc_a = acc_a.add(u);
                    acc_d = acc_d.add(term);
                }
            }
            i += 4 * lanes;
        }
        while i < n {
            let valid = (n - i).min(lanes);
            let raw: V<S, T> = load_at(s, z, i, T::from_f64(f64::NEG_INFINITY));
            let x = capped(s, raw, cap);
            // Padding lanes hold -inf (tanh keeps it at -cap: force -inf again).
            let x = if valid < lanes {
                let mut buf = [T::ZERO; 64];
                x.store(&mut buf[..lanes]);
                V::<S, T>::load_partial(s, &buf[..valid], T::from_f64(f64::NEG_INFINITY))
            } else {
                x
            };
            let origin = raise_max!(m.max(x));
            sum = sum.add(math::exp(s, x.sub(origin)));
            if SIDE {
                let u = weights(s, w, t, i, valid);
                let term = V::<S, T>::select(u.eq(zero), zero, u.mul(origin.sub(x)));
                acc_a = acc_a.add(u);
                acc_d = acc_d.add(term);
            }
            i += lanes;
        }
    }
    // Combine the lanes: M = max m_l, S = Σ s_l e^{m_l - M}; d rebased to M°.
    // NaN anywhere makes the sum NaN (max may have dropped it).
    let big_m = m.reduce_max();
    let big_m_f = big_m.to_f64();
    let mv = V::<S, T>::splat(s, big_m);
    let total = if big_m_f == f64::NEG_INFINITY {
        0.0
    } else {
        // Lanes with m_l = -inf have s_l = 0: e^{-inf} = 0 keeps them 0.
        sum.mul(math::exp(s, m.sub(mv))).reduce_sum()
    };
    let total = if sum.reduce_sum().is_nan() {
        f64::NAN
    } else {
        total
    };
    let (m_out, s_out) = if big_m_f == f64::INFINITY {
        (f64::INFINITY, f64::NAN)
    } else {
        (big_m_f, total)
    };
    let (a, d) = if SIDE {
        let origin_lane = V::<S, T>::select(m.eq(ninf), zero, m);
        let origin_all = V::<S, T>::select(mv.eq(ninf), zero, mv);
        let shifted = origin_all.sub(origin_lane).mul_add(acc_a, acc_d);
        let d = V::<S, T>::select(acc_a.eq(zero), acc_d, shifted);
        (acc_a.reduce_sum(), d.reduce_sum())
    } else {
        (0.0, 0.0)
    };
    RowStats {
        m: m_out,
        s: s_out,
        a,
        d,
    }
}

/// What pass 2 writes for each class.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// `(α p_c - b1 w_c t_c - b0 w_c) · cap'(x_c)`
    Grad,
    /// `z_c - lse`
    LogSoftmax,
    /// `e^{z_c - lse}`
    Softmax,
}

/// Coefficients of pass 2.
#[derive(Clone, Copy)]
pub(crate) struct Pass2<T> {
    /// Row maximum and `ln s`, so that `p_c = e^{(z_c - m) - ln s}`.
    pub m: T,
    pub ln_s: T,
    pub alpha: T,
    pub b1: T,
    pub b0: T,
}

/// Pass 2 over one contiguous segment of a row.
#[inline(always)]
pub(crate) fn pass2_segment<S: Simd, T: Float, const WRITE: u8>(
    s: S,
    x: &[T],
    w: Option<&[T]>,
    t: Option<&[T]>,
    cap: Option<Cap<T>>,
    c: Pass2<T>,
    out: &mut [T],
) {
    type V<S, T> = <T as Float>::Vec<S>;
    let lanes = V::<S, T>::LANES;
    let n = x.len().min(out.len());
    let vm = V::<S, T>::splat(s, c.m);
    let vln = V::<S, T>::splat(s, c.ln_s);
    let alpha = V::<S, T>::splat(s, c.alpha);
    let b1 = V::<S, T>::splat(s, c.b1);
    let b0 = V::<S, T>::splat(s, c.b0);
    let one = V::<S, T>::splat(s, T::ONE);
    let zero = V::<S, T>::splat(s, T::ZERO);
    let mut i = 0;
    while i < n {
        let raw: V<S, T> = load_at(s, x, i, T::ZERO);
        let z = capped(s, raw, cap);
        let shifted = z.sub(vm).sub(vln);
        let v = if WRITE == Write::LogSoftmax as u8 {
            shifted
        } else {
            let p = math::exp(s, shifted);
            if WRITE == Write::Softmax as u8 {
                p
            } else {
                let wv: V<S, T> = match w {
                    Some(w) => load_at(s, w, i, T::ZERO),
                    None => one,
                };
                let target_term = match t {
                    Some(t) => {
                        let tv: V<S, T> = load_at(s, t, i, T::ZERO);
                        b1.mul_add(tv, b0)
                    }
                    None => b0,
                };
                let g = alpha.mul(p).sub(wv.mul(target_term));
                match cap {
                    None => g,
                    Some(cp) => {
                        let r = z.mul(V::<S, T>::splat(s, cp.inv));
                        g.mul(one.sub(r.mul(r)))
                    }
                }
            }
        };
        let _ = zero;
        if i + lanes <= n {
            v.store(&mut out[i..]);
        } else {
            v.store_partial(&mut out[i..n]);
        }
        i += lanes;
    }
}

/// Pass 1 over a segment, as a dispatchable kernel (for rows split across
/// threads).
pub(crate) struct Pass1Kernel<'a, T> {
    pub z: &'a [T],
    pub w: Option<&'a [T]>,
    pub t: Option<Dense<'a, T>>,
    pub cap: Option<Cap<T>>,
    pub side: bool,
}

impl<T: Float> Kernel for Pass1Kernel<'_, T> {
    type Output = RowStats;
    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> RowStats {
        if self.side {
            pass1_segment::<S, T, true>(s, self.z, self.w, self.t, self.cap)
        } else {
            pass1_segment::<S, T, false>(s, self.z, self.w, self.t, self.cap)
        }
    }
}

/// Pass 2 over a segment, as a dispatchable kernel.
pub(crate) struct Pass2Kernel<'a, T> {
    pub x: &'a [T],
    pub w: Option<&'a [T]>,
    pub t: Option<&'a [T]>,
    pub cap: Option<Cap<T>>,
    pub coef: Pass2<T>,
    pub write: Write,
    pub out: &'a mut [T],
}

impl<T: Float> Kernel for Pass2Kernel<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        match self.write {
            Write::Grad => pass2_segment::<S, T, { Write::Grad as u8 }>(
                s, self.x, self.w, self.t, self.cap, self.coef, self.out,
            ),
            Write::LogSoftmax => pass2_segment::<S, T, { Write::LogSoftmax as u8 }>(
                s, self.x, self.w, self.t, self.cap, self.coef, self.out,
            ),
            Write::Softmax => pass2_segment::<S, T, { Write::Softmax as u8 }>(
                s, self.x, self.w, self.t, self.cap, self.coef, self.out,
            ),
        }
    }
}
