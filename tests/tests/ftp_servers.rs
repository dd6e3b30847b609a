//! FTP downloads against servers other than vsftpd's anonymous root:
//! pure-ftpd (a virtual user, a large file over one and four sessions,
//! explicit FTPS, names with spaces and non-ASCII letters, a wrong password,
//! a missing file), vsftpd's local users (PAM), and pyftpdlib with a fault no
//! well-behaved server produces (a data connection dropped midway).

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use dlm_core::{Download, DownloadOptions, ErrorKind, Event, ProtocolRegistry, Result};
use dlm_ftp::{FtpConfig, NetrcMode};
use dlm_tests::{
    CutProxy, CutProxyOptions, PURE_FTPD_USER, PureFtpd, PyFtpd, PyFtpdOptions,
    VSFTPD_LOCAL_PASSWORD, VSFTPD_LOCAL_USER, Vsftpd, sha256_file, write_random_file,
};

/// Bounds each test (a hang only; nothing here is about speed).
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
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

/// Runs a download and returns its result with every event it sent.
async fn fetch_with_events(
    config: FtpConfig,
    url: &str,
    out: &Path,
    options: DownloadOptions,
) -> (Result<dlm_core::Completed>, Vec<Event>) {
    dlm_tests::through::with_events(download(config, url, out, options).await).await
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
        DownloadOptions::default().with_connections(connections),
    )
    .await
    .start()
    .wait()
    .await
}

/// Panics unless the files at `a` and `b` hold the same bytes.
fn assert_same_bytes(a: &Path, b: &Path) {
    use std::io::Read;
    let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    assert_eq!(fa.metadata().unwrap().len(), fb.metadata().unwrap().len());
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    let mut offset = 0u64;
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            break;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        assert!(
            ba[..n] == bb[..n],
            "{} and {} differ in the MiB at {offset}",
            a.display(),
            b.display()
        );
        offset += n as u64;
    }
}

/// `name` percent-encoded as one URL path segment.
fn segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[test]
fn pure_ftpd_serves_256_mib_over_one_and_four_sessions() {
    let Some(ftp) = PureFtpd::start() else { return };
    let size = 256 * MIB;
    let sha = write_random_file(&ftp.home(), "big.bin", size, 61).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(async {
        for c in [1, 4] {
            let out = dir.path().join(format!("big{c}.bin"));
            let done = fetch(ftp_config(), &ftp.url("big.bin"), &out, c)
                .await
                .unwrap();
            assert_eq!(done.bytes, size, "{c} connections");
            // The engine's SHA-256 (read back from the file), then the bytes
            // themselves: hashing 256 MiB again costs ~10 s in a debug build.
            let engine_sha = done.sha256().map(|d| hex::encode(&d.value));
            assert_eq!(engine_sha.as_deref(), Some(sha.as_str()), "{c} connections");
            assert_same_bytes(&ftp.home().join("big.bin"), &out);
            // Two 256 MiB outputs at once are not needed: keep the disk small.
            std::fs::remove_file(&out).unwrap();
        }
    });
}

#[test]
fn pure_ftpd_explicit_ftps_with_four_sessions() {
    let Some(ftp) = PureFtpd::start() else { return };
    let size = 24 * MIB + 7;
    let sha = write_random_file(&ftp.home(), "tls.bin", size, 62).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let tls = ftp_config().with_explicit_tls(true);
        let trusted = tls.clone().with_ca_file(ftp.ca_pem());
        let out = dir.path().join("tls.bin");
        let done = fetch(trusted, &ftp.tls_url("tls.bin"), &out, 4)
            .await
            .unwrap();
        assert_eq!(done.bytes, size);
        assert_eq!(sha256_file(&out).unwrap(), sha);
        // TLS really was negotiated: without the test CA the certificate is
        // refused, permanently.
        let err = fetch(tls, &ftp.tls_url("tls.bin"), &dir.path().join("no.bin"), 1)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Network, "{err}");
        assert!(!err.is_retryable(), "{err:?}");
    });
}

#[test]
fn pure_ftpd_names_with_spaces_and_non_ascii_letters() {
    let Some(ftp) = PureFtpd::start() else { return };
    let (dir_name, file_name) = ("dir with space", "Ünïcødé файл.bin");
    std::fs::create_dir(ftp.home().join(dir_name)).unwrap();
    let size = 5 * MIB + 3;
    let sha = write_random_file(&ftp.home(), &format!("{dir_name}/{file_name}"), size, 63).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let path = format!("{}/{}", segment(dir_name), segment(file_name));
        let out = dir.path().join("out.bin");
        let done = fetch(ftp_config(), &ftp.url(&path), &out, 2).await.unwrap();
        assert_eq!(done.bytes, size);
        assert_eq!(sha256_file(&out).unwrap(), sha);
    });
}

