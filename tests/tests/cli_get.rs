//! The `dlm` command-line binary (`examples/dlm`) run as a process against nginx on 127.0.0.1: downloads, JSON
//! events, resume after SIGKILL and Ctrl-C, exit codes and one-line errors, `dlm info`, and `-o -`.
//!
//! Every run has the proxy variables removed from its environment and `--no-netrc`. Outputs are compared by
//! SHA-256 with the fixtures. No assertion is about timing; the timeouts only bound a hang.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use dlm_tests::{
    CutProxy, CutProxyOptions, Nginx, NginxOptions, dlm_command, free_port, sha256_file,
    write_random_file,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// Bounds every test; a hang fails instead of blocking CI. Asserts nothing about speed.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Bounds one `dlm` process that is expected to exit by itself (a hang only).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Bounds waiting for nginx to close and log every connection (a hang only).
const LOG_TIMEOUT: Duration = Duration::from_secs(15);

const MIB: u64 = 1 << 20;

async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    dlm_tests::runtime::bounded(TEST_TIMEOUT, fut).await
}

/// `dlm ARGS...` with a clean environment (no proxies, no netrc, no logging), killed if dropped.
fn dlm(args: &[&str]) -> Command {
    let mut cmd = Command::from(dlm_command());
    cmd.args(args).kill_on_drop(true);
    cmd
}

/// `dlm get URL --no-netrc ARGS...`.
fn get(url: &str, args: &[&str]) -> Command {
    let mut cmd = dlm(&["get", url, "--no-netrc"]);
    cmd.args(args);
    cmd
}

/// Runs `cmd` to its end (bounded), capturing stdout and stderr.
async fn output(mut cmd: Command) -> Output {
    tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .expect("dlm did not exit")
        .expect("run dlm")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn part_path(out: &Path) -> PathBuf {
    dlm_core::FileSink::part_path_for(out)
}

fn control_path(out: &Path) -> PathBuf {
    dlm_core::FileSink::control_path_for(out)
}

/// Asserts that `dir` holds exactly `names`: no `.part`, `.part.dlm` or temp file left behind.
fn assert_dir_holds(dir: &Path, names: &[&str]) {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut want: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    want.sort();
    assert_eq!(found, want, "files in {}", dir.display());
}

/// Asserts a failed run: exit `code`, and stderr is exactly one line `dlm: error: MESSAGE (KIND)` containing
/// `needle`.
fn assert_one_line_error(out: &Output, code: i32, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr:?}");
    assert!(lines[0].starts_with("dlm: error: "), "{stderr:?}");
    assert!(lines[0].ends_with(')'), "ends with the kind: {stderr:?}");
    assert!(lines[0].contains(needle), "{needle:?} not in {stderr:?}");
    eprintln!("exit {code}: {}", lines[0]);
}

/// Parses `--json` output: one JSON object per line, each with a `type`.
fn json_lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout)
        .lines()
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            assert!(v["type"].is_string(), "no type: {line}");
            v
        })
        .collect()
}

fn sha256_digest(completed: &Value) -> Option<&str> {
    completed["digests"]
        .as_array()?
        .iter()
        .find(|d| d["algorithm"] == "sha-256")?["value"]
        .as_str()
}

