//! Vectorized transcendental functions, written once over [`Vector`].
//!
//! | function | bound: `f32`, every input, every backend | measured (exhaustive): FMA backends / `Scalar`, SSE2 `Portable` | `f64` (sampled, vs `std`) |
//! | --- | --- | --- | --- |
//! | [`exp`] | ≤ 1.5 ulp | 0.891 / 1.167 | ≤ 1 ulp |
//! | [`exp_nonpositive_term`] (`x <= 0`; terms of sums, cross entropy's stored exponentials) | ≤ 1.5 ulp | 0.989 on AVX-512; elsewhere it is [`exp`] | ≤ 1 ulp |
//! | [`exp_softmax_term`] (`x <= 0`; softmax denominators; `e^max(x, -87)`) | ≤ 2 + \|x\|/20 ulp | 1.732 + \|x\|/20 on AVX-512; AVX2 (8-entry table): 1.177 + \|x\|/20; elsewhere it is [`exp`] | ≤ 1 ulp |
//! | [`ln`] | ≤ 1 ulp | 0.905 / 0.905 | ≤ 1 ulp |
//! | [`ln_unit_clamped`] (`max(ln p, -100)`, `p` in `[0, 1]`) | ≤ 1 ulp on `[0, 1]` | 0.998 on AVX-512 ([`ln_unit_table16`]); elsewhere [`ln`]'s algorithm | ≤ 1 ulp |
//! | [`ln_one_minus_unit_clamped`] (`max(ln(1 - p), -100)`) | ≤ 1 ulp on `[0, 1]` | 0.999 on AVX-512 ([`ln_unit_table16`]); elsewhere [`log1p`]'s | ≤ 1 ulp |
//! | [`log1p`] | ≤ 1 ulp | 0.963 / 0.986 | ≤ 1 ulp |
//! | [`tanh`] | ≤ 2 ulp | 1.498 / 1.498 | ≤ 2 ulp |
//! | [`logistic`]: `softplus(x) = max(x, 0) + ln(1 + e^{-|x|})` | ≤ 2.5 ulp | 2.182 / 2.224 | ≤ 2 ulp |
//! | [`logistic`]: `sigmoid(x)` (`1/(1+e)`, `e·(1/(1+e))`) | ≤ 2.5 ulp | 1.957 / 2.464 | ≤ 3 ulp |
//! | [`logistic_term`]: softplus as above (terms of sums) | ≤ 3 ulp | 2.602 on AVX-512; elsewhere it is [`logistic`] | ≤ 2 ulp |
//!
//! The table is asserted by the tests at the bottom of this file: the
//! exhaustive sweep over all 2^32 `f32` bit patterns per function and per
//! backend (`cargo test --release --lib -- --ignored exhaustive`, prints
//! `ULP <function> <backend> <max_ulp>`; for [`exp_softmax_term`] the error
//! less `|x|/20`), a strided sweep in the quick suite,
//! and a sampled `f64` test. Errors are measured against `f64` `std`
//! (correctly rounded to well under 0.01 `f32` ulp); for the `f64` versions
//! `std` itself is off by up to ~0.5 ulp, so the `f64` column is a bound on
//! our error plus `std`'s. The bounds hold with and without fused
//! multiply-add (`Scalar` and an SSE2 `Portable` round twice).
//!
//! Special values are exact: `exp(-inf) = +0`, `exp(+inf) = +inf`, `exp`
//! overflows to `+inf` above `ln(MAX)` (88.72284 for `f32`, 709.7827 for
//! `f64`) and returns correctly rounded subnormals down to `ln(2^-150)`
//! (−103.97 / `ln(2^-1075)` = −745.13) and `+0` below; `ln(±0) = -inf`,
//! `ln(x < 0) = NaN`, `ln(+inf) = +inf`, subnormal inputs are exact;
//! `log1p(-1) = -inf`, `log1p(x < -1) = NaN`, `log1p(±0) = ±0`;
//! `tanh(±0) = ±0`, `tanh(±inf) = ±1`. NaN in gives NaN out everywhere.
//!
//! ## How
//!
//! `exp(x)`: Cody–Waite reduction `x = n·ln2 + r`, `n = round(x/ln2)`,
//! `|r| <= ln2/2`, with `ln2 = LN2_HI + LN2_LO` where `LN2_HI` has so few
//! significant bits (16 for `f32`, 32 for `f64`) that `n·LN2_HI` and
//! `x - n·LN2_HI` are exact for every `n` in range, with or without FMA.
//! Then `e^r` by a minimax polynomial `1 + r + c2 r² + …` (relative error of
//! the polynomial alone: 2^-28.8 for `f32` with degree 6, 2^-57.8 for `f64`
//! with degree 11), and the result `e^r · 2^n` by [`Vector::ldexp`], which
//! rounds once even when the result overflows or is subnormal. Where the
//! backend can build `2^(n + 64)` from the bits of `x·log2 e + magic` by a
//! shift ([`Vector::POW2_SHIFT`], AVX2) that one multiply-add rounds `n` as
//! well, the coefficients are pre-scaled by `2^-64` and one product
//! `p·2^(n + 64)` replaces `round` and `ldexp`, with the same single
//! rounding (see `exp_clamped`). Where a
//! 16-entry table lookup is one instruction (AVX-512 `f32`,
//! [`Vector::TABLE16`]) the reduction is finer instead, `x = (k/16)·ln2 + r`
//! with `|r| <= ln2/32`, and `e^x = 2^(k/16) · e^r` with `2^(j/16)` from a
//! table of `f32` pairs and a cubic for `e^r` (three multiply-adds fewer; the
//! exhaustive maximum on AVX-512 went from 0.891 to 0.762 ulp, softplus from
//! 2.182 to 2.123, sigmoid stays 1.957); see `exp_table16`. On AVX2 `f32`,
//! whose widest permute holds 8 lanes ([`Vector::TABLE8`]), the softmax
//! terms take an 8-entry table, `|r| <= ln2/16` and a cubic; the entry and
//! `2^floor(k/8)` meet in one integer add (`exp_table8_term`).
//!
//! `ln(x)`: `x = m·2^k` with `m` in `[√½, √2)` ([`Vector::frexp`] and one
//! halving), `f = m - 1` (exact), `ln(1 + f) = f + tail(f)` with the small
//! `tail` from a minimax polynomial in `f` for `f32` (degree 10, relative
//! error 2^-27.9) and from `s = f/(2+f)`, `ln(1+f) = 2 atanh(s)` for `f64`
//! (fdlibm's decomposition `f - hfsq + s·(hfsq + R(s²))`, with our own fit of
//! `R` of degree 7 in `s²`, relative error 2^-51 on a term below 2% of the
//! result). The sum is `k·LN2_HI + (f + (tail + k·LN2_LO))`, small terms
//! first.
//!
//! `log1p(x)`: `u = 1 + x` is reduced as above; where `u` lands in
//! `[√½, √2)` the exact `x` is used as `f` directly, elsewhere the rounding
//! error of `1 + x` (exact by Fast2Sum) is added back as `c/u`.
//!
//! `tanh(x) = E / (E + 2)` with `E = expm1(2|x|)`, an `expm1` on the same
//! reduction as `exp`: `2^n·(e^r - 1) + (2^n - 1)`, so small arguments keep
//! their relative accuracy; `tanh(x) = x` below 2^-12 (`f32`) / 2^-27.
//!
//! Every polynomial but one was fitted with Sollya 8.0 (`fpminimax`, relative error,
//! coefficients rounded to the element type), e.g. for `f32` `exp`:
//! `fpminimax(exp(x), [|2,...,6|], [|single...|], [-0.3467;0.3467],
//! relative, floating, 1+x)`; the fit domain, degree and error of each one
//! are next to its coefficients, which are written as bit patterns (with the
//! decimal value) so they are exactly what Sollya printed. The exception is
//! [`c32::LN_R16`], the cubic of [`ln_unit_table16`], fitted by
//! `scripts/ln_table16.py` (reweighted least squares in `mpmath`), which
//! also generates its tables.
//!
//! The element type is chosen per call by `size_of::<V::Elem>()`, a constant
//! after monomorphization, so each instantiation contains one branch only.

use crate::simd::Vector;
use crate::Float;

/// Whether the lanes are `f32` (otherwise `f64`).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn is_f32<V: Vector>() -> bool {
    core::mem::size_of::<V::Elem>() == 4
}

/// A constant in every lane (the `f64` is exact in the element type).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn splat<V: Vector>(s: V::Simd, x: f64) -> V {
    V::splat(s, <V::Elem as Float>::from_f64(x))
}

/// An `f32` constant from its bit pattern, widened exactly.
const fn f32c(bits: u32) -> f64 {
    f32::from_bits(bits) as f64
}

/// An `f64` constant from its bit pattern.
const fn f64c(bits: u64) -> f64 {
    f64::from_bits(bits)
}

/// `c` with every coefficient times `f` (a power of two: exact).
const fn scaled<const N: usize>(c: [f64; N], f: f64) -> [f64; N] {
    let mut out = c;
    let mut i = 0;
    while i < N {
        out[i] = c[i] * f;
        i += 1;
    }
    out
}

/// `2^-64`: the polynomial `exp`'s coefficients times it, on backends
/// with [`Vector::POW2_SHIFT`] (see [`exp_clamped`]).
const TWO_M64: f64 = 1.0 / 18_446_744_073_709_551_616.0;

/// `c[0] + x·(c[1] + x·(c[2] + …))` by Horner's rule with `mul_add`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn horner<V: Vector>(s: V::Simd, x: V, c: &[f64]) -> V {
    let (last, rest) = c.split_last().expect("a polynomial has coefficients");
    let mut acc = splat::<V>(s, *last);
    for &ci in rest.iter().rev() {
        acc = acc.mul_add(x, splat(s, ci));
    }
    acc
}

// ---------------------------------------------------------------- constants

