//! The element types the kernels accept: `f32` and `f64`.

use crate::simd::{Simd, Vector};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type of the kernels: `f32` or `f64` (sealed).
///
/// `f32` is the type the kernels are tuned for; `f64` runs the same code with
/// half as many lanes.
pub trait Float:
    sealed::Sealed
    + Copy
    + Send
    + Sync
    + PartialEq
    + PartialOrd
    + core::fmt::Debug
    + core::fmt::Display
    + Default
    + 'static
{
    /// The SIMD vector of this element type on backend `S` (crate-internal).
    #[doc(hidden)]
    type Vec<S: Simd>: Vector<Elem = Self, Simd = S>;
    /// `0`
    const ZERO: Self;
    /// `1`
    const ONE: Self;
    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Rounds an `f64` to this type (nearest).
    fn from_f64(x: f64) -> Self;
}

impl Float for f32 {
    type Vec<S: Simd> = S::F32;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

impl Float for f64 {
    type Vec<S: Simd> = S::F64;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn to_f64(self) -> f64 {
        self
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn from_f64(x: f64) -> Self {
        x
    }
}

mod label_sealed {
    pub trait Sealed {}
}

/// An integer type usable as a class label: `u8`, `u16`, `u32`, `u64`,
/// `usize`, `i32`, `i64`, `isize` (sealed).
///
/// Labels are compared against `0..classes` and against the `ignore_index`
/// (an `i64`, `-100` by default as in PyTorch) by value.
pub trait Label: label_sealed::Sealed + Copy + Send + Sync + core::fmt::Debug + 'static {
    /// The label as an `i64`, saturating values above `i64::MAX`.
    fn to_i64(self) -> i64;
}

macro_rules! label_impl {
    ($($t:ty),*) => {$(
        impl label_sealed::Sealed for $t {}
        impl Label for $t {
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn to_i64(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
label_impl!(u8, u16, u32, u64, usize, i32, i64, isize);
