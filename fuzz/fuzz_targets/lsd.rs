//! `lsd`: see `dlm_fuzz::lsd` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::lsd(data));
