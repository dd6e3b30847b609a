//! `content_range`: see `dlm_fuzz::content_range` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::content_range(data));
