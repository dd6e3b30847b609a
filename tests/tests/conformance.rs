//! `dlm_core::testkit` against every protocol's real server on 127.0.0.1:
//! nginx (HTTP, with a missing file, a replaced file and a proxy that cuts
//! connections), vsftpd (FTP), s3s-fs (S3, with a replaced object),
//! libtorrent (BitTorrent) and Helia's trustless gateway (IPFS).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use dlm_core::testkit::{Conformance, Report};
use dlm_core::{BoxSource, Input, Options, ProtocolRegistry};
use dlm_http::{HttpConfig, NetrcMode};
use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, NO_TRACKER, TorrentSpec};
use dlm_tests::{
    AddSpec, CutProxy, CutProxyOptions, HeliaConfig, HeliaNode, Nginx, NginxOptions, S3_ACCESS_KEY,
    S3_REGION, S3_SECRET_KEY, S3Server, Vsftpd, write_random_file,
};

const TEST_TIMEOUT: Duration = Duration::from_secs(180);
const SIZE: u64 = (1 << 20) + 12_345;

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

async fn source(registry: &ProtocolRegistry, input: &str) -> BoxSource {
    registry
        .source(&Input::parse(input), &Options::new())
        .await
        .unwrap_or_else(|e| panic!("{input}: {e}"))
}

fn bytes_of(dir: &Path, name: &str, seed: u64) -> Vec<u8> {
    write_random_file(dir, name, SIZE, seed).unwrap();
    std::fs::read(dir.join(name)).unwrap()
}

fn passed(what: &str, r: Result<Report, dlm_core::testkit::Failure>) -> Report {
    let report = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!(
        "{what}: passed {:?}; skipped {:?}",
        report.checks, report.skipped
    );
    report
}

#[test]
fn http_sources_conform_against_nginx() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let expected = bytes_of(nginx.www(), "conf.bin", 1);
    bytes_of(nginx.www(), "change.bin", 2);
    let mut registry = ProtocolRegistry::new();
    dlm_http::register_with(
        &mut registry,
        HttpConfig::default()
            .with_proxy_from_env(false)
            .with_netrc(NetrcMode::Off),
    )
    .unwrap();
    run(async {
        let proxy = CutProxy::start(nginx.http_addr(), CutProxyOptions::cut_after(64 << 10))
            .await
            .unwrap();
        let changing = nginx.www().join("change.bin");
        let change = Box::pin(async move {
            // Other bytes, and a later mtime: nginx's ETag changes.
            write_random_file(changing.parent().unwrap(), "change.bin", SIZE, 3).unwrap();
            let f = std::fs::File::options()
                .write(true)
                .open(&changing)
                .unwrap();
            f.set_modified(SystemTime::now() + Duration::from_secs(3600))
                .unwrap();
        });
        let report = Conformance::new(
            source(&registry, &nginx.http_url("/conf.bin")).await,
            expected,
        )
        .with_missing(source(&registry, &nginx.http_url("/nope.bin")).await)
        .with_change(
            source(&registry, &nginx.http_url("/change.bin")).await,
            change,
        )
        .with_truncating(source(&registry, &proxy.http_url("/conf.bin")).await)
        .run()
        .await;
        let report = passed("http", report);
        assert!(report.skipped.is_empty(), "{report:?}");
    });
}

#[test]
fn ftp_sources_conform_against_vsftpd() {
    let Some(ftp) = Vsftpd::start() else { return };
    let expected = bytes_of(&ftp.root(), "conf.bin", 4);
    let mut registry = ProtocolRegistry::new();
    dlm_ftp::register_with(
        &mut registry,
        dlm_ftp::FtpConfig::default().with_netrc(NetrcMode::Off),
    )
    .unwrap();
    run(async {
        let report = Conformance::new(source(&registry, &ftp.url("conf.bin")).await, expected)
            .with_missing(source(&registry, &ftp.url("nope.bin")).await)
            .run()
            .await;
        passed("ftp", report);
    });
}

#[test]
fn s3_sources_conform_against_s3s_fs() {
    let Some(s3) = S3Server::start() else { return };
    s3.create_bucket("conf");
    let dir = tempfile::tempdir().unwrap();
    let expected = bytes_of(dir.path(), "conf.bin", 5);
    s3.put_object("conf", "conf.bin", &expected);
    s3.put_object("conf", "change.bin", &expected);
    let config = dlm_s3::S3Config::default()
        .with_use_environment(false)
        .with_region(S3_REGION)
        .with_endpoint_url(s3.endpoint().parse().unwrap())
        .with_credentials(dlm_s3::StaticCredentials {
            access_key_id: S3_ACCESS_KEY.into(),
            secret_access_key: S3_SECRET_KEY.into(),
            session_token: None,
        });
    let mut registry = ProtocolRegistry::new();
    dlm_s3::register_with(&mut registry, config).unwrap();
    run(async {
        let other = bytes_of(dir.path(), "other.bin", 6);
        let s3_ref = &s3;
        let change = Box::pin(async move {
            s3_ref.put_object("conf", "change.bin", &other);
        });
        let report = Conformance::new(
            source(&registry, &s3.s3_url("conf", "conf.bin")).await,
            expected,
        )
        .with_missing(source(&registry, &s3.s3_url("conf", "nope.bin")).await)
        .with_change(
            source(&registry, &s3.s3_url("conf", "change.bin")).await,
            change,
        )
        .run()
        .await;
        passed("s3", report);
    });
}

#[test]
fn torrent_sources_conform_against_libtorrent() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("conf.bin", SIZE)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(16)
        .with_seed(7)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    let expected = std::fs::read(fx.data_dir.join(&fx.name)).unwrap();
    let config = dlm_bittorrent::TorrentConfig::default()
        .with_peer(SocketAddr::V4(seeder.addr()))
        .with_listen_port(None)
        // The DHT's port would be mapped: never ask the real network's gateway.
        .with_port_mapping(false);
    let mut registry = ProtocolRegistry::new();
    dlm_bittorrent::register_with(&mut registry, config).unwrap();
    run(async {
        let s = source(&registry, fx.torrent_path.to_str().unwrap()).await;
        passed("bittorrent", Conformance::new(s, expected).run().await);
    });
}

#[test]
fn ipfs_sources_conform_against_helia() {
    let data = tempfile::tempdir().unwrap();
    let expected = bytes_of(data.path(), "conf.bin", 8);
    let config = HeliaConfig::default()
        .with_gateway()
        .with_add(AddSpec::new(data.path().join("conf.bin")));
    let Some(node) = HeliaNode::start(&config) else {
        return;
    };
    let ipfs = dlm_ipfs::IpfsConfig::default()
        .with_gateways(vec![node.gateway(0).parse().unwrap()])
        .with_http(
            HttpConfig::default()
                .with_proxy_from_env(false)
                .with_netrc(NetrcMode::Off),
        );
    let mut registry = ProtocolRegistry::new();
    dlm_ipfs::register(&mut registry, ipfs).unwrap();
    run(async {
        let s = source(&registry, &format!("ipfs://{}", node.cid(0))).await;
        passed("ipfs", Conformance::new(s, expected).run().await);
    });
}