/// `f32` constants. `LN2_HI` = ln 2 truncated to 16 significant bits, so
/// `n·LN2_HI` is exact for `|n| < 2^8`.
mod c32 {
    use super::f32c;
    pub const LOG2E: f64 = f32c(0x3fb8_aa3b); // 1.44269502
    pub const LN2_HI: f64 = f32c(0x3f31_7200); // 0.693145751953125
    pub const LN2_LO: f64 = f32c(0x35bf_be8e); // 1.42860677e-6
    pub const SQRT2: f64 = f32c(0x3fb5_04f3); // 1.41421354 (rounded down)
    /// `exp`: below, the result rounds to +0; above, to +inf.
    pub const EXP_LO: f64 = -104.0;
    pub const EXP_HI: f64 = 89.0;
    /// [`super::exp_softmax_term`] takes `x` below this as this: `e^-87`
    /// is still a normal float (`2^-126` is `e^-87.34`).
    pub const SOFTMAX_TERM_LO: f64 = -87.0;
    /// Below it `2^(n + 64)` is a normal float for `n = round(x·log2 e)`:
    /// [`super::exp_clamped`] scales by one product there.
    pub const EXP_POW2_MAX: f64 = 43.0;
    /// `e^r ≈ 1 + r + r²·P(r)` on [-0.3467, 0.3467], degree 6, rel. error 2^-28.8.
    pub const EXP: [f64; 7] = [
        1.0,
        1.0,
        f32c(0x3eff_fffd), // 0.499999911
        f32c(0x3e2a_aa49), // 0.166665211
        f32c(0x3d2a_ad13), // 0.0416689627
        f32c(0x3c09_1cc4), // 0.00836867467
        f32c(0x3ab4_a669), // 0.00137825042
    ];
    /// [`EXP`] times `2^-64` ([`super::exp_clamped`]).
    pub const EXP_2M64: [f64; 7] = super::scaled(EXP, super::TWO_M64);
    /// `exp` with a 16-entry table ([`super::exp_table16`]): `2^(j/16)` as
    /// `f32` pairs `hi + lo` (`|lo| <= ulp(hi) / 2`).
    pub const EXP2_16_HI: [f64; 16] = [
        f32c(0x3f80_0000),
        f32c(0x3f85_aac3),
        f32c(0x3f8b_95c2),
        f32c(0x3f91_c3d3),
        f32c(0x3f98_37f0),
        f32c(0x3f9e_f532),
        f32c(0x3fa5_fed7),
        f32c(0x3fad_583f),
        f32c(0x3fb5_04f3),
        f32c(0x3fbd_08a4),
        f32c(0x3fc5_672a),
        f32c(0x3fce_248c),
        f32c(0x3fd7_44fd),
        f32c(0x3fe0_ccdf),
        f32c(0x3fea_c0c7),
        f32c(0x3ff5_257d),
    ];
    /// The low parts of [`EXP2_16_HI`].
    pub const EXP2_16_LO: [f64; 16] = [
        0.0,
        f32c(0x334f_9891),
        f32c(0xb260_aba1),
        f32c(0x3367_5624),
        f32c(0x3323_1b71),
        f32c(0x3341_2342),
        f32c(0xb32c_9d5e),
        f32c(0xb22d_eaf6),
        f32c(0x32cf_e77a),
        f32c(0xb341_4fe8),
        f32c(0x320a_a837),
        f32c(0x3228_fc24),
        f32c(0xb2d4_a58a),
        f32c(0xb21e_ab59),
        f32c(0xb241_16de),
        f32c(0x3229_2436),
    ];
    /// `e^r ≈ 1 + r + r²·(C2 + C3·r)` on `|r| <= ln2/32 · 1.001`, relative
    /// error 2^-29.2 (`fpminimax(exp(x), [|2,3|], [|single...|], [-a;a],
    /// relative, floating, 1+x)`, `a = log(2)/32·1.001`; Taylor's `1/2, 1/6`
    /// would be 2^-26.7).
    pub const EXP_T16: [f64; 2] = [
        f32c(0x3f00_0110), // 0.500016212
        f32c(0x3e2a_aad1), // 0.166667238
    ];
    /// `1.5·2^19`: `x·log2(e) + SHIFT16` rounds `x·log2(e)` to a multiple of
    /// 1/16 (the spacing of floats in `[2^19, 2^20)`) and leaves that
    /// multiple `k/16` as `k mod 16` in the low four mantissa bits.
    pub const SHIFT16: f64 = 786_432.0;
    /// `2^(j/32)` rounded to `f32` ([`super::exp_table32_term`]).
    pub const EXP2_32: [f64; 32] = [
        f32c(0x3f80_0000),
        f32c(0x3f82_cd87),
        f32c(0x3f85_aac3),
        f32c(0x3f88_980f),
        f32c(0x3f8b_95c2),
        f32c(0x3f8e_a43a),
        f32c(0x3f91_c3d3),
        f32c(0x3f94_f4f0),
        f32c(0x3f98_37f0),
        f32c(0x3f9b_8d3a),
        f32c(0x3f9e_f532),
        f32c(0x3fa2_7043),
        f32c(0x3fa5_fed7),
        f32c(0x3fa9_a15b),
        f32c(0x3fad_583f),
        f32c(0x3fb1_23f6),
        f32c(0x3fb5_04f3),
        f32c(0x3fb8_fbaf),
        f32c(0x3fbd_08a4),
        f32c(0x3fc1_2c4d),
        f32c(0x3fc5_672a),
        f32c(0x3fc9_b9be),
        f32c(0x3fce_248c),
        f32c(0x3fd2_a81e),
        f32c(0x3fd7_44fd),
        f32c(0x3fdb_fbb8),
        f32c(0x3fe0_ccdf),
        f32c(0x3fe5_b907),
        f32c(0x3fea_c0c7),
        f32c(0x3fef_e4ba),
        f32c(0x3ff5_257d),
        f32c(0x3ffa_83b3),
    ];
    /// `1.5·2^20`: `x·log2(e) + SHIFT8` rounds `x·log2(e)` to a multiple of
    /// 1/8 `k/8` and leaves `2^22 + k` in the mantissa field
    /// ([`super::exp_table8_term`], [`crate::simd::Vector::lookup8_scaled`]).
    pub const SHIFT8: f64 = crate::simd::LOOKUP8_SHIFT;
    /// `e^r ≈ 1 + r + r²·(C2 + C3·r)` on `|r| <= ln2/16 · 1.002`: relative
    /// error 2^-24.96 (minimax by Remez in `mpmath`, then a search over
    /// the neighbouring `f32` coefficients; Taylor's `1/2, 1/6` would be
    /// 2^-22.5).
    pub const EXP_T8: [f64; 2] = [
        f32c(0x3f00_049d), // 0.500070393
        f32c(0x3e2a_acd9), // 0.166674986
    ];
    /// `1.5·2^18`: `x·log2(e) + SHIFT32` rounds `x·log2(e)` to a multiple of
    /// 1/32 and leaves it as `k mod 32` in the low five mantissa bits.
    pub const SHIFT32: f64 = 393_216.0;
    /// `e^r ≈ 1 + r·(C1 + C2·r)` on `|r| <= ln2/64 · 1.002`: the minimax
    /// relative error of a quadratic there, 2^-24.15 (grid search over
    /// `f32` coefficients; `C1 = 1 + h²/8` absorbs the odd cubic term).
    pub const EXP_T32: [f64; 2] = [
        f32c(0x3f80_007b), // 1.00001466
        0.5,
    ];
    /// `ln 2` rounded to `f32` (`ln 2 - LN2_F32 = -1.9e-9`), for the one-step
    /// reduction of [`super::exp_table32_term`].
    pub const LN2_F32: f64 = f32c(0x3f31_7218);
    /// The logarithm on `[0, 1]` with a 16-entry table
    /// ([`super::ln_unit_table16`]): interval `j` of the mantissa `m` in
    /// `[1, 2)` is `[1 + j/16, 1 + (j+1)/16)`, `INV16[j]` an `f32` near the
    /// inverse of its centre (exactly 1 for `j = 0` and 1/2 for `j = 15`, so
    /// that `r = m·inv - 1` is exact next to 1 and 2), and
    /// `HI16[j] + LO16[j] = -ln(INV16[j])` to 2^-40, with `HI16[j]` a
    /// multiple of 2^-16 (as `LN2_HI`: `k·LN2_HI + HI16[j]` is exact in one
    /// multiply-add; `HI16[15]`, `LO16[15]` are `LN2_HI`, `LN2_LO`, so
    /// `-ln2 + ln 2` cancels exactly). Generated by
    /// `scripts/ln_table16.py`.
    pub const LN_INV16: [f64; 16] = [
        f32c(0x3f80_0000), // 1
        f32c(0x3f6a_0ea1), // 0.914285719
        f32c(0x3f5d_67c9), // 0.864864886
        f32c(0x3f52_0d21), // 0.820512831
        f32c(0x3f47_ce0c), // 0.780487776
        f32c(0x3f3e_82fa), // 0.744186044
        f32c(0x3f36_0b61), // 0.711111128
        f32c(0x3f2e_4c41), // 0.680851042
        f32c(0x3f27_2f05), // 0.653061211
        f32c(0x3f20_a0a1), // 0.627451003
        f32c(0x3f1a_90e8), // 0.603773594
        f32c(0x3f14_f209), // 0.581818163
        f32c(0x3f0f_b824), // 0.561403513
        f32c(0x3f0a_d8f3), // 0.542372882
        f32c(0x3f06_4b8a), // 0.524590135
        f32c(0x3f00_0000), // 0.5
    ];
    /// See [`LN_INV16`].
    pub const LN_HI16: [f64; 16] = [
        f32c(0x0000_0000), // 0
        f32c(0x3db7_8800), // 0.0896148682
        f32c(0x3e14_ac00), // 0.145187378
        f32c(0x3e4a_9400), // 0.1978302
        f32c(0x3e7d_c800), // 0.247833252
        f32c(0x3e97_4800), // 0.295471191
        f32c(0x3eae_8e00), // 0.340927124
        f32c(0x3ec4_d200), // 0.384414673
        f32c(0x3eda_2800), // 0.426086426
        f32c(0x3eee_a400), // 0.466094971
        f32c(0x3f01_2b00), // 0.504562378
        f32c(0x3f0a_a600), // 0.541595459
        f32c(0x3f13_cb00), // 0.577316284
        f32c(0x3f1c_9f00), // 0.611801147
        f32c(0x3f25_2800), // 0.645141602
        f32c(0x3f31_7200), // 0.693145752
    ];
    /// See [`LN_INV16`].
    pub const LN_LO16: [f64; 16] = [
        f32c(0x0000_0000), // 0
        f32c(0xb636_346a), // -2.71506224e-06
        f32c(0xb6b4_ef80), // -5.3922995e-06
        f32c(0xb695_fc2f), // -4.46990407e-06
        f32c(0x3645_eaf2), // 2.94920437e-06
        f32c(0xb6ea_08f7), // -6.97478708e-06
        f32c(0xb516_a9fe), // -5.61267257e-07
        f32c(0xb645_73ec), // -2.9422763e-06
        f32c(0xb606_e337), // -2.00998124e-06
        f32c(0xb6b1_09f2), // -5.27616885e-06
        f32c(0xb6d6_25a3), // -6.38207848e-06
        f32c(0x35f8_fd35), // 1.85511328e-06
        f32c(0xb578_bb27), // -9.26595419e-07
        f32c(0x34d2_562a), // 3.91782407e-07
        f32c(0xb670_89f8), // -3.58430952e-06
        f32c(0x35bf_be8e), // 1.42860677e-06
    ];
    /// `ln(1+r) ≈ r + r²·Q(r)` on `r` in `[-0.03157, 0.06313]` (every
    /// interval's reduced argument, 1% wider), degree 3, relative error
    /// 2^-27.9 with these `f32` coefficients: a near-minimax fit by
    /// iteratively reweighted least squares in 200-bit `mpmath`
    /// (`scripts/ln_table16.py`), not Sollya.
    pub const LN_R16: [f64; 4] = [
        f32c(0xbf00_0000), // -0.5
        f32c(0x3eaa_ac2d), // 0.333344847
        f32c(0xbe80_082d), // -0.250062376
        f32c(0x3e40_df98), // 0.188352942
    ];
    /// `1.5·2^23`: adding it to `v` in `[-0.5, 15.5)` rounds `v` to an
    /// integer (ties to even) held in the low mantissa bits.
    pub const SHIFT23: f64 = 12_582_912.0;
    /// `e^r - 1 ≈ r + r²·Q(r)` on [-0.3467, 0.3467], degree 6, rel. error 2^-26.9.
    pub const EXPM1_Q: [f64; 5] = [
        f32c(0x3eff_ffff), // 0.49999997
        f32c(0x3e2a_aa58), // 0.166665435
        f32c(0x3d2a_ab8b), // 0.0416675024
        f32c(0x3c09_13cf), // 0.00836653914
        f32c(0x3ab5_b9bb), // 0.00138645561
    ];
    /// `ln(1+f) ≈ f + f²·T(f)` on [-0.2930, 0.4143], degree 10, rel. error 2^-27.9.
    pub const LN_T: [f64; 9] = [
        f32c(0xbeff_fffc), // -0.499999881
        f32c(0x3eaa_aaa8), // 0.333333254
        f32c(0xbe80_0219), // -0.250016004
        f32c(0x3e4c_d20e), // 0.200020045
        f32c(0xbe2a_12dc), // -0.166087568
        f32c(0x3e11_36d1), // 0.14181067
        f32c(0xbe07_a006), // -0.132446378
        f32c(0x3e04_3234), // 0.12909776
        f32c(0xbd9c_2726), // -0.0762465447
    ];
    /// `ln(1+e)/e ≈ P(e)` on [2^-40, 1], degree 9, `P(0) = 1`, rel. error
    /// 2^-27.5 (`fpminimax(log(1+x)/x, [|1,...,9|], [|single...|],
    /// [2^-40;1], relative, floating, 1)`): `ln(1 + e) = e + e²·(P(e)-1)/e`
    /// for the logistic functions, no range reduction needed.
    pub const LOG1P_UNIT: [f64; 10] = [
        1.0,
        f32c(0xbeff_ffe9), // -0.499999315
        f32c(0x3eaa_a6ed), // 0.333304793
        f32c(0xbe7f_92ab), // -0.249582931
        f32c(0x3e49_aab4), // 0.196940243
        f32c(0xbe1d_339b), // -0.153517172
        f32c(0x3dda_9e24), // 0.106746942
        f32c(0xbd6b_f7d4), // -0.0576093942
        f32c(0x3ca5_4913), // 0.0201764461
        f32c(0xbb59_156f), // -0.00331243477
    ];
    /// The same of degree 8, rel. error 2^-24.8 (`[|1,...,8|]`), for
    /// backends with a fused multiply-add: one multiply-add less in the
    /// BCE-with-logits kernel, whose speed is set by its count of them.
    /// Without FMA the extra roundings leave too little room in the
    /// softplus bound, so those backends keep degree 9.
    pub const LOG1P_UNIT_FMA: [f64; 9] = [
        1.0,
        f32c(0xbeff_ff8a), // -0.499996483
        f32c(0x3eaa_9aef), // 0.3332133
        f32c(0xbe7e_89b4), // -0.248572171
        f32c(0x3e44_22aa), // 0.191538483
        f32c(0xbe0c_d7c7), // -0.137541875
        f32c(0x3da2_383d), // 0.0792088285
        f32c(0xbcf6_51cc), // -0.0300683007
        f32c(0x3baf_d06d), // 0.00536542246
    ];
    /// `tanh(x) = x` (correctly rounded) below this.
    pub const TANH_TINY: f64 = 1.0 / 4096.0;
    /// `tanh(x) ≈ x + x³·P(x²)` on [2^-12, 0.625], degree 11, rel. error 2^-28.
    pub const TANH_P: [f64; 5] = [
        f32c(0xbeaa_aa99), // -0.333332807
        f32c(0x3e08_8382), // 0.133314162
        f32c(0xbd5c_1c50), // -0.0537379384
        f32c(0x3ca9_08e2), // 0.0206341185
        f32c(0xbbba_c7d6), // -0.00570009183
    ];
    /// `tanh(x)` rounds to 1 above half of this.
    pub const TANH_2X_MAX: f64 = 20.0;
}

