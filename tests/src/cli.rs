//! Finding (and if need be building) the `dlm` command-line example, for tests that run it as a process.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The environment variable that, when set, names the `dlm` binary to use instead of the workspace's.
pub const DLM_BIN_ENV: &str = "DLM_BIN";

/// The workspace root (the directory above this package).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The cargo profile directory the `dlm` example is looked for in (`…/target/debug`).
///
/// That is the directory of the running test executable when it sits in `<profile>/deps` (which honours any
/// target-dir setting), otherwise `$CARGO_TARGET_DIR/debug` (relative to the workspace root) or
/// `<workspace>/target/debug`.
pub fn profile_dir() -> PathBuf {
    let from_exe = env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        (deps.file_name()? == "deps").then(|| deps.parent().map(Path::to_path_buf))?
    });
    from_exe.unwrap_or_else(|| {
        let target = env::var_os("CARGO_TARGET_DIR")
            .map(|dir| workspace_root().join(dir))
            .unwrap_or_else(|| workspace_root().join("target"));
        target.join("debug")
    })
}

/// The path of the `dlm` example binary (`target/debug/examples/dlm`), or `$DLM_BIN` if that is set.
///
/// If the binary does not exist yet, runs `cargo build --example dlm -p dlm-examples` in the workspace root
/// once per process (`scripts/test` builds it before the tests, so this is for a bare `cargo test`).
///
/// # Panics
///
/// If the build fails or the binary is still missing after it.
pub fn dlm_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    example_binary("dlm", DLM_BIN_ENV, &BINARY)
}

/// The path of the example `name`, or the value of `override_env` when set; builds it once (per `cell`) when
/// missing.
///
/// # Panics
///
/// If the build fails or the binary is still missing after it.
pub fn example_binary(name: &str, override_env: &str, cell: &OnceLock<PathBuf>) -> PathBuf {
    if let Some(bin) = env::var_os(override_env) {
        return PathBuf::from(bin);
    }
    cell.get_or_init(|| {
        let bin = profile_dir()
            .join("examples")
            .join(format!("{name}{}", env::consts::EXE_SUFFIX));
        if !bin.is_file() {
            build_example(name);
        }
        assert!(
            bin.is_file(),
            "`cargo build --example {name} -p dlm-examples` succeeded but {} does not exist",
            bin.display()
        );
        bin
    })
    .clone()
}

/// Environment variables the `dlm` binary (through dlm-http) reads proxies from; [`dlm_command`] removes them so
/// a developer's or CI's proxy settings never reach the test peers on 127.0.0.1.
pub const PROXY_ENV_VARS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// The environment variable that acts as `--no-port-mapping` for `dlm` and `dlmd` (the examples'
/// `protocols::NO_PORT_MAPPING_ENV`). [`dlm_command`] and [`crate::Dlmd`] set it to `1`, so no test asks the
/// real network's gateway for a port (an SSDP search, a NAT-PMP request to the default route); the port mapping
/// tests remove it and run dlm in network namespaces of their own ([`crate::nat`]).
pub const NO_PORT_MAPPING_ENV: &str = "DLM_NO_PORT_MAPPING";

/// A [`Command`] for the [`dlm_binary`] with the proxy variables ([`PROXY_ENV_VARS`]), `NETRC` and `DLM_LOG`
/// removed from its environment, port mapping off ([`NO_PORT_MAPPING_ENV`]`=1`; remove it to test mapping) and
/// standard input closed. Add `--no-netrc` to `get`/`info` as well.
pub fn dlm_command() -> Command {
    let mut cmd = Command::new(dlm_binary());
    for var in PROXY_ENV_VARS.iter().chain(&["NETRC", "DLM_LOG"]) {
        cmd.env_remove(var);
    }
    cmd.env(NO_PORT_MAPPING_ENV, "1");
    cmd.stdin(std::process::Stdio::null());
    cmd
}

