//! The fused softmax cross-entropy kernels, written once over the backend
//! trait.
//!
//! For a row of logits `z` (after the optional softcap `z = s·tanh(x/s)`),
//! `lse = ln Σ_c e^{z_c}` and the loss terms all follow from a handful of
//! per-row statistics, each gathered by one [`Sweep`] of the row:
//!
//! - pass 1 ([`Sweep::Lse`], always): the online log-sum-exp state `(m, s)`
//!   with `s = Σ e^{z_c - m}`, kept per vector lane: a block of four vectors
//!   updates the lane maxima once, and the lane sums are rescaled only when
//!   a maximum grew (rare after the first blocks), so the cost is one `exp`
//!   per element. The lane sums stay in `T` for a few vectors and are then
//!   added to `f64` lane accumulators, so `s` keeps a few-ulp accuracy for
//!   rows of any length (10^5 classes and more).
//! - label smoothing and dense targets ([`Sweep::Side`]), with per-class
//!   weights `u_c = w_c` (smoothing) or `u_c = w_c t'_c` (dense), and the
//!   row maximum `m` as origin: `a = Σ u_c` and `d = Σ u_c (m - z_c) >= 0`,
//!   so that `Σ_c u_c (lse - z_c) = a ln s + d`, two non-negative terms (the
//!   naive `lse Σ u - Σ u z` would cancel). The terms are summed in `f64`
//!   and formed as `2·u (m/2 - z/2)`, so `m - z` cannot overflow `T` when
//!   the row loss fits.
//! - confident rows of those paths ([`Sweep::Excess`], only when `a ln s`
//!   dominates a small loss): `ln s = ln_1p(s - 1)` with
//!   `s - 1 = (count(z = m) - 1) + Σ_{z < m} e^{z - m}`, free of the
//!   cancellation of `s - 1` computed from `s ≈ 1`.
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
//! derivative `1 - (z_c/s)²`); the target class's value (computed in `f64`
//! from the row plan) is blended in before the store, so a row is written
//! exactly once, with streaming stores for outputs larger than the caches.
//! No `N × C` temporary exists at any time.
//!
//! Two refinements of pass 1 without a softcap: rows of at most 16 KiB,
//! and every 16 KiB block of longer rows, take their exact maximum first
//! and then the exponentials from L1 ([`pass1_store`], [`max_of`],
//! [`store_exp`]; a long row's blocks merge in block order). Labelled
//! loss + gradient stores those exponentials in the gradient row itself,
//! and pass 2 ([`pass2_stored`]) only rescales them in place: one `exp` per
//! class instead of two.

use crate::kernels::{load_at, Source};
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

/// Mergeable per-row statistics of one sweep, in `f64` (which fields a
/// sweep fills depends on its [`Sweep`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RowStats {
    /// Maximum of the (capped) logits seen ([`Sweep::Lse`]; `-inf` otherwise).
    pub m: f64,
    /// `Σ e^{z_c - m}` over the logits seen ([`Sweep::Lse`]), or
    /// `Σ_{z_c < m} e^{z_c - m}` ([`Sweep::Excess`]).
    pub s: f64,
    /// `a = Σ u_c` of the per-class weights `u` ([`Sweep::Side`]), or the
    /// count of `z_c = m` ([`Sweep::Excess`]).
    pub a: f64,
    /// `d = Σ u_c (o - z_c)` for the origin `o` of [`Sweep::Side`]; terms
    /// with `u_c = 0` count 0.
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
        RowStats {
            m,
            s,
            a: self.a + o.a,
            d: self.d + o.d,
        }
    }

    /// `ln Σ e^{z}`: `m + ln s` (`-inf` for an empty or all `-inf` row).
    pub(crate) fn lse(&self) -> f64 {
        self.m + self.s.ln()
    }
}

/// What one read of a row (segment) computes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sweep<T> {
    /// The online log-sum-exp state `(m, s)`.
    Lse,
    /// The side sums `a = Σ u`, `d = Σ u (o - z)` about the origin `o`
    /// (the row maximum, or 0 while it is `-inf`).
    Side(T),
    /// Given the row maximum `m`: `Σ_{z < m} e^{z - m}` and the count of
    /// `z = m`, so that `s - 1 = (count - 1) + Σ` has no cancellation.
    Excess(T),
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

/// `ln s` of a row state, without cancellation when `s` is close to 1:
/// `excess` (a [`Sweep::Excess`] result, asked for only when needed) gives
/// `s - 1 = (count - 1) + Σ_{z < m} e^{z - m}` exactly enough for `ln_1p`.
pub(crate) fn ln_sum(excess: RowStats) -> f64 {
    ((excess.a - 1.0) + excess.s).ln_1p()
}

/// `ln(1 + v)` for `v >= 0` (or NaN): `ln` of the rounded `1 + v` from
/// `v = 0.5` up (`ln(1 + v) >= 0.4` there, so the rounding of `1 + v`
/// costs at most a few units of `2^-53` of relative error), `ln_1p` below.
/// glibc's `log` is several times faster than its `log1p`, and this is once
/// per row of the cross entropy's common path.
pub(crate) fn ln_1p_nonneg(v: f64) -> f64 {
    if v >= 0.5 {
        (1.0 + v).ln()
    } else {
        v.ln_1p()
    }
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

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
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

/// A contiguous piece of a row for a sweep: logits, and the class weights
/// and dense targets aligned with them.
#[derive(Clone, Copy)]
pub(crate) struct Segment<'a, T> {
    pub z: &'a [T],
    pub w: Option<&'a [T]>,
    pub t: Option<Dense<'a, T>>,
}

