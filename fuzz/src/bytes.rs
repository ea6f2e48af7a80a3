//! A byte reader that never runs dry.
//!
//! The fuzzer's bytes are consumed front to back. Once they are used up the
//! reader continues with a xorshift stream seeded from the input's length and
//! last bytes, so a short input can still describe a long array (a 70 000
//! class row needs no 140 000 input bytes) and every decode is a pure
//! function of the input bytes (crashes reproduce).

/// Sequential reader over the fuzzer's input.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
    rng: u64,
}

impl<'a> Bytes<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        let mut seed =
            0x9E37_79B9_7F4A_7C15_u64 ^ (data.len() as u64).wrapping_mul(0x100_0000_01B3);
        for &b in data.iter().rev().take(8) {
            seed = (seed << 8 | u64::from(b)) ^ (seed >> 56);
        }
        Bytes {
            data,
            pos: 0,
            rng: seed | 1,
        }
    }

    /// Whether the fuzzer's own bytes are used up (the rest is generated).
    pub fn exhausted(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        if let Some(&b) = self.data.get(self.pos) {
            self.pos += 1;
            b
        } else {
            // xorshift64*
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        }
    }

    /// Little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | u16::from(self.u8()) << 8
    }

    /// Little-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | u32::from(self.u16()) << 16
    }

    /// Little-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    /// A coin flip.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A value in `0..n` (`0` when `n == 0`), reading as few bytes as `n` needs.
    pub fn below(&mut self, n: usize) -> usize {
        match n {
            0 | 1 => 0,
            2..=256 => self.u8() as usize % n,
            257..=65536 => self.u16() as usize % n,
            _ => (self.u32() as usize) % n,
        }
    }

    /// One element of a non-empty table.
    pub fn pick<T: Copy>(&mut self, table: &[T]) -> T {
        table[self.below(table.len())]
    }
}
