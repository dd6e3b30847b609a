//! BitTorrent v2 and hybrid torrents (BEP 52, with BEP 47 padding files):
//! `.torrent` files made by libtorrent's own creator, downloaded by the
//! `dlm` CLI from a libtorrent seeder given with `--peer`, compared byte
//! for byte, with no padding file created; and dlm's piece checks (SHA-256
//! Merkle roots) against libtorrent's hashes.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dlm_bittorrent::{MetaVersion, Metainfo};
use dlm_tests::bt::{
    LibtorrentOptions, LibtorrentPeer, LtTorrentFormat, NO_TRACKER, TorrentFixture, TorrentSpec,
    info_hash_v2_of,
};
use dlm_tests::dlm_command;

const TEST_TIMEOUT: Duration = Duration::from_secs(60);

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

/// Files of varied sizes at 32 KiB pieces: several pieces with a short
/// last one, smaller than a block, exactly one piece, less than a piece,
/// and one with a full last piece.
const FILES: &[(&str, u64)] = &[
    ("a.bin", 100_000),
    ("b.txt", 5_000),
    ("one-piece.bin", 32_768),
    ("sub/c.bin", 40_000),
    ("sub/deeper/d.bin", 196_608),
];

/// Makes the fixture with libtorrent, or `None` (skipped) without it.
fn fixture(dir: &Path, spec: TorrentSpec, format: LtTorrentFormat) -> Option<TorrentFixture> {
    spec.with_tracker(NO_TRACKER)
        .with_piece_len_log2(15)
        .create_with_libtorrent(&dir.join("seed"), format)
}

/// `dlm get TORRENT --peer SEEDER -d OUT`, then checks every file byte for
/// byte and that nothing else (no `.pad` directory, no leftover resume or
/// parts file) is in OUT.
fn download_and_check(fx: &TorrentFixture, out: &Path) {
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(fx)) else {
        return;
    };
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    let output = run(async {
        tokio::process::Command::from(dlm_command())
            .args([
                "get",
                &torrent,
                "--peer",
                &peer,
                "-d",
                out.to_str().unwrap(),
            ])
            .args(["--no-netrc", "--quiet"])
            .kill_on_drop(true)
            .output()
            .await
            .unwrap()
    });
    assert!(
        output.status.success(),
        "dlm get: {}\nseeder: {}",
        String::from_utf8_lossy(&output.stderr),
        seeder.log()
    );
    fx.check_download(out).unwrap();
    let mut found = Vec::new();
    list(out, out, &mut found);
    found.sort();
    let mut want: Vec<String> = fx
        .files
        .iter()
        .map(|f| {
            fx.file_path_in(out, f)
                .strip_prefix(out)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    want.sort();
    assert_eq!(found, want, "exactly the payload's files, no padding file");
}

/// Every file below `dir`, relative to `root`.
fn list(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            list(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

#[test]
fn a_v2_only_single_file_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TorrentSpec::single_file("v2-single.bin", 300_001);
    let Some(fx) = fixture(dir.path(), spec, LtTorrentFormat::V2Only) else {
        return;
    };
    let m = Metainfo::from_file(&fx.torrent_path).unwrap();
    assert_eq!(m.meta_version, MetaVersion::V2);
    assert_eq!(m.info_hash.0, fx.info_hash, "the truncated SHA-256");
    download_and_check(&fx, &dir.path().join("out"));
}

#[test]
fn a_v2_only_multi_file_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TorrentSpec::multi_file("v2-tree", FILES);
    let Some(fx) = fixture(dir.path(), spec, LtTorrentFormat::V2Only) else {
        return;
    };
    download_and_check(&fx, &dir.path().join("out"));
}

#[test]
fn a_hybrid_multi_file_torrent_with_padding_files() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TorrentSpec::multi_file("hybrid-tree", FILES).with_seed(7);
    let Some(fx) = fixture(dir.path(), spec, LtTorrentFormat::Hybrid) else {
        return;
    };
    let m = Metainfo::from_file(&fx.torrent_path).unwrap();
    assert_eq!(m.meta_version, MetaVersion::Hybrid);
    assert_eq!(m.info_hash.0, fx.info_hash, "the v1 SHA-1");
    let bytes = std::fs::read(&fx.torrent_path).unwrap();
    assert_eq!(m.info_hash_v2, Some(info_hash_v2_of(&bytes).unwrap()));
    assert_eq!(m.files.len(), FILES.len(), "padding files are not files");
    // `dlm info` shows both info-hashes and the meta version.
    let info = dlm_command()
        .arg("info")
        .arg(&fx.torrent_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(text.contains(&hex::encode(fx.info_hash)), "{text}");
    assert!(
        text.contains(&hex::encode(m.info_hash_v2.unwrap())),
        "{text}"
    );
    assert!(text.contains("hybrid"), "{text}");
    assert!(!text.contains(".pad"), "{text}");
    download_and_check(&fx, &dir.path().join("out"));
}

/// dlm's piece checks against libtorrent's hashes: every piece of the
/// payload (files padded with zeros to piece boundaries) matches, and one
/// flipped byte in the file's data or in its padding fails it.
#[test]
fn merkle_piece_checks_agree_with_libtorrent_and_catch_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    for format in [LtTorrentFormat::V2Only, LtTorrentFormat::Hybrid] {
        let sub = dir.path().join(format!("{format:?}"));
        let spec = TorrentSpec::multi_file("check", FILES).with_seed(3);
        let Some(fx) = fixture(&sub, spec, format) else {
            return;
        };
        let m = Metainfo::from_file(&fx.torrent_path).unwrap();
        let mut space = vec![0u8; m.total_length as usize];
        for f in &m.files {
            let data = std::fs::read(fx.data_dir.join(&f.path)).unwrap();
            space[f.offset as usize..(f.offset + f.length) as usize].copy_from_slice(&data);
        }
        run(async {
            for i in 0..m.piece_count() {
                let r = m.piece_range(i);
                let piece = bytes::Bytes::copy_from_slice(&space[r.start as usize..r.end as usize]);
                assert!(m.piece_matches(i, &piece).await, "{format:?} piece {i}");
                let mut bad = piece.to_vec();
                bad[piece.len() / 2] ^= 1;
                assert!(
                    !m.piece_matches(i, &bytes::Bytes::from(bad)).await,
                    "{format:?} piece {i} with a flipped byte"
                );
                let mut bad_pad = piece.to_vec();
                *bad_pad.last_mut().unwrap() ^= 1;
                assert!(!m.piece_matches(i, &bytes::Bytes::from(bad_pad)).await);
            }
        });
    }
}

