//! Python's `http.server` on 127.0.0.1: a real server that ignores `Range` (200 with the full body, no
//! `Accept-Ranges`), sends `Content-Length` and `Last-Modified` but no `ETag`, and speaks HTTP/1.0.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::peer::{ChildGuard, free_port, missing_peer, which};

/// How many times a start is retried when the chosen port was taken meanwhile.
const START_ATTEMPTS: usize = 5;

/// How long Python may take to listen (bounds a hang only).
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `python3 -m http.server`, stopped with SIGTERM on drop.
#[derive(Debug)]
pub struct PythonHttp {
    // Field order is drop order: stop the server before removing its log dir.
    child: ChildGuard,
    port: u16,
    root: PathBuf,
    log_dir: TempDir,
}

impl PythonHttp {
    /// Serves `dir` (which the caller keeps alive) on a free port of 127.0.0.1 and waits until it accepts
    /// connections. Its request log goes to a file in its own temp dir ([`PythonHttp::log`]).
    ///
    /// Returns `None` after printing `skipping: python3 not installed` if `python3` is not in `PATH`.
    ///
    /// # Panics
    ///
    /// If python3 is missing under `DLM_REQUIRE_PEERS=1`, or if the server fails to start.
    pub fn start(dir: &Path) -> Option<Self> {
        let Some(python) = which("python3") else {
            return missing_peer("python3");
        };
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&python, dir) {
                Ok(server) => return Some(server),
                Err(log) if log.contains("Address already in use") => last = log,
                Err(log) => panic!("python3 -m http.server failed to start: {log}"),
            }
        }
        panic!(
            "python3 -m http.server: its port was taken {START_ATTEMPTS} times; last log:\n{last}"
        );
    }

    fn try_start(python: &Path, dir: &Path) -> Result<Self, String> {
        let log_dir = tempfile::Builder::new()
            .prefix("dlm-python-http-")
            .tempdir()
            .map_err(|e| format!("create temp dir: {e}"))?;
        let log_path = log_dir.path().join("server.log");
        let log = fs::File::create(&log_path).map_err(|e| format!("create log: {e}"))?;
        let port = free_port();
        let child = Command::new(python)
            .args(["-u", "-m", "http.server"])
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| format!("dup log: {e}"))?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", python.display()))?;
        let mut child = ChildGuard::new("python3 -m http.server", child);
        if let Err(e) = child.wait_for_port(port, START_TIMEOUT) {
            child.stop();
            return Err(format!(
                "{e}\n--- log ---\n{}",
                fs::read_to_string(&log_path).unwrap_or_default()
            ));
        }
        Ok(Self {
            child,
            port,
            root: dir.to_owned(),
            log_dir,
        })
    }

    /// `http://127.0.0.1:PORT` followed by `path` (a leading `/` is added if missing).
    pub fn url(&self, path: &str) -> String {
        let sep = if path.starts_with('/') { "" } else { "/" };
        format!("http://127.0.0.1:{}{sep}{path}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The directory it serves.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Its log so far (one line per request, plus any traceback).
    ///
    /// # Errors
    ///
    /// If the log cannot be read.
    pub fn log(&self) -> io::Result<String> {
        fs::read_to_string(self.log_dir.path().join("server.log"))
    }
}
