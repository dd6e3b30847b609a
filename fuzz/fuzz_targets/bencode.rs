//! The bencode scanner on arbitrary bytes: never panics, never overflows.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dlm_bittorrent::bencode::validate(data);
    let _ = dlm_bittorrent::bencode::dict_value(data, b"info");
});
