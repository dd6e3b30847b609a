//! `dlm`: the command-line embedding of the dlm library.
//!
//! ```text
//! dlm get URL [--mirror URL]... [-o FILE | -d DIR] [-c N] [--limit-rate 10M]
//!             [--checksum sha-256=HEX] [-H 'K: V'] [--proxy URL] [--ca-file PEM]
//!             [--insecure] [--quiet] [--json]
//! dlm info URL [--json]
//! ```
//!
//! Exit codes: 0 success, 1 failure, 2 bad usage, 3 integrity failure,
//! 130 interrupted (state saved; the same command resumes).

mod args;
mod exit_code;
mod progress;
mod registry;
mod remote;
mod seed;
mod torrent_get;
mod torrent_info;
mod tree;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use dlm_core::{
    Checksum, Context, Download, DownloadOptions, Error, ErrorKind, Input, Options, OrderedSink,
    Output, Probe, ProtocolRegistry, Target,
};

use crate::args::{Cli, Command, GetArgs, InfoArgs, NetArgs};
use crate::progress::Mode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DLM_LOG").unwrap_or_else(|_| "off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dlm: error: cannot start the runtime: {e}");
            return ExitCode::from(exit_code::FAILURE);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Get(a) => get(a).await,
            Command::Info(a) => info(a).await,
            Command::Remote(a) => remote::run(a).await,
            Command::S3(a) => s3(a).await,
            Command::Seed(a) => seed::run(a).await,
        }
    });
    ExitCode::from(code)
}

pub(crate) fn fail(err: &Error) -> u8 {
    eprintln!("dlm: error: {err} ({})", err.kind());
    exit_code::for_kind(err.kind())
}

pub(crate) fn usage(msg: impl std::fmt::Display) -> u8 {
    eprintln!("dlm: error: {msg}");
    exit_code::FAILURE
}

async fn get(a: GetArgs) -> u8 {
    let registry = match registry::default_registry(&a.net) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let options = Options::new();
    let torrent = match torrent_get::open(&a).await {
        Ok(t) => t,
        Err(code) => return code,
    };
    let source: dlm_core::BoxSource = match &torrent {
        Some(t) => t.clone(),
        None => match target(&registry, &a.url, &a.net).await {
            Ok(Target::Source(s)) => s,
            Ok(Target::Listing(listing)) => {
                return tree::get(&a, listing, base_options(&a), progress_mode(&a, false)).await;
            }
            Err(e) => return fail(&e),
        },
    };
    let checksum = match a
        .checksum
        .as_deref()
        .map(str::parse::<Checksum>)
        .transpose()
    {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let to_stdout = a.output.as_deref() == Some(std::path::Path::new("-"));
    let output = if to_stdout {
        Output::Sink {
            sink: Arc::new(OrderedSink::new(tokio::io::stdout())),
            control_file: None,
        }
    } else if let Some(file) = &a.output {
        Output::File(file.clone())
    } else {
        Output::Dir(a.dir.clone().unwrap_or_else(|| PathBuf::from(".")))
    };
    let mut opts = base_options(&a)
        .with_checksum(checksum)
        .with_sequential(to_stdout || a.sequential);
    if torrent.is_some() {
        // One engine connection per peer: each downloads what its peer has.
        opts = opts.with_connections(a.net.max_peers.clamp(1, 10_000) as u32);
    }
    let mut download = Download::new(source, output).with_options(opts);
    for m in &a.mirrors {
        match registry.source(&Input::parse(m), &options) {
            Ok(s) => download = download.with_mirror(s),
            Err(e) => return fail(&e),
        }
    }
    let mode = progress_mode(&a, to_stdout);
    let events = download.subscribe();
    let notices = download.subscribe();
    let handle = download.start();
    let control = handle.control();

    let interrupted = {
        let control = control.clone();
        cancel_on_signal(move || control.cancel())
    };
    let mut bar = None;
    let mut printer = None;
    match mode {
        Mode::Json => {
            printer = Some(tokio::spawn(progress::json_lines(events, to_stdout)));
        }
        Mode::Bar => {
            let b = progress::bar();
            tokio::spawn(progress::notices(notices, b.clone()));
            let extra = torrent_get::swarm_line(torrent.clone());
            tokio::spawn(progress::drive_bar(control.clone(), b.clone(), extra));
            bar = Some(b);
        }
        Mode::Quiet => {}
    }
    let result = handle.wait().await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(p) = printer {
        // The printer ends after the final event; wait for it to be written.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), p).await;
    }
    match result {
        Ok(done) => {
            if mode == Mode::Bar {
                let secs = (done.elapsed_ms as f64 / 1000.0).max(0.001);
                let where_ = done
                    .path
                    .as_ref()
                    .map_or_else(|| "output".to_string(), |p| p.display().to_string());
                eprintln!(
                    "saved {where_} ({} bytes) in {secs:.1}s, {}/s",
                    done.bytes,
                    indicatif::HumanBytes((done.fetched_bytes as f64 / secs) as u64)
                );
                for d in &done.digests {
                    eprintln!("{d}");
                }
                if let Some(v) = &done.verified_against {
                    eprintln!("verified: {} matches", v.algorithm);
                }
            }
            if let Some(t) = &torrent {
                torrent_get::after(t, &a, mode != Mode::Bar).await;
            }
            exit_code::SUCCESS
        }
        Err(e)
            if e.kind() == ErrorKind::Cancelled
                && interrupted.load(std::sync::atomic::Ordering::SeqCst) =>
        {
            interrupted_exit(mode)
        }
        Err(e) => fail(&e),
    }
}

/// Ctrl-C and SIGTERM call `cancel` (downloads save their state, so the
/// same command resumes); the flag says whether that happened.
pub(crate) fn cancel_on_signal(
    cancel: impl FnOnce() + Send + 'static,
) -> Arc<std::sync::atomic::AtomicBool> {
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = interrupted.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        cancel();
    });
    interrupted
}