/// Case 1: a 16-connection download, quiet and then with JSON events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_downloads_quietly_and_as_json() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 12 * MIB + 321;
    let sha = write_random_file(nginx.www(), "g.bin", size, 31).unwrap();
    let url = nginx.http_url("/g.bin");
    bounded(async {
        let dir = tempfile::tempdir().unwrap();

        let quiet = dir.path().join("quiet.bin");
        let out = output(get(&url, &["-c", "16", "-o", path_arg(&quiet), "--quiet"])).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "", "--quiet prints nothing");
        assert_eq!(text(&out.stderr), "", "--quiet prints nothing");
        assert_eq!(sha256_file(&quiet).unwrap(), sha);

        let json = dir.path().join("json.bin");
        let out = output(get(&url, &["-c", "16", "-o", path_arg(&json), "--json"])).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(sha256_file(&json).unwrap(), sha);
        let events = json_lines(&out.stdout);
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types.first(), Some(&"queued"), "{types:?}");
        assert!(
            types.contains(&"probed") && types.contains(&"started"),
            "{types:?}"
        );
        assert!(types.contains(&"chunk_done"), "{types:?}");
        let last = events.last().unwrap();
        assert_eq!(last["type"], "completed", "{types:?}");
        assert_eq!(last["bytes"], size);
        assert_eq!(sha256_digest(last), Some(sha.as_str()), "{last}");
        let started = events.iter().find(|e| e["type"] == "started").unwrap();
        assert_eq!(started["connections"], 16, "{started}");
        assert_eq!(started["resumed_bytes"], 0, "{started}");
        let probed = events.iter().find(|e| e["type"] == "probed").unwrap();
        assert_eq!(probed["len"], size, "{probed}");
        assert_eq!(probed["ranges"], true, "{probed}");

        assert_dir_holds(dir.path(), &["quiet.bin", "json.bin"]);
    })
    .await;
}

/// What one `dlm get --json` run saw before it ended or was killed.
#[derive(Debug, Default)]
struct RunReport {
    resumed_bytes: Option<u64>,
    progress_events: usize,
    downloaded_bytes: u64,
    /// `Some(downloaded bytes)` when the test killed the process.
    killed_at: Option<u64>,
}

/// Runs `cmd` (which must print `--json` events on stdout) and sends SIGKILL once `should_kill` says so (it sees
/// the report so far after each progress event); returns the exit status, the report and stderr.
async fn run_watching(
    mut cmd: Command,
    mut should_kill: impl FnMut(&RunReport) -> bool,
) -> (ExitStatus, RunReport, String) {
    let mut child: Child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dlm");
    let mut stderr = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut report = RunReport::default();
    while let Some(line) = lines.next_line().await.expect("read dlm's stdout") {
        let event: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        match event["type"].as_str() {
            Some("started") => report.resumed_bytes = event["resumed_bytes"].as_u64(),
            Some("progress") => {
                report.progress_events += 1;
                report.downloaded_bytes = event["downloaded_bytes"].as_u64().unwrap_or(0);
                if should_kill(&report) {
                    child.start_kill().expect("SIGKILL dlm");
                    report.killed_at = Some(report.downloaded_bytes);
                    break;
                }
            }
            _ => {}
        }
    }
    let status = tokio::time::timeout(RUN_TIMEOUT, child.wait())
        .await
        .expect("dlm did not exit")
        .expect("wait for dlm");
    let stderr = stderr_task.await.unwrap();
    (status, report, stderr)
}

