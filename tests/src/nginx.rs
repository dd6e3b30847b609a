//! A real nginx on 127.0.0.1 serving HTTP/1.1 and HTTPS (h2 and HTTP/1.1) from a temp dir.
//!
//! Locations (every file location serves the same `www()` dir):
//!
//! | path | behaviour |
//! |------|-----------|
//! | `/NAME` | static file: `ETag`, `Last-Modified`, `Accept-Ranges: bytes`, 206 for a Range |
//! | `/slow/NAME` | as `/NAME`, each connection limited to [`NginxOptions::slow_rate`] |
//! | `/norange/NAME` | Range ignored: 200 with the full body |
//! | `/chunked/NAME` | no `Content-Length`, no validators, Range ignored: `Transfer-Encoding: chunked` over HTTP/1.1 |
//! | `/private/NAME` | Basic auth, user [`Nginx::USER`], password [`Nginx::PASSWORD`]; 401 otherwise |
//! | `/status/404`, `/status/500`, `/status/503` | that status (503 with `Retry-After: 1`) |
//! | `/redirect/N/NAME` | 302 to `/redirect/(N-1)/NAME`, ..., `/redirect/1/NAME` 302 to `/NAME`; N in 1..=[`Nginx::MAX_REDIRECTS`] |
//! | `/xredirect/NAME` | 302 to `https://127.0.0.1:HTTPS_PORT/NAME` |
//! | `/downgrade/NAME` | 302 to `http://127.0.0.1:HTTP_PORT/NAME` |
//! | `/loop/NAME` | 302 to itself |
//! | `/nginx_status` | nginx's `stub_status` counters (not logged); see [`Nginx::active_connections`] |
//!
//! The access log records each request when it ends ([`crate::access_log::LOG_FORMAT`]); see
//! [`Nginx::bytes_sent`].

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::access_log::{AccessLogEntry, LOG_FORMAT, read_access_log};
use crate::peer::{ChildGuard, free_ports, missing_peer, which};
use crate::tls::TlsFiles;

const CONF_TEMPLATE: &str = include_str!("nginx.conf.in");

/// How many times a start is retried when a chosen port was taken meanwhile.
const START_ATTEMPTS: usize = 5;

/// How long nginx may take to listen (bounds a hang only).
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// One request's credentials as nginx logged them ([`Nginx::credentials_log`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsLogEntry {
    /// `http` or `https`.
    pub scheme: String,
    /// The port the request came in on (tells the two origins apart).
    pub port: u16,
    /// The request target.
    pub uri: String,
    /// The `Authorization` header, when sent.
    pub authorization: Option<String>,
    /// The `Cookie` header, when sent.
    pub cookie: Option<String>,
}

/// Settings for [`Nginx::start`].
#[derive(Clone, Debug)]
pub struct NginxOptions {
    /// nginx `limit_rate` for `/slow/`, per connection, in nginx's syntax (`512k`, `1m`; bytes per second).
    ///
    /// # Defaults
    ///
    /// `1m`.
    pub slow_rate: String,
}

impl Default for NginxOptions {
    fn default() -> Self {
        Self {
            slow_rate: "1m".to_owned(),
        }
    }
}

/// A running nginx master process (and its worker), stopped with SIGTERM on drop; its temp dir is removed after.
#[derive(Debug)]
pub struct Nginx {
    // Field order is drop order: stop nginx before removing its dir.
    child: ChildGuard,
    http_port: u16,
    https_port: u16,
    tls: TlsFiles,
    www: PathBuf,
    dir: TempDir,
}

/// Why one start attempt failed.
enum StartError {
    /// A chosen port was taken before nginx bound it: try again with new ports.
    PortTaken(String),
    /// Anything else: report it.
    Failed(String),
}

impl Nginx {
    /// The Basic-auth user for `/private/`.
    pub const USER: &'static str = "dlm";
    /// The Basic-auth password for `/private/`.
    pub const PASSWORD: &'static str = "secret";
    /// The longest redirect chain `/redirect/N/NAME` serves.
    pub const MAX_REDIRECTS: u32 = 20;