/// What one `dlm` run ended with.
#[derive(Debug)]
pub struct DlmRun {
    /// It exited 0.
    pub ok: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs `dlm ARGS --no-netrc` (plus `--quiet` for `get`) to the end, killed
/// if the future is dropped.
///
/// # Panics
///
/// If the binary cannot be started.
pub async fn dlm_run(args: &[&str]) -> DlmRun {
    let mut cmd = tokio::process::Command::from(dlm_command());
    cmd.args(args).arg("--no-netrc");
    if args.first() == Some(&"get") {
        cmd.arg("--quiet");
    }
    let out = cmd.kill_on_drop(true).output().await.expect("run dlm");
    DlmRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running `dlm seed` on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct DlmSeed {
    child: tokio::process::Child,
    /// Kept open: the seeder may print more, and a closed pipe would fail it.
    _stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    addr: std::net::SocketAddrV4,
}

impl DlmSeed {
    /// Starts `dlm seed TORRENT --listen 127.0.0.1:0 -d DATA_DIR ARGS` and
    /// waits for the `listening on ADDR` line it prints first.
    ///
    /// # Panics
    ///
    /// If it cannot be started or its first line is not that.
    pub async fn start(torrent: &Path, data_dir: &Path, args: &[&str]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::from(dlm_command())
            .arg("seed")
            .arg(torrent)
            .args(["--listen", "127.0.0.1:0", "-d"])
            .arg(data_dir)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("run dlm seed");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = lines
            .next_line()
            .await
            .expect("read dlm seed's output")
            .expect("dlm seed prints its address");
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        Self {
            child,
            _stdout: lines,
            addr,
        }
    }

    /// Where it accepts peers.
    pub fn addr(&self) -> std::net::SocketAddrV4 {
        self.addr
    }

    /// Stops it (SIGKILL) without waiting.
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn build_example(name: &str) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the {name} example: cargo build --example {name} -p dlm-examples");
    let status = Command::new(&cargo)
        .args(["build", "--example", name, "-p", "dlm-examples"])
        .current_dir(workspace_root())
        .status()
        .unwrap_or_else(|e| panic!("run {}: {e}", Path::new(&cargo).display()));
    assert!(
        status.success(),
        "`cargo build --example {name} -p dlm-examples` failed ({status})"
    );
}

/// One `dlm … --json` run, as resume tests see it.
#[derive(Debug)]
pub struct JsonRun {
    /// `resumed_bytes` of its `started` event (0 when it never started).
    pub resumed_bytes: u64,
    /// Its `completed` event, when it completed.
    pub completed: Option<serde_json::Value>,
    /// How it ended (killed runs end by SIGKILL).
    pub status: std::process::ExitStatus,
    /// What it wrote on stderr.
    pub stderr: String,
}

/// Runs `dlm` with `args` (which must include `--json`) and SIGKILLs it as soon as a `progress` event reports at
/// least `kill_at` bytes downloaded (`u64::MAX`: never).
///
/// # Panics
/// When `dlm` cannot be started or writes a line that is not JSON.
pub async fn dlm_json_run<S: AsRef<std::ffi::OsStr>>(args: &[S], kill_at: u64) -> JsonRun {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let mut child = tokio::process::Command::from(dlm_command())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn dlm");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut resumed_bytes = 0;
    let mut completed = None;
    while let Some(line) = lines.next_line().await.expect("read dlm's stdout") {
        let ev: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        match ev["type"].as_str() {
            Some("started") => resumed_bytes = ev["resumed_bytes"].as_u64().unwrap_or(0),
            Some("progress") if ev["downloaded_bytes"].as_u64().unwrap_or(0) >= kill_at => {
                child.start_kill().expect("SIGKILL dlm");
                break;
            }
            Some("completed") => completed = Some(ev),
            _ => {}
        }
    }
    let status = child.wait().await.expect("wait for dlm");
    JsonRun {
        resumed_bytes,
        completed,
        status,
        stderr: stderr.await.unwrap_or_default(),
    }
}

/// Runs `dlm` with `args` once per kill point (SIGKILLed past that many bytes, see [`dlm_json_run`]), then once
/// more to the end, and returns every run's `resumed_bytes` and the last run's `completed` event.
///
/// # Panics
/// When the last run fails or does not report `completed`.
pub async fn dlm_kill_and_resume<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    kill_points: &[u64],
) -> (Vec<u64>, serde_json::Value) {
    let mut resumed = Vec::new();
    for &kill_at in kill_points {
        resumed.push(dlm_json_run(args, kill_at).await.resumed_bytes);
    }
    let last = dlm_json_run(args, u64::MAX).await;
    resumed.push(last.resumed_bytes);
    assert!(
        last.status.success(),
        "last run: {}: {}",
        last.status,
        last.stderr
    );
    let completed = last
        .completed
        .unwrap_or_else(|| panic!("the last run reported no completion: {}", last.stderr));
    (resumed, completed)
}
