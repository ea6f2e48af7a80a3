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
//! | [`Portable`](portable::Portable) | `wide::f32x8`, `wide::f64x4` | always; NEON on aarch64, SSE2 on a default x86-64 build |
//! | `Avx2Fma` | `__m256`, `__m256d` | x86-64 with AVX2 and FMA, detected at run time |
//! | `Avx512` | `__m512`, `__m512d` | x86-64 with AVX-512 F/DQ/BW/VL, detected at run time |
//!
//! A kernel is a value implementing [`Kernel`]; [`dispatch`] runs it on a
//! backend, through one `#[target_feature]` trampoline per backend so that
//! the whole kernel body is compiled (and inlined) for that instruction set:
//! every vector method is `#[inline(always)]` and nothing below the
//! trampoline carries its own `#[target_feature]`.
//!
//! Debug builds: with `debug_assertions` on, every such attribute is a plain
//! `#[inline]` instead. Unoptimized code keeps a stack slot for every value of
//! every inlined call, and a fully inlined kernel's frame then exceeds the
//! 8 MiB of a main thread (it reached 8.8 MB for BCE with logits); out of
//! line, each frame stays under 4 KiB. The intrinsics still run under their
//! own `#[target_feature]`, so results are the same, only slower; an
//! optimized build with debug assertions still inlines the small methods.
//!
//! Soundness: a backend token (`Avx2Fma`, `Avx512`) can only be obtained from
//! its `new() -> Option<Self>`, which checks the CPU features; a vector can
//! only be made from a token (`splat`, `load`, `acc_zero` take one), and a
//! mask only from vectors. So every `unsafe` intrinsic call inside a vector
//! method runs on a CPU that has the feature, and that is what each
//! `// SAFETY:` comment refers to.
//!
//! The CPU is probed once: the set of available backends is cached in an
//! atomic after the first query. When the build already guarantees a feature
//! (`-C target-cpu=native`, `-C target-feature=...`) the probe is skipped
//! statically.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod portable;
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

/// The default [`Vector::lookup16`] / [`Vector::lookup32`], through memory:
/// lane `i` takes `table[b mod N]`, `b` the bit pattern of lane `i` of `idx`
/// (`N` a power of two at most 2^29).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn lookup_lanes<V: Vector, const N: usize>(s: V::Simd, idx: V, table: &[V::Elem; N]) -> V {
    use crate::Float;
    let zero = <V::Elem as Float>::ZERO;
    let mut lanes = [zero; 16];
    let n = V::LANES.min(16);
    idx.store(&mut lanes[..n]);
    for v in &mut lanes[..n] {
        // The low mantissa bits of an f32 sit 29 bits up in its (exact)
        // f64 widening.
        let b = v.to_f64().to_bits();
        let b = if core::mem::size_of::<V::Elem>() == 4 {
            b >> 29
        } else {
            b
        };
        *v = table[(b % N as u64) as usize];
    }
    V::load(s, &lanes[..n])
}

