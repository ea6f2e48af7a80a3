//! The hand-picked seed corpus: the encoder that writes bytes the decoders
//! of [`crate::gen`], [`crate::elementwise`], [`crate::ce`] and
//! [`crate::prims`] read back as the intended case, and the list of seeds.
//!
//! `cargo test --lib` checks that every seed still decodes to what its name
//! says (so a decoder change cannot silently turn the corpus into noise);
//! `cargo test --lib -- --ignored write_seed_corpus` rewrites
//! `corpus/<target>/seed-*`.

use crate::gen::INTERESTING_LENS;

/// Index of a value in `Elem::specials()` (same for `f32` and `f64`).
pub mod special {
    pub const ZERO: u8 = 0;
    pub const ONE: u8 = 2;
    pub const MIN_POS: u8 = 6;
    pub const SUBNORMAL: u8 = 7;
    pub const MAX: u8 = 10;
    pub const BIG: u8 = 12; // 3e38
    pub const NEG_BIG: u8 = 13; // -3e38
    pub const INF: u8 = 14;
    pub const NEG_INF: u8 = 15;
    pub const NAN: u8 = 16;
}

/// Writes the bytes a decoder reads.
#[derive(Default, Clone)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    /// The element type (first byte of every target).
    pub fn ty(&mut self, f32: bool) -> &mut Self {
        self.u8(u8::from(f32))
    }
    /// `gen::elem_len`.
    pub fn elem_len(&mut self, n: usize) -> &mut Self {
        if n == 0 {
            self.u8(0)
        } else if n == 1 {
            self.u8(12)
        } else if let Some(i) = INTERESTING_LENS.iter().position(|&l| l == n) {
            self.u8(24).u8(i as u8)
        } else {
            assert!(n <= 600);
            self.u8(96).u16(n as u16)
        }
    }
    /// `gen::maybe_wrong_len`: the right length.
    pub fn same_len(&mut self) -> &mut Self {
        self.u8(0)
    }
    /// `gen::reduction`: `Mean` (false) or `Sum` (true).
    pub fn reduction(&mut self, sum: bool) -> &mut Self {
        self.u8(if sum { 4 } else { 0 })
    }
    /// `gen::empty_mean`: NaN.
    pub fn empty_mean_nan(&mut self) -> &mut Self {
        self.u8(1)
    }
    /// `gen::backend`: 0 Auto, 2 Scalar, 3 Portable, 4 Avx2Fma, 5 Avx512.
    pub fn backend(&mut self, i: u8) -> &mut Self {
        self.u8(i)
    }
    /// `gen::pad`: 16 canaries.
    pub fn pad(&mut self) -> &mut Self {
        self.u8(0)
    }
    /// `gen::values`, a constant array of one `Kind::General` special.
    pub fn const_special(&mut self, idx: u8) -> &mut Self {
        self.u8(11).u8(1).u8(idx)
    }
    /// `gen::values`, a constant array of one moderate value `raw / 32768 · scale(scale_idx)`.
    pub fn const_moderate(&mut self, scale_idx: u8, raw: i16) -> &mut Self {
        self.u8(scale_idx << 4 | 11).u8(0).u16(raw as u16)
    }
    /// `gen::values`, `n` moderate values at scale index `scale_idx`
    /// (scale 4: `±1`; 8: `±16`), a fixed zig-zag pattern.
    pub fn moderate(&mut self, scale_idx: u8, n: usize, salt: u16) -> &mut Self {
        self.u8(scale_idx << 4);
        for i in 0..n {
            let v = ((i as u32 * 7919 + u32::from(salt) * 104_729) % 65_536) as u16;
            self.u16(v);
        }
        self
    }
    /// `gen::values` of `Kind::Prob`: `n` probabilities, a fixed pattern.
    pub fn probs(&mut self, n: usize, salt: u16) -> &mut Self {
        self.moderate(0, n, salt)
    }
    /// `gen::values` of `Kind::Prob`: constant `0` (false) or `1` (true).
    pub fn const_prob(&mut self, one: bool) -> &mut Self {
        self.u8(11).u8(1).u8(32).u8(u8::from(one))
    }
    /// `gen::values` of `Kind::Prob`: constant out-of-range special
    /// (`0`: NaN, `5`: -1, `6`: 2).
    pub fn const_prob_bad(&mut self, idx: u8) -> &mut Self {
        self.u8(11).u8(1).u8(0).u8(idx)
    }
    /// `gen::values`: moderate values (scale index 4, `±1`) with the special
    /// `idx` at every `every`-th position.
    pub fn sprinkled(&mut self, n: usize, idx: u8, every: usize) -> &mut Self {
        self.u8(4 << 4 | 7);
        for i in 0..n {
            if i % every == every - 1 {
                self.u8(0).u8(idx);
            } else {
                self.u8(200).u16((i as u16).wrapping_mul(2654));
            }
        }
        self
    }
    /// The bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.clone()
    }
}