/// `f64` constants. `LN2_HI` = ln 2 truncated to 32 significant bits (fdlibm's
/// `ln2_hi`), so `n·LN2_HI` is exact for `|n| < 2^21`.
mod c64 {
    use super::f64c;
    pub const LOG2E: f64 = f64c(0x3ff7_1547_652b_82fe); // 1.4426950408889634
    pub const LN2_HI: f64 = f64c(0x3fe6_2e42_fee0_0000); // 0.6931471803691238
    pub const LN2_LO: f64 = f64c(0x3dea_39ef_3579_3c76); // 1.9082149292705877e-10
    pub const SQRT2: f64 = f64c(0x3ff6_a09e_667f_3bcc); // 1.4142135623730949 (rounded down)
    pub const EXP_LO: f64 = -746.0;
    pub const EXP_HI: f64 = 710.0;
    /// As for `f32` (`2^-1022` is `e^-708.40`).
    pub const SOFTMAX_TERM_LO: f64 = -708.0;
    /// As for `f32`.
    pub const EXP_POW2_MAX: f64 = 660.0;
    /// `e^r ≈ 1 + r + r²·P(r)` on [-0.3467, 0.3467], degree 11, rel. error 2^-57.8.
    pub const EXP: [f64; 12] = [
        1.0,
        1.0,
        f64c(0x3fe0_0000_0000_000a), // 0.5000000000000011
        f64c(0x3fc5_5555_5555_54fe), // 0.16666666666666424
        f64c(0x3fa5_5555_5555_06ac), // 0.041666666666526936
        f64c(0x3f81_1111_1112_6b2e), // 0.008333333333487038
        f64c(0x3f56_c16c_1847_c94a), // 0.0013888888944362959
        f64c(0x3f2a_01a0_12ff_a313), // 0.00019841269522593487
        f64c(0x3efa_0199_94c1_319b), // 2.4801492415614528e-05
        f64c(0x3ec7_1df1_8b9a_77af), // 2.7557572053878852e-06
        f64c(0x3e92_8ae1_0fc9_2d74), // 2.763047317929422e-07
        f64c(0x3e5a_d937_1fbf_06c3), // 2.5004611700418618e-08
    ];
    /// [`EXP`] times `2^-64` ([`super::exp_clamped`]).
    pub const EXP_2M64: [f64; 12] = super::scaled(EXP, super::TWO_M64);
    /// `e^r - 1 ≈ r + r²·Q(r)` on [-0.3467, 0.3467], degree 12, rel. error 2^-61.5.
    pub const EXPM1_Q: [f64; 11] = [
        0.5,
        f64c(0x3fc5_5555_5555_5559), // 0.16666666666666677
        f64c(0x3fa5_5555_5555_554d), // 0.04166666666666661
        f64c(0x3f81_1111_1110_f655), // 0.00833333333332146
        f64c(0x3f56_c16c_16c1_aafe), // 0.0013888888888923807
        f64c(0x3f2a_01a0_1b00_36da), // 0.0001984126988649391
        f64c(0x3efa_01a0_18e0_f1e3), // 2.4801587237487348e-05
        f64c(0x3ec7_1ddf_80f8_66f9), // 2.7557243880261328e-06
        f64c(0x3e92_7e51_3398_4a14), // 2.755735298575249e-07
        f64c(0x3e5a_f5f2_c471_0ad4), // 2.5109141679278772e-08
        f64c(0x3e21_f1a3_6b91_6fb2), // 2.0889448751900587e-09
    ];
    /// `R(z) ≈ (2 atanh(s) - 2s)/s`, `z = s²` in [0, 0.02945] (`|s| <= 0.1716`),
    /// `R(z) = z·(L1 + L2 z + … + L7 z^6)`, rel. error 2^-51.
    pub const LN_R: [f64; 7] = [
        f64c(0x3fe5_5555_5555_5558), // 0.666666666666667
        f64c(0x3fd9_9999_9999_5303), // 0.3999999999989969
        f64c(0x3fd2_4924_92df_3035), // 0.2857142862601479
        f64c(0x3fcc_71c6_2e0b_72ce), // 0.2222221112086999
        f64c(0x3fc7_462b_661a_64aa), // 0.18182890401366097
        f64c(0x3fc3_9fe2_12ae_f3dc), // 0.15331674492145353
        f64c(0x3fc2_b5b8_5337_437b), // 0.14617065490031309
    ];
    pub const TANH_TINY: f64 = 1.0 / 134_217_728.0; // 2^-27
    /// `tanh(x) ≈ x + x³·P(x²)` on [2^-27, 0.625], degree 25, rel. error 2^-62.
    pub const TANH_P: [f64; 12] = [
        f64c(0xbfd5_5555_5555_5552), // -0.33333333333333315
        f64c(0x3fc1_1111_1111_0c54), // 0.13333333333329966
        f64c(0xbfab_a1ba_1b9d_1b7f), // -0.05396825396615323
        f64c(0x3f96_64f4_870c_a5ee), // 0.02186948847080388
        f64c(0xbf82_26e3_2d07_3eda), // -0.008863234340338467
        f64c(0x3f6d_6d35_a582_17cc), // 0.0035921142371675204
        f64c(0xbf57_d9c3_48f0_8763), // -0.0014557272986696838
        f64c(0x3f43_50b9_3686_6256), // 0.0005894569740574989
        f64c(0xbf2f_113c_984a_c686), // -0.0002370249241230757
        f64c(0x3f18_01d2_380b_fc8c), // 9.157987188855766e-05
        f64c(0xbeff_acba_c34b_f262), // -3.0207371497491932e-05
        f64c(0x3ed9_60f9_fd54_dce8), // 6.050780901482195e-06
    ];
    pub const TANH_2X_MAX: f64 = 44.0;
}

/// The constants of one element type.
struct Consts {
    log2e: f64,
    ln2_hi: f64,
    ln2_lo: f64,
    sqrt2: f64,
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn consts<V: Vector>() -> Consts {
    if is_f32::<V>() {
        Consts {
            log2e: c32::LOG2E,
            ln2_hi: c32::LN2_HI,
            ln2_lo: c32::LN2_LO,
            sqrt2: c32::SQRT2,
        }
    } else {
        Consts {
            log2e: c64::LOG2E,
            ln2_hi: c64::LN2_HI,
            ln2_lo: c64::LN2_LO,
            sqrt2: c64::SQRT2,
        }
    }
}

// ---------------------------------------------------------------------- exp

/// Cody–Waite: `(n, r)` with `x = n·ln2 + r`, `n` integral, `|r| <= 0.3466`.
/// Exact up to the rounding of `r` (for `|x|` below the clamp bounds).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn reduce_exp<V: Vector>(s: V::Simd, x: V) -> (V, V) {
    let n = x.mul(splat(s, consts::<V>().log2e)).round();
    (n, cody_waite(s, n, x))
}

/// `r = x - n·ln2` in two steps, `x - n·LN2_HI` (exact) then `- n·LN2_LO`:
/// [`reduce_exp`]'s `r` for an integral `n` near `x·log2 e` however `n` was
/// rounded (also [`exp_clamped`]'s [`Vector::round_pow2`] path).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn cody_waite<V: Vector>(s: V::Simd, n: V, x: V) -> V {
    let k = consts::<V>();
    let r = n.mul_add(splat(s, -k.ln2_hi), x);
    n.mul_add(splat(s, -k.ln2_lo), r)
}

/// `e^x`.
///
/// Max error ≤ 1.5 ulp over all inputs for `f32` (exhaustive test, every
/// backend; ≤ 1 ulp on the FMA backends) and within 1 ulp of `std` for
/// `f64` (sampled). Overflows to
/// `+inf` above `ln(MAX)`, returns correctly rounded subnormals (one
/// rounding) and `+0` below `ln(MIN_SUBNORMAL / 2)`; `exp(-inf) = +0`,
/// `exp(+inf) = +inf`, `exp(NaN) = NaN`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn exp<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    let (lo, hi) = if is_f32::<V>() {
        (c32::EXP_LO, c32::EXP_HI)
    } else {
        (c64::EXP_LO, c64::EXP_HI)
    };
    // Clamp (a NaN `x` passes through: `c.max(x)` returns `x` for NaN).
    exp_clamped::<V, true>(s, splat::<V>(s, hi).min(splat::<V>(s, lo).max(x)))
}

/// [`exp`] for `x <= 0` or NaN (one clamp less): bit for bit the same
/// result there, one vector operation fewer (the softmax kernels, whose
/// arguments are `z - max`).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn exp_nonpositive<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    let lo = if is_f32::<V>() {
        c32::EXP_LO
    } else {
        c64::EXP_LO
    };
    exp_clamped::<V, false>(s, splat::<V>(s, lo).max(x))
}

/// [`exp_nonpositive`] for terms of a sum (BCE with logits' loss through
/// [`logistic_term`]; the softmax denominators take the cheaper
/// [`exp_softmax_term`]) and for cross entropy's stored exponentials
/// `e^{z - m}`, which are both the terms of the denominator and, rescaled,
/// the gradient: there the work per element is most of the cost of the
/// loss+grad sweep (10% faster than [`exp_nonpositive`] on rows in L2,
/// README "Stored exponentials"), while a gradient element's error is
/// dominated by the `f32` rounding of `z - m` (up to 10 ulp against the
/// `f64` softmax for logits in `[-8, 8]`, with either `exp`). On
/// AVX-512 `f32` the table path without the low parts of `2^(j/16)` (one
/// permute and one add fewer), max error ≤ 1.5 ulp (exhaustive maximum
/// 0.989 against 0.762 with the low parts; the table's `hi` parts are
/// within 0.45 ulp of `2^(j/16)`); elsewhere the same as
/// [`exp_nonpositive`]. For `x <= 0` or NaN.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn exp_nonpositive_term<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    if V::TABLE16 && is_f32::<V>() {
        exp_table16::<V, false>(s, splat::<V>(s, c32::EXP_LO).max(x))
    } else {
        exp_nonpositive(s, x)
    }
}

