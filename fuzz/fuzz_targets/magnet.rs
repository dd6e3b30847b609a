//! `magnet`: see `dlm_fuzz::magnet` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::magnet(data));
