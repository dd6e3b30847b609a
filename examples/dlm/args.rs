//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use dlm_examples::protocols::NetArgs;
use dlm_examples::size::parse_size;

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

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// What to download: URLs, magnet links, paths (a .torrent), CIDs; several run -j at a time.
    #[arg(value_name = "INPUT", required_unless_present = "input_file")]
    pub(crate) urls: Vec<String>,
    /// Read inputs from FILE ("-" for standard input), one per line, with per-input options on
    /// indented KEY=VALUE lines (dir, out, checksum, select-file, connections, limit-rate,
    /// SECTION.KEY), as aria2's input file.
    #[arg(short = 'i', long, value_name = "FILE")]
    pub(crate) input_file: Option<PathBuf>,
    /// Downloads running at once with several inputs.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 5)]
    pub(crate) jobs: usize,
    /// Download only these files of a multi-file input (a torrent), by their 1-based number in
    /// `dlm info` (e.g. 1,3-5).
    #[arg(long, value_name = "LIST", value_parser = dlm_examples::protocols::flags::parse_file_list)]
    pub(crate) select_file: Option<dlm_examples::protocols::flags::FileList>,
    /// Another URL with the same bytes (repeatable).
    #[arg(long = "mirror", value_name = "URL")]
    pub(crate) mirrors: Vec<String>,
    /// Output file ("-" for standard output).
    #[arg(short, long, value_name = "FILE", conflicts_with = "dir")]
    pub(crate) output: Option<PathBuf>,
    /// Output directory (file name from the server or the URL).
    #[arg(short, long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Connections to open at once (torrents: one per peer, see --max-peers). Default: start with 1 and double while the throughput grows, up to 16.
    #[arg(short = 'c', long, value_name = "N")]
    pub(crate) connections: Option<u32>,
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
    /// Never fsync, not even for resume state (like curl; after a power loss, not a crash, resume starts over).
    #[arg(long, conflicts_with = "fsync")]
    pub(crate) no_fsync: bool,
    /// Also fsync the finished file and its directory before exiting (by default it is left to the kernel's writeback, as curl and aria2 leave theirs).
    #[arg(long)]
    pub(crate) fsync: bool,
    /// No progress bar or summary.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Print one JSON event per line instead of a progress bar.
    #[arg(long)]
    pub(crate) json: bool,
    /// Fetch in order from the start (for playing while downloading; torrents: pieces in order instead of rarest first).
    #[arg(long)]
    pub(crate) sequential: bool,
    /// Swarms (BitTorrent): keep seeding this many seconds after the download completes.
    #[arg(long, value_name = "SECS")]
    pub(crate) seed_time: Option<u64>,
    /// Swarms (BitTorrent): keep seeding after the download completes until this many times its size is uploaded.
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
