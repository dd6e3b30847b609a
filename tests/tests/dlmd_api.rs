//! `dlmd`'s REST API as a client sees it over a socket: bearer auth, JSON errors with stable codes, the OpenAPI
//! document, a schemathesis run against that document (no request may get a 5xx), and `dlm remote`.
//!
//! No assertion is about timing; the timeouts only bound a hang.

use std::net::TcpListener;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dlm_tests::runtime::bounded;
use dlm_tests::{
    Dlmd, DlmdOptions, Nginx, NginxOptions, dlm_command, missing_peer, which, write_random_file,
};
use serde_json::{Value, json};
use tokio::process::Command;

/// Bounds every test; a hang fails instead of blocking CI. Asserts nothing about speed.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Bounds the schemathesis run (a hang only).
const SCHEMATHESIS_TIMEOUT: Duration = Duration::from_secs(600);

/// Bounds one `dlm remote` process (a hang only).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Bounds waiting for one job to reach a state (a hang only).
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

const MIB: u64 = 1 << 20;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a JSON error answer: `status`, `{"error": {"code": code, "message": non-empty}}`; returns the message.
fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) -> String {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "an error message: {body}");
    message.to_owned()
}

/// Sends a raw request and returns the status and the JSON body.
async fn raw(
    dlmd: &Dlmd,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, Value) {
    let resp = dlmd
        .request_with(method, path, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let json = serde_json::from_slice(&resp.body).unwrap_or_else(|e| {
        panic!(
            "{method} {path}: {} with a body that is not JSON ({e}): {:?}",
            resp.status,
            text(&resp.body)
        )
    });
    (resp.status, json)
}

/// Case a: every API route wants the bearer token; `/healthz` and `/v1/openapi.json` do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_requires_the_token_but_health_and_schema_do_not() {
    let dlmd = Dlmd::start(DlmdOptions::default());
    bounded(TEST_TIMEOUT, async {
        let wrong = "Bearer not-the-token";
        let basic = "Basic ZGxtOnNlY3JldA==";
        let token = format!("Bearer {}", dlmd.token());
        let token_prefix = format!("Bearer {}", &dlmd.token()[..dlmd.token().len() - 1]);
        for (method, path) in [
            ("GET", "/v1/jobs"),
            ("POST", "/v1/jobs"),
            ("GET", "/v1/jobs/1"),
            ("DELETE", "/v1/jobs/1"),
            ("POST", "/v1/jobs/1/pause"),
            ("GET", "/v1/settings"),
            ("PATCH", "/v1/settings"),
            ("GET", "/v1/events"),
            ("GET", "/metrics"),
        ] {
            for auth in [None, Some(wrong), Some(basic), Some(token_prefix.as_str())] {
                let headers: Vec<(&str, &str)> =
                    auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
                let body =
                    (method != "GET").then_some(br#"{"url":"http://127.0.0.1:9/x"}"#.as_slice());
                let resp = dlmd
                    .request_with(method, path, &headers, body)
                    .await
                    .unwrap();
                let json: Value = serde_json::from_slice(&resp.body).unwrap_or_else(|e| {
                    panic!(
                        "{method} {path} {auth:?}: not JSON ({e}): {:?}",
                        text(&resp.body)
                    )
                });
                assert_error(resp.status, &json, 401, "unauthorized");
                assert_eq!(
                    resp.header("www-authenticate"),
                    Some("Bearer"),
                    "{method} {path}"
                );
            }
        }
        // Nothing was queued by the refused POSTs.
        assert!(dlmd.jobs(None).await.is_empty());

        let health = dlmd
            .request_with("GET", "/healthz", &[], None)
            .await
            .unwrap();
        assert_eq!(health.status, 200);
        assert_eq!(text(&health.body).trim(), "ok");
        let schema = dlmd
            .request_with("GET", "/v1/openapi.json", &[], None)
            .await
            .unwrap();
        assert_eq!(schema.status, 200);

        let (status, page) =
            raw(&dlmd, "GET", "/v1/jobs", &[("Authorization", &token)], None).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["jobs"], json!([]), "{page}");
        let metrics = dlmd.request("GET", "/metrics", None).await.unwrap();
        assert_eq!(metrics.status, 200);
        assert!(
            text(&metrics.body).contains("dlm_jobs_active"),
            "{}",
            text(&metrics.body)
        );
    })
    .await;
}

