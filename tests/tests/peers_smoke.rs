//! Checks that the test peers behave as the tests built on them expect: nginx's locations, Python's
//! `http.server`, the cut proxy, the certificates and the stop-on-drop guard.

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dlm_tests::http1::{self, Response};
use dlm_tests::{
    CutMode, CutProxy, CutProxyOptions, Nginx, NginxOptions, PythonHttp, missing_peer, sha256_file,
    which, write_random_file,
};
use sha2::{Digest, Sha256};

/// Bounds every test; a hang fails instead of blocking CI.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

const SIZE: u64 = 3 * 1024 * 1024 + 17;

async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    dlm_tests::runtime::bounded(TEST_TIMEOUT, fut).await
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// nginx with `f.bin` (SIZE random bytes) in its www dir; returns the file's SHA-256 and bytes.
fn nginx_with_file() -> Option<(Nginx, String, Vec<u8>)> {
    let nginx = Nginx::start(NginxOptions::default())?;
    let digest = write_random_file(nginx.www(), "f.bin", SIZE, 42).unwrap();
    let bytes = std::fs::read(nginx.www().join("f.bin")).unwrap();
    assert_eq!(sha256(&bytes), digest);
    Some((nginx, digest, bytes))
}

async fn get(nginx: &Nginx, path: &str, headers: &[(&str, &str)]) -> Response {
    http1::get(nginx.http_addr(), path, headers).await.unwrap()
}

