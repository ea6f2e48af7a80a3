//! Hand-vectorized elementwise loss kernels, written once over the backend
//! trait ([`crate::simd::Vector`]).
//!
//! Every elementwise loss is a term `l(x_i, y_i)` and its derivative
//! `l'(x_i, y_i)`. The driver [`drive_lanes`] walks the slices four vectors
//! at a time with four independent `f64` accumulators (the pre-summing
//! form, [`drive_lanes_presummed`], one vector at a time), then whole vectors,
//! then one partial vector (masked loads; its unused lanes are zeroed with
//! [`Vector::keep_first`] before they reach the accumulator). Depending on
//! the mode it also stores `l' * scale` (the gradient of the reduced loss)
//! or `l` (the per-element loss); outputs of 64 MiB and more
//! ([`STREAM_MIN_BYTES`]) with streaming stores, realigned on AVX-512 when
//! the buffer is not vector-aligned (`Sink`).
//!
//! Accuracy of the sum: every vector of terms is widened to `f64` before it
//! is added, so for `n` terms each accumulator lane adds at most
//! `n / (4·LANES)` `f64` roundings (relative `2^-53` each): for `n = 2^26`
//! `f32` terms on AVX-512 that is below `2^-33` relative, far below the
//! `f32` ulp (`2^-24`). The caller's fixed-shape pairwise tree over leaves
//! of `2^14` elements (`2^13` for BCE with logits) keeps it so for any
//! length. What remains is the error of each `f32` term itself (a rounding
//! or two, of both signs), so the reduced `f32` loss is within 2 ulp of the
//! `f64` oracle.
//!
//! Numerics of the terms (all regrouped so that no term is a difference of
//! nearly equal numbers, as in [`crate::reference`]):
//!
//! - squared error: `(x - y)²`, derivative `2 (x - y)` (the 2 is in `scale`);
//!   the sum squares the `f32` difference in `f64` ([`drive_squares`]), so
//!   a term never overflows and carries only the rounding of `x - y`;
//! - BCE on probabilities: PyTorch's clamp of both logarithms at `-100`; the
//!   `[0, 1]` check of input and target is folded into the same pass (a bad
//!   lane makes its term NaN; the caller then finds the first bad index);
//! - BCE with logits: `|x|·(x < 0 ? pw·y : 1 - y) + lw·ln(1 + e^{-|x|})` and
//!   `(1 - y)·σ(x) - pw·y·σ(-x)`, with `lw = 1 + (pw - 1) y`, from one `exp`,
//!   one polynomial and one reciprocal ([`math::logistic`]); a weight `w`
//!   multiplies the coefficients (`w·pw·y`, `w·lw`) before they meet `|x|`,
//!   so a term is finite whenever the weighted term is (`pw·y·|x|` alone
//!   may overflow `f32` for `|x|` near `f32::MAX`, and `0·inf` is NaN).
//!
//! Optimization: weights and `pos_weight` that are the constant 1 get their
//! own instantiation ([`Factor`], [`Unit`]), so the common call does no
//! weight arithmetic. That instantiation of both BCE kernels is a fast form
//! with a careful fallback: the fast form adds the eight `f32` term vectors
//! of a step in `f32` before widening ([`drive_lanes_presummed`]) and
//! leaves out what only matters for non-finite results (the literal form
//! of infinite logits; the per-vector `[0, 1]` mask of BCE on
//! probabilities, replaced by one running sum, and the general logarithms,
//! replaced by ones specialized to `[0, 1]`); when its sum is not finite
//! (an infinite or NaN input, a value out of range, an `f32` partial sum
//! that overflowed) the careful form runs again over the same slice and
//! decides. Both are deterministic, so the results stay bitwise identical
//! for any thread count. The elementwise kernels leave the input streams
//! to the hardware prefetcher (a software prefetch of each line measured
//! slower, in cache and at 2^24); every closure handed to the
//! driver is `#[inline(always)]` (a closure compiled out of line would lose
//! the trampoline's target features, and its intrinsics would become calls);
//! in builds with `debug_assertions`, `#[inline]`, see the `simd` module.

use crate::math;
use crate::simd::{Kernel, Simd, Vector};
use crate::Float;

/// What a kernel writes besides the sum. The flag asks for streaming
/// (non-temporal) stores: set by [`Out::stream_if_large`] for outputs
/// larger than the caches, where a plain store first reads its cache line
/// from memory (a read for ownership: a third more traffic for squared
/// error loss+grad).
pub(crate) enum Out<'a, T> {
    /// Nothing.
    None,
    /// `grad[i] = l'(i) * scale`.
    Grad(&'a mut [T], T, bool),
    /// `out[i] = l(i)`.
    PerElement(&'a mut [T], bool),
}

/// Outputs of at least this many bytes are written with streaming stores:
/// twice this machine's 32 MiB L3, as for cross entropy (at 16 MiB the
/// output stays in L3 between calls and plain stores measured faster).
pub(crate) const STREAM_MIN_BYTES: usize = 64 << 20;

impl<'a, T: Copy> Out<'a, T> {
    /// The same output, borrowed for a shorter time (to run a kernel twice).
    pub(crate) fn reborrow(&mut self) -> Out<'_, T> {
        match self {
            Out::None => Out::None,
            Out::Grad(g, s, st) => Out::Grad(g, *s, *st),
            Out::PerElement(o, st) => Out::PerElement(o, *st),
        }
    }

    /// Splits the output buffer at `mid`.
    pub(crate) fn split_at(self, mid: usize) -> (Out<'a, T>, Out<'a, T>) {
        match self {
            Out::None => (Out::None, Out::None),
            Out::Grad(g, s, st) => {
                let (a, b) = g.split_at_mut(mid);
                (Out::Grad(a, s, st), Out::Grad(b, s, st))
            }
            Out::PerElement(o, st) => {
                let (a, b) = o.split_at_mut(mid);
                (Out::PerElement(a, st), Out::PerElement(b, st))
            }
        }
    }

    /// Asks for streaming stores when the whole output (this one, before
    /// any split) has at least [`STREAM_MIN_BYTES`].
    pub(crate) fn stream_if_large(self) -> Self {
        let large = |len: usize| len * core::mem::size_of::<T>() >= STREAM_MIN_BYTES;
        match self {
            Out::None => Out::None,
            Out::Grad(g, s, _) => {
                let st = large(g.len());
                Out::Grad(g, s, st)
            }
            Out::PerElement(o, _) => {
                let st = large(o.len());
                Out::PerElement(o, st)
            }
        }
    }
}

