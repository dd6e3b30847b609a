//! `dag_pb`: see `dlm_fuzz::dag_pb` for the input and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlm_fuzz::dag_pb(data));