#[test]
fn random_files_are_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_random_file(dir.path(), "a", 5_000_000, 9).unwrap();
    let b = write_random_file(dir.path(), "b", 5_000_000, 9).unwrap();
    let c = write_random_file(dir.path(), "c", 5_000_000, 10).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(sha256_file(&dir.path().join("a")).unwrap(), a);
    assert_eq!(
        std::fs::metadata(dir.path().join("a")).unwrap().len(),
        5_000_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_serves_full_and_ranged_gets() {
    let Some((nginx, digest, bytes)) = nginx_with_file() else {
        return;
    };
    bounded(async {
        let full = get(&nginx, "/f.bin", &[]).await;
        assert_eq!(full.status, 200);
        assert_eq!(sha256(&full.body), digest);
        assert_eq!(full.header("accept-ranges"), Some("bytes"));
        assert!(full.header("etag").is_some());
        assert!(full.header("last-modified").is_some());

        let part = get(&nginx, "/f.bin", &[("Range", "bytes=100-199")]).await;
        assert_eq!(part.status, 206);
        assert_eq!(part.body, &bytes[100..200]);
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes 100-199/{SIZE}").as_str())
        );

        let etag = full.header("etag").unwrap();
        let if_range = get(
            &nginx,
            "/f.bin",
            &[("Range", "bytes=0-9"), ("If-Range", etag)],
        )
        .await;
        assert_eq!(if_range.status, 206);
        let stale = get(
            &nginx,
            "/f.bin",
            &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
        )
        .await;
        assert_eq!(stale.status, 200);
        assert_eq!(stale.body.len() as u64, SIZE);

        let slow = get(&nginx, "/slow/f.bin", &[("Range", "bytes=0-99")]).await;
        assert_eq!(slow.status, 206);
        assert_eq!(slow.body, &bytes[..100]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_norange_ignores_range() {
    let Some((nginx, digest, _)) = nginx_with_file() else {
        return;
    };
    bounded(async {
        let r = get(&nginx, "/norange/f.bin", &[("Range", "bytes=100-199")]).await;
        assert_eq!(r.status, 200);
        assert_eq!(sha256(&r.body), digest);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_chunked_has_no_length() {
    let Some((nginx, digest, _)) = nginx_with_file() else {
        return;
    };
    bounded(async {
        let r = get(&nginx, "/chunked/f.bin", &[]).await;
        assert_eq!(r.status, 200);
        assert!(r.is_chunked(), "headers: {:?}", r.headers);
        assert_eq!(r.header("content-length"), None);
        assert_eq!(sha256(&r.body), digest);

        let ranged = get(&nginx, "/chunked/f.bin", &[("Range", "bytes=0-9")]).await;
        assert_eq!(ranged.status, 200);
        assert_eq!(sha256(&ranged.body), digest);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_redirects() {
    let Some((nginx, _, _)) = nginx_with_file() else {
        return;
    };
    bounded(async {
        let one = get(&nginx, "/redirect/1/x", &[]).await;
        assert_eq!(one.status, 302);
        assert_eq!(one.header("location"), Some(nginx.http_url("/x").as_str()));

        let three = get(&nginx, "/redirect/3/f.bin", &[]).await;
        assert_eq!(three.status, 302);
        assert_eq!(
            three.header("location"),
            Some(nginx.http_url("/redirect/2/f.bin").as_str())
        );

        let cross = get(&nginx, "/xredirect/f.bin", &[]).await;
        assert_eq!(cross.status, 302);
        assert_eq!(
            cross.header("location"),
            Some(nginx.https_url("/f.bin").as_str())
        );

        let down = get(&nginx, "/downgrade/f.bin", &[]).await;
        assert_eq!(
            down.header("location"),
            Some(nginx.http_url("/f.bin").as_str())
        );

        let looped = get(&nginx, "/loop/f.bin", &[]).await;
        assert_eq!(looped.status, 302);
        assert_eq!(
            looped.header("location"),
            Some(nginx.http_url("/loop/f.bin").as_str())
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_private_needs_basic_auth() {
    let Some((nginx, digest, _)) = nginx_with_file() else {
        return;
    };
    bounded(async {
        let anonymous = get(&nginx, "/private/f.bin", &[]).await;
        assert_eq!(anonymous.status, 401);
        assert!(
            anonymous
                .header("www-authenticate")
                .unwrap()
                .starts_with("Basic")
        );

        // base64("dlm:secret")
        let authed = get(
            &nginx,
            "/private/f.bin",
            &[("Authorization", "Basic ZGxtOnNlY3JldA==")],
        )
        .await;
        assert_eq!(authed.status, 200);
        assert_eq!(sha256(&authed.body), digest);

        // base64("dlm:wrong")
        let wrong = get(
            &nginx,
            "/private/f.bin",
            &[("Authorization", "Basic ZGxtOndyb25n")],
        )
        .await;
        assert_eq!(wrong.status, 401);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_status_codes() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    bounded(async {
        assert_eq!(get(&nginx, "/status/404", &[]).await.status, 404);
        assert_eq!(get(&nginx, "/status/500", &[]).await.status, 500);
        let unavailable = get(&nginx, "/status/503", &[]).await;
        assert_eq!(unavailable.status, 503);
        assert_eq!(unavailable.header("retry-after"), Some("1"));
        assert_eq!(get(&nginx, "/no-such-file", &[]).await.status, 404);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_access_log_counts_bytes_sent() {
    let Some((nginx, _, _)) = nginx_with_file() else {
        return;
    };
    bounded(async {
        assert_eq!(nginx.bytes_sent("/f.bin"), 0);
        get(&nginx, "/f.bin", &[("Range", "bytes=0-999")]).await;
        let first = nginx.wait_for_requests("/f.bin", 1, TEST_TIMEOUT);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].status, 206);
        assert_eq!(first[0].body_bytes_sent, 1000);
        assert_eq!(first[0].range.as_deref(), Some("bytes=0-999"));
        let after_one = nginx.bytes_sent("/f.bin");
        assert!(after_one > 1000, "{after_one}");

        get(&nginx, "/f.bin", &[]).await;
        nginx.wait_for_requests("/f.bin", 2, TEST_TIMEOUT);
        let after_two = nginx.bytes_sent("/f.bin");
        assert!(after_two > after_one + SIZE, "{after_one} then {after_two}");
        assert_eq!(nginx.bytes_sent("/slow/"), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_https_with_curl() {
    let Some((nginx, digest, _)) = nginx_with_file() else {
        return;
    };
    let Some(curl) = which("curl").or_else(|| missing_peer("curl")) else {
        return;
    };
    bounded(async {
        for (version_flag, expected) in [("--http2", "2"), ("--http1.1", "1.1")] {
            let out_dir = tempfile::tempdir().unwrap();
            let out = out_dir.path().join("f.bin");
            let output = tokio::process::Command::new(&curl)
                .args(["-sS", "--fail", version_flag, "--cacert"])
                .arg(nginx.ca_pem())
                .arg("-o")
                .arg(&out)
                .args(["-w", "%{http_version}"])
                .arg(nginx.https_url("/f.bin"))
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
            assert_eq!(sha256_file(&out).unwrap(), digest);
        }
    })
    .await;
}

/// The leaf certificate must satisfy rustls (webpki): CA:FALSE, serverAuth, SAN 127.0.0.1.
#[test]
fn nginx_https_with_rustls() {
    let Some((nginx, _, bytes)) = nginx_with_file() else {
        return;
    };
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(nginx.ca_pem()).unwrap();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    for name in ["127.0.0.1", "localhost"] {
        let server_name = rustls::pki_types::ServerName::try_from(name).unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config.clone()), server_name).unwrap();
        let tcp = TcpStream::connect(nginx.https_addr()).unwrap();
        // Bounds a hang; asserts nothing about speed.
        tcp.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let req = format!(
            "GET /f.bin HTTP/1.1\r\nHost: {name}\r\nRange: bytes=5-14\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        // nginx closes without close_notify sometimes; what arrived before is enough.
        let _ = tls.read_to_end(&mut raw);
        let r = Response::parse(&raw).unwrap();
        assert_eq!(r.status, 206, "{name}");
        assert_eq!(r.body, &bytes[5..15], "{name}");
    }
}

#[test]
fn nginx_stops_master_and_workers_on_drop() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let master = nginx.pid();
    let workers = children_of(master);
    assert!(!workers.is_empty(), "no worker under nginx master {master}");
    drop(nginx);
    assert!(
        !Path::new(&format!("/proc/{master}")).exists(),
        "master {master} still there"
    );
    for worker in workers {
        assert!(
            !Path::new(&format!("/proc/{worker}")).exists(),
            "worker {worker} still there"
        );
    }
}

/// PIDs whose parent is `pid`, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, ...
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) == Some(pid) {
            children.push(child);
        }
    }
    children
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_server_ignores_range() {
    let dir = tempfile::tempdir().unwrap();
    let digest = write_random_file(dir.path(), "f.bin", SIZE, 5).unwrap();
    let Some(server) = PythonHttp::start(dir.path()) else {
        return;
    };
    bounded(async {
        let r = http1::get(server.addr(), "/f.bin", &[("Range", "bytes=0-9")])
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some(SIZE.to_string().as_str()));
        assert_eq!(sha256(&r.body), digest);
        let missing = http1::get(server.addr(), "/nope", &[]).await.unwrap();
        assert_eq!(missing.status, 404);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_proxy_cuts_after_n_bytes() {
    let Some((nginx, digest, _)) = nginx_with_file() else {
        return;
    };
    bounded(async {
        let opts = CutProxyOptions {
            cut_connections: Some(1),
            ..CutProxyOptions::cut_after(100_000)
        };
        let proxy = CutProxy::start(nginx.http_addr(), opts).await.unwrap();

        let cut = http1::request_raw(proxy.addr(), "GET", "/f.bin", &[])
            .await
            .unwrap();
        assert_eq!(cut.len(), 100_000);
        assert_eq!(proxy.connections(), 1);
        assert_eq!(proxy.cuts(), 1);

        // Only the first connection is cut; the second one goes through whole.
        let whole = http1::get(proxy.addr(), "/f.bin", &[]).await.unwrap();
        assert_eq!(sha256(&whole.body), digest);
        assert_eq!(proxy.connections(), 2);
        assert_eq!(proxy.cuts(), 1);

        // Both requests reached nginx; the cut one is logged once nginx notices the closed connection.
        assert_eq!(nginx.wait_for_requests("/f.bin", 2, TEST_TIMEOUT).len(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_proxy_reset_and_runtime_limit() {
    let Some((nginx, _, _)) = nginx_with_file() else {
        return;
    };
    bounded(async {
        let opts = CutProxyOptions {
            mode: CutMode::Reset,
            ..CutProxyOptions::cut_after(50_000)
        };
        let proxy = CutProxy::start(nginx.http_addr(), opts).await.unwrap();
        // A reset may arrive before any byte is read: that is an error, i.e. nothing received.
        let got = http1::request_raw(proxy.addr(), "GET", "/f.bin", &[])
            .await
            .map_or(0, |raw| raw.len());
        assert!(got <= 50_000, "{got}");
        assert_eq!(proxy.cuts(), 1);

        proxy.set_cut_after(None);
        let whole = http1::get(proxy.addr(), "/f.bin", &[]).await.unwrap();
        assert_eq!(whole.body.len() as u64, SIZE);
        assert_eq!(proxy.cuts(), 1);
        assert_eq!(proxy.connections(), 2);
    })
    .await;
}