/// A SIMD vector of `LANES` floats of type `Elem`, usable only with a token
/// of its backend.
///
/// Conventions: `max`/`min` follow the x86 `maxps`/`minps` rule exactly
/// (`if self > o { self } else { o }`), so when either operand is NaN the
/// result is `o`: `c.max(x)` with a constant `c` propagates a NaN `x`, and
/// `x.max(c)` drops it. Masks come from comparisons and feed
/// [`Vector::select`].
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
    /// Lanes past `LANES` of a longer `src` are ignored.
    fn load_partial(s: Self::Simd, src: &[Self::Elem], fill: Self::Elem) -> Self;
    /// Stores into `dst[..LANES]`. `dst.len() >= LANES` (checked).
    fn store(self, dst: &mut [Self::Elem]);
    /// Stores the low `min(dst.len(), LANES)` lanes.
    fn store_partial(self, dst: &mut [Self::Elem]);
    /// Stores into `dst[..LANES]` (`dst.len() >= LANES`, checked) with a
    /// streaming (non-temporal) store that bypasses the caches, when the
    /// backend has one and `dst` is aligned to the vector's size; otherwise
    /// a plain store. For outputs larger than the caches: no read for
    /// ownership, no eviction of the inputs. Call [`Vector::stream_fence`]
    /// after the last one.
    fn store_stream(self, dst: &mut [Self::Elem]);
    /// Orders the streaming stores made so far before every later store
    /// (`sfence`); nothing on backends without streaming stores.
    fn stream_fence(s: Self::Simd);

    /// `self + o`
    fn add(self, o: Self) -> Self;
    /// `self - o`
    fn sub(self, o: Self) -> Self;
    /// `self * o`
    fn mul(self, o: Self) -> Self;
    /// `self / o` (correctly rounded)
    fn div(self, o: Self) -> Self;
    /// `1 / self` within 0.6 ulp for finite `self` with `1/self` normal
    /// (not necessarily correctly rounded: AVX-512 `f32` uses `vrcp14ps`
    /// and one Newton–Raphson step, which outruns the divider); NaN for
    /// NaN; other inputs (zero, infinities) unspecified.
    fn recip(self) -> Self;
    /// `1 / self` with relative error below `2^-14`, for `self` in `[1, 2]`
    /// (a seed for one Newton–Raphson step that the caller forms itself;
    /// AVX-512 `f32`: `vrcp14ps` alone). The default is [`Vector::recip`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn recip_approx(self) -> Self {
        self.recip()
    }
    /// Whether [`Vector::lookup16`] is one instruction (AVX-512 `f32`:
    /// `vpermps` over a 16-lane register), which makes a 16-entry table in
    /// [`crate::math`] cheaper than polynomial terms.
    const TABLE16: bool = false;
    /// Lane `i` of the result is `table[b & 15]`, where `b` is the bit
    /// pattern of lane `i` of `idx` (the low four bits of the mantissa). The
    /// default goes through memory, lane by lane; the math uses it only where
    /// [`Vector::TABLE16`] holds.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn lookup16(s: Self::Simd, idx: Self, table: &[Self::Elem; 16]) -> Self {
        lookup_lanes(s, idx, table)
    }
    /// [`Vector::lookup16`] with 32 entries: `table[b & 31]` (the low five
    /// bits of the mantissa; AVX-512: one `vpermt2ps`).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn lookup32(s: Self::Simd, idx: Self, table: &[Self::Elem; 32]) -> Self {
        lookup_lanes(s, idx, table)
    }
    /// Whether [`Vector::lookup8_scaled`] is one permute, two shifts and
    /// an integer add (AVX2 `f32`: `vpermps` over an 8-lane register),
    /// which makes an 8-entry table in [`crate::math`] cheaper than
    /// polynomial terms where there is no 16-lane permute.
    const TABLE8: bool = false;
    /// `f32` only. For `t = 1.5·2^20 + k/8` with `k` an integer in
    /// `[-2^21, 2^21)` (so the mantissa field of `t` is `2^22 + k`) and
    /// `table` entries in `[1, 2)`: `table[k mod 8] · 2^floor(k/8)`, exact
    /// when it is normal (`floor(k/8) >= -126`). Other `t` (NaN among them)
    /// give unspecified lanes (never undefined behaviour). The default
    /// goes through memory and [`Vector::ldexp`]; the math uses it only
    /// where [`Vector::TABLE8`] holds.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn lookup8_scaled(s: Self::Simd, t: Self, table: &[Self::Elem; 8]) -> Self {
        use crate::Float;
        let k8 = t.sub(Self::splat(
            s,
            <Self::Elem as Float>::from_f64(LOOKUP8_SHIFT),
        ));
        // floor(k/8) = round(k/8 - 7/16): k/8 - 7/16 is never a tie.
        let n = k8
            .sub(Self::splat(s, <Self::Elem as Float>::from_f64(0.4375)))
            .round();
        lookup_lanes(s, t, table).ldexp(n)
    }
    /// Whether [`Vector::concat_shift`] is one instruction (AVX-512:
    /// `vpermt2ps`/`vpermt2pd`), which lets streaming stores go through a
    /// misaligned output.
    const REALIGN: bool = false;
    /// Lanes `shift..LANES` of `lo` followed by lanes `0..shift` of `hi`
    /// (`shift < LANES`, else unspecified lanes). The default goes through
    /// memory.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn concat_shift(s: Self::Simd, lo: Self, hi: Self, shift: usize) -> Self {
        use crate::Float;
        let n = Self::LANES.min(16);
        let mut lanes = [<Self::Elem as Float>::ZERO; 32];
        lo.store(&mut lanes[..n]);
        hi.store(&mut lanes[n..2 * n]);
        let shift = shift.min(n);
        Self::load(s, &lanes[shift..shift + n])
    }
    /// Whether [`Vector::mul_add`] rounds once (a fused multiply-add).
    const FUSED: bool = false;
    /// `self * a + b`, fused where the backend has FMA.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// `-self`
    fn neg(self) -> Self;
    /// `|self|`
    fn abs(self) -> Self;
    /// Lane-wise `if self > o { self } else { o }` (so `o` when either is NaN).
    fn max(self, o: Self) -> Self;
    /// Lane-wise `if self < o { self } else { o }` (so `o` when either is NaN).
    fn min(self, o: Self) -> Self;
    /// Round to nearest integer, ties to even.
    fn round(self) -> Self;
    /// Whether [`Vector::round_pow2`] is cheaper than [`Vector::round`]
    /// and [`Vector::ldexp`] (AVX2: one multiply-add, one subtraction and
    /// one shift), so that [`crate::math`]'s polynomial `exp` scales by one
    /// product instead of `ldexp`'s two.
    const POW2_SHIFT: bool = false;
    /// `(n, 2^(n + 64))` for `n` an integer nearest `x·k` (the exact
    /// product, not its rounding; a tie may go either way), for `x·k` in
    /// `[-190, 63]` (`f32`) or `[-1086, 959]` (`f64`), where both are
    /// exact. NaN in `x·k` gives a NaN `n`. The default rounds the product
    /// and builds the power with [`Vector::ldexp`]; the math uses this only
    /// where [`Vector::POW2_SHIFT`] holds.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn round_pow2(s: Self::Simd, x: Self, k: Self) -> (Self, Self) {
        use crate::Float;
        let n = x.mul(k).round();
        let one = Self::splat(s, <Self::Elem as Float>::ONE);
        let e = n.add(Self::splat(s, <Self::Elem as Float>::from_f64(64.0)));
        (n, one.ldexp(e))
    }

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
    /// Lane-wise `a & b` of masks.
    fn mask_and(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// The low `n` lanes of `self`, the others `+0` (`n >= LANES` keeps all).
    fn keep_first(self, n: usize) -> Self;

    /// `self * 2^n`, rounded once (so overflow gives ±inf and tiny results
    /// are the correctly rounded subnormal or zero), for lanes of `n`
    /// integral in `[-2·(emax - 1), 2·emax]` (`[-252, 254]` for `f32`,
    /// `[-2044, 2046]` for `f64`) and `self` zero, non-finite or with
    /// `|self|` in `[0.5, 2)`. A NaN in `self` gives NaN; other inputs are
    /// unspecified (but never undefined behaviour).
    fn ldexp(self, n: Self) -> Self;
    /// For positive finite non-zero `self`, normal or subnormal: `(e, m)`
    /// with `self = m * 2^e`, `m` in `[1, 2)` and `e` integral. Other inputs
    /// give unspecified (finite or NaN) lanes.
    fn frexp(self) -> (Self, Self);

    /// Maximum over lanes (NaN lanes may be ignored).
    fn reduce_max(self) -> Self::Elem;
    /// Sum over lanes in `f64`, in a fixed order.
    fn reduce_sum(self) -> f64;

    /// Empty accumulator.
    fn acc_zero(s: Self::Simd) -> Self::Acc;
    /// `acc + self`, each lane widened to `f64` first.
    fn acc_add(acc: Self::Acc, v: Self) -> Self::Acc;
    /// `acc + self²`, each lane widened to `f64` first (so the square is
    /// exact and cannot overflow).
    fn acc_add_sq(acc: Self::Acc, v: Self) -> Self::Acc;
    /// `acc_a + acc_b`, lane-wise.
    fn acc_merge(a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// `acc · self`, lane-wise, each lane of `self` widened to `f64` first
    /// (rescales the `f64` partial sums of an online log-sum-exp when a
    /// lane maximum grows).
    fn acc_scale(acc: Self::Acc, v: Self) -> Self::Acc;
    /// Sum of all accumulator lanes, in a fixed order.
    fn acc_sum(acc: Self::Acc) -> f64;
}

/// A computation written once, generic over the backend.
///
/// Implementations mark `run` `#[inline(always)]` (in builds without
/// `debug_assertions`, see the module docs) so that it is compiled under
/// the `#[target_feature]` trampoline of [`dispatch`].
pub trait Kernel {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel with backend `s`.
    fn run<S: Simd>(self, s: S) -> Self::Output;
}

/// Runs `kernel` on `backend`. Callers resolve `Backend::Auto` and check
/// availability first ([`Backend::resolve`]); `Auto` here means the detected
/// backend, and a backend the CPU lacks falls back to `Scalar` (never to
/// undefined behaviour).
#[inline]
pub(crate) fn dispatch<K: Kernel>(backend: Backend, kernel: K) -> K::Output {
    let backend = match backend {
        Backend::Auto => detected(),
        b => b,
    };
    match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => match avx512::Avx512::new() {
            Some(token) => avx512::run(token, kernel),
            None => kernel.run(scalar::Scalar),
        },
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2Fma => match avx2::Avx2Fma::new() {
            Some(token) => avx2::run(token, kernel),
            None => kernel.run(scalar::Scalar),
        },
        Backend::Portable => kernel.run(portable::Portable::new()),
        _ => kernel.run(scalar::Scalar),
    }
}

