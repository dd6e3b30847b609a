//! `bitswap`: see `dlm_fuzz::bitswap` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::bitswap(data));
