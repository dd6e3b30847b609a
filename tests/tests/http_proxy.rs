//! Downloads through real forward proxies: tinyproxy as an HTTP proxy
//! (absolute-form requests for `http://`, `CONNECT` tunnels for `https://`)
//! and microsocks as a SOCKS5 proxy, each in front of nginx on 127.0.0.1.
//! Each test checks the bytes and that the proxy really carried the traffic.

use std::time::Duration;

use dlm_core::{Download, DownloadOptions, Input, Options, Output, ProtocolRegistry};
use dlm_http::{HttpConfig, NetrcMode};
use dlm_tests::{ForwardProxy, Nginx, NginxOptions, ProxyKind, sha256_file, write_random_file};

/// Bounds each test (a hang only; nothing here is about speed).
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const MIB: u64 = 1 << 20;

async fn download_via(proxy: &str, nginx: &Nginx, url: &str, name: &str) -> String {
    let config = HttpConfig::default()
        .with_proxy_from_env(false)
        .with_netrc(NetrcMode::Off)
        .with_proxy(proxy)
        .with_ca_file(nginx.ca_pem());
    let mut registry = ProtocolRegistry::new();
    dlm_http::register_with(&mut registry, config).unwrap();
    let source = registry
        .source(&Input::parse(url), &Options::new())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    let done = Download::new(source, Output::File(out.clone()))
        .with_options(
            DownloadOptions::default()
                .with_connections(4)
                .with_max_chunk_bytes(Some(MIB)),
        )
        .start()
        .wait()
        .await
        .unwrap_or_else(|e| panic!("download of {url} through {proxy}: {e}"));
    assert_eq!(done.bytes, 6 * MIB + 7);
    sha256_file(&out).unwrap()
}

fn run(body: impl std::future::Future<Output = ()>) {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body);
}

#[test]
fn http_proxy_carries_http_and_https() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let Some(proxy) = ForwardProxy::start(ProxyKind::Http) else {
        return;
    };
    let sha = write_random_file(nginx.www(), "p.bin", 6 * MIB + 7, 11).unwrap();
    run(async {
        let plain = nginx.http_url("/p.bin");
        assert_eq!(
            download_via(&proxy.url(), &nginx, &plain, "p.bin").await,
            sha
        );
        let secure = nginx.https_url("/p.bin");
        assert_eq!(
            download_via(&proxy.url(), &nginx, &secure, "p.bin").await,
            sha
        );
    });
    let log = proxy.log();
    // Plain HTTP goes as absolute-form requests, HTTPS through a CONNECT tunnel.
    assert!(
        log.contains(&format!("GET http://127.0.0.1:{}/p.bin", nginx.http_port())),
        "{log}"
    );
    assert!(log.contains("CONNECT"), "{log}");
}

#[test]
fn socks5_proxy_carries_https() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let Some(proxy) = ForwardProxy::start(ProxyKind::Socks5) else {
        return;
    };
    let sha = write_random_file(nginx.www(), "s.bin", 6 * MIB + 7, 12).unwrap();
    run(async {
        let secure = nginx.https_url("/s.bin");
        assert_eq!(
            download_via(&proxy.url(), &nginx, &secure, "s.bin").await,
            sha
        );
    });
    // Every request came through the proxy: nginx saw only the proxy's connections, and the proxy logged clients.
    assert!(!proxy.log().is_empty(), "microsocks logged no client");
    assert!(nginx.bytes_sent("/s.bin") >= 6 * MIB);
}
