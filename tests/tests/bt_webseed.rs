//! Web seeds (BEP 19 `url-list`) against nginx and vsftpd: a torrent served
//! by its web seed alone (single- and multi-file over HTTP, and over FTP
//! through the registry's FTP source), one that mixes a web seed and a
//! libtorrent seeder, and a web seed serving corrupt data, which is dropped
//! while the pieces come from the peer. Every file is compared with the
//! seeded payload.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, TorrentFixture, TorrentSpec};
use dlm_tests::{Nginx, NginxOptions, Vsftpd};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// `-DL0100-` in hex: dlm's peer IDs.
const DLM_PEER_ID_HEX: &str = "2d444c303130302d";

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

/// Runs `dlm get ARGS` and asserts it succeeded.
fn dlm_get(args: &[&str]) {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    let r = run(dlm_tests::dlm_run(&all));
    assert!(r.ok, "dlm get: {}", r.stderr);
}

/// Copies the fixture's payload (`data/<name>…`) under nginx's `www/<dir>/`.
fn publish(fx: &TorrentFixture, nginx: &Nginx, dir: &str) {
    let to = nginx.www().join(dir);
    copy_tree(&fx.data_dir, &to);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn torrents_served_only_by_a_web_seed_download() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = nginx.http_url("/ws/");
    // Single file: the web seed is a directory URL, the name is appended.
    let Some(single) = TorrentSpec::single_file("only web.bin", (6 << 20) + 333)
        .with_web_seed(&base)
        .with_piece_len_log2(16)
        .create(&dir.path().join("single"))
    else {
        return;
    };
    // Multi-file: base/name/path for each file.
    let Some(multi) = TorrentSpec::multi_file(
        "tree",
        &[
            ("a.bin", 1_500_000),
            ("sub dir/b.bin", 2_000_001),
            ("c.txt", 5),
        ],
    )
    .with_web_seed(&base)
    .with_piece_len_log2(15)
    .with_seed(7)
    .create(&dir.path().join("multi")) else {
        return;
    };
    for fx in [&single, &multi] {
        publish(fx, &nginx, "ws");
        let out = dir.path().join(format!("out-{}", fx.name));
        dlm_get(&[
            fx.torrent_path.to_str().unwrap(),
            "-d",
            out.to_str().unwrap(),
        ]);
        fx.check_download(&out)
            .unwrap_or_else(|e| panic!("{}: {e}", fx.name));
    }
    assert!(
        nginx.requests("/ws/tree/sub%20dir/b.bin").len() > 1,
        "multi-file pieces came as ranges of each file"
    );
}

#[test]
fn a_web_seed_and_a_libtorrent_seeder_share_one_download() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("mixed.bin", 12 << 20)
        .with_web_seed(&nginx.http_url("/ws/mixed.bin"))
        .with_piece_len_log2(16)
        .with_seed(3)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    publish(&fx, &nginx, "ws");
    // Slow enough that the web seed has pieces left to serve.
    let Some(seeder) =
        LibtorrentPeer::start(LibtorrentOptions::seeding(&fx).with_upload_limit(4 << 20))
    else {
        return;
    };
    let out = dir.path().join("out");
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    dlm_get(&[
        fx.torrent_path.to_str().unwrap(),
        "--peer",
        &peer,
        "-d",
        out.to_str().unwrap(),
    ]);
    fx.check_download(&out).unwrap();
    // Whole pieces, not the probe's few bytes.
    let from_web = nginx
        .requests("/ws/mixed.bin")
        .iter()
        .filter(|e| e.body_bytes_sent >= fx.piece_len)
        .count();
    let from_peer = seeder
        .torrent(&fx.info_hash)
        .map_or(0, |t| t.uploaded_to(DLM_PEER_ID_HEX));
    assert!(from_web > 0, "the web seed served whole pieces");
    assert!(from_peer > 0, "the peer served pieces");
}

#[test]
fn a_web_seed_serving_corrupt_data_is_dropped_and_the_peer_serves_the_pieces() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("bad.bin", 8 << 20)
        .with_web_seed(&nginx.http_url("/ws/bad.bin"))
        .with_piece_len_log2(16)
        .with_seed(5)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    publish(&fx, &nginx, "ws");
    // Every byte of the mirror's copy is flipped: same length, wrong data.
    let served = nginx.www().join("ws/bad.bin");
    let flipped: Vec<u8> = std::fs::read(&served).unwrap().iter().map(|b| !b).collect();
    std::fs::write(&served, flipped).unwrap();
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    let out = dir.path().join("out");
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    dlm_get(&[
        fx.torrent_path.to_str().unwrap(),
        "--peer",
        &peer,
        "-d",
        out.to_str().unwrap(),
    ]);
    fx.check_download(&out).unwrap();
    let ranged = nginx
        .requests("/ws/bad.bin")
        .iter()
        .filter(|e| e.range.is_some())
        .count();
    assert!(
        ranged <= dlm_bittorrent::CONNECTIONS_PER_WEB_SEED + 1,
        "the web seed was dropped after its first bad piece ({ranged} ranged requests for {} pieces)",
        fx.num_pieces()
    );
}

#[test]
fn an_ftp_web_seed_serves_a_torrent_through_the_ftp_source() {
    let Some(ftp) = Vsftpd::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("ftp seeded.bin", (3 << 20) + 7)
        .with_web_seed(&ftp.url("ws/"))
        .with_piece_len_log2(17)
        .with_seed(9)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    copy_tree(&fx.data_dir, &ftp.root().join("ws"));
    let out = dir.path().join("out");
    dlm_get(&[
        fx.torrent_path.to_str().unwrap(),
        "-d",
        out.to_str().unwrap(),
    ]);
    fx.check_download(&out).unwrap();
    assert!(
        ftp.downloaded_bytes("/ws/ftp seeded.bin") > 0,
        "vsftpd served the pieces"
    );
}
