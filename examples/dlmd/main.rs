//! `dlmd`: dlm's download daemon. A persistent job queue with a worker pool,
//! a REST API under `/v1` (bearer token), live events (SSE), Prometheus
//! metrics, built only on dlm-core's public API and the protocol crates.
//!
//! ```text
//! dlmd [--listen 127.0.0.1:6800] [--state-dir DIR] [--download-dir DIR]
//!      [--max-active 5] [--max-per-host 2] [--log-format text|json]
//!      [--no-port-mapping] [-O SECTION.KEY=VALUE …]
//! ```
//!
//! On first start it writes a random API token to `STATE_DIR/token` (mode
//! 0600) and says where; `DLM_TOKEN` overrides it. SIGTERM/SIGINT stop every
//! running job with its state saved and exit; `kill -9` loses nothing either:
//! on the next start every job continues from its control file.

mod manager;
mod metrics;
mod routes;
mod store;

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use dlm_examples::{protocols, state};

use crate::manager::Manager;
use crate::routes::AppState;
use crate::store::Store;

/// How long running jobs get to save their state on SIGTERM/SIGINT (the
/// whole exit stays under 5 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// dlmd: dlm's download daemon.
#[derive(Debug, Parser)]
#[command(name = "dlmd", version, about)]
struct Args {
    /// Address to listen on. Binding anything but loopback exposes the API to the network.
    #[arg(long, default_value = "127.0.0.1:6800")]
    listen: SocketAddr,
    /// Where the job database and the token live (default: $XDG_DATA_HOME/dlm or ~/.local/share/dlm).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Where downloads go (default: $XDG_DOWNLOAD_DIR, else ~/Downloads).
    #[arg(long, value_name = "DIR")]
    download_dir: Option<PathBuf>,
    /// Jobs downloading at once (first start only; then from /v1/settings).
    #[arg(long, default_value_t = 5)]
    max_active: u32,
    /// Jobs downloading at once per remote host (first start only; then from /v1/settings).
    #[arg(long, default_value_t = 2)]
    max_per_host: u32,
    /// Allow absolute destination paths in jobs (admin only).
    #[arg(long)]
    allow_absolute_dest: bool,
    /// Allow hidden components (`.ssh/…`) in job destinations.
    #[arg(long)]
    allow_hidden_dest: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// A protocol setting for every job, SECTION.KEY=VALUE (repeatable), as `dlm -O` takes
    /// them, e.g. bittorrent.max_peers=80; a job's own `options` win, except for daemon settings
    /// (bittorrent.dht_port, bittorrent.port_mapping, …), which jobs may not set.
    #[arg(short = 'O', long = "option", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// BitTorrent: map no port on the NAT gateway (UPnP IGD, NAT-PMP, PCP) for any job
    /// (bittorrent.port_mapping=false; on by default).
    #[arg(long, env = protocols::NO_PORT_MAPPING_ENV, value_parser = clap::builder::FalseyValueParser::new())]
    no_port_mapping: bool,
}

/// Shortest API token accepted, bytes.
const MIN_TOKEN_BYTES: usize = 16;

/// The API token: `DLM_TOKEN`, else `STATE_DIR/token`, created (0600) on
/// first start. A token shorter than 16 bytes is refused.
fn load_token(state_dir: &Path) -> Result<String, String> {
    if let Ok(t) = state::existing_token(state_dir) {
        if t.len() < MIN_TOKEN_BYTES {
            return Err(format!(
                "the API token (DLM_TOKEN or {}) is shorter than {MIN_TOKEN_BYTES} bytes",
                state::token_path(state_dir).display()
            ));
        }
        return Ok(t);
    }
    let path = state::token_path(state_dir);
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| format!("no random source: {e}"))?;
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    writeln!(f, "{token}").map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("dlmd: created an API token in {}", path.display());
    Ok(token)
}

fn main() -> ExitCode {
    let args = Args::parse();
    // A torrent of many files, many downloads at once: not the usual 1024 open files.
    dlm_core::raise_open_file_limit();
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("DLM_LOG").unwrap_or_else(|_| "info".into());
    match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dlmd: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dlmd: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(state::default_state_dir);
    // The job database holds URLs with their credentials: for this user only.
    std::fs::create_dir_all(&state_dir)
        .and_then(|()| std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| format!("creating {}: {e}", state_dir.display()))?;
    let wanted_dir = args
        .download_dir
        .clone()
        .unwrap_or_else(default_download_dir);
    std::fs::create_dir_all(&wanted_dir)
        .map_err(|e| format!("creating {}: {e}", wanted_dir.display()))?;
    let download_dir =
        std::fs::canonicalize(&wanted_dir).map_err(|e| format!("{}: {e}", wanted_dir.display()))?;
    let token = load_token(&state_dir)?;
    let db = state_dir.join("jobs.db");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&db)
        .and_then(|_| std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)))
        .map_err(|e| format!("creating {}: {e}", db.display()))?;
    let store = Store::open(&db).map_err(|e| format!("opening the job database: {e}"))?;
    // What protocols learn (the DHT's nodes) stays with the daemon's state; `-O` may move it.
    let mut settings = protocols::state_options(&state_dir);
    if args.no_port_mapping {
        settings = settings.with("bittorrent.port_mapping", "false");
    }
    for kv in &args.settings {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("-O {kv:?} is not KEY=VALUE"))?;
        settings = settings.with(k.trim(), v.trim());
    }
    let registry = protocols::registry(&settings).map_err(|e| e.to_string())?;
    let manager = Manager::new(
        store,
        registry,
        (download_dir.clone(), state_dir.join("uploads")),
        manager::DestPolicy {
            absolute: args.allow_absolute_dest,
            hidden: args.allow_hidden_dest,
        },
        (args.max_active.max(1), args.max_per_host.max(1), 0),
    )
    .map_err(|e| format!("reading the job database: {e}"))?;
    manager.schedule();

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(listen = %local, state_dir = %state_dir.display(), download_dir = %download_dir.display(), "dlmd ready");
    // One line on stdout for scripts and tests that start dlmd on port 0.
    println!("dlmd listening on http://{local}");

    let shutdown = dlm_core::CancellationToken::new();
    let app = routes::router(AppState {
        manager: manager.clone(),
        token: Arc::from(token.as_str()),
        shutdown: shutdown.clone(),
    });
    let signalled = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signalled.cancel();
    });
    let graceful = shutdown.clone();
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        graceful.cancelled().await;
        tracing::info!("stopping: saving the state of running jobs");
        manager.shutdown(SHUTDOWN_GRACE).await;
    });
    // Event streams end on shutdown; any other connection gets a moment to
    // finish, then the process exits regardless.
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE + Duration::from_millis(500)).await;
    };
    tokio::select! {
        r = serve => r.map_err(|e| e.to_string())?,
        () = deadline => tracing::warn!("connections still open at shutdown; closing them"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// `$XDG_DOWNLOAD_DIR`, else `~/Downloads` (as the XDG user dirs name it).
fn default_download_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DOWNLOAD_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    Path::new(&home).join("Downloads")
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