const MODE_LOSS: u8 = 0;
const MODE_GRAD: u8 = 1;
const MODE_PER: u8 = 2;

/// Walks `n` elements; `f(i)` returns `(l, l')` for the vector starting at
/// element `i` (a full vector when `i + LANES <= n`, else the partial vector
/// of the tail, e.g. loaded with [`load_at`]).
#[allow(dead_code)] // The one-argument form, for kernels that load with `load_at`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn drive<S, V, F>(s: S, n: usize, out: Out<'_, V::Elem>, f: F) -> f64
where
    S: Simd,
    V: Vector<Simd = S>,
    F: Fn(usize) -> (V, V),
{
    drive_lanes(
        s,
        n,
        out,
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        |i, _| f(i),
    )
}

/// Like [`drive`], but `f(i, valid)` also gets the number of valid lanes
/// (`LANES` for a full vector, a compile-time constant in the main loops, so
/// [`load_n`] compiles to a plain load there and to a masked one in the tail).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn drive_lanes<S, V, F>(s: S, n: usize, out: Out<'_, V::Elem>, f: F) -> f64
where
    S: Simd,
    V: Vector<Simd = S>,
    F: Fn(usize, usize) -> (V, V),
{
    drive_sum::<S, V, F, false, false>(s, n, out, f)
}

/// Like [`drive_lanes`], but for `f32` lanes the eight vectors of terms of
/// one step are first added in `f32` as a balanced tree and only their sum
/// is widened to `f64` (for `f64` lanes it is [`drive_lanes`]): an eighth of
/// the conversions, at the price of three `f32` roundings of non-negative
/// partial sums (relative `3·2^-24` at most, 1.5 ulp, in practice far
/// less: the roundings have both signs). A partial sum can overflow `f32` where
/// the `f64` sum would not: callers rerun the careful [`drive_lanes`] when
/// the result is not finite.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn drive_lanes_presummed<S, V, F>(s: S, n: usize, out: Out<'_, V::Elem>, f: F) -> f64
where
    S: Simd,
    V: Vector<Simd = S>,
    F: Fn(usize, usize) -> (V, V),
{
    drive_sum::<S, V, F, false, true>(s, n, out, f)
}

