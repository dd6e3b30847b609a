//! FTP directory trees and the `dlm` CLI over FTP, against real servers on
//! 127.0.0.1: a 200-file nested tree from vsftpd over plain FTP and explicit
//! FTPS on pooled control connections (vsftpd has no MLSD, so this is the
//! `LIST` path) and from pure-ftpd (`MLSD`), a second run that skips
//! complete files, a server that allows two sessions, a hostile listing
//! (pyftpdlib) whose escaping names are refused, and resume after SIGKILL of
//! `dlm get`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use dlm_core::{Input, Options, ProtocolRegistry, Target, TreeDownload, TreeSummary};
use dlm_ftp::{FtpConfig, NetrcMode};
use dlm_tests::{
    PureFtpd, PyFtpd, PyFtpdOptions, Vsftpd, VsftpdOptions, dlm_command, dlm_kill_and_resume,
    sha256_file, write_random_file,
};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);
const MIB: u64 = 1 << 20;

fn ftp_config() -> FtpConfig {
    FtpConfig::default().with_netrc(NetrcMode::Off)
}

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

/// Writes `count` files of varied sizes under `root/tree/` in nested
/// folders (names with spaces and non-ASCII letters among them); returns
/// each relative path with its SHA-256.
fn write_tree(root: &Path, count: usize) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for i in 0..count {
        let dir = match i % 5 {
            0 => String::new(),
            1 => "a/".to_string(),
            2 => "a/b c/".to_string(),
            3 => format!("d{}/deep/er/", i % 3),
            _ => "Ünï/".to_string(),
        };
        let rel = format!("{dir}f {i}.bin");
        let path = root.join("tree").join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let size = (i as u64 * 7919) % (256 << 10) + if i == 0 { 3 * MIB } else { 0 };
        let sha = write_random_file(
            path.parent().unwrap(),
            path.file_name().unwrap().to_str().unwrap(),
            size,
            i as u64,
        )
        .unwrap();
        files.insert(rel, sha);
    }
    files
}

fn assert_tree(out: &Path, files: &BTreeMap<String, String>) {
    for (rel, sha) in files {
        let got = sha256_file(&out.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(&got, sha, "{rel}");
    }
}

async fn download_tree(config: FtpConfig, url: &str, out: &Path, connections: u32) -> TreeSummary {
    let mut registry = ProtocolRegistry::new();
    dlm_ftp::register_with(&mut registry, config).unwrap();
    dlm_tests::through::tree_download(&registry, url, out, connections).await
}

/// vsftpd logs one `OK LOGIN` line per session.
fn logins(log: &Path) -> usize {
    log_lines(log, "OK LOGIN")
}

/// vsftpd logs one `OK DOWNLOAD` line per transfer.
fn downloads(log: &Path) -> usize {
    log_lines(log, "OK DOWNLOAD")
}

fn log_lines(log: &Path, what: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(what)
        .count()
}

#[test]
fn a_nested_tree_of_200_files_over_ftp_and_ftps_on_pooled_sessions() {
    let Some(ftp) = Vsftpd::start() else { return };
    let files = write_tree(&ftp.root(), 200);
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let out = dir.path().join("plain");
        let before = logins(&ftp.log_path("plain"));
        let summary = download_tree(ftp_config(), &ftp.url("tree/"), &out, 4).await;
        assert!(summary.is_complete(), "{summary:?}");
        assert_eq!(summary.progress.files_done, 200);
        assert_tree(&out, &files);
        let sessions = logins(&ftp.log_path("plain")) - before;
        eprintln!("200 files over plain FTP used {sessions} sessions");
        assert!(
            sessions <= 12,
            "control connections are pooled: {sessions} logins for 200 files"
        );

        // A second run finds every file complete and downloads nothing.
        // vsftpd writes its log line around its 226 reply: let the last ones land.
        let mut transfers = downloads(&ftp.log_path("plain"));
        for _ in 0..50 {
            if transfers >= 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            transfers = downloads(&ftp.log_path("plain"));
        }
        assert!(transfers >= 200, "vsftpd logged {transfers} downloads");
        let summary = download_tree(ftp_config(), &ftp.url("tree/"), &out, 4).await;
        assert!(summary.is_complete(), "{summary:?}");
        assert_eq!(summary.progress.files_done, 200);
        assert_eq!(
            downloads(&ftp.log_path("plain")),
            transfers,
            "nothing fetched again"
        );

        // Explicit FTPS: pooled sessions keep resuming their own TLS session (require_ssl_reuse=YES).
        let out = dir.path().join("tls");
        let tls = ftp_config()
            .with_explicit_tls(true)
            .with_ca_file(ftp.ca_pem());
        let summary = download_tree(tls, &ftp.tls_url("tree/"), &out, 4).await;
        assert!(summary.is_complete(), "{summary:?}");
        assert_tree(&out, &files);
    });
}

