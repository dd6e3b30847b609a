//! `s3_error`: see `dlm_fuzz::s3_error` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::s3_error(data));