/// Like [`drive_lanes`], but the sum is of `l'²` (each lane squared in
/// `f64`, exact and without overflow) instead of `l`: squared error returns
/// `(d², d)` and sums `d²` from the unrounded `d`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn drive_squares<S, V, F>(s: S, n: usize, out: Out<'_, V::Elem>, f: F) -> f64
where
    S: Simd,
    V: Vector<Simd = S>,
    F: Fn(usize, usize) -> (V, V),
{
    drive_sum::<S, V, F, true, false>(s, n, out, f)
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn drive_sum<S, V, F, const SQUARES: bool, const PRESUM: bool>(
    s: S,
    n: usize,
    out: Out<'_, V::Elem>,
    f: F,
) -> f64
where
    S: Simd,
    V: Vector<Simd = S>,
    F: Fn(usize, usize) -> (V, V),
{
    let one = <V::Elem as Float>::ONE;
    match out {
        // The streaming instantiations are separate: the compute-bound
        // in-cache loops must not carry the sink's state and branch (BCE
        // with logits loss+grad 2^16 lost 7% with one shared loop).
        Out::None => {
            drive_mode::<S, V, F, MODE_LOSS, SQUARES, PRESUM, false>(s, n, &mut [], one, f)
        }
        Out::Grad(g, scale, false) => {
            drive_mode::<S, V, F, MODE_GRAD, SQUARES, PRESUM, false>(s, n, g, scale, f)
        }
        Out::Grad(g, scale, true) => {
            drive_mode::<S, V, F, MODE_GRAD, SQUARES, PRESUM, true>(s, n, g, scale, f)
        }
        Out::PerElement(o, false) => {
            drive_mode::<S, V, F, MODE_PER, SQUARES, PRESUM, false>(s, n, o, one, f)
        }
        Out::PerElement(o, true) => {
            drive_mode::<S, V, F, MODE_PER, SQUARES, PRESUM, true>(s, n, o, one, f)
        }
    }
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn drive_mode<
    S,
    V,
    F,
    const MODE: u8,
    const SQUARES: bool,
    const PRESUM: bool,
    const STREAM: bool,
>(
    s: S,
    n: usize,
    out: &mut [V::Elem],
    scale: V::Elem,
    f: F,
) -> f64
where
    S: Simd,
    V: Vector<Simd = S>,
    F: Fn(usize, usize) -> (V, V),
{
    let lanes = V::LANES;
    // One length check up front (the caller sized `out`), so the stores
    // below need none.
    let out: &mut [V::Elem] = if MODE == MODE_LOSS {
        out
    } else {
        &mut out[..n]
    };
    let vscale = V::splat(s, scale);
    let mut sink = Sink::<V, STREAM>::new(s, out);
    macro_rules! emit {
        ($i:expr, $l:expr, $d:expr) => {
            if MODE == MODE_GRAD {
                sink.put($i, $d.mul(vscale));
            } else if MODE == MODE_PER {
                sink.put($i, $l);
            }
        };
    }
    let add = accumulate::<V, SQUARES>;
    // Pre-summing in the element type only pays (and only rounds) for f32.
    let presum = PRESUM && !SQUARES && core::mem::size_of::<V::Elem>() == 4;
    let mut acc = [V::acc_zero(s); 4];
    let mut i = 0;
    if presum && lanes > 1 {
        // Rounds of four vectors, each one's body finished (and stored)
        // before the next: interleaved copies of the heavy bodies that
        // pre-sum (BCE) need more registers than there are. The f32 sums
        // of two rounds form a balanced tree, ((l0 + l1) + (l2 + l3)) +
        // ((l4 + l5) + (l6 + l7)), three roundings deep, before one
        // widening into the f64 accumulator. Written as rounds of four
        // (the second of a pair adding the first's sum) rather than eight:
        // the compiler then no longer interleaves eight bodies, whose live
        // values spilled. Together with dropping BCE with logits' software
        // prefetch: its loss 2^16 2.27-2.28 -> 2.39-2.44 G elem/s, 2^24
        // 1.85-1.88 -> 1.92-2.20 (simd_quick, alternated). The loads keep
        // their bounds checks (the compiler does not drop them here).
        macro_rules! one {
            ($k:expr) => {{
                let at = i + $k * lanes;
                let (l, d) = f(at, lanes);
                emit!(at, l, d);
                l
            }};
        }
        let zero = V::splat(s, <V::Elem as Float>::ZERO);
        // A local accumulator, kept in registers across the loop.
        let mut sum = V::acc_zero(s);
        let mut first = zero;
        let mut odd = false;
        while n - i >= 4 * lanes {
            let l0 = one!(0);
            let s01 = l0.add(one!(1));
            let l2 = one!(2);
            let s03 = s01.add(l2.add(one!(3)));
            if odd {
                sum = V::acc_add(sum, first.add(s03));
            } else {
                first = s03;
            }
            odd = !odd;
            i += 4 * lanes;
        }
        if odd {
            sum = V::acc_add(sum, first);
        }
        // The last up to three vectors: (l0 + l1) + l2, widened once.
        if n - i >= lanes {
            let mut part = one!(0);
            i += lanes;
            while n - i >= lanes {
                part = part.add(one!(0));
                i += lanes;
            }
            sum = V::acc_add(sum, part);
        }
        acc[0] = sum;
    }
    // `n - i >= ...` rather than `i + ... <= n`: cannot wrap.
    while n - i >= 4 * lanes {
        // Each vector's store right after its body. The generic x86-64
        // tuning of a default build keeps the source order, and with all
        // four stores at the end of the round squared error loss+grad 2^16
        // ran at 0.83-0.85 of a `-C target-cpu=native` build on Zen 5,
        // whose scheduler moves the stores up. This order: AVX-512 13.4-14.2
        // -> 17.4-19.2 G elem/s (native: 17.6-19.5), `simd_quick`,
        // alternated; the forced `Scalar` backend lost 4.0 -> 3.0.
        let (l0, d0) = f(i, lanes);
        emit!(i, l0, d0);
        let (l1, d1) = f(i + lanes, lanes);
        emit!(i + lanes, l1, d1);
        let (l2, d2) = f(i + 2 * lanes, lanes);
        emit!(i + 2 * lanes, l2, d2);
        let (l3, d3) = f(i + 3 * lanes, lanes);
        emit!(i + 3 * lanes, l3, d3);
        if presum {
            acc[0] = V::acc_add(acc[0], l0.add(l1).add(l2.add(l3)));
        } else {
            acc[0] = add(acc[0], l0, d0);
            acc[1] = add(acc[1], l1, d1);
            acc[2] = add(acc[2], l2, d2);
            acc[3] = add(acc[3], l3, d3);
        }
        i += 4 * lanes;
    }
    while n - i >= lanes {
        let (l, d) = f(i, lanes);
        acc[0] = add(acc[0], l, d);
        emit!(i, l, d);
        i += lanes;
    }
    let out = sink.finish(i);
    if i < n {
        let rest = n - i;
        let (l, d) = f(i, rest);
        // Zero the unused lanes before they reach the accumulator.
        acc[1] = add(acc[1], l.keep_first(rest), d.keep_first(rest));
        if MODE == MODE_GRAD {
            d.mul(vscale).store_partial(&mut out[i..]);
        } else if MODE == MODE_PER {
            l.store_partial(&mut out[i..]);
        }
    }
    let a = V::acc_merge(V::acc_merge(acc[0], acc[1]), V::acc_merge(acc[2], acc[3]));
    V::acc_sum(a)
}

/// The elements of a slice starting at `p` before its first vector-aligned
/// one: `Some(0)` when `p` is aligned, `Some(a)` (`0 < a < LANES`) when the
/// backend realigns in one instruction ([`Vector::REALIGN`]), `None` when
/// it does not (then [`Sink`] and [`Source`] take plain accesses).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn vector_offset<V: Vector>(p: *const V::Elem) -> Option<usize> {
    let a = p.align_offset(V::LANES * core::mem::size_of::<V::Elem>());
    (a == 0 || (V::REALIGN && a < V::LANES)).then_some(a)
}

/// Where the full vectors of the output go, in order of their index `i`
/// (`0, LANES, 2·LANES, …`): plain stores, or streaming stores of whole
/// vectors. Streaming needs vector-aligned addresses; when `out` is not
/// aligned (a `Vec<f32>` from the system allocator is 16-byte aligned) and
/// the backend realigns in one instruction ([`Vector::REALIGN`]), each
/// aligned vector of `out` is put together from the tails and heads of two
/// consecutive result vectors, and only the first and last partial vectors
/// get plain stores. Which vectors are summed together never depends on
/// it, so the loss bits do not either.
struct Sink<'o, V: Vector, const STREAM: bool> {
    s: V::Simd,
    out: &'o mut [V::Elem],
    how: How,
    prev: V,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    Plain,
    Stream,
    /// Streaming, shifted: `out[shift]` is the first vector-aligned element.
    Realign(usize),
}

impl<'o, V: Vector, const STREAM: bool> Sink<'o, V, STREAM> {
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn new(s: V::Simd, out: &'o mut [V::Elem]) -> Self {
        let lanes = V::LANES;
        let how = match vector_offset::<V>(out.as_ptr()) {
            _ if !STREAM || lanes == 1 => How::Plain,
            Some(0) => How::Stream,
            Some(shift) => How::Realign(shift),
            None => How::Plain,
        };
        let prev = V::splat(s, <V::Elem as Float>::ZERO);
        Sink { s, out, how, prev }
    }