#[test]
fn pure_ftpd_wrong_password_is_auth_and_not_retried() {
    let Some(ftp) = PureFtpd::start() else { return };
    write_random_file(&ftp.home(), "a.bin", MIB, 64).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(async {
        // Control connections pass through a counting proxy (data connections
        // go to the server's passive port directly): a retried login would
        // open a second one. pure-ftpd answers a wrong password after ~5.6 s.
        let server = std::net::SocketAddr::from(([127, 0, 0, 1], ftp.port()));
        let proxy = CutProxy::start(
            server,
            CutProxyOptions {
                cut_after: None,
                cut_connections: None,
                mode: Default::default(),
            },
        )
        .await
        .unwrap();
        let url = ftp
            .url_as(PURE_FTPD_USER, "wrong-password", "a.bin")
            .replace(&format!(":{}/", ftp.port()), &format!(":{}/", proxy.port()));
        let out = dir.path().join("a.bin");
        let (result, events) =
            fetch_with_events(ftp_config(), &url, &out, DownloadOptions::default()).await;
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        assert!(!err.is_retryable(), "{err:?}");
        assert!(!err.to_string().contains("wrong-password"), "{err}");
        assert_eq!(
            proxy.connections(),
            1,
            "one login attempt; events: {events:?}"
        );
        assert!(
            !events.iter().any(|e| matches!(
                e,
                Event::ChunkFailed {
                    will_retry: true,
                    ..
                }
            )),
            "{events:?}"
        );
        assert!(!out.exists());
    });
}

#[test]
fn pure_ftpd_missing_file_is_not_found() {
    let Some(ftp) = PureFtpd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let out = dir.path().join("nope.bin");
        let err = fetch(ftp_config(), &ftp.url("nope.bin"), &out, 1)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(!err.is_retryable(), "{err:?}");
        assert!(!out.exists());
    });
}

#[test]
fn vsftpd_local_user_logs_in_with_its_password_only() {
    let Some(ftp) = Vsftpd::start() else { return };
    if ftp.local_user().is_none() {
        return;
    }
    let size = 9 * MIB + 1;
    let sha = write_random_file(&ftp.local_root(), "home.bin", size, 65).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let url = ftp.local_url("home.bin", VSFTPD_LOCAL_USER, VSFTPD_LOCAL_PASSWORD);
        let out = dir.path().join("home.bin");
        let done = fetch(ftp_config(), &url, &out, 4).await.unwrap();
        assert_eq!(done.bytes, size);
        assert_eq!(sha256_file(&out).unwrap(), sha);

        let url = ftp.local_url("home.bin", VSFTPD_LOCAL_USER, "not-the-password");
        let out = dir.path().join("wrong.bin");
        let err = fetch(ftp_config(), &url, &out, 1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        assert!(!err.is_retryable(), "{err:?}");
        assert!(!out.exists());
    });
}

#[test]
fn a_data_connection_dropped_midway_is_retried_to_a_byte_exact_file() {
    let options = PyFtpdOptions {
        // Well below the smallest chunk (`min_split_bytes`, 1 MiB), so the
        // cut transfer always still owes bytes its chunk needs, however the
        // engine has split the chunks by then.
        drop_data_after: Some(300_007),
        ..PyFtpdOptions::default()
    };
    let Some(ftp) = PyFtpd::start(options) else {
        return;
    };
    let size = 16 * MIB + 5;
    let sha = write_random_file(&ftp.root(), "drop.bin", size, 66).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(async {
        for c in [1, 4] {
            let name = format!("drop{c}.bin");
            std::fs::copy(ftp.root().join("drop.bin"), ftp.root().join(&name)).unwrap();
            let out = dir.path().join(&name);
            let options = DownloadOptions::default()
                .with_connections(c)
                .with_max_chunk_bytes(Some(8 * MIB));
            let (result, events) =
                fetch_with_events(ftp_config(), &ftp.url(&name), &out, options).await;
            let log = ftp.log().unwrap_or_default();
            let done = result.unwrap_or_else(|e| panic!("{c} connections: {e:?}\n{log}"));
            assert_eq!(done.bytes, size, "{c} connections");
            assert_eq!(sha256_file(&out).unwrap(), sha, "{c} connections");
            // The fault happened, and the engine saw it as a retryable chunk failure.
            assert!(
                log.lines()
                    .any(|l| l.contains("fault: dropping the data connection") && l.contains(&name)),
                "{log}"
            );
            assert!(
                events.iter().any(|e| matches!(
                    e,
                    Event::ChunkFailed {
                        will_retry: true,
                        ..
                    }
                )),
                "{c} connections: {events:?}"
            );
        }
    });
}

