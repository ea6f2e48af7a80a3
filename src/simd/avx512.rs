//! The AVX-512 backend: `__m512` (16 `f32` lanes) and `__m512d` (8 `f64`
//! lanes), detected at run time (F, DQ, BW, VL, plus AVX2 and FMA).
//!
//! Every method is a thin `#[inline(always)]` (debug builds: `#[inline]`,
//! see the `simd` module docs) wrapper over one or a few
//! `std::arch` intrinsics; [`run`] is the single `#[target_feature]`
//! trampoline under which a whole kernel is compiled. AVX-512 gives three
//! things the other backends emulate: masked loads and stores for partial
//! vectors (masked-off lanes are never accessed), `vscalefps` for a
//! single-rounding `x·2^n` over the whole exponent range, and
//! `vgetexpps`/`vgetmantps` for `frexp` including subnormals.

use core::arch::x86_64::*;

use super::{Kernel, Simd, Vector};
use crate::Backend;

/// Whether the build already guarantees the features (then no probe).
pub(crate) const STATIC: bool = cfg!(all(
    target_feature = "avx512f",
    target_feature = "avx512dq",
    target_feature = "avx512bw",
    target_feature = "avx512vl",
    target_feature = "avx2",
    target_feature = "fma"
));

/// Whether this CPU has the features (uncached; see [`super::has_avx512`]).
pub(crate) fn static_or_detected() -> bool {
    use std::arch::is_x86_feature_detected as has;
    STATIC
        || (has!("avx512f")
            && has!("avx512dq")
            && has!("avx512bw")
            && has!("avx512vl")
            && has!("avx2")
            && has!("fma"))
}

/// Token of the AVX-512 backend: exists only on a CPU that has it.
#[derive(Clone, Copy, Debug)]
pub struct Avx512 {
    _private: (),
}

impl Avx512 {
    /// The token, if this CPU has AVX-512 F/DQ/BW/VL (and AVX2, FMA).
    #[inline]
    pub fn new() -> Option<Self> {
        if super::has_avx512() {
            Some(Avx512 { _private: () })
        } else {
            None
        }
    }
}

impl Simd for Avx512 {
    type F32 = F32x16;
    type F64 = F64x8;
    const BACKEND: Backend = Backend::Avx512;
}

#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
fn run_with_avx512<K: Kernel>(token: Avx512, kernel: K) -> K::Output {
    kernel.run(token)
}

/// Runs `kernel` compiled for AVX-512.
#[inline]
pub(crate) fn run<K: Kernel>(token: Avx512, kernel: K) -> K::Output {
    // SAFETY: `token` exists only if `Avx512::new` found AVX-512 F/DQ/BW/VL,
    // AVX2 and FMA on this CPU.
    unsafe { run_with_avx512(token, kernel) }
}

/// 16 `f32` lanes.
#[derive(Clone, Copy, Debug)]
pub struct F32x16(__m512);
/// 8 `f64` lanes.
#[derive(Clone, Copy, Debug)]
pub struct F64x8(__m512d);
/// `f64` accumulator of [`F32x16`]: the low and high halves, widened.
#[derive(Clone, Copy, Debug)]
pub struct Acc32([__m512d; 2]);
/// `f64` accumulator of [`F64x8`].
#[derive(Clone, Copy, Debug)]
pub struct Acc64(__m512d);
/// Lane mask of [`F32x16`].
#[derive(Clone, Copy, Debug)]
pub struct M16(__mmask16);
/// Lane mask of [`F64x8`].
#[derive(Clone, Copy, Debug)]
pub struct M8(__mmask8);

const ROUND_NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

/// Bit mask of the low `min(n, 16)` lanes.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn first16(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// Bit mask of the low `min(n, 8)` lanes.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn first8(n: usize) -> __mmask8 {
    if n >= 8 {
        0xff
    } else {
        ((1u32 << n) - 1) as __mmask8
    }
}

