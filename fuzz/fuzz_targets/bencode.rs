//! `bencode`: see `dlm_fuzz::bencode` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::bencode(data));