    /// Writes `v` as `out[i..i + LANES]`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn put(&mut self, i: usize, v: V) {
        let lanes = V::LANES;
        if !STREAM {
            v.store(&mut self.out[i..i + lanes]);
            return;
        }
        match self.how {
            How::Plain => v.store(&mut self.out[i..i + lanes]),
            How::Stream => v.store_stream(&mut self.out[i..i + lanes]),
            How::Realign(a) => {
                if i == 0 {
                    v.store_partial(&mut self.out[..a]);
                } else {
                    // out[i - LANES + a..i + a] = prev[a..] ++ v[..a].
                    let at = i - lanes + a;
                    V::concat_shift(self.s, self.prev, v, a)
                        .store_stream(&mut self.out[at..at + lanes]);
                }
                self.prev = v;
            }
        }
    }

    /// After the last full vector (`end` = the index after it): stores
    /// what is pending, orders the streaming stores, and hands the buffer
    /// back for the partial vector.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn finish(self, end: usize) -> &'o mut [V::Elem] {
        if !STREAM {
            return self.out;
        }
        match self.how {
            How::Plain => {}
            How::Stream => V::stream_fence(self.s),
            How::Realign(a) => {
                if end > 0 {
                    let lanes = V::LANES;
                    // out[end - LANES + a..end] = prev[a..].
                    V::concat_shift(self.s, self.prev, self.prev, a)
                        .store_partial(&mut self.out[end - lanes + a..end]);
                }
                V::stream_fence(self.s);
            }
        }
        self.out
    }
}

/// The full vectors of `src` in order (`src[0..LANES]`, `src[LANES..2·LANES]`,
/// …), one per [`Source::next_vec`]. When `src` is not vector-aligned (a
/// large `Vec<f32>` from the system allocator starts 16 bytes past a
/// 64-byte boundary) and the backend realigns in one instruction
/// ([`Vector::REALIGN`]), each vector is put together from two consecutive
/// aligned vectors of `src`, each loaded once, so that no load spans two
/// cache lines. The lanes are those of plain loads, and so is every bit
/// computed from them. (256 x 131072 `f32` cross entropy loss+grad, 1
/// thread, the crate called from a standalone timing loop: logits and
/// gradient 16 bytes off a 64-byte boundary ran 2.63–2.79 G elements/s
/// against 3.2–3.7 aligned; with the long rows' maximum and scratch reads
/// through this, 2.79–3.10, on Zen 5. The scratch reads went back to plain
/// loads: on Zen 4 this realigned step, its previous vector kept on the
/// stack in that loop, halved the speed.)
///
/// The realigned step costs a permute per vector, which a loop bound by
/// arithmetic on data in L1 pays for (cross entropy loss+grad 4096 x 1000
/// `f32`, 1 thread: 3.6 against 3.3 G elements/s with its `exp` sweep and
/// maximum realigned): `REALIGN = false` gives plain loads.
pub(crate) struct Source<'a, V: Vector, const REALIGN: bool> {
    s: V::Simd,
    /// Whole vectors of `src` from its first aligned element (all of `src`
    /// when it is not realigned).
    lines: core::slice::ChunksExact<'a, V::Elem>,
    /// `LANES` minus the elements before the first aligned one; `0` for
    /// plain loads.
    shift: usize,
    /// The aligned vector before the next one in `lines` (its lanes before
    /// `src`'s start are zeros).
    prev: V,
}

impl<'a, V: Vector, const REALIGN: bool> Source<'a, V, REALIGN> {
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    pub(crate) fn new(s: V::Simd, src: &'a [V::Elem]) -> Self {
        let lanes = V::LANES;
        let zero = V::splat(s, <V::Elem as Float>::ZERO);
        let a = match vector_offset::<V>(src.as_ptr()) {
            Some(a) if REALIGN && a > 0 && src.len() >= lanes => a,
            _ => {
                return Source {
                    s,
                    lines: src.chunks_exact(lanes),
                    shift: 0,
                    prev: zero,
                }
            }
        };
        // The aligned vector holding src[0..a] in its last `a` lanes.
        let head = V::load_partial(s, &src[..a], <V::Elem as Float>::ZERO);
        Source {
            s,
            lines: src[a..].chunks_exact(lanes),
            shift: lanes - a,
            prev: V::concat_shift(s, zero, head, a),
        }
    }

    /// Whether the loads are realigned (else plain).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    pub(crate) fn realigns(&self) -> bool {
        self.shift != 0
    }

    /// The next full vector of `src`. Called at most `src.len() / LANES`
    /// times (past that, the lanes are unspecified).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    pub(crate) fn next_vec(&mut self) -> V {
        let next = match self.lines.next() {
            Some(l) => V::load(self.s, l),
            // Realigned, the last full vector: its second aligned vector
            // runs past the end of `src`.
            None => V::load_partial(self.s, self.lines.remainder(), <V::Elem as Float>::ZERO),
        };
        if !REALIGN || self.shift == 0 {
            return next;
        }
        let v = V::concat_shift(self.s, self.prev, next, self.shift);
        self.prev = next;
        v
    }
}

/// Adds `l` (or `d²`, for `SQUARES`) to the accumulator.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn accumulate<V: Vector, const SQUARES: bool>(acc: V::Acc, l: V, d: V) -> V::Acc {
    if SQUARES {
        V::acc_add_sq(acc, d)
    } else {
        V::acc_add(acc, l)
    }
}

/// Loads the vector at `i` of `src` (partial with `fill` past the end).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn load_at<V: Vector>(s: V::Simd, src: &[V::Elem], i: usize, fill: V::Elem) -> V {
    let rest = &src[i..];
    if rest.len() >= V::LANES {
        V::load(s, rest)
    } else {
        V::load_partial(s, rest, fill)
    }
}

/// Loads `valid` elements of `src` at `i`: a full vector when `valid ==
/// LANES`, else a masked load with `fill` in the other lanes.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn load_n<V: Vector>(
    s: V::Simd,
    src: &[V::Elem],
    i: usize,
    valid: usize,
    fill: V::Elem,
) -> V {
    if valid >= V::LANES {
        V::load(s, &src[i..i + V::LANES])
    } else {
        V::load_partial(s, &src[i..i + valid], fill)
    }
}

/// How far ahead of its loads an elementwise kernel with `far` set asks for
/// its input lines ([`load_ahead`]).
const AHEAD_BYTES: usize = 2048;

