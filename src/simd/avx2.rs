//! The AVX2 + FMA backend: `__m256` (8 `f32` lanes) and `__m256d` (4 `f64`
//! lanes), detected at run time.
//!
//! Every method is a thin `#[inline(always)]` (debug builds: `#[inline]`,
//! see the `simd` module docs) wrapper over one or a few
//! `std::arch` intrinsics; [`run`] is the single `#[target_feature]`
//! trampoline under which a whole kernel is compiled. Partial vectors use
//! `vmaskmov` loads and stores, which never touch the masked-off lanes.

use core::arch::x86_64::*;

use super::{Kernel, Simd, Vector};
use crate::Backend;

/// Whether the build already guarantees AVX2 and FMA (then no probe).
pub(crate) const STATIC: bool = cfg!(all(target_feature = "avx2", target_feature = "fma"));

/// Whether this CPU has AVX2 and FMA (uncached; see [`super::has_avx2_fma`]).
pub(crate) fn static_or_detected() -> bool {
    STATIC
        || (std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
}

/// Token of the AVX2 + FMA backend: exists only on a CPU that has both.
#[derive(Clone, Copy, Debug)]
pub struct Avx2Fma {
    _private: (),
}

impl Avx2Fma {
    /// The token, if this CPU has AVX2 and FMA.
    #[inline]
    pub fn new() -> Option<Self> {
        if super::has_avx2_fma() {
            Some(Avx2Fma { _private: () })
        } else {
            None
        }
    }
}

impl Simd for Avx2Fma {
    type F32 = F32x8;
    type F64 = F64x4;
    const BACKEND: Backend = Backend::Avx2Fma;
}

#[target_feature(enable = "avx2,fma")]
fn run_with_avx2<K: Kernel>(token: Avx2Fma, kernel: K) -> K::Output {
    kernel.run(token)
}

/// Runs `kernel` compiled for AVX2 + FMA.
#[inline]
pub(crate) fn run<K: Kernel>(token: Avx2Fma, kernel: K) -> K::Output {
    // SAFETY: `token` exists only if `Avx2Fma::new` found AVX2 and FMA on this CPU.
    unsafe { run_with_avx2(token, kernel) }
}

/// 8 `f32` lanes.
#[derive(Clone, Copy, Debug)]
pub struct F32x8(__m256);
/// 4 `f64` lanes.
#[derive(Clone, Copy, Debug)]
pub struct F64x4(__m256d);
/// `f64` accumulator of [`F32x8`]: the low and high halves, widened.
#[derive(Clone, Copy, Debug)]
pub struct Acc32([__m256d; 2]);
/// `f64` accumulator of [`F64x4`].
#[derive(Clone, Copy, Debug)]
pub struct Acc64(__m256d);
/// Lane mask of [`F32x8`] (all-ones lanes).
#[derive(Clone, Copy, Debug)]
pub struct M32(__m256);
/// Lane mask of [`F64x4`] (all-ones lanes).
#[derive(Clone, Copy, Debug)]
pub struct M64(__m256d);

const ROUND_NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

/// Integer lane mask with the low `n` of 8 lanes set (`n <= 8`).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn first_lanes_32(n: usize) -> __m256i {
    // SAFETY: only called from methods of vectors of this backend, which exist
    // only after `Avx2Fma::new` found AVX2 (see the module's soundness rule).
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

/// Integer lane mask with the low `n` of 4 lanes set (`n <= 4`).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn first_lanes_64(n: usize) -> __m256i {
    // SAFETY: as for `first_lanes_32`.
    unsafe { _mm256_cmpgt_epi64(_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3)) }
}

impl Vector for F32x8 {
    type Elem = f32;
    type Simd = Avx2Fma;
    type Mask = M32;
    type Acc = Acc32;
    const LANES: usize = 8;
    const FUSED: bool = true;

