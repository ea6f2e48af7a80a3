//! Differential fuzzing harness of `loss-kernels`.
//!
//! Each fuzz target (`fuzz_targets/*.rs`) is one line calling a function of
//! [`targets`]. The harness decodes the fuzzer's bytes into a case (shapes,
//! options, labels, a forced backend, `f32` or `f64` values with arbitrary
//! bit patterns; see [`gen`]), calls every method of the family, and
//! asserts ([`check`], [`tol`]):
//!
//! - no panic (a panic is what libFuzzer reports; ASan reports memory
//!   errors, libFuzzer's `-timeout` hangs);
//! - `Err` exactly when the `f64` oracle (`loss_kernels::reference`) rejects
//!   the input, or the forced backend is unavailable, or the output buffer
//!   has the wrong length, and then one of those errors;
//! - on `Ok`, agreement with the oracle within the tolerance of [`tol`], and
//!   the same NaN / ±inf class;
//! - inputs unchanged; nothing written around the output buffers (canaries);
//!   output buffers untouched by an error (except BCE's in-pass
//!   probability check, documented as leaving them unspecified).
//!
//! The decoder reads no length prefix: a case is a pure function of the
//! bytes, and bytes beyond the input are generated (see [`bytes`]).

pub mod bytes;
pub mod ce;
pub mod check;
pub mod elem;
pub mod elementwise;
pub mod gen;
pub mod known;
pub mod prims;
pub mod seeds;
pub mod tol;

/// One entry point per fuzz target.
pub mod targets {
    use crate::elementwise::{self, Family};

    /// `SquaredError`: `loss`, `loss_grad`, `per_element`, `partial`.
    pub fn squared_error(data: &[u8]) {
        elementwise::fuzz(Family::SquaredError, data);
    }

    /// `BinaryCrossEntropy` (probabilities, with weights).
    pub fn bce(data: &[u8]) {
        elementwise::fuzz(Family::Bce, data);
    }

    /// `BinaryCrossEntropyWithLogits` (with weights and `pos_weight`).
    pub fn bce_logits(data: &[u8]) {
        elementwise::fuzz(Family::BceLogits, data);
    }

    /// `CrossEntropy` with integer labels of every label type.
    pub fn ce_labels(data: &[u8]) {
        crate::ce::fuzz(data, false);
    }

    /// `CrossEntropy` with dense probability targets (`*_dense`).
    pub fn ce_dense(data: &[u8]) {
        crate::ce::fuzz(data, true);
    }

    /// `Softmax::{log_sum_exp, log_softmax, softmax}` and the free functions.
    pub fn primitives(data: &[u8]) {
        crate::prims::fuzz_primitives(data);
    }

    /// `LogSumExp::{of, merge, value, EMPTY}`.
    pub fn lse_merge(data: &[u8]) {
        crate::prims::fuzz_merge(data);
    }
}

#[cfg(test)]
mod replay {
    /// Replays every file of a directory through one target without
    /// libFuzzer and prints one line per file, `ok` or the first line of the
    /// failed check: `FUZZ_TARGET=ce_labels FUZZ_DIR=findings/ce_labels
    /// cargo test --release -- --ignored --nocapture replay_dir`
    /// (`FUZZ_VERBOSE=1` prints each failure's whole case). Fails if any file
    /// fails.
    #[test]
    #[ignore]
    fn replay_dir() {
        let (Ok(target), Ok(dir)) = (std::env::var("FUZZ_TARGET"), std::env::var("FUZZ_DIR"))
        else {
            return;
        };
        let run: fn(&[u8]) = match target.as_str() {
            "squared_error" => super::targets::squared_error,
            "bce" => super::targets::bce,
            "bce_logits" => super::targets::bce_logits,
            "ce_labels" => super::targets::ce_labels,
            "ce_dense" => super::targets::ce_dense,
            "primitives" => super::targets::primitives,
            "lse_merge" => super::targets::lse_merge,
            other => panic!("unknown target {other}"),
        };
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("FUZZ_DIR")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
            .collect();
        files.sort();
        std::panic::set_hook(Box::new(|_| {}));
        let mut failed = 0;
        for f in &files {
            let data = std::fs::read(f).expect("read input");
            let name = f.file_name().unwrap_or_default().to_string_lossy();
            match std::panic::catch_unwind(|| run(&data)) {
                Ok(()) => println!("ok   {name}"),
                Err(e) => {
                    failed += 1;
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    if std::env::var("FUZZ_VERBOSE").is_ok_and(|v| v == "1") {
                        println!("FAIL {name}: {msg}");
                    } else {
                        println!("FAIL {name}: {}", msg.lines().next().unwrap_or(""));
                    }
                }
            }
        }
        let _ = std::panic::take_hook();
        println!("{target}: {} files, {failed} failed", files.len());
        assert_eq!(failed, 0, "{failed} of {} inputs failed", files.len());
    }
}
