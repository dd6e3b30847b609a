//! The command line's convenience flags for protocol settings, each the
//! short form of one or more `-O SECTION.KEY=VALUE` settings.

use std::path::PathBuf;

use clap::Args;
use dlm_core::Options;

use crate::size::parse_size;

/// The environment variable that, set to anything but `0`, `false`, `no` or `off`, acts as
/// `--no-port-mapping` for `dlm` and `dlmd` (tests set it, so they never ask a real gateway).
pub const NO_PORT_MAPPING_ENV: &str = "DLM_NO_PORT_MAPPING";

/// Options shared by every command that talks to a server.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// Extra request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// User-Agent header.
    #[arg(long, value_name = "UA")]
    pub user_agent: Option<String>,
    /// Proxy URL for all requests (http://, socks5://, socks5h://); default: from HTTP_PROXY/HTTPS_PROXY/ALL_PROXY.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Hosts that bypass the proxy (comma-separated, like NO_PROXY).
    #[arg(long, value_name = "HOSTS")]
    pub no_proxy: Option<String>,
    /// Trust the CA certificates in this PEM file instead of the built-in roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify TLS certificates (dangerous).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Send -H Authorization/Cookie, URL and netrc logins to the hosts redirects lead to as well
    /// (curl's --location-trusted; by default they go only to the origin they were given for).
    #[arg(long)]
    pub location_trusted: bool,
    /// Follow redirects from https to plain http (refused by default).
    #[arg(long)]
    pub allow_insecure_redirect: bool,
    /// Offer HTTP/2 on HTTPS (default: HTTP/1.1 with one TCP connection per range).
    #[arg(long)]
    pub http2: bool,
    /// Seconds allowed for connecting (TCP + TLS).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub connect_timeout: u64,
    /// Seconds without any received byte before a connection is retried.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
    /// Do not read credentials from ~/.netrc.
    #[arg(long)]
    pub no_netrc: bool,
    /// FTP: secure control and data connections with AUTH TLS (explicit FTPS).
    #[arg(long)]
    pub ftp_ssl: bool,
    /// FTP: active mode (the server connects back to us) instead of passive.
    #[arg(long)]
    pub ftp_active: bool,
    /// S3: a custom endpoint (MinIO, Ceph, R2…), path-style addressing; default: AWS_ENDPOINT_URL or AWS.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// S3: the region (default: AWS_REGION, the profile's region, us-east-1).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// S3: the profile in ~/.aws/credentials and ~/.aws/config (default: AWS_PROFILE, default).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// S3: send requests unsigned (public buckets).
    #[arg(long)]
    pub no_sign_request: bool,
    /// A peer to connect to (repeatable). BitTorrent: host:port, besides the trackers'. IPFS: a
    /// multiaddr ending in /p2p/PEER-ID, fetched from over bitswap.
    #[arg(long = "peer", value_name = "ADDR", value_parser = parse_peer)]
    pub peers: Vec<PeerArg>,
    /// IPFS: a trustless gateway to fetch blocks from (repeatable; replaces the default public list).
    #[arg(long = "gateway", value_name = "URL")]
    pub gateways: Vec<url::Url>,
    /// IPFS: use no gateway; blocks come over bitswap from --peer (and --dht) only.
    #[arg(long, conflicts_with = "gateways")]
    pub no_gateway: bool,
    /// IPFS: look up providers in the public Kademlia DHT (through its bootstrap peers).
    #[arg(long)]
    pub dht: bool,
    /// BitTorrent: most peers connected at once (each downloads its own pieces).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub max_peers: usize,
    /// BitTorrent: port to accept peers on while downloading (or the next nine; 0: any).
    #[arg(long, value_name = "PORT", default_value_t = 6881)]
    pub listen_port: u16,
    /// BitTorrent: accept no incoming peers (outgoing connections still upload).
    #[arg(long)]
    pub no_listen: bool,
    /// BitTorrent: find no peers through the DHT and announce nothing there (BEP 5; private torrents never use it).
    #[arg(long)]
    pub no_dht: bool,
    /// BitTorrent: announce on the LAN and find peers there (local service discovery, BEP 14; off by default,
    /// never for private torrents).
    #[arg(long)]
    pub lsd: bool,
    /// BitTorrent: no uTP (BEP 29): connect to peers and accept them over TCP only.
    #[arg(long)]
    pub no_utp: bool,
    /// BitTorrent: do not map the listening and DHT ports on the NAT gateway (UPnP IGD, NAT-PMP, PCP;
    /// on by default).
    #[arg(long, env = NO_PORT_MAPPING_ENV, value_parser = clap::builder::FalseyValueParser::new())]
    pub no_port_mapping: bool,
    /// BitTorrent: limit upload speed, bytes/s with K/M/G suffixes.
    #[arg(long, value_name = "RATE", value_parser = parse_size)]
    pub upload_limit: Option<u64>,
    /// A protocol setting, SECTION.KEY=VALUE (repeatable; wins over the flags above), e.g.
    /// bittorrent.max_peers=80, http.idle_timeout=2m, ipfs.gateways=URL,URL, s3.path_style=true.
    #[arg(short = 'O', long = "option", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
}

/// 0-based file indexes from `--select-file`.
#[derive(Clone, Debug)]
pub struct FileList(pub Vec<usize>);

/// Parses `1,3-5` into 0-based file indexes.
pub fn parse_file_list(s: &str) -> Result<FileList, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let n = |x: &str| -> Result<usize, String> {
            x.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{x:?} is not a file number (1, 2, …)"))
        };
        let (a, b) = (n(a)?, n(b)?);
        if b < a || b - a > 1_000_000 {
            return Err(format!("{part:?} is not a range of file numbers"));
        }
        out.extend((a..=b).map(|i| i - 1));
    }
    if out.is_empty() {
        return Err("no file numbers given".into());
    }
    Ok(FileList(out))
}