/// [`exp_nonpositive`] for the terms of a softmax denominator `Σ_c e^{z_c -
/// m}` about its maximum `m` (cross entropy's sums whose exponentials are
/// not kept): on AVX-512 `f32` [`exp_table32_term`], two multiply-adds fewer
/// than [`exp_nonpositive_term`], on AVX2 `f32` [`exp_table8_term`], with an
/// error that grows with `|x|`; elsewhere the same as [`exp_nonpositive`].
/// For `x <= 0` or NaN.
///
/// `x` below [`c32::SOFTMAX_TERM_LO`] (`-87`; `-708` for `f64`), `-inf`
/// included, counts as that bound: the term is `e^-87` (about `2^-125.5`)
/// instead of a subnormal or zero. No result is then subnormal, which
/// matters on Intel cores, where an instruction whose result underflows
/// takes a microcode assist of about 150 cycles (a row with masked `-inf`
/// classes would pay one a vector); in a sum that holds the maximum's own
/// `e^0 = 1` such a term moves the result by less than `2^-125` each,
/// `2^-105` relative for 2^20 of them.
///
/// Max error ≤ 2 + |x|/20 ulp against `e^max(x, -87)` (exhaustive; 1.732 +
/// |x|/20 on AVX-512, 1.177 + |x|/20 on AVX2's 8-entry table form). A
/// sum of `n` such terms that contains `e^0 = 1` (the maximum's own term)
/// is then within `(2 + ln(n)/20)·2^-23` of its value, relative, before the
/// summation's own rounding: the term errors add up to at most `2^-23
/// Σ e_c (2 + |x_c|/20)`, and with `p_c = e_c / s` and `s >= 1`, `Σ p_c |x_c|
/// <= Σ p_c ln(1/p_c) <= ln n`. For `n = 2^20`, 2.7 units of `2^-23`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn exp_softmax_term<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    let lo = if is_f32::<V>() {
        c32::SOFTMAX_TERM_LO
    } else {
        c64::SOFTMAX_TERM_LO
    };
    let x = splat::<V>(s, lo).max(x);
    if V::TABLE16 && is_f32::<V>() {
        exp_table32_term::<V>(s, x)
    } else if V::TABLE8 && is_f32::<V>() {
        exp_table8_term::<V>(s, x)
    } else {
        exp_clamped::<V, false>(s, x)
    }
}

/// `e^x` for `x` in `[EXP_LO, EXP_HI]` (`[EXP_LO, 0]` unless `POSITIVE`)
/// or NaN.
///
/// Where [`Vector::POW2_SHIFT`] holds (AVX2, which has FMA), `n` and
/// `2^(n + 64)` come from one multiply-add, a subtraction and a shift
/// ([`Vector::round_pow2`]), and the polynomial's coefficients are the
/// ones of [`c32::EXP`] times `2^-64` ([`c32::EXP_2M64`]): every
/// multiply-add of Horner's rule then gives exactly `2^-64` times what it
/// gives unscaled (the products are not rounded, the results are normal),
/// and one product by `2^(n + 64)` rounds `p·2^n` once, as
/// [`Vector::ldexp`]'s two products do: the same bits, subnormal results
/// included, for seven vector operations fewer than `round` and `ldexp`
/// (an `exp` sweep on AVX2, Zen 4: 3.71 → 2.72 ns per 8 lanes, standalone).
/// `n` is the integer nearest the exact `x·log2 e` rather than its
/// rounding, as in [`exp_table16`]. Above [`c32::EXP_POW2_MAX`] (`n` up
/// to 128) `2^(n + 64)` would overflow: a vector with such a lane takes
/// `ldexp` (with the same `n` and `r`, so the same bits).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn exp_clamped<V: Vector, const POSITIVE: bool>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    if V::TABLE16 && is_f32::<V>() {
        return exp_table16::<V, true>(s, x);
    }
    let poly: &[f64] = if is_f32::<V>() { &c32::EXP } else { &c64::EXP };
    if V::POW2_SHIFT {
        let (n, pow) = V::round_pow2(s, x, splat(s, consts::<V>().log2e));
        let r = cody_waite(s, n, x);
        let top = if is_f32::<V>() {
            c32::EXP_POW2_MAX
        } else {
            c64::EXP_POW2_MAX
        };
        if POSITIVE && V::any(splat::<V>(s, top).lt(x)) {
            return horner(s, r, poly).ldexp(n);
        }
        let poly: &[f64] = if is_f32::<V>() {
            &c32::EXP_2M64
        } else {
            &c64::EXP_2M64
        };
        return horner(s, r, poly).mul(pow);
    }
    let (n, r) = reduce_exp(s, x);
    horner(s, r, poly).ldexp(n)
}

/// [`exp_clamped`] for `f32` where a 16-entry table lookup is one
/// instruction ([`Vector::TABLE16`], AVX-512): `e^x = 2^(k/16) · e^r` with
/// `k/16` the multiple of 1/16 nearest `x·log2(e)` and `|r| <= ln2/32`, so a
/// cubic suffices where [`c32::EXP`] needs degree 6 (three multiply-adds
/// fewer, for two `vpermps` and an add off the multiply ports).
///
/// Every step but the last two is exact or tiny: `k/16 = t - SHIFT16`
/// exactly; `x - (k/16)·LN2_HI` is exact in one fused multiply-add (both
/// products' bits lie in the 24 of a float above 2^-29, and `|x| >= ln2/32`
/// whenever `k != 0`); the table pair holds `2^(j/16)` to 2^-48; the cubic is
/// 0.03 ulp off; `hi·p + lo` rounds at 0.023 ulp. So the result is within
/// about 0.55 ulp before `vscalefps` (the same final step as the polynomial
/// path), which the exhaustive test checks. Without `LO` (the low parts
/// unused, [`exp_nonpositive_term`]) the table's rounding adds up to 0.45
/// ulp of `2^(j/16)`: the result is `hi·p + hi`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn exp_table16<V: Vector, const LO: bool>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    let shift = splat::<V>(s, c32::SHIFT16);
    let t = x.mul_add(splat(s, c32::LOG2E), shift);
    let kq = t.sub(shift);
    let r = kq.mul_add(splat(s, -c32::LN2_HI), x);
    let r = kq.mul_add(splat(s, -c32::LN2_LO), r);
    // p = e^r - 1 = r + r²·(C2 + C3·r).
    let q = r.mul_add(splat(s, c32::EXP_T16[1]), splat(s, c32::EXP_T16[0]));
    let p = r.mul(r).mul_add(q, r);
    let hi_t: [V::Elem; 16] = core::array::from_fn(|j| V::Elem::from_f64(c32::EXP2_16_HI[j]));
    let hi = V::lookup16(s, t, &hi_t);
    if !LO {
        return hi.mul_add(p, hi).ldexp(kq);
    }
    let lo_t: [V::Elem; 16] = core::array::from_fn(|j| V::Elem::from_f64(c32::EXP2_16_LO[j]));
    let lo = V::lookup16(s, t, &lo_t);
    // 2^(j/16)·(1 + p) = hi + (hi·p + lo), then 2^floor(k/16).
    hi.add(hi.mul_add(p, lo)).ldexp(kq)
}

/// [`exp_table16`]'s scheme with 32 entries (one `vpermt2ps`), for
/// `f32` `x` in `[EXP_LO, 0]` or NaN: `e^x = 2^(k/32) · e^r`, `k/32` the
/// multiple of 1/32 nearest `x·log2(e)`, `|r| <= ln2/64`, so a quadratic
/// suffices ([`c32::EXP_T32`], relative error 2^-24.15). The reduction is
/// one multiply-add with `ln 2` rounded to `f32` ([`c32::LN2_F32`]) instead
/// of the exact two-step `LN2_HI`/`LN2_LO` one: `r` is then off by
/// `(k/32)·1.9e-9`, a relative error of the result of `|x|·2.75e-9`, at
/// most `|x|/20` ulp, which the terms near the maximum (the ones that make
/// up a softmax denominator) hardly see. The table's rounding (≤ 0.5 ulp of
/// `2^(j/32)`), the quadratic and the last rounding make up the rest.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn exp_table32_term<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    let (t, kq, r) = reduce_table_term::<V>(s, x, c32::SHIFT32);
    let p = r
        .mul_add(splat(s, c32::EXP_T32[1]), splat(s, c32::EXP_T32[0]))
        .mul(r);
    let hi_t: [V::Elem; 32] = core::array::from_fn(|j| V::Elem::from_f64(c32::EXP2_32[j]));
    let hi = V::lookup32(s, t, &hi_t);
    // 2^(j/32)·(1 + p), then 2^floor(k/32).
    hi.mul_add(p, hi).ldexp(kq)
}

/// The reduction of [`exp_table32_term`] and [`exp_table8_term`]: with
/// `shift = 1.5·2^23/N`, `t = x·log2(e) + shift` holds `k` in its low
/// mantissa bits (`k/N` the multiple of `1/N` nearest `x·log2(e)`), and
/// the result is `(t, k/N, r)` with `r = x - (k/N)·ln2` in one multiply-add
/// with `ln 2` rounded to `f32`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn reduce_table_term<V: Vector>(s: V::Simd, x: V, shift: f64) -> (V, V, V)
where
    V::Elem: Float,
{
    let shift = splat::<V>(s, shift);
    let t = x.mul_add(splat(s, c32::LOG2E), shift);
    let kq = t.sub(shift);
    (t, kq, kq.mul_add(splat(s, -c32::LN2_F32), x))
}

/// [`exp_table32_term`]'s scheme with 8 entries, for backends whose widest
/// table lookup is 8 lanes ([`Vector::TABLE8`], AVX2 `f32`: `vpermps`), for
/// `x` in `[SOFTMAX_TERM_LO, 0]` or NaN: `e^x = 2^(k/8) · e^r`, `|r| <=
/// ln2/16`, a cubic for `e^r` ([`c32::EXP_T8`], relative error 2^-24.96),
/// and [`Vector::lookup8_scaled`] for `2^(k/8)` (the entry and the power of
/// two in one integer add: no `ldexp`). Two multiply-adds, a shift and a
/// multiply fewer than [`exp_clamped`]'s polynomial path, for a permute and
/// two integer operations. The one-step reduction with [`c32::LN2_F32`]
/// is off by `|x|·2.75e-9` relative, as in [`exp_table32_term`]; the
/// entries (every fourth of [`c32::EXP2_32`]) by up to 0.5 ulp. The result
/// is normal for every `x >= -87` (at least `2^-125.5`), where the integer
/// add is the exact product; a NaN `x` gives NaN through `r`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn exp_table8_term<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    let (t, _, r) = reduce_table_term::<V>(s, x, c32::SHIFT8);
    let q = r.mul_add(splat(s, c32::EXP_T8[1]), splat(s, c32::EXP_T8[0]));
    let p = r.mul(r).mul_add(q, r);
    let table: [V::Elem; 8] = core::array::from_fn(|j| V::Elem::from_f64(c32::EXP2_32[4 * j]));
    // 2^(k/8), then 2^(k/8)·(1 + p).
    let h = V::lookup8_scaled(s, t, &table);
    h.mul_add(p, h)
}

/// `e^t - 1` for `t` in `[0, TANH_2X_MAX]` (what `tanh` needs): `2^n·(e^r - 1)
/// + (2^n - 1)`, accurate relative to the result for small `t` too.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn expm1_nonneg<V: Vector>(s: V::Simd, t: V) -> V
where
    V::Elem: Float,
{
    let q: &[f64] = if is_f32::<V>() {
        &c32::EXPM1_Q
    } else {
        &c64::EXPM1_Q
    };
    let (n, r) = reduce_exp(s, t);
    let em1 = r.mul(r).mul_add(horner(s, r, q), r);
    let one = splat::<V>(s, 1.0);
    let two_n = one.ldexp(n);
    two_n.mul_add(em1, two_n.sub(one))
}

