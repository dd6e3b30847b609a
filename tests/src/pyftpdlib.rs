//! An FTP server with faults, on 127.0.0.1: pyftpdlib running
//! `tests/peers/ftp_faults.py`, anonymous and read-only, rooted in a temp
//! dir. It can drop the first data connection of each file midway
//! ([`PyFtpdOptions::drop_data_after`]) and list hostile names
//! ([`PyFtpdOptions::evil_listing`]); see the script's docstring.
//!
//! The script binds a free port itself and prints `READY <port>`, so there
//! is no port race to retry. pyftpdlib comes from PyPI (`scripts/test`
//! installs it); without it `start` skips.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::peer::{ChildGuard, missing_peer, which};

/// How long the script may take to print `READY` (bounds a hang only).
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The fault server's script.
pub const FTP_FAULTS_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/ftp_faults.py");

/// Faults for [`PyFtpd::start`]; the default serves files faithfully.
#[derive(Clone, Copy, Debug, Default)]
pub struct PyFtpdOptions {
    /// Close the first `RETR` data connection of each file after this many
    /// bytes (the control connection then gets `426`); later `RETR`s of the
    /// file are served whole.
    pub drop_data_after: Option<u64>,
    /// `MLSD`, `LIST` and `NLST` of the root also list `../evil`,
    /// `/abs/evil` and `a/../../evil`; `SIZE` and `RETR` of any path ending
    /// in `evil` answer with a few bytes.
    pub evil_listing: bool,
    /// `EPSV` is an unknown command (500) and `PASV` replies announce this
    /// address instead of 127.0.0.1: an old server behind NAT.
    pub no_epsv_pasv_address: Option<&'static str>,
}

/// A running fault server, stopped by PID on drop.
#[derive(Debug)]
pub struct PyFtpd {
    // Field order is drop order: stop the server before removing its dir.
    child: ChildGuard,
    port: u16,
    dir: TempDir,
}

impl PyFtpd {
    /// Starts the server with `options` and waits until it listens. Returns
    /// `None` (after `skipping: …`) when python3 or its pyftpdlib module is
    /// missing.
    ///
    /// # Panics
    /// When pyftpdlib is missing under `DLM_REQUIRE_PEERS=1`, or the server
    /// does not start.
    pub fn start(options: PyFtpdOptions) -> Option<Self> {
        let Some(python) = which("python3") else {
            return missing_peer("python3");
        };
        let has_module = Command::new(&python)
            .args(["-c", "import pyftpdlib"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_module {
            return missing_peer("pyftpdlib (python3 -m pip install pyftpdlib)");
        }
        let dir = tempfile::Builder::new()
            .prefix("dlm-pyftpd-")
            .tempdir()
            .expect("temp dir");
        fs::create_dir(dir.path().join("root")).expect("create root");
        let stdout_path = dir.path().join("stdout");
        let log_path = dir.path().join("server.log");
        let mut command = Command::new(&python);
        command
            .arg("-u")
            .arg(FTP_FAULTS_SCRIPT)
            .arg(dir.path().join("root"));
        if let Some(bytes) = options.drop_data_after {
            command.arg("--drop-data-after").arg(bytes.to_string());
        }
        if options.evil_listing {
            command.arg("--evil-listing");
        }
        if let Some(addr) = options.no_epsv_pasv_address {
            command.args(["--no-epsv", "--pasv-address", addr]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).expect("create stdout file"))
            .stderr(fs::File::create(&log_path).expect("create log"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", python.display()));
        let mut child = ChildGuard::new("ftp_faults.py", child);
        let port = child
            .wait_for_line(&stdout_path, START_TIMEOUT, ready_port)
            .unwrap_or_else(|e| {
                panic!(
                    "ftp_faults.py did not start: {e}\n--- log ---\n{}",
                    fs::read_to_string(&log_path).unwrap_or_default()
                )
            });
        Some(Self { child, port, dir })
    }

    /// The served directory: put fixtures here.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `ftp://127.0.0.1:PORT/PATH` (anonymous).
    pub fn url(&self, path: &str) -> String {
        format!(
            "ftp://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// The control port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Its log so far: one line per command and reply, each transfer, and a
    /// `fault: …` line per dropped data connection.
    ///
    /// # Errors
    /// If the log cannot be read.
    pub fn log(&self) -> io::Result<String> {
        fs::read_to_string(self.dir.path().join("server.log"))
    }
}

/// The port in a `READY <port>` line.
fn ready_port(line: &str) -> Option<u16> {
    line.strip_prefix("READY ")?.trim().parse().ok()
}
