//! FTP and explicit FTPS downloads against a real vsftpd on 127.0.0.1:
//! segmented (REST) ranges, TLS session reuse on data connections
//! (`require_ssl_reuse=YES`), errors mapped to kinds, and resume.

use std::path::Path;
use std::time::Duration;

use dlm_core::{Download, DownloadOptions, ErrorKind, Event, ProtocolRegistry, Result};
use dlm_ftp::{FtpConfig, NetrcMode};
use dlm_tests::{Vsftpd, VsftpdOptions, sha256_file, through, write_random_file};

/// Bounds each test (a hang only; nothing here is about speed).
const TEST_TIMEOUT: Duration = Duration::from_secs(90);
const MIB: u64 = 1 << 20;

/// Tests never read the developer's `~/.netrc`.
fn ftp_config() -> FtpConfig {
    FtpConfig::default().with_netrc(NetrcMode::Off)
}

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

async fn download(config: FtpConfig, url: &str, out: &Path, options: DownloadOptions) -> Download {
    let mut registry = ProtocolRegistry::new();
    dlm_ftp::register_with(&mut registry, config).unwrap();
    dlm_tests::through::file_download(&registry, url, out, options).await
}

async fn fetch(
    config: FtpConfig,
    url: &str,
    out: &Path,
    connections: u32,
) -> Result<dlm_core::Completed> {
    download(
        config,
        url,
        out,
        DownloadOptions::default()
            .with_connections(connections)
            .with_max_chunk_bytes(Some(2 * MIB)),
    )
    .await
    .start()
    .wait()
    .await
}

#[test]
fn anonymous_ftp_with_one_and_four_connections_passive_and_active() {
    let Some(ftp) = Vsftpd::start() else { return };
    let size = 12 * MIB + 5;
    let sha = write_random_file(&ftp.root(), "f.bin", size, 41).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(async {
        for c in [1, 4] {
            let out = dir.path().join(format!("f{c}.bin"));
            let done = fetch(ftp_config(), &ftp.url("f.bin"), &out, c)
                .await
                .unwrap();
            assert_eq!(done.bytes, size);
            assert_eq!(sha256_file(&out).unwrap(), sha, "{c} connections");
        }
        // Active mode: vsftpd connects back to our EPRT/PORT listener.
        let out = dir.path().join("active.bin");
        let active = ftp_config().with_active(true);
        fetch(active, &ftp.url("f.bin"), &out, 4).await.unwrap();
        assert_eq!(sha256_file(&out).unwrap(), sha, "active mode");
    });
}

#[test]
fn explicit_and_implicit_ftps_reuse_tls_sessions_on_data_connections() {
    let Some(ftp) = Vsftpd::start() else { return };
    let sha = write_random_file(&ftp.root(), "s.bin", 6 * MIB + 1, 42).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let tls = ftp_config().with_explicit_tls(true);
        let out = dir.path().join("s.bin");
        fetch(
            tls.clone().with_ca_file(ftp.ca_pem()),
            &ftp.tls_url("s.bin"),
            &out,
            4,
        )
        .await
        .unwrap();
        assert_eq!(sha256_file(&out).unwrap(), sha);
        // Without the test CA the certificate is refused, permanently.
        let err = fetch(tls, &ftp.tls_url("s.bin"), &dir.path().join("no.bin"), 1)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Network, "{err}");
        assert!(!err.is_retryable(), "{err:?}");
    });
}

#[test]
fn missing_file_is_not_found_and_plain_login_to_tls_only_fails() {
    let Some(ftp) = Vsftpd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let err = fetch(
            ftp_config(),
            &ftp.url("nope.bin"),
            &dir.path().join("n.bin"),
            1,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        // The TLS instance refuses anonymous logins without TLS (530): auth, not retried.
        write_random_file(&ftp.root(), "t.bin", 1024, 43).unwrap();
        let err = fetch(
            ftp_config(),
            &ftp.tls_url("t.bin"),
            &dir.path().join("t.bin"),
            1,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        assert!(!err.is_retryable(), "{err:?}");
    });
}

#[test]
fn cancelled_ftp_download_resumes_from_its_control_file() {
    let Some(ftp) = Vsftpd::start() else { return };
    let size = 16 * MIB;
    let sha = write_random_file(&ftp.root(), "r.bin", size, 44).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.bin");
    run(async {
        let slow = DownloadOptions::default()
            .with_connections(2)
            .with_max_chunk_bytes(Some(2 * MIB))
            .with_rate_limit(Some(4 * MIB));
        let first = download(ftp_config(), &ftp.url("r.bin"), &out, slow).await;
        let err = through::cancel_after(first, 3 * MIB).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        assert!(dlm_core::FileSink::control_path_for(&out).exists());

        let second = download(
            ftp_config(),
            &ftp.url("r.bin"),
            &out,
            DownloadOptions::default(),
        )
        .await;
        let (done, events) = through::with_events(second).await;
        let done = done.unwrap();
        let resumed = events
            .iter()
            .find_map(|ev| match ev {
                Event::Started { resumed_bytes, .. } => Some(*resumed_bytes),
                _ => None,
            })
            .expect("a Started event");
        assert!(resumed >= 3 * MIB - 512 * 1024, "resumed at {resumed}");
        assert!(
            done.fetched_bytes < size,
            "fetched {} of {size}",
            done.fetched_bytes
        );
        assert_eq!(sha256_file(&out).unwrap(), sha);
    });
}

