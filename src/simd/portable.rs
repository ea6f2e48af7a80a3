//! The portable backend on the `wide` crate: 8 `f32` lanes (`f32x8`) and 4
//! `f64` lanes (`f64x4`).
//!
//! `wide` picks its instruction set when *this* crate is compiled
//! (`cfg(target_feature)`), so this backend is full NEON on aarch64 but only
//! SSE2 in a default x86-64 build (AVX/FMA when the final binary is built
//! with `-C target-cpu=...`); x86-64 CPUs get the run-time detected
//! [`Avx2Fma`](super::avx2) and [`Avx512`](super::avx512) backends instead.
//! No `unsafe` here: everything goes through `wide`'s safe API.
//!
//! Exponent manipulation uses the "magic number" trick so it needs only
//! float arithmetic and shifts: for integral `k` with `|k| < 2^22`, the low
//! mantissa bits of `k + 1.5·2^23` hold `k` in two's complement, so
//! `bits(k + 1.5·2^23 + 127) << 23` is the bit pattern of `2^k`.

use wide::{f32x8, f64x4, u32x8, u64x4};

use super::{Simd, Vector};
use crate::Backend;

/// Token of the portable backend (always available).
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable {
    _private: (),
}

impl Portable {
    /// The portable backend runs everywhere.
    #[inline]
    pub fn new() -> Self {
        Portable { _private: () }
    }
}

impl Simd for Portable {
    type F32 = P32;
    type F64 = P64;
    const BACKEND: Backend = Backend::Portable;
}

/// 8 `f32` lanes.
#[derive(Clone, Copy, Debug)]
pub struct P32(f32x8);
/// 4 `f64` lanes.
#[derive(Clone, Copy, Debug)]
pub struct P64(f64x4);