    /// Starts nginx on two free ports of 127.0.0.1 (HTTP, and HTTPS with h2) in a new temp dir, with a fresh CA
    /// and server certificate, and waits until both ports accept connections.
    ///
    /// Returns `None` after printing `skipping: nginx not installed` if nginx is not installed (looked up in
    /// `PATH` and `/usr/sbin`).
    ///
    /// # Panics
    ///
    /// If nginx is missing under `DLM_REQUIRE_PEERS=1`, or if it is installed but fails to start (the message
    /// carries its error log).
    pub fn start(opts: NginxOptions) -> Option<Self> {
        let Some(program) = which("nginx") else {
            return missing_peer("nginx");
        };
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&program, &opts) {
                Ok(nginx) => return Some(nginx),
                Err(StartError::PortTaken(log)) => last = log,
                Err(StartError::Failed(msg)) => panic!("nginx failed to start: {msg}"),
            }
        }
        panic!(
            "nginx failed to start: its ports were taken {START_ATTEMPTS} times; last error log:\n{last}"
        );
    }

    fn try_start(program: &Path, opts: &NginxOptions) -> Result<Self, StartError> {
        let failed = |what: &str, e: io::Error| StartError::Failed(format!("{what}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("dlm-nginx-")
            .tempdir()
            .map_err(|e| failed("create temp dir", e))?;
        let root = dir.path();
        for sub in ["www", "logs", "tmp", "tls"] {
            fs::create_dir(root.join(sub)).map_err(|e| failed("create dir", e))?;
        }
        // Workers run as nobody when nginx is started by root; a 0700 temp dir would give 403s.
        for sub in ["", "www", "tmp"] {
            fs::set_permissions(root.join(sub), fs::Permissions::from_mode(0o755))
                .map_err(|e| failed("chmod", e))?;
        }
        let tls =
            TlsFiles::generate(&root.join("tls")).map_err(|e| failed("write certificates", e))?;
        // nginx's own crypt() accepts the {PLAIN} scheme, so no htpasswd tool is needed.
        fs::write(
            root.join("htpasswd"),
            format!("{}:{{PLAIN}}{}\n", Self::USER, Self::PASSWORD),
        )
        .map_err(|e| failed("write htpasswd", e))?;

        let [http_port, https_port] = free_ports::<2>();
        let conf = render_conf(root, http_port, https_port, &opts.slow_rate);
        let conf_path = root.join("nginx.conf");
        fs::write(&conf_path, conf).map_err(|e| failed("write nginx.conf", e))?;

        let error_log = root.join("logs/error.log");
        let stderr = fs::File::create(root.join("logs/stderr.log"))
            .map_err(|e| failed("create stderr.log", e))?;
        let child = Command::new(program)
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(root)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| failed("spawn nginx", e))?;
        let mut child = ChildGuard::new("nginx", child);

        // nginx writes its pid file only after it has bound every port; a port that answers without it may
        // belong to another process.
        let ready = wait_for_file(&mut child, &root.join("nginx.pid"), START_TIMEOUT)
            .and_then(|()| child.wait_for_port(http_port, START_TIMEOUT))
            .and_then(|()| child.wait_for_port(https_port, START_TIMEOUT));
        if let Err(e) = ready {
            child.stop();
            let logs = format!(
                "{e}\n--- error.log ---\n{}\n--- stderr ---\n{}",
                fs::read_to_string(&error_log).unwrap_or_default(),
                fs::read_to_string(root.join("logs/stderr.log")).unwrap_or_default()
            );
            return Err(if logs.contains("Address already in use") {
                StartError::PortTaken(logs)
            } else {
                StartError::Failed(logs)
            });
        }
        Ok(Self {
            child,
            http_port,
            https_port,
            tls,
            www: root.join("www"),
            dir,
        })
    }

    /// `http://127.0.0.1:PORT` followed by `path` (a leading `/` is added if missing).
    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.http_port, slash(path))
    }

    /// `https://127.0.0.1:PORT` followed by `path` (a leading `/` is added if missing). The certificate also
    /// names `localhost`, but nginx listens on 127.0.0.1 only.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{}", self.https_port, slash(path))
    }

    /// The plain-HTTP port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The HTTPS port (h2 and HTTP/1.1 by ALPN).
    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// `127.0.0.1:http_port`, e.g. as the upstream of a [`CutProxy`](crate::CutProxy).
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.http_port))
    }

    /// `127.0.0.1:https_port`.
    pub fn https_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.https_port))
    }

    /// The CA certificate (PEM) that signed the server certificate: what an HTTPS client should trust.
    pub fn ca_pem(&self) -> &Path {
        self.tls.ca_pem()
    }

    /// The certificate files.
    pub fn tls(&self) -> &TlsFiles {
        &self.tls
    }

    /// The directory every file location serves: put test files here (they must be world-readable; files a test
    /// creates under the usual umask 022 are).
    pub fn www(&self) -> &Path {
        &self.www
    }

    /// nginx's temp dir (config, logs, certificates, `www/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The master process's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The access log's path.
    pub fn access_log_path(&self) -> PathBuf {
        self.dir.path().join("logs/access.log")
    }

    /// Every request logged so far. nginx logs a request when its response has ended (or the client went away),
    /// which may be a moment after the client saw the last byte: see [`Nginx::wait_for_requests`].
    pub fn access_log(&self) -> Vec<AccessLogEntry> {
        read_access_log(&self.access_log_path()).unwrap_or_default()
    }

    /// Each logged request's scheme, server port, URI, `Authorization` and
    /// `Cookie` values (`"-"` when absent), from `logs/credentials.log`.
    pub fn credentials_log(&self) -> Vec<CredentialsLogEntry> {
        let text =
            fs::read_to_string(self.dir.path().join("logs/credentials.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let (head, rest) = l.split_once(" \"")?;
                let mut h = head.split(' ');
                let (scheme, port, uri) = (h.next()?, h.next()?, h.next()?);
                let (auth, cookie) = rest.strip_suffix('"')?.split_once("\" \"")?;
                Some(CredentialsLogEntry {
                    scheme: scheme.to_string(),
                    port: port.parse().ok()?,
                    uri: uri.to_string(),
                    authorization: (auth != "-").then(|| auth.to_string()),
                    cookie: (cookie != "-").then(|| cookie.to_string()),
                })
            })
            .collect()
    }

    /// The logged requests whose URI starts with `prefix`.
    pub fn requests(&self, prefix: &str) -> Vec<AccessLogEntry> {
        let mut entries = self.access_log();
        entries.retain(|e| e.uri.starts_with(prefix));
        entries
    }

    /// The sum of `$bytes_sent` (headers included) over the logged requests whose URI starts with `prefix`.
    pub fn bytes_sent(&self, prefix: &str) -> u64 {
        self.requests(prefix).iter().map(|e| e.bytes_sent).sum()
    }

    /// Waits until at least `count` requests whose URI starts with `prefix` are logged, polling every 20 ms, and
    /// returns them. Returns what is logged if `timeout` passes first (the timeout bounds a hang only).
    pub fn wait_for_requests(
        &self,
        prefix: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<AccessLogEntry> {
        let deadline = Instant::now() + timeout;
        loop {
            let entries = self.requests(prefix);
            if entries.len() >= count || Instant::now() >= deadline {
                return entries;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Client connections nginx has open, not counting the one this call uses to ask (from `stub_status`).
    ///
    /// nginx logs a request when it ends, so once this is 0 every request so far is in the access log: after
    /// a client was killed mid-response, nginx notices on its next write (within about a second under
    /// `limit_rate`), closes the connection and logs the request.
    ///
    /// # Errors
    ///
    /// If `/nginx_status` cannot be fetched or parsed.
    pub fn active_connections(&self) -> io::Result<u64> {
        let mut stream = TcpStream::connect(self.http_addr())?;
        // Bounds a hang only.
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(
            b"GET /nginx_status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw)?;
        raw.lines()
            .find_map(|l| l.strip_prefix("Active connections:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .map(|n| n.saturating_sub(1))
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("stub_status: {raw:?}"))
            })
    }

    /// Waits until nginx has no client connection open ([`Nginx::active_connections`] is 0), polling every
    /// 50 ms, so that every request so far is logged. Returns `false` if `timeout` passes first (the timeout
    /// bounds a hang only).
    pub fn wait_until_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.active_connections().is_ok_and(|n| n == 0) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.child.stop();
        if thread::panicking() {
            eprintln!(
                "--- nginx error log ({}) ---\n{}",
                self.dir.path().display(),
                self.error_log()
            );
        }
    }
}

/// Waits until `path` exists while `child` runs.
fn wait_for_file(child: &mut ChildGuard, path: &Path, timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("nginx exited ({status}) before writing {}", path.display()),
            ));
        }
        if path.exists() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("nginx did not write {} within {timeout:?}", path.display()),
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

fn render_conf(dir: &Path, http_port: u16, https_port: u16, slow_rate: &str) -> String {
    let mut redirects = String::new();
    for n in 1..=Nginx::MAX_REDIRECTS {
        let target = if n == 1 {
            "/$1".to_owned()
        } else {
            format!("/redirect/{}/$1", n - 1)
        };
        let _ = writeln!(
            redirects,
            "        location ~ ^/redirect/{n}/(.*)$ {{\n            return 302 {target};\n        }}"
        );
    }
    CONF_TEMPLATE
        .replace("@DIR@", &dir.display().to_string())
        .replace("@HTTP_PORT@", &http_port.to_string())
        .replace("@HTTPS_PORT@", &https_port.to_string())
        .replace("@SLOW_RATE@", slow_rate)
        .replace("@LOG_FORMAT@", LOG_FORMAT)
        .replace("@REDIRECTS@", &redirects)
}
