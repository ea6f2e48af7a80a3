#![no_main]
//! Fuzz target `bce`: see `loss_kernels_fuzz::targets::bce` for what it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loss_kernels_fuzz::targets::bce(data));
