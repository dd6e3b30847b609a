//! `dlmd` runs every protocol through the one registry: a torrent uploaded as
//! bytes downloads from a libtorrent seeder, then seeds to an aria2c leecher
//! until its share ratio; a torrent paused, resumed and `kill -9`ed resumes
//! without fetching its verified pieces again (counted by the seeder); a file
//! selection changed while running; directory jobs for FTP (vsftpd), an S3
//! prefix (s3s-fs) and an IPFS directory (Helia) with per-file state.
//!
//! No assertion is about timing; the timeouts only bound a hang.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use dlm_tests::bt::{Aria2Leecher, Aria2Options, LibtorrentOptions, LibtorrentPeer, TorrentSpec};
use dlm_tests::bt::{NO_TRACKER, Tracker};
use dlm_tests::{
    AddSpec, Dlmd, DlmdOptions, HeliaConfig, HeliaNode, S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY,
    S3Server, StoredChecksum, Vsftpd, free_port, sha256_file, write_random_file,
};
use serde_json::{Value, json};

const TEST_TIMEOUT: Duration = Duration::from_secs(240);
const JOB_TIMEOUT: Duration = Duration::from_secs(150);
const MIB: u64 = 1 << 20;

async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    dlm_tests::runtime::bounded(TEST_TIMEOUT, fut).await
}

fn state(job: &Value) -> &str {
    job["state"].as_str().unwrap_or_default()
}

fn id(job: &Value) -> i64 {
    job["id"].as_i64().expect("job id")
}

fn upload(torrent: &Path) -> Value {
    json!({
        "name": torrent.file_name().unwrap().to_string_lossy(),
        "base64": base64::engine::general_purpose::STANDARD.encode(std::fs::read(torrent).unwrap()),
    })
}

/// dlmd with protocol settings for this machine: no netrc, no proxies from the environment.
fn dlmd_with(settings: &[String]) -> Dlmd {
    let mut args = vec![
        "-O".to_string(),
        "http.netrc=off".to_string(),
        "-O".to_string(),
        "http.proxy_from_env=false".to_string(),
        "-O".to_string(),
        "ftp.netrc=off".to_string(),
    ];
    for s in settings {
        args.push("-O".into());
        args.push(s.clone());
    }
    Dlmd::start(DlmdOptions {
        args,
        ..DlmdOptions::default()
    })
}

