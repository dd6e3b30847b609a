//! `control_file`: see `dlm_fuzz::control_file` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::control_file(data));
