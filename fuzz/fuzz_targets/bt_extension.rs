//! `bt_extension`: see `dlm_fuzz::bt_extension` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::bt_extension(data));
