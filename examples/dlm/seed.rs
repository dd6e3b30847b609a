//! `dlm seed x.torrent -d DIR`: re-check the files, then serve peers (the
//! seeder announces itself to the trackers) until a time or ratio limit, or
//! Ctrl-C.

use std::time::Duration;

use dlm_examples::protocols::Settings;
use dlm_examples::protocols::extras::TorrentSeeder;

use crate::args::SeedArgs;
use crate::exit_code;

pub(crate) async fn run(a: SeedArgs) -> u8 {
    let settings = match a
        .net
        .options()
        .map_err(crate::usage)
        .and_then(|o| Settings::from_options(&o).map_err(|e| crate::fail(&e)))
    {
        Ok(s) => s,
        Err(code) => return code,
    };
    let seeder = match TorrentSeeder::open(&a.torrent, a.dir.clone(), a.listen, &settings).await {
        Ok(s) => s,
        Err(e) => return crate::fail(&e),
    };
    println!("listening on {}", seeder.local_addr());
    eprintln!("dlm: {}", seeder.summary());
    // Notices (a port mapped on the NAT gateway) go beside the listening address, on stdout.
    let notices = seeder.notices();
    tokio::spawn(async move {
        futures::pin_mut!(notices);
        while let Some(line) = futures::StreamExt::next(&mut notices).await {
            println!("{line}");
        }
    });
    let ratio_bytes = a
        .seed_ratio
        .map(|r| (r * seeder.total_bytes() as f64) as u64);
    let until = until_done(a.seed_time, ratio_bytes, || seeder.uploaded());
    if let Err(e) = seeder.serve(until).await {
        return crate::fail(&e);
    }
    eprintln!("dlm: uploaded {} bytes", seeder.uploaded());
    exit_code::SUCCESS
}

/// Resolves when seeding should stop: after `seed_time` seconds, once
/// `uploaded()` reaches `ratio_bytes`, or on Ctrl-C/SIGTERM, whichever
/// comes first.
async fn until_done(seed_time: Option<u64>, ratio_bytes: Option<u64>, uploaded: impl Fn() -> u64) {
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