/// [`load_n`], and with `FAR` a prefetch of `src`'s line [`AHEAD_BYTES`]
/// further on (past the end it does nothing observable): for inputs larger
/// than the caches on CPUs where the hardware prefetcher alone falls behind
/// ([`crate::simd::prefetch_streams`]). A const parameter, so that the
/// in-cache loops carry no test (a run-time flag cost them 3–7%, Sapphire
/// Rapids class, squared error and BCE with logits loss 2^16).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn load_ahead<V: Vector, const FAR: bool>(
    s: V::Simd,
    src: &[V::Elem],
    i: usize,
    valid: usize,
    fill: V::Elem,
) -> V {
    if FAR {
        crate::simd::prefetch(src, i + AHEAD_BYTES / core::mem::size_of::<V::Elem>());
    }
    load_n(s, src, i, valid, fill)
}

/// `f` itself: lets a closure bound to a name carry `#[inline(always)]`
/// (attributes are allowed on closures in argument position only).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn closure<F>(f: F) -> F {
    f
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
    /// The operand cut to `n` elements (the caller checked the lengths).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn prefix(self, n: usize) -> Self {
        match self {
            Operand::Slice(v) => Operand::Slice(&v[..n]),
            splat => splat,
        }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn load_n<S: Simd>(self, s: S, i: usize, valid: usize) -> T::Vec<S> {
        match self {
            Operand::Slice(v) => load_n(s, v, i, valid, T::ONE),
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

/// A per-element factor of a kernel: the constant 1, which the compiler
/// folds away ([`Unit`]), or an [`Operand`]. Kernels are instantiated for
/// each, so the common unweighted call does no weight arithmetic at all.
pub(crate) trait Factor<T: Float>: Copy {
    /// Whether this is the constant 1.
    const IS_ONE: bool;
    /// The factor of the `valid` elements at `i` (1 elsewhere).
    fn load_n<S: Simd>(self, s: S, i: usize, valid: usize) -> T::Vec<S>;
}

/// The constant factor 1.
#[derive(Clone, Copy)]
pub(crate) struct Unit;

impl<T: Float> Factor<T> for Unit {
    const IS_ONE: bool = true;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn load_n<S: Simd>(self, s: S, _: usize, _: usize) -> T::Vec<S> {
        T::Vec::<S>::splat(s, T::ONE)
    }
}

impl<T: Float> Factor<T> for Operand<'_, T> {
    const IS_ONE: bool = false;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn load_n<S: Simd>(self, s: S, i: usize, valid: usize) -> T::Vec<S> {
        Operand::load_n(self, s, i, valid)
    }
}

impl<T: Float> Operand<'_, T> {
    /// Whether this is `Splat(1)`.
    fn is_one(&self) -> bool {
        matches!(*self, Operand::Splat(v) if v == T::ONE)
    }
}

/// Squared error `(x - y)^2`, derivative `2 (x - y)`; the factor 2 is folded
/// into the gradient scale by the caller (as PyTorch does).
pub(crate) struct SquaredErrorKernel<'a, T> {
    pub pred: &'a [T],
    pub target: &'a [T],
    pub out: Out<'a, T>,
    /// Prefetch the inputs ([`load_ahead`]).
    pub far: bool,
}

impl<T: Float> Kernel for SquaredErrorKernel<'_, T> {
    type Output = f64;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn run<S: Simd>(self, s: S) -> f64 {
        if self.far {
            squared_error::<S, T, true>(s, self.pred, self.target, self.out)
        } else {
            squared_error::<S, T, false>(s, self.pred, self.target, self.out)
        }
    }
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn squared_error<S: Simd, T: Float, const FAR: bool>(
    s: S,
    pred: &[T],
    target: &[T],
    out: Out<'_, T>,
) -> f64 {
    let n = pred.len().min(target.len());
    let (pred, target) = (&pred[..n], &target[..n]);
    drive_squares::<S, T::Vec<S>, _>(
        s,
        n,
        out,
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        |i, valid| {
            let x: T::Vec<S> = load_ahead::<_, FAR>(s, pred, i, valid, T::ZERO);
            let y: T::Vec<S> = load_ahead::<_, FAR>(s, target, i, valid, T::ZERO);
            let d = x.sub(y);
            (d.mul(d), d)
        },
    )
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
    /// Prefetch the inputs ([`load_ahead`]; the unweighted fast form).
    pub far: bool,
}

impl<T: Float> Kernel for BinaryCrossEntropyKernel<'_, T> {
    type Output = f64;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn run<S: Simd>(self, s: S) -> f64 {
        let n = self.prob.len().min(self.target.len());
        let (prob, target) = (&self.prob[..n], &self.target[..n]);
        if self.weight.is_one() && self.far {
            bce_probs::<S, T, Unit, true>(s, prob, target, Unit, self.out)
        } else if self.weight.is_one() {
            bce_probs::<S, T, Unit, false>(s, prob, target, Unit, self.out)
        } else {
            bce_probs::<S, T, _, false>(s, prob, target, self.weight.prefix(n), self.out)
        }
    }
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn bce_probs<S: Simd, T: Float, W: Factor<T>, const FAR: bool>(
    s: S,
    prob: &[T],
    target: &[T],
    weight: W,
    out: Out<'_, T>,
) -> f64 {
    type V<S, T> = <T as Float>::Vec<S>;
    let n = prob.len().min(target.len());
    let (prob, target) = (&prob[..n], &target[..n]);
    let zero = V::<S, T>::splat(s, T::ZERO);
    let one = V::<S, T>::splat(s, T::ONE);
    // PyTorch uses the f32 constant 1e-12 for both element types.
    let eps = V::<S, T>::splat(s, T::from_f64(1e-12_f32 as f64));
    if W::IS_ONE {
        // Fast form: logarithms specialized to [0, 1] (no special-value
        // selects, no division), f32 terms presummed, and the range check
        // as one running sum per kernel instead of a mask per vector:
        // 0 <= p <= 1 exactly when p (1 - p) >= 0 (also for -0, tiny and
        // huge p; false for NaN), so `min(0, p (1 - p)) + min(0, y (1 - y))`
        // is 0 for every valid lane and negative or NaN for an invalid one
        // (`zero.min(v)` keeps a NaN `v`). A bad lane makes the result NaN;
        // as for any non-finite fast sum, the careful form below then runs.
        let bad = core::cell::Cell::new(zero);
        let mut out = out;
        let fast = drive_lanes_presummed::<S, V<S, T>, _>(
            s,
            n,
            out.reborrow(),
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            |i, valid| {
                let p: V<S, T> = load_ahead::<_, FAR>(s, prob, i, valid, T::ZERO);
                let y: V<S, T> = load_ahead::<_, FAR>(s, target, i, valid, T::ZERO);
                let one_minus_y = one.sub(y);
                let yq = one_minus_y.mul(y);
                // Hard labels (no lane with 0 < y < 1, the usual case): one
                // logarithm a lane, of p where y = 1 and of 1 - p where
                // y = 0. Bitwise the general form's value there, whose other
                // term is a zero (0 times a logarithm in [-100, 0]), which
                // leaves the sum unchanged. A lane out of [0, 1] gives some
                // number, which `bad` below rejects.
                let l = if V::<S, T>::any(zero.lt(yq)) {
                    let log_p = math::ln_unit_clamped(s, p);
                    let log_q = math::ln_one_minus_unit_clamped(s, p);
                    y.mul_add(log_p, one_minus_y.mul(log_q)).neg()
                } else {
                    math::ln_unit_or_one_minus_clamped(s, p, y.eq(one)).neg()
                };
                let pq = one.sub(p).mul(p);
                bad.set(bad.get().add(zero.min(pq).add(zero.min(yq))));
                let d = p.sub(y).div(pq.max(eps));
                (l, d)
            },
        );
        // The lanes of `bad` are <= 0 or NaN: any bad lane shows in the sum.
        if fast.is_finite() && bad.get().reduce_sum() >= 0.0 {
            return fast;
        }
        return bce_probs_careful(s, prob, target, weight, out);
    }
    bce_probs_careful(s, prob, target, weight, out)
}