// `x86` `maxps` / `minps` already are `if a > b { a } else { b }` (resp.
// `<`); elsewhere (NEON `fmax` propagates NaN from either side) spell the
// rule out with a compare and a blend.
macro_rules! max_min {
    ($w:ty) => {
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn max(self, o: Self) -> Self {
            #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
            {
                Self(self.0.fast_max(o.0))
            }
            #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
            {
                Self(self.0.simd_gt(o.0).select(self.0, o.0))
            }
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn min(self, o: Self) -> Self {
            #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
            {
                Self(self.0.fast_min(o.0))
            }
            #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
            {
                Self(self.0.simd_lt(o.0).select(self.0, o.0))
            }
        }
    };
}

// The methods that read the same for both widths.
macro_rules! common {
    ($t:ty, $w:ty, $lanes:expr) => {
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn splat(_: Portable, x: $t) -> Self {
            Self(<$w>::splat(x))
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn load(_: Portable, src: &[$t]) -> Self {
            let a: [$t; $lanes] = src[..$lanes].try_into().expect("length checked by slicing");
            Self(<$w>::new(a))
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn load_partial(_: Portable, src: &[$t], fill: $t) -> Self {
            let n = src.len().min($lanes);
            let mut a = [fill; $lanes];
            a[..n].copy_from_slice(&src[..n]);
            Self(<$w>::new(a))
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn store(self, dst: &mut [$t]) {
            dst[..$lanes].copy_from_slice(&self.0.to_array());
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn store_partial(self, dst: &mut [$t]) {
            let n = dst.len().min($lanes);
            dst[..n].copy_from_slice(&self.0.to_array()[..n]);
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn add(self, o: Self) -> Self {
            Self(self.0 + o.0)
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn sub(self, o: Self) -> Self {
            Self(self.0 - o.0)
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn mul(self, o: Self) -> Self {
            Self(self.0 * o.0)
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn div(self, o: Self) -> Self {
            Self(self.0 / o.0)
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn recip(self) -> Self {
            Self(<$w>::splat(1.0) / self.0)
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn mul_add(self, a: Self, b: Self) -> Self {
            Self(self.0.mul_add(a.0, b.0))
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn neg(self) -> Self {
            Self(-self.0)
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn abs(self) -> Self {
            Self(self.0.abs())
        }
        max_min!($w);
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn round(self) -> Self {
            Self(self.0.round_ties_even())
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn lt(self, o: Self) -> $w {
            self.0.simd_lt(o.0)
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn le(self, o: Self) -> $w {
            self.0.simd_le(o.0)
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn eq(self, o: Self) -> $w {
            self.0.simd_eq(o.0)
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn is_nan(self) -> $w {
            self.0.is_nan()
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn select(m: $w, a: Self, b: Self) -> Self {
            Self(m.select(a.0, b.0))
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn any(m: $w) -> bool {
            m.any()
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn mask_or(a: $w, b: $w) -> $w {
            a | b
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn mask_and(a: $w, b: $w) -> $w {
            a & b
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn keep_first(self, n: usize) -> Self {
            if n >= $lanes {
                return self;
            }
            let mut a = self.0.to_array();
            for v in &mut a[n..] {
                *v = 0.0;
            }
            Self(<$w>::new(a))
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn reduce_max(self) -> $t {
            let a = self.0.to_array();
            let mut m = a[0];
            for &v in &a[1..] {
                m = if v > m { v } else { m };
            }
            m
        }
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn reduce_sum(self) -> f64 {
            self.0.to_array().iter().fold(0.0, |s, &v| s + v as f64)
        }
    };
}

impl Vector for P32 {
    type Elem = f32;
    type Simd = Portable;
    type Mask = f32x8;
    type Acc = [f64x4; 2];
    const LANES: usize = 8;
    // `wide`'s `mul_add` is fused with FMA (x86) or NEON (aarch64).
    const FUSED: bool = cfg!(any(
        target_feature = "fma",
        all(target_arch = "aarch64", target_feature = "neon")
    ));

    common!(f32, f32x8, 8);

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store_stream(self, dst: &mut [f32]) {
        self.store(dst);
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn stream_fence(_: Portable) {}

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn ldexp(self, n: Self) -> Self {
        // n = n1 + n2 with both halves in [-126, 127]: the first product is
        // exact, the second rounds once.
        let n1 = (n.0 * f32x8::splat(0.5)).round_ties_even();
        let n2 = n.0 - n1;
        let magic = f32x8::splat(12_582_912.0 + 127.0); // 1.5·2^23 + bias
        let p1 = f32x8::from_bits((n1 + magic).to_bits() << 23);
        let p2 = f32x8::from_bits((n2 + magic).to_bits() << 23);
        Self(self.0 * p1 * p2)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn frexp(self) -> (Self, Self) {
        let sub = self.0.simd_lt(f32x8::splat(f32::MIN_POSITIVE));
        let x = sub.select(self.0 * f32x8::splat(16_777_216.0), self.0); // 2^24
        let bits = x.to_bits();
        let biased = (bits >> 23) & u32x8::splat(0xff);
        // The biased exponent as a float: OR it into the mantissa of 2^23.
        let e = f32x8::from_bits(biased | u32x8::splat(0x4b00_0000))
            - f32x8::splat(8_388_608.0 + 127.0);
        let e = e - sub.select(f32x8::splat(24.0), f32x8::splat(0.0));
        let m = f32x8::from_bits((bits & u32x8::splat(0x007f_ffff)) | u32x8::splat(0x3f80_0000));
        (Self(e), Self(m))
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_zero(_: Portable) -> [f64x4; 2] {
        [f64x4::splat(0.0); 2]
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add(acc: [f64x4; 2], v: Self) -> [f64x4; 2] {
        let a = v.0.to_array();
        let lo = f64x4::new([a[0] as f64, a[1] as f64, a[2] as f64, a[3] as f64]);
        let hi = f64x4::new([a[4] as f64, a[5] as f64, a[6] as f64, a[7] as f64]);
        [acc[0] + lo, acc[1] + hi]
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add_sq(acc: [f64x4; 2], v: Self) -> [f64x4; 2] {
        let a = v.0.to_array();
        let lo = f64x4::new([a[0] as f64, a[1] as f64, a[2] as f64, a[3] as f64]);
        let hi = f64x4::new([a[4] as f64, a[5] as f64, a[6] as f64, a[7] as f64]);
        [lo.mul_add(lo, acc[0]), hi.mul_add(hi, acc[1])]
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_merge(a: [f64x4; 2], b: [f64x4; 2]) -> [f64x4; 2] {
        [a[0] + b[0], a[1] + b[1]]
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_scale(acc: [f64x4; 2], v: Self) -> [f64x4; 2] {
        let a = v.0.to_array();
        let lo = f64x4::new([a[0] as f64, a[1] as f64, a[2] as f64, a[3] as f64]);
        let hi = f64x4::new([a[4] as f64, a[5] as f64, a[6] as f64, a[7] as f64]);
        [acc[0] * lo, acc[1] * hi]
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_sum(acc: [f64x4; 2]) -> f64 {
        (acc[0] + acc[1]).to_array().iter().sum()
    }
}

impl Vector for P64 {
    type Elem = f64;
    type Simd = Portable;
    type Mask = f64x4;
    type Acc = f64x4;
    const LANES: usize = 4;
    // `wide`'s `mul_add` is fused with FMA (x86) or NEON (aarch64).
    const FUSED: bool = cfg!(any(
        target_feature = "fma",
        all(target_arch = "aarch64", target_feature = "neon")
    ));

    common!(f64, f64x4, 4);

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn store_stream(self, dst: &mut [f64]) {
        self.store(dst);
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn stream_fence(_: Portable) {}

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn ldexp(self, n: Self) -> Self {
        // n = n1 + n2 with both halves in [-1022, 1023].
        let n1 = (n.0 * f64x4::splat(0.5)).round_ties_even();
        let n2 = n.0 - n1;
        let magic = f64x4::splat(6_755_399_441_055_744.0 + 1023.0); // 1.5·2^52 + bias
        let p1 = f64x4::from_bits((n1 + magic).to_bits() << 52);
        let p2 = f64x4::from_bits((n2 + magic).to_bits() << 52);
        Self(self.0 * p1 * p2)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn frexp(self) -> (Self, Self) {
        let sub = self.0.simd_lt(f64x4::splat(f64::MIN_POSITIVE));
        let x = sub.select(self.0 * f64x4::splat(18_014_398_509_481_984.0), self.0); // 2^54
        let bits = x.to_bits();
        let biased = (bits >> 52) & u64x4::splat(0x7ff);
        let e = f64x4::from_bits(biased | u64x4::splat(0x4330_0000_0000_0000))
            - f64x4::splat(4_503_599_627_370_496.0 + 1023.0);
        let e = e - sub.select(f64x4::splat(54.0), f64x4::splat(0.0));
        let m = f64x4::from_bits(
            (bits & u64x4::splat(0x000f_ffff_ffff_ffff)) | u64x4::splat(0x3ff0_0000_0000_0000),
        );
        (Self(e), Self(m))
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_zero(_: Portable) -> f64x4 {
        f64x4::splat(0.0)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add(acc: f64x4, v: Self) -> f64x4 {
        acc + v.0
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_add_sq(acc: f64x4, v: Self) -> f64x4 {
        v.0.mul_add(v.0, acc)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_merge(a: f64x4, b: f64x4) -> f64x4 {
        a + b
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_scale(acc: f64x4, v: Self) -> f64x4 {
        acc * v.0
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn acc_sum(acc: f64x4) -> f64 {
        acc.to_array().iter().sum()
    }
}