/// `dlm seed` serves a v2-only and a hybrid torrent (padding read back as
/// zeros, never from a file) to a libtorrent leecher that connects to it.
#[test]
fn libtorrent_downloads_v2_and_hybrid_torrents_from_dlm_seed() {
    let dir = tempfile::tempdir().unwrap();
    for format in [LtTorrentFormat::V2Only, LtTorrentFormat::Hybrid] {
        let sub = dir.path().join(format!("{format:?}"));
        let spec = TorrentSpec::multi_file("served", FILES).with_seed(11);
        let Some(fx) = fixture(&sub, spec, format) else {
            return;
        };
        let out = sub.join("lt");
        let done = run(async {
            let mut seeder =
                dlm_tests::DlmSeed::start(&fx.torrent_path, &fx.data_dir, &["--seed-time", "50"])
                    .await;
            let addr = SocketAddr::V4(seeder.addr());
            let torrent = fx.torrent_path.clone();
            let out = out.clone();
            // libtorrent names a v2-only torrent by its full SHA-256, a hybrid by its SHA-1.
            let key = hex::encode(fx.info_hash);
            let done = tokio::task::spawn_blocking(move || {
                let options = LibtorrentOptions::default()
                    .with_leech(&torrent, &out)
                    .with_connect(addr)
                    .without_trackers();
                let mut leecher = LibtorrentPeer::start(options)?;
                let status = leecher.wait_until(Duration::from_secs(40), |s| {
                    s.torrents
                        .iter()
                        .any(|(k, t)| k.starts_with(&key) && t.is_finished)
                });
                Some((status.is_some(), leecher.log()))
            })
            .await
            .unwrap();
            seeder.kill();
            done
        });
        let Some((finished, log)) = done else {
            return;
        };
        assert!(finished, "{format:?}: libtorrent did not finish\n{log}");
        fx.check_download(&out).unwrap();
    }
}

