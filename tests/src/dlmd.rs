//! `dlmd`, dlm's download daemon (the `examples/dlmd` binary), run as a real process on 127.0.0.1, plus a small
//! client for its REST API and its Server-Sent Events.
//!
//! [`Dlmd::start`] runs the daemon with `--listen 127.0.0.1:0`, a state dir and a download dir of its own (in one
//! temp dir), and a fixed token in `DLM_TOKEN`; it reads the port from the one line dlmd prints on stdout. The
//! daemon's stderr (its log) goes to a file per start and is printed when a test panics while the handle lives.
//! [`Dlmd::kill9`], [`Dlmd::terminate`] and [`Dlmd::restart`] stop and start it again on the same dirs, so a test
//! can check what survives a crash or a shutdown.
//!
//! The client ([`Dlmd::request`], [`Dlmd::api`], [`EventStream`]) is a minimal HTTP/1.1 one over a plain socket
//! (one request per connection), independent of the daemon's own client code, so a test sees exactly what goes
//! over the wire.
//!
//! ```no_run
//! # async fn demo() {
//! use dlm_tests::{Dlmd, DlmdOptions};
//!
//! let dlmd = Dlmd::start(DlmdOptions::default());
//! let (status, job) = dlmd
//!     .api("POST", "/v1/jobs", Some(&serde_json::json!({"url": "http://127.0.0.1:9/f.bin"})))
//!     .await;
//! assert_eq!(status, 201, "{job}");
//! # }
//! ```

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::{PROXY_ENV_VARS, example_binary};
use crate::http1::Response;
use crate::peer::ChildGuard;

/// The environment variable that, when set, names the `dlmd` binary to use instead of the workspace's.
pub const DLMD_BIN_ENV: &str = "DLMD_BIN";

/// The API token every [`Dlmd`] is started with (through `DLM_TOKEN`).
pub const DLMD_TOKEN: &str = "dlm-tests-token-6b0e51f4";

/// How long dlmd may take to print its listening line (bounds a hang only).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a SIGKILLed dlmd may take to be reaped (bounds a hang only).
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often [`Dlmd::wait_for_job`] polls.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The path of the `dlmd` example binary (`target/debug/examples/dlmd`), or `$DLMD_BIN` if that is set.
///
/// If the binary does not exist yet, runs `cargo build --example dlmd -p dlm-examples` in the workspace root
/// once per process (build it before the tests, as `scripts/test` does, so that it is not stale).
///
/// # Panics
///
/// If the build fails or the binary is still missing after it.
pub fn dlmd_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    example_binary("dlmd", DLMD_BIN_ENV, &BINARY)
}

/// Settings for [`Dlmd::start`].
#[derive(Clone, Debug, Default)]
pub struct DlmdOptions {
    /// `--max-active N` (dlmd's default, 5, when `None`). Only the first start of a state dir reads it; later
    /// starts use the stored settings.
    pub max_active: Option<u32>,
    /// `--max-per-host N` (dlmd's default, 2, when `None`). First start only, as `max_active`.
    pub max_per_host: Option<u32>,
    /// More command-line arguments.
    pub args: Vec<String>,
    /// More environment variables. The proxy variables, `NETRC` and `DLM_LOG` are removed from dlmd's
    /// environment first, so they reach it only when given here.
    pub env: Vec<(String, String)>,
}

/// A running (or stopped, between [`Dlmd::kill9`] and [`Dlmd::restart`]) dlmd with its own state and download
/// dirs. Stopped with SIGTERM (then SIGKILL) on drop; the dirs are removed after.
#[derive(Debug)]
pub struct Dlmd {
    // Field order is drop order: stop dlmd before removing its dirs.
    child: Option<ChildGuard>,
    addr: SocketAddr,
    opts: DlmdOptions,
    starts: usize,
    state_dir: PathBuf,
    download_dir: PathBuf,
    dir: TempDir,
}

impl Dlmd {
    /// Starts dlmd on a free port of 127.0.0.1 with new, empty state and download dirs and the token
    /// [`DLMD_TOKEN`], and waits until it accepts connections. Blocks (up to 30 s, which bounds a hang only).
    ///
    /// # Panics
    ///
    /// If the temp dir cannot be created or dlmd does not start (the message carries its log).
    pub fn start(opts: DlmdOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dlm-dlmd-")
            .tempdir()
            .expect("create a temp dir for dlmd");
        let state_dir = dir.path().join("state");
        let download_dir = dir.path().join("downloads");
        fs::create_dir(&state_dir).expect("create the state dir");
        fs::create_dir(&download_dir).expect("create the download dir");
        let mut dlmd = Self {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            opts,
            starts: 0,
            state_dir,
            download_dir,
            dir,
        };
        dlmd.spawn();
        dlmd
    }

