//! A torrent's data already on disk without resume state (a second run
//! after completion, files from another client): `dlm get` hashes it
//! against the metainfo first, keeps every verified piece and fetches only
//! the rest, as libtorrent does; it never truncates a file that holds data,
//! and refuses a file of which nothing verifies.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, NO_TRACKER, TorrentFixture, TorrentSpec};
use dlm_tests::dlm_command;

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

/// Runs `dlm get ARGS --no-netrc`, returning whether it succeeded and its
/// stdout and stderr.
async fn dlm_get(args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::from(dlm_command())
        .arg("get")
        .args(args)
        .arg("--no-netrc")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Copies the fixture's payload (a file or a directory tree) into `out`.
fn copy_payload(fx: &TorrentFixture, out: &Path) {
    for file in &fx.files {
        let from = fx.file_path_in(&fx.data_dir, file);
        let to = fx.file_path_in(out, file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
}

/// Flips one byte of `path` at `offset`.
fn damage(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0xff], offset).unwrap();
}

#[test]
fn complete_files_without_resume_state_are_checked_and_not_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = [
        TorrentSpec::multi_file(
            "tree",
            &[("a.bin", 300_000), ("sub/b.bin", 500_001), ("c.txt", 17)],
        ),
        TorrentSpec::single_file("one.bin", 700_000),
    ];
    for (i, spec) in fixtures.into_iter().enumerate() {
        let Some(fx) = spec
            .with_tracker(NO_TRACKER)
            .with_piece_len_log2(16)
            .create(&dir.path().join(format!("seed{i}")))
        else {
            return;
        };
        let out = dir.path().join(format!("out{i}"));
        copy_payload(&fx, &out);
        let torrent = fx.torrent_path.to_str().unwrap().to_string();
        // No tracker answers and no peer is given: only the check can finish it.
        let (ok, output) = run(dlm_get(&[&torrent, "--json", "-d", out.to_str().unwrap()]));
        assert!(ok, "{}: {output}", fx.name);
        let all = fx.total_len;
        assert!(
            output.contains(&format!("\"stored_bytes\":{all},\"verified_bytes\":{all}")),
            "{output}"
        );
        fx.check_download(&out).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.') || n.ends_with(".part") || n.ends_with(".dlm"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn a_damaged_piece_is_fetched_again_and_every_verified_piece_kept() {
    let dir = tempfile::tempdir().unwrap();
    let piece: u64 = 1 << 16;
    let Some(fx) = TorrentSpec::multi_file("tree", &[("a.bin", 1_000_000), ("b.bin", 600_000)])
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(16)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(mut seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    let out = dir.path().join("out");
    copy_payload(&fx, &out);
    // One byte wrong in a.bin, and b.bin cut short by 100,000 bytes.
    damage(&out.join("tree/a.bin"), 3 * piece + 5);
    let b = out.join("tree/b.bin");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&b)
        .unwrap()
        .set_len(500_000)
        .unwrap();
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let (ok, stderr) = run(dlm_get(&[
        &torrent,
        "--peer",
        &peer,
        "-d",
        out.to_str().unwrap(),
    ]));
    assert!(ok, "{stderr}");
    fx.check_download(&out).unwrap();
    // Fetched: the damaged piece and the pieces b.bin's cut touches (at most 3 of 64 KiB), not the
    // 1.6 MB again.
    let key = fx.info_hash_hex();
    let uploaded = seeder
        .wait_until(Duration::from_secs(10), |s| {
            s.torrents
                .get(&key)
                .is_some_and(|t| t.uploaded_bytes >= 2 * piece)
        })
        .map(|s| s.torrents[&key].uploaded_bytes)
        .expect("the seeder's status shows the missing pieces sent");
    assert!(uploaded <= 4 * piece, "fetched {uploaded} bytes");
}

#[test]
fn a_file_of_which_nothing_verifies_is_left_alone_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("mine.bin", 300_000)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(16)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mine = out.join("mine.bin");
    let precious = vec![7u8; 123_456];
    std::fs::write(&mine, &precious).unwrap();
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    let (ok, stderr) = run(dlm_get(&[&torrent, "-d", out.to_str().unwrap()]));
    assert!(!ok);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read(&mine).unwrap(), precious);
    assert!(!out.join("mine.bin.part").exists());
}