/// The cached CPU probe (x86-64 only: elsewhere every backend is static).
#[cfg(target_arch = "x86_64")]
mod cpu {
    use core::sync::atomic::{AtomicU8, Ordering};

    const PROBED: u8 = 1 << 7;
    pub(super) const HAS_AVX2_FMA: u8 = 1 << 0;
    pub(super) const HAS_AVX512: u8 = 1 << 1;
    pub(super) const INTEL: u8 = 1 << 2;

    static CPU: AtomicU8 = AtomicU8::new(0);

    /// The run-time detected backends as bits; probed on the first call and
    /// cached.
    #[inline]
    pub(super) fn bits() -> u8 {
        let bits = CPU.load(Ordering::Relaxed);
        if bits & PROBED != 0 {
            return bits;
        }
        let bits = probe() | PROBED;
        // Every thread computes the same value, so a plain store is enough.
        CPU.store(bits, Ordering::Relaxed);
        bits
    }

    #[cold]
    fn probe() -> u8 {
        let mut bits = 0;
        if super::avx2::static_or_detected() {
            bits |= HAS_AVX2_FMA;
        }
        if super::avx512::static_or_detected() {
            bits |= HAS_AVX512;
        }
        if is_intel() {
            bits |= INTEL;
        }
        bits
    }

