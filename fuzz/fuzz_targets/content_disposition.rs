//! `content_disposition`: see `dlm_fuzz::content_disposition` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::content_disposition(data));