/// Elementwise family header up to (not including) the arrays. `weight`:
/// whether BCE's weight is present; `pos_weight`: a `pos_weight` of
/// length 1 (BCE with logits only).
fn elementwise_header(
    e: &mut Enc,
    f32: bool,
    n: usize,
    sum: bool,
    backend: u8,
    family: u8,
    weight: bool,
    pos_weight: bool,
) {
    e.ty(f32)
        .elem_len(n)
        .same_len()
        .reduction(sum)
        .empty_mean_nan()
        .backend(backend);
    e.same_len().same_len().pad();
    if family != 0 {
        e.u8(if weight { 200 } else { 0 });
    }
    e.same_len(); // weight length
    if family == 2 {
        if pos_weight {
            e.u8(200).u8(0); // present, length 1
        } else {
            e.u8(0);
        }
        e.u8(0); // target kind: probabilities
    }
}

/// `ce::shape` for `classes` (1, an interesting length, `<= 64`, or a long
/// row) and `rows`.
fn ce_shape(e: &mut Enc, classes: usize, rows: usize) {
    if classes > 32_760 {
        assert!(rows == 1);
        e.u8(255).u8(1).u16((classes - 32_760) as u16).u8(0);
        return;
    }
    if classes == 1 {
        e.u8(1);
    } else if let Some(i) = INTERESTING_LENS.iter().position(|&l| l == classes) {
        e.u8(25).u8(i as u8);
    } else {
        assert!(classes <= 64);
        e.u8(89).u8((classes - 1) as u8);
    }
    let max_rows = (600 / classes).max(1);
    match rows {
        0 => e.u8(0),
        1 => e.u8(12),
        r => {
            assert!(r <= max_rows);
            if max_rows < 256 {
                e.u8(44).u8(r as u8)
            } else {
                e.u8(44).u16(r as u16)
            }
        }
    };
}

/// CE options (no smoothing etc. unless asked), up to the targets.
#[allow(clippy::too_many_arguments)]
fn ce_header(
    e: &mut Enc,
    f32: bool,
    classes: usize,
    rows: usize,
    sum: bool,
    backend: u8,
    smoothing: bool,
    softcap: bool,
) {
    e.ty(f32);
    ce_shape(e, classes, rows);
    if classes > 1 {
        e.u8(0); // divisible
    }
    e.reduction(sum).empty_mean_nan().backend(backend);
    // smoothing 0.1, z-loss 0, softcap 30
    if smoothing {
        e.u8(224).u8(0);
    } else {
        e.u8(0);
    }
    e.u8(0);
    if softcap {
        e.u8(176).u8(0);
    } else {
        e.u8(0);
    }
    e.same_len().same_len().pad();
    e.u8(0); // ignore_index: default (-100)
    e.u8(0); // no class weights
}

/// Labels: type u32, all rows labelled `(r * 7) % classes`, row 0 ignored
/// when `ignore_first`.
fn ce_labels(e: &mut Enc, classes: usize, rows: usize, ignore_first: bool) {
    e.u8(0).same_len().u8(0);
    for r in 0..rows {
        if ignore_first && r == 0 {
            e.u8(245);
        } else {
            e.u8(0);
            let y = (r * 7) % classes;
            match classes {
                0 | 1 => {}
                2..=256 => {
                    e.u8(y as u8);
                }
                257..=65_536 => {
                    e.u16(y as u16);
                }
                _ => {
                    e.u16(y as u16).u16(0);
                }
            }
        }
    }
}

