//! Test support for dlm's cross-crate integration tests.
//!
//! Every helper here runs a **real** peer on 127.0.0.1: nginx (HTTP/1.1, HTTPS with h2, Range, redirects, Basic
//! auth, chunked bodies, rate limits), Python's `http.server` (a server that ignores Range), vsftpd and pure-ftpd
//! (FTP, FTPS, anonymous, local and virtual users), pyftpdlib with injected faults (dropped data connections,
//! hostile listings), s3s-fs (S3 with real SigV4 checking; boto3 for presigned URLs and uploads), BitTorrent
//! peers ([`bt`]: opentracker, libtorrent, Transmission, aria2c, torrents made by mktorrent), IPFS peers
//! ([`ipfs`]: a Helia node with trustless gateways, Kubo as a bitswap peer), and test-owned TCP proxies that cut
//! connections after a set number of bytes or count and pace what a server sends; [`Tmpfs`] mounts a small file
//! system to run out of space on; [`Miniupnpd`] is a NAT gateway (UPnP IGD, NAT-PMP, PCP) in network namespaces of
//! the test's own. Each peer gets a free port and its own temp dir, and is stopped by PID
//! when its handle is dropped.
//!
//! A peer program that is not installed makes its `start` return `None` after printing
//! `skipping: <name> not installed` to stderr, so the test can return early. Under `DLM_REQUIRE_PEERS=1` (CI) it
//! panics instead; see [`peer::missing_peer`].
//!
//! [`Dlmd`] runs dlm's own daemon (the `examples/dlmd` binary) the same way, with a small client for its REST API
//! and event stream.
//!
//! ```no_run
//! # async fn demo() {
//! use dlm_tests::{Nginx, NginxOptions, write_random_file};
//!
//! let Some(nginx) = Nginx::start(NginxOptions::default()) else { return };
//! let sha256 = write_random_file(nginx.www(), "f.bin", 4 << 20, 7).unwrap();
//! let url = nginx.http_url("/f.bin");
//! # let _ = (sha256, url);
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

pub mod access_log;
pub mod bt;
pub mod cli;
pub mod counting_proxy;
pub mod cut_proxy;
pub mod digest;
pub mod dlmd;
pub mod fixture;
pub mod forward_proxy;
pub mod http1;
pub mod ipfs;
pub mod nat;
pub mod nginx;
pub mod peer;
pub mod pure_ftpd;
pub mod pyftpdlib;
pub mod python_http;
pub mod runtime;
pub mod s3_server;
pub mod through;
pub mod tls;
pub mod tmpfs;
pub mod vsftpd;

pub use access_log::AccessLogEntry;
pub use bt::{
    Aria2Leecher, Aria2Options, Aria2Seeder, FixtureFile, LibtorrentOptions, LibtorrentPeer,
    LtPeerStats, LtStatus, LtTorrentStatus, ScrapeCounts, StaticTracker, TorrentFixture,
    TorrentSpec, Tracker, TransmissionSeeder,
};
pub use cli::{
    DlmRun, DlmSeed, JsonRun, dlm_binary, dlm_command, dlm_json_run, dlm_kill_and_resume, dlm_run,
};
pub use counting_proxy::CountingProxy;
pub use cut_proxy::{CutMode, CutProxy, CutProxyOptions};
pub use digest::sha256_file;
pub use dlmd::{DLMD_TOKEN, Dlmd, DlmdOptions, EventStream, SseEvent, dlmd_binary};
pub use fixture::{walk, write_random_file};
pub use forward_proxy::{ForwardProxy, ProxyKind};
pub use ipfs::{AddSpec, HeliaConfig, HeliaNode, KuboNode};
pub use nat::{Miniupnpd, MiniupnpdOptions};
pub use nginx::{CredentialsLogEntry, Nginx, NginxOptions};
pub use peer::{
    ChildGuard, free_port, free_ports, missing_peer, require_peers, wait_for_port, which,
};
pub use pure_ftpd::{PURE_FTPD_PASSWORD, PURE_FTPD_USER, PureFtpd};
pub use pyftpdlib::{PyFtpd, PyFtpdOptions};
pub use python_http::PythonHttp;
pub use s3_server::{
    Boto3Upload, S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, S3Server, StoredChecksum, StoredObject,
};
pub use tls::TlsFiles;
pub use tmpfs::Tmpfs;
pub use vsftpd::{VSFTPD_LOCAL_PASSWORD, VSFTPD_LOCAL_USER, Vsftpd, VsftpdOptions};
