//! Library-level downloads (dlm-core's engine with dlm-http's source) against real servers on 127.0.0.1: nginx
//! over HTTP and HTTPS, Python's `http.server`, and the cutting proxy in front of nginx.
//!
//! Each test starts its own peers, compares SHA-256 digests of what it downloaded with the fixture's, and checks
//! that nothing is left behind: no `.part`/`.part.dlm` file next to a completed download, no tokio task alive once
//! the download and its client are dropped, and a runtime that shuts down (no blocking thread left running). No
//! assertion is about timing; the timeouts only bound a hang.
//!

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use dlm_core::{
    Backoff, BoxSource, Checksum, Completed, Download, DownloadOptions, DownloadState, Error,
    ErrorKind, Event, Input, Options, Output, ProtocolRegistry,
};
use dlm_http::{HttpConfig, NetrcMode};
use dlm_tests::{
    CutProxy, CutProxyOptions, Nginx, NginxOptions, PythonHttp, sha256_file, write_random_file,
};
use tokio::sync::broadcast;

/// Bounds every test; a hang fails instead of blocking CI. Asserts nothing about speed.
const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// Bounds waiting for nginx to log requests that have ended (a hang only).
const LOG_TIMEOUT: Duration = Duration::from_secs(15);

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Short retry delays: the tests exercise retries, not patience.
const FAST_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(20),
    max: Duration::from_millis(200),
};

/// Runs an end-to-end test body bounded by [`TEST_TIMEOUT`] on its own runtime, whose shutdown is checked too.
fn e2e(body: impl Future<Output = ()>) {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body);
}

/// The HTTP settings every test starts from: no proxy from the environment, no `~/.netrc`.
fn http_config() -> HttpConfig {
    HttpConfig::default()
        .with_proxy_from_env(false)
        .with_netrc(NetrcMode::Off)
}

fn registry_with(config: HttpConfig) -> ProtocolRegistry {
    let mut registry = ProtocolRegistry::new();
    dlm_http::register_with(&mut registry, config).expect("register http");
    registry
}

fn registry() -> ProtocolRegistry {
    registry_with(http_config())
}

async fn source(registry: &ProtocolRegistry, url: &str) -> BoxSource {
    registry
        .source(&Input::parse(url), &Options::new())
        .await
        .unwrap_or_else(|e| panic!("source for {url}: {e}"))
}

fn part_path(out: &Path) -> PathBuf {
    dlm_core::FileSink::part_path_for(out)
}

fn control_path(out: &Path) -> PathBuf {
    dlm_core::FileSink::control_path_for(out)
}

/// How a download ended, with every event it sent.
struct Outcome {
    result: dlm_core::Result<Completed>,
    events: Vec<Event>,
}

impl Outcome {
    fn completed(self) -> (Completed, Vec<Event>) {
        match self.result {
            Ok(done) => (done, self.events),
            Err(e) => panic!(
                "download failed: {e} ({}); events: {:#?}",
                e.kind(),
                self.events
            ),
        }
    }

    fn error(self) -> (Error, Vec<Event>) {
        match self.result {
            Ok(done) => panic!("download succeeded but should have failed: {done:?}"),
            Err(e) => (e, self.events),
        }
    }
}

/// Receives events until the download's last one (`Completed` or `Failed`) or until the channel closes.
async fn collect_events(mut rx: broadcast::Receiver<Event>) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        match rx.recv().await {
            Ok(event) => {
                let last = matches!(event, Event::Completed(_) | Event::Failed { .. });
                events.push(event);
                if last {
                    return events;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                panic!("the test fell {n} events behind; collect faster")
            }
            Err(broadcast::error::RecvError::Closed) => return events,
        }
    }
}

/// Runs `download` to its end, collecting its events.
async fn run(download: Download) -> Outcome {
    let collector = tokio::spawn(collect_events(download.subscribe()));
    let result = download.start().wait().await;
    let events = collector.await.expect("event collector");
    Outcome { result, events }
}

fn started(events: &[Event]) -> Vec<(u64, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Started {
                resumed_bytes,
                connections,
                ..
            } => Some((*resumed_bytes, *connections)),
            _ => None,
        })
        .collect()
}

fn probed(events: &[Event]) -> (Option<u64>, bool) {
    events
        .iter()
        .find_map(|e| match e {
            Event::Probed { len, ranges, .. } => Some((*len, *ranges)),
            _ => None,
        })
        .expect("a Probed event")
}

fn notices(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Notice { message } => Some(message.as_str()),
            _ => None,
        })
        .collect()
}

fn retried_chunk_failures(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ChunkFailed {
                    will_retry: true,
                    ..
                }
            )
        })
        .count()
}

/// Asserts that `dir` holds exactly `names`: no `.part`, `.part.dlm` or temp file left behind.
fn assert_dir_holds(dir: &Path, names: &[&str]) {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut want: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    want.sort();
    assert_eq!(found, want, "files in {}", dir.display());
}

/// Waits until every task on this runtime has ended (bounded): call once the downloads, their handles, the
/// registry (and its connection pool) and any proxy are dropped. A task still alive after that is a leak.
async fn assert_no_leaked_tasks() {
    let metrics = tokio::runtime::Handle::current().metrics();
    for _ in 0..250 {
        if metrics.num_alive_tasks() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{} tokio task(s) still alive after the download ended and everything was dropped",
        metrics.num_alive_tasks()
    );
}

/// Replaces `www/name` atomically with `size` new random bytes (written under a temp name, then renamed over it)
/// and returns the new SHA-256. The new file's mtime is set an hour ahead, so nginx's ETag (mtime and size) and
/// Last-Modified change even within the same second.
fn replace_file(www: &Path, name: &str, size: u64, seed: u64) -> String {
    let temp = format!(".{name}.new");
    let sha = write_random_file(www, &temp, size, seed).unwrap();
    let later = SystemTime::now() + Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(www.join(&temp))
        .unwrap()
        .set_modified(later)
        .unwrap();
    std::fs::rename(www.join(&temp), www.join(name)).unwrap();
    sha
}