/// The authentication scheme is case-insensitive (RFC 9110, section 11.1): `bearer TOKEN` is as good as
/// `Bearer TOKEN`.
///
/// Regression: dlmd once compared the exact prefix `Bearer `.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_scheme_is_case_insensitive() {
    let dlmd = Dlmd::start(DlmdOptions::default());
    bounded(TEST_TIMEOUT, async {
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let auth = format!("{scheme} {}", dlmd.token());
            let (status, body) =
                raw(&dlmd, "GET", "/v1/jobs", &[("Authorization", &auth)], None).await;
            assert_eq!(status, 200, "Authorization: {scheme} TOKEN: {body}");
        }
    })
    .await;
}

/// A method a route does not have is a 405 with an `Allow` header and, like every error, a JSON body
/// (`{"error": {"code", "message"}}`, as `ErrorBody` in `examples/src/api.rs` promises).
///
/// Regression: axum's default 405 once went out with an empty body (no `method_not_allowed_fallback`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_a_json_405() {
    let dlmd = Dlmd::start(DlmdOptions::default());
    bounded(TEST_TIMEOUT, async {
        for (method, path) in [
            ("PUT", "/v1/jobs"),
            ("POST", "/v1/jobs/1"),
            ("GET", "/v1/jobs/1/pause"),
            ("DELETE", "/v1/settings"),
            ("POST", "/healthz"),
        ] {
            let resp = dlmd.request(method, path, None).await.unwrap();
            assert_eq!(resp.status, 405, "{method} {path}");
            assert!(
                resp.header("allow").is_some(),
                "{method} {path}: no Allow header"
            );
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or_else(|e| {
                panic!(
                    "{method} {path}: 405 with a body that is not JSON ({e}): {:?}",
                    text(&resp.body)
                )
            });
            assert!(
                body["error"]["code"]
                    .as_str()
                    .is_some_and(|c| !c.is_empty()),
                "{method} {path}: {body}"
            );
        }
    })
    .await;
}