/// Case 2: SIGKILL at three points, each run resuming from the saved state; nginx sends little more than the
/// file: at most what was in flight when each run was killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_sigkill_refetching_only_in_flight_ranges() {
    // 1 MiB/s per connection (nginx sends the first second's worth of each response at once).
    let rate = MIB;
    let Some(nginx) = Nginx::start(NginxOptions {
        slow_rate: "1m".to_owned(),
    }) else {
        return;
    };
    let size = 32 * MIB;
    let connections = 4u64;
    let sha = write_random_file(nginx.www(), "k.bin", size, 32).unwrap();
    let url = nginx.http_url("/slow/k.bin");
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("k.bin");
        let args = ["-c", "4", "-o", path_arg(&out), "--json"];

        let mut kills = Vec::new();
        let mut last_resumed = 0;
        for k in 1..=3u64 {
            // Kill once a quarter, a half, three quarters are done, after at least two progress reports (a
            // second, so this run has saved its state at least once).
            let threshold = size * k / 4;
            let control = control_path(&out);
            let (status, report, stderr) = run_watching(get(&url, &args), |r| {
                r.progress_events >= 2 && r.downloaded_bytes >= threshold && control.exists()
            })
            .await;
            let killed_at = report
                .killed_at
                .unwrap_or_else(|| panic!("run {k} ended by itself ({status}): {stderr}"));
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "run {k}: {status}");
            let resumed = report.resumed_bytes.expect("a started event");
            if k > 1 {
                assert!(resumed > 0, "run {k} resumed nothing: {report:?}");
            }
            assert!(resumed >= last_resumed, "run {k}: {report:?}");
            last_resumed = resumed;
            assert!(control_path(&out).exists() && part_path(&out).exists());
            assert!(!out.exists());
            eprintln!("run {k}: resumed at {resumed}, killed at {killed_at} of {size} bytes");
            kills.push(killed_at);
        }

        let (status, report, stderr) = run_watching(get(&url, &args), |_| false).await;
        assert!(status.success(), "final run: {status}: {stderr}");
        let resumed = report.resumed_bytes.expect("a started event");
        assert!(resumed > 0 && resumed >= last_resumed, "{report:?}");
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert_dir_holds(dir.path(), &["k.bin"]);

        // Every connection is closed (so logged) once nginx noticed the killed clients.
        assert!(
            nginx.wait_until_idle(LOG_TIMEOUT),
            "nginx still has connections open"
        );
        let sent = nginx.bytes_sent("/slow/k.bin");
        let requests = nginx.requests("/slow/k.bin").len();
        let slack_per_connection = rate * 2 + MIB;
        let bound = size + kills.len() as u64 * connections * slack_per_connection;
        eprintln!(
            "SIGKILL resume: nginx sent {sent} bytes ({:.2} MiB) in {requests} requests for a {size}-byte file \
             ({:.2} MiB re-fetched or headers) after {} kills at {kills:?}; bound {bound}",
            sent as f64 / MIB as f64,
            sent.saturating_sub(size) as f64 / MIB as f64,
            kills.len()
        );
        assert!(sent >= size, "{sent}");
        assert!(sent <= bound, "nginx sent {sent} bytes, more than {bound}");
    })
    .await;
}

/// How long `dlm` may take to exit after SIGINT once it has reported the cancellation (bounds a hang only).
const EXIT_AFTER_SIGNAL: Duration = Duration::from_secs(20);

/// What a `dlm get --json` run interrupted with SIGINT did.
#[derive(Debug)]
struct Interrupted {
    /// Downloaded bytes in the last progress event before SIGINT.
    at_bytes: u64,
    /// The events after SIGINT.
    tail: Vec<Value>,
    /// The exit status, or `None` if it had not exited within the given wait after reporting the end (it was
    /// then killed with SIGKILL).
    status: Option<ExitStatus>,
    stderr: String,
}

/// Runs `cmd` (with `--json`), sends SIGINT once a progress event has arrived and `control` exists, reads the
/// events up to the last one (`failed` or `completed`) and waits up to `exit_wait` for the process to exit.
async fn interrupt_with_sigint(
    mut cmd: Command,
    control: &Path,
    exit_wait: Duration,
) -> Interrupted {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dlm");
    let pid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut at_bytes = None;
    let mut tail = Vec::new();
    while let Some(line) = lines.next_line().await.expect("read dlm's stdout") {
        let event: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        let last = event["type"] == "failed" || event["type"] == "completed";
        if at_bytes.is_none() {
            if event["type"] == "progress" && control.exists() {
                kill(pid, Signal::SIGINT).expect("SIGINT dlm");
                at_bytes = event["downloaded_bytes"].as_u64();
            }
        } else {
            tail.push(event);
        }
        if last {
            break;
        }
    }
    let status = match tokio::time::timeout(exit_wait, child.wait()).await {
        Ok(status) => Some(status.expect("wait for dlm")),
        Err(_) => {
            child.start_kill().expect("SIGKILL dlm");
            child.wait().await.expect("wait for dlm");
            None
        }
    };
    let stderr = stderr_task.await.unwrap();
    Interrupted {
        at_bytes: at_bytes.expect("a progress event before the end"),
        tail,
        status,
        stderr,
    }
}

