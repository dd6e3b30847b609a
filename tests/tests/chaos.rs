//! Faults survived, measured (issue 15): the `dlm` binary run as a process against real servers on 127.0.0.1,
//! SIGKILLed at random instants and resumed, and put through faults a download must survive or report clearly.
//!
//! Each case prints one tab-separated row starting with `chaos-row` (see [`Row`]); `scripts/chaos` runs this
//! binary with many kills and turns those rows into a table. In the normal suite the cases are small.
//!
//! # Kill cases
//!
//! HTTP (nginx, 16 connections), FTP (vsftpd), S3 (s3s-fs) and BitTorrent (libtorrent): files are downloaded
//! with `dlm get --json`, each run SIGKILLed at a random instant (a seeded RNG; the seed is printed and
//! `DLM_CHAOS_SEED` replays it) until the file has taken its share of kills, then run to the end. Every final
//! file must be bit-identical (SHA-256) and the directory must hold nothing else.
//!
//! Bytes re-fetched are measured from the server's side: nginx's access log (`$body_bytes_sent`), vsftpd's
//! transfer log (`OK`/`FAIL DOWNLOAD … N bytes`), a counting proxy in front of s3s-fs (it logs no byte counts;
//! its count includes response headers), libtorrent's `uploaded_bytes` for the info-hash. After each run the
//! server is given time to notice the killed client; then what it sent during that run, minus what the run
//! saved (the next run's `resumed_bytes` minus this run's), is what the kill cost.
//!
//! The servers are paced (nginx `limit_rate`, vsftpd `anon_max_rate`, the proxy, libtorrent's upload limit) so
//! a kill lands mid-body and the in-flight window has a bound worth stating. From the engine
//! (`dlm-core/src/engine`): a connection's bytes are recorded done after each positional write of at most
//! `write_buffer_bytes` (128 KiB; a torrent's unit is a verified piece), and the control file is replaced at
//! least every `save_interval` (1 s, checked on a 250 ms tick) and on every chunk completion. So a kill loses
//! at most, per connection, one write buffer (or piece) plus 1.25 s of transfer; we allow one more second of
//! transfer for what sat in socket buffers and the servers' bursts (nginx sends a second's worth at once):
//! `window = rate × 2.25 s + connections × max(write buffer, piece)`. Each kill's cost is checked against it.
//!
//! # Fault cases
//!
//! Connections cut every MiB (a cut proxy), a server that stalls mid-body, a TLS handshake that never
//! completes, a server that answers 200 to a range, and a full disk (ENOSPC on a small tmpfs, at the start and
//! mid-download). Library-level versions of some live elsewhere: `http_download::connections_cut_mid_transfer_
//! are_resumed`, `http_download::servers_without_ranges_fall_back_to_one_stream`, `cli_get::exit_codes_and_
//! one_line_errors`; here they run through the CLI with 16 connections and are timed.
//!
//! # Settings (environment)
//!
//! `DLM_CHAOS_KILLS` kills per protocol (default 2), `DLM_CHAOS_FILE_MIB` file size (default 4),
//! `DLM_CHAOS_SEED` the RNG seed (default: from the clock). No assertion is about speed; the timeouts only
//! bound a hang, except where a fault's own timeout is the point (then the bound is the configured timeouts
//! times the attempts, with slack).

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use dlm_core::{ControlFile, FileSink};
use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, NO_TRACKER, TorrentFixture, TorrentSpec};
use dlm_tests::{
    CountingProxy, CutProxy, CutProxyOptions, Nginx, NginxOptions, S3Server, StoredChecksum, Tmpfs,
    Vsftpd, VsftpdOptions, dlm_command, sha256_file, write_random_file,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const MIB: u64 = 1 << 20;
const KIB: u64 = 1 << 10;

/// The engine's defaults the in-flight window is derived from (`DownloadOptions`, `engine::TICK`).
const SAVE_INTERVAL: Duration = Duration::from_millis(1000);
const TICK: Duration = Duration::from_millis(250);
const WRITE_BUFFER_BYTES: u64 = 128 * KIB;
/// Allowed on top of a save period for bytes in socket buffers and server bursts.
const SOCKET_SLACK: Duration = Duration::from_secs(1);

/// Bounds one `dlm` run that should end by itself (a hang only).
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a server may take to notice a killed client and account for what it sent (a hang only).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Kills one file takes before it is run to the end.
const KILLS_PER_FILE: u32 = 4;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn kills_per_protocol() -> u32 {
    u32::try_from(env_u64("DLM_CHAOS_KILLS", 2)).unwrap_or(u32::MAX)
}

fn file_bytes() -> u64 {
    env_u64("DLM_CHAOS_FILE_MIB", 4).max(1) * MIB
}

/// The RNG for `case`, seeded from `DLM_CHAOS_SEED` or the clock; the seed is printed for replaying.
fn rng_for(case: &str) -> fastrand::Rng {
    let seed = std::env::var("DLM_CHAOS_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("{case}: seed {seed} (DLM_CHAOS_SEED={seed} replays it)");
    fastrand::Rng::with_seed(seed)
}

fn run<T>(timeout: Duration, body: impl Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(timeout, body)
}

/// One line of the table `scripts/chaos` prints.
#[derive(Debug, Default)]
struct Row {
    case: String,
    /// `dlm` processes run.
    runs: u32,
    /// Of those, SIGKILLed.
    kills: u32,
    /// Bytes the server sent for killed runs beyond what they saved, over every kill.
    refetched_bytes: u64,
    /// The largest cost of one kill (a run of consecutive kills with no progress report in between counts
    /// as one share each).
    max_per_kill_bytes: u64,
    /// The bound each kill is checked against; 0 when it does not apply.
    window_bytes: u64,
    /// Bytes beyond the file sent during runs that were not killed (over-reads, headers, probes).
    excess_unkilled_bytes: u64,
    /// For fault cases: how the case ended, in a few words.
    outcome: String,
    failures: Vec<String>,
}

impl Row {
    fn new(case: &str) -> Self {
        Self {
            case: case.to_owned(),
            ..Self::default()
        }
    }

    /// Prints the row and fails the test if anything failed.
    fn finish(self) {
        println!(
            "chaos-row\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.case,
            self.runs,
            self.kills,
            self.refetched_bytes,
            self.max_per_kill_bytes,
            self.window_bytes,
            self.excess_unkilled_bytes,
            self.failures.len(),
            if self.outcome.is_empty() {
                "-"
            } else {
                &self.outcome
            },
        );
        assert!(
            self.failures.is_empty(),
            "{}: {} failure(s):\n{}",
            self.case,
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// One `dlm` process as the kill loop sees it.
#[derive(Debug)]
struct DlmRun {
    /// `resumed_bytes` of its `started` event, when it got that far.
    resumed_bytes: Option<u64>,
    status: ExitStatus,
    stderr: String,
    /// Its `--json` events.
    events: Vec<Value>,
}

impl DlmRun {
    fn killed(&self) -> bool {
        self.status.signal() == Some(9)
    }
}

/// Runs `dlm ARGS` (with `--json` among them) and SIGKILLs it after `kill_after`, unless it ends first.
async fn run_dlm(args: &[String], envs: &[(&str, String)], kill_after: Option<Duration>) -> DlmRun {
    let mut cmd = tokio::process::Command::from(dlm_command());
    cmd.args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn dlm");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let kill = async {
        match kill_after {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(kill);
    let mut killing = false;
    let mut resumed_bytes = None;
    let mut events = Vec::new();
    let reading = async {
        loop {
            tokio::select! {
                line = lines.next_line() => {
                    let Some(line) = line.expect("read dlm's stdout") else { break };
                    let ev: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
                    if ev["type"] == "started" {
                        resumed_bytes = ev["resumed_bytes"].as_u64();
                    }
                    events.push(ev);
                }
                () = &mut kill, if !killing => {
                    killing = true;
                    let _ = child.start_kill();
                }
            }
        }
    };
    tokio::time::timeout(RUN_TIMEOUT, reading)
        .await
        .expect("dlm did not finish");
    let status = tokio::time::timeout(RUN_TIMEOUT, child.wait())
        .await
        .expect("dlm did not exit")
        .expect("wait for dlm");
    DlmRun {
        resumed_bytes,
        status,
        stderr: stderr.await.unwrap_or_default(),
        events,
    }
}

/// Where the bytes a server sent for one download are counted.
enum Meter<'a> {
    /// nginx's access log: `$body_bytes_sent` of the requests for this URI.
    Nginx(&'a Nginx, String),
    /// vsftpd's transfer log for this path.
    Vsftpd(&'a Vsftpd, String),
    /// A counting proxy in front of the server (headers included).
    Proxy(&'a CountingProxy),
    /// libtorrent's `uploaded_bytes` for this info-hash (payload only).
    Libtorrent(&'a LibtorrentPeer, String),
}

impl Meter<'_> {
    /// What the server has sent so far, once it has accounted for every client that went away.
    async fn settled_bytes(&self) -> u64 {
        match self {
            Meter::Nginx(nginx, uri) => {
                let idle = tokio::task::block_in_place(|| nginx.wait_until_idle(SETTLE_TIMEOUT));
                assert!(idle, "nginx kept connections open");
                nginx.requests(uri).iter().map(|e| e.body_bytes_sent).sum()
            }
            Meter::Proxy(proxy) => {
                assert!(
                    proxy.wait_until_idle(SETTLE_TIMEOUT).await,
                    "the proxy kept connections open"
                );
                proxy.downstream_bytes()
            }
            Meter::Vsftpd(ftp, path) => stable(|| ftp.downloaded_bytes(path)).await,
            Meter::Libtorrent(peer, key) => {
                stable(|| {
                    peer.status()
                        .torrents
                        .get(key)
                        .map_or(0, |t| t.uploaded_bytes)
                })
                .await
            }
        }
    }
}

/// Polls `count` until it has not changed for a second (servers that log when a transfer ends, or report
/// every 0.2 s), bounded by [`SETTLE_TIMEOUT`].
async fn stable(count: impl Fn() -> u64) -> u64 {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last = count();
    let mut since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = count();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= Duration::from_secs(1) {
            break;
        }
    }
    last
}

/// The in-flight window per kill for `connections` connections sending `rate` bytes/s in total, with `unit`
/// the bytes a connection holds before they count as done (write buffer, or a torrent's piece).
fn window_bytes(rate: u64, connections: u64, unit: u64) -> u64 {
    let period = SAVE_INTERVAL + TICK + SOCKET_SLACK;
    (rate as f64 * period.as_secs_f64()) as u64 + connections * unit.max(WRITE_BUFFER_BYTES)
}

/// One file to download in the kill loop.
struct KillTarget<'a> {
    args: Vec<String>,
    envs: Vec<(&'static str, String)>,
    len: u64,
    meter: Meter<'a>,
    /// Checks the finished output (bit-identical, nothing left over).
    check: Box<dyn Fn() -> Result<(), String> + 'a>,
    /// How long an uninterrupted download takes at the paced rate, to spread the kills over it.
    expected: Duration,
    /// How long `dlm` takes to get to the first body byte (process start, probe, for a torrent the peer
    /// handshake), added to the span the kill instants are drawn from.
    startup: Duration,
}

/// Downloads `target`, SIGKILLing runs at random instants until it has taken `kills` kills, then to the end;
/// adds what happened to `row`.
async fn kill_loop(target: &KillTarget<'_>, kills: u32, rng: &mut fastrand::Rng, row: &mut Row) {
    let mut sent_before = target.meter.settled_bytes().await;
    let mut last_resumed = 0u64;
    // Killed runs whose cost is not known yet (it needs the next `started` event).
    let (mut pending_sent, mut pending_kills) = (0u64, 0u32);
    let spread_ms = (target.expected.as_millis() as u64 * 2 / u64::from(kills + 1)).max(200);
    let mut taken = 0;
    loop {
        let span_ms = spread_ms + target.startup.as_millis() as u64;
        let kill_after = (taken < kills).then(|| Duration::from_millis(50 + rng.u64(0..span_ms)));
        let began = Instant::now();
        let r = run_dlm(&target.args, &target.envs, kill_after).await;
        let took = began.elapsed();
        row.runs += 1;
        let sent_now = target.meter.settled_bytes().await;
        let sent = sent_now.saturating_sub(sent_before);
        sent_before = sent_now;
        eprintln!(
            "{}: run {}: {}, resumed at {:?}, the server sent {sent} bytes",
            row.case,
            row.runs,
            match kill_after {
                Some(d) if r.killed() => format!("killed after {} ms", d.as_millis()),
                _ => format!(
                    "ended by itself after {} ms ({})",
                    took.as_millis(),
                    r.status
                ),
            },
            r.resumed_bytes
        );
        if let Some(resumed) = r.resumed_bytes {
            if pending_kills > 0 {
                let saved = resumed.saturating_sub(last_resumed);
                let lost = pending_sent.saturating_sub(saved);
                let per_kill = lost / u64::from(pending_kills);
                row.refetched_bytes += lost;
                row.max_per_kill_bytes = row.max_per_kill_bytes.max(per_kill);
                if per_kill > row.window_bytes {
                    row.failures.push(format!(
                        "{} kill(s) cost {lost} bytes re-fetched, over the window of {} per kill",
                        pending_kills, row.window_bytes
                    ));
                }
                (pending_sent, pending_kills) = (0, 0);
            }
            if resumed < last_resumed {
                eprintln!("note: resumed at {resumed}, after {last_resumed} before");
            }
            last_resumed = resumed;
        }
        if r.killed() {
            row.kills += 1;
            taken += 1;
            pending_sent += sent;
            pending_kills += 1;
            continue;
        }
        if !r.status.success() {
            row.failures.push(format!(
                "run {} failed ({}): {}",
                row.runs,
                r.status,
                r.stderr.trim()
            ));
            return;
        }
        let fetched = target.len.saturating_sub(r.resumed_bytes.unwrap_or(0));
        row.excess_unkilled_bytes += sent.saturating_sub(fetched);
        if !r.events.iter().any(|e| e["type"] == "completed") {
            row.failures
                .push(format!("run {} reported no completion", row.runs));
        }
        if let Err(e) = (target.check)() {
            row.failures.push(e);
        }
        return;
    }
}

/// Kill rounds for one protocol: `files` are made on demand (index, seed) until `kills` kills are taken.
async fn kill_rounds<'a>(
    row: &mut Row,
    rng: &mut fastrand::Rng,
    mut make: impl FnMut(usize, u64) -> KillTarget<'a>,
) {
    let total = kills_per_protocol();
    let mut index = 0;
    while row.kills < total && row.failures.is_empty() {
        let seed = rng.u64(..);
        let target = make(index, seed);
        let kills = KILLS_PER_FILE.min(total - row.kills);
        kill_loop(&target, kills, rng, row).await;
        index += 1;
    }
}

fn kill_timeout() -> Duration {
    Duration::from_secs(120 + u64::from(kills_per_protocol()) * 25)
}

/// Asserts `dir` holds exactly `names` (no `.part`, control or temp file left).
fn dir_holds(dir: &Path, names: &[&str]) -> Result<(), String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut want: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    want.sort();
    if found == want {
        Ok(())
    } else {
        Err(format!("{} holds {found:?}, want {want:?}", dir.display()))
    }
}

fn same_file(path: &Path, sha256: &str) -> Result<(), String> {
    match sha256_file(path) {
        Ok(got) if got == sha256 => Ok(()),
        Ok(got) => Err(format!(
            "{} is not bit-identical: sha256 {got}, want {sha256}",
            path.display()
        )),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp path").to_owned()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// HTTP: nginx paced to 256 KiB/s per connection, 16 connections.
#[test]
fn sigkill_http_16_connections() {
    let rate_per_conn = 256 * KIB;
    let connections = 16u64;
    let Some(nginx) = Nginx::start(NginxOptions {
        slow_rate: "256k".to_owned(),
    }) else {
        return;
    };
    let mut row = Row::new("SIGKILL http (nginx, -c 16)");
    row.window_bytes = window_bytes(rate_per_conn * connections, connections, 0);
    let mut rng = rng_for("http");
    let len = file_bytes();
    let dir = tempfile::tempdir().unwrap();
    run(kill_timeout(), async {
        kill_rounds(&mut row, &mut rng, |i, seed| {
            let name = format!("h{i}.bin");
            let sha = write_random_file(nginx.www(), &name, len, seed).unwrap();
            let out_dir = dir.path().join(format!("h{i}"));
            std::fs::create_dir_all(&out_dir).unwrap();
            let out = out_dir.join(&name);
            let uri = format!("/slow/{name}");
            KillTarget {
                args: strings(&[
                    "get",
                    &nginx.http_url(&uri),
                    "--no-netrc",
                    "--json",
                    "-c",
                    "16",
                    "-o",
                    &path_str(&out),
                ]),
                envs: Vec::new(),
                len,
                meter: Meter::Nginx(&nginx, uri),
                check: Box::new(move || {
                    same_file(&out, &sha)?;
                    dir_holds(out.parent().unwrap(), &[name.as_str()])
                }),
                expected: Duration::from_secs_f64(
                    len as f64 / (rate_per_conn * connections) as f64,
                ),
                startup: Duration::from_millis(250),
            }
        })
        .await;
    });
    row.finish();
}

/// FTP: vsftpd paced to 1 MiB/s per transfer, 4 connections.
#[test]
fn sigkill_ftp() {
    let rate_per_conn = MIB;
    let connections = 4u64;
    let Some(ftp) = Vsftpd::start_with(VsftpdOptions {
        max_rate_bytes_per_sec: Some(rate_per_conn),
        ..VsftpdOptions::default()
    }) else {
        return;
    };
    let mut row = Row::new("SIGKILL ftp (vsftpd, -c 4)");
    row.window_bytes = window_bytes(rate_per_conn * connections, connections, 0);
    let mut rng = rng_for("ftp");
    let len = file_bytes();
    let dir = tempfile::tempdir().unwrap();
    run(kill_timeout(), async {
        kill_rounds(&mut row, &mut rng, |i, seed| {
            let name = format!("f{i}.bin");
            let sha = write_random_file(&ftp.root(), &name, len, seed).unwrap();
            let out_dir = dir.path().join(format!("f{i}"));
            std::fs::create_dir_all(&out_dir).unwrap();
            let out = out_dir.join(&name);
            KillTarget {
                args: strings(&[
                    "get",
                    &ftp.url(&name),
                    "--no-netrc",
                    "--json",
                    "-c",
                    "4",
                    "-o",
                    &path_str(&out),
                ]),
                envs: Vec::new(),
                len,
                meter: Meter::Vsftpd(&ftp, format!("/{name}")),
                check: Box::new(move || {
                    same_file(&out, &sha)?;
                    dir_holds(out.parent().unwrap(), &[name.as_str()])
                }),
                expected: Duration::from_secs_f64(
                    len as f64 / (rate_per_conn * connections) as f64,
                ),
                startup: Duration::from_millis(250),
            }
        })
        .await;
    });
    row.finish();
}

/// S3: s3s-fs behind a counting proxy paced to 1 MiB/s per connection, 4 connections.
#[test]
fn sigkill_s3() {
    let rate_per_conn = MIB;
    let connections = 4u64;
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket("chaos");
    let mut row = Row::new("SIGKILL s3 (s3s-fs, -c 4)");
    row.window_bytes = window_bytes(rate_per_conn * connections, connections, 0);
    let mut rng = rng_for("s3");
    let len = file_bytes();
    let dir = tempfile::tempdir().unwrap();
    run(kill_timeout(), async {
        let upstream: SocketAddr = ([127, 0, 0, 1], s3.port()).into();
        let proxy = CountingProxy::start(upstream, Some(rate_per_conn))
            .await
            .unwrap();
        let mut envs = s3.env();
        envs.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
        kill_rounds(&mut row, &mut rng, |i, seed| {
            let name = format!("s{i}.bin");
            let object = s3.put_random_object("chaos", &name, len, seed, StoredChecksum::None);
            let out_dir = dir.path().join(format!("s{i}"));
            std::fs::create_dir_all(&out_dir).unwrap();
            let out = out_dir.join(&name);
            KillTarget {
                args: strings(&[
                    "get",
                    &s3.s3_url("chaos", &name),
                    "--endpoint-url",
                    &proxy.endpoint(),
                    "--no-netrc",
                    "--json",
                    "-c",
                    "4",
                    "-o",
                    &path_str(&out),
                ]),
                envs: envs.clone(),
                len,
                meter: Meter::Proxy(&proxy),
                check: Box::new(move || {
                    same_file(&out, &object.sha256)?;
                    dir_holds(out.parent().unwrap(), &[name.as_str()])
                }),
                expected: Duration::from_secs_f64(
                    len as f64 / (rate_per_conn * connections) as f64,
                ),
                startup: Duration::from_millis(250),
            }
        })
        .await;
    });
    row.finish();
}

/// BitTorrent: a libtorrent seed with a 4 MiB/s upload limit, given with `--peer`.
#[test]
fn sigkill_bittorrent() {
    let rate = 4 * MIB;
    let piece_len = 256 * KIB;
    let len = file_bytes();
    let total = kills_per_protocol();
    let files = total.div_ceil(KILLS_PER_FILE).max(1) as usize;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rng_for("bittorrent");
    // The seeder serves every round's torrent from the start.
    let mut fixtures: Vec<TorrentFixture> = Vec::new();
    for i in 0..files {
        let Some(fx) = TorrentSpec::single_file(&format!("t{i}.bin"), len)
            .with_tracker(NO_TRACKER)
            .with_piece_len_log2(18)
            .with_seed(rng.u64(..))
            .create(&dir.path().join(format!("seed{i}")))
        else {
            return;
        };
        fixtures.push(fx);
    }
    let mut options = LibtorrentOptions::seeding(&fixtures[0]).with_upload_limit(rate);
    for fx in &fixtures[1..] {
        options = options.with_seed(fx);
    }
    let Some(mut seeder) = LibtorrentPeer::start(options) else {
        return;
    };
    // libtorrent checks the seeded data first; a kill before it serves would measure nothing.
    let keys: Vec<String> = fixtures.iter().map(TorrentFixture::info_hash_hex).collect();
    seeder
        .wait_until(Duration::from_secs(60), |s| {
            keys.iter()
                .all(|k| s.torrents.get(k).is_some_and(|t| t.is_seeding))
        })
        .expect("libtorrent seeds every torrent");
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let mut row = Row::new("SIGKILL bittorrent (libtorrent)");
    row.window_bytes = window_bytes(rate, 1, piece_len);
    run(kill_timeout(), async {
        kill_rounds(&mut row, &mut rng, |i, _| {
            let fx = &fixtures[i % fixtures.len()];
            let out = dir.path().join(format!("out{i}"));
            KillTarget {
                args: strings(&[
                    "get",
                    &path_str(&fx.torrent_path),
                    "--peer",
                    &peer,
                    "--no-listen",
                    "--no-netrc",
                    "--json",
                    "-d",
                    &path_str(&out),
                ]),
                envs: Vec::new(),
                len,
                meter: Meter::Libtorrent(&seeder, fx.info_hash_hex()),
                check: Box::new(move || {
                    fx.check_download(&out)?;
                    dir_holds(&out, &[fx.name.as_str()])
                }),
                expected: Duration::from_secs_f64(len as f64 / rate as f64),
                startup: Duration::from_millis(2000),
            }
        })
        .await;
    });
    row.finish();
}

// ---- Fault cases ----

/// Runs `dlm get URL ARGS` to its end, timed.
async fn get_timed(url: &str, args: &[&str]) -> (DlmRun, Duration) {
    let mut all = strings(&["get", url, "--no-netrc", "--json"]);
    all.extend(strings(args));
    let started = Instant::now();
    let r = run_dlm(&all, &[], None).await;
    (r, started.elapsed())
}

/// The one error line `dlm` printed (its last stderr line).
fn error_line(r: &DlmRun) -> String {
    r.stderr
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn expect_complete(row: &mut Row, r: &DlmRun, out: &Path, sha: &str) {
    if !r.status.success() {
        row.failures
            .push(format!("failed ({}): {}", r.status, r.stderr.trim()));
        return;
    }
    if let Err(e) = same_file(out, sha) {
        row.failures.push(e);
    }
}

/// Connections cut after every MiB (a proxy in front of nginx): 16 connections still finish, bit-identical.
#[test]
fn connections_cut_every_mib_complete() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let len = 16 * MIB;
    let sha = write_random_file(nginx.www(), "cut.bin", len, 15).unwrap();
    let mut row = Row::new("cut every 1 MiB (-c 16)");
    run(Duration::from_secs(120), async {
        let proxy = CutProxy::start(nginx.http_addr(), CutProxyOptions::cut_after(MIB))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("cut.bin");
        let (r, took) = get_timed(
            &proxy.http_url("/cut.bin"),
            &["-c", "16", "-o", &path_str(&out)],
        )
        .await;
        row.runs = 1;
        expect_complete(&mut row, &r, &out, &sha);
        row.outcome = format!(
            "completed in {:.1} s after {} cuts",
            took.as_secs_f64(),
            proxy.cuts()
        );
    });
    row.finish();
}

/// A loopback HTTP server for `body` that honours Range but sends at most `burst` body bytes on a connection
/// before it stalls (holds the connection open and sends nothing more); `burst` 0 stalls before the body.
async fn stalling_server(body: &'static [u8], burst: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve_then_stall(conn, body, burst));
        }
    });
    addr
}

async fn serve_then_stall(mut conn: TcpStream, body: &'static [u8], burst: usize) {
    let mut left = burst;
    let mut buf = [0u8; 4096];
    // Requests on one connection (keep-alive), until one's body does not fit in what is left of the burst.
    loop {
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let len = body.len();
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("range: bytes="))
            .and_then(|r| {
                let (a, b) = r.trim().split_once('-')?;
                let a: usize = a.parse().ok()?;
                let b: usize = if b.is_empty() {
                    len - 1
                } else {
                    b.parse().ok()?
                };
                Some((a, b.min(len - 1)))
            });
        let (status, start, end) = match range {
            Some((a, b)) => ("206 Partial Content", a, b + 1),
            None => ("200 OK", 0, len),
        };
        let mut resp = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nETag: \"stall\"\r\n",
            end - start
        );
        if range.is_some() {
            resp.push_str(&format!(
                "Content-Range: bytes {start}-{}/{len}\r\n",
                end - 1
            ));
        }
        resp.push_str("\r\n");
        if conn.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
        if head.starts_with("head ") {
            continue;
        }
        let upto = end.min(start + left);
        if conn.write_all(&body[start..upto]).await.is_err() {
            return;
        }
        left -= upto - start;
        if upto < end {
            break;
        }
    }
    // Stall: read (and drop) whatever comes until the client gives up.
    while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// A server that stalls mid-body: with `--timeout 1`, every stalled connection is dropped after a second
/// without bytes and its chunk resumed where it stopped, so the download completes; a server that stalls
/// before any body byte fails with a clear error once the retries are spent.
#[test]
fn a_server_that_stalls_mid_body() {
    static BODY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let body: &'static [u8] = BODY.get_or_init(|| {
        let mut rng = fastrand::Rng::with_seed(99);
        (0..(2 * MIB)).map(|_| rng.u8(..)).collect()
    });
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body));
    let mut row = Row::new("stall mid-body (--timeout 1)");
    run(Duration::from_secs(150), async {
        let dir = tempfile::tempdir().unwrap();
        let addr = stalling_server(body, 256 * KIB as usize).await;
        let out = dir.path().join("stall.bin");
        let (r, took) = get_timed(
            &format!("http://{addr}/stall.bin"),
            &["-c", "4", "--timeout", "1", "-o", &path_str(&out)],
        )
        .await;
        row.runs += 1;
        expect_complete(&mut row, &r, &out, &sha);
        let completed = format!("completed in {:.1} s", took.as_secs_f64());

        let addr = stalling_server(body, 0).await;
        let out = dir.path().join("dead.bin");
        let (r, took) = get_timed(
            &format!("http://{addr}/dead.bin"),
            &["-c", "4", "--timeout", "1", "-o", &path_str(&out)],
        )
        .await;
        row.runs += 1;
        let line = error_line(&r);
        if r.status.code() != Some(1) || !line.starts_with("dlm: error: ") {
            row.failures.push(format!(
                "stall before the body: {}: {}",
                r.status,
                r.stderr.trim()
            ));
        }
        // 5 retries of a 1 s timeout with backoff up to 10 s: well under a minute.
        if took > Duration::from_secs(60) {
            row.failures
                .push(format!("stall before the body took {took:?}"));
        }
        eprintln!("stall before the body: {took:?}: {line}");
        row.outcome = format!(
            "{completed}; no body: exit 1 in {:.1} s",
            took.as_secs_f64()
        );
    });
    row.finish();
}