/// [`bce_probs`] with the general logarithms and a range check per vector.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn bce_probs_careful<S: Simd, T: Float, W: Factor<T>>(
    s: S,
    prob: &[T],
    target: &[T],
    weight: W,
    out: Out<'_, T>,
) -> f64 {
    type V<S, T> = <T as Float>::Vec<S>;
    let n = prob.len().min(target.len());
    let (prob, target) = (&prob[..n], &target[..n]);
    let zero = V::<S, T>::splat(s, T::ZERO);
    let one = V::<S, T>::splat(s, T::ONE);
    let floor = V::<S, T>::splat(s, T::from_f64(-100.0));
    // PyTorch uses the f32 constant 1e-12 for both element types.
    let eps = V::<S, T>::splat(s, T::from_f64(1e-12_f32 as f64));
    let nan = V::<S, T>::splat(s, T::from_f64(f64::NAN));
    drive_lanes::<S, V<S, T>, _>(
        s,
        n,
        out,
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        |i, valid| {
            let p: V<S, T> = load_n(s, prob, i, valid, T::ZERO);
            let y: V<S, T> = load_n(s, target, i, valid, T::ZERO);
            let log_p = math::ln(s, p).max(floor);
            let log_q = math::log1p(s, p.neg()).max(floor);
            // -(y ln p + (1 - y) ln(1 - p)), both terms <= 0 for valid lanes.
            let l = y.mul_add(log_p, one.sub(y).mul(log_q)).neg();
            // Valid iff 0 <= p <= 1 and 0 <= y <= 1 (false for NaN).
            let ok = V::<S, T>::mask_and(
                V::<S, T>::mask_and(zero.le(p), p.le(one)),
                V::<S, T>::mask_and(zero.le(y), y.le(one)),
            );
            let l = V::<S, T>::select(ok, l, nan);
            let d = p.sub(y).div(one.sub(p).mul(p).max(eps));
            if W::IS_ONE {
                (l, d)
            } else {
                let w = weight.load_n(s, i, valid);
                (l.mul(w), d.mul(w))
            }
        },
    )
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
    /// Prefetch the inputs ([`load_ahead`]; without weights).
    pub far: bool,
}

impl<T: Float> Kernel for BinaryCrossEntropyWithLogitsKernel<'_, T> {
    type Output = f64;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn run<S: Simd>(self, s: S) -> f64 {
        match self.pos_weight {
            Operand::Splat(pw) => bce_logits_segment(
                s,
                self.logit,
                self.target,
                self.weight,
                Operand::Splat(pw),
                self.out,
                self.far,
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
                    sum += bce_logits_segment(s, l0, t0, w0, Operand::Slice(pw_seg), o0, false);
                    (logit, target, weight, out) = (l1, t1, w1, o1);
                    phase = 0;
                }
                sum
            }
        }
    }
}