#[test]
fn a_server_without_epsv_behind_nat_is_reached_through_pasv_at_the_control_peer() {
    // EPSV is unknown (500) and PASV announces 10.255.0.1, an address nobody
    // here can reach: the client must fall back to PASV and connect to 127.0.0.1.
    let options = PyFtpdOptions {
        no_epsv_pasv_address: Some("10.255.0.1"),
        ..PyFtpdOptions::default()
    };
    let Some(ftp) = PyFtpd::start(options) else {
        return;
    };
    let size = 5 * MIB + 3;
    let sha = write_random_file(&ftp.root(), "nat.bin", size, 67).unwrap();
    std::fs::create_dir_all(ftp.root().join("d")).unwrap();
    let inner = write_random_file(&ftp.root().join("d"), "in.bin", 1000, 68).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let out = dir.path().join("nat.bin");
        let done = fetch(ftp_config(), &ftp.url("nat.bin"), &out, 2)
            .await
            .unwrap_or_else(|e| panic!("{e:?}\n{}", ftp.log().unwrap_or_default()));
        assert_eq!(done.bytes, size);
        assert_eq!(sha256_file(&out).unwrap(), sha);
        // Success means both: EPSV was refused, and the PASV address was ignored.
        // Listings take the same fallback.
        let mut registry = dlm_core::ProtocolRegistry::new();
        dlm_ftp::register_with(&mut registry, ftp_config()).unwrap();
        let target = registry
            .target(
                &dlm_core::Input::parse(&ftp.url("/")),
                &dlm_core::Options::new(),
            )
            .await
            .unwrap();
        let dlm_core::Target::Listing(listing) = target else {
            panic!("a directory URL is a listing")
        };
        let tree = dir.path().join("tree");
        let summary = dlm_core::TreeDownload::new(listing, tree.clone())
            .start()
            .wait()
            .await
            .unwrap();
        assert!(summary.is_complete(), "{summary:?}");
        assert_eq!(sha256_file(&tree.join("d/in.bin")).unwrap(), inner);
    });
}

/// Stops a process with `SIGSTOP` (a server that stops answering, its
/// sockets still open) and lets it go on with `SIGCONT` when dropped.
struct Stopped(nix::unistd::Pid);

impl Stopped {
    fn new(pid: u32) -> Self {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        Self(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

fn assert_reply_timeout(e: &dlm_core::Error, command: &str) {
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert!(e.is_retryable(), "{e}");
    let message = e.to_string();
    assert!(
        message.contains("no reply") && message.contains(command),
        "{command}: {message}"
    );
}

#[test]
fn a_server_that_stops_answering_after_login_times_out_on_size_retr_and_mlsd() {
    use dlm_core::{Context, Listing, ReadRange, Source};
    use futures::StreamExt;

    let Some(ftp) = PyFtpd::start(PyFtpdOptions::default()) else {
        return;
    };
    write_random_file(&ftp.root(), "h.bin", 64 << 10, 8).unwrap();
    std::fs::create_dir_all(ftp.root().join("tree").join("sub")).unwrap();
    write_random_file(&ftp.root().join("tree"), "a.bin", 1 << 10, 9).unwrap();
    write_random_file(&ftp.root().join("tree").join("sub"), "b.bin", 1 << 10, 10).unwrap();
    // Short limits: each wait below ends with an error instead of a hang.
    let config = ftp_config()
        .with_max_connections(1)
        .with_connect_timeout(Duration::from_secs(2))
        .with_reply_timeout(Duration::from_millis(500))
        .with_idle_timeout(Duration::from_millis(500));
    let cx = Context::new();
    run(async {
        // Each phase leaves one logged-in session in its pool, then the server stops.
        let url = ftp.url("h.bin").parse().unwrap();
        let file = dlm_ftp::FtpSource::new(url, config.clone()).unwrap();
        file.probe(&cx).await.unwrap();
        {
            let _stopped = Stopped::new(ftp.pid());
            let e = file.probe(&cx).await.unwrap_err();
            assert_reply_timeout(&e, "SIZE");
        }

        let url = ftp.url("h.bin").parse().unwrap();
        let file = dlm_ftp::FtpSource::new(url, config.clone()).unwrap();
        file.probe(&cx).await.unwrap();
        {
            let _stopped = Stopped::new(ftp.pid());
            let e = match file.open(&cx, ReadRange::FULL).await {
                Ok(_) => panic!("RETR answered by a stopped server"),
                Err(e) => e,
            };
            assert_reply_timeout(&e, "RETR");
        }

        let url = ftp.url("tree/").parse().unwrap();
        let tree = dlm_ftp::FtpListing::new(url, config.clone()).unwrap();
        let mut entries = tree.entries(&cx);
        let first = entries.next().await.unwrap().unwrap();
        assert_eq!(first.path, ["a.bin"]);
        {
            let _stopped = Stopped::new(ftp.pid());
            let e = entries.next().await.unwrap().unwrap_err();
            assert_reply_timeout(&e, "MLSD tree/sub");
        }
        assert!(entries.next().await.is_none());
    });
}
