//! `dlm seed x.torrent -d DIR`: re-check the files, then serve peers (the
//! seeder announces itself to the trackers) until a time or ratio limit, or
//! Ctrl-C.

use std::time::Duration;

use dlm_bittorrent::Metainfo;
use dlm_bittorrent::seed::{Seeder, listen};

use crate::args::SeedArgs;
use crate::exit_code;

pub(crate) async fn run(a: SeedArgs) -> u8 {
    let metainfo = match Metainfo::from_file(&a.torrent) {
        Ok(m) => m,
        Err(e) => return crate::fail(&e.into()),
    };
    let total = metainfo.total_length;
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
    let until = until_done(a.seed_time, a.seed_ratio, total, || seeder.uploaded());
    if let Err(e) = seeder.serve(listener, until).await {
        return crate::fail(&e.into());
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