/// Vectors summed in `T` lanes before they are added to the `f64` lane
/// accumulators (a flush): the `T` partial sums hold at most this many
/// terms per lane, so `f32` rounding stays at a few ulp for any row length.
const FLUSH_VECTORS: usize = 16;

/// Segments of [`pass1`] above this many bytes prefetch [`PASS1_AHEAD`]
/// bytes ahead: long rows, which come from memory (cross entropy loss 256 x
/// 131072, `f32`, 1 thread, Zen 5: 0.67-0.70 -> 0.74-0.75 of the read
/// reference, `simd_quick`, three alternated runs). Shorter segments are
/// left to the hardware prefetcher; the threshold itself is not tuned.
const PASS1_PREFETCH_MIN_BYTES: usize = 64 << 10;
/// How far ahead [`pass1`] prefetches, in bytes (8 KiB measured the same).
const PASS1_AHEAD: usize = 4096;

/// One sweep over the segments of a row, in order (the target class of a
/// labelled row is left out by passing the row as two segments).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn sweep<S: Simd, T: Float>(
    s: S,
    segments: &[Segment<'_, T>],
    cap: Option<Cap<T>>,
    kind: Sweep<T>,
) -> RowStats {
    match kind {
        Sweep::Lse => pass1(s, segments, cap),
        Sweep::Side(origin) => side_sums(s, segments, cap, origin),
        Sweep::Excess(m) => excess(s, segments, cap, m),
    }
}

/// Pass 1: the online log-sum-exp state `(m, s)` of the segments.
///
/// Per lane: a block of four vectors updates the lane maximum once, and the
/// lane sums are rescaled only when a maximum grew (rare after the first
/// blocks), so the cost is one `exp` per element. The lane sums are kept in
/// `T` for [`FLUSH_VECTORS`] vectors and then added to `f64` lane
/// accumulators (rescaled together), so a row of 10^5+ classes keeps `s`
/// within a few ulp while the hot loop stays in `T`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn pass1<S: Simd, T: Float>(
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
    // The origin of the exponents: the lane maxima, 0 for lanes still at
    // -inf (so that -inf - origin is -inf, not NaN).
    let mut origin = zero;
    let mut sum = zero;
    let mut acc = V::<S, T>::acc_zero(s);

    // Moves the lane maxima to `m_new` where it is larger, rescaling both
    // sums; returns the origin. A lane whose `m_new` is NaN keeps its
    // maximum: its sums are NaN already (the NaN logit's own term).
    macro_rules! raise_max {
        ($m_new:expr) => {{
            let m_new = $m_new;
            if V::<S, T>::any(m.lt(m_new)) {
                let origin_new = V::<S, T>::select(m_new.eq(ninf), zero, m_new);
                // e^{-inf} = 0 for a lane that had seen only -inf (its sums are 0).
                let factor = math::exp_nonpositive(s, m.sub(origin_new));
                sum = sum.mul(factor);
                acc = V::<S, T>::acc_scale(acc, factor);
                m = m_new;
                origin = origin_new;
            }
            origin
        }};
    }

    for seg in segments {
        let z = seg.z;
        let n = z.len();
        let mut i = 0;
        let mut block = 0;
        // A long segment comes from memory: ask for each line PASS1_AHEAD
        // bytes before it is read (one line a vector).
        let far = core::mem::size_of_val(z) > PASS1_PREFETCH_MIN_BYTES;
        while i + 4 * lanes <= n {
            if far {
                for k in 0..4 {
                    crate::simd::prefetch(
                        z,
                        i + k * lanes + PASS1_AHEAD / core::mem::size_of::<T>(),
                    );
                }
            }
            let x0 = capped(s, V::<S, T>::load(s, &z[i..]), cap);
            let x1 = capped(s, V::<S, T>::load(s, &z[i + lanes..]), cap);
            let x2 = capped(s, V::<S, T>::load(s, &z[i + 2 * lanes..]), cap);
            let x3 = capped(s, V::<S, T>::load(s, &z[i + 3 * lanes..]), cap);
            let block_max = x0.max(x1).max(x2.max(x3));
            let origin = raise_max!(m.max(block_max));
            let e0 = math::exp_softmax_term(s, x0.sub(origin));
            let e1 = math::exp_softmax_term(s, x1.sub(origin));
            let e2 = math::exp_softmax_term(s, x2.sub(origin));
            let e3 = math::exp_softmax_term(s, x3.sub(origin));
            sum = sum.add(e0.add(e1).add(e2.add(e3)));
            i += 4 * lanes;
            block += 4;
            if block == FLUSH_VECTORS {
                acc = V::<S, T>::acc_add(acc, sum);
                sum = zero;
                block = 0;
            }
        }
        while i < n {
            let valid = (n - i).min(lanes);
            let raw: V<S, T> = load_at(s, z, i, T::from_f64(f64::NEG_INFINITY));
            // Padding lanes hold -inf; the softcap maps them to -cap, which
            // never exceeds a real capped logit: drop their exponentials.
            let x = capped(s, raw, cap);
            let origin = raise_max!(m.max(x));
            let e = math::exp_softmax_term(s, x.sub(origin));
            let e = if cap.is_some() {
                e.keep_first(valid)
            } else {
                e
            };
            sum = sum.add(e);
            i += lanes;
        }
    }
    acc = V::<S, T>::acc_add(acc, sum);
    // Combine the lanes: M = max m_l, S = Σ s_l e^{m_l - M}.
    // NaN anywhere makes the sum NaN (max may have dropped it).
    let big_m = m.reduce_max();
    let big_m_f = big_m.to_f64();
    let mv = V::<S, T>::splat(s, big_m);
    let total = if big_m_f == f64::NEG_INFINITY {
        0.0
    } else {
        // Lanes with m_l = -inf have s_l = 0: e^{-inf} = 0 keeps them 0.
        V::<S, T>::acc_sum(V::<S, T>::acc_scale(
            acc,
            math::exp_nonpositive(s, m.sub(mv)),
        ))
    };
    let total = if V::<S, T>::acc_sum(acc).is_nan() {
        f64::NAN
    } else {
        total
    };
    let (m_out, s_out) = if big_m_f == f64::INFINITY {
        (f64::INFINITY, f64::NAN)
    } else {
        (big_m_f, total)
    };
    RowStats {
        m: m_out,
        s: s_out,
        ..RowStats::EMPTY
    }
}