#[test]
fn a_nested_tree_from_pure_ftpd_listed_with_mlsd_over_ftps() {
    let Some(ftp) = PureFtpd::start() else { return };
    let files = write_tree(&ftp.home(), 60);
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let out = dir.path().join("plain");
        let summary = download_tree(ftp_config(), &ftp.url("tree/"), &out, 4).await;
        assert!(summary.is_complete(), "{summary:?}");
        assert_tree(&out, &files);
        let out = dir.path().join("tls");
        let tls = ftp_config()
            .with_explicit_tls(true)
            .with_ca_file(ftp.ca_pem());
        let summary = download_tree(tls, &ftp.tls_url("tree/"), &out, 4).await;
        assert!(summary.is_complete(), "{summary:?}");
        assert_tree(&out, &files);

        // A directory that does not exist is the download's error.
        let mut registry = ProtocolRegistry::new();
        dlm_ftp::register_with(&mut registry, ftp_config()).unwrap();
        let Target::Listing(listing) = registry
            .target(&Input::parse(&ftp.url("nope/")), &Options::new())
            .await
            .unwrap()
        else {
            panic!("a listing");
        };
        let err = TreeDownload::new(listing, dir.path().join("nope"))
            .start()
            .wait()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), dlm_core::ErrorKind::NotFound, "{err}");
    });
}

#[test]
fn a_listing_with_escaping_names_is_refused_and_nothing_lands_outside() {
    let Some(ftp) = PyFtpd::start(PyFtpdOptions {
        evil_listing: true,
        ..PyFtpdOptions::default()
    }) else {
        return;
    };
    let good = write_random_file(&ftp.root(), "good.bin", 100_000, 5).unwrap();
    std::fs::create_dir_all(ftp.root().join("sub")).unwrap();
    let inner = write_random_file(&ftp.root().join("sub"), "inner.bin", 5_000, 6).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a").join("out");
    run(async {
        let summary = download_tree(ftp_config(), &ftp.url("/"), &out, 2).await;
        let refused: Vec<&str> = summary.refused.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(refused.len(), 3, "{refused:?}");
        for name in ["../evil", "/abs/evil", "a/../../evil"] {
            assert!(refused.contains(&name), "{name} refused: {refused:?}");
        }
        assert!(!summary.is_complete());
        assert_eq!(sha256_file(&out.join("good.bin")).unwrap(), good);
        assert_eq!(sha256_file(&out.join("sub/inner.bin")).unwrap(), inner);
    });
    // Nothing named evil anywhere: not beside the destination, not above it, not at /abs.
    let found: Vec<_> = dlm_tests::walk(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("evil"))
        .collect();
    assert!(found.is_empty(), "{found:?}");
    assert!(!Path::new("/abs/evil").exists());
}

#[test]
fn a_tree_from_a_server_allowing_two_sessions_completes_with_four_connections() {
    let Some(ftp) = Vsftpd::start_with(VsftpdOptions {
        max_per_ip: 2,
        ..VsftpdOptions::default()
    }) else {
        return;
    };
    let files = write_tree(&ftp.root(), 30);
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let out = dir.path().join("t");
        let summary = download_tree(ftp_config(), &ftp.url("tree/"), &out, 4).await;
        assert!(summary.is_complete(), "{summary:?}");
        assert_tree(&out, &files);
    });
}