/// Case 1: Many connections, small chunks: every byte arrives once, in place, and the digest matches.
#[test]
fn segmented_download_with_16_connections() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 24 * MIB + 12_345;
    let sha = write_random_file(nginx.www(), "big.bin", size, 1).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("big.bin");
        let registry = registry();
        let download = Download::new(
            source(&registry, &nginx.http_url("/big.bin")).await,
            Output::File(out.clone()),
        )
        .with_options(
            DownloadOptions::default()
                .with_connections(16)
                .with_min_split_bytes(256 * KIB)
                .with_max_chunk_bytes(Some(MIB)),
        );
        let (done, events) = run(download).await.completed();
        drop(registry);

        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert_eq!(done.sha256().expect("a SHA-256").to_hex(), sha);
        assert_eq!(done.bytes, size);
        assert_eq!(done.path.as_deref(), Some(out.as_path()));
        assert_eq!(started(&events), vec![(0, 16)]);
        let chunks_done = events
            .iter()
            .filter(|e| matches!(e, Event::ChunkDone { .. }))
            .count();
        assert!(chunks_done >= 25, "{chunks_done} chunks for {size} bytes");

        // The probe (bytes=0-0) plus at least one ranged request per MiB, all answered 206.
        let log = nginx.wait_for_requests("/big.bin", 26, LOG_TIMEOUT);
        let partial = log.iter().filter(|e| e.status == 206).count();
        assert!(partial >= 26, "{partial} responses were 206: {log:?}");
        assert!(log.iter().all(|e| e.status == 206), "{log:?}");
        assert_dir_holds(out_dir.path(), &["big.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 2: HTTPS: trusted through the test CA, refused without it (permanently, naming the certificate), accepted
/// with `insecure`.
#[test]
fn https_verifies_certificates() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 3 * MIB + 7;
    let sha = write_random_file(nginx.www(), "tls.bin", size, 2).unwrap();
    let url = nginx.https_url("/tls.bin");
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();

        let trusted = registry_with(http_config().with_ca_file(nginx.ca_pem()));
        let out = out_dir.path().join("trusted.bin");
        let download = Download::new(source(&trusted, &url).await, Output::File(out.clone()))
            .with_options(DownloadOptions::default().with_connections(4));
        let (done, _) = run(download).await.completed();
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert_eq!(done.sha256().unwrap().to_hex(), sha);
        drop(trusted);

        // Whether the refusal is retried is pinned down by `refused_certificate_is_not_retried`.
        let untrusted = registry();
        let refused = out_dir.path().join("refused.bin");
        let download = Download::new(
            source(&untrusted, &url).await,
            Output::File(refused.clone()),
        )
        .with_options(
            DownloadOptions::default()
                .with_max_retries(1)
                .with_backoff(FAST_BACKOFF),
        );
        let (err, events) = run(download).await.error();
        assert_eq!(err.kind(), ErrorKind::Network, "{err}");
        assert!(!err.is_retryable(), "{err:?}");
        assert!(
            err.to_string().to_lowercase().contains("certificate"),
            "{err}"
        );
        assert!(!refused.exists() && !part_path(&refused).exists());
        assert_eq!(retried_chunk_failures(&events), 0);
        drop(untrusted);

        let insecure = registry_with(http_config().with_insecure(true));
        let out = out_dir.path().join("insecure.bin");
        let download = Download::new(source(&insecure, &url).await, Output::File(out.clone()))
            .with_options(DownloadOptions::default().with_connections(4));
        run(download).await.completed();
        assert_eq!(sha256_file(&out).unwrap(), sha);
        drop(insecure);

        assert!(
            nginx
                .requests("/tls.bin")
                .iter()
                .all(|e| e.scheme == "https")
        );
        assert_dir_holds(out_dir.path(), &["trusted.bin", "insecure.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// A refused certificate is permanent: no retry, and the message says the certificate was refused.
///
/// Regression: hyper-rustls wraps the rustls error in two `io::Error`s, and `is_tls_refusal`
/// (`dlm-http/src/error.rs`) once looked through only one, so a refused certificate was retried.
#[test]
fn refused_certificate_is_not_retried() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    write_random_file(nginx.www(), "tls.bin", MIB, 2).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let registry = registry();
        let download = Download::new(
            source(&registry, &nginx.https_url("/tls.bin")).await,
            Output::File(out_dir.path().join("refused.bin")),
        )
        .with_options(
            DownloadOptions::default()
                .with_max_retries(3)
                .with_backoff(FAST_BACKOFF),
        );
        let (err, _) = run(download).await.error();
        drop(registry);
        assert_eq!(err.kind(), ErrorKind::Network, "{err}");
        assert!(
            !err.is_exhausted(),
            "a refused certificate was retried: {err:?}"
        );
        assert!(err.message().contains("certificate"), "{err}");
        assert!(err.message().contains("refused"), "{err}");
        assert_dir_holds(out_dir.path(), &[]);
    });
}

/// Case 3a: A server-throttled location: each of 8 connections is limited by nginx, the download still completes.
#[test]
fn throttled_server_completes() {
    // nginx lets the first second's worth of each response through at once, then holds to the rate: 1 MiB
    // chunks at 512 KiB/s take about a second each.
    let Some(nginx) = Nginx::start(NginxOptions {
        slow_rate: "512k".to_owned(),
    }) else {
        return;
    };
    let size = 8 * MIB;
    let sha = write_random_file(nginx.www(), "slow.bin", size, 3).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("slow.bin");
        let registry = registry();
        let download = Download::new(
            source(&registry, &nginx.http_url("/slow/slow.bin")).await,
            Output::File(out.clone()),
        )
        .with_options(
            DownloadOptions::default()
                .with_connections(8)
                .with_max_chunk_bytes(Some(MIB)),
        );
        let (done, events) = run(download).await.completed();
        drop(registry);
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert_eq!(done.bytes, size);
        assert_eq!(started(&events), vec![(0, 8)]);
        assert!(
            nginx
                .wait_for_requests("/slow/slow.bin", 9, LOG_TIMEOUT)
                .len()
                >= 9
        );
        assert_dir_holds(out_dir.path(), &["slow.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 3b: The client-side rate limit can be changed (tightened, loosened, lifted) while the download runs.
#[test]
fn rate_limit_changes_while_running() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 6 * MIB;
    let sha = write_random_file(nginx.www(), "limited.bin", size, 4).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("limited.bin");
        let registry = registry();
        let download = Download::new(
            source(&registry, &nginx.http_url("/limited.bin")).await,
            Output::File(out.clone()),
        )
        .with_options(
            DownloadOptions::default()
                .with_connections(4)
                .with_max_chunk_bytes(Some(512 * KIB))
                .with_rate_limit(Some(MIB)),
        );
        let mut events = download.subscribe();
        let handle = download.start();
        let control = handle.control();
        let waiter = tokio::spawn(handle.wait());

        // Change the limit at each of the first progress reports: tighter, looser, then none.
        let steps = [Some(512 * KIB), Some(2 * MIB), None];
        let mut step = 0;
        let mut seen = Vec::new();
        loop {
            let event = events.recv().await.expect("events until the end");
            if let Event::Progress(stats) = &event
                && step < steps.len()
            {
                assert_eq!(stats.state, DownloadState::Running);
                control.set_rate_limit(steps[step]);
                step += 1;
            }
            let last = matches!(event, Event::Completed(_) | Event::Failed { .. });
            seen.push(event);
            if last {
                break;
            }
        }
        let done = waiter.await.unwrap().expect("download completes");
        drop(registry);
        assert!(step > 0, "no progress report before the end: {seen:?}");
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert_eq!(done.sha256().unwrap().to_hex(), sha);
        assert_dir_holds(out_dir.path(), &["limited.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 4: A redirect chain is followed once, by the probe; the ranged requests go to where it ended. A redirect loop
/// fails as a protocol error.
#[test]
fn redirects_are_followed_and_loops_fail() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 4 * MIB + 1;
    let sha = write_random_file(nginx.www(), "r.bin", size, 5).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let registry = registry();

        let out = out_dir.path().join("r.bin");
        let download = Download::new(
            source(&registry, &nginx.http_url("/redirect/3/r.bin")).await,
            Output::File(out.clone()),
        )
        .with_options(
            DownloadOptions::default()
                .with_connections(4)
                .with_max_chunk_bytes(Some(MIB)),
        );
        run(download).await.completed();
        assert_eq!(sha256_file(&out).unwrap(), sha);
        let direct = nginx.wait_for_requests("/r.bin", 5, LOG_TIMEOUT);
        assert!(direct.len() >= 5, "{direct:?}");
        let hops: Vec<_> = nginx
            .requests("/redirect/")
            .into_iter()
            .map(|e| (e.uri, e.status))
            .collect();
        assert_eq!(
            hops,
            vec![
                ("/redirect/3/r.bin".to_owned(), 302),
                ("/redirect/2/r.bin".to_owned(), 302),
                ("/redirect/1/r.bin".to_owned(), 302),
            ]
        );

        let looped = out_dir.path().join("looped.bin");
        let download = Download::new(
            source(&registry, &nginx.http_url("/loop/r.bin")).await,
            Output::File(looped.clone()),
        );
        let (err, events) = run(download).await.error();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        assert!(err.to_string().contains("too many redirects"), "{err}");
        assert!(!err.is_retryable());
        assert_eq!(retried_chunk_failures(&events), 0);
        // The default limit is 10 redirects: 11 requests, none of them retried.
        assert_eq!(nginx.wait_for_requests("/loop/", 11, LOG_TIMEOUT).len(), 11);
        drop(registry);
        assert_dir_holds(out_dir.path(), &["r.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 5a: Servers that ignore Range (nginx `/norange/`, Python's http.server): one stream, a notice, right bytes.
#[test]
fn servers_without_ranges_fall_back_to_one_stream() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 5 * MIB + 3;
    let sha = write_random_file(nginx.www(), "n.bin", size, 6).unwrap();
    let Some(python) = PythonHttp::start(nginx.www()) else {
        return;
    };
    e2e(async {
        let registry = registry();
        for url in [nginx.http_url("/norange/n.bin"), python.url("/n.bin")] {
            let out_dir = tempfile::tempdir().unwrap();
            // A directory output: the name comes from the URL.
            let download = Download::new(
                source(&registry, &url).await,
                Output::Dir(out_dir.path().to_owned()),
            )
            .with_options(DownloadOptions::default().with_connections(8));
            let (done, events) = run(download).await.completed();
            let out = out_dir.path().join("n.bin");
            assert_eq!(done.path.as_deref(), Some(out.as_path()), "{url}");
            assert_eq!(sha256_file(&out).unwrap(), sha, "{url}");
            assert_eq!(done.sha256().unwrap().to_hex(), sha, "{url}");
            assert_eq!(probed(&events), (Some(size), false), "{url}");
            assert_eq!(started(&events), vec![(0, 1)], "{url}");
            let notices = notices(&events);
            assert!(
                notices.iter().any(|n| n.contains("byte ranges")),
                "{url}: {notices:?}"
            );
            assert_dir_holds(out_dir.path(), &["n.bin"]);
        }
        drop(registry);
        assert_no_leaked_tasks().await;
    });
}

/// Case 5b: A chunked response has no length: one stream to its end, the length learned from the stream.
#[test]
fn chunked_response_of_unknown_length() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 5 * MIB + 5;
    let sha = write_random_file(nginx.www(), "c.bin", size, 7).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("c.bin");
        let registry = registry();
        let download = Download::new(
            source(&registry, &nginx.http_url("/chunked/c.bin")).await,
            Output::File(out.clone()),
        )
        .with_options(DownloadOptions::default().with_connections(8));
        let (done, events) = run(download).await.completed();
        drop(registry);
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert_eq!(done.bytes, size);
        assert_eq!(done.sha256().unwrap().to_hex(), sha);
        assert_eq!(probed(&events), (None, false));
        assert_eq!(started(&events), vec![(0, 1)]);
        assert!(!notices(&events).is_empty());
        assert_dir_holds(out_dir.path(), &["c.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 6: Basic auth from the URL's userinfo; without it (or with a wrong password) an Auth error, not retried.
#[test]
fn basic_auth_from_url() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 3 * MIB;
    let sha = write_random_file(nginx.www(), "p.bin", size, 8).unwrap();
    let port = nginx.http_port();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let registry = registry();

        let out = out_dir.path().join("p.bin");
        let url = format!(
            "http://{}:{}@127.0.0.1:{port}/private/p.bin",
            Nginx::USER,
            Nginx::PASSWORD
        );
        let download = Download::new(source(&registry, &url).await, Output::File(out.clone()))
            .with_options(DownloadOptions::default().with_connections(4));
        let (_, events) = run(download).await.completed();
        assert_eq!(sha256_file(&out).unwrap(), sha);
        // The identity the events show carries no password.
        let shown = serde_json::to_string(&events).unwrap();
        assert!(!shown.contains(Nginx::PASSWORD), "{shown}");
        let authed = nginx.wait_for_requests("/private/p.bin", 1, LOG_TIMEOUT);
        assert!(authed.iter().all(|e| e.status == 206), "{authed:?}");

        for (case, url) in [
            (
                "anonymous",
                format!("http://127.0.0.1:{port}/private/p.bin?anonymous"),
            ),
            (
                "wrong password",
                format!("http://dlm:wrong@127.0.0.1:{port}/private/p.bin?wrong"),
            ),
        ] {
            let out = out_dir.path().join("denied.bin");
            let download = Download::new(source(&registry, &url).await, Output::File(out.clone()))
                .with_options(
                    DownloadOptions::default()
                        .with_max_retries(5)
                        .with_backoff(FAST_BACKOFF),
                );
            let (err, events) = run(download).await.error();
            assert_eq!(err.kind(), ErrorKind::Auth, "{case}: {err}");
            assert!(
                !err.is_retryable() && !err.is_exhausted(),
                "{case}: {err:?}"
            );
            assert!(err.to_string().contains("401"), "{case}: {err}");
            assert_eq!(retried_chunk_failures(&events), 0, "{case}");
            assert!(!out.exists() && !part_path(&out).exists(), "{case}");
            // One request: a 401 is not retried.
            let query = url.rsplit_once('?').unwrap().1;
            // nginx logs a request when it finalises it, a moment after the client has the answer.
            let tried = nginx.wait_for_requests(&format!("/private/p.bin?{query}"), 1, LOG_TIMEOUT);
            assert_eq!(tried.len(), 1, "{case}: {tried:?}");
            assert_eq!(tried[0].status, 401, "{case}");
        }
        drop(registry);
        assert_dir_holds(out_dir.path(), &["p.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 7: 404 fails at once as NotFound; 503 (with Retry-After) is retried and then reported as exhausted.
#[test]
fn http_errors_map_to_kinds() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let registry = registry();

        let download = Download::new(
            source(&registry, &nginx.http_url("/status/404")).await,
            Output::File(out_dir.path().join("404")),
        )
        .with_options(DownloadOptions::default().with_backoff(FAST_BACKOFF));
        let (err, _) = run(download).await.error();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(!err.is_retryable() && !err.is_exhausted(), "{err:?}");
        assert!(err.to_string().contains("404"), "{err}");
        assert_eq!(
            nginx.wait_for_requests("/status/404", 1, LOG_TIMEOUT).len(),
            1
        );

        let download = Download::new(
            source(&registry, &nginx.http_url("/status/503")).await,
            Output::File(out_dir.path().join("503")),
        )
        .with_options(
            DownloadOptions::default()
                .with_max_retries(1)
                .with_backoff(FAST_BACKOFF),
        );
        let (err, _) = run(download).await.error();
        assert_eq!(err.kind(), ErrorKind::Network, "{err}");
        assert!(err.is_exhausted(), "{err:?}");
        assert!(err.to_string().contains("503"), "{err}");
        // The first attempt and one retry (after Retry-After: 1).
        assert_eq!(
            nginx.wait_for_requests("/status/503", 2, LOG_TIMEOUT).len(),
            2
        );
        drop(registry);
        assert_dir_holds(out_dir.path(), &[]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 8: A wrong expected digest fails as Integrity and keeps the bytes in `FILE.part`; the right one completes and
/// is reported as verified.
#[test]
fn expected_checksum_is_enforced() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 4 * MIB + 9;
    let sha = write_random_file(nginx.www(), "sum.bin", size, 9).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("sum.bin");
        let registry = registry();

        let wrong: Checksum = format!("sha-256={}", "00".repeat(32)).parse().unwrap();
        let download = Download::new(
            source(&registry, &nginx.http_url("/sum.bin")).await,
            Output::File(out.clone()),
        )
        .with_options(
            DownloadOptions::default()
                .with_connections(4)
                .with_checksum(Some(wrong)),
        );
        let (err, _) = run(download).await.error();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
        assert!(err.to_string().contains(&sha), "names what it got: {err}");
        assert!(!out.exists(), "the final file must not appear");
        let part = part_path(&out);
        assert!(part.exists(), "the bytes are kept in {}", part.display());
        assert_eq!(sha256_file(&part).unwrap(), sha);

        let right: Checksum = format!("sha-256={sha}").parse().unwrap();
        let download = Download::new(
            source(&registry, &nginx.http_url("/sum.bin")).await,
            Output::File(out.clone()),
        )
        .with_options(
            DownloadOptions::default()
                .with_connections(4)
                .with_checksum(Some(right.clone())),
        );
        let (done, _) = run(download).await.completed();
        drop(registry);
        assert_eq!(done.verified_against, Some(right));
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert_dir_holds(out_dir.path(), &["sum.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 9: Mirrors: an HTTPS mirror of the same file shares the work; a mirror with another length is dropped.
#[test]
fn mirrors_share_work_and_bad_ones_are_dropped() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 8 * MIB + 77;
    let sha = write_random_file(nginx.www(), "m.bin", size, 10).unwrap();
    write_random_file(nginx.www(), "other.bin", size + 1, 11).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let registry = registry_with(http_config().with_ca_file(nginx.ca_pem()));
        let options = DownloadOptions::default()
            .with_connections(4)
            .with_min_split_bytes(256 * KIB)
            .with_max_chunk_bytes(Some(MIB));

        let out = out_dir.path().join("m.bin");
        let primary = nginx.http_url("/m.bin");
        let mirror = nginx.https_url("/m.bin");
        let download = Download::new(source(&registry, &primary).await, Output::File(out.clone()))
            .with_mirror(source(&registry, &mirror).await)
            .with_options(options.clone());
        let collector = tokio::spawn(collect_events(download.subscribe()));
        let handle = download.start();
        let control = handle.control();
        handle.wait().await.expect("download with a mirror");
        let events = collector.await.unwrap();
        assert_eq!(sha256_file(&out).unwrap(), sha);
        let stats = control.stats();
        assert_eq!(stats.sources.len(), 2, "{stats:?}");
        for s in &stats.sources {
            assert!(
                s.received_bytes > 0,
                "{} served nothing: {stats:?}",
                s.source
            );
            assert!(!s.dropped, "{stats:?}");
        }
        assert_eq!(
            stats.sources.iter().map(|s| s.received_bytes).sum::<u64>(),
            size,
            "{stats:?}"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::SourceDropped { .. }))
        );
        // Both schemes served ranged requests beyond the probes.
        let log = nginx.wait_for_requests("/m.bin", 4, LOG_TIMEOUT);
        for scheme in ["http", "https"] {
            assert!(
                log.iter().any(|e| e.scheme == scheme
                    && e.status == 206
                    && e.range.as_deref() != Some("bytes=0-0")),
                "no ranged {scheme} request: {log:?}"
            );
        }

        let out2 = out_dir.path().join("m2.bin");
        let bad = nginx.http_url("/other.bin");
        let download = Download::new(
            source(&registry, &primary).await,
            Output::File(out2.clone()),
        )
        .with_mirror(source(&registry, &bad).await)
        .with_options(options);
        let collector = tokio::spawn(collect_events(download.subscribe()));
        let handle = download.start();
        let control = handle.control();
        handle.wait().await.expect("download despite a bad mirror");
        let events = collector.await.unwrap();
        assert_eq!(sha256_file(&out2).unwrap(), sha);
        let dropped: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::SourceDropped { source, reason } => Some((source.clone(), reason.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(dropped.len(), 1, "{dropped:?}");
        assert_eq!(dropped[0].0, bad);
        assert!(dropped[0].1.contains("length"), "{dropped:?}");
        let stats = control.stats();
        assert!(stats.sources[1].dropped, "{stats:?}");
        assert_eq!(stats.sources[1].received_bytes, 0, "{stats:?}");
        // Only the probe reached the dropped mirror.
        assert_eq!(nginx.requests("/other.bin").len(), 1);
        drop(registry);
        assert_dir_holds(out_dir.path(), &["m.bin", "m2.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 10: Every connection is cut after 1 MiB: the download retries, resumes each range where it stopped, and
/// ends with the right bytes.
#[test]
fn connections_cut_mid_transfer_are_resumed() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 16 * MIB + 333;
    let sha = write_random_file(nginx.www(), "cut.bin", size, 12).unwrap();
    e2e(async {
        let proxy = CutProxy::start(nginx.http_addr(), CutProxyOptions::cut_after(MIB))
            .await
            .unwrap();
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("cut.bin");
        let registry = registry();
        let download = Download::new(
            source(&registry, &proxy.http_url("/cut.bin")).await,
            Output::File(out.clone()),
        )
        .with_options(
            DownloadOptions::default()
                .with_connections(4)
                .with_max_retries(5)
                .with_backoff(FAST_BACKOFF),
        );
        let (done, events) = run(download).await.completed();
        drop(registry);
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert_eq!(done.sha256().unwrap().to_hex(), sha);
        let cuts = proxy.cuts();
        // Each connection carries at most 1 MiB, so at least 16 connections were needed, and some were cut
        // mid-chunk (a connection whose chunk ends within its MiB closes without a cut).
        assert!(
            proxy.connections() >= 16,
            "{} connections",
            proxy.connections()
        );
        assert!(cuts > 0, "no connection was cut");
        let retried = retried_chunk_failures(&events);
        assert!(retried > 0, "no retried chunk failure: {events:?}");
        // Resumed where each connection stopped: little beyond the file itself was fetched again.
        assert!(
            done.fetched_bytes < size + 4 * MIB,
            "fetched {} for {size}",
            done.fetched_bytes
        );
        eprintln!(
            "cut proxy: {cuts} cuts over {} connections, {retried} retried chunks, fetched {} bytes for {size}",
            proxy.connections(),
            done.fetched_bytes
        );
        drop(proxy);
        assert_dir_holds(out_dir.path(), &["cut.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 11: The remote file is replaced (new ETag) while downloading: the download starts over, ends with the new
/// file's bytes, and leaves nothing beside the final file (the first pass's verifier thread is stopped before the
/// restart, so it cannot recreate `v.bin.part` after the commit).
#[test]
fn remote_replaced_mid_download_restarts() {
    let Some(nginx) = Nginx::start(NginxOptions {
        slow_rate: "4m".to_owned(),
    }) else {
        return;
    };
    let size = 8 * MIB;
    let old_sha = write_random_file(nginx.www(), "v.bin", size, 13).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("v.bin");
        let registry = registry();
        // Small chunks under a 2 MiB/s client limit: many requests, each carrying If-Range, long after the
        // replacement.
        let download = Download::new(
            source(&registry, &nginx.http_url("/slow/v.bin")).await,
            Output::File(out.clone()),
        )
        .with_options(
            DownloadOptions::default()
                .with_connections(4)
                .with_min_split_bytes(256 * KIB)
                .with_max_chunk_bytes(Some(256 * KIB))
                .with_rate_limit(Some(2 * MIB)),
        );
        let mut events = download.subscribe();
        let handle = download.start();
        let control = handle.control();
        let waiter = tokio::spawn(handle.wait());

        let mut new_sha = None;
        let mut restarts = Vec::new();
        loop {
            match events.recv().await.expect("events until the end") {
                Event::Progress(stats) if new_sha.is_none() && stats.downloaded_bytes >= MIB => {
                    assert!(stats.downloaded_bytes < size, "{stats:?}");
                    new_sha = Some(replace_file(nginx.www(), "v.bin", size, 14));
                }
                Event::Restarted { reason } => {
                    restarts.push(reason);
                    control.set_rate_limit(None);
                }
                Event::Completed(_) | Event::Failed { .. } => break,
                _ => {}
            }
        }
        let done = waiter
            .await
            .unwrap()
            .expect("download completes after the restart");
        drop(registry);
        let new_sha = new_sha.expect("the file was replaced");
        assert_ne!(new_sha, old_sha);
        assert_eq!(restarts.len(), 1, "{restarts:?}");
        assert!(restarts[0].contains("changed"), "{restarts:?}");
        assert_eq!(sha256_file(&out).unwrap(), new_sha);
        assert_eq!(done.sha256().unwrap().to_hex(), new_sha);
        assert_dir_holds(out_dir.path(), &["v.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 11b: The remote file is replaced between two runs: the second run sees the saved state is stale and starts
/// over.
#[test]
fn remote_replaced_between_runs_restarts() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 6 * MIB;
    write_random_file(nginx.www(), "w.bin", size, 15).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("w.bin");
        let registry = registry();
        let url = nginx.http_url("/w.bin");
        let options = DownloadOptions::default()
            .with_connections(4)
            .with_max_chunk_bytes(Some(512 * KIB));

        let first = cancel_after(
            Download::new(source(&registry, &url).await, Output::File(out.clone()))
                .with_options(options.clone().with_rate_limit(Some(2 * MIB))),
            MIB,
        )
        .await;
        assert_eq!(first.kind(), ErrorKind::Cancelled, "{first}");
        assert!(control_path(&out).exists());

        let new_sha = replace_file(nginx.www(), "w.bin", size, 16);
        let download = Download::new(source(&registry, &url).await, Output::File(out.clone()))
            .with_options(options);
        let (done, events) = run(download).await.completed();
        drop(registry);
        assert!(
            events.iter().any(|e| matches!(e, Event::Restarted { .. })),
            "{events:?}"
        );
        assert_eq!(started(&events), vec![(0, 4)]);
        assert_eq!(sha256_file(&out).unwrap(), new_sha);
        assert_eq!(done.sha256().unwrap().to_hex(), new_sha);
        assert_dir_holds(out_dir.path(), &["w.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Starts `download`, cancels it once at least `after_bytes` are done, and returns its error.
async fn cancel_after(download: Download, after_bytes: u64) -> Error {
    let mut events = download.subscribe();
    let handle = download.start();
    let control = handle.control();
    let waiter = tokio::spawn(handle.wait());
    loop {
        match events.recv().await {
            Ok(Event::Progress(stats)) if stats.downloaded_bytes >= after_bytes => {
                control.cancel();
                break;
            }
            Ok(Event::Completed(_) | Event::Failed { .. }) | Err(_) => break,
            Ok(_) => {}
        }
    }
    match waiter.await.unwrap() {
        Ok(done) => panic!("finished before it could be cancelled: {done:?}"),
        Err(e) => e,
    }
}

/// Case 12a: Pause keeps the state on disk; resume continues and completes.
#[test]
fn pause_and_resume() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 8 * MIB + 4_321;
    let sha = write_random_file(nginx.www(), "pr.bin", size, 17).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("pr.bin");
        let registry = registry();
        let download = Download::new(
            source(&registry, &nginx.http_url("/pr.bin")).await,
            Output::File(out.clone()),
        )
        .with_options(
            DownloadOptions::default()
                .with_connections(4)
                .with_max_chunk_bytes(Some(512 * KIB))
                .with_rate_limit(Some(2 * MIB)),
        );
        let mut events = download.subscribe();
        let handle = download.start();
        let control = handle.control();
        let waiter = tokio::spawn(handle.wait());

        let mut paused_at = None;
        let mut seen = Vec::new();
        loop {
            let event = events.recv().await.expect("events until the end");
            match &event {
                Event::Progress(stats) if paused_at.is_none() && stats.downloaded_bytes >= MIB => {
                    control.pause();
                    paused_at = Some(0);
                }
                Event::Paused => {
                    let stats = control.stats();
                    assert_eq!(stats.state, DownloadState::Paused);
                    assert!(stats.downloaded_bytes > 0 && stats.downloaded_bytes < size);
                    assert_eq!(stats.connections, 0, "{stats:?}");
                    assert!(control_path(&out).exists(), "state saved on pause");
                    assert!(part_path(&out).exists());
                    assert!(!out.exists());
                    paused_at = Some(stats.downloaded_bytes);
                    control.set_rate_limit(None);
                    control.resume();
                }
                _ => {}
            }
            let last = matches!(event, Event::Completed(_) | Event::Failed { .. });
            seen.push(event);
            if last {
                break;
            }
        }
        let done = waiter.await.unwrap().expect("completes after resume");
        drop(registry);
        let paused_at = paused_at.expect("paused");
        assert!(paused_at > 0, "{seen:?}");
        let order: Vec<&str> = seen
            .iter()
            .filter_map(|e| match e {
                Event::Paused => Some("paused"),
                Event::Resumed => Some("resumed"),
                Event::Completed(_) => Some("completed"),
                _ => None,
            })
            .collect();
        assert_eq!(order, ["paused", "resumed", "completed"]);
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert_eq!(done.sha256().unwrap().to_hex(), sha);
        eprintln!("paused at {paused_at} of {size} bytes");
        assert_dir_holds(out_dir.path(), &["pr.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// Case 12b: Cancel keeps the state on disk; a new download of the same output resumes from it.
#[test]
fn cancel_then_resume_in_a_new_download() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 8 * MIB + 1_234;
    let sha = write_random_file(nginx.www(), "cr.bin", size, 18).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("cr.bin");
        let registry = registry();
        let url = nginx.http_url("/cr.bin");
        let options = DownloadOptions::default()
            .with_connections(4)
            .with_max_chunk_bytes(Some(512 * KIB));

        let err = cancel_after(
            Download::new(source(&registry, &url).await, Output::File(out.clone()))
                .with_options(options.clone().with_rate_limit(Some(2 * MIB))),
            MIB,
        )
        .await;
        assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
        assert!(control_path(&out).exists(), "state saved on cancel");
        assert!(part_path(&out).exists());
        assert!(!out.exists());

        let download = Download::new(source(&registry, &url).await, Output::File(out.clone()))
            .with_options(options);
        let (done, events) = run(download).await.completed();
        drop(registry);
        let started = started(&events);
        assert_eq!(started.len(), 1, "{events:?}");
        let resumed = started[0].0;
        assert!(resumed >= MIB && resumed < size, "resumed {resumed}");
        assert!(
            !events.iter().any(|e| matches!(e, Event::Restarted { .. })),
            "{events:?}"
        );
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert_eq!(done.sha256().unwrap().to_hex(), sha);
        assert!(
            done.fetched_bytes < size,
            "fetched {} of {size} after resuming {resumed}",
            done.fetched_bytes
        );
        eprintln!(
            "resumed {resumed} of {size} bytes, fetched {}",
            done.fetched_bytes
        );
        assert_dir_holds(out_dir.path(), &["cr.bin"]);
        assert_no_leaked_tasks().await;
    });
}

/// A cancelled download must not leave its hasher thread behind: the runtime it ran on has to shut down.
///
/// Regression: the verifier's blocking thread (`dlm-core/src/engine/verify.rs`) once waited for the next prefix
/// update for ever after a cancel, and dropping the runtime blocked.
#[test]
fn cancelled_download_ends_its_hasher_thread() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    write_random_file(nginx.www(), "leak.bin", 8 * MIB, 19).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let registry = registry();
        let err = cancel_after(
            Download::new(
                source(&registry, &nginx.http_url("/leak.bin")).await,
                Output::File(out_dir.path().join("leak.bin")),
            )
            .with_options(
                DownloadOptions::default()
                    .with_connections(4)
                    .with_max_chunk_bytes(Some(512 * KIB))
                    .with_rate_limit(Some(2 * MIB)),
            ),
            MIB,
        )
        .await;
        assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
        drop(registry);
        assert_no_leaked_tasks().await;
    });
}

/// A download that fails after bytes started flowing must not leave its hasher thread behind either.
#[test]
fn failed_download_ends_its_hasher_thread() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    write_random_file(nginx.www(), "fail.bin", 8 * MIB, 20).unwrap();
    e2e(async {
        // Every connection is cut after 1 MiB and no retry is allowed: the transfer starts, then fails.
        let proxy = CutProxy::start(nginx.http_addr(), CutProxyOptions::cut_after(MIB))
            .await
            .unwrap();
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("fail.bin");
        let registry = registry();
        let download = Download::new(
            source(&registry, &proxy.http_url("/fail.bin")).await,
            Output::File(out.clone()),
        )
        .with_options(
            DownloadOptions::default()
                .with_connections(4)
                .with_max_retries(0),
        );
        let (err, events) = run(download).await.error();
        assert_eq!(err.kind(), ErrorKind::Network, "{err}");
        assert!(err.is_exhausted(), "{err:?}");
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::ChunkDone { .. } | Event::ChunkFailed { .. })),
            "the transfer had started: {events:?}"
        );
        assert!(control_path(&out).exists(), "state kept for a later resume");
        drop(registry);
        drop(proxy);
        assert_no_leaked_tasks().await;
    });
}

/// An error's one-line message says each thing once.
///
/// Regression: errors from dlm-http once repeated themselves (`HTTP 404 from URL: HTTP 404 from URL`), because the
/// `HttpError` was both the message and the source.
#[test]
fn error_messages_do_not_repeat() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let registry = registry();
        let download = Download::new(
            source(&registry, &nginx.http_url("/status/404")).await,
            Output::File(out_dir.path().join("404")),
        );
        let (err, _) = run(download).await.error();
        drop(registry);
        let line = err.to_string();
        assert_eq!(line.matches("HTTP 404").count(), 1, "{line}");
    });
}

/// A Content-Disposition name (RFC 6266, `filename*` preferred) cannot leave the output directory: only its last
/// component is used.
#[test]
fn content_disposition_names_are_sanitised() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let sha = write_random_file(nginx.www(), "cd.bin", MIB + 1, 77).unwrap();
    e2e(async {
        let root = tempfile::tempdir().unwrap();
        let out_dir = root.path().join("downloads");
        std::fs::create_dir(&out_dir).unwrap();
        let registry = registry();
        let download = Download::new(
            source(&registry, &nginx.http_url("/disposition/cd.bin")).await,
            Output::Dir(out_dir.clone()),
        );
        let (done, _) = run(download).await.completed();
        drop(registry);
        let saved = out_dir.join("résumé.bin");
        assert_eq!(done.path.as_deref(), Some(saved.as_path()));
        assert_eq!(sha256_file(&saved).unwrap(), sha);
        assert_dir_holds(&out_dir, &["résumé.bin"]);
        assert_dir_holds(root.path(), &["downloads"]);
    });
}

/// A `.part` cut short (or deleted) behind its control file's back is not
/// trusted past its end: the missing bytes are fetched again, never
/// committed as zeros.
#[test]
fn a_truncated_part_file_is_fetched_again_not_filled_with_zeros() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 8 * MIB + 77;
    let sha = write_random_file(nginx.www(), "tr.bin", size, 20).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("tr.bin");
        let registry = registry();
        let url = nginx.http_url("/tr.bin");
        let options = DownloadOptions::default()
            .with_connections(4)
            .with_max_chunk_bytes(Some(512 * KIB));
        for cut in [MIB / 2, 0] {
            let err = cancel_after(
                Download::new(source(&registry, &url).await, Output::File(out.clone()))
                    .with_options(options.clone().with_rate_limit(Some(2 * MIB))),
                2 * MIB,
            )
            .await;
            assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
            if cut == 0 {
                std::fs::remove_file(part_path(&out)).unwrap();
            } else {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(part_path(&out))
                    .unwrap()
                    .set_len(cut)
                    .unwrap();
            }
            let download = Download::new(source(&registry, &url).await, Output::File(out.clone()))
                .with_options(options.clone());
            let (done, events) = run(download).await.completed();
            assert!(
                notices(&events)
                    .iter()
                    .any(|n| n.contains("fewer than its resume state")),
                "cut at {cut}: {events:?}"
            );
            assert_eq!(sha256_file(&out).unwrap(), sha, "cut at {cut}");
            assert_eq!(done.sha256().unwrap().to_hex(), sha);
            std::fs::remove_file(&out).unwrap();
        }
    });
}

/// A `.part` replaced behind its control file's back (another file of the
/// same length under its name) is not trusted: its device and inode are in
/// the control file, and the download starts over instead of committing
/// the other file's bytes.
#[test]
fn a_replaced_part_file_is_not_trusted() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 4 * MIB + 5;
    let sha = write_random_file(nginx.www(), "rp.bin", size, 21).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("rp.bin");
        let registry = registry();
        let url = nginx.http_url("/rp.bin");
        let options = DownloadOptions::default()
            .with_connections(4)
            .with_max_chunk_bytes(Some(256 * KIB));
        cancel_halfway(&registry, &url, &out, &options).await;
        // Same name, same length, other bytes, another inode.
        let part = part_path(&out);
        let len = std::fs::metadata(&part).unwrap().len();
        let other = out_dir.path().join("other");
        std::fs::write(&other, vec![0xA5u8; len as usize]).unwrap();
        std::fs::rename(&other, &part).unwrap();
        let download = Download::new(source(&registry, &url).await, Output::File(out.clone()))
            .with_options(options);
        let (_, events) = run(download).await.completed();
        assert!(
            notices(&events).iter().any(|n| n.contains("was replaced")),
            "{events:?}"
        );
        assert_eq!(sha256_file(&out).unwrap(), sha);
    });
}

/// A run killed between its commit's rename (`.part` → final name) and the
/// removal of its control file resumes from that control file: the final
/// file goes back to its `.part` name and only what the last save missed is
/// fetched, not the whole file.
#[test]
fn a_kill_between_the_commit_rename_and_the_control_file_removal_resumes() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 4 * MIB + 9;
    let sha = write_random_file(nginx.www(), "cr.bin", size, 22).unwrap();
    e2e(async {
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("cr.bin");
        let registry = registry();
        let url = nginx.http_url("/cr.bin");
        let options = DownloadOptions::default()
            .with_connections(4)
            .with_max_chunk_bytes(Some(256 * KIB));
        cancel_halfway(&registry, &url, &out, &options).await;
        // What the commit's rename does, without the control file's removal after it.
        std::fs::rename(part_path(&out), &out).unwrap();
        let download = Download::new(source(&registry, &url).await, Output::File(out.clone()))
            .with_options(options);
        let (done, _) = run(download).await.completed();
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert!(
            done.fetched_bytes < size - MIB,
            "fetched {} of {size} bytes again",
            done.fetched_bytes
        );
        assert!(!part_path(&out).exists());
    });
}

/// Downloads `url` into `out` at 2 MiB/s and cancels it after 2 MiB,
/// leaving its `.part` and control file.
async fn cancel_halfway(
    registry: &ProtocolRegistry,
    url: &str,
    out: &Path,
    options: &DownloadOptions,
) {
    let err = cancel_after(
        Download::new(source(registry, url).await, Output::File(out.to_path_buf()))
            .with_options(options.clone().with_rate_limit(Some(2 * MIB))),
        2 * MIB,
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
}