/// The per-class weights `u` of one vector at element `i`: `w` (smoothing)
/// or `w t'` (dense); lanes from `valid` on get `u = 0`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn weights<S: Simd, T: Float>(
    s: S,
    w: Option<&[T]>,
    t: Option<Dense<'_, T>>,
    i: usize,
    valid: usize,
) -> (T::Vec<S>, T::Vec<S>) {
    let one = T::Vec::<S>::splat(s, T::ONE);
    let wv: T::Vec<S> = match w {
        Some(w) => load_at(s, w, i, T::ZERO),
        None => one,
    };
    let q = match t {
        Some(t) => {
            let tv: T::Vec<S> = load_at(s, t.t, i, T::ZERO);
            let keep = T::Vec::<S>::splat(s, t.keep);
            let add = T::Vec::<S>::splat(s, t.add);
            keep.mul_add(tv, add)
        }
        None => one,
    };
    (wv.keep_first(valid), q)
}

/// The side sums of label smoothing and dense targets about the origin `o`:
/// `a = Σ u_c` and `d = Σ u_c (o - z_c) >= 0` (for `o` the maximum of the
/// segments), with `u_c = w_c q_c` the class weight times the (smoothed)
/// target. Each term is formed in `f64` from its widened factors,
/// `2 · w · q · (o/2 - z/2)`: `o - z` (up to `2·MAX`) cannot overflow `T`,
/// and neither can the products (a class weight of `3e38` on a logit of
/// `-3e38` is a finite `f64` term; formed in `T` it was `inf`).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn side_sums<S: Simd, T: Float>(
    s: S,
    segments: &[Segment<'_, T>],
    cap: Option<Cap<T>>,
    origin: T,
) -> RowStats {
    type V<S, T> = <T as Float>::Vec<S>;
    let lanes = V::<S, T>::LANES;
    let zero = V::<S, T>::splat(s, T::ZERO);
    let half = V::<S, T>::splat(s, T::from_f64(0.5));
    let half_origin = V::<S, T>::splat(s, origin).mul(half);
    let acc0 = V::<S, T>::acc_zero(s);
    let mut acc_a = acc0;
    let mut acc_d = acc0;
    for seg in segments {
        let n = seg.z.len();
        let mut i = 0;
        while i < n {
            let valid = (n - i).min(lanes);
            let x = capped(s, load_at(s, seg.z, i, T::ZERO), cap);
            let (w, q) = weights(s, seg.w, seg.t, i, valid);
            // A zero weight or target drops the class even where
            // `o/2 - z/2` is infinite (a masked `-inf` logit) or NaN.
            let h = half_origin.sub(x.mul(half));
            let h = V::<S, T>::select(w.eq(zero), zero, h);
            let h = V::<S, T>::select(q.eq(zero), zero, h);
            // `u = w·q` in `f64`: `acc_scale` widens its vector operand.
            let u = V::<S, T>::acc_scale(V::<S, T>::acc_add(acc0, w), q);
            acc_a = V::<S, T>::acc_merge(acc_a, u);
            acc_d = V::<S, T>::acc_merge(acc_d, V::<S, T>::acc_scale(u, h));
            i += lanes;
        }
    }
    RowStats {
        a: V::<S, T>::acc_sum(acc_a),
        d: 2.0 * V::<S, T>::acc_sum(acc_d),
        ..RowStats::EMPTY
    }
}