/// A TLS handshake that never completes: the server accepts TCP and never answers. `--connect-timeout 1
/// --timeout 1` must end it with a clear error, not hang.
#[test]
fn a_tls_handshake_that_never_completes() {
    let mut row = Row::new("TLS handshake never completes");
    run(Duration::from_secs(150), async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                conns.push(conn);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("never.bin");
        let (r, took) = get_timed(
            &format!("https://{addr}/never.bin"),
            &[
                "--connect-timeout",
                "1",
                "--timeout",
                "1",
                "-o",
                &path_str(&out),
            ],
        )
        .await;
        held.abort();
        row.runs = 1;
        let line = error_line(&r);
        eprintln!("TLS never completes: {:?}: {line}", took);
        if r.status.code() != Some(1) || !line.starts_with("dlm: error: ") {
            row.failures
                .push(format!("{}: {}", r.status, r.stderr.trim()));
        }
        if !line.contains("timed out") && !line.contains("timeout") && !line.contains("no response")
        {
            row.failures
                .push(format!("the error does not say it timed out: {line}"));
        }
        if took > Duration::from_secs(60) {
            row.failures.push(format!("took {took:?}"));
        }
        row.outcome = format!(
            "exit 1 in {:.1} s: {}",
            took.as_secs_f64(),
            line.trim_start_matches("dlm: error: ")
        );
    });
    row.finish();
}

