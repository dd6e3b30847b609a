//! `dlm info x.torrent`: what the metainfo says (BEP 3, 12, 19, 27).

use std::path::Path;

use dlm_bittorrent::Metainfo;
use indicatif::HumanBytes;

use crate::exit_code;

/// Whether `path` looks like a `.torrent` file (by extension).
pub(crate) fn is_torrent(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("torrent"))
}

/// Prints the torrent at `path`, as text or JSON.
pub(crate) fn print(path: &Path, json: bool) -> u8 {
    let m = match Metainfo::from_file(path) {
        Ok(m) => m,
        Err(e) => return crate::fail(&e.into()),
    };
    if json {
        let files: Vec<_> = m
            .files
            .iter()
            .map(|f| serde_json::json!({"path": f.path, "length": f.length, "offset": f.offset}))
            .collect();
        let v = serde_json::json!({
            "name": m.name,
            "info_hash": m.info_hash.to_hex(),
            "piece_length": m.piece_length,
            "pieces": m.piece_count(),
            "total_length": m.total_length,
            "private": m.private,
            "files": files,
            "trackers": m.trackers,
            "url_list": m.url_list,
            "creation_date": m.creation_date,
            "created_by": m.created_by,
            "comment": m.comment,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return exit_code::SUCCESS;
    }
    println!("name:           {}", m.name);
    println!("info-hash:      {}", m.info_hash);
    println!(
        "pieces:         {} × {} ({})",
        m.piece_count(),
        m.piece_length,
        HumanBytes(m.piece_length)
    );
    println!(
        "total size:     {} bytes ({})",
        m.total_length,
        HumanBytes(m.total_length)
    );
    println!("private:        {}", if m.private { "yes" } else { "no" });
    for (i, tier) in m.trackers.iter().enumerate() {
        println!("tracker tier {i}: {}", tier.join(", "));
    }
    for u in &m.url_list {
        println!("web seed:       {u}");
    }
    if let Some(t) = m.creation_date.and_then(|s| u64::try_from(s).ok()) {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
        println!("created:        {}", httpdate::fmt_http_date(when));
    }
    if let Some(c) = &m.created_by {
        println!("created by:     {c}");
    }
    if let Some(c) = &m.comment {
        println!("comment:        {c}");
    }
    println!("files:          {}", m.files.len());
    // Numbered as --select-file counts them.
    for (i, f) in m.files.iter().enumerate() {
        println!("{:>6}  {:>14}  {}", i + 1, f.length, f.path.display());
    }
    exit_code::SUCCESS
}