    /// Whether the CPU's vendor string is `GenuineIntel`.
    fn is_intel() -> bool {
        // Leaf 0 (vendor string, highest leaf) exists on every x86-64 CPU.
        let r = core::arch::x86_64::__cpuid(0);
        let word = |b: &[u8; 4]| u32::from_le_bytes(*b);
        (r.ebx, r.edx, r.ecx) == (word(b"Genu"), word(b"ineI"), word(b"ntel"))
    }
}

/// Whether the CPU has AVX2 and FMA (cached; no probe when the build
/// guarantees them).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    avx2::STATIC || cpu::bits() & cpu::HAS_AVX2_FMA != 0
}

/// Whether the CPU has AVX-512 F/DQ/BW/VL with AVX2 and FMA (cached; no
/// probe when the build guarantees them).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx512() -> bool {
    avx512::STATIC || cpu::bits() & cpu::HAS_AVX512 != 0
}

/// Whether the elementwise kernels ask for their input lines ahead of use
/// ([`prefetch`]) on inputs larger than the caches: on Intel CPUs (cached
/// probe). On a Sapphire Rapids class Xeon, BCE with logits' arithmetic
/// left the hardware prefetcher behind at 2^24 elements (1.2–1.4 G elem/s
/// against 2.2–3.1 G for a read of the same bytes) and a prefetch 2 KiB
/// ahead of each input stream gained about a third in a standalone loop;
/// on Zen 4 and Zen 5 such prefetches measured slower, so other CPUs go
/// without (see the README's performance notes).
#[inline]
pub(crate) fn prefetch_streams() -> bool {
    is_intel()
}

