//! The two element types, with what the harness needs beyond
//! `loss_kernels::Float`: bit patterns, range constants and a table of
//! nasty values.

use loss_kernels::Float;

/// `f32` or `f64`, as the harness sees them.
pub trait Elem: Float {
    /// `"f32"` / `"f64"`.
    const NAME: &'static str;
    /// Machine epsilon (`2^-23` / `2^-52`).
    const EPS: f64;
    /// Largest finite value.
    const MAX: f64;
    /// Smallest positive normal value.
    const MIN_POS: f64;
    /// The type from the low bits of `bits`.
    fn from_bits_u64(bits: u64) -> Self;
    /// The bit pattern, zero-extended.
    fn bits(self) -> u64;
    /// Values that break kernels: zeros, subnormals, the range limits,
    /// infinities, NaNs (both signs, quiet and signalling), `exp` overflow
    /// and underflow thresholds, `1 ± ulp`.
    fn specials() -> &'static [Self];
    /// A signalling-NaN pattern no kernel produces: fills the canary
    /// regions around output buffers and output buffers that must stay
    /// untouched.
    fn canary() -> Self;
}

const F32_SPECIALS: [f32; 34] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    f32::MIN_POSITIVE,
    f32::from_bits(1),           // smallest subnormal
    f32::from_bits(0x8000_0001), // its negative
    f32::from_bits(0x007F_FFFF), // largest subnormal
    f32::MAX,
    -f32::MAX,
    3e38,
    -3e38,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    f32::from_bits(0xFFC0_0000), // -NaN
    f32::from_bits(0x7F80_0001), // signalling NaN
    1e-8,
    88.72284,  // ln(f32::MAX)
    89.0,      // exp overflows f32
    -87.33655, // ln(f32::MIN_POSITIVE)
    -103.97,   // exp underflows to 0
    100.0,
    -100.0,
    0.99999994, // 1 - ulp
    1.0000001,  // 1 + ulp
    20.0,
    -20.0,
    1e4,
    1e-30,
    16_777_216.0,
    3.7200760e-44, // e^-100, the BCE log clamp (subnormal)
];

const F64_SPECIALS: [f64; 36] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    f64::MIN_POSITIVE,
    f64::from_bits(1),
    f64::from_bits(0x8000_0000_0000_0001),
    f64::from_bits(0x000F_FFFF_FFFF_FFFF),
    f64::MAX,
    -f64::MAX,
    3e38,
    -3e38,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::from_bits(0xFFF8_0000_0000_0000),
    f64::from_bits(0x7FF0_0000_0000_0001),
    1e-8,
    709.782712893384, // ln(f64::MAX)
    710.0,
    -708.3964185322641,
    -745.2,
    100.0,
    -100.0,
    0.9999999999999999,
    1.0000000000000002,
    20.0,
    -20.0,
    1e4,
    1e-300,
    9_007_199_254_740_992.0,
    3.720075976020836e-44,
    1e300,
    88.72284,
];

impl Elem for f32 {
    const NAME: &'static str = "f32";
    const EPS: f64 = f32::EPSILON as f64;
    const MAX: f64 = f32::MAX as f64;
    const MIN_POS: f64 = f32::MIN_POSITIVE as f64;
    fn from_bits_u64(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn specials() -> &'static [Self] {
        &F32_SPECIALS
    }
    fn canary() -> Self {
        f32::from_bits(0x7FA5_A5A5)
    }
}

impl Elem for f64 {
    const NAME: &'static str = "f64";
    const EPS: f64 = f64::EPSILON;
    const MAX: f64 = f64::MAX;
    const MIN_POS: f64 = f64::MIN_POSITIVE;
    fn from_bits_u64(bits: u64) -> Self {
        f64::from_bits(bits)
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn specials() -> &'static [Self] {
        &F64_SPECIALS
    }
    fn canary() -> Self {
        f64::from_bits(0x7FF5_A5A5_A5A5_A5A5)
    }
}

/// Widens a slice to `f64` (exact).
pub fn widen<T: Elem>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}
