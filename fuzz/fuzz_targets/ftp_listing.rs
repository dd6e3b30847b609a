//! `ftp_listing`: see `dlm_fuzz::ftp_listing` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::ftp_listing(data));