/// A server that answers 200 to a range (nginx `/norange/`): one stream, a notice, the right bytes.
#[test]
fn a_server_that_answers_200_to_a_range() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let len = 8 * MIB;
    let sha = write_random_file(nginx.www(), "nr.bin", len, 200).unwrap();
    let mut row = Row::new("200 to a range (-c 16)");
    run(Duration::from_secs(120), async {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nr.bin");
        let (r, took) = get_timed(
            &nginx.http_url("/norange/nr.bin"),
            &["-c", "16", "-o", &path_str(&out)],
        )
        .await;
        row.runs = 1;
        expect_complete(&mut row, &r, &out, &sha);
        let sent: u64 = nginx
            .requests("/norange/nr.bin")
            .iter()
            .map(|e| e.body_bytes_sent)
            .sum();
        row.outcome = format!(
            "completed in {:.1} s, nginx sent {:.1} MiB",
            took.as_secs_f64(),
            sent as f64 / MIB as f64
        );
    });
    row.finish();
}

/// What a failed run left: the `.part` length and the control file's done ranges.
fn left_behind(out: &Path) -> Result<(u64, u64), String> {
    let part = FileSink::part_path_for(out);
    let control = FileSink::control_path_for(out);
    let part_len = std::fs::metadata(&part)
        .map_err(|e| format!("{}: {e}", part.display()))?
        .len();
    let saved = ControlFile::load(&control)
        .map_err(|e| format!("{}: {e}", control.display()))?
        .ok_or_else(|| format!("no control file {}", control.display()))?;
    let done = saved.done.ranges().last().map_or(0, |r| r.end);
    if done > part_len {
        return Err(format!(
            "the control file records bytes up to {done}, past the .part's {part_len}"
        ));
    }
    Ok((part_len, saved.done_bytes()))
}

