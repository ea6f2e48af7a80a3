//! Decoding bytes into shapes, values and options.
//!
//! Everything is biased towards what breaks SIMD kernels: lengths around
//! the vector widths (15, 16, 17, 31, 32, 33, …), moderate values most of
//! the time (so the numeric comparison with the oracle is exercised), and
//! nasty values (subnormals, ±inf, NaN, the range limits) sprinkled in or
//! as whole arrays. Out-of-contract inputs (bad lengths, bad options, bad
//! probabilities and labels) appear at a low rate, so that both the error
//! paths and the success paths are covered.

use loss_kernels::{Backend, EmptyMean, Reduction};

use crate::bytes::Bytes;
use crate::elem::Elem;

/// Lengths next to the SIMD widths (4/8/16 lanes, unrolled 2-4x).
pub const INTERESTING_LENS: [usize; 24] = [
    2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 127, 128, 129, 255, 257,
];

/// What an array holds, which decides the range of its moderate values
/// and which specials it may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Any real number: predictions, targets, logits.
    General,
    /// A probability in `[0, 1]`; rarely a value outside.
    Prob,
    /// A weight, `>= 0`; rarely a negative or non-finite one.
    NonNeg,
}

/// Scales of the moderate values (the `i16` range maps onto `±scale`).
const SCALES: [f64; 16] = [
    1.0 / 1024.0,
    1.0 / 64.0,
    1.0 / 8.0,
    0.5,
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
    32.0,
    64.0,
    128.0,
    1024.0,
    65536.0,
    1e12,
    1e30,
];

/// In-range probability specials.
const PROB_OK: [f64; 16] = [
    0.0,
    1.0,
    -0.0,
    0.5,
    1e-8,
    1e-30,
    1e-45, // f32 subnormal
    3.720075976020836e-44,
    1e-40,
    0.25,
    0.75,
    0.9999999,
    0.99999994,
    0.9999999999999999,
    1e-300,
    f64::MIN_POSITIVE,
];

/// Out-of-range probability specials.
const PROB_BAD: [f64; 8] = [
    f64::NAN,
    -1e-45,
    1.0000001,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -1.0,
    2.0,
    -f64::NAN,
];

/// Weight specials, good and (last five) bad.
const NONNEG: [f64; 16] = [
    0.0,
    1.0,
    0.5,
    2.0,
    1e-30,
    1e30,
    3e38,
    1e-45,
    100.0,
    -0.0,
    // bad
    -1.0,
    f64::NAN,
    f64::INFINITY,
    -1e-30,
    f64::NEG_INFINITY,
    1e300,
];

fn special<T: Elem>(b: &mut Bytes, kind: Kind) -> T {
    match kind {
        Kind::General => b.pick(T::specials()),
        Kind::Prob => {
            // One in eight specials is out of range.
            if b.u8() < 32 {
                T::from_f64(b.pick(&PROB_BAD))
            } else {
                T::from_f64(b.pick(&PROB_OK))
            }
        }
        Kind::NonNeg => {
            let i = b.u8() as usize;
            // The last six (bad) entries are rarer.
            let idx = if i < 240 { i % 10 } else { 10 + i % 6 };
            T::from_f64(NONNEG[idx])
        }
    }
}

fn moderate<T: Elem>(b: &mut Bytes, kind: Kind, scale: f64) -> T {
    let raw = b.u16();
    match kind {
        Kind::General => T::from_f64(f64::from(raw as i16) / 32768.0 * scale),
        Kind::Prob => T::from_f64(f64::from(raw) / 65535.0),
        Kind::NonNeg => T::from_f64(f64::from(raw) / 65535.0 * scale),
    }
}

/// `n` values of `kind`. A mode byte picks the recipe: moderate values at
/// one of 16 scales; moderate values with specials sprinkled in; raw bit
/// patterns; a constant (e.g. a row of `-inf` or of `3e38`); a moderate
/// array with one spike.
pub fn values<T: Elem>(b: &mut Bytes, n: usize, kind: Kind) -> Vec<T> {
    let mode = b.u8();
    let scale = SCALES[(mode >> 4) as usize];
    let mut v = Vec::with_capacity(n);
    match mode % 16 {
        7..=9 => {
            for _ in 0..n {
                let x = if b.u8() < 40 {
                    special(b, kind)
                } else {
                    moderate(b, kind, scale)
                };
                v.push(x);
            }
        }
        10 => {
            for _ in 0..n {
                v.push(T::from_bits_u64(b.u64()));
            }
        }
        11 => {
            let x = if b.bool() {
                special(b, kind)
            } else {
                moderate(b, kind, scale)
            };
            v.resize(n, x);
        }
        12 => {
            let x = moderate(b, kind, scale);
            v.resize(n, x);
            if n > 0 {
                let i = b.below(n);
                v[i] = special(b, kind);
            }
        }
        _ => {
            for _ in 0..n {
                v.push(moderate(b, kind, scale));
            }
        }
    }
    v
}