/// Case 3: Ctrl-C (SIGINT) saves the state and reports the cancellation; the same command then resumes and
/// completes. (That the process also exits, with 130, is pinned down by `sigint_exits_130`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_saves_state_and_the_same_command_resumes() {
    let Some(nginx) = Nginx::start(NginxOptions {
        slow_rate: "1m".to_owned(),
    }) else {
        return;
    };
    let size = 12 * MIB;
    let sha = write_random_file(nginx.www(), "i.bin", size, 33).unwrap();
    let url = nginx.http_url("/slow/i.bin");
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("i.bin");
        let args = ["-c", "2", "-o", path_arg(&out), "--json"];

        let run =
            interrupt_with_sigint(get(&url, &args), &control_path(&out), EXIT_AFTER_SIGNAL).await;
        let failed = run.tail.last().expect("a final event after SIGINT");
        assert_eq!(failed["type"], "failed", "{run:?}");
        assert_eq!(failed["kind"], "cancelled", "{run:?}");
        assert!(
            !run.stderr.contains("dlm: error"),
            "a cancellation is not an error: {run:?}"
        );
        let status = run.status.expect("dlm exits after SIGINT");
        assert_eq!(status.code(), Some(130), "{run:?}");
        assert!(control_path(&out).exists(), "state saved");
        assert!(part_path(&out).exists());
        assert!(!out.exists());

        let rerun = output(get(&url, &args)).await;
        assert!(rerun.status.success(), "{}", text(&rerun.stderr));
        let events = json_lines(&rerun.stdout);
        let started = events.iter().find(|e| e["type"] == "started").unwrap();
        let resumed = started["resumed_bytes"].as_u64().unwrap();
        assert!(resumed > 0, "{started}");
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert_dir_holds(dir.path(), &["i.bin"]);
        eprintln!(
            "SIGINT at {} bytes; the re-run resumed at {resumed} of {size}",
            run.at_bytes
        );
    })
    .await;
}

/// Ctrl-C must end the process with exit code 130 (and the documented hint on stderr).
///
/// Regression: `dlm` used to hang in the runtime's drop after Ctrl-C, because the cancelled download's verifier
/// thread (`dlm-core/src/engine/verify.rs`) outlived it; the verifier is now stopped with its pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_130() {
    let Some(nginx) = Nginx::start(NginxOptions {
        slow_rate: "1m".to_owned(),
    }) else {
        return;
    };
    write_random_file(nginx.www(), "j.bin", 12 * MIB, 37).unwrap();
    let url = nginx.http_url("/slow/j.bin");
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("j.bin");
        let run = interrupt_with_sigint(
            get(&url, &["-c", "2", "-o", path_arg(&out), "--json"]),
            &control_path(&out),
            EXIT_AFTER_SIGNAL,
        )
        .await;
        let status = run.status.unwrap_or_else(|| {
            panic!(
                "dlm did not exit within {EXIT_AFTER_SIGNAL:?} after SIGINT; it reported {:?}",
                run.tail
            )
        });
        assert_eq!(status.code(), Some(130), "{run:?}");
        assert!(control_path(&out).exists());

        // Without --json, the hint is printed.
        let out = dir.path().join("j2.bin");
        let child = get(&url, &["-c", "2", "-o", path_arg(&out)])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
        while !control_path(&out).exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        kill(pid, Signal::SIGINT).unwrap();
        let run = tokio::time::timeout(EXIT_AFTER_SIGNAL, child.wait_with_output())
            .await
            .expect("dlm did not exit after SIGINT")
            .unwrap();
        assert_eq!(run.status.code(), Some(130), "{}", text(&run.stderr));
        assert!(
            text(&run.stderr).contains("interrupted; state saved"),
            "{}",
            text(&run.stderr)
        );
    })
    .await;
}

