#![no_main]
//! Fuzz target `ce_labels`: see `loss_kernels_fuzz::targets::ce_labels` for what it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loss_kernels_fuzz::targets::ce_labels(data));
