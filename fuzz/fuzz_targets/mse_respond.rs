//! `mse_respond`: see `dlm_fuzz::mse_respond` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::mse_respond(data));