#[test]
fn a_file_replaced_between_runs_restarts_from_zero() {
    let Some(ftp) = Vsftpd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.bin");
    write_random_file(&ftp.root(), "c.bin", 12 * MIB, 50).unwrap();
    run(async {
        let slow = DownloadOptions::default()
            .with_connections(2)
            .with_max_chunk_bytes(Some(2 * MIB))
            .with_rate_limit(Some(4 * MIB));
        let first = download(ftp_config(), &ftp.url("c.bin"), &out, slow).await;
        let _ = through::cancel_after(first, 2 * MIB).await;
        // The server's file changes: another length (SIZE) and time (MDTM).
        std::thread::sleep(Duration::from_millis(1100));
        let sha = write_random_file(&ftp.root(), "c.bin", 9 * MIB + 1, 51).unwrap();
        let second = download(
            ftp_config(),
            &ftp.url("c.bin"),
            &out,
            DownloadOptions::default(),
        )
        .await;
        let (done, events) = through::with_events(second).await;
        let done = done.unwrap();
        assert!(
            events
                .iter()
                .any(|ev| matches!(ev, Event::Restarted { .. })),
            "a changed SIZE/MDTM restarts the download"
        );
        assert_eq!(done.bytes, 9 * MIB + 1);
        assert_eq!(sha256_file(&out).unwrap(), sha);
    });
}

#[test]
fn a_server_allowing_two_sessions_lowers_the_connection_count() {
    let Some(ftp) = Vsftpd::start_with(VsftpdOptions {
        max_per_ip: 2,
        ..VsftpdOptions::default()
    }) else {
        return;
    };
    let size = 12 * MIB + 9;
    let sha = write_random_file(&ftp.root(), "two.bin", size, 45).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let out = dir.path().join("two.bin");
        // Sessions beyond the second get `421 There are too many connections`:
        // the engine goes on with the two it has instead of retrying into the limit.
        let download = download(
            ftp_config(),
            &ftp.url("two.bin"),
            &out,
            DownloadOptions::default()
                .with_connections(4)
                .with_max_chunk_bytes(Some(2 * MIB)),
        )
        .await;
        let (done, events) = through::with_events(download).await;
        let done = done.unwrap();
        assert_eq!(done.bytes, size);
        assert_eq!(sha256_file(&out).unwrap(), sha);
        let notices: Vec<&String> = events
            .iter()
            .filter_map(|ev| match ev {
                Event::Notice { message } => Some(message),
                _ => None,
            })
            .collect();
        assert!(
            notices.iter().any(|m| m.contains("going on with")),
            "the connection count went down: {notices:?}"
        );
    });
}

#[test]
fn credentials_come_from_netrc_when_the_url_has_none() {
    let Some(ftp) = Vsftpd::start() else { return };
    let sha = write_random_file(&ftp.root(), "n.bin", MIB, 46).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let netrc = dir.path().join("netrc");
    run(async {
        // An entry for the host is used: this anonymous-only server refuses the user (530 → auth).
        std::fs::write(&netrc, "machine 127.0.0.1 login someone password secret\n").unwrap();
        let config = FtpConfig::default().with_netrc(NetrcMode::File(netrc.clone()));
        let err = fetch(
            config.clone(),
            &ftp.url("n.bin"),
            &dir.path().join("a.bin"),
            1,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        // No entry for the host: anonymous.
        std::fs::write(
            &netrc,
            "machine elsewhere.invalid login someone password secret\n",
        )
        .unwrap();
        let out = dir.path().join("b.bin");
        fetch(config, &ftp.url("n.bin"), &out, 1).await.unwrap();
        assert_eq!(sha256_file(&out).unwrap(), sha);
    });
}

#[test]
fn names_with_spaces_and_non_ascii_letters() {
    let Some(ftp) = Vsftpd::start() else { return };
    let name = "grüße und spaß.bin";
    let sha = write_random_file(&ftp.root(), name, 3 * MIB + 3, 47).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        let out = dir.path().join("out.bin");
        fetch(ftp_config(), &ftp.url(&encoded), &out, 2)
            .await
            .unwrap();
        assert_eq!(sha256_file(&out).unwrap(), sha);
    });
}