// ----------------------------------------------------------------- ln, log1p

/// For `f` in `[√½ - 1, √2 - 1]` (slightly wider is fine): the small `tail`
/// with `ln(1 + f) = f + tail`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn ln1p_tail<V: Vector>(s: V::Simd, f: V) -> V {
    if is_f32::<V>() {
        f.mul(f).mul(horner(s, f, &c32::LN_T))
    } else {
        // fdlibm: ln(1+f) = f - hfsq + s·(hfsq + R(s²)), s = f/(2+f).
        let sv = f.div(splat::<V>(s, 2.0).add(f));
        let z = sv.mul(sv);
        let r = z.mul(horner(s, z, &c64::LN_R));
        let hfsq = splat::<V>(s, 0.5).mul(f).mul(f);
        sv.mul_add(hfsq.add(r), hfsq.neg())
    }
}

/// `(k, m)` with `x = m·2^k`, `m` in `[√½, √2]`, for positive finite `x`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn reduce_ln<V: Vector>(s: V::Simd, x: V) -> (V, V) {
    let (e, m) = x.frexp();
    let big = splat::<V>(s, consts::<V>().sqrt2).lt(m);
    let m = V::select(big, m.mul(splat(s, 0.5)), m);
    let k = V::select(big, e.add(splat(s, 1.0)), e);
    (k, m)
}

/// `k·ln2 + f + small`, summed small terms first.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn ln_combine<V: Vector>(s: V::Simd, k: V, f: V, small: V) -> V {
    let c = consts::<V>();
    let lo = k.mul_add(splat(s, c.ln2_lo), small);
    k.mul_add(splat(s, c.ln2_hi), f.add(lo))
}

/// Natural logarithm.
///
/// Max error ≤ 1 ulp over all inputs for `f32` (exhaustive test, every
/// backend) and within 1 ulp of `std` for `f64` (sampled). Subnormal
/// inputs are exact;
/// `ln(±0) = -inf`, `ln(x < 0) = NaN`, `ln(+inf) = +inf`, `ln(NaN) = NaN`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn ln<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    let (k, m) = reduce_ln(s, x);
    let f = m.sub(splat(s, 1.0));
    let y = ln_combine(s, k, f, ln1p_tail(s, f));
    let zero = splat::<V>(s, 0.0);
    let inf = splat::<V>(s, f64::INFINITY);
    let y = V::select(x.eq(inf), inf, y);
    let y = V::select(
        x.le(zero),
        V::select(x.eq(zero), inf.neg(), splat(s, f64::NAN)),
        y,
    );
    V::select(x.is_nan(), x, y)
}

/// `max(ln u, -100)` with `u = p` or `u = 1 - p` in each lane as `which`
/// says, for `p` in `[0, 1]`, on backends with a one-instruction
/// 16-entry lookup ([`Vector::TABLE16`], AVX-512) in `f32`: `u = m·2^k`
/// with `m` in `[1, 2)`, and with `inv = LN_INV16[j]` for the interval `j`
/// of `m`, `ln u = k·ln2 - ln(inv) + ln(1 + r)`, `r = m·inv - 1`, `|r| <=
/// 1/16`: `ln(1 + r) = r + r²·Q(r)` with a cubic `Q` ([`c32::LN_R16`]),
/// where [`ln1p_tail`] on `|f| <= 0.42` needs degree 8.
///
/// `r` is rounded once: `m·inv` is exact inside the multiply-add; for `1 -
/// p` it comes from `p` itself, `(1 - p)·2^-k·inv - 1 = (2^-k·inv - 1) -
/// p·2^-k·inv`, where `2^-k·inv - 1` and `p·2^-k` are exact (`2^-k <=
/// 2^24`), so `1 - p` is never rounded (its rounded value only picks `k`
/// and `j`). `k·LN2_HI + HI16[j]` is exact, the low parts are added to the
/// small terms first, and next to `u = 1` the result is `r + r²·Q(r)` with
/// `r` exact. `1 - p = 0` (`p = 1`) needs no select: `u` is raised to the
/// smallest subnormal and `2^-k` bounded by 2^24, so the sum falls below
/// -100 and is clamped to it (one compare and select fewer a vector than
/// testing `p = 1`). The exhaustive test over `[0, 1]` asserts ≤ 1 ulp
/// (module table). Values outside `[0, 1]` are unspecified; NaN stays NaN.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn ln_unit_table16<V: Vector>(s: V::Simd, p: V, which: Unit<V::Mask>) -> V
where
    V::Elem: Float,
{
    let one = splat::<V>(s, 1.0);
    let tiny = splat::<V>(s, smallest_subnormal::<V>());
    let u = tiny.max(which.pick(p, one.sub(p)));
    let (k, m) = u.frexp();
    // j = floor(16·(m - 1)) in the low bits of `t` (at m = 1 + j/16 for odd
    // j the tie goes to j - 1, whose interval's edge that is).
    let t = m
        .sub(splat(s, 1.03125))
        .mul_add(splat(s, 16.0), splat(s, c32::SHIFT23));
    let table =
        |c: &[f64; 16]| -> [V::Elem; 16] { core::array::from_fn(|j| V::Elem::from_f64(c[j])) };
    let inv = V::lookup16(s, t, &table(&c32::LN_INV16));
    // 2^-k for `1 - p`, bounded for `p = 1` (k = -149; see the doc: `r` is
    // then exactly -1, as `LN_INV16[0] = 1`, and the sum -105.55).
    let nk = k.neg().min(splat(s, 24.0));
    let a = which.pick(m, p.neg().ldexp(nk));
    let b = which.pick(one.neg(), inv.ldexp(nk).sub(one));
    let r = a.mul_add(inv, b);
    let q = horner(s, r, &c32::LN_R16);
    let hi = k.mul_add(
        splat(s, c32::LN2_HI),
        V::lookup16(s, t, &table(&c32::LN_HI16)),
    );
    let lo = k.mul_add(
        splat(s, c32::LN2_LO),
        V::lookup16(s, t, &table(&c32::LN_LO16)),
    );
    splat::<V>(s, -100.0).max(hi.add(r.mul(r).mul_add(q, lo).add(r)))
}

/// Which logarithm each lane of the BCE logarithms takes: `ln p` in every
/// lane, `ln(1 - p)` in every lane, or `ln p` in the lanes of a mask and
/// `ln(1 - p)` in the others. The first two are known at compile time, so
/// their unused branches are never computed (a select on a constant mask
/// is not folded away on SSE2: BCE with soft labels measured 18% slower).
#[derive(Clone, Copy)]
enum Unit<M> {
    P,
    OneMinusP,
    Lanes(M),
}

impl<M: Copy> Unit<M> {
    /// `of_p` where the lane takes `ln p`, `of_q` where it takes `ln(1 - p)`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn pick<V: Vector<Mask = M>>(self, of_p: V, of_q: V) -> V {
        match self {
            Unit::P => of_p,
            Unit::OneMinusP => of_q,
            Unit::Lanes(m) => V::select(m, of_p, of_q),
        }
    }
}

/// `max(ln p, -100)` for `p` in `[0, 1]` (BCE on probabilities): the
/// reduction and polynomial of [`ln`] without its special-value selects.
/// `p` is first raised to the smallest subnormal, whose logarithm is below
/// -100, so `p = 0` needs no case of its own. Same error as [`ln`] for `p`
/// in `(0, 1]`; other inputs give unspecified values (the caller checks the
/// range). That includes NaN: the clamps keep it, but the reduction's
/// `frexp` turns it into a number on every backend but AVX-512, whose
/// `vgetexpps` keeps it (the BCE kernel's range check catches a NaN `p`
/// through `p (1 - p)`). On
/// AVX-512 `f32`: [`ln_unit_table16`] (≤ 1 ulp, module table).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn ln_unit_clamped<V: Vector>(s: V::Simd, p: V) -> V
where
    V::Elem: Float,
{
    ln_unit_either(s, p, Unit::P)
}

/// `max(ln(1 - p), -100)` for `p` in `[0, 1]` (BCE on probabilities),
/// without the division of [`log1p`]: with `u = 1 - p = m·2^k`, the reduced
/// argument `f = m - 1` is formed exactly from `p` itself: `f = -p` for
/// `k = 0` (`p <= 1 - √½`), `f = 1 - 2p` for `k = -1` (exact: `2p` is in
/// `[0.5, 2]`), and `f = m - 1` below, where `p >= 0.5` makes `1 - p`
/// exact. Same error as [`log1p`] for `p` in `[0, 1)`; `p = 1` gives -100;
/// other inputs give unspecified values (the caller checks the range). On
/// AVX-512 `f32`: [`ln_unit_table16`] (≤ 1 ulp, module table).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn ln_one_minus_unit_clamped<V: Vector>(s: V::Simd, p: V) -> V
where
    V::Elem: Float,
{
    ln_unit_either(s, p, Unit::OneMinusP)
}

/// [`ln_unit_clamped`] in the lanes of `of_p` and
/// [`ln_one_minus_unit_clamped`] in the others, bitwise, for one reduction
/// and one polynomial instead of two: the logarithm BCE on probabilities
/// needs when every target is 0 or 1 (`-ln p` or `-ln(1 - p)`). Lanes of
/// `of_p` take the reduced argument `f = m - 1` of `p`; the others the one
/// of `1 - p` with its exact forms for `k = 0` and `k = -1`. The other two
/// are the same body ([`ln_unit_either`]) with every lane on one side; on
/// AVX-512 `f32` all three are [`ln_unit_table16`].
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn ln_unit_or_one_minus_clamped<V: Vector>(s: V::Simd, p: V, of_p: V::Mask) -> V
where
    V::Elem: Float,
{
    ln_unit_either(s, p, Unit::Lanes(of_p))
}

/// The body of the three BCE logarithms, for the lanes `which` says.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn ln_unit_either<V: Vector>(s: V::Simd, p: V, which: Unit<V::Mask>) -> V
where
    V::Elem: Float,
{
    if V::TABLE16 && is_f32::<V>() {
        return ln_unit_table16(s, p, which);
    }
    let one = splat::<V>(s, 1.0);
    let tiny = splat::<V>(s, smallest_subnormal::<V>());
    let (k, m) = reduce_ln(s, tiny.max(which.pick(p, one.sub(p))));
    let f = which.pick(
        m.sub(one),
        V::select(
            k.eq(splat(s, 0.0)),
            p.neg(),
            V::select(
                k.eq(splat(s, -1.0)),
                p.mul_add(splat(s, -2.0), one),
                m.sub(one),
            ),
        ),
    );
    splat::<V>(s, -100.0).max(ln_combine(s, k, f, ln1p_tail(s, f)))
}

/// The smallest positive subnormal of the element type (its logarithm,
/// -103.3 for `f32` and -744.4 for `f64`, is below -100).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn smallest_subnormal<V: Vector>() -> f64 {
    if is_f32::<V>() {
        f32::from_bits(1) as f64
    } else {
        f64::from_bits(1)
    }
}

/// `ln(1 + x)`.
///
/// Max error ≤ 1 ulp over all inputs for `f32` (exhaustive test, every
/// backend) and within 1 ulp of `std` for `f64` (sampled). `log1p(±0) = ±0`, tiny
/// inputs are returned as is, `log1p(-1) = -inf`, `log1p(x < -1) = NaN`,
/// `log1p(+inf) = +inf`, `log1p(NaN) = NaN`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn log1p<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    let one = splat::<V>(s, 1.0);
    let zero = splat::<V>(s, 0.0);
    let u = one.add(x);
    let (k, m) = reduce_ln(s, u);
    // Where k = 0 the exact x is the reduced argument; elsewhere add back
    // the rounding error of 1 + x (Fast2Sum: exact, the larger operand first).
    let near = k.eq(zero);
    let f = V::select(near, x, m.sub(one));
    let err = V::select(one.le(x), one.sub(u.sub(x)), x.sub(u.sub(one)));
    let corr = V::select(near, zero, err.div(u));
    let y = ln_combine(s, k, f, ln1p_tail(s, f).add(corr));
    let inf = splat::<V>(s, f64::INFINITY);
    let y = V::select(x.eq(inf), inf, y);
    let y = V::select(
        x.le(one.neg()),
        V::select(x.eq(one.neg()), inf.neg(), splat(s, f64::NAN)),
        y,
    );
    // ±0 keeps its sign; NaN stays NaN.
    V::select(V::mask_or(x.eq(zero), x.is_nan()), x, y)
}

