#![no_main]
//! Fuzz target `ce_dense`: see `loss_kernels_fuzz::targets::ce_dense` for what it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loss_kernels_fuzz::targets::ce_dense(data));