/// Given the maximum `m` of the segments: `Σ_{z < m} e^{z - m}` (into `s`)
/// and the count of `z = m` (into `a`), each term added in `f64`. Only
/// confident rows of the smoothing and dense paths ask for it.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn excess<S: Simd, T: Float>(
    s: S,
    segments: &[Segment<'_, T>],
    cap: Option<Cap<T>>,
    m: T,
) -> RowStats {
    type V<S, T> = <T as Float>::Vec<S>;
    let lanes = V::<S, T>::LANES;
    let zero = V::<S, T>::splat(s, T::ZERO);
    let one = V::<S, T>::splat(s, T::ONE);
    let mv = V::<S, T>::splat(s, m);
    let mut acc_s = V::<S, T>::acc_zero(s);
    let mut acc_n = V::<S, T>::acc_zero(s);
    for seg in segments {
        let n = seg.z.len();
        let mut i = 0;
        while i < n {
            let valid = (n - i).min(lanes);
            let x = capped(s, load_at(s, seg.z, i, T::ZERO), cap);
            let below = x.lt(mv);
            let e = V::<S, T>::select(below, math::exp_nonpositive(s, x.sub(mv)), zero);
            let at_max = V::<S, T>::select(x.eq(mv), one, zero);
            acc_s = V::<S, T>::acc_add(acc_s, e.keep_first(valid));
            acc_n = V::<S, T>::acc_add(acc_n, at_max.keep_first(valid));
            i += lanes;
        }
    }
    RowStats {
        s: V::<S, T>::acc_sum(acc_s),
        a: V::<S, T>::acc_sum(acc_n),
        ..RowStats::EMPTY
    }
}

/// Pass 1 of a row that fits in the caches, without class `skip` (a
/// labelled row's target; `None` for none): the exact maximum `M` first,
/// then `e^{z_c - M}` written into `dst` (the row's gradient) and summed;
/// returns `(M, Σ_{c ≠ skip} e^{z_c - M})` as [`pass1`] would. `dst[skip]`
/// gets 0 (pass 2 writes the target's own value there). [`pass2_stored`]
/// then turns the stored values into the gradient in place, so the row
/// costs one `exp` per class instead of two. The second read, from the
/// cache, also asks the cache for the logits `ahead` elements on (the next
/// row: its maximum's read then finds them there). Returns `None`, having
/// written nothing, when `M` is not finite (an all `-inf` or `+inf` row:
/// pass 1 decides those). Without a softcap only.
///
/// Both reads sweep the whole row in vector steps from its start, with the
/// skipped class's lane read as `-inf`: one loop and one horizontal
/// reduction each, where the row cut in two around the target (two
/// segments) took two of each, and a second segment read misaligned
/// (4096 × 1000 `f32`, 1 thread, Zen 4: see the README).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn pass1_store<S: Simd, T: Float>(
    s: S,
    row: &[T],
    skip: Option<usize>,
    dst: Option<&mut [T]>,
    ahead: usize,
) -> Option<RowStats> {
    let hole = Hole::<S, T>::new(s, skip);
    // The exact maximum: a read of the row (from memory); the sweep below
    // reads it again from the cache.
    let m = max_without::<S, T>(s, row, hole).to_f64();
    if !m.is_finite() {
        return None;
    }
    // The next row is wanted next: into L1.
    let ahead = (ahead, false);
    let sum = match dst {
        Some(d) => store_exp_with::<S, T, true>(s, row, T::from_f64(m), Some(d), ahead, None, hole),
        None => store_exp_with::<S, T, false>(s, row, T::from_f64(m), None, ahead, None, hole),
    };
    Some(RowStats {
        m,
        s: sum,
        ..RowStats::EMPTY
    })
}

/// One class of a row read as `-inf`: the vector step `k` that holds it
/// and the mask of its lane (`k = usize::MAX`, no step, for none).
struct Hole<S: Simd, T: Float> {
    k: usize,
    lane: <T::Vec<S> as Vector>::Mask,
    ninf: T::Vec<S>,
    zero: T::Vec<S>,
}

impl<S: Simd, T: Float> Clone for Hole<S, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: Simd, T: Float> Copy for Hole<S, T> {}

impl<S: Simd, T: Float> Hole<S, T> {
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn new(s: S, skip: Option<usize>) -> Self {
        type V<S, T> = <T as Float>::Vec<S>;
        let lanes = V::<S, T>::LANES;
        // Lane numbers (a backend has at most 16 lanes; any further lane
        // gets -1, which matches no class).
        let iota: [T; 16] = core::array::from_fn(|j| T::from_f64(j as f64));
        let lane_no = V::<S, T>::load_partial(s, &iota[..lanes.min(16)], T::from_f64(-1.0));
        let (k, j) = match skip {
            Some(t) => (t / lanes, (t % lanes) as f64),
            None => (usize::MAX, -2.0),
        };
        Hole {
            k,
            lane: lane_no.eq(V::<S, T>::splat(s, T::from_f64(j))),
            ninf: V::<S, T>::splat(s, T::from_f64(f64::NEG_INFINITY)),
            zero: V::<S, T>::splat(s, T::ZERO),
        }
    }

    /// `x`, the vector at step `k`, with the hole's lane `-inf`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn fill(self, k: usize, x: T::Vec<S>) -> T::Vec<S> {
        self.fill_with(k, x, self.ninf)
    }

    /// `x`, the vector at step `k`, with the hole's lane `v`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn fill_with(self, k: usize, x: T::Vec<S>, v: T::Vec<S>) -> T::Vec<S> {
        if k == self.k {
            <T::Vec<S> as Vector>::select(self.lane, v, x)
        } else {
            x
        }
    }

    /// `e`, the vector at step `k`, with the hole's lane `+0`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn clear(self, k: usize, e: T::Vec<S>) -> T::Vec<S> {
        if k == self.k {
            <T::Vec<S> as Vector>::select(self.lane, self.zero, e)
        } else {
            e
        }
    }
}

