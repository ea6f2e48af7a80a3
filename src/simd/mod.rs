//! The SIMD backend layer: the only place in the crate with `unsafe`.
//!
//! Kernels are written once, generic over a backend token `S: Simd` whose
//! associated vector types ([`Vector`]) provide loads, stores, arithmetic and
//! the few exponent manipulations that `exp` / `ln` need. Each backend is a
//! thin shell:
//!
//! | backend | types | when |
//! | --- | --- | --- |
//! | [`Scalar`](scalar::Scalar) | one lane | always; the plain baseline |
//! | `Portable` | `wide` vectors | always; NEON on aarch64, SSE2 on a default x86-64 build |
//! | `Avx2Fma` | `__m256`, `__m256d` | x86-64 with AVX2 and FMA, detected at run time |
//! | `Avx512` | `__m512`, `__m512d` | x86-64 with AVX-512 F/DQ/BW/VL, detected at run time |
//!
//! A kernel is a value implementing [`Kernel`]; [`dispatch`] runs it on a
//! backend, through one `#[target_feature]` trampoline per backend so that
//! the whole kernel body is compiled (and inlined) for that instruction set.
//! A backend token can only be obtained after the CPU feature check, which is
//! what makes the `unsafe` intrinsics inside the vector methods sound.

pub(crate) mod scalar;

use crate::Backend;

/// A backend token: proof that the running CPU supports the backend.
pub trait Simd: Copy + Send + Sync + 'static {
    /// Vector of `f32` lanes.
    type F32: Vector<Elem = f32, Simd = Self>;
    /// Vector of `f64` lanes.
    type F64: Vector<Elem = f64, Simd = Self>;
    /// The public name of this backend.
    const BACKEND: Backend;
}

/// A SIMD vector of `LANES` floats of type `Elem`, usable only with a token
/// of its backend.
///
/// Conventions: `max`/`min` may return either operand when one is NaN, so
/// kernels must not rely on them to propagate NaN. Masks come from
/// comparisons and feed [`Vector::select`].
pub trait Vector: Copy {
    /// Lane type.
    type Elem: crate::Float;
    /// Backend token type.
    type Simd: Simd;
    /// Result of a lane-wise comparison.
    type Mask: Copy;
    /// An `f64` accumulator for sums of these vectors.
    type Acc: Copy;
    /// Number of lanes.
    const LANES: usize;

    /// All lanes `x`.
    fn splat(s: Self::Simd, x: Self::Elem) -> Self;
    /// Loads `src[..LANES]`. `src.len() >= LANES` (checked).
    fn load(s: Self::Simd, src: &[Self::Elem]) -> Self;
    /// Loads `src` (`src.len() <= LANES`) into the low lanes, the rest `fill`.
    fn load_partial(s: Self::Simd, src: &[Self::Elem], fill: Self::Elem) -> Self;
    /// Stores into `dst[..LANES]`. `dst.len() >= LANES` (checked).
    fn store(self, dst: &mut [Self::Elem]);
    /// Stores the low `dst.len()` lanes (`dst.len() <= LANES`).
    fn store_partial(self, dst: &mut [Self::Elem]);

    /// `self + o`
    fn add(self, o: Self) -> Self;
    /// `self - o`
    fn sub(self, o: Self) -> Self;
    /// `self * o`
    fn mul(self, o: Self) -> Self;
    /// `self / o`
    fn div(self, o: Self) -> Self;
    /// `self * a + b`, fused where the backend has FMA.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// `-self`
    fn neg(self) -> Self;
    /// `|self|`
    fn abs(self) -> Self;
    /// Lane-wise maximum (either operand when one is NaN).
    fn max(self, o: Self) -> Self;
    /// Lane-wise minimum (either operand when one is NaN).
    fn min(self, o: Self) -> Self;
    /// Round to nearest integer, ties to even.
    fn round(self) -> Self;

    /// `self < o` (false for NaN)
    fn lt(self, o: Self) -> Self::Mask;
    /// `self <= o` (false for NaN)
    fn le(self, o: Self) -> Self::Mask;
    /// `self == o` (false for NaN)
    fn eq(self, o: Self) -> Self::Mask;
    /// Lanes that are NaN.
    fn is_nan(self) -> Self::Mask;
    /// Lane-wise `m ? a : b`.
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;
    /// Whether any lane of `m` is set.
    fn any(m: Self::Mask) -> bool;
    /// Lane-wise `a | b` of masks.
    fn mask_or(a: Self::Mask, b: Self::Mask) -> Self::Mask;

    /// `self * 2^n` for lanes of `n` integral in `[-(max exponent), max exponent]`
    /// of the lane type (e.g. `[-126, 127]` for f32), result normal or zero
    /// handled by the caller.
    fn ldexp(self, n: Self) -> Self;
    /// For positive normal `self`: `(e, m)` with `self = m * 2^e`, `m` in `[1, 2)`
    /// and `e` integral. Undefined for zero, subnormal, negative, inf, NaN.
    fn frexp(self) -> (Self, Self);

    /// Maximum over lanes (NaN lanes may be ignored).
    fn reduce_max(self) -> Self::Elem;
    /// Sum over lanes in `f64`, in a fixed order.
    fn reduce_sum(self) -> f64;

    /// Empty accumulator.
    fn acc_zero(s: Self::Simd) -> Self::Acc;
    /// `acc + self`, each lane widened to `f64` first.
    fn acc_add(acc: Self::Acc, v: Self) -> Self::Acc;
    /// `acc_a + acc_b`, lane-wise.
    fn acc_merge(a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// Sum of all accumulator lanes, in a fixed order.
    fn acc_sum(acc: Self::Acc) -> f64;
}

/// A computation written once, generic over the backend.
///
/// Implementations mark `run` `#[inline(always)]` so that it is compiled under
/// the `#[target_feature]` trampoline of [`dispatch`].
pub trait Kernel {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel with backend `s`.
    fn run<S: Simd>(self, s: S) -> Self::Output;
}

/// Runs `kernel` on `backend`, which must be available
/// ([`Backend::is_available`]); callers resolve `Backend::Auto` and check
/// availability first. An unavailable backend falls back to `Scalar`.
#[inline]
pub(crate) fn dispatch<K: Kernel>(backend: Backend, kernel: K) -> K::Output {
    match backend {
        Backend::Scalar | Backend::Auto => kernel.run(scalar::Scalar),
        Backend::Portable => kernel.run(scalar::Scalar),
        Backend::Avx2Fma => kernel.run(scalar::Scalar),
        Backend::Avx512 => kernel.run(scalar::Scalar),
    }
}

/// Whether the CPU (and build) supports `backend`.
pub(crate) fn is_available(backend: Backend) -> bool {
    matches!(backend, Backend::Scalar | Backend::Auto)
}

/// The best backend of this CPU, detected once and cached.
pub(crate) fn detected() -> Backend {
    Backend::Scalar
}