/// The logistic family at once, for the BCE-with-logits kernel.
#[derive(Clone, Copy)]
pub(crate) struct Logistic<V> {
    /// `e = e^{-|x|}`, in `[0, 1]`.
    pub e: V,
    /// `ln(1 + e)`: `softplus(x) = max(x, 0) + log1p_e` and
    /// `softplus(-x) = max(-x, 0) + log1p_e`.
    pub log1p_e: V,
    /// `1 / (1 + e)`: `sigmoid(|x|) = inv` and `sigmoid(-|x|) = e·inv`.
    pub inv: V,
}

/// `e^{-|x|}`, `ln(1 + e^{-|x|})` and `1/(1 + e^{-|x|})`: one `exp`, one
/// reciprocal and a logarithm that knows its argument `1 + e` is in
/// `[1, 2]`. The reciprocal is of the exact `1 + e`, not of its rounding:
/// with FMA one Newton–Raphson step from [`Vector::recip_approx`] whose
/// residual `(1 - r0) - e·r0` is formed exactly (no division, no
/// correction term); without FMA a division corrected by the rounding
/// error of `1 + e` (exact by Fast2Sum). For `f32` the logarithm is one
/// polynomial in `e` on `[0, 1]` (degree 8 with FMA, 9 without); for `f64`
/// the reduction of [`log1p`] with the same correction.
///
/// Max error, over all `f32` inputs (exhaustive test, every backend), of
/// `softplus(x) = max(x, 0) + log1p_e` ≤ 2.5 ulp (2.18 with FMA, 2.22
/// without) and of `sigmoid(x)` built as above ≤ 2.5 ulp (1.96 with FMA,
/// 2.46 without). NaN gives NaN in every part; `x = ±inf` gives `e = 0`,
/// `log1p_e = 0`, `inv = 1`.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn logistic<V: Vector>(s: V::Simd, x: V) -> Logistic<V>
where
    V::Elem: Float,
{
    logistic_with::<V, false>(s, x)
}