    // SAFETY (every `unsafe` block below unless it says otherwise): a value of
    // this type exists only if an `Avx2Fma` token was created, i.e. the CPU has
    // AVX2 and FMA, so the intrinsics are supported; raw loads and stores are
    // preceded by the length check stated next to them.

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn splat(_: Avx2Fma, x: f32) -> Self {
        // SAFETY: the token proves AVX2.
        Self(unsafe { _mm256_set1_ps(x) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn load(_: Avx2Fma, src: &[f32]) -> Self {
        assert!(src.len() >= 8);
        // SAFETY: the token proves AVX2; `src` has at least 8 readable elements.
        Self(unsafe { _mm256_loadu_ps(src.as_ptr()) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn load_partial(_: Avx2Fma, src: &[f32], fill: f32) -> Self {
        let n = src.len().min(8);
        // SAFETY: the token proves AVX2; `vmaskmovps` reads only the first
        // `n <= src.len()` lanes (masked-off lanes are never accessed).
        unsafe {
            let m = first_lanes_32(n);
            let v = _mm256_maskload_ps(src.as_ptr(), m);
            Self(_mm256_blendv_ps(
                _mm256_set1_ps(fill),
                v,
                _mm256_castsi256_ps(m),
            ))
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store(self, dst: &mut [f32]) {
        assert!(dst.len() >= 8);
        // SAFETY: the token proves AVX2; `dst` has at least 8 writable elements.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), self.0) }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store_partial(self, dst: &mut [f32]) {
        let n = dst.len().min(8);
        // SAFETY: the token proves AVX2; `vmaskmovps` writes only the first
        // `n <= dst.len()` lanes.
        unsafe { _mm256_maskstore_ps(dst.as_mut_ptr(), first_lanes_32(n), self.0) }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store_stream(self, dst: &mut [f32]) {
        assert!(dst.len() >= 8);
        let p = dst.as_mut_ptr();
        if (p as usize).is_multiple_of(32) {
            // SAFETY: the token proves AVX; `dst` has at least 8 writable
            // elements and `p` is 32-byte aligned, as the streaming store requires.
            unsafe { _mm256_stream_ps(p, self.0) }
        } else {
            // SAFETY: the token proves AVX; `dst` has at least 8 writable elements.
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn stream_fence(_: Avx2Fma) {
        // SAFETY: `sfence` is SSE, part of the x86-64 baseline; it only
        // orders stores.
        unsafe { _mm_sfence() }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn add(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_add_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn sub(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_sub_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mul(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_mul_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn div(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_div_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn recip(self) -> Self {
        // `vrcpps` has only 12 bits: one Newton step leaves ~1.1 ulp, so divide.
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_div_ps(_mm256_set1_ps(1.0), self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        // SAFETY: see the note at the top of this impl (the token proves FMA).
        Self(unsafe { _mm256_fmadd_ps(self.0, a.0, b.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn neg(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_xor_ps(self.0, _mm256_set1_ps(-0.0)) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn abs(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn max(self, o: Self) -> Self {
        // `vmaxps a, b` is exactly `a > b ? a : b`.
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_max_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn min(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_min_ps(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn round(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_round_ps::<ROUND_NEAREST>(self.0) })
    }
    const TABLE8: bool = true;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn lookup8_scaled(_: Avx2Fma, t: Self, table: &[f32; 8]) -> Self {
        // The mantissa field of `t` is 2^22 + k. `vpermps` reads the low
        // three bits of each index: `k mod 8` (2^22 is a multiple of 8).
        // Shifted right by three, the low nine bits of `t` are
        // `floor(k/8) mod 512` (2^19 is a multiple of 512); shifted left by
        // 23 they alone stay, as `floor(k/8)` in two's complement in the
        // exponent field. Added to the bits of an entry in [1, 2), that is
        // the product by 2^floor(k/8) while the result stays normal.
        // SAFETY: see the note at the top of this impl; the unaligned load
        // reads exactly the 8 floats of `table`.
        unsafe {
            let bits = _mm256_castps_si256(t.0);
            let entry = _mm256_permutevar8x32_ps(_mm256_loadu_ps(table.as_ptr()), bits);
            let scale = _mm256_slli_epi32::<23>(_mm256_srli_epi32::<3>(bits));
            Self(_mm256_castsi256_ps(_mm256_add_epi32(
                _mm256_castps_si256(entry),
                scale,
            )))
        }
    }
    const POW2_SHIFT: bool = true;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn round_pow2(_: Avx2Fma, x: Self, k: Self) -> (Self, Self) {
        // t = x·k + (1.5·2^23 + 191), rounded once: t lies in [2^23, 2^24),
        // where floats are the integers, so t - magic is the integer n
        // nearest x·k, and t's low mantissa bits hold 2^22 + 191 + n. The
        // shift keeps their low nine bits, 191 + n in [1, 254] (2^22 is a
        // multiple of 512), as the exponent field: 2^(n + 64), sign 0.
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let magic = _mm256_set1_ps(12_582_912.0 + 191.0);
            let t = _mm256_fmadd_ps(x.0, k.0, magic);
            let pow = _mm256_slli_epi32::<23>(_mm256_castps_si256(t));
            (
                Self(_mm256_sub_ps(t, magic)),
                Self(_mm256_castsi256_ps(pow)),
            )
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn lt(self, o: Self) -> M32 {
        // SAFETY: see the note at the top of this impl.
        M32(unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn le(self, o: Self) -> M32 {
        // SAFETY: see the note at the top of this impl.
        M32(unsafe { _mm256_cmp_ps::<_CMP_LE_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn eq(self, o: Self) -> M32 {
        // SAFETY: see the note at the top of this impl.
        M32(unsafe { _mm256_cmp_ps::<_CMP_EQ_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn is_nan(self) -> M32 {
        // SAFETY: see the note at the top of this impl.
        M32(unsafe { _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn select(m: M32, a: Self, b: Self) -> Self {
        // SAFETY: see the note at the top of this impl (a vector exists).
        Self(unsafe { _mm256_blendv_ps(b.0, a.0, m.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn any(m: M32) -> bool {
        // SAFETY: a mask exists only if vectors of this backend do.
        unsafe { _mm256_movemask_ps(m.0) != 0 }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mask_or(a: M32, b: M32) -> M32 {
        // SAFETY: a mask exists only if vectors of this backend do.
        M32(unsafe { _mm256_or_ps(a.0, b.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mask_and(a: M32, b: M32) -> M32 {
        // SAFETY: a mask exists only if vectors of this backend do.
        M32(unsafe { _mm256_and_ps(a.0, b.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn keep_first(self, n: usize) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_and_ps(self.0, _mm256_castsi256_ps(first_lanes_32(n.min(8)))) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn ldexp(self, n: Self) -> Self {
        // n = n1 + n2 with n1 = n >> 1: both halves are normal exponents, so
        // the first product is exact and the second rounds once.
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let n = _mm256_cvtps_epi32(n.0);
            let n1 = _mm256_srai_epi32::<1>(n);
            let n2 = _mm256_sub_epi32(n, n1);
            let bias = _mm256_set1_epi32(127);
            let p1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias)));
            let p2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias)));
            Self(_mm256_mul_ps(_mm256_mul_ps(self.0, p1), p2))
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn frexp(self) -> (Self, Self) {
        // SAFETY: see the note at the top of this impl.
        unsafe {
            // Subnormals: scale by 2^24 first, subtract 24 from the exponent.
            let sub = _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, _mm256_set1_ps(f32::MIN_POSITIVE));
            let x = _mm256_blendv_ps(
                self.0,
                _mm256_mul_ps(self.0, _mm256_set1_ps(16_777_216.0)),
                sub,
            );
            let bits = _mm256_castps_si256(x);
            let biased = _mm256_cvtepi32_ps(_mm256_srli_epi32::<23>(bits));
            let adjust = _mm256_add_ps(
                _mm256_set1_ps(127.0),
                _mm256_and_ps(sub, _mm256_set1_ps(24.0)),
            );
            let e = _mm256_sub_ps(biased, adjust);
            let m = _mm256_or_si256(
                _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
                _mm256_set1_epi32(0x3f80_0000),
            );
            (Self(e), Self(_mm256_castsi256_ps(m)))
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn reduce_max(self) -> f32 {
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let m = _mm_max_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            );
            let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
            let m = _mm_max_ss(m, _mm_shuffle_ps::<0b01>(m, m));
            _mm_cvtss_f32(m)
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn reduce_sum(self) -> f64 {
        Self::acc_sum(Self::acc_add(
            Self::acc_zero(Avx2Fma { _private: () }),
            self,
        ))
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_zero(_: Avx2Fma) -> Acc32 {
        // SAFETY: the token proves AVX.
        Acc32(unsafe { [_mm256_setzero_pd(); 2] })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add(acc: Acc32, v: Self) -> Acc32 {
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v.0));
            let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v.0));
            Acc32([_mm256_add_pd(acc.0[0], lo), _mm256_add_pd(acc.0[1], hi)])
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add_sq(acc: Acc32, v: Self) -> Acc32 {
        // SAFETY: see the note at the top of this impl (FMA from the token).
        unsafe {
            let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v.0));
            let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v.0));
            Acc32([
                _mm256_fmadd_pd(lo, lo, acc.0[0]),
                _mm256_fmadd_pd(hi, hi, acc.0[1]),
            ])
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_merge(a: Acc32, b: Acc32) -> Acc32 {
        // SAFETY: an accumulator is made only by `acc_zero`, from a token.
        Acc32(unsafe { [_mm256_add_pd(a.0[0], b.0[0]), _mm256_add_pd(a.0[1], b.0[1])] })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_scale(acc: Acc32, v: Self) -> Acc32 {
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v.0));
            let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v.0));
            Acc32([_mm256_mul_pd(acc.0[0], lo), _mm256_mul_pd(acc.0[1], hi)])
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_sum(acc: Acc32) -> f64 {
        // SAFETY: an accumulator is made only by `acc_zero`, from a token.
        F64x4::acc_sum(Acc64(unsafe { _mm256_add_pd(acc.0[0], acc.0[1]) }))
    }
}

impl Vector for F64x4 {
    type Elem = f64;
    type Simd = Avx2Fma;
    type Mask = M64;
    type Acc = Acc64;
    const LANES: usize = 4;
    const FUSED: bool = true;

    // SAFETY (every `unsafe` block below unless it says otherwise): as for
    // `F32x8`, a value of this type proves AVX2 and FMA.

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn splat(_: Avx2Fma, x: f64) -> Self {
        // SAFETY: the token proves AVX2.
        Self(unsafe { _mm256_set1_pd(x) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn load(_: Avx2Fma, src: &[f64]) -> Self {
        assert!(src.len() >= 4);
        // SAFETY: the token proves AVX2; `src` has at least 4 readable elements.
        Self(unsafe { _mm256_loadu_pd(src.as_ptr()) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn load_partial(_: Avx2Fma, src: &[f64], fill: f64) -> Self {
        let n = src.len().min(4);
        // SAFETY: the token proves AVX2; `vmaskmovpd` reads only the first
        // `n <= src.len()` lanes.
        unsafe {
            let m = first_lanes_64(n);
            let v = _mm256_maskload_pd(src.as_ptr(), m);
            Self(_mm256_blendv_pd(
                _mm256_set1_pd(fill),
                v,
                _mm256_castsi256_pd(m),
            ))
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store(self, dst: &mut [f64]) {
        assert!(dst.len() >= 4);
        // SAFETY: the token proves AVX2; `dst` has at least 4 writable elements.
        unsafe { _mm256_storeu_pd(dst.as_mut_ptr(), self.0) }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store_partial(self, dst: &mut [f64]) {
        let n = dst.len().min(4);
        // SAFETY: the token proves AVX2; `vmaskmovpd` writes only the first
        // `n <= dst.len()` lanes.
        unsafe { _mm256_maskstore_pd(dst.as_mut_ptr(), first_lanes_64(n), self.0) }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store_stream(self, dst: &mut [f64]) {
        assert!(dst.len() >= 4);
        let p = dst.as_mut_ptr();
        if (p as usize).is_multiple_of(32) {
            // SAFETY: the token proves AVX; `dst` has at least 4 writable
            // elements and `p` is 32-byte aligned, as the streaming store requires.
            unsafe { _mm256_stream_pd(p, self.0) }
        } else {
            // SAFETY: the token proves AVX; `dst` has at least 4 writable elements.
            unsafe { _mm256_storeu_pd(p, self.0) }
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn stream_fence(_: Avx2Fma) {
        // SAFETY: `sfence` is SSE, part of the x86-64 baseline; it only
        // orders stores.
        unsafe { _mm_sfence() }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn add(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_add_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn sub(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_sub_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mul(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_mul_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn div(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_div_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn recip(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_div_pd(_mm256_set1_pd(1.0), self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        // SAFETY: see the note at the top of this impl (the token proves FMA).
        Self(unsafe { _mm256_fmadd_pd(self.0, a.0, b.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn neg(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_xor_pd(self.0, _mm256_set1_pd(-0.0)) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn abs(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn max(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_max_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn min(self, o: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_min_pd(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn round(self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_round_pd::<ROUND_NEAREST>(self.0) })
    }
    const POW2_SHIFT: bool = true;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn round_pow2(_: Avx2Fma, x: Self, k: Self) -> (Self, Self) {
        // As for `F32x8`: t = x·k + (1.5·2^52 + 1087) in [2^52, 2^53), its
        // low twelve mantissa bits 1087 + n in [1, 2046] (2^51 is a multiple
        // of 4096), shifted into the exponent field: 2^(n + 64).
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let magic = _mm256_set1_pd(6_755_399_441_055_744.0 + 1087.0);
            let t = _mm256_fmadd_pd(x.0, k.0, magic);
            let pow = _mm256_slli_epi64::<52>(_mm256_castpd_si256(t));
            (
                Self(_mm256_sub_pd(t, magic)),
                Self(_mm256_castsi256_pd(pow)),
            )
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn lt(self, o: Self) -> M64 {
        // SAFETY: see the note at the top of this impl.
        M64(unsafe { _mm256_cmp_pd::<_CMP_LT_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn le(self, o: Self) -> M64 {
        // SAFETY: see the note at the top of this impl.
        M64(unsafe { _mm256_cmp_pd::<_CMP_LE_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn eq(self, o: Self) -> M64 {
        // SAFETY: see the note at the top of this impl.
        M64(unsafe { _mm256_cmp_pd::<_CMP_EQ_OQ>(self.0, o.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn is_nan(self) -> M64 {
        // SAFETY: see the note at the top of this impl.
        M64(unsafe { _mm256_cmp_pd::<_CMP_UNORD_Q>(self.0, self.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn select(m: M64, a: Self, b: Self) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_blendv_pd(b.0, a.0, m.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn any(m: M64) -> bool {
        // SAFETY: a mask exists only if vectors of this backend do.
        unsafe { _mm256_movemask_pd(m.0) != 0 }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mask_or(a: M64, b: M64) -> M64 {
        // SAFETY: a mask exists only if vectors of this backend do.
        M64(unsafe { _mm256_or_pd(a.0, b.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn mask_and(a: M64, b: M64) -> M64 {
        // SAFETY: a mask exists only if vectors of this backend do.
        M64(unsafe { _mm256_and_pd(a.0, b.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn keep_first(self, n: usize) -> Self {
        // SAFETY: see the note at the top of this impl.
        Self(unsafe { _mm256_and_pd(self.0, _mm256_castsi256_pd(first_lanes_64(n.min(4)))) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn ldexp(self, n: Self) -> Self {
        // n = n1 + n2, n1 = round(n / 2): both halves are normal exponents.
        // 2^k is built with the magic-number trick: the low mantissa bits of
        // k + 1.5·2^52 + 1023 are k + 1023, shifted into the exponent field.
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let n1 = _mm256_round_pd::<ROUND_NEAREST>(_mm256_mul_pd(n.0, _mm256_set1_pd(0.5)));
            let n2 = _mm256_sub_pd(n.0, n1);
            let magic = _mm256_set1_pd(6_755_399_441_055_744.0 + 1023.0);
            let p1 = _mm256_slli_epi64::<52>(_mm256_castpd_si256(_mm256_add_pd(n1, magic)));
            let p2 = _mm256_slli_epi64::<52>(_mm256_castpd_si256(_mm256_add_pd(n2, magic)));
            let half = _mm256_mul_pd(self.0, _mm256_castsi256_pd(p1));
            Self(_mm256_mul_pd(half, _mm256_castsi256_pd(p2)))
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn frexp(self) -> (Self, Self) {
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let sub = _mm256_cmp_pd::<_CMP_LT_OQ>(self.0, _mm256_set1_pd(f64::MIN_POSITIVE));
            let x = _mm256_blendv_pd(
                self.0,
                _mm256_mul_pd(self.0, _mm256_set1_pd(18_014_398_509_481_984.0)),
                sub,
            );
            let bits = _mm256_castpd_si256(x);
            // The biased exponent as a float: OR it into the mantissa of 2^52.
            let biased = _mm256_castsi256_pd(_mm256_or_si256(
                _mm256_srli_epi64::<52>(bits),
                _mm256_set1_epi64x(0x4330_0000_0000_0000),
            ));
            let adjust = _mm256_add_pd(
                _mm256_set1_pd(4_503_599_627_370_496.0 + 1023.0),
                _mm256_and_pd(sub, _mm256_set1_pd(54.0)),
            );
            let e = _mm256_sub_pd(biased, adjust);
            let m = _mm256_or_si256(
                _mm256_and_si256(bits, _mm256_set1_epi64x(0x000f_ffff_ffff_ffff)),
                _mm256_set1_epi64x(0x3ff0_0000_0000_0000),
            );
            (Self(e), Self(_mm256_castsi256_pd(m)))
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn reduce_max(self) -> f64 {
        // SAFETY: see the note at the top of this impl.
        unsafe {
            let m = _mm_max_pd(
                _mm256_castpd256_pd128(self.0),
                _mm256_extractf128_pd::<1>(self.0),
            );
            let m = _mm_max_sd(m, _mm_unpackhi_pd(m, m));
            _mm_cvtsd_f64(m)
        }
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn reduce_sum(self) -> f64 {
        Self::acc_sum(Acc64(self.0))
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_zero(_: Avx2Fma) -> Acc64 {
        // SAFETY: the token proves AVX.
        Acc64(unsafe { _mm256_setzero_pd() })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add(acc: Acc64, v: Self) -> Acc64 {
        // SAFETY: see the note at the top of this impl.
        Acc64(unsafe { _mm256_add_pd(acc.0, v.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add_sq(acc: Acc64, v: Self) -> Acc64 {
        // SAFETY: see the note at the top of this impl (FMA from the token).
        Acc64(unsafe { _mm256_fmadd_pd(v.0, v.0, acc.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_merge(a: Acc64, b: Acc64) -> Acc64 {
        // SAFETY: an accumulator is made only by `acc_zero`, from a token.
        Acc64(unsafe { _mm256_add_pd(a.0, b.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_scale(acc: Acc64, v: Self) -> Acc64 {
        // SAFETY: see the note at the top of this impl.
        Acc64(unsafe { _mm256_mul_pd(acc.0, v.0) })
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_sum(acc: Acc64) -> f64 {
        // Fixed order: (l0 + l2) + (l1 + l3).
        // SAFETY: an accumulator is made only by `acc_zero` or from a vector.
        unsafe {
            let s = _mm_add_pd(
                _mm256_castpd256_pd128(acc.0),
                _mm256_extractf128_pd::<1>(acc.0),
            );
            _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
        }
    }
}