/// Whether the CPU is Intel's (cached probe; `false` off x86-64): the
/// prefetch distances and cache levels that measured fastest differ
/// between Intel and AMD cores.
#[inline]
pub(crate) fn is_intel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        cpu::bits() & cpu::INTEL != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `1.5·2^20`, the offset in [`Vector::lookup8_scaled`]'s argument `t =
/// 1.5·2^20 + k/8` (whose mantissa field is then `2^22 + k`).
pub(crate) const LOOKUP8_SHIFT: f64 = 1_572_864.0;

/// Asks the cache to fetch the line holding `src[i]` (if `i` is past the
/// end, nothing observable happens): for kernels whose arithmetic is heavy
/// enough that the hardware prefetcher alone falls behind a memory stream.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn prefetch<T>(src: &[T], i: usize) {
    prefetch_ptr(src.as_ptr().wrapping_add(i));
}

/// [`prefetch`] into the second-level cache only (`prefetcht2`), for lines
/// wanted far enough ahead that fetched into L1 they would push out lines
/// still in use: the blocks of a long row's loss ([`crate::ce_kernels`]'s
/// `store_exp`).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn prefetch_l2<T>(src: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    prefetch_hint::<T, { core::arch::x86_64::_MM_HINT_T2 }>(src.as_ptr().wrapping_add(i));
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (src, i);
}

/// [`prefetch`] of the line holding `p`, any address: the pointer is only
/// handed to the hint, never dereferenced (for a buffer that is mutably
/// borrowed at the time, such as an output row being written).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn prefetch_ptr<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    prefetch_hint::<T, { core::arch::x86_64::_MM_HINT_T0 }>(p);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The one prefetch instruction behind [`prefetch_ptr`] and
/// [`prefetch_l2`], with its cache-level hint `HINT` (`_MM_HINT_*`).
#[cfg(target_arch = "x86_64")]
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn prefetch_hint<T, const HINT: i32>(p: *const T) {
    // `prefetch` is part of SSE (baseline on x86-64) and never faults or
    // changes memory, whatever the address; `p` is not dereferenced.
    // SAFETY: a prefetch hint with a baseline instruction, see above.
    unsafe { core::arch::x86_64::_mm_prefetch::<HINT>(p as *const i8) };
}

