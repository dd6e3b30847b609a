//! aria2c 1.36 as a BitTorrent leecher or seeder.
//!
//! Common flags: `--enable-dht=false` (unless [`Aria2Options::with_dht`]), `--bt-enable-lpd=false`,
//! `--enable-peer-exchange=false`, `--disable-ipv6=true`, `--file-allocation=none`, `--listen-port=` a free
//! port, and a log at info level in the temp dir ([`Aria2Leecher::log`]).
//!
//! aria2c cannot be told to connect to one peer. To point it at exactly the peers a test chooses, give it only
//! a [`super::StaticTracker`]: [`Aria2Options::only_tracker`] (`--bt-exclude-tracker='*' --bt-tracker=URL`).
//! It uses UDP trackers only with its DHT on (`udp is not supported yet` otherwise), so
//! [`Aria2Options::with_dht`] turns DHT on with no entry point: it then contacts only the trackers.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{POLL_INTERVAL, TorrentFixture};
use crate::peer::{ChildGuard, free_ports, missing_peer, which};

/// How long a seeder may take to listen (bounds a hang only).
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Options shared by [`Aria2Leecher`] and [`Aria2Seeder`].
///
/// # Defaults
///
/// The torrent's own trackers, DHT off.
#[derive(Clone, Debug, Default)]
pub struct Aria2Options {
    only_tracker: Option<String>,
    dht: bool,
}

impl Aria2Options {
    /// Ignores the torrent's trackers and uses only `announce_url` (`--bt-exclude-tracker='*'
    /// --bt-tracker=URL`).
    pub fn only_tracker(mut self, announce_url: &str) -> Self {
        self.only_tracker = Some(announce_url.to_owned());
        self
    }

    /// Turns aria2's DHT on (`--enable-dht=true` on a free port, a DHT file in the temp dir, no entry point):
    /// needed for UDP trackers.
    pub fn with_dht(mut self, dht: bool) -> Self {
        self.dht = dht;
        self
    }
}

/// A running aria2c, and its dir. Shared by the leecher and the seeder.
#[derive(Debug)]
struct Aria2Process {
    // Field order is drop order: stop aria2c before removing its dir.
    child: ChildGuard,
    listen_port: u16,
    dir: TempDir,
}

impl Aria2Process {
    fn spawn(torrent: &Path, data_dir: &Path, options: &Aria2Options, seed: bool) -> Option<Self> {
        let Some(program) = which("aria2c") else {
            return missing_peer("aria2c (apt-get install aria2)");
        };
        let dir = tempfile::Builder::new()
            .prefix("dlm-aria2-")
            .tempdir()
            .expect("temp dir");
        let [listen_port, dht_port] = free_ports::<2>();
        let mut command = Command::new(program);
        command
            .arg(format!("--dir={}", data_dir.display()))
            .arg(format!("--listen-port={listen_port}"))
            .arg(format!("--log={}", dir.path().join("aria2.log").display()))
            .args([
                "--log-level=info",
                "--console-log-level=warn",
                "--summary-interval=0",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--disable-ipv6=true",
                "--file-allocation=none",
                "--bt-save-metadata=false",
                "--auto-save-interval=0",
            ]);
        if options.dht {
            command
                .arg("--enable-dht=true")
                .arg(format!("--dht-listen-port={dht_port}"))
                .arg(format!(
                    "--dht-file-path={}",
                    dir.path().join("dht.dat").display()
                ));
        } else {
            command.arg("--enable-dht=false");
        }
        if let Some(url) = &options.only_tracker {
            command
                .arg("--bt-exclude-tracker=*")
                .arg(format!("--bt-tracker={url}"));
        }
        if seed {
            // Seeds until stopped; the data is trusted as it is.
            command.args([
                "--seed-ratio=0.0",
                "--seed-time=1440",
                "--bt-seed-unverified=true",
            ]);
        } else {
            command.arg("--seed-time=0");
        }
        command.arg(torrent);
        let child = command
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path().join("stdout")).expect("create stdout"))
            .stderr(fs::File::create(dir.path().join("stderr")).expect("create stderr"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn aria2c: {e}"));
        Some(Self {
            child: ChildGuard::new("aria2c", child),
            listen_port,
            dir,
        })
    }

    fn output(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stdout"), read("stderr"))
    }
}

