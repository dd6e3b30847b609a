//! `tracker_reply`: see `dlm_fuzz::tracker_reply` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::tracker_reply(data));
