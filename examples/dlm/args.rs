//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// dlm: download anything, with many connections, resume and verification.
#[derive(Debug, Parser)]
#[command(name = "dlm", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Download URL (resumes when a partial download is found).
    Get(GetArgs),
    /// Show what the server says about URL without downloading it.
    Info(InfoArgs),
    /// Talk to a running dlmd.
    Remote(RemoteArgs),
    /// S3 helpers.
    S3(S3Args),
    /// Seed a torrent whose files are in DIR (re-checked first) to peers that connect.
    Seed(SeedArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SeedArgs {
    /// The .torrent file.
    pub(crate) torrent: PathBuf,
    /// The directory holding the torrent's files (as `dlm get -d DIR` left them).
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub(crate) dir: PathBuf,
    /// Address to accept peers on (port 0: any free port, printed on start).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6881")]
    pub(crate) listen: std::net::SocketAddr,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub(crate) seed_time: Option<u64>,
    /// Stop once uploaded bytes reach this multiple of the torrent's size.
    #[arg(long, value_name = "RATIO")]
    pub(crate) seed_ratio: Option<f64>,
    #[command(flatten)]
    pub(crate) net: NetArgs,
}

#[derive(Debug, Args)]
pub(crate) struct S3Args {
    #[command(subcommand)]
    pub(crate) command: S3Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum S3Command {
    /// Print a presigned HTTPS URL for s3://BUCKET/KEY that anyone can GET until it expires.
    Presign {
        /// The object, s3://BUCKET/KEY.
        url: String,
        /// Seconds the URL stays valid (1 to 604800).
        #[arg(long, value_name = "SECS", default_value_t = 3600)]
        expires: u64,
        #[command(flatten)]
        net: NetArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RemoteArgs {
    /// The daemon.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:6800",
        env = "DLM_SERVER"
    )]
    pub(crate) server: String,
    /// dlmd's state directory, where its token is (default: $XDG_DATA_HOME/dlm); DLM_TOKEN wins.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: RemoteCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RemoteCommand {
    /// Queue one job per URL.
    Add {
        /// What to download.
        #[arg(required = true)]
        urls: Vec<String>,
        /// Destination relative to the daemon's download directory.
        #[arg(long)]
        dest: Option<String>,
        /// Connections per job.
        #[arg(short = 'c', long)]
        connections: Option<u32>,
        /// Expected digest, ALGO=HEX.
        #[arg(long)]
        checksum: Option<String>,
        /// Rate limit per job, e.g. 10M.
        #[arg(long, value_parser = parse_size)]
        limit_rate: Option<u64>,
        /// Higher runs first.
        #[arg(long)]
        priority: Option<i32>,
    },
    /// List jobs.
    Ls {
        /// Only jobs in this state (queued, running, paused, completed, failed, cancelled).
        #[arg(long)]
        state: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pause a job.
    Pause {
        /// Job id.
        id: i64,
    },
    /// Resume a paused or failed job.
    Resume {
        /// Job id.
        id: i64,
    },
    /// Cancel a job.
    Rm {
        /// Job id.
        id: i64,
        /// Also delete the partial file.
        #[arg(long)]
        delete_file: bool,
    },
    /// Follow the daemon's events with live progress bars.
    Watch,
}

/// Options shared by every command that talks to a server.
#[derive(Debug, Args)]
pub(crate) struct NetArgs {
    /// Extra request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub(crate) headers: Vec<String>,
    /// User-Agent header.
    #[arg(long, value_name = "UA")]
    pub(crate) user_agent: Option<String>,
    /// Proxy URL for all requests (http://, socks5://, socks5h://); default: from HTTP_PROXY/HTTPS_PROXY/ALL_PROXY.
    #[arg(long, value_name = "URL")]
    pub(crate) proxy: Option<String>,
    /// Hosts that bypass the proxy (comma-separated, like NO_PROXY).
    #[arg(long, value_name = "HOSTS")]
    pub(crate) no_proxy: Option<String>,
    /// Trust the CA certificates in this PEM file instead of the built-in roots.
    #[arg(long, value_name = "PEM")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Do not verify TLS certificates (dangerous).
    #[arg(short = 'k', long)]
    pub(crate) insecure: bool,
    /// Offer HTTP/2 on HTTPS (default: HTTP/1.1 with one TCP connection per range).
    #[arg(long)]
    pub(crate) http2: bool,
    /// Seconds allowed for connecting (TCP + TLS).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub(crate) connect_timeout: u64,
    /// Seconds without any received byte before a connection is retried.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub(crate) timeout: u64,
    /// Do not read credentials from ~/.netrc.
    #[arg(long)]
    pub(crate) no_netrc: bool,
    /// FTP: secure control and data connections with AUTH TLS (explicit FTPS).
    #[arg(long)]
    pub(crate) ftp_ssl: bool,
    /// FTP: active mode (the server connects back to us) instead of passive.
    #[arg(long)]
    pub(crate) ftp_active: bool,
    /// S3: a custom endpoint (MinIO, Ceph, R2…), path-style addressing; default: AWS_ENDPOINT_URL or AWS.
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
    /// S3: the region (default: AWS_REGION, the profile's region, us-east-1).
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// S3: the profile in ~/.aws/credentials and ~/.aws/config (default: AWS_PROFILE, default).
    #[arg(long, value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// S3: send requests unsigned (public buckets).
    #[arg(long)]
    pub(crate) no_sign_request: bool,
    /// A peer to connect to (repeatable). BitTorrent: host:port, besides the trackers'. IPFS: a
    /// multiaddr ending in /p2p/<peer id>, fetched from over bitswap.
    #[arg(long = "peer", value_name = "ADDR", value_parser = parse_peer)]
    pub(crate) peers: Vec<PeerArg>,
    /// IPFS: a trustless gateway to fetch blocks from (repeatable; replaces the default public list).
    #[arg(long = "gateway", value_name = "URL")]
    pub(crate) gateways: Vec<url::Url>,
    /// IPFS: use no gateway; blocks come over bitswap from --peer (and --dht) only.
    #[arg(long, conflicts_with = "gateways")]
    pub(crate) no_gateway: bool,
    /// IPFS: look up providers in the public Kademlia DHT (through its bootstrap peers).
    #[arg(long)]
    pub(crate) dht: bool,
    /// BitTorrent: download only these files, by their 1-based number in `dlm info` (e.g. 1,3-5).
    #[arg(long, value_name = "LIST", value_parser = parse_file_list)]
    pub(crate) select_file: Option<FileList>,
    /// BitTorrent: most peers connected at once (each downloads its own pieces).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub(crate) max_peers: usize,
    /// BitTorrent: port to accept peers on while downloading (or the next nine; 0: any).
    #[arg(long, value_name = "PORT", default_value_t = 6881)]
    pub(crate) listen_port: u16,
    /// BitTorrent: accept no incoming peers (outgoing connections still upload).
    #[arg(long)]
    pub(crate) no_listen: bool,
    /// BitTorrent: limit upload speed, bytes/s with K/M/G suffixes.
    #[arg(long, value_name = "RATE", value_parser = parse_size)]
    pub(crate) upload_limit: Option<u64>,
}

/// 0-based file indexes from `--select-file`.
#[derive(Clone, Debug)]
pub(crate) struct FileList(pub(crate) Vec<usize>);

/// Parses `1,3-5` into 0-based file indexes.
fn parse_file_list(s: &str) -> Result<FileList, String> {
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

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// What to download.
    pub(crate) url: String,
    /// Another URL with the same bytes (repeatable).
    #[arg(long = "mirror", value_name = "URL")]
    pub(crate) mirrors: Vec<String>,
    /// Output file ("-" for standard output).
    #[arg(short, long, value_name = "FILE", conflicts_with = "dir")]
    pub(crate) output: Option<PathBuf>,
    /// Output directory (file name from the server or the URL).
    #[arg(short, long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Connections to open at once (torrents: one per peer, see --max-peers).
    #[arg(short = 'c', long, value_name = "N", default_value_t = 8)]
    pub(crate) connections: u32,
    /// Smallest piece a range is split into, e.g. 1M.
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
    pub(crate) min_split: u64,
    /// Largest range handed to a connection at once, e.g. 64M (default: file size / (4 × connections), 4M–64M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) max_chunk: Option<u64>,
    /// Limit download speed, bytes/s with K/M/G suffixes (powers of 1024), e.g. 10M.
    #[arg(long, value_name = "RATE", value_parser = parse_size)]
    pub(crate) limit_rate: Option<u64>,
    /// Expected digest, ALGO=HEX (sha-256, sha-512, sha-1, md5).
    #[arg(long, value_name = "ALGO=HEX")]
    pub(crate) checksum: Option<String>,
    /// Skip computing the SHA-256 of the download.
    #[arg(long)]
    pub(crate) no_verify: bool,
    /// Replace an existing file.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Failed attempts without progress before a connection gives up.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub(crate) max_retries: u32,
    /// Never fsync, not even the finished file before its rename (like curl; after a power loss, not a crash, resume starts over).
    #[arg(long)]
    pub(crate) no_fsync: bool,
    /// No progress bar or summary.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Print one JSON event per line instead of a progress bar.
    #[arg(long)]
    pub(crate) json: bool,
    /// Fetch in order from the start (for playing while downloading; torrents: pieces in order instead of rarest first).
    #[arg(long)]
    pub(crate) sequential: bool,
    /// BitTorrent: keep seeding this many seconds after the download completes.
    #[arg(long, value_name = "SECS")]
    pub(crate) seed_time: Option<u64>,
    /// BitTorrent: keep seeding after the download completes until this many times its size is uploaded.
    #[arg(long, value_name = "RATIO")]
    pub(crate) seed_ratio: Option<f64>,
    #[command(flatten)]
    pub(crate) net: NetArgs,
}

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// What to look at.
    pub(crate) url: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) net: NetArgs,
}

/// Parses `10M`, `512k`, `1.5G`, `1000` (bytes; K/M/G/T are powers of 1024).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix(['b', 'B']).unwrap_or(t);
    let t = t.strip_suffix(['i']).unwrap_or(t);
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 10M"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("{s:?} is not a size like 10M"));
    }
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("fast").is_err());
        assert!(parse_size("-1M").is_err());
    }
}

/// A `--peer`: a BitTorrent peer's address or an IPFS peer's multiaddr.
#[derive(Clone, Debug)]
pub(crate) enum PeerArg {
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