/// One segment with one `pos_weight` operand: picks the instantiation for
/// the weights that are the constant 1.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn bce_logits_segment<S: Simd, T: Float>(
    s: S,
    logit: &[T],
    target: &[T],
    weight: Operand<'_, T>,
    pos_weight: Operand<'_, T>,
    out: Out<'_, T>,
    far: bool,
) -> f64 {
    let n = logit.len().min(target.len());
    let (logit, target) = (&logit[..n], &target[..n]);
    let (weight, pos_weight) = (weight.prefix(n), pos_weight.prefix(n));
    match (weight.is_one(), pos_weight.is_one()) {
        (true, true) if far => bce_logits::<S, T, _, _, true>(s, logit, target, Unit, Unit, out),
        (true, true) => bce_logits::<S, T, _, _, false>(s, logit, target, Unit, Unit, out),
        (true, false) => bce_logits::<S, T, _, _, false>(s, logit, target, Unit, pos_weight, out),
        (false, true) => bce_logits::<S, T, _, _, false>(s, logit, target, weight, Unit, out),
        (false, false) => {
            bce_logits::<S, T, _, _, false>(s, logit, target, weight, pos_weight, out)
        }
    }
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn bce_logits<S: Simd, T: Float, W: Factor<T>, P: Factor<T>, const FAR: bool>(
    s: S,
    logit: &[T],
    target: &[T],
    weight: W,
    pos_weight: P,
    out: Out<'_, T>,
) -> f64 {
    type V<S, T> = <T as Float>::Vec<S>;
    let n = logit.len().min(target.len());
    let (logit, target) = (&logit[..n], &target[..n]);
    let zero = V::<S, T>::splat(s, T::ZERO);
    let one = V::<S, T>::splat(s, T::ONE);
    let inf = V::<S, T>::splat(s, T::from_f64(f64::INFINITY));
    // `careful`: PyTorch's literal form for infinite logits, checked per
    // vector. The fast form leaves it out: an infinite logit makes its term
    // (and so the sum) inf or NaN either way, so a non-finite fast sum
    // reruns the careful kernel, which decides between the two.
    let term = closure(
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        |i: usize, valid: usize, careful: bool, sum_only: bool| {
            let x: V<S, T> = load_ahead::<_, FAR>(s, logit, i, valid, T::ZERO);
            let y: V<S, T> = load_ahead::<_, FAR>(s, target, i, valid, T::ZERO);
            let lg = if sum_only {
                math::logistic_term(s, x)
            } else {
                math::logistic(s, x)
            };
            let one_minus_y = one.sub(y);
            // pw y and lw = 1 + (pw - 1) y = (1 - y) + pw y.
            let (pw_y, log_weight) = if P::IS_ONE {
                (y, one)
            } else {
                let pw = pos_weight.load_n(s, i, valid);
                let pw_y = pw.mul(y);
                // For y in [0, 1] both parts are >= 0 (no cancellation); for
                // targets outside it (not validated, as in PyTorch) those two
                // parts cancel instead, so use 1 + (pw - 1) y there.
                let in_unit = V::<S, T>::mask_and(zero.le(y), y.le(one));
                let lw =
                    V::<S, T>::select(in_unit, one_minus_y.add(pw_y), pw.sub(one).mul_add(y, one));
                (pw_y, lw)
            };
            let neg = x.lt(zero);
            // (1 - y) max(x, 0) + pw y max(-x, 0) + lw ln(1 + e^{-|x|}): no
            // cancellation of x against softplus(-x). With weights, w goes
            // into the coefficients before they meet |x|: (w·pw·y)·|x| fits
            // whenever the weighted term does, where (pw·y·|x|)·w may
            // overflow (or give 0·inf = NaN for w = 0).
            let coef = V::<S, T>::select(neg, pw_y, one_minus_y);
            let w = if W::IS_ONE {
                one
            } else {
                weight.load_n(s, i, valid)
            };
            let ax = x.abs();
            let l = if W::IS_ONE {
                ax.mul_add(coef, log_weight.mul(lg.log1p_e))
            } else {
                // coef · w · |x| with every partial product in range: |x|
                // meets the smaller of |coef|, w first when |x| >= 1 (which
                // brings it down), the larger first otherwise. (coef · w)
                // first underflowed for a subnormal w (then times 1e38:
                // 60% off), (coef · |x|) first overflowed for huge pw.
                // Magnitudes: weights are not validated (a negative w
                // compared as is made |x| meet it first: -inf · 0 = NaN).
                //
                // The largest of the three magnitudes meets the smallest
                // first, then the middle one: the first product lies
                // between them, so it neither overflows (when the whole
                // does not) nor leaves the normal range needlessly. With
                // `|x| >= 1` deciding alone, |x| = 55 met a subnormal w
                // first (7.7e-44, a few bits) before pw·y = 2.7e11 (fuzz,
                // bce_logits f32, 5e-4 off).
                let coef_smaller = coef.abs().lt(w.abs());
                let small = V::<S, T>::select(coef_smaller, coef, w);
                let big = V::<S, T>::select(coef_smaller, w, coef);
                let x_largest = big.abs().le(ax);
                let x_smallest = ax.lt(small.abs());
                // x largest: (x·small)·big; x smallest: (x·big)·small;
                // x in the middle: (small·big)·x.
                let a = V::<S, T>::select(x_largest, ax, V::<S, T>::select(x_smallest, ax, small));
                let b = V::<S, T>::select(x_largest, small, big);
                let c = V::<S, T>::select(x_largest, big, V::<S, T>::select(x_smallest, small, ax));
                // lw · ln(1 + e^-|x|) <= lw (the log is <= ln 2), then w.
                a.mul(b).mul_add(c, log_weight.mul(lg.log1p_e).mul(w))
            };
            let l = if careful {
                let inf_lanes = x.abs().eq(inf);
                if V::<S, T>::any(inf_lanes) {
                    // PyTorch's literal form for infinite logits (0 * inf = NaN).
                    let literal =
                        one_minus_y.mul_add(x, log_weight.mul(x.neg().max(zero).add(lg.log1p_e)));
                    let literal = if W::IS_ONE { literal } else { literal.mul(w) };
                    V::<S, T>::select(inf_lanes, literal, l)
                } else {
                    l
                }
            } else {
                l
            };
            // (1 - y) σ(x) - pw y σ(-x) with σ(|x|) = inv, σ(-|x|) = e·inv:
            // inv·((1 - y) - pw y·e) for x >= 0, inv·((1 - y)·e - pw y) for
            // x < 0, i.e. inv·(a·e + b), one rounding before the product.
            let neg_pw_y = pw_y.neg();
            let a = V::<S, T>::select(neg, one_minus_y, neg_pw_y);
            let b = V::<S, T>::select(neg, neg_pw_y, one_minus_y);
            let d = a.mul_add(lg.e, b).mul(lg.inv);
            if W::IS_ONE {
                (l, d)
            } else {
                (l, d.mul(w))
            }
        },
    );
    let careful = closure(
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        |out: Out<'_, T>| {
            drive_lanes::<S, V<S, T>, _>(
                s,
                n,
                out,
                #[cfg_attr(not(debug_assertions), inline(always))]
                #[cfg_attr(debug_assertions, inline)]
                |i, valid| term(i, valid, true, false),
            )
        },
    );
    if !(W::IS_ONE && P::IS_ONE) {
        // The weighted instantiations: only the careful kernel.
        return careful(out);
    }
    let mut out = out;
    let fast = if matches!(out, Out::None) {
        // The loss alone: its terms only meet in the sum, so `e^{-|x|}`
        // comes from the cheaper `exp` for terms (softplus within 3 ulp
        // instead of 2.5, see `math::logistic_term`). One instantiation.
        let one = <T as Float>::ONE;
        drive_mode::<S, V<S, T>, _, MODE_LOSS, false, true, false>(
            s,
            n,
            &mut [],
            one,
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            |i, valid| term(i, valid, false, true),
        )
    } else {
        drive_lanes_presummed::<S, V<S, T>, _>(
            s,
            n,
            out.reborrow(),
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            |i, valid| term(i, valid, false, false),
        )
    };
    if fast.is_finite() {
        fast
    } else {
        careful(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;

    /// Squared error and BCE with logits (the pre-summing driver) into
    /// `buf[off..off + x.len()]`, with or without streaming: each kernel's
    /// sum and the bits of the whole buffer after it (NaN-filled first).
    fn run<T: Float>(
        b: Backend,
        x: &[T],
        y: &[T],
        off: usize,
        grad: bool,
        stream: bool,
    ) -> Vec<(u64, Vec<u64>)> {
        let n = x.len();
        let mut results = Vec::new();
        for k in 0..2 {
            let mut buf = vec![T::from_f64(f64::NAN); n + off + 20];
            let o = &mut buf[off..off + n];
            let out = if grad {
                Out::Grad(o, T::from_f64(0.5), stream)
            } else {
                Out::PerElement(o, stream)
            };
            let sum = if k == 0 {
                crate::simd::dispatch(
                    b,
                    SquaredErrorKernel {
                        pred: x,
                        target: y,
                        out,
                        far: false,
                    },
                )
            } else {
                crate::simd::dispatch(
                    b,
                    BinaryCrossEntropyWithLogitsKernel {
                        logit: x,
                        target: y,
                        weight: Operand::Splat(T::ONE),
                        pos_weight: Operand::Splat(T::ONE),
                        phase: 0,
                        out,
                        far: false,
                    },
                )
            };
            let bits = buf.iter().map(|v| v.to_f64().to_bits()).collect();
            results.push((sum.to_bits(), bits));
        }
        results
    }

    fn check<T: Float>() {
        let lens = [
            0usize, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257, 1000,
        ];
        let x: Vec<T> = (0..1100)
            .map(|i| T::from_f64(((i * 37) % 101) as f64 / 7.0 - 6.0))
            .collect();
        let y: Vec<T> = (0..1100)
            .map(|i| T::from_f64(((i * 13) % 11) as f64 / 10.0))
            .collect();
        let mut realigned = 0;
        for b in Backend::available() {
            for grad in [true, false] {
                // Every misalignment of the output against the vector size
                // (64 bytes on AVX-512).
                for off in 0..17 {
                    for &n in &lens {
                        let plain = run(b, &x[..n], &y[..n], off, grad, false);
                        let streamed = run(b, &x[..n], &y[..n], off, grad, true);
                        assert_eq!(plain, streamed, "{b:?} grad={grad} n={n} off={off}");
                        for (_, bits) in &plain {
                            let nan = |u: &u64| f64::from_bits(*u).is_nan();
                            // Written exactly out[off..off + n], with values.
                            assert!(bits[..off].iter().all(nan), "{b:?} n={n} off={off}");
                            assert!(bits[off + n..].iter().all(nan), "{b:?} n={n} off={off}");
                            assert!(!bits[off..off + n].iter().any(nan), "{b:?} n={n} off={off}");
                        }
                        if b == Backend::Avx512 && n >= 32 {
                            realigned += 1;
                        }
                    }
                }
            }
        }
        if Backend::available().contains(&Backend::Avx512) {
            assert!(realigned > 0);
        }
    }

    #[test]
    fn streamed_outputs_equal_plain_ones_at_every_alignment() {
        check::<f32>();
        check::<f64>();
    }

    /// Every full vector of `src` through [`Source`] and through plain
    /// loads, as bits (NaN payloads included), and whether it realigned.
    struct Both<'a, T> {
        src: &'a [T],
    }
    impl<T: Float> Kernel for Both<'_, T> {
        type Output = (Vec<u64>, Vec<u64>, bool);
        fn run<S: Simd>(self, s: S) -> Self::Output {
            type V<S, T> = <T as Float>::Vec<S>;
            let lanes = V::<S, T>::LANES;
            let bits = |v: V<S, T>| {
                let mut l = vec![T::ZERO; lanes];
                v.store(&mut l);
                l.into_iter()
                    .map(|x| x.to_f64().to_bits())
                    .collect::<Vec<_>>()
            };
            let mut src = Source::<V<S, T>, true>::new(s, self.src);
            let mut plain = Source::<V<S, T>, false>::new(s, self.src);
            let realigned = src.realigns();
            assert!(!plain.realigns());
            let (mut got, mut want) = (Vec::new(), Vec::new());
            for c in self.src.chunks_exact(lanes) {
                got.extend(bits(src.next_vec()));
                let v = V::<S, T>::load(s, c);
                assert_eq!(bits(plain.next_vec()), bits(v));
                want.extend(bits(v));
            }
            (got, want, realigned)
        }
    }

    fn source_check<T: Float>() {
        let x: Vec<T> = (0..200)
            .map(|i| match i % 23 {
                5 => T::from_f64(f64::NAN),
                9 => T::from_f64(-0.0),
                _ => T::from_f64(i as f64 - 77.5),
            })
            .collect();
        let mut realigned = 0;
        for b in Backend::available() {
            for off in 0..17 {
                for n in 0..=70 {
                    let (got, want, r) = crate::simd::dispatch(
                        b,
                        Both {
                            src: &x[off..off + n],
                        },
                    );
                    assert_eq!(got, want, "{b:?} off={off} n={n}");
                    // The vectors hold the elements, in order.
                    let elems: Vec<u64> = x[off..off + want.len()]
                        .iter()
                        .map(|v| v.to_f64().to_bits())
                        .collect();
                    assert_eq!(want, elems, "{b:?} off={off} n={n}");
                    realigned += usize::from(r);
                }
            }
        }
        if Backend::available().contains(&Backend::Avx512) {
            assert!(realigned > 0);
        }
    }

    #[test]
    fn source_vectors_equal_plain_loads_at_every_alignment() {
        source_check::<f32>();
        source_check::<f64>();
    }
}
