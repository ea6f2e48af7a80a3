#![no_main]
//! Fuzz target `squared_error`: see `loss_kernels_fuzz::targets::squared_error` for what it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loss_kernels_fuzz::targets::squared_error(data));