#[test]
fn dlm_get_and_info_take_a_directory_url() {
    let Some(ftp) = Vsftpd::start() else { return };
    let files = write_tree(&ftp.root(), 12);
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let out = tokio::process::Command::from(dlm_command())
            .args([
                "get",
                &ftp.url("tree/"),
                "--no-netrc",
                "--quiet",
                "-c",
                "3",
                "-d",
            ])
            .arg(dir.path())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "dlm failed: {stderr}");
        assert_tree(&dir.path().join("tree"), &files);
        // `dlm info` on a directory lists its files.
        let out = tokio::process::Command::from(dlm_command())
            .args(["info", &ftp.url("tree/"), "--no-netrc"])
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "dlm info failed: {stdout}");
        assert!(stdout.contains("12 files"), "{stdout}");
        assert!(stdout.contains("\"a/b c/f 2.bin\""), "{stdout}");
    });
}

#[test]
fn dlm_get_over_ftp_resumes_after_sigkill() {
    let Some(ftp) = Vsftpd::start() else { return };
    let size = 32 * MIB;
    let sha = write_random_file(&ftp.root(), "k.bin", size, 77).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.bin");
    let args = [
        "get",
        &ftp.url("k.bin"),
        "--no-netrc",
        "--json",
        "-c",
        "4",
        "--limit-rate",
        "8M",
        "-o",
        out.to_str().unwrap(),
    ];
    // Killed twice (past 1/4 and past 3/4; at 8 MiB/s each run lasts over a second, so it saves its state at
    // least once), then left to finish.
    let (resumed, completed) = run(dlm_kill_and_resume(&args, &[size / 4, size * 3 / 4]));
    eprintln!("resumed at {resumed:?} of {size} bytes");
    assert_eq!(resumed[0], 0);
    assert!(resumed[1] > 0 && resumed[2] > resumed[1], "{resumed:?}");
    // The last run fetched what was missing (plus at most what was in flight at the last kill).
    let fetched = completed["fetched_bytes"].as_u64().unwrap();
    assert!(
        fetched <= size - resumed[2] + 8 * MIB,
        "fetched {fetched} after resuming at {}",
        resumed[2]
    );
    assert_eq!(sha256_file(&out).unwrap(), sha);
}

#[test]
fn a_tree_over_its_depth_path_and_entry_limits_is_cut_with_clear_errors() {
    let Some(ftp) = Vsftpd::start() else { return };
    let root = ftp.root().join("limits");
    let long = "l".repeat(60);
    for (dir, name) in [
        ("", "top.bin"),
        ("a", "one.bin"),
        ("a/b", "two.bin"),
        ("a/b/c", "three.bin"),
        ("", long.as_str()),
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        write_random_file(&root.join(dir), name, 1000, 5).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    run(async {
        // Depth 1: a/ is listed, a/b/ is not; a 60-byte name is over 40 path bytes.
        let config = ftp_config().with_max_tree_depth(1).with_max_path_bytes(40);
        let out = dir.path().join("depth");
        let summary = download_tree(config, &ftp.url("limits/"), &out, 2).await;
        assert!(out.join("top.bin").is_file() && out.join("a/one.bin").is_file());
        assert!(!out.join("a/b").exists(), "{summary:?}");
        assert!(!out.join(&long).exists(), "{summary:?}");
        let errors: Vec<String> = summary
            .listing_errors
            .iter()
            .map(|e| {
                assert_eq!(e.kind(), dlm_core::ErrorKind::Protocol, "{e}");
                e.to_string()
            })
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors.iter().any(|e| e.contains("a/b: deeper than 1")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("longer than 40 bytes")),
            "{errors:?}"
        );

        // Three entries at most: the listing ends there, with an error.
        let config = ftp_config().with_max_tree_entries(3);
        let out = dir.path().join("entries");
        let summary = download_tree(config, &ftp.url("limits/"), &out, 2).await;
        assert!(
            summary
                .listing_errors
                .iter()
                .any(|e| e.to_string().contains("more than 3 entries")),
            "{summary:?}"
        );
        assert!(summary.progress.files_done < 5, "{summary:?}");
    });
}
