//! HTTP tracker replies on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dlm_bittorrent::tracker::parse_http_reply("fuzz", data);
    let _ = dlm_bittorrent::tracker::parse_compact_v4(data);
    let _ = dlm_bittorrent::tracker::parse_compact_v6(data);
});
