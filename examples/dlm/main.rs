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
mod batch;
mod exit_code;
mod input_file;
mod progress;
mod remote;
mod seed;
mod tree;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use dlm_core::{
    BoxSource, Checksum, Context, Description, Download, DownloadOptions, Error, ErrorKind, Input,
    Options, OrderedSink, Output, Probe, ProtocolRegistry, SeedPolicy, Target,
};
use dlm_examples::protocols::{self, NetArgs};

use crate::args::{Cli, Command, GetArgs, InfoArgs};
use crate::progress::Mode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A torrent of many files, many downloads at once: not the usual 1024 open files.
    dlm_core::raise_open_file_limit();
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
    let (registry, per_download) = match registry_for(&a.net) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut jobs: Vec<input_file::Job> = a.urls.iter().map(input_file::Job::new).collect();
    if let Some(path) = &a.input_file {
        match read_input_file(path) {
            Ok(more) => jobs.extend(more),
            Err(e) => return usage(e),
        }
    }
    if jobs.len() != 1 || a.input_file.is_some() {
        if jobs.is_empty() {
            return usage("no input given");
        }
        return batch::run(a, registry, per_download, jobs).await;
    }
    let input = Input::parse(&jobs[0].input);
    match registry.target(&input, &per_download).await {
        Ok(Target::Source(source)) => get_file(&a, &registry, &per_download, source).await,
        Ok(Target::Listing(listing)) => {
            tree::get(&a, listing, base_options(&a), progress_mode(&a, false)).await
        }
        Err(e) => fail(&e),
    }
}

/// The inputs of `-i FILE` (`-`: standard input), at most 16 MiB.
fn read_input_file(path: &std::path::Path) -> Result<Vec<input_file::Job>, String> {
    use std::io::Read as _;
    let mut text = String::new();
    let limit = input_file::MAX_INPUT_FILE_BYTES;
    let read = if path == std::path::Path::new("-") {
        std::io::stdin().take(limit).read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_string(&mut text))
    };
    read.map_err(|e| format!("{}: {e}", path.display()))?;
    input_file::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The registry the flags configure, and the per-download settings to
/// resolve inputs with; `Err` is the exit code after saying why.
pub(crate) fn registry_for(net: &NetArgs) -> Result<(ProtocolRegistry, Options), u8> {
    let settings = net.options().map_err(usage)?;
    let registry = protocols::registry(&settings).map_err(|e| fail(&e))?;
    let per_download = net.per_download().map_err(usage)?;
    Ok((registry, per_download))
}

/// Downloads one byte space (a file, a torrent's files) as `a` says.
async fn get_file(
    a: &GetArgs,
    registry: &ProtocolRegistry,
    per_download: &Options,
    source: BoxSource,
) -> u8 {
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
    let seed = (a.seed_time.is_some() || a.seed_ratio.is_some()).then(|| {
        SeedPolicy::new(
            a.seed_ratio,
            a.seed_time.map(std::time::Duration::from_secs),
        )
    });
    let opts = base_options(a)
        .with_checksum(checksum)
        .with_sequential(to_stdout || a.sequential)
        .with_seed(seed);
    let mut download = Download::new(source, output).with_options(opts);
    for m in &a.mirrors {
        match registry.source(&Input::parse(m), per_download).await {
            Ok(s) => download = download.with_mirror(s),
            Err(e) => return fail(&e),
        }
    }
    let mode = progress_mode(a, to_stdout);
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
            printer = Some(tokio::spawn(progress::json_lines(
                events,
                to_stdout,
                seed.is_some(),
            )));
        }
        Mode::Bar => {
            let b = progress::bar();
            tokio::spawn(progress::notices(notices, b.clone()));
            tokio::spawn(progress::drive_bar(control.clone(), b.clone()));
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
                if let Some(end) = done.seed_end {
                    eprintln!(
                        "dlm: seeding ended ({end}); uploaded {} bytes",
                        done.uploaded_bytes
                    );
                } else if done.uploaded_bytes > 0 {
                    eprintln!("dlm: uploaded {} bytes", done.uploaded_bytes);
                }
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
pub(crate) fn base_options(a: &GetArgs) -> DownloadOptions {
    let options = match a.connections {
        Some(n) => DownloadOptions::default().with_connections(n),
        // Ramped by measured throughput, up to the library's default maximum.
        None => DownloadOptions::default(),
    };
    options
        .with_min_split_bytes(a.min_split)
        .with_max_chunk_bytes(a.max_chunk)
        .with_rate_limit(a.limit_rate)
        .with_verify(!a.no_verify)
        .with_overwrite(a.overwrite)
        .with_max_retries(a.max_retries)
        .with_sync_data(!a.no_fsync)
        .with_sync_on_commit(a.fsync)
        .with_selected_files(a.select_file.as_ref().map(|f| f.0.clone()))
}

pub(crate) fn progress_mode(a: &GetArgs, to_stdout: bool) -> Mode {
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
            let settings = match net
                .options()
                .map_err(usage)
                .and_then(|o| protocols::Settings::from_options(&o).map_err(|e| fail(&e)))
            {
                Ok(s) => s,
                Err(code) => return code,
            };
            match protocols::extras::s3_presign(
                &url,
                std::time::Duration::from_secs(expires),
                &settings,
            )
            .await
            {
                Ok(u) => {
                    println!("{u}");
                    exit_code::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
    }
}

async fn info(a: InfoArgs) -> u8 {
    let (registry, per_download) = match registry_for(&a.net) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let source = match registry.target(&Input::parse(&a.url), &per_download).await {
        Ok(Target::Source(s)) => s,
        Ok(Target::Listing(listing)) => return tree::info(listing, a.json).await,
        Err(e) => return fail(&e),
    };
    if let Some(d) = source.describe_dyn() {
        print_description(&source.identity_dyn(), &d, a.json);
        return exit_code::SUCCESS;
    }
    let probe = match source.probe_dyn(&Context::new()).await {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    // What the probe learned (a magnet link's metadata, fetched from peers).
    if let Some(d) = source.describe_dyn() {
        print_description(&source.identity_dyn(), &d, a.json);
        return exit_code::SUCCESS;
    }
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

/// What resolution learned (a torrent's metainfo, an IPFS file's DAG), as
/// text or as one JSON object (`identity`, the fields, `len`, `files`).
fn print_description(identity: &str, d: &Description, json: bool) {
    if json {
        let mut v = serde_json::Map::new();
        v.insert("identity".into(), identity.into());
        for (k, val) in &d.fields {
            v.insert(k.replace([' ', '-'], "_"), val.clone().into());
        }
        v.insert("len".into(), d.len.into());
        v.insert(
            "files".into(),
            serde_json::to_value(&d.files).unwrap_or_default(),
        );
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::Value::Object(v)).unwrap_or_default()
        );
        return;
    }
    print_fields(&d.fields);
    if let Some(len) = d.len {
        println!(
            "length:         {len} bytes ({})",
            indicatif::HumanBytes(len)
        );
    }
    if !d.files.is_empty() {
        println!("files:          {}", d.files.len());
        // Numbered as --select-file counts them.
        for (i, f) in d.files.iter().enumerate() {
            println!(
                "{:>6}{} {:>14}  {}",
                i + 1,
                if f.wanted { " " } else { "-" },
                f.len,
                f.path.display()
            );
        }
    }
}

/// Label/value lines, labels padded as `print_probe` pads them.
pub(crate) fn print_fields(fields: &[(String, String)]) {
    for (k, v) in fields {
        let label = format!("{k}:");
        println!("{label:<15} {v}");
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