/// ENOSPC on a small tmpfs: at the start (the `.part` cannot be allocated) and mid-download (a filler takes
/// the space left, so the next control-file save fails). Each fails with exit 1 and a "No space left" error,
/// keeps what it had, and the same command completes once space is freed.
#[test]
fn a_full_disk_fails_clearly_and_resumes_once_space_is_freed() {
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    let Some(disk) = Tmpfs::mount(8 * MIB) else {
        return;
    };
    let len = 16 * MIB;
    let sha = write_random_file(nginx.www(), "big.bin", len, 28).unwrap();
    let mut row = Row::new("ENOSPC (tmpfs)");
    let mut outcome = Vec::new();
    run(Duration::from_secs(180), async {
        // At the start: 16 MiB cannot be allocated on 8 MiB.
        let out = disk.path().join("big.bin");
        let args = ["-c", "4", "-o", &path_str(&out)];
        let (r, _) = get_timed(&nginx.http_url("/big.bin"), &args).await;
        row.runs += 1;
        let line = error_line(&r);
        eprintln!("ENOSPC at the start: {}: {line}", r.status);
        if r.status.code() != Some(1) || !line.contains("No space left") {
            row.failures
                .push(format!("at the start: {}: {}", r.status, r.stderr.trim()));
        }
        outcome.push(format!("start: exit {}", r.status.code().unwrap_or(-1)));
        disk.resize(64 * MIB);
        let (r, _) = get_timed(&nginx.http_url("/big.bin"), &args).await;
        row.runs += 1;
        expect_complete(&mut row, &r, &out, &sha);
        std::fs::remove_file(&out).unwrap();

        // Mid-download: 2 MiB/s (slow, 2 connections) into 24 MiB; once a save recorded progress, fill the rest.
        disk.resize(24 * MIB);
        let out = disk.path().join("mid.bin");
        write_random_file(nginx.www(), "mid.bin", len, 29).unwrap();
        let mid_sha = sha256_file(&nginx.www().join("mid.bin")).unwrap();
        let url = nginx.http_url("/slow/mid.bin");
        let all = strings(&[
            "get",
            &url,
            "--no-netrc",
            "--json",
            "-c",
            "2",
            "-o",
            &path_str(&out),
        ]);
        let control = FileSink::control_path_for(&out);
        let filler_path = disk.path().join("filler");
        let filling = {
            let control = control.clone();
            let filler_path = filler_path.clone();
            async move {
                while !control.exists() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::time::sleep(Duration::from_millis(600)).await;
                fill(&filler_path).await
            }
        };
        let (r, filled) = tokio::join!(run_dlm(&all, &[], None), filling);
        row.runs += 1;
        let line = error_line(&r);
        eprintln!(
            "ENOSPC mid-download (filler {filled} bytes): {}: {line}",
            r.status
        );
        if r.status.code() != Some(1) || !line.contains("No space left") {
            row.failures
                .push(format!("mid-download: {}: {}", r.status, r.stderr.trim()));
        }
        match left_behind(&out) {
            Ok((part_len, done)) => {
                if part_len != len {
                    row.failures
                        .push(format!("the .part is {part_len} bytes, not {len}"));
                }
                outcome.push(format!(
                    "mid: exit {}, {:.1} MiB kept",
                    r.status.code().unwrap_or(-1),
                    done as f64 / MIB as f64
                ));
            }
            Err(e) => row.failures.push(format!("mid-download left: {e}")),
        }
        std::fs::remove_file(&filler_path).unwrap();
        let r = run_dlm(&all, &[], None).await;
        row.runs += 1;
        if r.resumed_bytes.unwrap_or(0) == 0 {
            row.failures
                .push("the run after freeing space resumed nothing".to_owned());
        }
        expect_complete(&mut row, &r, &out, &mid_sha);
        if let Err(e) = dir_holds(disk.path(), &["mid.bin"]) {
            row.failures.push(e);
        }
    });
    row.outcome = outcome.join("; ");
    row.finish();
}

/// Writes zeros to `path` until the file system is full; returns the bytes written.
async fn fill(path: &Path) -> u64 {
    let path = PathBuf::from(path);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut f = std::fs::File::create(&path).expect("create filler");
        let block = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n as u64,
            }
        }
        // Smaller writes take the last partial block.
        while let Ok(n) = f.write(&block[..512]) {
            if n == 0 {
                break;
            }
            written += n as u64;
        }
        written
    })
    .await
    .unwrap()
}