impl Vector for F32x16 {
    type Elem = f32;
    type Simd = Avx512;
    type Mask = M16;
    type Acc = Acc32;
    const LANES: usize = 16;
    const FUSED: bool = true;

    // SAFETY (every `unsafe` block below unless it says otherwise): a value of
    // this type exists only if an `Avx512` token was created, i.e. the CPU has
    // AVX-512 F/DQ/BW/VL, so the intrinsics are supported; raw loads and
    // stores are preceded by the length check stated next to them.

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn splat(_: Avx512, x: f32) -> Self {
        // SAFETY: the token proves AVX-512F.
        Self(unsafe { _mm512_set1_ps(x) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn load(_: Avx512, src: &[f32]) -> Self {
        assert!(src.len() >= 16);
        // SAFETY: the token proves AVX-512F; `src` has at least 16 readable elements.
        Self(unsafe { _mm512_loadu_ps(src.as_ptr()) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn load_partial(_: Avx512, src: &[f32], fill: f32) -> Self {
        let k = first16(src.len());
        // SAFETY: the token proves AVX-512F; the masked load reads only the
        // lanes set in `k`, the first `min(src.len(), 16)`.
        Self(unsafe { _mm512_mask_loadu_ps(_mm512_set1_ps(fill), k, src.as_ptr()) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store(self, dst: &mut [f32]) {
        assert!(dst.len() >= 16);
        // SAFETY: the token proves AVX-512F; `dst` has at least 16 writable elements.
        unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), self.0) }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store_partial(self, dst: &mut [f32]) {
        let k = first16(dst.len());
        // SAFETY: the token proves AVX-512F; the masked store writes only the
        // first `min(dst.len(), 16)` lanes.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), k, self.0) }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store_stream(self, dst: &mut [f32]) {
        assert!(dst.len() >= 16);
        let p = dst.as_mut_ptr();
        if (p as usize).is_multiple_of(64) {
            // SAFETY: the token proves AVX-512F; `dst` has at least 16 writable
            // elements and `p` is 64-byte aligned, as the streaming store requires.
            unsafe { _mm512_stream_ps(p, self.0) }
        } else {
            // SAFETY: the token proves AVX-512F; `dst` has at least 16 writable elements.
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn stream_fence(_: Avx512) {
        // SAFETY: `sfence` is SSE, part of the x86-64 baseline; it only
        // orders stores.
        unsafe { _mm_sfence() }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn add(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_add_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn sub(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_sub_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mul(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_mul_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn div(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_div_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn recip(self) -> Self {
        // r0 = vrcp14ps (relative error < 2^-14), then r1 = r0 + r0·(1 - x·r0):
        // error r0·e² < 2^-28 plus one rounding.
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let r0 = _mm512_rcp14_ps(self.0);
            let e = _mm512_fnmadd_ps(self.0, r0, _mm512_set1_ps(1.0));
            Self(_mm512_fmadd_ps(r0, e, r0))
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn recip_approx(self) -> Self {
        // `vrcp14ps`: relative error below 2^-14.
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_rcp14_ps(self.0) })
    }
    const REALIGN: bool = true;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn concat_shift(_: Avx512, lo: Self, hi: Self, shift: usize) -> Self {
        // `vpermt2ps` over the 32 lanes lo ++ hi: lane i takes lane
        // shift + i (the instruction reads the low five bits of each index).
        // SAFETY: see the note at the top of this impl.
        Self(unsafe {
            let idx = _mm512_add_epi32(
                _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                _mm512_set1_epi32(shift as i32),
            );
            _mm512_permutex2var_ps(lo.0, idx, hi.0)
        })
    }
    const TABLE16: bool = true;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn lookup16(_: Avx512, idx: Self, table: &[f32; 16]) -> Self {
        // `vpermps`: lane i takes table[idx_i & 15] (the instruction reads
        // only the low four bits of each index).
        // SAFETY: see the note at the top of this impl; the unaligned load
        // reads exactly the 16 floats of `table`.
        Self(unsafe {
            _mm512_permutexvar_ps(_mm512_castps_si512(idx.0), _mm512_loadu_ps(table.as_ptr()))
        })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn lookup32(_: Avx512, idx: Self, table: &[f32; 32]) -> Self {
        // `vpermt2ps`: lane i takes table[idx_i & 31] (the instruction reads
        // only the low five bits of each index).
        // SAFETY: see the note at the top of this impl; the two unaligned
        // loads read exactly the 32 floats of `table`.
        Self(unsafe {
            _mm512_permutex2var_ps(
                _mm512_loadu_ps(table.as_ptr()),
                _mm512_castps_si512(idx.0),
                _mm512_loadu_ps(table.as_ptr().add(16)),
            )
        })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_fmadd_ps(self.0, a.0, b.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn neg(self) -> Self {
        // SAFETY: see the note at the top of this impl (AVX-512DQ for the xor).
        Self(unsafe { _mm512_xor_ps(self.0, _mm512_set1_ps(-0.0)) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn abs(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_abs_ps(self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn max(self, o: Self) -> Self {
        // `vmaxps a, b` is exactly `a > b ? a : b`.
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_max_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn min(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_min_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn round(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_roundscale_ps::<ROUND_NEAREST>(self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn lt(self, o: Self) -> M16 {
        // SAFETY: see the note at the top of this impl.
        M16(unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn le(self, o: Self) -> M16 {
        // SAFETY: see the note at the top of this impl.
        M16(unsafe { _mm512_cmp_ps_mask::<_CMP_LE_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn eq(self, o: Self) -> M16 {
        // SAFETY: see the note at the top of this impl.
        M16(unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn is_nan(self) -> M16 {
        // SAFETY: see the note at the top of this impl.
        M16(unsafe { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn select(m: M16, a: Self, b: Self) -> Self {
        // `mask_blend(k, b, a)` takes `a` where `k` is set.
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_mask_blend_ps(m.0, b.0, a.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn any(m: M16) -> bool {
        m.0 != 0
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mask_or(a: M16, b: M16) -> M16 {
        M16(a.0 | b.0)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mask_and(a: M16, b: M16) -> M16 {
        M16(a.0 & b.0)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn keep_first(self, n: usize) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_maskz_mov_ps(first16(n), self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn ldexp(self, n: Self) -> Self {
        // `vscalefps`: self · 2^floor(n), one rounding, full exponent range.
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_scalef_ps(self.0, n.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn frexp(self) -> (Self, Self) {
        // `vgetexpps` = floor(log2 |x|) and `vgetmantps` = mantissa in [1, 2),
        // both exact for subnormals too.
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let e = _mm512_getexp_ps(self.0);
            let m = _mm512_getmant_ps::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_SRC>(self.0);
            (Self(e), Self(m))
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn reduce_max(self) -> f32 {
        // SAFETY: see the note at the top of this impl.
        unsafe { _mm512_reduce_max_ps(self.0) }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn reduce_sum(self) -> f64 {
        Self::acc_sum(Self::acc_add(Self::acc_zero(Avx512 { _private: () }), self))
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_zero(_: Avx512) -> Acc32 {
        // SAFETY: the token proves AVX-512F.
        Acc32(unsafe { [_mm512_setzero_pd(); 2] })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add(acc: Acc32, v: Self) -> Acc32 {
        // SAFETY: see the note at the top of this impl (AVX-512DQ for the extract).
        unsafe {
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v.0));
            let hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps::<1>(v.0));
            Acc32([_mm512_add_pd(acc.0[0], lo), _mm512_add_pd(acc.0[1], hi)])
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add_sq(acc: Acc32, v: Self) -> Acc32 {
        // SAFETY: see the note at the top of this impl (AVX-512DQ for the extract).
        unsafe {
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v.0));
            let hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps::<1>(v.0));
            Acc32([
                _mm512_fmadd_pd(lo, lo, acc.0[0]),
                _mm512_fmadd_pd(hi, hi, acc.0[1]),
            ])
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_merge(a: Acc32, b: Acc32) -> Acc32 {
        // SAFETY: an accumulator is made only by `acc_zero`, from a token.
        Acc32(unsafe { [_mm512_add_pd(a.0[0], b.0[0]), _mm512_add_pd(a.0[1], b.0[1])] })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_scale(acc: Acc32, v: Self) -> Acc32 {
        // SAFETY: see the note at the top of this impl (AVX-512DQ for the extract).
        unsafe {
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v.0));
            let hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps::<1>(v.0));
            Acc32([_mm512_mul_pd(acc.0[0], lo), _mm512_mul_pd(acc.0[1], hi)])
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_sum(acc: Acc32) -> f64 {
        // SAFETY: an accumulator is made only by `acc_zero`, from a token.
        F64x8::acc_sum(Acc64(unsafe { _mm512_add_pd(acc.0[0], acc.0[1]) }))
    }
}

impl Vector for F64x8 {
    type Elem = f64;
    type Simd = Avx512;
    type Mask = M8;
    type Acc = Acc64;
    const LANES: usize = 8;
    const REALIGN: bool = true;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn concat_shift(_: Avx512, lo: Self, hi: Self, shift: usize) -> Self {
        // `vpermt2pd` over the 16 lanes lo ++ hi: lane i takes lane
        // shift + i (the instruction reads the low four bits of each index).
        // SAFETY: a value of this type exists only if an `Avx512` token was
        // created, so AVX-512F is present; no memory is accessed.
        Self(unsafe {
            let idx = _mm512_add_epi64(
                _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0),
                _mm512_set1_epi64(shift as i64),
            );
            _mm512_permutex2var_pd(lo.0, idx, hi.0)
        })
    }
    const FUSED: bool = true;

    // SAFETY (every `unsafe` block below unless it says otherwise): as for
    // `F32x16`, a value of this type proves AVX-512 F/DQ/BW/VL.

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn splat(_: Avx512, x: f64) -> Self {
        // SAFETY: the token proves AVX-512F.
        Self(unsafe { _mm512_set1_pd(x) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn load(_: Avx512, src: &[f64]) -> Self {
        assert!(src.len() >= 8);
        // SAFETY: the token proves AVX-512F; `src` has at least 8 readable elements.
        Self(unsafe { _mm512_loadu_pd(src.as_ptr()) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn load_partial(_: Avx512, src: &[f64], fill: f64) -> Self {
        let k = first8(src.len());
        // SAFETY: the token proves AVX-512F; the masked load reads only the
        // first `min(src.len(), 8)` lanes.
        Self(unsafe { _mm512_mask_loadu_pd(_mm512_set1_pd(fill), k, src.as_ptr()) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store(self, dst: &mut [f64]) {
        assert!(dst.len() >= 8);
        // SAFETY: the token proves AVX-512F; `dst` has at least 8 writable elements.
        unsafe { _mm512_storeu_pd(dst.as_mut_ptr(), self.0) }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store_partial(self, dst: &mut [f64]) {
        let k = first8(dst.len());
        // SAFETY: the token proves AVX-512F; the masked store writes only the
        // first `min(dst.len(), 8)` lanes.
        unsafe { _mm512_mask_storeu_pd(dst.as_mut_ptr(), k, self.0) }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store_stream(self, dst: &mut [f64]) {
        assert!(dst.len() >= 8);
        let p = dst.as_mut_ptr();
        if (p as usize).is_multiple_of(64) {
            // SAFETY: the token proves AVX-512F; `dst` has at least 8 writable
            // elements and `p` is 64-byte aligned, as the streaming store requires.
            unsafe { _mm512_stream_pd(p, self.0) }
        } else {
            // SAFETY: the token proves AVX-512F; `dst` has at least 8 writable elements.
            unsafe { _mm512_storeu_pd(p, self.0) }
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn stream_fence(_: Avx512) {
        // SAFETY: `sfence` is SSE, part of the x86-64 baseline; it only
        // orders stores.
        unsafe { _mm_sfence() }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn add(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_add_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn sub(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_sub_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mul(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_mul_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn div(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_div_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn recip(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_div_pd(_mm512_set1_pd(1.0), self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_fmadd_pd(self.0, a.0, b.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn neg(self) -> Self {
        // SAFETY: see the note at the top of this impl (AVX-512DQ for the xor).
        Self(unsafe { _mm512_xor_pd(self.0, _mm512_set1_pd(-0.0)) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn abs(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_abs_pd(self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn max(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_max_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn min(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_min_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn round(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_roundscale_pd::<ROUND_NEAREST>(self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn lt(self, o: Self) -> M8 {
        // SAFETY: see the note at the top of this impl.
        M8(unsafe { _mm512_cmp_pd_mask::<_CMP_LT_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn le(self, o: Self) -> M8 {
        // SAFETY: see the note at the top of this impl.
        M8(unsafe { _mm512_cmp_pd_mask::<_CMP_LE_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn eq(self, o: Self) -> M8 {
        // SAFETY: see the note at the top of this impl.
        M8(unsafe { _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn is_nan(self) -> M8 {
        // SAFETY: see the note at the top of this impl.
        M8(unsafe { _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(self.0, self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn select(m: M8, a: Self, b: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_mask_blend_pd(m.0, b.0, a.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn any(m: M8) -> bool {
        m.0 != 0
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mask_or(a: M8, b: M8) -> M8 {
        M8(a.0 | b.0)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mask_and(a: M8, b: M8) -> M8 {
        M8(a.0 & b.0)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn keep_first(self, n: usize) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_maskz_mov_pd(first8(n), self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn ldexp(self, n: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm512_scalef_pd(self.0, n.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn frexp(self) -> (Self, Self) {
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let e = _mm512_getexp_pd(self.0);
            let m = _mm512_getmant_pd::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_SRC>(self.0);
            (Self(e), Self(m))
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn reduce_max(self) -> f64 {
        // SAFETY: see the note at the top of this impl.
        unsafe { _mm512_reduce_max_pd(self.0) }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn reduce_sum(self) -> f64 {
        Self::acc_sum(Acc64(self.0))
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_zero(_: Avx512) -> Acc64 {
        // SAFETY: the token proves AVX-512F.
        Acc64(unsafe { _mm512_setzero_pd() })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add(acc: Acc64, v: Self) -> Acc64 {
        // SAFETY: see the note at the top of this impl.
        Acc64(unsafe { _mm512_add_pd(acc.0, v.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add_sq(acc: Acc64, v: Self) -> Acc64 {
        // SAFETY: see the note at the top of this impl.
        Acc64(unsafe { _mm512_fmadd_pd(v.0, v.0, acc.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_merge(a: Acc64, b: Acc64) -> Acc64 {
        // SAFETY: an accumulator is made only by `acc_zero`, from a token.
        Acc64(unsafe { _mm512_add_pd(a.0, b.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_scale(acc: Acc64, v: Self) -> Acc64 {
        // SAFETY: see the note at the top of this impl.
        Acc64(unsafe { _mm512_mul_pd(acc.0, v.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_sum(acc: Acc64) -> f64 {
        // Fixed order: halves, quarters, pairs.
        // SAFETY: an accumulator is made only by `acc_zero` or from a vector.
        unsafe {
            let h = _mm256_add_pd(
                _mm512_castpd512_pd256(acc.0),
                _mm512_extractf64x4_pd::<1>(acc.0),
            );
            let q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd::<1>(h));
            _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)))
        }
    }
}
