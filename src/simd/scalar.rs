//! The one-lane scalar backend: the plain baseline every other backend is
//! compared against, and the fallback on CPUs without a vector backend.

use super::{Simd, Vector};
use crate::Backend;

/// Token of the scalar backend (always available).
#[derive(Clone, Copy, Debug, Default)]
pub struct Scalar;

impl Simd for Scalar {
    type F32 = S32;
    type F64 = S64;
    const BACKEND: Backend = Backend::Scalar;
}

/// One `f32` lane.
#[derive(Clone, Copy, Debug)]
pub struct S32(pub(crate) f32);
/// One `f64` lane.
#[derive(Clone, Copy, Debug)]
pub struct S64(pub(crate) f64);

macro_rules! scalar_vector {
    ($name:ident, $t:ty, $bits:ty, $mant:expr, $bias:expr) => {
        impl Vector for $name {
            type Elem = $t;
            type Simd = Scalar;
            type Mask = bool;
            type Acc = f64;
            const LANES: usize = 1;

            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn splat(_: Scalar, x: $t) -> Self {
                $name(x)
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn load(_: Scalar, src: &[$t]) -> Self {
                $name(src[0])
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn load_partial(_: Scalar, src: &[$t], fill: $t) -> Self {
                $name(src.first().copied().unwrap_or(fill))
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn store(self, dst: &mut [$t]) {
                dst[0] = self.0;
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn store_partial(self, dst: &mut [$t]) {
                if let Some(d) = dst.first_mut() {
                    *d = self.0;
                }
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn add(self, o: Self) -> Self {
                $name(self.0 + o.0)
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn sub(self, o: Self) -> Self {
                $name(self.0 - o.0)
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn mul(self, o: Self) -> Self {
                $name(self.0 * o.0)
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn div(self, o: Self) -> Self {
                $name(self.0 / o.0)
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn recip(self) -> Self {
                $name(1.0 / self.0)
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                // Plain multiply-add: the scalar baseline is what a hand loop does
                // without FMA hardware (a software `fma` call would be far slower).
                $name(self.0 * a.0 + b.0)
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn neg(self) -> Self {
                $name(-self.0)
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn abs(self) -> Self {
                $name(self.0.abs())
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn max(self, o: Self) -> Self {
                $name(if self.0 > o.0 { self.0 } else { o.0 })
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn min(self, o: Self) -> Self {
                $name(if self.0 < o.0 { self.0 } else { o.0 })
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn round(self) -> Self {
                // `round_ties_even` is a libm call without SSE4.1 (a default
                // x86-64 build): add and subtract 1.5·2^mant instead, exact in
                // round-to-nearest-even for |x| < 2^(mant - 1); larger values
                // (and NaN, which fails the compare) are already integral.
                let magic: $t = 1.5 * (1u64 << $mant) as $t;
                if self.0.abs() < magic / 3.0 {
                    $name((self.0 + magic) - magic)
                } else {
                    $name(self.0)
                }
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn lt(self, o: Self) -> bool {
                self.0 < o.0
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn le(self, o: Self) -> bool {
                self.0 <= o.0
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn eq(self, o: Self) -> bool {
                self.0 == o.0
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn is_nan(self) -> bool {
                self.0.is_nan()
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn select(m: bool, a: Self, b: Self) -> Self {
                if m {
                    a
                } else {
                    b
                }
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn any(m: bool) -> bool {
                m
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn mask_or(a: bool, b: bool) -> bool {
                a | b
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn mask_and(a: bool, b: bool) -> bool {
                a & b
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn keep_first(self, n: usize) -> Self {
                if n >= 1 {
                    self
                } else {
                    $name(0.0)
                }
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn ldexp(self, n: Self) -> Self {
                // 2^n as 2^n1 * 2^n2 with both halves normal: the first
                // product is exact for |self| in [0.5, 2), the second rounds once.
                // `as i32` saturates (NaN gives 0): out-of-contract n stays finite.
                let n = n.0 as i32;
                let n1 = n >> 1;
                let n2 = n - n1;
                let p1 =
                    <$t>::from_bits((((n1 as i64 + $bias).clamp(1, 2 * $bias)) as $bits) << $mant);
                let p2 =
                    <$t>::from_bits((((n2 as i64 + $bias).clamp(1, 2 * $bias)) as $bits) << $mant);
                $name(self.0 * p1 * p2)
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn frexp(self) -> (Self, Self) {
                // Subnormals are first scaled into the normal range by 2^(mant + 1).
                let sub = self.0 < <$t>::MIN_POSITIVE;
                let scale = <$t>::from_bits((($bias + $mant + 1) as $bits) << $mant);
                let x = if sub { self.0 * scale } else { self.0 };
                let bits = x.to_bits();
                let exp_mask = (1 << (<$bits>::BITS - 1 - $mant)) - 1;
                let mut e = ((bits >> $mant) as i64 & exp_mask) - $bias;
                if sub {
                    e -= $mant + 1;
                }
                let m = <$t>::from_bits((bits & ((1 << $mant) - 1)) | (($bias as $bits) << $mant));
                ($name(e as $t), $name(m))
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn reduce_max(self) -> $t {
                self.0
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn reduce_sum(self) -> f64 {
                self.0 as f64
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn acc_zero(_: Scalar) -> f64 {
                0.0
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn acc_add(acc: f64, v: Self) -> f64 {
                acc + v.0 as f64
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn acc_add_sq(acc: f64, v: Self) -> f64 {
                let w = v.0 as f64;
                acc + w * w
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn acc_merge(a: f64, b: f64) -> f64 {
                a + b
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn acc_scale(acc: f64, v: Self) -> f64 {
                acc * v.0 as f64
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn store_stream(self, dst: &mut [$t]) {
                self.store(dst);
            }
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn stream_fence(_: Scalar) {}
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn acc_sum(acc: f64) -> f64 {
                acc
            }
        }
    };
}

scalar_vector!(S32, f32, u32, 23, 127);
scalar_vector!(S64, f64, u64, 52, 1023);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp_ldexp_round_trip() {
        for &x in &[
            1.0f32,
            1.5,
            3.0,
            0.75,
            1e-30,
            1e30,
            f32::MIN_POSITIVE,
            f32::MAX,
        ] {
            let (e, m) = S32(x).frexp();
            assert!((1.0..2.0).contains(&m.0), "{x}: m = {}", m.0);
            assert_eq!(m.ldexp(e).0, x);
        }
        for &x in &[
            1.0f64,
            1.5,
            3.0,
            0.75,
            1e-300,
            1e300,
            f64::MIN_POSITIVE,
            f64::MAX,
        ] {
            let (e, m) = S64(x).frexp();
            assert!((1.0..2.0).contains(&m.0), "{x}: m = {}", m.0);
            assert_eq!(m.ldexp(e).0, x);
        }
    }

    #[test]
    fn ldexp_rounds_once_at_the_extremes() {
        // 1.5 * 2^-150 is 0.75 of the smallest subnormal: rounds up to it.
        assert_eq!(S32(1.5).ldexp(S32(-150.0)).0, f32::from_bits(1));
        assert_eq!(S32(1.0).ldexp(S32(-150.0)).0, 0.0);
        assert_eq!(S32(1.0).ldexp(S32(128.0)).0, f32::INFINITY);
        assert_eq!(S32(0.5).ldexp(S32(128.0)).0, 2f32.powi(127));
        assert_eq!(S64(1.5).ldexp(S64(-1075.0)).0, f64::from_bits(1));
        assert_eq!(S64(1.0).ldexp(S64(1024.0)).0, f64::INFINITY);
    }
}