/// Case 4: exit codes, and errors as one line on stderr naming the kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_one_line_errors() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 3 * MIB + 3;
    write_random_file(nginx.www(), "e.bin", size, 34).unwrap();
    bounded(async {
        let dir = tempfile::tempdir().unwrap();

        // A wrong expected digest: exit 3, no final file (the bytes stay in FILE.part).
        let out = dir.path().join("e.bin");
        let wrong = format!("sha-256={}", "00".repeat(32));
        let run = output(get(
            &nginx.http_url("/e.bin"),
            &["-o", path_arg(&out), "--quiet", "--checksum", &wrong],
        ))
        .await;
        assert_one_line_error(&run, 3, "(integrity)");
        assert!(!out.exists());
        assert!(part_path(&out).exists());

        let missing = dir.path().join("missing.bin");
        let run = output(get(
            &nginx.http_url("/status/404"),
            &["-o", path_arg(&missing), "--quiet"],
        ))
        .await;
        assert_one_line_error(&run, 1, "(not-found)");
        assert!(!missing.exists() && !part_path(&missing).exists());

        let run = output(get(
            "gopher://x/y",
            &["-d", path_arg(dir.path()), "--quiet"],
        ))
        .await;
        assert_one_line_error(&run, 1, "registered schemes: ftp, ftps, http, https");

        // Nothing listens on a port that was free a moment ago: connection refused.
        let port = free_port();
        let run = output(get(
            &format!("http://127.0.0.1:{port}/x.bin"),
            &["-d", path_arg(dir.path()), "--quiet", "--max-retries", "1"],
        ))
        .await;
        assert_one_line_error(&run, 1, "(network)");

        // A usage error is clap's: exit 2.
        let run = output(dlm(&["get", "--connections", "many", "http://x/"])).await;
        assert_eq!(run.status.code(), Some(2), "{}", text(&run.stderr));

        assert_dir_holds(dir.path(), &["e.bin.part"]);
    })
    .await;
}

/// A download that fails after bytes started flowing (every connection cut, no retries allowed) must end with
/// exit code 1 and a one-line network error.
///
/// Regression: this used to hang like `sigint_exits_130`, for the same reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_transfer_failure_exits_1() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    write_random_file(nginx.www(), "f.bin", 8 * MIB, 38).unwrap();
    bounded(async {
        let proxy = CutProxy::start(nginx.http_addr(), CutProxyOptions::cut_after(MIB))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("f.bin");
        let mut cmd = get(
            &proxy.http_url("/f.bin"),
            &[
                "-c",
                "4",
                "-o",
                path_arg(&out),
                "--quiet",
                "--max-retries",
                "0",
            ],
        );
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr_task = tokio::spawn(async move {
            let mut s = Vec::new();
            let _ = stderr.read_to_end(&mut s).await;
            s
        });
        let status = tokio::time::timeout(EXIT_AFTER_SIGNAL, child.wait()).await;
        if status.is_err() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
        let stderr = stderr_task.await.unwrap();
        let status = status.unwrap_or_else(|_| {
            panic!(
                "dlm did not exit within {EXIT_AFTER_SIGNAL:?} after the download failed; stderr: {}",
                text(&stderr)
            )
        });
        let run = Output {
            status: status.unwrap(),
            stdout: Vec::new(),
            stderr,
        };
        assert_one_line_error(&run, 1, "(network)");
        assert!(proxy.cuts() > 0);
        assert!(control_path(&out).exists(), "state kept for a later resume");
    })
    .await;
}

/// Case 5: `dlm info` shows what the server says, as text and as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_shows_length_and_ranges() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 2 * MIB + 5;
    write_random_file(nginx.www(), "info.bin", size, 35).unwrap();
    bounded(async {
        let url = nginx.http_url("/info.bin");
        let run = output(dlm(&["info", &url, "--no-netrc"])).await;
        let stdout = text(&run.stdout);
        assert!(run.status.success(), "{}", text(&run.stderr));
        assert!(
            stdout.contains(&format!("length:         {size} bytes")),
            "{stdout}"
        );
        assert!(stdout.contains("ranges:         yes"), "{stdout}");
        assert!(stdout.contains("etag:"), "{stdout}");
        assert!(stdout.contains("file name:      info.bin"), "{stdout}");

        let run = output(dlm(&["info", &url, "--no-netrc", "--json"])).await;
        assert!(run.status.success(), "{}", text(&run.stderr));
        let probe: Value = serde_json::from_slice(&run.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&run.stdout)));
        assert_eq!(probe["len"], size, "{probe}");
        assert_eq!(probe["caps"]["ranges"], true, "{probe}");
        assert_eq!(probe["file_name"], "info.bin", "{probe}");

        let run = output(dlm(&[
            "info",
            &nginx.http_url("/norange/info.bin"),
            "--no-netrc",
        ]))
        .await;
        assert!(run.status.success(), "{}", text(&run.stderr));
        assert!(
            text(&run.stdout).contains("ranges:         no"),
            "{}",
            text(&run.stdout)
        );

        let run = output(dlm(&["info", &nginx.http_url("/status/404"), "--no-netrc"])).await;
        assert_one_line_error(&run, 1, "(not-found)");
    })
    .await;
}