    /// Starts dlmd again on the same dirs (on a new port: use [`Dlmd::url`] afterwards), after
    /// [`Dlmd::kill9`] or [`Dlmd::terminate`]. Jobs that were running are queued again and resume.
    ///
    /// # Panics
    ///
    /// If dlmd is still running, or as [`Dlmd::start`].
    pub fn restart(&mut self) {
        assert!(
            !self.is_running(),
            "restart: dlmd is still running; stop it first"
        );
        self.spawn();
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("dlmd-{n}.log"))
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log_path = self.log_path(self.starts);
        let log = fs::File::create(&log_path).expect("create the dlmd log");
        let mut cmd = Command::new(dlmd_binary());
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--download-dir")
            .arg(&self.download_dir);
        if let Some(n) = self.opts.max_active {
            cmd.arg("--max-active").arg(n.to_string());
        }
        if let Some(n) = self.opts.max_per_host {
            cmd.arg("--max-per-host").arg(n.to_string());
        }
        cmd.args(&self.opts.args);
        for var in PROXY_ENV_VARS.iter().chain(&["NETRC", "DLM_LOG"]) {
            cmd.env_remove(var);
        }
        cmd.env("DLM_TOKEN", DLMD_TOKEN);
        // No job asks the real network's gateway for a port (see NO_PORT_MAPPING_ENV).
        cmd.env(crate::cli::NO_PORT_MAPPING_ENV, "1");
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", dlmd_binary().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut guard = ChildGuard::new("dlmd", child);
        // Reads the listening line, then keeps draining stdout so dlmd never writes into a closed pipe.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                guard.stop();
                panic!(
                    "dlmd did not print its listening line ({e}); its log:\n{}",
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        };
        let addr = line
            .strip_prefix("dlmd listening on http://")
            .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("unexpected first line on dlmd's stdout: {line:?}"));
        self.addr = addr;
        self.child = Some(guard);
    }

    /// Whether the current dlmd process is alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The current process's ID.
    ///
    /// # Panics
    ///
    /// If dlmd was never started or has been stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("dlmd is not running").pid()
    }

    fn signal(&self, sig: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.pid()).expect("pid fits i32"));
        kill(pid, sig).unwrap_or_else(|e| panic!("send {sig} to dlmd: {e}"));
    }

    /// Sends SIGKILL and reaps the process: a crash, nothing saved on the way out.
    ///
    /// # Panics
    ///
    /// If dlmd is not running or is not reaped within 10 s.
    pub fn kill9(&mut self) -> ExitStatus {
        self.signal(Signal::SIGKILL);
        let mut child = self.child.take().expect("dlmd is not running");
        let deadline = Instant::now() + KILL_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for dlmd") {
                return status;
            }
            assert!(Instant::now() < deadline, "dlmd survived SIGKILL");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit; returns its exit status, or `None` if it
    /// was still running then (it is then killed). The timeout bounds a hang only.
    ///
    /// # Panics
    ///
    /// If dlmd is not running.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal(Signal::SIGTERM);
        let mut child = self.child.take().expect("dlmd is not running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                eprintln!("dlmd did not exit within {timeout:?} of SIGTERM; killing it");
                let _ = kill(
                    Pid::from_raw(i32::try_from(child.pid()).expect("pid fits i32")),
                    Signal::SIGKILL,
                );
                child.stop();
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address dlmd listens on (changes with every start).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The API token ([`DLMD_TOKEN`]).
    pub fn token(&self) -> &str {
        DLMD_TOKEN
    }

    /// `--state-dir` (the job database lives here).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// `--download-dir`.
    pub fn download_dir(&self) -> &Path {
        &self.download_dir
    }

    /// The file a job writes (`download_dir/job.path`), once the job knows it.
    pub fn job_file(&self, job: &Value) -> Option<PathBuf> {
        job["path"].as_str().map(|p| self.download_dir.join(p))
    }

    /// dlmd's log (stderr) of every start so far, each headed by `--- start N ---`.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for n in 1..=self.starts {
            let _ = writeln!(out, "--- start {n} ---");
            out.push_str(&fs::read_to_string(self.log_path(n)).unwrap_or_default());
        }
        out
    }

    /// Sends `method path` with the bearer token and an optional JSON body; returns the whole response.
    ///
    /// # Errors
    ///
    /// Connect, write and read errors, and unparsable responses.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> io::Result<Response> {
        let auth = format!("Bearer {DLMD_TOKEN}");
        http_request(self.addr, method, path, &[("Authorization", &auth)], body).await
    }

    /// Sends `method path` with exactly `headers` (no token unless given) and an optional body.
    ///
    /// # Errors
    ///
    /// As [`Dlmd::request`].
    pub async fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<Response> {
        http_request(self.addr, method, path, headers, body).await
    }

    /// Sends `method path` with the token and `body` as JSON; returns the status and the JSON answer.
    ///
    /// # Panics
    ///
    /// If the request fails or the answer is not JSON.
    pub async fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(|b| serde_json::to_vec(b).expect("serialise JSON"));
        let resp = self
            .request(method, path, body.as_deref())
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        (resp.status, json_of(&resp, method, path))
    }

    /// `POST /v1/jobs` with `new`; returns the job.
    ///
    /// # Panics
    ///
    /// Unless dlmd answers 201.
    pub async fn add_job(&self, new: &Value) -> Value {
        let (status, job) = self.api("POST", "/v1/jobs", Some(new)).await;
        assert_eq!(status, 201, "POST /v1/jobs {new}: {job}");
        job
    }

    /// `GET /v1/jobs/ID`.
    ///
    /// # Panics
    ///
    /// Unless dlmd answers 200.
    pub async fn job(&self, id: i64) -> Value {
        let (status, job) = self.api("GET", &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(status, 200, "GET /v1/jobs/{id}: {job}");
        job
    }

    /// Every job (all pages of `GET /v1/jobs`), optionally only those in `state`, oldest first.
    ///
    /// # Panics
    ///
    /// Unless dlmd answers 200 with a page.
    pub async fn jobs(&self, state: Option<&str>) -> Vec<Value> {
        let filter = state.map(|s| format!("&state={s}")).unwrap_or_default();
        let mut after = 0;
        let mut all = Vec::new();
        loop {
            let path = format!("/v1/jobs?limit=1000&after={after}{filter}");
            let (status, page) = self.api("GET", &path, None).await;
            assert_eq!(status, 200, "GET {path}: {page}");
            all.extend(page["jobs"].as_array().expect("jobs array").iter().cloned());
            match page["next_after"].as_i64() {
                Some(n) => after = n,
                None => return all,
            }
        }
    }

    /// Polls job `id` every 50 ms until `done` holds for it and returns it.
    ///
    /// # Panics
    ///
    /// If `timeout` passes first (a hang), or the job reaches a final state (`completed`, `failed`,
    /// `cancelled`) for which `done` is false.
    pub async fn wait_for_job(
        &self,
        id: i64,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(id).await;
            if done(&job) {
                return job;
            }
            let state = job["state"].as_str().unwrap_or_default();
            assert!(
                !matches!(state, "completed" | "failed" | "cancelled"),
                "job {id} ended in a state not waited for: {job}"
            );
            assert!(
                Instant::now() < deadline,
                "job {id} not as waited for within {timeout:?}: {job}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Opens `GET /v1/events` (with the token) and returns once dlmd has answered 200, so every event after
    /// this call is seen.
    ///
    /// # Errors
    ///
    /// Connect and read errors, or a status other than 200.
    pub async fn events(&self) -> io::Result<EventStream> {
        EventStream::open(self.addr, DLMD_TOKEN).await
    }
}

impl Drop for Dlmd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop();
        }
        if thread::panicking() {
            eprintln!(
                "--- dlmd log ({}) ---\n{}",
                self.dir.path().display(),
                self.log()
            );
        }
    }
}