/// The exit after an interruption, with a word on resuming.
pub(crate) fn interrupted_exit(mode: Mode) -> u8 {
    if mode != Mode::Json {
        eprintln!("dlm: interrupted; state saved, run the same command again to resume");
    }
    exit_code::INTERRUPTED
}

/// The options `get` takes from the command line for every file.
fn base_options(a: &GetArgs) -> DownloadOptions {
    DownloadOptions::default()
        .with_connections(a.connections)
        .with_min_split_bytes(a.min_split)
        .with_max_chunk_bytes(a.max_chunk)
        .with_rate_limit(a.limit_rate)
        .with_verify(!a.no_verify)
        .with_overwrite(a.overwrite)
        .with_max_retries(a.max_retries)
        .with_sync_data(!a.no_fsync)
}

fn progress_mode(a: &GetArgs, to_stdout: bool) -> Mode {
    if a.json {
        Mode::Json
    } else if a.quiet || to_stdout {
        Mode::Quiet
    } else {
        Mode::Bar
    }
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn s3(a: crate::args::S3Args) -> u8 {
    match a.command {
        crate::args::S3Command::Presign { url, expires, net } => {
            let config = match registry::s3_config(&net) {
                Ok(c) => c,
                Err(e) => return usage(e),
            };
            let location = match url::Url::parse(&url)
                .map_err(|e| dlm_s3::S3Error::InvalidInput(format!("{url}: {e}")))
                .and_then(|u| dlm_s3::S3Location::parse(&u))
            {
                Ok(l) => l,
                Err(e) => return fail(&e.into()),
            };
            let client = match dlm_s3::S3Client::new(config) {
                Ok(c) => c,
                Err(e) => return fail(&e.into()),
            };
            match client
                .presign(
                    &location.bucket,
                    &location.key,
                    std::time::Duration::from_secs(expires),
                )
                .await
            {
                Ok(u) => {
                    println!("{u}");
                    exit_code::SUCCESS
                }
                Err(e) => fail(&e.into()),
            }
        }
    }
}

async fn info(a: InfoArgs) -> u8 {
    let registry = match registry::default_registry(&a.net) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let input = Input::parse(&a.url);
    if let Input::File(path) = &input
        && torrent_info::is_torrent(path)
    {
        return torrent_info::print(path, a.json);
    }
    if is_ipfs(&registry, &input) {
        return ipfs_info(&a).await;
    }
    let source = match registry.target(&input, &Options::new()) {
        Ok(Target::Source(s)) => s,
        Ok(Target::Listing(listing)) => return tree::info(listing, a.json).await,
        Err(e) => return fail(&e),
    };
    let probe = match source.probe_dyn(&Context::new()).await {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&probe).unwrap_or_default()
        );
    } else {
        print_probe(&source.identity_dyn(), &probe);
    }
    exit_code::SUCCESS
}