/// An aria2c downloading a torrent; stopped by PID on drop if still running.
#[derive(Debug)]
pub struct Aria2Leecher {
    process: Aria2Process,
}

impl Aria2Leecher {
    /// Starts `aria2c … TORRENT` downloading into `out_dir` (created if missing); it exits when the download is
    /// complete (`--seed-time=0`). Returns `None` (after `skipping: …`) when aria2c is not installed.
    ///
    /// # Panics
    ///
    /// When aria2c is missing under `DLM_REQUIRE_PEERS=1`, or it cannot be spawned.
    pub fn start(torrent: &Path, out_dir: &Path, options: &Aria2Options) -> Option<Self> {
        fs::create_dir_all(out_dir).expect("create aria2c out dir");
        Aria2Process::spawn(torrent, out_dir, options, false).map(|process| Self { process })
    }

    /// Waits for aria2c to exit; `None` if `timeout` passes first (it keeps running). Exit status 0 means the
    /// download is complete and every piece passed its hash check.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.process.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// aria2c's listen port (it listens on every interface, as a leecher too).
    pub fn listen_port(&self) -> u16 {
        self.process.listen_port
    }

    /// aria2c's PID.
    pub fn pid(&self) -> u32 {
        self.process.child.pid()
    }

    /// The info-level log (peers, trackers, pieces).
    pub fn log(&self) -> String {
        fs::read_to_string(self.process.dir.path().join("aria2.log")).unwrap_or_default()
    }

    /// What aria2c printed (warnings and errors, and the download summary).
    pub fn output(&self) -> String {
        self.process.output()
    }
}

/// An aria2c seeding a torrent until stopped (`--seed-ratio=0.0 --seed-time=1440`).
#[derive(Debug)]
pub struct Aria2Seeder {
    process: Aria2Process,
}

impl Aria2Seeder {
    /// Seeds `fixture` from its data dir; waits until aria2c listens. Returns `None` (after `skipping: …`) when
    /// aria2c is not installed.
    ///
    /// # Panics
    ///
    /// When aria2c is missing under `DLM_REQUIRE_PEERS=1`, or it does not listen within 15 s.
    pub fn start(fixture: &TorrentFixture, options: &Aria2Options) -> Option<Self> {
        Self::start_from(&fixture.torrent_path, &fixture.data_dir, options)
    }

    /// Seeds `torrent` from `data_dir`; waits until aria2c listens.
    ///
    /// # Panics
    ///
    /// When aria2c is missing under `DLM_REQUIRE_PEERS=1`, or it does not listen within 15 s.
    pub fn start_from(torrent: &Path, data_dir: &Path, options: &Aria2Options) -> Option<Self> {
        let mut process = Aria2Process::spawn(torrent, data_dir, options, true)?;
        let port = process.listen_port;
        if let Err(e) = process.child.wait_for_port(port, START_TIMEOUT) {
            panic!("aria2c seeder: {e}\n{}", process.output());
        }
        Some(Self { process })
    }

    /// The listen port.
    pub fn port(&self) -> u16 {
        self.process.listen_port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.process.listen_port)
    }

    /// aria2c's PID.
    pub fn pid(&self) -> u32 {
        self.process.child.pid()
    }

    /// The info-level log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.process.dir.path().join("aria2.log")).unwrap_or_default()
    }

    /// The path of the info-level log, for tests that grep it as it grows.
    pub fn log_path(&self) -> PathBuf {
        self.process.dir.path().join("aria2.log")
    }
}
