//! opentracker on 127.0.0.1: HTTP (BEP 3) on a TCP port and UDP (BEP 15) on the same port number.
//!
//! Debian builds opentracker in whitelist mode: it tracks only the info-hashes listed in its whitelist file and
//! answers announces for others with a failure. [`Tracker::allow`] appends a hash, reloads the list with SIGHUP
//! and waits until an announce for it succeeds.
//!
//! Run as root it chroots into its temp dir and drops to `nobody` (so the dir is made world-readable); as
//! another user it runs in place.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::{POLL_INTERVAL, http_request, percent_encode_bytes};
use crate::peer::{ChildGuard, free_port, missing_peer, which};

/// How long opentracker may take to listen, or to apply a reloaded whitelist (bounds a hang only).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts to find a port number free for both TCP and UDP.
const START_ATTEMPTS: usize = 5;
/// The whitelist file, relative to the tracker's dir (its chroot).
const WHITELIST: &str = "whitelist";

/// The counts a scrape (BEP 48) reports for one info-hash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Peers that announced with `left=0` (seeders).
    pub complete: u64,
    /// Peers still downloading.
    pub incomplete: u64,
    /// `event=completed` announces seen.
    pub downloaded: u64,
}

/// A running opentracker, stopped by PID on drop.
#[derive(Debug)]
pub struct Tracker {
    // Field order is drop order: stop the tracker before removing its dir.
    child: ChildGuard,
    port: u16,
    dir: TempDir,
}

impl Tracker {
    /// Starts opentracker with an empty whitelist on a free port (TCP and UDP) of 127.0.0.1 and waits until it
    /// listens. Returns `None` (after `skipping: …`) when opentracker is not installed.
    ///
    /// # Panics
    ///
    /// When opentracker is missing under `DLM_REQUIRE_PEERS=1`, or it does not start.
    pub fn start() -> Option<Self> {
        let Some(program) = which("opentracker") else {
            return missing_peer("opentracker (apt-get install opentracker)");
        };
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("dlm-opentracker-")
                .tempdir()
                .expect("temp dir");
            // After chroot and setuid(nobody) opentracker must still read its whitelist on SIGHUP.
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
            fs::write(dir.path().join(WHITELIST), "").expect("write whitelist");
            let port = free_port();
            let root = nix::unistd::geteuid().is_root();
            let mut command = Command::new(&program);
            command
                .current_dir(dir.path())
                .args(["-i", "127.0.0.1", "-A", "127.0.0.1", "-w", WHITELIST])
                .arg("-p")
                .arg(port.to_string())
                .arg("-P")
                .arg(port.to_string());
            if root {
                command.arg("-d").arg(dir.path()).args(["-u", "nobody"]);
            }
            let log = fs::File::create(dir.path().join("opentracker.log")).expect("create log");
            let child = command
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
            let mut child = ChildGuard::new("opentracker", child);
            match child.wait_for_port(port, START_TIMEOUT) {
                Ok(()) => return Some(Self { child, port, dir }),
                Err(e) => {
                    last_error = format!(
                        "{e}; log: {}",
                        fs::read_to_string(dir.path().join("opentracker.log")).unwrap_or_default()
                    );
                }
            }
        }
        panic!("opentracker did not start: {last_error}");
    }

    /// The port number, used for both TCP (HTTP) and UDP.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The tracker's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// `http://127.0.0.1:PORT/announce`.
    pub fn announce_http(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    /// `udp://127.0.0.1:PORT/announce` (BEP 15; opentracker ignores the path).
    pub fn announce_udp(&self) -> String {
        format!("udp://127.0.0.1:{}/announce", self.port)
    }

    /// Adds `info_hash` (40 hex digits, either case) to the whitelist, reloads it (SIGHUP) and waits until
    /// opentracker accepts announces for it.
    ///
    /// The check is a real announce (`port=1`, `left=0`) followed at once by `event=stopped` for the same peer,
    /// so no peer entry remains.
    ///
    /// # Panics
    ///
    /// If `info_hash` is not 40 hex digits, or the tracker does not accept it within 10 s.
    pub fn allow(&self, info_hash: &str) {
        let mut raw = [0u8; 20];
        hex::decode_to_slice(info_hash, &mut raw)
            .unwrap_or_else(|e| panic!("info-hash {info_hash:?} is not 40 hex digits: {e}"));
        let mut file = OpenOptions::new()
            .append(true)
            .open(self.dir.path().join(WHITELIST))
            .expect("open whitelist");
        writeln!(file, "{}", info_hash.to_ascii_lowercase()).expect("append to whitelist");
        drop(file);
        let pid = Pid::from_raw(i32::try_from(self.child.pid()).expect("pid fits i32"));
        kill(pid, Signal::SIGHUP).expect("SIGHUP opentracker");
        let deadline = Instant::now() + START_TIMEOUT;
        let encoded = percent_encode_bytes(&raw);
        let probe = |event: &str| {
            http_request(
                self.port,
                "GET",
                &format!(
                    "/announce?info_hash={encoded}&peer_id=-DT0001-whitelistchk&port=1&uploaded=0\
                     &downloaded=0&left=0&compact=1&numwant=0{event}"
                ),
                &[],
                b"",
            )
        };
        loop {
            if let Ok((200, _, body)) = probe("")
                && !contains(&body, b"failure reason")
            {
                let _ = probe("&event=stopped");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "opentracker did not accept {info_hash} within {START_TIMEOUT:?} after SIGHUP"
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The scrape counts for `info_hash` (20 bytes); zeros when the tracker knows no peer for it.
    ///
    /// # Panics
    ///
    /// If the scrape request fails.
    pub fn scrape(&self, info_hash: &[u8; 20]) -> ScrapeCounts {
        let (status, _, body) = http_request(
            self.port,
            "GET",
            &format!("/scrape?info_hash={}", percent_encode_bytes(info_hash)),
            &[],
            b"",
        )
        .expect("scrape opentracker");
        assert_eq!(status, 200, "scrape: {}", String::from_utf8_lossy(&body));
        ScrapeCounts {
            complete: bencode_int_after(&body, b"8:complete").unwrap_or(0),
            incomplete: bencode_int_after(&body, b"10:incomplete").unwrap_or(0),
            downloaded: bencode_int_after(&body, b"10:downloaded").unwrap_or(0),
        }
    }

    /// Waits until the tracker lists at least `seeders` seeders for `info_hash` (by [`scrape`](Self::scrape)),
    /// so a leecher started now will be told about them. Returns `false` if `timeout` passes first.
    pub fn wait_for_seeders(&self, info_hash: &[u8; 20], seeders: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.scrape(info_hash).complete >= seeders {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// opentracker's `/stats?mode=MODE` page (`peer`, `conn`, `udp4`, `tcp4`, `top100`, `everything`, …), as
    /// text. Only 127.0.0.1 may read it (`-A`).
    ///
    /// # Panics
    ///
    /// If the request fails.
    pub fn stats(&self, mode: &str) -> String {
        let (_, _, body) = http_request(self.port, "GET", &format!("/stats?mode={mode}"), &[], b"")
            .expect("opentracker stats");
        String::from_utf8_lossy(&body).into_owned()
    }

    /// What opentracker printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("opentracker.log")).unwrap_or_default()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The integer `i<n>e` right after the first `key` (a bencoded key, e.g. `8:complete`) in `body`.
fn bencode_int_after(body: &[u8], key: &[u8]) -> Option<u64> {
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = body.get(at..)?.strip_prefix(b"i")?;
    let end = rest.iter().position(|&c| c == b'e')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}
