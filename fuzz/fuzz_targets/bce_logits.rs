#![no_main]
//! Fuzz target `bce_logits`: see `loss_kernels_fuzz::targets::bce_logits` for what it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loss_kernels_fuzz::targets::bce_logits(data));
