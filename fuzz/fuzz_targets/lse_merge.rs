#![no_main]
//! Fuzz target `lse_merge`: see `loss_kernels_fuzz::targets::lse_merge` for what it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loss_kernels_fuzz::targets::lse_merge(data));