/// Case b: bad requests get a 4xx with a JSON error of a stable code, and queue nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_with_stable_codes() {
    let dlmd = Dlmd::start(DlmdOptions::default());
    // A port nothing listens on: none of these jobs may be queued anyway.
    let url = "http://127.0.0.1:9/x.bin";
    bounded(TEST_TIMEOUT, async {
        for dest in ["../x.bin", "a/../../x.bin", ".."] {
            let (status, body) = dlmd
                .api("POST", "/v1/jobs", Some(&json!({"url": url, "dest": dest})))
                .await;
            let msg = assert_error(status, &body, 400, "invalid_dest");
            eprintln!("dest {dest:?}: {msg}");
        }
        for dest in ["/etc/passwd", "/tmp/x.bin"] {
            let (status, body) = dlmd
                .api("POST", "/v1/jobs", Some(&json!({"url": url, "dest": dest})))
                .await;
            assert_error(status, &body, 400, "invalid_dest");
        }

        let (status, body) = dlmd
            .request(
                "POST",
                "/v1/jobs",
                Some(br#"{"url": "http://127.0.0.1:9/x.bin""#),
            )
            .await
            .map(|r| (r.status, serde_json::from_slice::<Value>(&r.body).unwrap()))
            .unwrap();
        let msg = assert_error(status, &body, 400, "bad_request");
        assert!(msg.contains("JSON"), "malformed JSON: {msg}");
        eprintln!("malformed JSON: {msg}");

        let (status, body) = dlmd
            .api(
                "POST",
                "/v1/jobs",
                Some(&json!({"url": url, "bogus_field": 1})),
            )
            .await;
        let msg = assert_error(status, &body, 400, "bad_request");
        assert!(msg.contains("bogus_field"), "unknown field: {msg}");

        let (status, body) = dlmd
            .api("POST", "/v1/jobs", Some(&json!({"dest": "x"})))
            .await;
        assert_error(status, &body, 400, "bad_request");
        // A local file the daemon may not read, an unknown setting, an upload that is not base64.
        let (status, body) = dlmd
            .api("POST", "/v1/jobs", Some(&json!({"url": "/etc/passwd"})))
            .await;
        let msg = assert_error(status, &body, 400, "bad_request");
        assert!(msg.contains("download directory"), "local path: {msg}");
        let (status, body) = dlmd
            .api(
                "POST",
                "/v1/jobs",
                Some(&json!({"url": url, "options": {"bittorrent.max_pears": "1"}})),
            )
            .await;
        let msg = assert_error(status, &body, 400, "bad_request");
        assert!(
            msg.contains("bittorrent.max_pears"),
            "unknown setting: {msg}"
        );
        // A job may not move the daemon's shared DHT node or its state file.
        let (status, body) = dlmd
            .api(
                "POST",
                "/v1/jobs",
                Some(&json!({"url": url, "options": {"bittorrent.dht_state_file": "/tmp/x"}})),
            )
            .await;
        let msg = assert_error(status, &body, 400, "bad_request");
        assert!(msg.contains("daemon setting"), "process setting: {msg}");
        // Nor open ports on the host's NAT gateway: that is the daemon's choice (dlmd --no-port-mapping).
        let (status, body) = dlmd
            .api(
                "POST",
                "/v1/jobs",
                Some(&json!({"url": url, "options": {"bittorrent.port_mapping": "true"}})),
            )
            .await;
        let msg = assert_error(status, &body, 400, "bad_request");
        assert!(msg.contains("daemon setting"), "process setting: {msg}");
        let (status, body) = dlmd
            .api(
                "POST",
                "/v1/jobs",
                Some(&json!({"upload": {"name": "x.torrent", "base64": "***"}})),
            )
            .await;
        let msg = assert_error(status, &body, 400, "bad_request");
        assert!(msg.contains("base64"), "bad upload: {msg}");
        let (status, body) = dlmd.api("POST", "/v1/jobs", Some(&json!("text"))).await;
        assert_error(status, &body, 400, "bad_request");

        // Just over 16 MiB for a new job (room for an uploaded .torrent), 64 KiB elsewhere.
        let big = json!({"url": format!("http://127.0.0.1:9/{}", "a".repeat(16 << 20))});
        let (status, body) = dlmd.api("POST", "/v1/jobs", Some(&big)).await;
        assert_error(status, &body, 413, "payload_too_large");
        let big_patch = json!({"max_active": 2, "pad": "b".repeat(65 << 10)});
        let (status, body) = dlmd.api("PATCH", "/v1/settings", Some(&big_patch)).await;
        assert_error(status, &body, 413, "payload_too_large");

        let (status, body) = dlmd.api("GET", "/v1/jobs/abc", None).await;
        assert_error(status, &body, 400, "bad_request");
        let (status, body) = dlmd.api("POST", "/v1/jobs/abc/pause", None).await;
        assert_error(status, &body, 400, "bad_request");
        for (method, path) in [
            ("GET", "/v1/jobs/999999"),
            ("DELETE", "/v1/jobs/999999"),
            ("POST", "/v1/jobs/999999/pause"),
            ("POST", "/v1/jobs/999999/resume"),
        ] {
            let (status, body) = dlmd.api(method, path, None).await;
            assert_error(status, &body, 404, "not_found");
        }
        let (status, body) = dlmd
            .api("PATCH", "/v1/jobs/999999", Some(&json!({"priority": 1})))
            .await;
        assert_error(status, &body, 404, "not_found");

        // An unknown route is a JSON 404, with or without the token.
        let (status, body) = dlmd.api("GET", "/v1/nope", None).await;
        assert_error(status, &body, 404, "not_found");
        let (status, body) = raw(&dlmd, "GET", "/nope/at/all", &[], None).await;
        assert_error(status, &body, 404, "not_found");

        let (status, body) = dlmd
            .api("POST", "/v1/jobs", Some(&json!({"url": "gopher://x/y"})))
            .await;
        let msg = assert_error(status, &body, 400, "bad_request");
        assert!(
            msg.contains("registered schemes") && msg.contains("http"),
            "names the registered schemes: {msg}"
        );
        eprintln!("gopher: {msg}");
        let (status, body) = dlmd
            .api("POST", "/v1/jobs", Some(&json!({"url": "not a url"})))
            .await;
        assert_error(status, &body, 400, "bad_request");
        let (status, body) = dlmd
            .api(
                "POST",
                "/v1/jobs",
                Some(&json!({"url": url, "mirrors": ["gopher://x/y"]})),
            )
            .await;
        assert_error(status, &body, 400, "bad_request");
        for connections in [0, 65] {
            let (status, body) = dlmd
                .api(
                    "POST",
                    "/v1/jobs",
                    Some(&json!({"url": url, "connections": connections})),
                )
                .await;
            assert_error(status, &body, 400, "bad_request");
        }
        let (status, body) = dlmd
            .api(
                "POST",
                "/v1/jobs",
                Some(&json!({"url": url, "checksum": "sha-256=xyz"})),
            )
            .await;
        assert_error(status, &body, 400, "bad_request");
        let (status, body) = dlmd.api("GET", "/v1/jobs?state=bogus", None).await;
        assert_error(status, &body, 400, "bad_request");
        for settings in [json!({"max_active": 0}), json!({"max_per_host": 1001})] {
            let (status, body) = dlmd.api("PATCH", "/v1/settings", Some(&settings)).await;
            assert_error(status, &body, 400, "bad_request");
        }

        assert!(
            dlmd.jobs(None).await.is_empty(),
            "a bad request queued a job"
        );
    })
    .await;
}