/// A `--peer`: a BitTorrent peer's address or an IPFS peer's multiaddr.
#[derive(Clone, Debug)]
pub enum PeerArg {
    /// `host:port`.
    Torrent(std::net::SocketAddr),
    /// `/ip4/…/tcp/…/p2p/…`.
    Ipfs(dlm_ipfs::Multiaddr),
}

fn parse_peer(s: &str) -> Result<PeerArg, String> {
    if s.starts_with('/') {
        dlm_ipfs::parse_peer(s)
            .map(PeerArg::Ipfs)
            .map_err(|e| e.to_string())
    } else {
        s.parse()
            .map(PeerArg::Torrent)
            .map_err(|e| format!("{s:?} is neither host:port nor a multiaddr: {e}"))
    }
}

impl NetArgs {
    /// Every setting the flags give, as `section.key=value` pairs, `-O`
    /// pairs last (so they win), per-download ones (`http.header`) included.
    ///
    /// # Errors
    /// A `-O` that is not `KEY=VALUE`.
    pub fn options(&self) -> Result<Options, String> {
        let mut o = super::state_options(&crate::state::default_cache_dir());
        let secs = |n: u64| format!("{}s", n.max(1));
        for h in &self.headers {
            o = o.with(dlm_http::OPTION_HEADER, h.clone());
        }
        if let Some(ua) = &self.user_agent {
            o = o.with("http.user_agent", ua.clone());
        }
        if let Some(p) = &self.proxy {
            o = o.with("http.proxy", p.clone());
        }
        if let Some(n) = &self.no_proxy {
            o = o.with("http.no_proxy", n.clone());
        }
        for section in ["http", "ftp"] {
            if let Some(ca) = &self.ca_file {
                o = o.with(format!("{section}.ca_file"), ca.display().to_string());
            }
            if self.insecure {
                o = o.with(format!("{section}.insecure"), "true");
            }
            if self.no_netrc {
                o = o.with(format!("{section}.netrc"), "off");
            }
            o = o
                .with(
                    format!("{section}.connect_timeout"),
                    secs(self.connect_timeout),
                )
                .with(format!("{section}.idle_timeout"), secs(self.timeout));
        }
        if self.http2 {
            o = o.with("http.http2", "true");
        }
        if self.location_trusted {
            o = o.with("http.location_trusted", "true");
        }
        if self.allow_insecure_redirect {
            o = o.with("http.allow_insecure_redirect", "true");
        }
        if self.ftp_ssl {
            o = o.with("ftp.explicit_tls", "true");
        }
        if self.ftp_active {
            o = o.with("ftp.active", "true");
        }
        if let Some(e) = &self.endpoint_url {
            o = o.with("s3.endpoint_url", e.clone());
        }
        if let Some(r) = &self.region {
            o = o.with("s3.region", r.clone());
        }
        if let Some(p) = &self.profile {
            o = o.with("s3.profile", p.clone());
        }
        if self.no_sign_request {
            o = o.with("s3.anonymous", "true");
        }
        let json = |v: serde_json::Value| v.to_string();
        let (mut torrent_peers, mut ipfs_peers) = (Vec::new(), Vec::new());
        for p in &self.peers {
            match p {
                PeerArg::Torrent(a) => torrent_peers.push(a.to_string()),
                PeerArg::Ipfs(m) => ipfs_peers.push(m.to_string()),
            }
        }
        for (key, peers) in [
            ("bittorrent.peers", torrent_peers),
            ("ipfs.peers", ipfs_peers),
        ] {
            if !peers.is_empty() {
                o = o.with(key, json(peers.into()));
            }
        }
        if self.no_gateway {
            o = o.with("ipfs.gateways", "[]");
        } else if !self.gateways.is_empty() {
            let g: Vec<String> = self.gateways.iter().map(ToString::to_string).collect();
            o = o.with("ipfs.gateways", json(g.into()));
        }
        if self.dht {
            o = o.with("ipfs.dht", "true");
        }
        o = o.with("bittorrent.max_peers", self.max_peers.to_string());
        if self.no_dht {
            o = o.with("bittorrent.dht", "false");
        }
        if self.lsd {
            o = o.with("bittorrent.lsd", "true");
        }
        if self.no_utp {
            o = o.with("bittorrent.utp", "false");
        }
        if self.no_port_mapping {
            o = o.with("bittorrent.port_mapping", "false");
        }
        o = o.with(
            "bittorrent.listen_port",
            if self.no_listen {
                "null".to_string()
            } else {
                self.listen_port.to_string()
            },
        );
        if let Some(l) = self.upload_limit {
            o = o.with("bittorrent.upload_limit", l.to_string());
        }
        for kv in &self.settings {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("-O {kv:?} is not KEY=VALUE"))?;
            o = o.with(k.trim(), v.trim());
        }
        Ok(o)
    }

    /// The per-download settings among [`NetArgs::options`] (`http.header`),
    /// for [`ProtocolRegistry::target`](dlm_core::ProtocolRegistry::target).
    ///
    /// # Errors
    /// As [`NetArgs::options`].
    pub fn per_download(&self) -> Result<Options, String> {
        let mut o = Options::new();
        for (k, v) in self.options()?.pairs {
            if super::is_per_download(&k) {
                o = o.with(k, v);
            }
        }
        Ok(o)
    }
}