/// Dense targets: one-hot-ish moderate probabilities, normalized.
fn ce_dense_targets(e: &mut Enc, len: usize) {
    e.same_len().u8(0);
    e.probs(len, 3);
    e.u8(0); // normalize rows
}

/// Every seed: `(target, name, bytes)`.
pub fn all() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut v = Vec::new();
    let widths = [0_usize, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65];
    let families = [("squared_error", 0_u8), ("bce", 1), ("bce_logits", 2)];
    for (target, fam) in families {
        for f32 in [true, false] {
            let ty = if f32 { "f32" } else { "f64" };
            for &n in &widths {
                let mut e = Enc::default();
                elementwise_header(
                    &mut e,
                    f32,
                    n,
                    n % 2 == 1,
                    0,
                    fam,
                    fam != 0 && n == 17,
                    fam == 2 && n == 16,
                );
                if fam == 1 {
                    e.probs(n, 1).probs(n, 2);
                } else {
                    e.moderate(8, n, 1);
                    if fam == 2 {
                        e.probs(n, 2);
                    } else {
                        e.moderate(8, n, 2);
                    }
                }
                if fam != 0 && n == 17 {
                    e.u8(0).moderate(4, n, 5); // weights
                }
                if fam == 2 && n == 16 {
                    e.const_moderate(4, 20_000); // pos_weight
                }
                v.push((target, format!("seed-{ty}-n{n}"), e.bytes()));
            }
            // Forced backends at a SIMD-tail length.
            for (bi, bname) in [(2, "scalar"), (3, "portable"), (4, "avx2"), (5, "avx512")] {
                let mut e = Enc::default();
                elementwise_header(&mut e, f32, 33, false, bi, fam, false, false);
                if fam == 1 {
                    e.probs(33, 1).probs(33, 2);
                } else {
                    e.moderate(8, 33, 1)
                        .moderate(if fam == 2 { 0 } else { 8 }, 33, 2);
                }
                v.push((target, format!("seed-{ty}-n33-{bname}"), e.bytes()));
            }
            // Nasty constants.
            let nasty: Vec<(&str, Box<dyn Fn(&mut Enc)>)> = match fam {
                0 => vec![
                    (
                        "big-opposite",
                        Box::new(|e: &mut Enc| {
                            e.const_special(special::BIG)
                                .const_special(special::NEG_BIG);
                        }),
                    ),
                    (
                        "inf-inf",
                        Box::new(|e: &mut Enc| {
                            e.const_special(special::INF).const_special(special::INF);
                        }),
                    ),
                    (
                        "sprinkled-nan",
                        Box::new(|e: &mut Enc| {
                            e.sprinkled(33, special::NAN, 7).moderate(4, 33, 2);
                        }),
                    ),
                    (
                        "subnormal",
                        Box::new(|e: &mut Enc| {
                            e.const_special(special::SUBNORMAL)
                                .const_special(special::ZERO);
                        }),
                    ),
                ],
                1 => vec![
                    (
                        "p0-y1-clamp",
                        Box::new(|e: &mut Enc| {
                            e.const_prob(false).const_prob(true);
                        }),
                    ),
                    (
                        "p1-y0-clamp",
                        Box::new(|e: &mut Enc| {
                            e.const_prob(true).const_prob(false);
                        }),
                    ),
                    (
                        "p-nan",
                        Box::new(|e: &mut Enc| {
                            e.const_prob_bad(0).probs(33, 2);
                        }),
                    ),
                ],
                _ => vec![
                    (
                        "logit-big",
                        Box::new(|e: &mut Enc| {
                            e.const_special(special::BIG).probs(33, 2);
                        }),
                    ),
                    (
                        "logit-neg-big",
                        Box::new(|e: &mut Enc| {
                            e.const_special(special::NEG_BIG).probs(33, 2);
                        }),
                    ),
                    (
                        "logit-neg-inf",
                        Box::new(|e: &mut Enc| {
                            e.const_special(special::NEG_INF).probs(33, 2);
                        }),
                    ),
                    (
                        "logit-inf",
                        Box::new(|e: &mut Enc| {
                            e.const_special(special::INF).probs(33, 2);
                        }),
                    ),
                ],
            };
            for (name, fill) in nasty {
                let mut e = Enc::default();
                elementwise_header(&mut e, f32, 33, true, 0, fam, false, false);
                fill(&mut e);
                v.push((target, format!("seed-{ty}-{name}"), e.bytes()));
            }
        }
    }

    // Cross entropy (labels and dense) and the primitives.
    for f32 in [true, false] {
        let ty = if f32 { "f32" } else { "f64" };
        let shapes: [(usize, usize); 9] = [
            (1, 1),
            (2, 3),
            (15, 4),
            (16, 4),
            (17, 4),
            (31, 2),
            (32, 2),
            (33, 2),
            (64, 3),
        ];
        for &(c, r) in &shapes {
            for dense in [false, true] {
                let target = if dense { "ce_dense" } else { "ce_labels" };
                let mut e = Enc::default();
                ce_header(&mut e, f32, c, r, false, 0, c == 17, c == 33);
                if dense {
                    ce_dense_targets(&mut e, c * r);
                } else {
                    ce_labels(&mut e, c, r, c == 16);
                }
                e.moderate(8, c * r, 4);
                v.push((target, format!("seed-{ty}-c{c}-r{r}"), e.bytes()));
            }
        }
        // Empty batch, -inf rows, 3e38 logits, -inf sprinkled (masked classes).
        let special_rows: [(&str, Box<dyn Fn(&mut Enc)>); 4] = [
            (
                "neg-inf-rows",
                Box::new(|e: &mut Enc| {
                    e.const_special(special::NEG_INF);
                }),
            ),
            (
                "big-logits",
                Box::new(|e: &mut Enc| {
                    e.const_special(special::BIG);
                }),
            ),
            (
                "masked",
                Box::new(|e: &mut Enc| {
                    e.sprinkled(17 * 3, special::NEG_INF, 3);
                }),
            ),
            (
                "max-logits",
                Box::new(|e: &mut Enc| {
                    e.const_special(special::MAX);
                }),
            ),
        ];
        for dense in [false, true] {
            let target = if dense { "ce_dense" } else { "ce_labels" };
            let mut e = Enc::default();
            ce_header(&mut e, f32, 16, 0, false, 0, false, false);
            if dense {
                ce_dense_targets(&mut e, 0);
            } else {
                ce_labels(&mut e, 16, 0, false);
            }
            e.moderate(8, 0, 0);
            v.push((target, format!("seed-{ty}-empty"), e.bytes()));
            for (name, fill) in &special_rows {
                for smoothing in [false, true] {
                    let mut e = Enc::default();
                    ce_header(&mut e, f32, 17, 3, true, 0, smoothing, false);
                    if dense {
                        ce_dense_targets(&mut e, 51);
                    } else {
                        ce_labels(&mut e, 17, 3, false);
                    }
                    fill(&mut e);
                    let s = if smoothing { "-smooth" } else { "" };
                    v.push((target, format!("seed-{ty}-{name}{s}"), e.bytes()));
                }
            }
            // One row longer than the column leaf (split long-row path).
            let mut e = Enc::default();
            ce_header(&mut e, f32, 40_000, 1, false, 0, false, false);
            if dense {
                ce_dense_targets(&mut e, 40_000);
            } else {
                ce_labels(&mut e, 40_000, 1, false);
            }
            e.u8(8 << 4 | 13); // moderate values from the generated stream
            v.push((target, format!("seed-{ty}-long-row"), e.bytes()));
        }
        // Primitives.
        for &(c, r) in &shapes {
            let mut e = Enc::default();
            e.ty(f32);
            ce_shape(&mut e, c, r);
            if c > 1 {
                e.u8(0);
            }
            e.backend(0).same_len().same_len().pad();
            e.moderate(8, c * r, 6);
            v.push(("primitives", format!("seed-{ty}-c{c}-r{r}"), e.bytes()));
        }
        for (name, fill) in &special_rows {
            let mut e = Enc::default();
            e.ty(f32);
            ce_shape(&mut e, 17, 3);
            e.u8(0).backend(0).same_len().same_len().pad();
            fill(&mut e);
            v.push(("primitives", format!("seed-{ty}-{name}"), e.bytes()));
        }
        let mut e = Enc::default();
        e.ty(f32);
        ce_shape(&mut e, 40_000, 1);
        e.u8(0).backend(0).same_len().same_len().pad();
        e.u8(8 << 4 | 13);
        v.push(("primitives", format!("seed-{ty}-long-row"), e.bytes()));

        // LogSumExp merge: lengths, -inf, 3e38; 3 parts merged as a tree.
        for &n in &widths {
            for (name, fill) in [
                ("moderate", None),
                ("neg-inf", Some(special::NEG_INF)),
                ("big", Some(special::BIG)),
            ] {
                let mut e = Enc::default();
                e.ty(f32).u8(0).elem_len(n);
                e.u8(2); // 3 parts
                if n > 0 {
                    e.u8((n / 3) as u8).u8((2 * n / 3) as u8);
                }
                e.u8(0).u8(0); // permutation swaps
                e.u8(1); // tree
                e.u8(0); // no raw states
                match fill {
                    None => e.moderate(8, n, 7),
                    Some(s) => e.const_special(s),
                };
                v.push(("lse_merge", format!("seed-{ty}-n{n}-{name}"), e.bytes()));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Bytes;
    use crate::elementwise::{Case as ECase, Family};

    fn target_runs(target: &str, data: &[u8]) {
        match target {
            "squared_error" => crate::targets::squared_error(data),
            "bce" => crate::targets::bce(data),
            "bce_logits" => crate::targets::bce_logits(data),
            "ce_labels" => crate::targets::ce_labels(data),
            "ce_dense" => crate::targets::ce_dense(data),
            "primitives" => crate::targets::primitives(data),
            "lse_merge" => crate::targets::lse_merge(data),
            _ => panic!("unknown target {target}"),
        }
    }

    /// Each seed decodes to the case its name describes.
    #[test]
    fn seeds_decode_as_named() {
        for (target, name, bytes) in all() {
            let f32 = name.contains("f32");
            let mut b = Bytes::new(&bytes);
            assert_eq!(b.bool(), f32, "{target}/{name}");
            match target {
                "squared_error" | "bce" | "bce_logits" => {
                    let fam = match target {
                        "squared_error" => Family::SquaredError,
                        "bce" => Family::Bce,
                        _ => Family::BceLogits,
                    };
                    let (n, vals, tgt) = if f32 {
                        let c = ECase::<f32>::decode(fam, &mut b);
                        (
                            c.input.len(),
                            crate::elem::widen(&c.input),
                            crate::elem::widen(&c.target),
                        )
                    } else {
                        let c = ECase::<f64>::decode(fam, &mut b);
                        (c.input.len(), c.input.clone(), c.target.clone())
                    };
                    assert_eq!(tgt.len(), n, "{target}/{name}");
                    if let Some(w) =
                        name.strip_prefix(&format!("seed-{}-n", if f32 { "f32" } else { "f64" }))
                    {
                        let want: usize = w.split('-').next().unwrap().parse().unwrap();
                        assert_eq!(n, want, "{target}/{name}");
                    }
                    if name.ends_with("big-opposite") || name.ends_with("logit-big") {
                        assert!(
                            vals.iter().all(|&v| (v - 3e38).abs() < 1e32),
                            "{target}/{name}: {vals:?}"
                        );
                    }
                    if name.ends_with("logit-neg-inf") {
                        assert!(
                            vals.iter().all(|&v| v == f64::NEG_INFINITY),
                            "{target}/{name}"
                        );
                    }
                    if name.ends_with("p0-y1-clamp") {
                        assert!(
                            vals.iter().all(|&v| v == 0.0) && tgt.iter().all(|&v| v == 1.0),
                            "{target}/{name}"
                        );
                    }
                    if name.ends_with("sprinkled-nan") {
                        assert!(
                            vals.iter().any(|v| v.is_nan()) && !vals.iter().all(|v| v.is_nan()),
                            "{target}/{name}"
                        );
                    }
                }
                "ce_labels" | "ce_dense" => {
                    let dense = target == "ce_dense";
                    let (classes, logits, targets_ok) = if f32 {
                        let c = crate::ce::Case::<f32>::decode(&mut b, dense);
                        let ok = match &c.targets {
                            crate::ce::Targets::Labels { values, .. } => {
                                values.len() * c.classes == c.logits.len()
                            }
                            crate::ce::Targets::Dense(t) => t.len() == c.logits.len(),
                        };
                        (c.classes, crate::elem::widen(&c.logits), ok)
                    } else {
                        let c = crate::ce::Case::<f64>::decode(&mut b, dense);
                        let ok = match &c.targets {
                            crate::ce::Targets::Labels { values, .. } => {
                                values.len() * c.classes == c.logits.len()
                                    && values
                                        .iter()
                                        .all(|&l| l == -100 || (0..c.classes as i64).contains(&l))
                            }
                            crate::ce::Targets::Dense(t) => t.len() == c.logits.len(),
                        };
                        (c.classes, c.logits.clone(), ok)
                    };
                    assert!(targets_ok, "{target}/{name}");
                    if let Some(rest) = name.split_once("-c").map(|x| x.1) {
                        let (c, r) = rest.split_once("-r").unwrap();
                        assert_eq!(classes, c.parse::<usize>().unwrap(), "{target}/{name}");
                        assert_eq!(
                            logits.len(),
                            classes * r.parse::<usize>().unwrap(),
                            "{target}/{name}"
                        );
                    }
                    if name.contains("long-row") {
                        assert!(
                            classes == 40_000 && logits.len() == 40_000,
                            "{target}/{name}"
                        );
                    }
                    if name.contains("neg-inf-rows") {
                        assert!(
                            logits.iter().all(|&v| v == f64::NEG_INFINITY) && logits.len() == 51
                        );
                    }
                    if name.contains("big-logits") {
                        assert!(
                            logits.iter().all(|&v| (v - 3e38).abs() < 1e32) && logits.len() == 51
                        );
                    }
                    if name.contains("empty") {
                        assert!(logits.is_empty() && classes == 16);
                    }
                    if name.contains("masked") {
                        assert!(logits.iter().filter(|v| **v == f64::NEG_INFINITY).count() == 17);
                    }
                }
                "primitives" => {
                    let (classes, len) = if f32 {
                        let c = crate::prims::Case::<f32>::decode(&mut b);
                        (c.classes, c.logits.len())
                    } else {
                        let c = crate::prims::Case::<f64>::decode(&mut b);
                        (c.classes, c.logits.len())
                    };
                    if let Some(rest) = name.split_once("-c").map(|x| x.1) {
                        let (c, r) = rest.split_once("-r").unwrap();
                        assert_eq!(classes, c.parse::<usize>().unwrap(), "{target}/{name}");
                        assert_eq!(
                            len,
                            classes * r.parse::<usize>().unwrap(),
                            "{target}/{name}"
                        );
                    } else if name.contains("long-row") {
                        assert_eq!((classes, len), (40_000, 40_000));
                    } else {
                        assert_eq!((classes, len), (17, 51), "{target}/{name}");
                    }
                }
                "lse_merge" => {
                    let n: usize = name
                        .split("-n")
                        .nth(1)
                        .unwrap()
                        .split('-')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let (len, first) = if f32 {
                        let c = crate::prims::MergeCase::<f32>::decode(&mut b);
                        assert_eq!(c.cuts.len(), 2);
                        (c.values.len(), c.values.first().map(|v| f64::from(*v)))
                    } else {
                        let c = crate::prims::MergeCase::<f64>::decode(&mut b);
                        (c.values.len(), c.values.first().copied())
                    };
                    assert_eq!(len, n, "{target}/{name}");
                    if name.ends_with("neg-inf") {
                        assert!(first.is_none_or(|v| v == f64::NEG_INFINITY));
                    }
                }
                _ => unreachable!(),
            }
        }
    }

    /// Rewrites `corpus/<target>/seed-*` (run with `--ignored`).
    #[test]
    #[ignore]
    fn write_seed_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        for (target, name, bytes) in all() {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    /// Every seed runs through its target without a finding other than the
    /// known ones (run with `--ignored`: it exercises the crate, not the
    /// harness).
    #[test]
    #[ignore]
    fn seeds_pass() {
        for (target, name, bytes) in all() {
            let r = std::panic::catch_unwind(|| target_runs(target, &bytes));
            assert!(r.is_ok(), "{target}/{name}");
        }
    }
}
