//! `dlmd` (the `examples/dlmd` daemon) run as a process, downloading from nginx on 127.0.0.1: crash safety
//! (SIGKILL mid-queue, restart, nothing lost, little re-fetched), the `max_active` and `max_per_host` limits,
//! priorities, pause/resume/cancel, the event stream, and SIGTERM.
//!
//! Outputs are compared by SHA-256 with the fixtures; what nginx sent is read from its access log. No assertion
//! is about timing; the timeouts only bound a hang.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dlm_tests::{Dlmd, DlmdOptions, Nginx, NginxOptions, sha256_file, write_random_file};
use serde_json::{Value, json};

/// Bounds every test; a hang fails instead of blocking CI. Asserts nothing about speed.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);

/// Bounds waiting for one job to reach a state (a hang only).
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// Bounds waiting for the next event on `/v1/events` (a hang only).
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Bounds waiting for dlmd to exit after SIGTERM (a hang only; dlmd itself aims at 5 s).
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Bounds waiting for nginx to close and log every connection (a hang only).
const LOG_TIMEOUT: Duration = Duration::from_secs(15);

/// How often the tests poll the API.
const POLL: Duration = Duration::from_millis(50);

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// nginx's `limit_rate` on `/slow/`, per connection: 1 MiB/s.
const SLOW_RATE: u64 = MIB;

async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    dlm_tests::runtime::bounded(TEST_TIMEOUT, fut).await
}

fn slow_nginx() -> Option<Nginx> {
    Nginx::start(NginxOptions {
        slow_rate: "1m".to_owned(),
    })
}

/// Bytes a client may be sent again per connection it loses (to a kill or a stop): what was in flight, about
/// two seconds at the rate, plus a MiB of buffers.
fn slack_per_connection() -> u64 {
    SLOW_RATE * 2 + MIB
}

fn part_path(out: &Path) -> PathBuf {
    dlm_core::FileSink::part_path_for(out)
}

fn control_path(out: &Path) -> PathBuf {
    dlm_core::FileSink::control_path_for(out)
}

fn state(job: &Value) -> &str {
    job["state"].as_str().unwrap_or_default()
}

fn id(job: &Value) -> i64 {
    job["id"].as_i64().expect("job id")
}

fn downloaded(job: &Value) -> u64 {
    job["downloaded_bytes"].as_u64().unwrap_or(0)
}

/// Asserts that `dir` holds exactly `names`: no `.part`, `.part.dlm` or temp file left behind.
fn assert_dir_holds(dir: &Path, names: &[String]) {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut want = names.to_vec();
    want.sort();
    assert_eq!(found, want, "files in {}", dir.display());
}

/// Whether a running job has saved state: its control file exists and it has reported bytes.
fn has_saved_state(dlmd: &Dlmd, job: &Value) -> bool {
    state(job) == "running"
        && downloaded(job) > 0
        && dlmd
            .job_file(job)
            .is_some_and(|f| control_path(&f).exists())
}

