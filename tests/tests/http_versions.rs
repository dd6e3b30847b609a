//! HTTP/2 through ALPN against nginx's HTTPS port (which offers h2 and
//! HTTP/1.1), next to the HTTP/1.1 default: same bytes, and nginx's log shows
//! which protocol each request used.

use std::time::Duration;

use dlm_core::{Download, DownloadOptions, Input, Options, Output, ProtocolRegistry};
use dlm_http::{HttpConfig, NetrcMode};
use dlm_tests::{Nginx, NginxOptions, sha256_file, write_random_file};

/// Bounds each download (a hang only; nothing here is about speed).
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const MIB: u64 = 1 << 20;

fn download(nginx: &Nginx, http2: bool, name: &str) -> String {
    let config = HttpConfig::default()
        .with_proxy_from_env(false)
        .with_netrc(NetrcMode::Off)
        .with_ca_file(nginx.ca_pem())
        .with_http2(http2);
    let mut registry = ProtocolRegistry::new();
    dlm_http::register_with(&mut registry, config).unwrap();
    let url = nginx.https_url(&format!("/{name}"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    dlm_tests::runtime::e2e(TEST_TIMEOUT, async {
        let source = registry
            .source(&Input::parse(&url), &Options::new())
            .await
            .unwrap();
        let download = Download::new(source, Output::File(out.clone())).with_options(
            DownloadOptions::default()
                .with_connections(4)
                .with_max_chunk_bytes(Some(MIB)),
        );
        download.start().wait().await.expect("download")
    });
    sha256_file(&out).unwrap()
}

#[test]
fn http2_by_alpn_and_http1_by_default() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let sha = write_random_file(nginx.www(), "h2.bin", 5 * MIB + 3, 21).unwrap();
    std::fs::copy(nginx.www().join("h2.bin"), nginx.www().join("h1.bin")).unwrap();

    assert_eq!(download(&nginx, true, "h2.bin"), sha);
    assert_eq!(download(&nginx, false, "h1.bin"), sha);

    let h2 = nginx.wait_for_requests("/h2.bin", 6, Duration::from_secs(15));
    assert!(h2.iter().all(|e| e.protocol == "HTTP/2.0"), "{h2:?}");
    let h1 = nginx.wait_for_requests("/h1.bin", 6, Duration::from_secs(15));
    assert!(h1.iter().all(|e| e.protocol == "HTTP/1.1"), "{h1:?}");
}