/// Case 6: `-o -` streams the bytes to stdout, in order, with several connections, and writes no file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_to_stdout() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let size = 10 * MIB + 99;
    let sha = write_random_file(nginx.www(), "s.bin", size, 36).unwrap();
    bounded(async {
        let cwd = tempfile::tempdir().unwrap();
        let mut cmd = get(&nginx.http_url("/s.bin"), &["-c", "4", "-o", "-"]);
        cmd.current_dir(cwd.path());
        let run = output(cmd).await;
        assert!(run.status.success(), "{}", text(&run.stderr));
        assert_eq!(run.stdout.len() as u64, size);
        assert_eq!(hex::encode(Sha256::digest(&run.stdout)), sha);
        assert_dir_holds(cwd.path(), &[]);
        // Several ranged requests, not one stream.
        let log = nginx.wait_for_requests("/s.bin", 3, LOG_TIMEOUT);
        assert!(
            log.iter()
                .filter(|e| e.status == 206 && e.range.as_deref() != Some("bytes=0-0"))
                .count()
                >= 2,
            "{log:?}"
        );
    })
    .await;
}

/// Many inputs at once: on the command line and in an aria2-style input
/// file with per-input options (`dir=`, `out=`, a protocol setting), `-j 2`
/// at a time; a failing input does not stop the others, and the exit code is
/// the worst (1 for a 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_inputs_run_together_and_the_worst_exit_code_wins() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let mut shas = Vec::new();
    for (i, name) in ["m1.bin", "m2.bin", "m3.bin"].iter().enumerate() {
        shas.push(
            write_random_file(nginx.www(), name, MIB + i as u64 * 1000, 60 + i as u64).unwrap(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("inputs.txt");
    std::fs::write(
        &list,
        format!(
            "# two files and a missing one\n{}\n  dir={}\n  out=renamed.bin\n  http.idle_timeout=30s\n\n{}\n",
            nginx.http_url("/m2.bin"),
            path_arg(&dir.path().join("sub")),
            nginx.http_url("/status/404"),
        ),
    )
    .unwrap();
    bounded(async {
        let out = output(get(
            &nginx.http_url("/m1.bin"),
            &[
                "-i",
                path_arg(&list),
                "-j",
                "2",
                "-d",
                path_arg(dir.path()),
                "--quiet",
            ],
        ))
        .await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("not-found"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(
            dlm_tests::sha256_file(&dir.path().join("m1.bin")).unwrap(),
            shas[0]
        );
        assert_eq!(
            dlm_tests::sha256_file(&dir.path().join("sub/renamed.bin")).unwrap(),
            shas[1]
        );
        // All good: exit 0.
        let out = output(dlm(&[
            "get",
            "--no-netrc",
            "--quiet",
            &nginx.http_url("/m3.bin"),
            &nginx.http_url("/m1.bin"),
            "-d",
            path_arg(&dir.path().join("again")),
        ]))
        .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            dlm_tests::sha256_file(&dir.path().join("again/m3.bin")).unwrap(),
            shas[2]
        );
        // An input file that cannot be read is a usage error naming the line.
        std::fs::write(&list, "  dir=x\n").unwrap();
        let out = output(dlm(&["get", "--no-netrc", "-i", path_arg(&list)])).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("line 1"),
            "{}",
            text(&out.stderr)
        );
    })
    .await;
}