/// The largest of `z` but the hole's class (`-inf` for none), NaNs skipped:
/// [`max_of`]'s loop over a row in the cache or coming from memory in
/// order, with four independent lane maxima.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn max_without<S: Simd, T: Float>(s: S, z: &[T], hole: Hole<S, T>) -> T {
    type V<S, T> = <T as Float>::Vec<S>;
    let lanes = V::<S, T>::LANES;
    let ninf = T::from_f64(f64::NEG_INFINITY);
    let mut mv = [V::<S, T>::splat(s, ninf); 4];
    let quads = z.chunks_exact(4 * lanes);
    let rest = quads.remainder();
    for (q, zq) in quads.enumerate() {
        // The hole's quad takes the filled loads (one test a quad).
        if q == hole.k / 4 {
            for (j, m) in mv.iter_mut().enumerate() {
                let x = V::<S, T>::load(s, &zq[j * lanes..]);
                *m = m.max(hole.fill(4 * q + j, x));
            }
        } else {
            for (j, m) in mv.iter_mut().enumerate() {
                *m = m.max(V::<S, T>::load(s, &zq[j * lanes..]));
            }
        }
    }
    let k0 = (z.len() - rest.len()) / lanes;
    let chunks = rest.chunks_exact(lanes);
    let tail = chunks.remainder();
    for (j, zc) in chunks.enumerate() {
        mv[0] = mv[0].max(hole.fill(k0 + j, V::<S, T>::load(s, zc)));
    }
    if !tail.is_empty() {
        let x = V::<S, T>::load_partial(s, tail, ninf);
        mv[0] = mv[0].max(hole.fill(z.len() / lanes, x));
    }
    mv[0].max(mv[1]).max(mv[2].max(mv[3])).reduce_max()
}

/// The largest of `z` (`-inf` for none), NaNs skipped. Four independent
/// lane maxima, so the loop runs at the speed of its loads rather than of a
/// chain of `max` latencies. `REALIGN`: a `z` that is not vector-aligned
/// is read through aligned loads ([`Source`]), for a read from memory.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn max_of<S: Simd, T: Float, const REALIGN: bool>(s: S, z: &[T]) -> T {
    // An aligned `z` takes the loop without the realigned step.
    if REALIGN {
        let src = Source::<T::Vec<S>, true>::new(s, z);
        if src.realigns() {
            return max_from(s, z, src);
        }
    }
    max_from(s, z, Source::<T::Vec<S>, false>::new(s, z))
}

/// [`max_of`] with the vectors of `z` from `src`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn max_from<S: Simd, T: Float, const R: bool>(
    s: S,
    z: &[T],
    mut src: Source<'_, T::Vec<S>, R>,
) -> T {
    type V<S, T> = <T as Float>::Vec<S>;
    let lanes = V::<S, T>::LANES;
    let ninf = T::from_f64(f64::NEG_INFINITY);
    let mut mv = [V::<S, T>::splat(s, ninf); 4];
    // Rounds of four whole vectors, then the whole vectors left and the
    // partial one into the first maximum.
    let full = z.len() / lanes;
    for _ in 0..full / 4 {
        for m in &mut mv {
            *m = m.max(src.next_vec());
        }
    }
    for _ in 0..full % 4 {
        mv[0] = mv[0].max(src.next_vec());
    }
    let tail = &z[full * lanes..];
    if !tail.is_empty() {
        mv[0] = mv[0].max(V::<S, T>::load_partial(s, tail, ninf));
    }
    mv[0].max(mv[1]).max(mv[2].max(mv[3])).reduce_max()
}