/// The JSON body of `resp`.
///
/// # Panics
///
/// If it is not JSON.
fn json_of(resp: &Response, method: &str, path: &str) -> Value {
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| {
        panic!(
            "{method} {path}: {} with a body that is not JSON ({e}): {:?}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        )
    })
}

/// Sends one HTTP/1.1 request (`Connection: close`, `Content-Length` when there is a body) and reads the
/// response until the server closes. A write cut short by the server (it may answer before reading a large
/// body) and a reset after some bytes arrived still return what was received.
///
/// # Errors
///
/// Connect errors, a read error before any byte arrived, and [`Response::parse`]'s.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> io::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if let Some(b) = body {
        let _ = write!(
            head,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        );
    }
    head.push_str("\r\n");
    let mut req = head.into_bytes();
    req.extend_from_slice(body.unwrap_or_default());
    // The server may answer (413) and close before reading everything; read the answer anyway.
    let written = stream.write_all(&req).await;
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) if !raw.is_empty() => break,
            Err(e) => return Err(written.err().unwrap_or(e)),
        }
    }
    Response::parse(&raw)
}

/// One Server-Sent Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (empty if absent).
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

impl SseEvent {
    /// `data` parsed as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }

    /// The job id the event is about: `data.id`, or `data.job.id` for `added`.
    pub fn job_id(&self) -> Option<i64> {
        let v = self.json();
        v["id"].as_i64().or_else(|| v["job"]["id"].as_i64())
    }
}