/// Case c: `/v1/openapi.json` is an OpenAPI document listing the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_the_api() {
    let dlmd = Dlmd::start(DlmdOptions::default());
    bounded(TEST_TIMEOUT, async {
        let (status, doc) = raw(&dlmd, "GET", "/v1/openapi.json", &[], None).await;
        assert_eq!(status, 200);
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
            "{}",
            doc["openapi"]
        );
        let paths = doc["paths"].as_object().expect("paths");
        for p in [
            "/v1/jobs",
            "/v1/jobs/{id}",
            "/v1/jobs/{id}/pause",
            "/v1/jobs/{id}/resume",
            "/v1/settings",
            "/v1/events",
        ] {
            assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
        }
        assert!(doc["paths"]["/v1/jobs"]["post"].is_object());
        assert!(doc["paths"]["/v1/jobs"]["get"].is_object());
        assert!(doc["paths"]["/v1/settings"]["patch"].is_object());
        assert!(
            doc["components"]["securitySchemes"]["bearer"].is_object(),
            "{}",
            doc["components"]
        );
        assert!(doc["components"]["schemas"]["Job"].is_object());
    })
    .await;
}

/// A TCP listener on 127.0.0.1 that accepts connections, counts them and closes them at once: the "proxy"
/// every URL dlmd fetches in the schemathesis test goes to, so none reaches anything else.
struct ProxySink {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl ProxySink {
    fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        // Ends with the test process.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if conn.is_ok() {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Self { port, accepted }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Case d: schemathesis generates requests from `/v1/openapi.json` (valid and invalid ones); no answer may be
/// a 5xx (or a dropped connection). dlmd runs with every proxy variable pointing at a sink on 127.0.0.1, so the
/// URLs it is made to download reach nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors() {
    let Some(schemathesis) = which("schemathesis") else {
        missing_peer::<()>("schemathesis");
        return;
    };
    let sink = ProxySink::start();
    let env = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .iter()
    .map(|k| ((*k).to_owned(), sink.url()))
    .collect();
    let dlmd = Dlmd::start(DlmdOptions {
        env,
        ..DlmdOptions::default()
    });
    bounded(SCHEMATHESIS_TIMEOUT, async {
        // The proxy is in effect: a job for a name nobody could resolve goes to the sink.
        let job = dlmd
            .add_job(&json!({"url": "http://dlm-tests.invalid/x.bin"}))
            .await;
        let id = job["id"].as_i64().unwrap();
        for _ in 0..600 {
            if sink.accepted() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            sink.accepted() > 0,
            "dlmd did not use the proxy: {}",
            dlmd.job(id).await
        );

        let cwd = tempfile::tempdir().unwrap();
        let auth = format!("Authorization: Bearer {}", dlmd.token());
        let mut cmd = Command::new(schemathesis);
        cmd.arg("run")
            .arg(dlmd.url("/v1/openapi.json"))
            .args(["--url", &dlmd.url("")])
            .args(["--header", &auth])
            .args(["--checks", "not_a_server_error"])
            .args(["--max-examples", "20"])
            // An event stream never ends by itself.
            .args(["--exclude-path", "/v1/events"])
            .args(["--request-timeout", "10"])
            .args(["--workers", "1"])
            .args(["--generation-database", "none"])
            .arg("--no-color")
            .current_dir(cwd.path())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for var in dlm_tests::cli::PROXY_ENV_VARS {
            cmd.env_remove(var);
        }
        let out = cmd.output().await.expect("run schemathesis");
        let stdout = text(&out.stdout);
        let tail: Vec<&str> = stdout.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        eprintln!(
            "schemathesis ({}):\n{}\n{}",
            out.status,
            tail.join("\n"),
            text(&out.stderr)
        );
        assert!(
            out.status.success(),
            "schemathesis found failures ({}):\n{stdout}\n{}",
            out.status,
            text(&out.stderr)
        );
        // dlmd is still up and answering.
        let health = dlmd
            .request_with("GET", "/healthz", &[], None)
            .await
            .unwrap();
        assert_eq!(health.status, 200);
        eprintln!(
            "after schemathesis: {} jobs; the proxy sink saw {} connections",
            dlmd.jobs(None).await.len(),
            sink.accepted()
        );
    })
    .await;
}

/// `dlm remote ARGS... --server URL` with `DLM_TOKEN=token`.
async fn remote(dlmd: &Dlmd, token: &str, args: &[&str]) -> Output {
    let mut cmd = Command::from(dlm_command());
    cmd.arg("remote")
        .args(args)
        .args(["--server", &dlmd.url("")])
        .env("DLM_TOKEN", token)
        .kill_on_drop(true);
    tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .expect("dlm remote did not exit")
        .expect("run dlm remote")
}

fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Case e: `dlm remote add | ls | pause | rm` drive the daemon; a wrong token is exit 1 and `unauthorized`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlm_remote_adds_lists_pauses_and_removes() {
    let Some(nginx) = Nginx::start(NginxOptions {
        slow_rate: "1m".to_owned(),
    }) else {
        return;
    };
    write_random_file(nginx.www(), "r.bin", 8 * MIB, 700).unwrap();
    let url = nginx.http_url("/slow/r.bin");
    let dlmd = Dlmd::start(DlmdOptions::default());
    let token = dlmd.token().to_owned();
    bounded(TEST_TIMEOUT, async {
        let out = remote(&dlmd, &token, &["add", &url, "-c", "1", "--priority", "3"]).await;
        let stdout = assert_ok(&out);
        eprintln!("dlm remote add: {stdout}");
        let line = stdout.lines().next().expect("a line for the job");
        let id: i64 = line
            .split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no job id first: {line:?}"));
        assert!(
            line.contains("queued") || line.contains("running"),
            "{line:?}"
        );
        let job = dlmd.job(id).await;
        assert_eq!(job["url"], url.as_str(), "{job}");
        assert_eq!(job["priority"], 3, "{job}");
        assert_eq!(job["connections"], 1, "{job}");

        let out = remote(&dlmd, &token, &["ls"]).await;
        let stdout = assert_ok(&out);
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(&id.to_string())),
            "ls lists job {id}: {stdout:?}"
        );
        let out = remote(&dlmd, &token, &["ls", "--json"]).await;
        let stdout = assert_ok(&out);
        let listed: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
            .collect();
        assert_eq!(listed.len(), 1, "{stdout}");
        assert_eq!(listed[0]["id"], id);

        dlmd.wait_for_job(id, JOB_TIMEOUT, |j| j["state"] == "running")
            .await;
        let out = remote(&dlmd, &token, &["pause", &id.to_string()]).await;
        let stdout = assert_ok(&out);
        assert!(
            stdout.trim_start().starts_with(&id.to_string()),
            "{stdout:?}"
        );
        dlmd.wait_for_job(id, JOB_TIMEOUT, |j| j["state"] == "paused")
            .await;
        let out = remote(&dlmd, &token, &["ls", "--state", "paused"]).await;
        let stdout = assert_ok(&out);
        assert!(stdout.contains("paused"), "{stdout:?}");

        let out = remote(&dlmd, &token, &["rm", &id.to_string(), "--delete-file"]).await;
        let stdout = assert_ok(&out);
        assert!(
            stdout.contains("cancelled"),
            "a paused job is cancelled at once: {stdout:?}"
        );
        let job = dlmd.job(id).await;
        assert_eq!(job["state"], "cancelled", "{job}");
        let left: Vec<_> = std::fs::read_dir(dlmd.download_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "rm --delete-file left {left:?}");

        // A wrong token: exit 1 and the API's code on stderr; nothing queued.
        let out = remote(&dlmd, "wrong-token", &["add", &url]).await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("unauthorized"),
            "{}",
            text(&out.stderr)
        );
        let out = remote(&dlmd, "wrong-token", &["ls"]).await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("unauthorized"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(dlmd.jobs(None).await.len(), 1);

        // An unknown job: exit 1, not_found.
        let out = remote(&dlmd, &token, &["pause", "999999"]).await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("not_found"),
            "{}",
            text(&out.stderr)
        );
    })
    .await;
}