/// An element count for the elementwise losses: mostly `0..=600` and the
/// SIMD-width neighbours, rarely up to 4096, and at 1/256 around the
/// parallel threshold (57 344..81 920 elements, so the deterministic split
/// into 16 384-element leaves and the `pos_weight` phase across leaves run).
pub fn elem_len(b: &mut Bytes) -> usize {
    match b.u8() {
        0..=11 => 0,
        12..=23 => 1,
        24..=95 => b.pick(&INTERESTING_LENS),
        96..=251 => b.below(601),
        252..=254 => b.below(4097),
        255 => 57_344 + b.below(24_576),
    }
}

/// Mostly `n`; sometimes `n ± 1` or 0, for length-mismatch errors.
pub fn maybe_wrong_len(b: &mut Bytes, n: usize) -> usize {
    match b.u8() {
        0..=249 => n,
        250 | 251 => n + 1,
        252 | 253 => n.saturating_sub(1),
        254 => 0,
        255 => n + 17,
    }
}

/// Divisors of `DivideBy`: ordinary ones, and ones that overflow or
/// underflow `f32` or are invalid.
const DIVISORS: [f64; 20] = [
    1.0,
    2.0,
    0.5,
    3.0,
    600.0,
    1e-3,
    1e6,
    7.0,
    0.1,
    1e-300,
    1e300,
    0.0,
    -1.0,
    f64::NAN,
    f64::INFINITY,
    -0.0,
    5e-324,
    f64::MAX,
    1e-40,
    1e39,
];

/// A reduction; `DivideBy` draws from [`DIVISORS`] or a moderate positive value.
pub fn reduction(b: &mut Bytes) -> Reduction {
    match b.u8() % 8 {
        0..=3 => Reduction::Mean,
        4 | 5 => Reduction::Sum,
        6 => Reduction::DivideBy(b.pick(&DIVISORS)),
        _ => Reduction::DivideBy(f64::from(b.u16()) / 64.0 + 1.0 / 64.0),
    }
}

/// Both empty-mean policies.
pub fn empty_mean(b: &mut Bytes) -> EmptyMean {
    if b.bool() {
        EmptyMean::Nan
    } else {
        EmptyMean::Zero
    }
}

/// `Auto` or a forced backend (which may be unavailable on this CPU).
pub fn backend(b: &mut Bytes) -> Backend {
    b.pick(&[
        Backend::Auto,
        Backend::Auto,
        Backend::Scalar,
        Backend::Portable,
        Backend::Avx2Fma,
        Backend::Avx512,
    ])
}

/// Label smoothing: mostly 0, then usual values, then invalid ones.
pub fn label_smoothing(b: &mut Bytes) -> f64 {
    match b.u8() {
        0..=159 => 0.0,
        160..=223 => f64::from(b.u16()) / 65535.0,
        _ => b.pick(&[
            0.1,
            1.0,
            0.5,
            1e-8,
            -0.0,
            1.0 - 1e-9,
            -1e-9,
            1.0 + 1e-9,
            f64::NAN,
            f64::INFINITY,
            -1.0,
            5e-324,
        ]),
    }
}

/// z-loss weight: mostly 0.
pub fn z_loss(b: &mut Bytes) -> f64 {
    match b.u8() {
        0..=175 => 0.0,
        176..=231 => b.pick(&[1e-4, 1e-3, 0.1, 1.0]),
        _ => b.pick(&[
            1e-30,
            100.0,
            1e300,
            -0.0,
            5e-324,
            -1e-4,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ]),
    }
}

/// Softcap: mostly none.
pub fn softcap(b: &mut Bytes) -> Option<f64> {
    match b.u8() {
        0..=175 => None,
        176..=231 => Some(b.pick(&[30.0, 50.0, 15.0, 1.0, 5.0])),
        _ => Some(b.pick(&[
            1e-3,
            1e-30,
            1e30,
            f64::MIN_POSITIVE,
            3e38,
            1e-40,
            1e39,
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            -0.0,
        ])),
    }
}

/// Offsets of an output buffer inside its canaried allocation (varies the
/// alignment of the buffer the kernel sees).
pub fn pad(b: &mut Bytes) -> usize {
    16 + b.below(17)
}