/// A libtorrent seeder of `fx` limited to 2 MiB/s (so a download lasts a few
/// seconds), and a dlmd that knows it by address and does not listen.
fn slow_seeder_and_dlmd(fx: &dlm_tests::TorrentFixture) -> Option<(LibtorrentPeer, Dlmd)> {
    let seeder = LibtorrentPeer::start(LibtorrentOptions::seeding(fx).with_upload_limit(2 * MIB))?;
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let dlmd = dlmd_with(&[
        format!("bittorrent.peers=[\"{peer}\"]"),
        "bittorrent.listen_port=null".into(),
    ]);
    Some((seeder, dlmd))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_torrent_downloads_then_seeds_to_aria2c_until_its_ratio() {
    let Some(tracker) = Tracker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let announce = tracker.announce_http();
    let Some(fx) = TorrentSpec::single_file("seeded.bin", 6 * MIB)
        .with_tracker(&announce)
        .with_piece_len_log2(18)
        .with_seed(21)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    tracker.allow(&fx.info_hash_hex());
    let Some(mut seeder) = LibtorrentPeer::start(LibtorrentOptions::default().with_seed(&fx))
    else {
        return;
    };
    assert!(
        tracker.wait_for_seeders(&fx.info_hash, 1, Duration::from_secs(20)),
        "the seeder announced"
    );
    let port = free_port();
    let dlmd = dlmd_with(&[format!("bittorrent.listen_port={port}")]);
    bounded(async {
        let job = dlmd
            .add_job(&json!({"upload": upload(&fx.torrent_path), "seed_ratio": 1.0}))
            .await;
        let seeding = dlmd
            .wait_for_job(id(&job), JOB_TIMEOUT, |j| state(j) == "seeding")
            .await;
        assert_eq!(seeding["kind"], "file", "{seeding}");
        fx.check_download(dlmd.download_dir()).unwrap();
        // Only dlm can serve the leecher now.
        seeder.stop();
        let leech = dir.path().join("leech");
        let Some(mut aria2) =
            Aria2Leecher::start(&fx.torrent_path, &leech, &Aria2Options::default())
        else {
            return;
        };
        let status = tokio::task::spawn_blocking(move || {
            let s = aria2.wait(JOB_TIMEOUT);
            (s, aria2.log())
        })
        .await
        .unwrap();
        assert!(
            status.0.is_some_and(|s| s.success()),
            "aria2c finished from dlmd: {}",
            status.1
        );
        fx.check_download(&leech).unwrap();
        let done = dlmd
            .wait_for_job(id(&job), JOB_TIMEOUT, |j| state(j) == "completed")
            .await;
        assert!(
            done["uploaded_bytes"].as_u64().unwrap() >= fx.total_len,
            "seeded until the ratio: {done}"
        );
        assert!(done["ratio"].as_f64().unwrap() >= 1.0, "{done}");
    })
    .await;
}

/// A magnet job: the metadata comes from a libtorrent seeder found through
/// the link's tracker, the download completes, and dlmd then seeds, metadata
/// included, to an aria2c that has nothing but the same magnet link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_job_completes_and_seeds_to_an_aria2c_magnet_leecher() {
    let Some(tracker) = Tracker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("magnet.bin", 4 * MIB)
        .with_tracker(&tracker.announce_http())
        .with_piece_len_log2(16)
        .with_seed(23)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    tracker.allow(&fx.info_hash_hex());
    let Some(mut seeder) = LibtorrentPeer::start(LibtorrentOptions::default().with_seed(&fx))
    else {
        return;
    };
    assert!(
        tracker.wait_for_seeders(&fx.info_hash, 1, Duration::from_secs(20)),
        "the seeder announced"
    );
    let port = free_port();
    let dlmd = dlmd_with(&[format!("bittorrent.listen_port={port}")]);
    bounded(async {
        let job = dlmd
            .add_job(&json!({"url": fx.magnet(), "seed_ratio": 1.0}))
            .await;
        dlmd.wait_for_job(id(&job), JOB_TIMEOUT, |j| state(j) == "seeding")
            .await;
        fx.check_download(dlmd.download_dir()).unwrap();
        seeder.stop();
        let leech = dir.path().join("leech");
        let magnet = PathBuf::from(fx.magnet());
        let Some(mut aria2) = Aria2Leecher::start(&magnet, &leech, &Aria2Options::default()) else {
            return;
        };
        let status = tokio::task::spawn_blocking(move || {
            let s = aria2.wait(JOB_TIMEOUT);
            (s, aria2.log())
        })
        .await
        .unwrap();
        assert!(
            status.0.is_some_and(|s| s.success()),
            "aria2c got the metadata and the data from dlmd: {}",
            status.1
        );
        fx.check_download(&leech).unwrap();
        dlmd.wait_for_job(id(&job), JOB_TIMEOUT, |j| state(j) == "completed")
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_job_paused_resumed_and_killed_refetches_no_verified_piece() {
    let dir = tempfile::tempdir().unwrap();
    let size = 12 * MIB;
    let Some(fx) = TorrentSpec::single_file("slow.bin", size)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(18)
        .with_seed(22)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some((seeder, mut dlmd)) = slow_seeder_and_dlmd(&fx) else {
        return;
    };
    // A .torrent the daemon may read: inside its download directory.
    let torrent = dlmd.download_dir().join("slow.torrent");
    std::fs::copy(&fx.torrent_path, &torrent).unwrap();
    let out = dlmd.download_dir().join("slow.bin");
    bounded(async {
        let job = dlmd
            .add_job(&json!({"url": torrent.to_str().unwrap()}))
            .await;
        let j = id(&job);
        dlmd.wait_for_job(j, JOB_TIMEOUT, |v| {
            v["downloaded_bytes"].as_u64().unwrap_or(0) >= size / 4
        })
        .await;
        let (status, paused) = dlmd.api("POST", &format!("/v1/jobs/{j}/pause"), None).await;
        assert_eq!(status, 200, "{paused}");
        assert_eq!(state(&paused), "paused", "{paused}");
        let (status, _) = dlmd
            .api("POST", &format!("/v1/jobs/{j}/resume"), None)
            .await;
        assert_eq!(status, 200);
        dlmd.wait_for_job(j, JOB_TIMEOUT, |v| {
            state(v) == "running" && v["downloaded_bytes"].as_u64().unwrap_or(0) >= size / 2
        })
        .await;
    })
    .await;
    dlmd.kill9();
    dlmd.restart();
    bounded(async {
        let done = dlmd
            .wait_for_job(1, JOB_TIMEOUT, |v| state(v) == "completed")
            .await;
        assert_eq!(sha256_file(&out).unwrap(), fx.files[0].sha256, "{done}");
    })
    .await;
    // Pieces in flight at the pause and the kill may come again, nothing else.
    let sent = seeder
        .torrent(&fx.info_hash)
        .map_or(0, |t| t.uploaded_bytes);
    assert!(
        sent <= size + 4 * MIB,
        "the seeder sent {sent} bytes for {size}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_selection_changed_while_running_keeps_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::multi_file(
        "sel",
        &[
            ("a.bin", 3 * MIB),
            ("b.bin", 2 * MIB + 5),
            ("c.bin", 3 * MIB + 1),
        ],
    )
    .with_tracker(NO_TRACKER)
    .with_piece_len_log2(17)
    .with_seed(23)
    .create(&dir.path().join("seed")) else {
        return;
    };
    let Some((_seeder, dlmd)) = slow_seeder_and_dlmd(&fx) else {
        return;
    };
    bounded(async {
        let job = dlmd
            .add_job(&json!({"upload": upload(&fx.torrent_path), "files": [0]}))
            .await;
        let j = id(&job);
        let running = dlmd
            .wait_for_job(j, JOB_TIMEOUT, |v| {
                v["downloaded_bytes"].as_u64().unwrap_or(0) > 0 && v["files"][2].is_object()
            })
            .await;
        assert_eq!(running["files"][2]["wanted"], false, "{running}");
        let (status, patched) = dlmd
            .api(
                "PATCH",
                &format!("/v1/jobs/{j}"),
                Some(&json!({"files": [0, 2]})),
            )
            .await;
        assert_eq!(status, 200, "{patched}");
        let done = dlmd
            .wait_for_job(j, JOB_TIMEOUT, |v| state(v) == "completed")
            .await;
        for i in [0, 2] {
            let f = &fx.files[i];
            let got = fx.file_path_in(dlmd.download_dir(), f);
            assert_eq!(sha256_file(&got).unwrap(), f.sha256, "{}", f.path);
            assert_eq!(done["files"][i]["state"], "completed", "{done}");
        }
        assert!(
            !fx.file_path_in(dlmd.download_dir(), &fx.files[1]).exists(),
            "b.bin was never selected"
        );
    })
    .await;
}

/// Waits for a tree job and checks each file it lists as completed.
async fn tree_job(dlmd: &Dlmd, url: &str, files: &[(String, String)]) -> Value {
    let job = dlmd.add_job(&json!({"url": url, "connections": 4})).await;
    let done = dlmd
        .wait_for_job(id(&job), JOB_TIMEOUT, |v| state(v) == "completed")
        .await;
    assert_eq!(done["kind"], "tree", "{done}");
    let listed = done["files"].as_array().unwrap();
    assert_eq!(listed.len(), files.len(), "{done}");
    for f in listed {
        assert_eq!(f["state"], "completed", "{done}");
    }
    for (rel, sha) in files {
        let path = dlmd
            .download_dir()
            .join(done["path"].as_str().unwrap())
            .join(rel);
        assert_eq!(&sha256_file(&path).unwrap(), sha, "{}", path.display());
    }
    done
}

fn tree_files(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, rel) in ["a.bin", "sub/b.bin", "sub/deeper/c.txt"]
        .iter()
        .enumerate()
    {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let sha = write_random_file(
            path.parent().unwrap(),
            &name,
            MIB + i as u64 * 777,
            30 + i as u64,
        )
        .unwrap();
        out.push((rel.to_string(), sha));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_jobs_for_ftp_s3_and_ipfs_complete_with_per_file_state() {
    let dlmd = dlmd_with(&[]);
    if let Some(ftp) = Vsftpd::start() {
        let files = tree_files(&ftp.root().join("tree"));
        bounded(tree_job(&dlmd, &ftp.url("tree/"), &files)).await;
    }
    if let Some(s3) = S3Server::start() {
        s3.create_bucket("jobs");
        let src = tempfile::tempdir().unwrap();
        let files = tree_files(src.path());
        for (rel, _) in &files {
            s3.put_file(
                "jobs",
                &format!("prefix/{rel}"),
                &src.path().join(rel),
                StoredChecksum::None,
            );
        }
        let dlmd = dlmd_with(&[
            "s3.use_environment=false".into(),
            format!("s3.region={S3_REGION}"),
            format!("s3.endpoint_url={}", s3.endpoint()),
            format!(
                "s3.credentials={{\"access_key_id\":\"{S3_ACCESS_KEY}\",\"secret_access_key\":\"{S3_SECRET_KEY}\"}}"
            ),
        ]);
        bounded(tree_job(&dlmd, &s3.s3_url("jobs", "prefix/"), &files)).await;
    }
    let data = tempfile::tempdir().unwrap();
    let files = tree_files(&data.path().join("dir"));
    let config = HeliaConfig::default()
        .with_gateway()
        .with_add(AddSpec::new(data.path().join("dir")));
    if let Some(node) = HeliaNode::start(&config) {
        let dlmd = dlmd_with(&[format!("ipfs.gateways={}", node.gateway(0))]);
        let done = bounded(tree_job(&dlmd, &format!("ipfs://{}", node.cid(0)), &files)).await;
        assert_eq!(done["path"], node.cid(0), "{done}");
    }
}