/// [`logistic`] with `e` from [`exp_nonpositive_term`], for terms of a sum
/// (the BCE-with-logits loss without outputs): one permute and one add
/// fewer on AVX-512 `f32`, for softplus within 3 ulp instead of 2.5
/// (exhaustive maximum 2.602 against 2.123). Its `inv` is not used there
/// (nor computed, once inlined).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn logistic_term<V: Vector>(s: V::Simd, x: V) -> Logistic<V>
where
    V::Elem: Float,
{
    logistic_with::<V, true>(s, x)
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
fn logistic_with<V: Vector, const TERM: bool>(s: V::Simd, x: V) -> Logistic<V>
where
    V::Elem: Float,
{
    let c = consts::<V>();
    let one = splat::<V>(s, 1.0);
    let zero = splat::<V>(s, 0.0);
    let e = if TERM {
        exp_nonpositive_term(s, x.abs().neg())
    } else {
        exp_nonpositive(s, x.abs().neg())
    };
    let u = one.add(e);
    // The reciprocal of the exact 1 + e, not of the rounded u.
    let inv = if V::FUSED {
        // One Newton–Raphson step from a seed r0 ≈ 1/u (relative error
        // below 2^-14 against 1/(1 + e) too), with the residual of 1 + e
        // itself: res = 1 - (1 + e)·r0 = (1 - r0) - e·r0, where 1 - r0 is
        // exact (Sterbenz: r0 is clamped up to 0.5, and 1/(1 + e) >= 0.5 so
        // the clamp only helps) and the multiply-add rounds once. Then
        // r0 + r0·res has relative error (2^-14)² plus one rounding.
        let r0 = splat::<V>(s, 0.5).max(u.recip_approx());
        let res = e.neg().mul_add(r0, one.sub(r0));
        r0.mul_add(res, r0)
    } else {
        // Without a fused multiply-add e·r0 would round: divide, and remove
        // the rounding error err = (1 + e) - u (exact by Fast2Sum, 1 >= e)
        // as 1/(1 + e) = (1/u)·(1 - t), t = err / (1 + e).
        let inv_u = u.recip();
        let t = e.sub(u.sub(one)).mul(inv_u);
        t.neg().mul_add(inv_u, inv_u)
    };
    let log1p_e = if is_f32::<V>() {
        // ln(1 + e) = e + e²·(P(e) - 1)/e on [0, 1] directly: no reduction,
        // no division (the division above only feeds the gradient); the
        // leading `e` is added last, exactly.
        let p: &[f64] = if V::FUSED {
            &c32::LOG1P_UNIT_FMA
        } else {
            &c32::LOG1P_UNIT
        };
        e.mul(e).mul_add(horner(s, e, &p[1..]), e)
    } else {
        // u in [1, 2]: k = 0 with f = e, or k = 1 with f = u/2 - 1 (exact) and
        // the rounding error of 1 + e added back as t.
        let big = splat::<V>(s, c.sqrt2).lt(u);
        let f = V::select(big, u.mul_add(splat(s, 0.5), one.neg()), e);
        // t = err / (1 + e), err = (1 + e) - u exactly (Fast2Sum).
        let t = e.sub(u.sub(one)).mul(inv);
        let corr = V::select(big, t, zero);
        let small = ln1p_tail(s, f).add(V::select(big, splat(s, c.ln2_lo), zero).add(corr));
        V::select(big, splat(s, c.ln2_hi), zero).add(f.add(small))
    };
    Logistic { e, log1p_e, inv }
}

// --------------------------------------------------------------------- tanh

/// Hyperbolic tangent.
///
/// Max error ≤ 2 ulp over all inputs for `f32` (exhaustive test, every
/// backend) and ≤ 2 ulp for `f64` (sampled), with full relative accuracy
/// for small `|x|`. `tanh(±0) = ±0`, `tanh(±inf) = ±1`, `tanh(NaN) = NaN`.
///
/// `|x| < 0.625`: the odd polynomial `x + x³·P(x²)`; above, `E / (E + 2)`
/// with `E = expm1(2|x|)`, computed only when some lane needs it (softcap
/// arguments `x / cap` are mostly small).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
pub(crate) fn tanh<V: Vector>(s: V::Simd, x: V) -> V
where
    V::Elem: Float,
{
    let (tiny, cap, poly): (f64, f64, &[f64]) = if is_f32::<V>() {
        (c32::TANH_TINY, c32::TANH_2X_MAX, &c32::TANH_P)
    } else {
        (c64::TANH_TINY, c64::TANH_2X_MAX, &c64::TANH_P)
    };
    let a = x.abs();
    let x2 = x.mul(x);
    let y = x.mul(x2).mul_add(horner(s, x2, poly), x);
    let big = splat::<V>(s, 0.625).le(a);
    let y = if V::any(big) {
        // 2|x| capped: tanh rounds to ±1 beyond the cap.
        let t = splat::<V>(s, cap).min(a.add(a));
        let big_e = expm1_nonneg(s, t);
        let yb = big_e.div(big_e.add(splat(s, 2.0)));
        let yb = V::select(x.lt(splat(s, 0.0)), yb.neg(), yb);
        V::select(big, yb, y)
    } else {
        y
    };
    // ±0 and subnormals: tanh(x) = x (the polynomial would lose the sign of 0).
    V::select(a.lt(splat(s, tiny)), x, y)
}

#[cfg(test)]
mod tests {
    //! Accuracy of the vector math against `f64` `std`, per backend.
    //!
    //! - `exhaustive_f32_all_functions` (`#[ignore]`; run with
    //!   `cargo test --release --lib -- --ignored exhaustive`): all 2^32 `f32`
    //!   bit patterns, every function, every available backend, in parallel on
    //!   rayon; prints `ULP <function> <backend> <max_ulp>` per pair.
    //! - `strided_f32_sweep`: every 997th bit pattern plus the special and
    //!   boundary values, same checks (quick suite).
    //! - `sampled_f64`: random bit patterns and ranges for the `f64` versions.

    use super::*;
    use crate::simd::{dispatch, Kernel, Simd};
    use crate::Backend;
    use rayon::prelude::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Func {
        Exp,
        ExpTerm,
        ExpSoftmaxTerm,
        Ln,
        Log1p,
        Tanh,
        Softplus,
        SoftplusTerm,
        Sigmoid,
        LnUnit,
        LnOneMinusUnit,
    }

    const FUNCS: [Func; 11] = [
        Func::Exp,
        Func::ExpTerm,
        Func::ExpSoftmaxTerm,
        Func::Ln,
        Func::Log1p,
        Func::Tanh,
        Func::Softplus,
        Func::SoftplusTerm,
        Func::Sigmoid,
        Func::LnUnit,
        Func::LnOneMinusUnit,
    ];

    impl Func {
        fn name(self) -> &'static str {
            match self {
                Func::Exp => "exp",
                Func::ExpTerm => "exp_nonpositive_term",
                Func::ExpSoftmaxTerm => "exp_softmax_term",
                Func::Ln => "ln",
                Func::Log1p => "log1p",
                Func::Tanh => "tanh",
                Func::Softplus => "softplus",
                Func::SoftplusTerm => "softplus_term",
                Func::Sigmoid => "sigmoid",
                Func::LnUnit => "ln_unit_clamped",
                Func::LnOneMinusUnit => "ln_one_minus_unit_clamped",
            }
        }

        /// Whether `x` is an input the function is defined for (the two
        /// BCE logarithms take `p` in `[0, 1]` only).
        fn in_domain(self, x: f64) -> bool {
            match self {
                Func::LnUnit | Func::LnOneMinusUnit => (0.0..=1.0).contains(&x),
                _ => true,
            }
        }

        /// The documented bound, in ulp (module table): beyond
        /// [`Func::slope`]`·|x|` where that is not 0.
        fn bound(self) -> f64 {
            match self {
                Func::ExpSoftmaxTerm => 2.0,
                Func::Ln | Func::Log1p | Func::LnUnit | Func::LnOneMinusUnit => 1.0,
                Func::Exp | Func::ExpTerm => 1.5,
                Func::Tanh => 2.0,
                Func::Softplus => 2.5,
                Func::SoftplusTerm => 3.0,
                Func::Sigmoid => 2.5,
            }
        }

        /// The part of the bound that grows with `|x|`, in ulp per unit of
        /// `|x|`: what is measured against [`Func::bound`] is the error less
        /// `slope·|x|`.
        fn slope(self) -> f64 {
            match self {
                Func::ExpSoftmaxTerm => 1.0 / 20.0,
                _ => 0.0,
            }
        }

        /// The `f64` `std` value. Far outside the `f32` range of a result the
        /// exact limit is returned instead of calling `std` (whose overflow
        /// and underflow paths are slow): it rounds to the same `f32`.
        fn reference_f32(self, x: f64) -> f64 {
            match self {
                Func::ExpSoftmaxTerm if !x.is_nan() => x.clamp(c32::SOFTMAX_TERM_LO, 0.0).exp(),
                Func::Exp if x > 100.0 => f64::INFINITY,
                Func::Exp | Func::ExpTerm | Func::ExpSoftmaxTerm if x < -110.0 => 0.0,
                Func::Softplus | Func::SoftplusTerm if x > 110.0 => x,
                Func::Softplus | Func::SoftplusTerm | Func::Sigmoid if x < -110.0 => 0.0,
                Func::Sigmoid if x > 110.0 => 1.0,
                _ => self.reference(x),
            }
        }

        /// The `f64` `std` value.
        fn reference(self, x: f64) -> f64 {
            match self {
                Func::Exp => x.exp(),
                // Defined for x <= 0: the sweep feeds it min(x, 0).
                Func::ExpTerm | Func::ExpSoftmaxTerm if x.is_nan() => x,
                Func::ExpTerm => x.min(0.0).exp(),
                // What the `f64` version computes (`reference_f32` has the
                // `f32` bound).
                Func::ExpSoftmaxTerm => x.clamp(c64::SOFTMAX_TERM_LO, 0.0).exp(),
                Func::Ln => x.ln(),
                Func::LnUnit => x.ln().max(-100.0),
                // `+ 0.0`: ln(1 - 0) is +0, where `ln_1p(-0)` is -0.
                Func::LnOneMinusUnit => ((-x).ln_1p() + 0.0).max(-100.0),
                Func::Log1p => x.ln_1p(),
                Func::Tanh => x.tanh(),
                Func::Softplus | Func::SoftplusTerm => {
                    if x.is_nan() {
                        x
                    } else {
                        x.max(0.0) + (-x.abs()).exp().ln_1p()
                    }
                }
                Func::Sigmoid => {
                    if x >= 0.0 {
                        1.0 / (1.0 + (-x).exp())
                    } else {
                        let e = x.exp();
                        e / (1.0 + e)
                    }
                }
            }
        }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn apply<V: Vector>(func: Func, s: V::Simd, x: V) -> V
    where
        V::Elem: Float,
    {
        match func {
            Func::Exp => exp(s, x),
            Func::ExpTerm => exp_nonpositive_term(s, splat::<V>(s, 0.0).min(x)),
            Func::ExpSoftmaxTerm => exp_softmax_term(s, splat::<V>(s, 0.0).min(x)),
            Func::Ln => ln(s, x),
            Func::Log1p => log1p(s, x),
            Func::Tanh => tanh(s, x),
            Func::Softplus => {
                let l = logistic(s, x);
                x.max(splat(s, 0.0)).add(l.log1p_e)
            }
            Func::SoftplusTerm => {
                let l = logistic_term(s, x);
                x.max(splat(s, 0.0)).add(l.log1p_e)
            }
            Func::Sigmoid => {
                // What the BCE-with-logits kernel uses.
                let l = logistic(s, x);
                V::select(x.lt(splat(s, 0.0)), l.e.mul(l.inv), l.inv)
            }
            Func::LnUnit => ln_unit_clamped(s, x),
            Func::LnOneMinusUnit => ln_one_minus_unit_clamped(s, x),
        }
    }

    /// `out[i] = func(xs[i])` on the backend it is dispatched to.
    struct Eval<'a, T> {
        func: Func,
        xs: &'a [T],
        out: &'a mut [T],
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn sweep<S: Simd, T: Float>(s: S, func: Func, xs: &[T], out: &mut [T]) {
        let lanes = <T::Vec<S> as Vector>::LANES;
        for (x, o) in xs.chunks(lanes).zip(out.chunks_mut(lanes)) {
            let v = <T::Vec<S> as Vector>::load_partial(s, x, T::ZERO);
            apply(func, s, v).store_partial(o);
        }
    }

    impl<T: Float> Kernel for Eval<'_, T> {
        type Output = ();
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn run<S: Simd>(self, s: S) {
            // One instantiation per function, so each loop is straight code.
            match self.func {
                Func::Exp => sweep(s, Func::Exp, self.xs, self.out),
                Func::ExpTerm => sweep(s, Func::ExpTerm, self.xs, self.out),
                Func::ExpSoftmaxTerm => sweep(s, Func::ExpSoftmaxTerm, self.xs, self.out),
                Func::Ln => sweep(s, Func::Ln, self.xs, self.out),
                Func::Log1p => sweep(s, Func::Log1p, self.xs, self.out),
                Func::Tanh => sweep(s, Func::Tanh, self.xs, self.out),
                Func::Softplus => sweep(s, Func::Softplus, self.xs, self.out),
                Func::SoftplusTerm => sweep(s, Func::SoftplusTerm, self.xs, self.out),
                Func::Sigmoid => sweep(s, Func::Sigmoid, self.xs, self.out),
                Func::LnUnit => sweep(s, Func::LnUnit, self.xs, self.out),
                Func::LnOneMinusUnit => sweep(s, Func::LnOneMinusUnit, self.xs, self.out),
            }
        }
    }

    /// Error of `got` in units of the last place of the `f32` result
    /// (`want` is the `f64` value). NaN must match NaN, an exact zero must
    /// match with its sign, an infinity exactly; a finite `want` beyond
    /// `f32::MAX` has the ulp of `MAX`, and an infinite `got` counts as
    /// `±2^128` against a finite `want`.
    #[inline]
    fn ulp_f32(got: f32, want: f64) -> f64 {
        let w32 = want as f32;
        if got.to_bits() == w32.to_bits()
            && (want != 0.0 || got.is_sign_positive() == want.is_sign_positive())
        {
            // Correctly rounded (the common case, decided without a division):
            // the error is the rounding of `want` itself, at most half an ulp.
            return if w32.is_finite() {
                (got as f64 - want).abs() * inv_ulp(w32)
            } else {
                0.0
            };
        }
        ulp_f32_slow(got, want, w32)
    }

    #[cold]
    fn ulp_f32_slow(got: f32, want: f64, w32: f32) -> f64 {
        if want.is_nan() || got.is_nan() {
            return if want.is_nan() && got.is_nan() {
                0.0
            } else {
                f64::INFINITY
            };
        }
        if want == 0.0 || want.is_infinite() {
            return f64::INFINITY; // exact results must be exact, with their sign
        }
        if w32.is_infinite() && got == w32 {
            return 0.0; // a finite `want` that rounds to infinity
        }
        let g = if got.is_infinite() {
            2f64.powi(128).copysign(got as f64)
        } else {
            got as f64
        };
        (g - want).abs() * inv_ulp(w32)
    }

    /// `1 / ulp` at the `f32` value `w` (the ulp of its binade; `MAX`'s
    /// above it, the subnormal spacing below `MIN_POSITIVE`), from its bits.
    #[inline]
    fn inv_ulp(w: f32) -> f64 {
        let biased = ((w.to_bits() >> 23) & 0xff).clamp(1, 254) as u64;
        // 2^(23 + 127 - biased) as an f64 bit pattern.
        f64::from_bits((1023 + 23 + 127 - biased) << 52)
    }

    /// Error of `got` in ulp of the `f64` result (`want` from `std`).
    fn ulp_f64(got: f64, want: f64) -> f64 {
        if want.is_nan() || got.is_nan() {
            return if want.is_nan() && got.is_nan() {
                0.0
            } else {
                f64::INFINITY
            };
        }
        if want == 0.0 || want.is_infinite() || got.is_infinite() {
            return if want.to_bits() == got.to_bits() {
                0.0
            } else {
                f64::INFINITY
            };
        }
        // The gap above |want| (below, for MAX): the ulp of its binade.
        let a = want.abs();
        let ulp = if a == f64::MAX {
            a - f64::from_bits(a.to_bits() - 1)
        } else {
            f64::from_bits(a.to_bits() + 1) - a
        };
        (got - want).abs() / ulp
    }

    /// Worst error seen: `(ulp, input)`.
    type Worst<T> = (f64, T);

    fn worse<T: Copy>(a: Worst<T>, b: Worst<T>) -> Worst<T> {
        if b.0 > a.0 {
            b
        } else {
            a
        }
    }

    /// Checks `xs` (f32) for every function and backend; returns the worst
    /// error per `[function][backend]`.
    fn check_f32(xs: &[f32], backends: &[Backend]) -> Vec<Vec<Worst<f32>>> {
        let mut out = vec![0.0f32; xs.len()];
        let mut want = vec![0.0f64; xs.len()];
        FUNCS
            .iter()
            .map(|&func| {
                for (w, &x) in want.iter_mut().zip(xs) {
                    *w = func.reference_f32(x as f64);
                }
                backends
                    .iter()
                    .map(|&b| {
                        dispatch(
                            b,
                            Eval {
                                func,
                                xs,
                                out: &mut out,
                            },
                        );
                        let mut worst = (0.0, 0.0f32);
                        for ((&g, &w), &x) in out.iter().zip(&want).zip(xs) {
                            if !func.in_domain(x as f64) {
                                continue;
                            }
                            let e = ulp_f32(g, w) - func.slope() * (x as f64).abs();
                            if e > worst.0 {
                                worst = (e, x);
                            }
                        }
                        worst
                    })
                    .collect()
            })
            .collect()
    }

    /// Runs `check_f32` over blocks of bit patterns in parallel on
    /// `backends`, prints the `ULP` lines and asserts the documented bounds.
    fn sweep_f32(
        backends: &[Backend],
        blocks: u64,
        block_bits: impl Fn(u64, &mut Vec<f32>) + Sync,
    ) {
        let backends = backends.to_vec();
        let worst = (0..blocks)
            .into_par_iter()
            .map_init(Vec::new, |xs, blk| {
                xs.clear();
                block_bits(blk, xs);
                check_f32(xs, &backends)
            })
            .reduce_with(|a, b| {
                a.iter()
                    .zip(&b)
                    .map(|(fa, fb)| fa.iter().zip(fb).map(|(&x, &y)| worse(x, y)).collect())
                    .collect()
            })
            .expect("at least one block");
        let mut failures = Vec::new();
        for (fi, func) in FUNCS.iter().enumerate() {
            for (bi, b) in backends.iter().enumerate() {
                let (ulp, x) = worst[fi][bi];
                println!("ULP {} {:?} {:.3}", func.name(), b, ulp);
                if ulp > func.bound() {
                    failures.push(format!(
                        "{} on {b:?}: {ulp:.3} ulp > {} at x = {x:e} ({:#010x})",
                        func.name(),
                        func.bound(),
                        x.to_bits()
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    /// Inputs every sweep includes: signed zeros, infinities, NaN, the
    /// subnormal edges and the thresholds of each function.
    fn specials_f32() -> Vec<f32> {
        let mut v = vec![
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            -f32::from_bits(1),
            f32::MAX,
            f32::MIN,
            1.0,
            -1.0,
            88.72283,
            88.72284,
            -87.33655,
            -103.97207,
            -103.97208,
            -104.0,
            1.0 - f32::EPSILON / 2.0,
            -1.0 + f32::EPSILON / 2.0,
            core::f32::consts::SQRT_2,
            core::f32::consts::FRAC_1_SQRT_2,
            core::f32::consts::SQRT_2 - 1.0,
            core::f32::consts::FRAC_1_SQRT_2 - 1.0,
            9.0,
            10.0,
            1e-12,
            -1e-12,
        ];
        for x in v.clone() {
            v.push(f32::from_bits(x.to_bits().wrapping_add(1)));
            v.push(f32::from_bits(x.to_bits().wrapping_sub(1)));
        }
        v
    }

    /// The backends of the exhaustive sweep: every available one, or what
    /// `LOSS_KERNELS_EXHAUSTIVE_BACKENDS` says: `detected` (the one `Auto`
    /// runs) or a comma-separated list of names (`Scalar,Avx512`).
    fn exhaustive_backends() -> Vec<Backend> {
        let all = Backend::available();
        match std::env::var("LOSS_KERNELS_EXHAUSTIVE_BACKENDS") {
            Err(_) => all,
            Ok(v) if v == "all" => all,
            Ok(v) if v == "detected" => vec![Backend::detected()],
            Ok(v) => {
                let wanted: Vec<&str> = v.split(',').map(str::trim).collect();
                let picked: Vec<Backend> = all
                    .into_iter()
                    .filter(|b| wanted.contains(&format!("{b:?}").as_str()))
                    .collect();
                assert!(
                    !picked.is_empty(),
                    "LOSS_KERNELS_EXHAUSTIVE_BACKENDS={v:?} names no available backend"
                );
                picked
            }
        }
    }

    /// All 2^32 patterns. Cost: 11 functions, about 8 minutes on 2 cores
    /// for the four backends (489 s on 2026-11-30), a few for the detected
    /// backend alone (`LOSS_KERNELS_EXHAUSTIVE_BACKENDS=detected`).
    #[test]
    #[ignore = "exhaustive: about 8 minutes on 2 cores in release; run with --ignored exhaustive"]
    fn exhaustive_f32_all_functions() {
        // 2^16 blocks of 2^16 consecutive bit patterns.
        sweep_f32(&exhaustive_backends(), 1 << 16, |blk, xs| {
            xs.extend((0..1u32 << 16).map(|lo| f32::from_bits(((blk as u32) << 16) | lo)));
        });
    }

    #[test]
    fn strided_f32_sweep() {
        // Every 997th bit pattern (about 4.3 million inputs), plus the specials.
        const STRIDE: u64 = 997;
        const PER_BLOCK: u64 = 1 << 14;
        let total = (1u64 << 32) / STRIDE + 1;
        let blocks = total.div_ceil(PER_BLOCK);
        sweep_f32(&Backend::available(), blocks + 1, |blk, xs| {
            if blk == blocks {
                xs.extend(specials_f32());
                return;
            }
            let start = blk * PER_BLOCK;
            let end = (start + PER_BLOCK).min(total);
            xs.extend((start..end).map(|i| f32::from_bits((i * STRIDE) as u32)));
        });
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
        }
    }

    #[test]
    fn sampled_f64() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut xs: Vec<f64> = (0..200_000).map(|_| f64::from_bits(rng.next())).collect();
        for &(lo, hi) in &[
            (-1.0, 1.0),
            (-1e-6, 1e-6),
            (-40.0, 40.0),
            (-746.0, -700.0),
            (700.0, 710.0),
            (0.0, 4.0),
            (-1.0, -0.2),
            (0.3, 0.5),
        ] {
            xs.extend((0..100_000).map(|_| rng.uniform(lo, hi)));
        }
        xs.extend([
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
        ]);
        xs.extend([
            f64::from_bits(1),
            f64::MAX,
            709.782712893384,
            709.7827128933841,
            -745.1332191019411,
        ]);
        xs.extend([
            -745.1332191019412,
            -1.0,
            1.0,
            core::f64::consts::SQRT_2,
            1.0 - f64::EPSILON / 2.0,
        ]);
        let mut out = vec![0.0f64; xs.len()];
        let mut failures = Vec::new();
        for b in Backend::available() {
            for func in FUNCS {
                dispatch(
                    b,
                    Eval {
                        func,
                        xs: &xs,
                        out: &mut out,
                    },
                );
                let mut worst = (0.0, 0.0);
                for (&g, &x) in out.iter().zip(&xs) {
                    if !func.in_domain(x) {
                        continue;
                    }
                    let e = ulp_f64(g, func.reference(x)) - func.slope() * x.abs();
                    if e > worst.0 {
                        worst = (e, x);
                    }
                }
                println!("ULP {}_f64 {:?} {:.3}", func.name(), b, worst.0);
                if worst.0 > func.bound() + 1.0 {
                    // (`std` itself errs by up to an ulp on the composed references.)
                    failures.push(format!(
                        "{} f64 on {b:?}: {:.3} ulp at x = {:e}",
                        func.name(),
                        worst.0,
                        worst.1
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    /// The sum bound in [`exp_softmax_term`]'s doc: `n` terms about their
    /// maximum (one term `e^0`), the terms' errors summed exactly (in `f64`),
    /// stay within `(2 + ln(n)/20)·2^-23` of the sum of `e^x`, relative. The
    /// rows include the case the `ln n` part is tight for, every other term
    /// at `-ln(n - 1)` (the errors of the one-step reduction all have one
    /// sign), and one where every other term is the worst single term.
    #[test]
    fn softmax_term_sums_keep_the_documented_bound() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for n in [1usize, 2, 17, 1000, 50_257, 131_072] {
            let ln_n = (n as f64).ln();
            let level = -((n.max(2) - 1) as f64).ln();
            let rows: Vec<Vec<f32>> = vec![
                vec![level as f32; n],
                // The exhaustive test's worst term on AVX-512 (1.732 ulp).
                vec![-0.059_538_133; n],
                (0..n)
                    .map(|_| rng.uniform(-2.0 * ln_n, 0.0) as f32)
                    .collect(),
                (0..n).map(|_| rng.uniform(-100.0, 0.0) as f32).collect(),
                (0..n).map(|_| rng.uniform(-3.0, 0.0) as f32).collect(),
            ];
            for mut xs in rows {
                xs[0] = 0.0;
                let want: f64 = xs.iter().map(|&x| (x as f64).exp()).sum();
                let bound = (2.0 + ln_n / 20.0) * 2f64.powi(-23);
                for b in Backend::available() {
                    let mut out = vec![0.0f32; n];
                    let func = Func::ExpSoftmaxTerm;
                    dispatch(
                        b,
                        Eval {
                            func,
                            xs: &xs,
                            out: &mut out,
                        },
                    );
                    let got: f64 = out.iter().map(|&e| e as f64).sum();
                    let rel = (got - want).abs() / want;
                    assert!(
                        rel <= bound,
                        "{b:?}, n = {n}, x[1] = {}: relative error {rel:e} > {bound:e}",
                        xs.get(1).copied().unwrap_or(0.0)
                    );
                }
            }
        }
    }

    /// Per lane: `ln_unit_or_one_minus_clamped` and the two functions it
    /// stands for.
    struct Either<'a> {
        p: &'a [f32],
        of_p: &'a [bool],
        out: &'a mut [[f32; 3]],
    }

    impl Kernel for Either<'_> {
        type Output = ();
        #[cfg_attr(not(debug_assertions), inline(always))]
        #[cfg_attr(debug_assertions, inline)]
        fn run<S: Simd>(self, s: S) {
            type V<S> = <f32 as Float>::Vec<S>;
            let lanes = V::<S>::LANES;
            let one = V::<S>::splat(s, 1.0);
            for ((p, of_p), out) in self
                .p
                .chunks(lanes)
                .zip(self.of_p.chunks(lanes))
                .zip(self.out.chunks_mut(lanes))
            {
                let pv = V::<S>::load_partial(s, p, 0.5);
                let flags: Vec<f32> = of_p.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
                let mask = V::<S>::load_partial(s, &flags, 0.0).eq(one);
                let mut lanes_out = [[0f32; 64]; 3];
                ln_unit_or_one_minus_clamped(s, pv, mask)
                    .store_partial(&mut lanes_out[0][..p.len()]);
                ln_unit_clamped(s, pv).store_partial(&mut lanes_out[1][..p.len()]);
                ln_one_minus_unit_clamped(s, pv).store_partial(&mut lanes_out[2][..p.len()]);
                for (j, o) in out.iter_mut().enumerate() {
                    *o = [lanes_out[0][j], lanes_out[1][j], lanes_out[2][j]];
                }
            }
        }
    }

    #[test]
    fn ln_either_is_bitwise_the_one_it_selects() {
        // Every 61st float of [0, 1] (about 17 million), the ends and the
        // boundaries of the reductions, each lane taking `p` or `1 - p` by a
        // pattern that changes within every vector.
        let mut p: Vec<f32> = (0..=1f32.to_bits())
            .step_by(61)
            .map(f32::from_bits)
            .collect();
        p.extend([
            0.0,
            1.0,
            f32::from_bits(1),
            0.5,
            0.25,
            0.75,
            1.0 - f32::EPSILON / 2.0,
        ]);
        // 1 - √½ and √½ (where `1 - p`'s exponent changes) and neighbours.
        let r = core::f32::consts::FRAC_1_SQRT_2;
        for x in [r, 1.0 - r] {
            p.extend([
                x,
                f32::from_bits(x.to_bits() - 1),
                f32::from_bits(x.to_bits() + 1),
            ]);
        }
        p.push(f32::MIN_POSITIVE);
        let of_p: Vec<bool> = (0..p.len()).map(|i| (i * 7 + i / 3) % 5 < 2).collect();
        for b in Backend::available() {
            let mut out = vec![[0f32; 3]; p.len()];
            dispatch(
                b,
                Either {
                    p: &p,
                    of_p: &of_p,
                    out: &mut out,
                },
            );
            for ((&x, &take_p), [got, ln_p, ln_q]) in p.iter().zip(&of_p).zip(&out) {
                let want = if take_p { ln_p } else { ln_q };
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{b:?}: p = {x:e}, of_p = {take_p}: {got} vs {want}"
                );
            }
            // The values themselves (a broken pair would agree with itself).
            let i = p.iter().position(|&x| x == 0.25).unwrap();
            assert!(
                (out[i][1] - 0.25f32.ln()).abs() <= 1e-7
                    && (out[i][2] - 0.75f32.ln()).abs() <= 1e-7
            );
        }
    }

    #[test]
    fn special_values_are_exact() {
        for b in Backend::available() {
            let xs = [
                0.0f32,
                -0.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                -1.0,
                -2.0,
                1.0,
            ];
            let mut out = [0.0f32; 8];
            let run = |func, out: &mut [f32]| dispatch(b, Eval { func, xs: &xs, out });
            run(Func::Exp, &mut out);
            assert_eq!(out[..4], [1.0, 1.0, f32::INFINITY, 0.0], "{b:?}");
            assert!(out[4].is_nan() && out[3].to_bits() == 0);
            run(Func::Ln, &mut out);
            assert_eq!(
                out[..3],
                [f32::NEG_INFINITY, f32::NEG_INFINITY, f32::INFINITY],
                "{b:?}"
            );
            assert!(out[3].is_nan() && out[4].is_nan() && out[5].is_nan() && out[6].is_nan());
            assert_eq!(out[7].to_bits(), 0);
            run(Func::Log1p, &mut out);
            assert_eq!(out[0].to_bits(), 0.0f32.to_bits());
            assert_eq!(out[1].to_bits(), (-0.0f32).to_bits());
            assert_eq!(out[2], f32::INFINITY);
            assert!(out[3].is_nan() && out[4].is_nan() && out[6].is_nan());
            assert_eq!(out[5], f32::NEG_INFINITY);
            run(Func::Tanh, &mut out);
            assert_eq!(out[0].to_bits(), 0.0f32.to_bits());
            assert_eq!(out[1].to_bits(), (-0.0f32).to_bits());
            assert_eq!(out[2..4], [1.0, -1.0]);
            assert!(out[4].is_nan());
            run(Func::Sigmoid, &mut out);
            assert_eq!(out[..4], [0.5, 0.5, 1.0, 0.0], "{b:?}");
            assert!(out[4].is_nan());
            for f in [Func::Softplus, Func::SoftplusTerm] {
                run(f, &mut out);
                assert_eq!(
                    out[..4],
                    [
                        core::f32::consts::LN_2,
                        core::f32::consts::LN_2,
                        f32::INFINITY,
                        0.0
                    ],
                    "{f:?} {b:?}"
                );
                assert!(out[4].is_nan());
            }
            // exp_nonpositive_term(min(x, 0)) and exp_softmax_term(min(x,
            // 0)): +inf gives e^0; -inf gives +0, and e^-87 for the softmax
            // term (its floor, never a subnormal).
            run(Func::ExpTerm, &mut out);
            assert_eq!(out[..4], [1.0, 1.0, 1.0, 0.0], "{b:?}");
            assert!(out[4].is_nan() && out[3].to_bits() == 0, "{b:?}");
            run(Func::ExpSoftmaxTerm, &mut out);
            assert_eq!(out[..3], [1.0, 1.0, 1.0], "{b:?}");
            let floor = c32::SOFTMAX_TERM_LO.exp();
            assert!(out[3].is_normal(), "{b:?}: {:e}", out[3]);
            assert!(
                (out[3] as f64 / floor - 1.0).abs() < 1e-6,
                "{b:?}: {:e}",
                out[3]
            );
            assert!(out[4].is_nan(), "{b:?}");
        }
    }
}