/// A `GET /v1/events` response read as it arrives: HTTP/1.1 chunked framing removed, then split into events.
#[derive(Debug)]
pub struct EventStream {
    stream: TcpStream,
    /// Bytes received and not yet de-chunked.
    raw: Vec<u8>,
    /// De-chunked text not yet split into events.
    text: String,
    chunked: bool,
    ended: bool,
}

impl EventStream {
    /// Connects to `addr`, sends `GET /v1/events` with `token`, and reads the response head.
    ///
    /// # Errors
    ///
    /// Connect and read errors, or a status other than 200.
    pub async fn open(addr: SocketAddr, token: &str) -> io::Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        let req = format!(
            "GET /v1/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let head_end = loop {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the response head",
                ));
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
        let status = head.split(' ').nth(1).unwrap_or_default();
        if status != "200" {
            return Err(io::Error::other(format!(
                "GET /v1/events: {head:?} {:?}",
                String::from_utf8_lossy(&raw[head_end + 4..])
            )));
        }
        let chunked = head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("transfer-encoding:") && l.contains("chunked")
        });
        raw.drain(..head_end + 4);
        Ok(Self {
            stream,
            raw,
            text: String::new(),
            chunked,
            ended: false,
        })
    }

    /// The next event (comments such as keep-alives skipped), or `None` once the server ended the stream.
    ///
    /// # Errors
    ///
    /// Read errors and malformed chunked framing.
    pub async fn next(&mut self) -> io::Result<Option<SseEvent>> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            self.dechunk()?;
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                if let Some(ev) = parse_event(&block) {
                    return Ok(Some(ev));
                }
            }
            if self.ended {
                return Ok(None);
            }
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                self.ended = true;
                continue;
            }
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    /// Moves complete chunks from `raw` to `text`.
    fn dechunk(&mut self) -> io::Result<()> {
        if !self.chunked {
            self.text.push_str(&String::from_utf8_lossy(&self.raw));
            self.raw.clear();
            return Ok(());
        }
        loop {
            let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return Ok(());
            };
            let size_field = String::from_utf8_lossy(&self.raw[..line_end]).into_owned();
            let size_hex = size_field.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {size_field:?}"),
                )
            })?;
            if size == 0 {
                self.ended = true;
                self.raw.clear();
                return Ok(());
            }
            let start = line_end + 2;
            if self.raw.len() < start + size + 2 {
                return Ok(());
            }
            self.text
                .push_str(&String::from_utf8_lossy(&self.raw[start..start + size]));
            self.raw.drain(..start + size + 2);
        }
    }
}

fn parse_event(block: &str) -> Option<SseEvent> {
    let mut event = String::new();
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = value.to_owned(),
            "data" => data.push(value),
            _ => {}
        }
    }
    (!event.is_empty() || !data.is_empty()).then(|| SseEvent {
        event,
        data: data.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_and_skips_comments() {
        assert_eq!(parse_event(":\n\n"), None);
        let ev = parse_event("event: started\ndata: {\"type\":\"started\",\"id\":3}\n\n").unwrap();
        assert_eq!(ev.event, "started");
        assert_eq!(ev.job_id(), Some(3));
        let added =
            parse_event("event:added\ndata:{\"type\":\"added\",\"job\":{\"id\":7}}\n\n").unwrap();
        assert_eq!(added.job_id(), Some(7));
    }
}
