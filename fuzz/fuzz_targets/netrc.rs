//! `netrc`: see `dlm_fuzz::netrc` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::netrc(data));
