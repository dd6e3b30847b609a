//! `s3_list`: see `dlm_fuzz::s3_list` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::s3_list(data));