/// Polls every job until all `count` are completed; fails at once if one fails, is cancelled or paused.
async fn wait_all_completed(dlmd: &Dlmd, count: usize) -> Vec<Value> {
    loop {
        let jobs = dlmd.jobs(None).await;
        assert_eq!(jobs.len(), count, "job count");
        for j in &jobs {
            assert!(
                matches!(state(j), "queued" | "running" | "completed"),
                "job {} is {}: {j}",
                id(j),
                state(j)
            );
        }
        if jobs.iter().all(|j| state(j) == "completed") {
            return jobs;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Checks each completed job's file against the fixture SHA-256 (and the job's own `sha256`, when it has one).
fn assert_outputs(dlmd: &Dlmd, jobs: &[Value], sha_of_job: &HashMap<i64, String>) {
    for j in jobs {
        let want = &sha_of_job[&id(j)];
        let file = dlmd
            .job_file(j)
            .unwrap_or_else(|| panic!("completed job without a path: {j}"));
        assert_eq!(&sha256_file(&file).unwrap(), want, "{}", file.display());
        if let Some(reported) = j["sha256"].as_str() {
            assert_eq!(reported, want, "the job's sha256: {j}");
        }
    }
}

/// One fixture on nginx.
#[derive(Clone, Debug)]
struct Fixture {
    name: String,
    /// The URL path (`/NAME` or `/slow/NAME`); also the access-log prefix of its requests.
    path: String,
    size: u64,
    sha: String,
}

impl Fixture {
    fn new(nginx: &Nginx, dir: &str, name: &str, size: u64, seed: u64) -> Self {
        let sha = write_random_file(nginx.www(), name, size, seed).unwrap();
        Self {
            name: name.to_owned(),
            path: format!("{dir}{name}"),
            size,
            sha,
        }
    }
}

/// Case a: 50 jobs (40 small and fast, 10 of 4 MiB at 1 MiB/s), SIGKILL once some are done and some are
/// running, restart on the same dirs: every job completes with the right bytes, finished jobs are not fetched
/// again, and nginx sends little more than the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_queue_loses_nothing_and_refetches_little() {
    let Some(nginx) = slow_nginx() else {
        return;
    };
    let max_active = 5u64;
    let mut fixtures = Vec::new();
    for i in 0..50u64 {
        fixtures.push(if i % 5 == 2 {
            Fixture::new(
                &nginx,
                "/slow/",
                &format!("slow{i:02}.bin"),
                4 * MIB,
                100 + i,
            )
        } else {
            let size = 256 * KIB + (i * 97_331) % (768 * KIB);
            Fixture::new(&nginx, "/", &format!("small{i:02}.bin"), size, 100 + i)
        });
    }
    let mut dlmd = Dlmd::start(DlmdOptions {
        max_active: Some(max_active as u32),
        max_per_host: Some(max_active as u32),
        ..DlmdOptions::default()
    });
    bounded(async {
        let mut fixture_of_job: HashMap<i64, Fixture> = HashMap::new();
        for f in &fixtures {
            // One connection for the slow files, so each running job has one transfer in flight.
            let new = if f.path.starts_with("/slow/") {
                json!({"url": nginx.http_url(&f.path), "connections": 1})
            } else {
                json!({"url": nginx.http_url(&f.path)})
            };
            let job = dlmd.add_job(&new).await;
            assert_eq!(state(&job), "queued", "{job}");
            fixture_of_job.insert(id(&job), f.clone());
        }
        let sha_of_job: HashMap<i64, String> = fixture_of_job
            .iter()
            .map(|(id, f)| (*id, f.sha.clone()))
            .collect();

        // Kill twice: each time once more jobs are done and a slow one is well under way with its state saved.
        let kills = 2u64;
        let mut requests_of_done: HashMap<i64, usize> = HashMap::new();
        for k in 1..=kills {
            let (done, running, queued) = loop {
                let jobs = dlmd.jobs(None).await;
                for j in &jobs {
                    assert!(state(j) != "failed", "{j}");
                }
                let ids_in = |s: &str| -> Vec<i64> {
                    jobs.iter().filter(|j| state(j) == s).map(id).collect()
                };
                let under_way = jobs
                    .iter()
                    .any(|j| has_saved_state(&dlmd, j) && downloaded(j) >= MIB);
                if ids_in("completed").len() >= requests_of_done.len() + 5 && under_way {
                    break (ids_in("completed"), ids_in("running"), ids_in("queued"));
                }
                tokio::time::sleep(POLL).await;
            };
            let status = dlmd.kill9();
            eprintln!(
                "kill {k}: SIGKILL ({status}) with {} jobs completed, {} running, {} queued",
                done.len(),
                running.len(),
                queued.len()
            );
            // Jobs completed before an earlier kill stayed completed.
            for id in requests_of_done.keys() {
                assert!(done.contains(id), "job {id} was completed and is not any more");
            }
            assert!(
                nginx.wait_until_idle(LOG_TIMEOUT),
                "nginx still has connections open after the kill"
            );
            // What each finished job had cost; it must not grow.
            for id in &done {
                let f = &fixture_of_job[id];
                let n = nginx.requests(&f.path).len();
                if let Some(before) = requests_of_done.insert(*id, n) {
                    assert_eq!(n, before, "{} fetched again after it completed", f.path);
                }
                let out = dlmd.download_dir().join(&f.name);
                assert_eq!(sha256_file(&out).unwrap(), f.sha, "completed before the kill");
            }
            dlmd.restart();
        }
        let requests_before = requests_of_done;

        let jobs = wait_all_completed(&dlmd, fixtures.len()).await;
        assert_outputs(&dlmd, &jobs, &sha_of_job);
        for j in &jobs {
            assert_eq!(
                j["total_bytes"].as_u64(),
                Some(fixture_of_job[&id(j)].size),
                "{j}"
            );
        }
        let names: Vec<String> = fixtures.iter().map(|f| f.name.clone()).collect();
        assert_dir_holds(dlmd.download_dir(), &names);

        // Stop dlmd so its pooled connections close and nginx has logged everything.
        let status = dlmd.terminate(EXIT_TIMEOUT).expect("dlmd exits on SIGTERM");
        assert!(status.success(), "{status}");
        assert!(nginx.wait_until_idle(LOG_TIMEOUT), "nginx still busy");
        for (id, before) in &requests_before {
            let f = &fixture_of_job[id];
            assert_eq!(
                nginx.requests(&f.path).len(),
                *before,
                "{} was completed before the kill and fetched again after it",
                f.path
            );
        }
        let total: u64 = fixtures.iter().map(|f| f.size).sum();
        let sent: u64 = fixtures.iter().map(|f| nginx.bytes_sent(&f.path)).sum();
        let requests: usize = fixtures.iter().map(|f| nginx.requests(&f.path).len()).sum();
        let bound = total + kills * max_active * slack_per_connection();
        eprintln!(
            "SIGKILL mid-queue: nginx sent {sent} bytes ({:.2} MiB) in {requests} requests for {} files of \
             {total} bytes ({:.2} MiB); {:.2} MiB re-fetched or headers; bound {bound} ({:.2} MiB)",
            sent as f64 / MIB as f64,
            fixtures.len(),
            total as f64 / MIB as f64,
            sent.saturating_sub(total) as f64 / MIB as f64,
            bound as f64 / MIB as f64
        );
        assert!(sent >= total, "{sent} < {total}");
        assert!(sent <= bound, "nginx sent {sent} bytes, more than {bound}");
    })
    .await;
}

/// The host part of a job's URL (`127.0.0.1`, `localhost`).
fn host(job: &Value) -> String {
    let url = job["url"].as_str().unwrap_or_default();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split([':', '/']).next().unwrap_or_default().to_owned()
}

/// Case b: never more than `max_active` jobs running, nor more than `max_per_host` on one host (dlmd counts
/// hosts by the URL's host string, so `127.0.0.1` and `localhost` are two); `PATCH /v1/settings` takes effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_active_and_max_per_host_hold_and_settings_apply() {
    let Some(nginx) = slow_nginx() else {
        return;
    };
    let mut dlmd = Dlmd::start(DlmdOptions {
        max_active: Some(3),
        max_per_host: Some(2),
        ..DlmdOptions::default()
    });
    let port = nginx.http_port();
    let mut sha_of_job = HashMap::new();
    bounded(async {
        // All of 127.0.0.1's jobs first, so the per-host limit has to skip queued jobs to fill the slots.
        for (i, h) in ["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", "localhost", "localhost", "localhost", "localhost"]
            .iter()
            .enumerate()
        {
            let name = format!("lim{i}.bin");
            let sha = write_random_file(nginx.www(), &name, 3 * MIB, 200 + i as u64).unwrap();
            let job = dlmd
                .add_job(&json!({"url": format!("http://{h}:{port}/slow/{name}"), "connections": 1}))
                .await;
            sha_of_job.insert(id(&job), sha);
        }

        let mut limit = 3;
        let mut patched = false;
        let (mut max_seen, mut max_seen_per_host, mut polls) = (0, 0, 0);
        let jobs = loop {
            let running = dlmd.jobs(Some("running")).await;
            polls += 1;
            let mut per_host: HashMap<String, usize> = HashMap::new();
            for j in &running {
                assert_eq!(state(j), "running", "{j}");
                *per_host.entry(host(j)).or_default() += 1;
            }
            let per_host_max = per_host.values().copied().max().unwrap_or(0);
            assert!(
                running.len() <= limit,
                "{} running with max_active {limit}: {running:?}",
                running.len()
            );
            assert!(per_host_max <= 2, "more than 2 on one host: {per_host:?}");
            max_seen = max_seen.max(running.len());
            max_seen_per_host = max_seen_per_host.max(per_host_max);

            if !patched && running.len() == 3 {
                let (status, s) = dlmd
                    .api("PATCH", "/v1/settings", Some(&json!({"max_active": 1})))
                    .await;
                assert_eq!(status, 200, "{s}");
                assert_eq!(s["max_active"], 1, "{s}");
                assert_eq!(s["max_per_host"], 2, "{s}");
                let (status, s) = dlmd.api("GET", "/v1/settings", None).await;
                assert_eq!(status, 200, "{s}");
                assert_eq!(s["max_active"], 1, "{s}");
                assert_eq!(s["max_per_host"], 2, "{s}");
                patched = true;
                eprintln!("max_active set to 1 with 3 running ({per_host:?})");
            }
            // Running jobs are not stopped by a lower limit; once they have drained to 1, it holds.
            if patched && running.len() <= 1 {
                limit = 1;
            }

            let all = dlmd.jobs(None).await;
            for j in &all {
                assert!(matches!(state(j), "queued" | "running" | "completed"), "{j}");
            }
            if all.iter().all(|j| state(j) == "completed") {
                break all;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        eprintln!(
            "limits: {polls} polls; at most {max_seen} running, at most {max_seen_per_host} on one host"
        );
        assert!(patched, "never saw 3 running");
        assert_eq!(limit, 1);
        assert_eq!(max_seen, 3);
        assert_eq!(max_seen_per_host, 2);
        assert_outputs(&dlmd, &jobs, &sha_of_job);

        // Every byte counted once in the metrics (no job resumed here).
        let metrics = dlmd.request("GET", "/metrics", None).await.unwrap();
        assert_eq!(metrics.status, 200);
        let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
        let counted = metrics
            .lines()
            .find_map(|l| l.strip_prefix(r#"dlm_downloaded_bytes_total{protocol="http"} "#))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no dlm_downloaded_bytes_total for http in:\n{metrics}"));
        assert_eq!(counted, 8 * 3 * MIB, "{metrics}");

        // The settings survive a restart (the command line's --max-active 3 is for the first start only).
        let status = dlmd.terminate(EXIT_TIMEOUT).expect("dlmd exits on SIGTERM");
        assert!(status.success(), "{status}");
        dlmd.restart();
        let (status, s) = dlmd.api("GET", "/v1/settings", None).await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(s["max_active"], 1, "{s}");
        assert_eq!(s["max_per_host"], 2, "{s}");
    })
    .await;
}

/// Reads events until `done` says stop (it sees every event); returns them all.
async fn read_events_until(
    events: &mut dlm_tests::EventStream,
    mut done: impl FnMut(&dlm_tests::SseEvent) -> bool,
) -> Vec<dlm_tests::SseEvent> {
    let mut seen = Vec::new();
    loop {
        let ev = tokio::time::timeout(EVENT_TIMEOUT, events.next())
            .await
            .unwrap_or_else(|_| panic!("no event within {EVENT_TIMEOUT:?}; so far {seen:?}"))
            .expect("read /v1/events")
            .unwrap_or_else(|| panic!("the event stream ended; so far {seen:?}"));
        assert_ne!(ev.event, "failed", "{ev:?}");
        let stop = done(&ev);
        seen.push(ev);
        if stop {
            return seen;
        }
    }
}

/// Case c: with one slot busy, jobs queued with priorities 0, 5 and 1 start in the order 5, 1, 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_starts_first() {
    let Some(nginx) = slow_nginx() else {
        return;
    };
    let dlmd = Dlmd::start(DlmdOptions {
        max_active: Some(1),
        ..DlmdOptions::default()
    });
    let blocker_sha = write_random_file(nginx.www(), "blocker.bin", 4 * MIB, 300).unwrap();
    let mut sha_of_job = HashMap::new();
    bounded(async {
        let mut events = dlmd.events().await.unwrap();
        let blocker = dlmd
            .add_job(&json!({"url": nginx.http_url("/slow/blocker.bin"), "connections": 1}))
            .await;
        let blocker = id(&blocker);
        sha_of_job.insert(blocker, blocker_sha);
        read_events_until(&mut events, |e| {
            e.event == "started" && e.job_id() == Some(blocker)
        })
        .await;

        let mut by_name = HashMap::new();
        for (name, priority) in [("a", 0), ("b", 5), ("c", 1)] {
            let file = format!("prio-{name}.bin");
            let sha = write_random_file(nginx.www(), &file, 512 * KIB, 301 + priority).unwrap();
            let job = dlmd
                .add_job(&json!({"url": nginx.http_url(&format!("/{file}")), "priority": priority}))
                .await;
            assert_eq!(job["priority"], priority, "{job}");
            assert_eq!(state(&job), "queued", "{job}");
            sha_of_job.insert(id(&job), sha);
            by_name.insert(name, id(&job));
        }
        let still = dlmd.job(blocker).await;
        assert_eq!(
            state(&still),
            "running",
            "the blocker must hold the only slot while the others are queued: {still}"
        );

        let watched: HashSet<i64> = by_name.values().copied().collect();
        let mut completed = HashSet::new();
        let seen = read_events_until(&mut events, |e| {
            if e.event == "completed"
                && let Some(id) = e.job_id().filter(|id| watched.contains(id))
            {
                completed.insert(id);
            }
            completed.len() == watched.len()
        })
        .await;
        let started: Vec<i64> = seen
            .iter()
            .filter(|e| e.event == "started")
            .filter_map(dlm_tests::SseEvent::job_id)
            .collect();
        eprintln!("start order: {started:?} (a, b, c = {by_name:?})");
        assert_eq!(started, vec![by_name["b"], by_name["c"], by_name["a"]]);

        let jobs = wait_all_completed(&dlmd, 4).await;
        assert_outputs(&dlmd, &jobs, &sha_of_job);
        let names = ["blocker.bin", "prio-a.bin", "prio-b.bin", "prio-c.bin"].map(String::from);
        assert_dir_holds(dlmd.download_dir(), &names);
    })
    .await;
}

/// Case d: pause keeps the partial file and its state, resume completes it from there, cancel with
/// `delete_file=true` removes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_cancel() {
    let Some(nginx) = slow_nginx() else {
        return;
    };
    let size = 8 * MIB;
    let connections = 2;
    let sha = write_random_file(nginx.www(), "p.bin", size, 400).unwrap();
    write_random_file(nginx.www(), "q.bin", size, 401).unwrap();
    let mut dlmd = Dlmd::start(DlmdOptions::default());
    bounded(async {
        let p = dlmd
            .add_job(&json!({"url": nginx.http_url("/slow/p.bin"), "connections": connections}))
            .await;
        let p = id(&p);
        dlmd.wait_for_job(p, JOB_TIMEOUT, |j| has_saved_state(&dlmd, j))
            .await;

        let (status, job) = dlmd.api("POST", &format!("/v1/jobs/{p}/pause"), None).await;
        assert_eq!(status, 200, "{job}");
        let paused = dlmd
            .wait_for_job(p, JOB_TIMEOUT, |j| state(j) == "paused")
            .await;
        let out = dlmd.job_file(&paused).expect("path of a started job");
        assert!(control_path(&out).exists(), "state saved: {paused}");
        assert!(part_path(&out).exists());
        assert!(!out.exists());
        let at = downloaded(&paused);
        // A paused job stays paused, also across a crash and a restart.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(state(&dlmd.job(p).await), "paused");
        dlmd.kill9();
        dlmd.restart();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = dlmd.job(p).await;
        assert_eq!(state(&after), "paused", "{after}");
        assert!(control_path(&out).exists() && part_path(&out).exists());

        let (status, job) = dlmd
            .api("POST", &format!("/v1/jobs/{p}/resume"), None)
            .await;
        assert_eq!(status, 200, "{job}");
        assert!(matches!(state(&job), "queued" | "running"), "{job}");
        let done = dlmd
            .wait_for_job(p, JOB_TIMEOUT, |j| state(j) == "completed")
            .await;
        assert_eq!(sha256_file(&out).unwrap(), sha);
        assert!(!control_path(&out).exists() && !part_path(&out).exists());
        eprintln!("paused at {at} of {size} bytes, resumed and completed: {done}");

        // A completed job can be neither paused nor resumed.
        let (status, err) = dlmd.api("POST", &format!("/v1/jobs/{p}/pause"), None).await;
        assert_eq!(status, 409, "{err}");
        assert_eq!(err["error"]["code"], "conflict", "{err}");

        let q = dlmd
            .add_job(&json!({"url": nginx.http_url("/slow/q.bin"), "connections": connections}))
            .await;
        let q = id(&q);
        let running = dlmd
            .wait_for_job(q, JOB_TIMEOUT, |j| has_saved_state(&dlmd, j))
            .await;
        let q_out = dlmd.job_file(&running).unwrap();
        let (status, job) = dlmd
            .api("DELETE", &format!("/v1/jobs/{q}?delete_file=true"), None)
            .await;
        assert_eq!(status, 200, "{job}");
        dlmd.wait_for_job(q, JOB_TIMEOUT, |j| state(j) == "cancelled")
            .await;
        assert!(!part_path(&q_out).exists(), "the .part is deleted");
        assert!(!control_path(&q_out).exists(), "the control file is deleted");
        assert!(!q_out.exists());
        let (status, err) = dlmd
            .api("POST", &format!("/v1/jobs/{q}/resume"), None)
            .await;
        assert_eq!(status, 409, "a cancelled job cannot be resumed: {err}");

        assert_dir_holds(dlmd.download_dir(), &["p.bin".to_owned()]);

        // Pausing and resuming re-fetched at most what was in flight.
        let status = dlmd.terminate(EXIT_TIMEOUT).expect("dlmd exits on SIGTERM");
        assert!(status.success(), "{status}");
        assert!(nginx.wait_until_idle(LOG_TIMEOUT), "nginx still busy");
        let sent = nginx.bytes_sent("/slow/p.bin");
        let bound = size + connections * slack_per_connection();
        eprintln!(
            "pause/resume: nginx sent {sent} bytes for a {size}-byte file in {} requests; bound {bound}",
            nginx.requests("/slow/p.bin").len()
        );
        assert!(sent <= bound, "nginx sent {sent} bytes, more than {bound}");
    })
    .await;
}

/// Case e: `/v1/events` shows one job's life in order: added, started, progress, completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_shows_a_job_from_added_to_completed() {
    let Some(nginx) = slow_nginx() else {
        return;
    };
    let size = 3 * MIB;
    let sha = write_random_file(nginx.www(), "e.bin", size, 500).unwrap();
    let dlmd = Dlmd::start(DlmdOptions::default());
    bounded(async {
        let mut events = dlmd.events().await.unwrap();
        let job = dlmd
            .add_job(&json!({"url": nginx.http_url("/slow/e.bin"), "connections": 1}))
            .await;
        let id = id(&job);
        let seen = read_events_until(&mut events, |e| {
            e.event == "completed" && e.job_id() == Some(id)
        })
        .await;
        let mine: Vec<&dlm_tests::SseEvent> =
            seen.iter().filter(|e| e.job_id() == Some(id)).collect();
        let types: Vec<&str> = mine.iter().map(|e| e.event.as_str()).collect();
        eprintln!(
            "events for job {id}: {} ({} progress)",
            types.len(),
            types.iter().filter(|t| **t == "progress").count()
        );
        for e in &mine {
            assert_eq!(e.json()["type"], e.event, "event: matches data.type: {e:?}");
        }
        assert_eq!(types.first(), Some(&"added"), "{types:?}");
        assert_eq!(types.get(1), Some(&"started"), "{types:?}");
        assert_eq!(types.last(), Some(&"completed"), "{types:?}");
        let middle = &types[2..types.len() - 1];
        assert!(!middle.is_empty(), "no progress event: {types:?}");
        assert!(middle.iter().all(|t| *t == "progress"), "{types:?}");
        assert_eq!(mine[0].json()["job"]["url"], nginx.http_url("/slow/e.bin"));
        let mut last = 0;
        for e in &mine[2..mine.len() - 1] {
            let d = e.json()["downloaded_bytes"].as_u64().unwrap();
            assert!(d >= last && d <= size, "progress goes forward: {e:?}");
            last = d;
        }
        assert_eq!(mine.last().unwrap().json()["sha256"], sha.as_str());
        let done = dlmd.job(id).await;
        assert_eq!(state(&done), "completed");
        assert_eq!(
            sha256_file(&dlmd.job_file(&done).unwrap()).unwrap(),
            sha,
            "{done}"
        );
        assert_dir_holds(dlmd.download_dir(), &["e.bin".to_owned()]);
    })
    .await;
}

/// Case f: SIGTERM while jobs run (and an event stream is open): dlmd ends the stream, saves the jobs' state
/// and exits with success; started again, it completes them, re-fetching at most what was in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_saves_running_jobs_and_a_restart_completes_them() {
    let Some(nginx) = slow_nginx() else {
        return;
    };
    let (count, size, connections) = (3u64, 8 * MIB, 2u64);
    let mut dlmd = Dlmd::start(DlmdOptions {
        max_active: Some(count as u32),
        max_per_host: Some(count as u32),
        ..DlmdOptions::default()
    });
    bounded(async {
        let mut sha_of_job = HashMap::new();
        let mut names = Vec::new();
        for i in 0..count {
            let name = format!("t{i}.bin");
            let sha = write_random_file(nginx.www(), &name, size, 600 + i).unwrap();
            let job = dlmd
                .add_job(&json!({"url": nginx.http_url(&format!("/slow/{name}")), "connections": connections}))
                .await;
            sha_of_job.insert(id(&job), sha);
            names.push(name);
        }
        let mut events = dlmd.events().await.unwrap();
        let mut outs = Vec::new();
        for id in sha_of_job.keys() {
            let j = dlmd
                .wait_for_job(*id, JOB_TIMEOUT, |j| has_saved_state(&dlmd, j))
                .await;
            outs.push(dlmd.job_file(&j).unwrap());
        }

        let asked = std::time::Instant::now();
        let status = dlmd
            .terminate(EXIT_TIMEOUT)
            .unwrap_or_else(|| panic!("dlmd did not exit within {EXIT_TIMEOUT:?} of SIGTERM"));
        eprintln!(
            "SIGTERM with {count} jobs running and an event stream open: exited ({status}) after {:?}",
            asked.elapsed()
        );
        assert!(status.success(), "exit status after SIGTERM: {status}");
        // The open event stream ended (it did not keep the daemon alive).
        loop {
            match tokio::time::timeout(EVENT_TIMEOUT, events.next()).await {
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None) | Err(_)) => break,
                Err(_) => panic!("the event stream is still open after dlmd exited"),
            }
        }
        for out in &outs {
            assert!(control_path(out).exists(), "state saved: {}", out.display());
            assert!(part_path(out).exists(), "{}", out.display());
            assert!(!out.exists(), "{}", out.display());
        }

        dlmd.restart();
        let jobs = wait_all_completed(&dlmd, count as usize).await;
        assert_outputs(&dlmd, &jobs, &sha_of_job);
        assert_dir_holds(dlmd.download_dir(), &names);

        let status = dlmd.terminate(EXIT_TIMEOUT).expect("dlmd exits on SIGTERM");
        assert!(status.success(), "{status}");
        assert!(nginx.wait_until_idle(LOG_TIMEOUT), "nginx still busy");
        let sent: u64 = names
            .iter()
            .map(|n| nginx.bytes_sent(&format!("/slow/{n}")))
            .sum();
        let total = count * size;
        let bound = total + count * connections * slack_per_connection();
        eprintln!(
            "SIGTERM and restart: nginx sent {sent} bytes ({:.2} MiB) for {count} files of {total} bytes; bound {bound}",
            sent as f64 / MIB as f64
        );
        assert!(sent <= bound, "nginx sent {sent} bytes, more than {bound}");
    })
    .await;
}