/// `Σ e^{z_c - origin}`, summed in `f64` lanes, writing each `e^{z_c -
/// origin}` into `dst` (of `z`'s length) when there is one: the stored
/// exponentials of [`pass1_store`], for an `origin` at least the maximum,
/// from [`math::exp_nonpositive_term`] (≤ 1.5 ulp; 0.989 measured on
/// AVX-512, where it skips the table's low parts).
/// With `ahead = (k, into_l2)`, `k > 0`, also asks the cache for the
/// elements `k` past each one read (a later block of a long row, or the
/// next row, whose maximum is read then: without it, that read waits on
/// memory with nothing to overlap), into L1, or with `into_l2` into L2
/// only ([`prefetch_l2`](crate::simd::prefetch_l2)). Without `dst` the
/// terms only meet in the sum: they come from the cheaper
/// [`math::exp_softmax_term`]. With `flush`, each vector read is followed
/// by one vector of another row's pass 2 ([`Flush::step`]).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn store_exp<S: Simd, T: Float>(
    s: S,
    z: &[T],
    origin: T,
    dst: Option<&mut [T]>,
    ahead: (usize, bool),
    flush: Option<&mut Flush<'_, S, T>>,
) -> f64 {
    let no_hole = Hole::<S, T>::new(s, None);
    match dst {
        Some(d) => store_exp_with::<S, T, true>(s, z, origin, Some(d), ahead, flush, no_hole),
        None => store_exp_with::<S, T, false>(s, z, origin, None, ahead, flush, no_hole),
    }
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn store_exp_with<S: Simd, T: Float, const STORE: bool>(
    s: S,
    z: &[T],
    origin: T,
    dst: Option<&mut [T]>,
    (ahead, into_l2): (usize, bool),
    mut flush: Option<&mut Flush<'_, S, T>>,
    hole: Hole<S, T>,
) -> f64 {
    type V<S, T> = <T as Float>::Vec<S>;
    // (A macro, not a closure: a closure that is not inlined would lose
    // the backend's target features.)
    macro_rules! exp {
        ($x:expr) => {
            if STORE {
                math::exp_nonpositive_term(s, $x)
            } else {
                math::exp_softmax_term(s, $x)
            }
        };
    }
    let lanes = V::<S, T>::LANES;
    let origin_t = origin;
    let origin = V::<S, T>::splat(s, origin);
    let zero = V::<S, T>::splat(s, T::ZERO);
    let mut sum = zero;
    let mut acc = V::<S, T>::acc_zero(s);
    let mut count = 0;
    let n = z.len();
    let full = n / lanes;
    let mut none: [T; 0] = [];
    let d: &mut [T] = match dst {
        Some(d) => &mut d[..n],
        None => &mut none,
    };
    // One vector: its `e^{x - origin}`, stored, and a step of the flush.
    macro_rules! one {
        ($x:expr, $dc:expr) => {{
            let e = exp!($x.sub(origin));
            if STORE {
                e.store($dc);
            }
            if let Some(f) = flush.as_deref_mut() {
                f.step(s);
            }
            e
        }};
    }
    // The whole vectors before the hole's step, that step, and the ones
    // after it: the runs take two vectors a step with no test of the hole
    // and at least one prefetch a 64-byte line, as exact chunks
    // (no bounds checks). The `T` lane sums then hold at most
    // FLUSH_VECTORS terms.
    let hk = hole.k.min(full);
    let (z_head, z_rest) = z.split_at(hk * lanes);
    let (d_head, d_rest) = d.split_at_mut(if STORE { hk * lanes } else { 0 });
    let (z_at, z_after) = z_rest.split_at(if hk < full { lanes } else { 0 });
    let (d_at, d_after) = d_rest.split_at_mut(if STORE && hk < full { lanes } else { 0 });
    let z_after = &z_after[..(full - hk - z_at.len() / lanes) * lanes];
    let (d_after, d_tail) = d_after.split_at_mut(if STORE { z_after.len() } else { 0 });
    // Adds `v` (`terms` vectors) to the lane sums, which then go to the
    // accumulators when they hold FLUSH_VECTORS - 1 or more: at most
    // FLUSH_VECTORS terms a lane, as two are added at a time.
    macro_rules! add {
        ($v:expr, $terms:expr) => {{
            sum = sum.add($v);
            count += $terms;
            if count >= FLUSH_VECTORS - 1 {
                acc = V::<S, T>::acc_add(acc, sum);
                (sum, count) = (zero, 0);
            }
        }};
    }
    let pair_bytes = 2 * lanes * core::mem::size_of::<T>();
    // (Macros, not closures, as `exp!`.)
    macro_rules! run {
        ($first:expr, $zr:expr, $dr:expr) => {{
            let mut dp = $dr.chunks_exact_mut(2 * lanes);
            let zp = $zr.chunks_exact(2 * lanes);
            let z_odd = zp.remainder();
            for (k, zc) in zp.enumerate() {
                if ahead > 0 {
                    let at = ($first + 2 * k) * lanes + ahead;
                    macro_rules! fetch {
                        ($i:expr) => {
                            if into_l2 {
                                crate::simd::prefetch_l2(z, $i)
                            } else {
                                crate::simd::prefetch(z, $i)
                            }
                        };
                    }
                    fetch!(at);
                    // A pair over one 64-byte line (AVX-512) needs a
                    // prefetch for each of its vectors.
                    if pair_bytes > 64 {
                        fetch!(at + lanes);
                    }
                }
                // (Without stores `dp` is empty: no call, no branch.)
                let (dc0, dc1) = match if STORE { dp.next() } else { None } {
                    Some(dc) => dc.split_at_mut(lanes),
                    None => (&mut [][..], &mut [][..]),
                };
                let e0 = one!(V::<S, T>::load(s, zc), dc0);
                let e1 = one!(V::<S, T>::load(s, &zc[lanes..]), dc1);
                add!(e0.add(e1), 2);
            }
            if !z_odd.is_empty() {
                add!(one!(V::<S, T>::load(s, z_odd), dp.into_remainder()), 1);
            }
        }};
    }
    run!(0, z_head, d_head);
    if !z_at.is_empty() {
        // The hole's lane reads the origin and its `e^0` is cleared after:
        // see the tail below.
        let x = hole.fill_with(hk, V::<S, T>::load(s, z_at), origin);
        add!(hole.clear(hk, one!(x, d_at)), 1);
    }
    run!(hk + 1, z_after, d_after);
    debug_assert!(count < FLUSH_VECTORS - 1, "the lane sums were not flushed");
    let z_tail = &z[full * lanes..];
    if !z_tail.is_empty() {
        // The lanes past the row (and the hole's) read the origin, whose
        // `e^0` is then cleared, rather than `-inf`: `e^-inf` would make
        // the `exp` underflow, and on Intel cores (Sapphire Rapids class)
        // an instruction whose result underflows takes a microcode assist
        // of about 150 cycles, two a labelled row here (hole and tail; 4096
        // × 1000 loss, 1 thread: see the README). The same bits.
        let k = n / lanes;
        let x: V<S, T> = V::<S, T>::load_partial(s, z_tail, origin_t);
        let e = exp!(hole.fill_with(k, x, origin).sub(origin));
        let e = hole.clear(k, e).keep_first(z_tail.len());
        if STORE {
            e.store_partial(d_tail);
        }
        sum = sum.add(e);
    }
    acc = V::<S, T>::acc_add(acc, sum);
    V::<S, T>::acc_sum(acc)
}

/// Pass 2 over a row whose exponentials `e_c = e^{z_c - M}` [`pass1_store`]
/// left in `out`: writes `scale·e_c - b0·w_c` in place, with
/// `scale = α e^{M - lse}` (so `scale·e_c = α p_c`), then the target class's
/// value (`target`: the class, past the row for none, and its value).
/// Labelled rows without a softcap only (`b1 = 0`). With `ahead > 0`, also asks the cache for the line
/// `ahead` elements on from each vector written.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn pass2_stored<S: Simd, T: Float>(
    s: S,
    w: Option<&[T]>,
    scale: T,
    b0: T,
    (target, target_value): (usize, T),
    out: &mut [T],
    ahead: usize,
) {
    type V<S, T> = <T as Float>::Vec<S>;
    let lanes = V::<S, T>::LANES;
    // The line `ahead` elements on from each vector written (the next
    // row's gradient: its first stores then find their lines in the cache).
    let base = out.as_ptr();
    macro_rules! prefetch {
        ($k:expr) => {
            if ahead > 0 {
                crate::simd::prefetch_ptr(base.wrapping_add($k * lanes + ahead));
            }
        };
    }
    let scale = V::<S, T>::splat(s, scale);
    let nb0 = V::<S, T>::splat(s, b0).neg();
    let n = out.len();
    // One loop per case, over exact chunks: no test of `w` and no bounds
    // checks per vector.
    match w {
        None => {
            let mut chunks = out.chunks_exact_mut(lanes);
            for (k, oc) in (&mut chunks).enumerate() {
                prefetch!(k);
                scale.mul_add(V::<S, T>::load(s, oc), nb0).store(oc);
            }
            let tail = chunks.into_remainder();
            if !tail.is_empty() {
                let e = V::<S, T>::load_partial(s, tail, T::ZERO);
                scale.mul_add(e, nb0).store_partial(tail);
            }
        }
        Some(w) => {
            let w = &w[..n];
            let mut chunks = out.chunks_exact_mut(lanes);
            let w_chunks = w.chunks_exact(lanes);
            let w_tail = w_chunks.remainder();
            for (k, (oc, wc)) in (&mut chunks).zip(w_chunks).enumerate() {
                prefetch!(k);
                let e = V::<S, T>::load(s, oc);
                let wv = V::<S, T>::load(s, wc);
                scale.mul_add(e, wv.mul(nb0)).store(oc);
            }
            let tail = chunks.into_remainder();
            if !tail.is_empty() {
                let e = V::<S, T>::load_partial(s, tail, T::ZERO);
                let wv = V::<S, T>::load_partial(s, w_tail, T::ZERO);
                scale.mul_add(e, wv.mul(nb0)).store_partial(tail);
            }
        }
    }
    if let Some(o) = out.get_mut(target) {
        *o = target_value;
    }
}

