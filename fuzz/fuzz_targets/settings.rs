//! `settings`: see `dlm_fuzz::settings` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::settings(data));
