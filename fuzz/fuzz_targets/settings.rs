//! `SECTION.KEY=VALUE` settings (a `dlmd` job's `options`, arrive over the
//! network) applied to a protocol config: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut options = dlm_core::Options::new();
    for line in text.lines().take(64) {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        options = options.with(k, v);
    }
    let base = dlm_bittorrent::TorrentConfig::default();
    if let Ok(c) = dlm_core::config::apply_options(&base, "bittorrent", &options) {
        // Whatever applies must serialise again.
        let _ = dlm_core::config::keys(&c, "bittorrent");
    }
});
