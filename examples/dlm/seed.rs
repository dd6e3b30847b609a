//! `dlm seed x.torrent -d DIR`: re-check the files, announce as a seeder,
//! and serve peers until a time or ratio limit, or Ctrl-C.

use std::time::Duration;

use dlm_bittorrent::Metainfo;
use dlm_bittorrent::seed::{Seeder, listen};
use dlm_bittorrent::tracker::{AnnounceEvent, AnnounceRequest, PeerId, TrackerTiers};

use crate::args::SeedArgs;
use crate::exit_code;

pub(crate) async fn run(a: SeedArgs) -> u8 {
    let metainfo = match Metainfo::from_file(&a.torrent) {
        Ok(m) => m,
        Err(e) => return crate::fail(&e.into()),
    };
    let total = metainfo.total_length;
    let trackers = metainfo.trackers.clone();
    let info_hash = metainfo.info_hash;
    let pieces = metainfo.piece_count();
    let config = match crate::registry::torrent_config(&a.net) {
        Ok(c) => c,
        Err(e) => return crate::usage(e),
    };
    let seeder = match Seeder::open(metainfo, a.dir.clone(), config).await {
        Ok(s) => s,
        Err(e) => return crate::fail(&e.into()),
    };
    let listener = match listen(a.listen).await {
        Ok(l) => l,
        Err(e) => return crate::fail(&e.into()),
    };
    let bound = listener.local_addr().map_or(a.listen, |b| b);
    println!("listening on {bound}");
    eprintln!(
        "dlm: seeding {} of {pieces} pieces of {info_hash}",
        seeder.pieces_verified()
    );
    // Tell the trackers (BEP 3): a seeder has nothing left.
    let client = crate::registry::http_config(&a.net)
        .ok()
        .and_then(|c| dlm_http::HttpClient::new(c).ok());
    let mut tiers = client.map(|c| TrackerTiers::new(&trackers, &c));
    let peer_id = PeerId::random();
    let request = |event| AnnounceRequest {
        info_hash,
        peer_id,
        port: bound.port(),
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: Some(event),
        num_want: Some(0),
        key: 0,
    };
    if let Some(t) = tiers.as_mut().filter(|t| !t.is_empty())
        && let Err(e) = t.announce(&request(AnnounceEvent::Completed)).await
    {
        eprintln!("dlm: announce: {e}");
    }
    let until = until_done(a.seed_time, a.seed_ratio, total, || seeder.uploaded());
    seeder.serve(listener, until).await;
    if let Some(t) = tiers.as_mut().filter(|t| !t.is_empty()) {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            t.announce(&request(AnnounceEvent::Stopped)),
        )
        .await;
    }
    eprintln!("dlm: uploaded {} bytes", seeder.uploaded());
    exit_code::SUCCESS
}

/// Resolves when seeding should stop: after `seed_time` seconds, once
/// `uploaded()` reaches `seed_ratio` × `total` bytes, or on Ctrl-C/SIGTERM,
/// whichever comes first.
pub(crate) async fn until_done(
    seed_time: Option<u64>,
    seed_ratio: Option<f64>,
    total: u64,
    uploaded: impl Fn() -> u64,
) {
    let ratio_bytes = seed_ratio.map(|r| (r * total as f64) as u64);
    let deadline = async {
        match seed_time {
            Some(t) => tokio::time::sleep(Duration::from_secs(t)).await,
            None => std::future::pending().await,
        }
    };
    let ratio = async {
        match ratio_bytes {
            Some(limit) => {
                while uploaded() < limit {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = deadline => {}
        () = ratio => {}
        () = crate::wait_for_signal() => {}
    }
}
