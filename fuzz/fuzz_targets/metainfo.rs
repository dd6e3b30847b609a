//! `.torrent` parsing on arbitrary bytes: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = dlm_bittorrent::Metainfo::from_bytes(data) {
        // Whatever parses must describe a consistent byte space.
        let sum: u64 = m.files.iter().map(|f| f.length).sum();
        assert_eq!(sum, m.total_length);
        assert_eq!(m.piece_count() as u64, m.total_length.div_ceil(m.piece_length));
        for f in &m.files {
            assert!(dlm_core_paths_stay_inside(&f.path), "{:?}", f.path);
        }
    }
});

fn dlm_core_paths_stay_inside(p: &std::path::Path) -> bool {
    p.components().all(|c| matches!(c, std::path::Component::Normal(_)))
}