/// The daemon keeps its state to its user and its jobs inside the download
/// directory: the state dir is 0700 and `jobs.db` 0600; a `dest` with a
/// hidden component (`.ssh/…`) is refused; a symbolic link planted in the
/// download directory does not lead a job out of it; a token shorter than
/// 16 bytes is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_private_and_jobs_stay_inside_the_download_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dlmd = Dlmd::start(DlmdOptions::default());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dlmd.state_dir()), 0o700);
    assert_eq!(mode(&dlmd.state_dir().join("jobs.db")), 0o600);
    bounded(TEST_TIMEOUT, async {
        let (status, body) = dlmd
            .api(
                "POST",
                "/v1/jobs",
                Some(&json!({"url": "http://127.0.0.1:9/x", "dest": ".ssh/authorized_keys"})),
            )
            .await;
        let msg = assert_error(status, &body, 400, "invalid_dest");
        assert!(msg.contains("hidden"), "{msg}");

        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dlmd.download_dir().join("escape")).unwrap();
        let job = dlmd
            .add_job(&json!({"url": "http://127.0.0.1:9/x.bin", "dest": "escape/x.bin"}))
            .await;
        let failed = dlmd
            .wait_for_job(job["id"].as_i64().unwrap(), JOB_TIMEOUT, |j| {
                j["state"] == "failed"
            })
            .await;
        assert!(
            failed["error"].as_str().unwrap().contains("symbolic link"),
            "{failed}"
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let out = bounded(
        TEST_TIMEOUT,
        Command::new(dlm_tests::dlmd_binary())
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(dir.path().join("state"))
            .arg("--download-dir")
            .arg(dir.path().join("dl"))
            .env("DLM_TOKEN", "short")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("shorter than 16"),
        "{}",
        text(&out.stderr)
    );
}
