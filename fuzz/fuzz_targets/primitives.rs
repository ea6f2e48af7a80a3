#![no_main]
//! Fuzz target `primitives`: see `loss_kernels_fuzz::targets::primitives` for what it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loss_kernels_fuzz::targets::primitives(data));
