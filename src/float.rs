//! The element types the kernels accept: `f32` and `f64`.

use crate::simd::{Simd, Vector};

/// Where the kernels are compiled. Every parallel job's leaf goes through
/// one of these methods, implemented for `f32` and `f64` by non-generic,
/// non-inlined functions (the label type of cross entropy is erased into a
/// [`Labels`] first). Their bodies, and with them every SIMD kernel on
/// every backend, are therefore compiled once, in this crate, rather than
/// again in each crate that calls the generic API: each of this crate's test
/// binaries compiled all of them anew (a CI build of about 20 minutes). The
/// call costs one function call per leaf of the parallel split.
pub(crate) mod sealed {
    use crate::cross_entropy::{ColumnExp, ColumnPass1, ColumnPass2, ColumnStored, RowsJob};
    use crate::elementwise::ElementwiseJob;
    use crate::{ce_kernels::RowStats, LossError};

    // The job types are crate-private; the trait is public only in name (a
    // private module, a supertrait of the sealed `Float`), so no caller can
    // reach these methods.
    #[allow(private_interfaces)]
    pub trait Sealed: Sized {
        fn run_elementwise(job: ElementwiseJob<'_, Self>) -> Result<f64, LossError>;
        fn run_rows(job: RowsJob<'_, '_, Self>) -> Result<f64, LossError>;
        fn run_column_exp(job: ColumnExp<'_, Self>) -> Result<(), LossError>;
        fn run_column_stored(job: ColumnStored<'_, Self>) -> Result<(), LossError>;
        fn run_column_pass1(job: ColumnPass1<'_, Self>) -> Result<RowStats, LossError>;
        fn run_column_pass2(job: ColumnPass2<'_, Self>) -> Result<(), LossError>;
    }

    macro_rules! instantiate {
        ($t:ty) => {
            #[allow(private_interfaces)]
            impl Sealed for $t {
                #[inline(never)]
                fn run_elementwise(job: ElementwiseJob<'_, Self>) -> Result<f64, LossError> {
                    job.run_here()
                }
                #[inline(never)]
                fn run_rows(job: RowsJob<'_, '_, Self>) -> Result<f64, LossError> {
                    job.run_here()
                }
                #[inline(never)]
                fn run_column_exp(job: ColumnExp<'_, Self>) -> Result<(), LossError> {
                    job.run_here()
                }
                #[inline(never)]
                fn run_column_stored(job: ColumnStored<'_, Self>) -> Result<(), LossError> {
                    job.run_here()
                }
                #[inline(never)]
                fn run_column_pass1(job: ColumnPass1<'_, Self>) -> Result<RowStats, LossError> {
                    job.run_here()
                }
                #[inline(never)]
                fn run_column_pass2(job: ColumnPass2<'_, Self>) -> Result<(), LossError> {
                    job.run_here()
                }
            }
        };
    }
    instantiate!(f32);
    instantiate!(f64);
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
    use super::Labels;

    #[allow(private_interfaces)]
    pub trait Sealed: Sized {
        fn labels(labels: &[Self]) -> Labels<'_>;
    }
}

/// Labels of any [`Label`] type, for the kernels: the cross-entropy kernels
/// read one label per row through this (one well-predicted branch per row)
/// instead of being compiled once per label type.
#[derive(Clone, Copy)]
pub(crate) enum Labels<'a> {
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    Usize(&'a [usize]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    Isize(&'a [isize]),
}

macro_rules! labels_match {
    ($e:expr, $s:ident => $body:expr) => {
        match $e {
            Labels::U8($s) => $body,
            Labels::U16($s) => $body,
            Labels::U32($s) => $body,
            Labels::U64($s) => $body,
            Labels::Usize($s) => $body,
            Labels::I32($s) => $body,
            Labels::I64($s) => $body,
            Labels::Isize($s) => $body,
        }
    };
}

impl<'a> Labels<'a> {
    /// Label `r` as an `i64` (see [`Label::to_i64`]), `None` past the end.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    pub(crate) fn get(self, r: usize) -> Option<i64> {
        labels_match!(self, s => s.get(r).map(|l| l.to_i64()))
    }

    /// The first `mid` labels and the rest (`mid <= len`).
    pub(crate) fn split_at(self, mid: usize) -> (Labels<'a>, Labels<'a>) {
        macro_rules! split {
            ($($v:ident),*) => {
                match self {
                    $(Labels::$v(s) => {
                        let (a, b) = s.split_at(mid);
                        (Labels::$v(a), Labels::$v(b))
                    })*
                }
            };
        }
        split!(U8, U16, U32, U64, Usize, I32, I64, Isize)
    }
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
    ($($t:ty => $v:ident),*) => {$(
        #[allow(private_interfaces)]
        impl label_sealed::Sealed for $t {
            fn labels(labels: &[Self]) -> Labels<'_> {
                Labels::$v(labels)
            }
        }
        impl Label for $t {
            #[cfg_attr(not(debug_assertions), inline(always))]
            #[cfg_attr(debug_assertions, inline)]
            fn to_i64(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
label_impl!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, usize => Usize, i32 => I32, i64 => I64, isize => Isize);