/// Whether the CPU (and build) supports `backend`.
pub(crate) fn is_available(backend: Backend) -> bool {
    match backend {
        Backend::Auto | Backend::Scalar | Backend::Portable => true,
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2Fma => has_avx2_fma(),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => has_avx512(),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// The best backend of this CPU, detected once and cached.
pub(crate) fn detected() -> Backend {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            return Backend::Avx512;
        }
        if has_avx2_fma() {
            return Backend::Avx2Fma;
        }
    }
    Backend::Portable
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel that reports the backend it ran on.
    struct Which;
    impl Kernel for Which {
        type Output = Backend;
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn run<S: Simd>(self, _: S) -> Backend {
            S::BACKEND
        }
    }

    #[test]
    fn dispatch_runs_the_requested_backend() {
        for b in Backend::available() {
            assert_eq!(dispatch(b, Which), b);
        }
        assert_eq!(dispatch(Backend::Auto, Which), detected());
        assert!(is_available(detected()));
        println!("detected backend: {:?}", detected());
    }

    /// `lookup16` (`wide == false`) or `lookup32` of the table `100 + j` at
    /// every lane of `idx` on the backend it runs on, for `f32` and `f64`
    /// lanes.
    struct Lookup<'a> {
        idx32: &'a [f32],
        idx64: &'a [f64],
        wide: bool,
    }
    impl Kernel for Lookup<'_> {
        type Output = (Vec<f32>, Vec<f64>);
        fn run<S: Simd>(self, s: S) -> Self::Output {
            fn each<V: Vector>(s: V::Simd, idx: &[V::Elem], wide: bool) -> Vec<V::Elem> {
                let table: [V::Elem; 32] =
                    core::array::from_fn(|j| crate::Float::from_f64(100.0 + j as f64));
                let table16: &[V::Elem; 16] = table[..16].try_into().expect("16 entries");
                let mut out = Vec::new();
                for chunk in idx.chunks(V::LANES) {
                    let v = V::load_partial(s, chunk, crate::Float::ZERO);
                    let mut lanes = vec![crate::Float::ZERO; V::LANES];
                    let got = if wide {
                        V::lookup32(s, v, &table)
                    } else {
                        V::lookup16(s, v, table16)
                    };
                    got.store(&mut lanes);
                    out.extend_from_slice(&lanes[..chunk.len()]);
                }
                out
            }
            (
                each::<S::F32>(s, self.idx32, self.wide),
                each::<S::F64>(s, self.idx64, self.wide),
            )
        }
    }

    #[test]
    fn lookups_read_the_low_four_or_five_bits() {
        let idx32: Vec<f32> = (0..40u32)
            .map(|k| f32::from_bits(0x4940_0000 + k * 7))
            .chain([
                f32::NAN,
                -0.0,
                f32::INFINITY,
                786_432.0 - 0.0625,
                393_216.0 - 0.03125,
            ])
            .collect();
        let idx64: Vec<f64> = (0..40u64)
            .map(|k| f64::from_bits(0x4128_0000_0000_0000 + k * 7))
            .chain([f64::NAN, -0.0])
            .collect();
        for (wide, mask) in [(false, 15), (true, 31)] {
            let want32: Vec<f32> = idx32
                .iter()
                .map(|x| 100.0 + (x.to_bits() & mask) as f32)
                .collect();
            let want64: Vec<f64> = idx64
                .iter()
                .map(|x| 100.0 + (x.to_bits() & mask as u64) as f64)
                .collect();
            for b in Backend::available() {
                let (g32, g64) = dispatch(
                    b,
                    Lookup {
                        idx32: &idx32,
                        idx64: &idx64,
                        wide,
                    },
                );
                assert_eq!(g32, want32, "{b:?} f32, wide {wide}");
                assert_eq!(g64, want64, "{b:?} f64, wide {wide}");
            }
        }
    }

    /// `lookup8_scaled` of the table `1 + j/8` at `t = 1.5·2^20 + k/8` for
    /// every `k` in `[-1008, 1008)` (results from `2^-126` up), on `f32`.
    struct Lookup8<'a>(&'a [f32]);
    impl Kernel for Lookup8<'_> {
        type Output = Vec<f32>;
        fn run<S: Simd>(self, s: S) -> Vec<f32> {
            let table: [f32; 8] = core::array::from_fn(|j| 1.0 + j as f32 / 8.0);
            let mut out = Vec::new();
            for chunk in self.0.chunks(S::F32::LANES) {
                let v = S::F32::load_partial(s, chunk, LOOKUP8_SHIFT as f32);
                let mut lanes = vec![0.0; S::F32::LANES];
                S::F32::lookup8_scaled(s, v, &table).store(&mut lanes);
                out.extend_from_slice(&lanes[..chunk.len()]);
            }
            out
        }
    }

    #[test]
    fn lookup8_scaled_is_the_entry_times_a_power_of_two() {
        let ks: Vec<i32> = (-1008..1008).collect();
        let t: Vec<f32> = ks
            .iter()
            .map(|&k| LOOKUP8_SHIFT as f32 + k as f32 / 8.0)
            .collect();
        let want: Vec<f32> = ks
            .iter()
            .map(|&k| {
                let (q, r) = (k.div_euclid(8), k.rem_euclid(8));
                ((1.0 + r as f64 / 8.0) * 2f64.powi(q)) as f32
            })
            .collect();
        // Every backend: the AVX2 one and the generic default the others use.
        for b in Backend::available() {
            assert_eq!(dispatch(b, Lookup8(&t)), want, "{b:?}");
        }
    }

    #[test]
    fn detection_matches_std() {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            let avx512 = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl");
            assert_eq!(is_available(Backend::Avx2Fma), avx2);
            assert_eq!(is_available(Backend::Avx512), avx512 && avx2);
        }
        assert!(is_available(Backend::Scalar) && is_available(Backend::Portable));
    }
}