/// Pass 2 of one block of a long row whose exponentials `e_c = e^{z_c -
/// M_b}` sit in a scratch row (`src`): writes `scale·e_c - b0` into `out`
/// with streaming stores, one vector at a time ([`Flush::step`], called by
/// the next row's pass 1 once per vector it reads, so that the stores to
/// memory overlap that row's reads and `exp`s) and the rest at the end
/// ([`Flush::finish`]). Vectors are aligned to `out` (streaming stores
/// need it); the unaligned ends of the block get plain partial stores.
/// Rows without class weights only, and the target class gets the same
/// expression: the caller writes its value after the fence.
pub(crate) struct Flush<'a, S: Simd, T: Float> {
    /// The vector-aligned middle of `out`, one vector a step.
    mid: core::slice::ChunksExactMut<'a, T>,
    /// The class of `src` for the next vector of `mid`. Plain loads, even
    /// where `src` (a 64-byte aligned scratch row) is then read across
    /// cache lines: on Zen 4, realigning them (a [`Source`] carrying its
    /// previous vector, which lived on the stack here, or two aligned loads
    /// and a permute per step) made the whole loop slower.
    at: usize,
    /// The whole block of `src`.
    src: &'a [T],
    /// The unaligned ends of `out`: `[0, head.len())` and the rest.
    head: &'a mut [T],
    tail: &'a mut [T],
    scale: T,
    b0: T,
    _simd: core::marker::PhantomData<S>,
}