/// A v2-only magnet link (`xt=urn:btmh:1220…`, BEP 52) with only `x.pe`
/// naming a libtorrent seeder: dlm fetches the info dictionary (checked by
/// its SHA-256), learns the piece layers of the files longer than a piece
/// by hash requests (checked against each pieces root), and downloads
/// every file byte for byte. `dlm info` on the same link prints the
/// torrent once the metadata is in.
#[test]
fn a_v2_only_magnet_learns_its_piece_layers_from_libtorrent() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TorrentSpec::multi_file("v2-magnet", FILES).with_seed(5);
    let Some(fx) = fixture(dir.path(), spec, LtTorrentFormat::V2Only) else {
        return;
    };
    let m = Metainfo::from_file(&fx.torrent_path).unwrap();
    assert!(
        m.files.iter().filter(|f| f.length > m.piece_length).count() >= 2,
        "files longer than a piece, so piece layers are needed"
    );
    let v2 = info_hash_v2_of(&std::fs::read(&fx.torrent_path).unwrap()).unwrap();
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let link = format!("magnet:?xt=urn:btmh:1220{}&x.pe={peer}", hex::encode(v2));
    let out = dir.path().join("out");
    let info = run(dlm_tests::dlm_run(&["info", &link, "--no-dht"]));
    assert!(
        info.ok,
        "dlm info: {}\nseeder: {}",
        info.stderr,
        seeder.log()
    );
    assert!(info.stdout.contains("v2-magnet"), "{}", info.stdout);
    let got = run(dlm_tests::dlm_run(&[
        "get",
        &link,
        "-d",
        out.to_str().unwrap(),
        "--no-dht",
    ]));
    assert!(got.ok, "dlm get: {}\nseeder: {}", got.stderr, seeder.log());
    fx.check_download(&out).unwrap();
    let saved = out.join(format!(".{}.torrent", hex::encode(&v2[..20])));
    assert!(!saved.exists(), "the saved metadata goes once complete");
}

/// `dlm seed` answers hash requests (BEP 52): a libtorrent leecher given
/// only a v2-only magnet link (`xt=urn:btmh:1220…`) and dlm's address gets
/// the info dictionary (BEP 9) and the piece layers of the files longer
/// than a piece from dlm, and finishes with every file byte for byte.
#[test]
fn libtorrent_learns_piece_layers_from_dlm_seed_for_a_v2_magnet() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TorrentSpec::multi_file("v2-served", FILES).with_seed(13);
    let Some(fx) = fixture(dir.path(), spec, LtTorrentFormat::V2Only) else {
        return;
    };
    let v2 = info_hash_v2_of(&std::fs::read(&fx.torrent_path).unwrap()).unwrap();
    let link = format!("magnet:?xt=urn:btmh:1220{}", hex::encode(v2));
    let out = dir.path().join("lt");
    let done = run(async {
        let mut seeder =
            dlm_tests::DlmSeed::start(&fx.torrent_path, &fx.data_dir, &["--seed-time", "50"]).await;
        let addr = SocketAddr::V4(seeder.addr());
        let out = out.clone();
        // libtorrent names a v2-only torrent by its full SHA-256.
        let key = hex::encode(v2);
        let done = tokio::task::spawn_blocking(move || {
            let options = LibtorrentOptions::default()
                .with_leech_magnet(&link, &out)
                .with_connect(addr)
                .without_trackers();
            let mut leecher = LibtorrentPeer::start(options)?;
            let status = leecher.wait_until(Duration::from_secs(40), |s| {
                s.torrents.iter().any(|(k, t)| {
                    k.starts_with(&key)
                        && t.is_finished
                        && t.peers.values().any(|p| p.hashes_received > 0)
                })
            });
            let answered: Vec<(u64, u64)> = leecher
                .status()
                .torrents
                .values()
                .flat_map(|t| t.peers.values())
                .map(|p| (p.hashes_received, p.hash_rejects_received))
                .collect();
            Some((status.is_some(), format!("{answered:?}\n{}", leecher.log())))
        })
        .await
        .unwrap();
        seeder.kill();
        done
    });
    let Some((finished, log)) = done else {
        return;
    };
    assert!(
        finished,
        "libtorrent did not finish with hashes from dlm (hashes, rejects per peer): {log}"
    );
    fx.check_download(&out).unwrap();
}

