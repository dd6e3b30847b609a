//! `dlm get` for torrents: the `.torrent` from a path or an `http(s)://`
//! URL, and seeding after the download when `--seed-time`/`--seed-ratio`
//! ask for it.

use std::path::Path;
use std::sync::Arc;

use dlm_bittorrent::{Metainfo, TorrentSource, fetch_metainfo, is_torrent_url};

use crate::args::GetArgs;

/// The torrent `a.url` names, ready to download; `Ok(None)` when it names
/// something else; `Err` with the exit code after printing why.
pub(crate) async fn open(a: &GetArgs) -> Result<Option<Arc<TorrentSource>>, u8> {
    let metainfo = if let Some(url) = is_torrent_url(&a.url) {
        let client = crate::registry::http_config(&a.net)
            .map_err(crate::usage)
            .and_then(|c| dlm_http::HttpClient::new(c).map_err(|e| crate::fail(&e.into())))?;
        fetch_metainfo(&client, &url).await
    } else if crate::torrent_info::is_torrent(Path::new(&a.url)) {
        Metainfo::from_file(Path::new(&a.url))
    } else {
        return Ok(None);
    };
    let metainfo = metainfo.map_err(|e| crate::fail(&e.into()))?;
    let config = crate::registry::torrent_config(&a.net).map_err(crate::usage)?;
    Ok(Some(Arc::new(TorrentSource::new(metainfo, config))))
}

/// After a completed download: seeds while `--seed-time`/`--seed-ratio`
/// say so, then leaves the swarm (announcing `stopped`).
pub(crate) async fn after(torrent: &TorrentSource, a: &GetArgs, quiet: bool) {
    if a.seed_time.is_some() || a.seed_ratio.is_some() {
        if !quiet {
            eprintln!(
                "dlm: seeding on port {} (Ctrl-C to stop)",
                torrent.listen_port()
            );
        }
        let total = torrent.metainfo().total_length;
        crate::seed::until_done(a.seed_time, a.seed_ratio, total, || torrent.uploaded()).await;
    }
    torrent.shutdown().await;
    if !quiet {
        eprintln!("dlm: uploaded {} bytes", torrent.uploaded());
    }
}

/// For the progress bar: `, N peers, ↑ RATE/s` for a torrent (rate over
/// the last refresh), nothing otherwise.
pub(crate) fn swarm_line(torrent: Option<Arc<TorrentSource>>) -> impl FnMut() -> String + Send {
    let mut last = (std::time::Instant::now(), 0u64);
    move || {
        let Some(t) = &torrent else {
            return String::new();
        };
        let up = t.uploaded();
        let now = std::time::Instant::now();
        let secs = now.duration_since(last.0).as_secs_f64().max(0.001);
        let rate = (up.saturating_sub(last.1) as f64 / secs) as u64;
        last = (now, up);
        format!(
            ", {} peers, ↑ {}/s",
            t.peers().len(),
            indicatif::HumanBytes(rate)
        )
    }
}