impl<'a, S: Simd, T: Float> Flush<'a, S, T> {
    /// The pass 2 of `out` from `src` (of `out`'s length), with the block's
    /// `scale` and `b0`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    pub(crate) fn new(_s: S, src: &'a [T], out: &'a mut [T], (scale, b0): (T, T)) -> Self {
        let n = out.len();
        let lanes = T::Vec::<S>::LANES;
        let h = out
            .as_ptr()
            .align_offset(lanes * core::mem::size_of::<T>())
            .min(n);
        let mid = (n - h) / lanes * lanes;
        let (head, rest) = out.split_at_mut(h);
        let (out_mid, tail) = rest.split_at_mut(mid);
        Flush {
            mid: out_mid.chunks_exact_mut(lanes),
            at: h,
            src: &src[..n],
            head,
            tail,
            scale,
            b0,
            _simd: core::marker::PhantomData,
        }
    }

    /// `scale·e - b0` (the expression of `pass2_stored` without weights).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn value_of(s: S, scale: T, b0: T, e: T::Vec<S>) -> T::Vec<S> {
        type V<S, T> = <T as Float>::Vec<S>;
        V::<S, T>::splat(s, scale).mul_add(e, V::<S, T>::splat(s, b0).neg())
    }

    /// Writes the next aligned vector, if one is left.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    pub(crate) fn step(&mut self, s: S) {
        type V<S, T> = <T as Float>::Vec<S>;
        if let Some(oc) = self.mid.next() {
            let e = V::<S, T>::load(s, &self.src[self.at..]);
            self.at += V::<S, T>::LANES;
            Self::value_of(s, self.scale, self.b0, e).store_stream(oc);
        }
    }

    /// Writes what is left: the aligned vectors, then the two unaligned
    /// ends with plain stores. The caller fences after its last block.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    pub(crate) fn finish(mut self, s: S) {
        type V<S, T> = <T as Float>::Vec<S>;
        let lanes = V::<S, T>::LANES;
        while self.mid.len() > 0 {
            self.step(s);
        }
        let t0 = self.src.len() - self.tail.len();
        for (lo, out) in [(0, self.head), (t0, self.tail)] {
            for (i, o) in out.chunks_mut(lanes).enumerate() {
                let at = lo + i * lanes;
                let e = V::<S, T>::load_partial(s, &self.src[at..at + o.len()], T::ZERO);
                Self::value_of(s, self.scale, self.b0, e).store_partial(o);
            }
        }
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
    /// A class whose value is `target_value` instead (the target of a
    /// labelled row; an index past the segment for none).
    pub target: usize,
    pub target_value: T,
    /// Whether full vectors go out with streaming stores (outputs larger
    /// than the caches); the caller fences once after its last row.
    pub stream: bool,
}

/// Pass 2 over one contiguous segment of a row.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
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
    // The values of the vector at `i` (lanes past `n` are never stored).
    macro_rules! values {
        ($i:expr) => {{
            let i: usize = $i;
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
                    // w (b1 t + b0). For |t| <= 1, b1·(w·t): w·t cannot
                    // overflow, and b1 (the reduction's scale) times a
                    // subnormal t underflowed, losing the term (a class
                    // weight of 2e29 on t = 1e-45: 7e-19 for 0; fuzz,
                    // ce_dense f32). For |t| > 1 (not validated), (b1·t)·w:
                    // w·t overflowed (4064 · -2.3e36) where the scaled
                    // term fits.
                    let target_term = match t {
                        Some(t) => {
                            let tv: V<S, T> = load_at(s, t, i, T::ZERO);
                            let small_t = tv.abs().le(one);
                            let first = V::<S, T>::select(small_t, b1, b1.mul(tv));
                            let second = V::<S, T>::select(small_t, wv.mul(tv), wv);
                            first.mul_add(second, wv.mul(b0))
                        }
                        None => wv.mul(b0),
                    };
                    let g = alpha.mul(p).sub(target_term);
                    match cap {
                        None => g,
                        Some(cp) => {
                            let r = z.mul(V::<S, T>::splat(s, cp.inv));
                            g.mul(one.sub(r.mul(r)))
                        }
                    }
                }
            };
            let k = c.target.wrapping_sub(i);
            if k < lanes {
                let mut buf = [T::ZERO; 64];
                v.store(&mut buf[..lanes]);
                buf[k] = c.target_value;
                V::<S, T>::load(s, &buf[..lanes])
            } else {
                v
            }
        }};
    }
    let mut i = 0;
    if c.stream {
        // Plain stores up to the first vector-aligned element, then
        // streaming stores of whole vectors.
        let align = lanes * core::mem::size_of::<T>();
        let head = out.as_ptr().align_offset(align).min(n);
        if head > 0 {
            values!(0).store_partial(&mut out[..head]);
            i = head;
        }
        while i + lanes <= n {
            values!(i).store_stream(&mut out[i..]);
            i += lanes;
        }
    }
    while i < n {
        let v = values!(i);
        if i + lanes <= n {
            v.store(&mut out[i..]);
        } else {
            v.store_partial(&mut out[i..n]);
        }
        i += lanes;
    }
}

/// One sweep over a segment, as a dispatchable kernel (for rows split
/// across threads).
pub(crate) struct SweepKernel<'a, T> {
    pub z: &'a [T],
    pub w: Option<&'a [T]>,
    pub t: Option<Dense<'a, T>>,
    pub cap: Option<Cap<T>>,
    pub kind: Sweep<T>,
}

impl<T: Float> Kernel for SweepKernel<'_, T> {
    type Output = RowStats;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn run<S: Simd>(self, s: S) -> RowStats {
        let seg = Segment {
            z: self.z,
            w: self.w,
            t: self.t,
        };
        sweep::<S, T>(s, &[seg], self.cap, self.kind)
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
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
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
        if self.coef.stream {
            T::Vec::<S>::stream_fence(s);
        }
    }
}
