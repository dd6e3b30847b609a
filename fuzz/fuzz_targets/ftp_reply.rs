//! `ftp_reply`: see `dlm_fuzz::ftp_reply` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::ftp_reply(data));