/// A v2-only magnet download stopped midway saves its metadata as a
/// complete `.torrent`, piece layers included (a v2 `.torrent` without them
/// does not parse), so the resumed run asks no peer for metadata or hashes.
#[test]
fn a_resumed_v2_magnet_download_keeps_its_learned_piece_layers() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TorrentSpec::single_file("v2-resumed.bin", 4 << 20);
    let Some(fx) = fixture(dir.path(), spec, LtTorrentFormat::V2Only) else {
        return;
    };
    let full = Metainfo::from_file(&fx.torrent_path).unwrap();
    let v2 = info_hash_v2_of(&std::fs::read(&fx.torrent_path).unwrap()).unwrap();
    // Slow enough that the first run is still downloading when it is killed.
    let Some(seeder) =
        LibtorrentPeer::start(LibtorrentOptions::seeding(&fx).with_upload_limit(512 << 10))
    else {
        return;
    };
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let bare = format!("magnet:?xt=urn:btmh:1220{}", hex::encode(v2));
    let with_peer = format!("{bare}&x.pe={peer}");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let saved = out.join(format!(".{}.torrent", hex::encode(&v2[..20])));
    run(async {
        let mut first = tokio::process::Command::from(dlm_command())
            .args(["get", &with_peer, "-d", out.to_str().unwrap()])
            .args(["--quiet", "--no-netrc", "--no-dht"])
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !saved.exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the metadata was never saved at {}",
                saved.display()
            );
            assert!(
                first.try_wait().unwrap().is_none(),
                "the first run ended early"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        first.kill().await.unwrap();
    });
    let m = Metainfo::from_file(&saved).unwrap();
    assert_eq!(m.meta_version, MetaVersion::V2);
    assert!(!m.piece_layers.is_empty());
    assert_eq!(m.piece_layers, full.piece_layers);
    // No peer: with metadata and piece layers on disk, the run fails only
    // for want of peers for the pieces.
    let r = run(dlm_tests::dlm_run(&[
        "get",
        &bare,
        "-d",
        out.to_str().unwrap(),
        "--no-dht",
    ]));
    assert!(!r.ok, "nothing to download from, yet it succeeded");
    assert!(
        !r.stderr.contains("metadata") && !r.stderr.contains("piece layers"),
        "fetched again instead of read from disk: {}",
        r.stderr
    );
    let r = run(dlm_tests::dlm_run(&[
        "get",
        &with_peer,
        "-d",
        out.to_str().unwrap(),
        "--no-dht",
    ]));
    assert!(
        r.ok,
        "the resumed run: {}\nseeder: {}",
        r.stderr,
        seeder.log()
    );
    fx.check_download(&out).unwrap();
    assert!(!saved.exists(), "the saved metadata goes once complete");
}

/// A hybrid magnet link with both topics (`btih` and `btmh`): the swarm is
/// the v1 one, the metadata is checked by SHA-1 and SHA-256, and pieces by
/// SHA-1 (no piece layers needed).
#[test]
fn a_hybrid_magnet_with_both_topics_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TorrentSpec::multi_file("hybrid-magnet", FILES).with_seed(17);
    let Some(fx) = fixture(dir.path(), spec, LtTorrentFormat::Hybrid) else {
        return;
    };
    let v2 = info_hash_v2_of(&std::fs::read(&fx.torrent_path).unwrap()).unwrap();
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let link = format!(
        "magnet:?xt=urn:btih:{}&xt=urn:btmh:1220{}&x.pe={peer}",
        hex::encode(fx.info_hash),
        hex::encode(v2)
    );
    let out = dir.path().join("out");
    let r = run(dlm_tests::dlm_run(&[
        "get",
        &link,
        "-d",
        out.to_str().unwrap(),
        "--no-dht",
    ]));
    assert!(r.ok, "dlm get: {}\nseeder: {}", r.stderr, seeder.log());
    fx.check_download(&out).unwrap();
    // A btmh that is not this torrent's: the metadata never verifies.
    let mut wrong = v2;
    wrong[31] ^= 1;
    let link = format!(
        "magnet:?xt=urn:btih:{}&xt=urn:btmh:1220{}&x.pe={peer}",
        hex::encode(fx.info_hash),
        hex::encode(wrong)
    );
    let r = run(dlm_tests::dlm_run(&["info", &link, "--no-dht"]));
    assert!(!r.ok, "metadata accepted against a wrong btmh");
}