/// Whether `input` is for dlm-ipfs (`ipfs://`, `ipns://`, a bare CID).
fn is_ipfs(registry: &ProtocolRegistry, input: &Input) -> bool {
    registry.resolve(input).is_ok_and(|p| p.name() == "ipfs")
}

/// What `url` names. IPFS inputs are resolved first (a CID alone does not
/// say whether it is a file or a directory); others by the registry.
async fn target(registry: &ProtocolRegistry, url: &str, net: &NetArgs) -> Result<Target, Error> {
    let input = Input::parse(url);
    if is_ipfs(registry, &input) {
        let config =
            registry::ipfs_config(net).map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
        return dlm_ipfs::resolve_target(url, config).await;
    }
    registry.target(&input, &Options::new())
}

/// `dlm info` for IPFS: the CID, codec, hash, DAG shape and size; for a
/// directory, its listing too.
async fn ipfs_info(a: &InfoArgs) -> u8 {
    let config = match registry::ipfs_config(&a.net) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let (info, target) = match dlm_ipfs::inspect(&a.url, config).await {
        Ok(i) => i,
        Err(e) => return fail(&e),
    };
    if a.json && !info.directory {
        println!(
            "{}",
            serde_json::to_string_pretty(&info).unwrap_or_default()
        );
        return exit_code::SUCCESS;
    }
    if !a.json {
        println!("address:        {}", info.address);
        println!(
            "cid:            {} (CIDv{}, {}, {})",
            info.cid, info.cid_version, info.codec, info.hash
        );
        println!("dag:            {}", info.shape);
        if let Some(size) = info.size {
            println!(
                "length:         {size} bytes ({})",
                indicatif::HumanBytes(size)
            );
        }
    }
    match target {
        Target::Listing(listing) => tree::info(listing, a.json).await,
        _ => exit_code::SUCCESS,
    }
}

fn print_probe(identity: &str, p: &Probe) {
    println!("url:            {identity}");
    if let Some(u) = p.effective_url.as_deref().filter(|u| *u != identity) {
        println!("effective url:  {u}");
    }
    match p.len {
        Some(len) => println!(
            "length:         {len} bytes ({})",
            indicatif::HumanBytes(len)
        ),
        None => println!("length:         unknown"),
    }
    println!(
        "ranges:         {}",
        if p.caps.ranges { "yes" } else { "no" }
    );
    if let Some(e) = &p.etag {
        println!("etag:           {e}");
    }
    if let Some(t) = p.last_modified {
        println!("last modified:  {}", httpdate_string(t));
    }
    if let Some(n) = &p.file_name {
        let safe = dlm_core::safe_file_name(n).unwrap_or_else(|| "(unusable)".into());
        println!("file name:      {safe}");
    }
    if let Some(ct) = &p.content_type {
        println!("content type:   {ct}");
    }
    for c in &p.checksums {
        println!("checksum:       {c}");
    }
}

fn httpdate_string(t: std::time::SystemTime) -> String {
    httpdate::fmt_http_date(t)
}
