//! Vectorized transcendental functions, written once over [`Vector`].
//!
//! PLACEHOLDER (lane-wise `std` calls): the SIMD-core work replaces these with
//! Cody–Waite reduced minimax polynomials; the signatures stay.

use crate::simd::Vector;
use crate::Float;

#[inline(always)]
fn lanewise<V: Vector>(s: V::Simd, x: V, f: impl Fn(f64) -> f64) -> V
where
    V::Elem: Float,
{
    let mut buf = [<V::Elem as Float>::ZERO; 64];
    x.store(&mut buf[..V::LANES]);
    for v in &mut buf[..V::LANES] {
        *v = <V::Elem as Float>::from_f64(f(v.to_f64()));
    }
    V::load(s, &buf[..V::LANES])
}

/// `e^x`.
#[inline(always)]
pub(crate) fn exp<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    lanewise(s, x, f64::exp)
}

/// Natural logarithm.
#[inline(always)]
pub(crate) fn ln<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    lanewise(s, x, f64::ln)
}

/// `ln(1 + x)`.
#[inline(always)]
pub(crate) fn log1p<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    lanewise(s, x, f64::ln_1p)
}

/// Hyperbolic tangent.
#[inline(always)]
pub(crate) fn tanh<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    lanewise(s, x, f64::tanh)
}
