//! transmission-daemon 3.00 as a seeder, driven over its JSON RPC (`/transmission/rpc`, no authentication,
//! 127.0.0.1 only).
//!
//! Started as `transmission-daemon -f -g DIR/config -p RPC -r 127.0.0.1 -T -P PEER -i 127.0.0.1 -I ::1 -O -Y -M
//! --no-utp -et -w DIR/download`: foreground, DHT, LPD, port mapping and uTP off, encryption tolerated (plain
//! text preferred). It is slow on loopback (about 1-2 MiB/s to aria2c) and slow to unchoke a new peer (its
//! rechoke timer runs every 10 s); use it for interoperability checks, not as the default seeder.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use super::{POLL_INTERVAL, TorrentFixture, http_request};
use crate::peer::{ChildGuard, free_ports, missing_peer, which};

/// How long the daemon may take to listen, or a torrent to be verified (bounds a hang only).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts to start on free ports.
const START_ATTEMPTS: usize = 3;
/// Transmission's RPC status code for a seeding torrent (`TR_STATUS_SEED`).
const STATUS_SEED: u64 = 6;

/// A running transmission-daemon, stopped by PID on drop.
#[derive(Debug)]
pub struct TransmissionSeeder {
    // Field order is drop order: stop the daemon before removing its dir.
    child: ChildGuard,
    rpc_port: u16,
    peer_port: u16,
    dir: TempDir,
}

impl TransmissionSeeder {
    /// Starts transmission-daemon with no torrents and waits until its RPC and peer ports listen. Returns `None`
    /// (after `skipping: …`) when it is not installed.
    ///
    /// # Panics
    ///
    /// When it is missing under `DLM_REQUIRE_PEERS=1`, or it does not start.
    pub fn start() -> Option<Self> {
        let Some(program) = which("transmission-daemon") else {
            return missing_peer("transmission-daemon (apt-get install transmission-daemon)");
        };
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("dlm-transmission-")
                .tempdir()
                .expect("temp dir");
            fs::create_dir(dir.path().join("download")).expect("create download dir");
            let [rpc_port, peer_port] = free_ports::<2>();
            let log_path = dir.path().join("transmission.log");
            let child = Command::new(&program)
                .arg("-f")
                .arg("-g")
                .arg(dir.path().join("config"))
                .arg("-p")
                .arg(rpc_port.to_string())
                .args(["-r", "127.0.0.1", "-T"])
                .arg("-P")
                .arg(peer_port.to_string())
                .args([
                    "-i",
                    "127.0.0.1",
                    "-I",
                    "::1",
                    "-O",
                    "-Y",
                    "-M",
                    "--no-utp",
                    "-et",
                ])
                .arg("-w")
                .arg(dir.path().join("download"))
                .arg("-e")
                .arg(&log_path)
                .arg("--log-info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(dir.path().join("stderr")).expect("create stderr"))
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
            let mut child = ChildGuard::new("transmission-daemon", child);
            let started = child
                .wait_for_port(rpc_port, START_TIMEOUT)
                .and_then(|()| child.wait_for_port(peer_port, START_TIMEOUT));
            match started {
                Ok(()) => {
                    return Some(Self {
                        child,
                        rpc_port,
                        peer_port,
                        dir,
                    });
                }
                Err(e) => {
                    last_error = format!(
                        "{e}; log: {}",
                        fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
            }
        }
        panic!("transmission-daemon did not start: {last_error}");
    }

    /// The BitTorrent listen port on 127.0.0.1.
    pub fn peer_port(&self) -> u16 {
        self.peer_port
    }

    /// `127.0.0.1:peer_port`.
    pub fn addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.peer_port)
    }

    /// The RPC port on 127.0.0.1 (`transmission-remote 127.0.0.1:PORT …` works too).
    pub fn rpc_port(&self) -> u16 {
        self.rpc_port
    }

    /// The daemon's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Adds `fixture` with its data dir, then waits until Transmission has verified the data and seeds it.
    /// Transmission announces to the torrent's trackers once it seeds.
    ///
    /// # Panics
    ///
    /// If the RPC fails or the torrent is not seeding within 30 s.
    pub fn seed(&self, fixture: &TorrentFixture) {
        self.seed_from(&fixture.torrent_path, &fixture.data_dir, &fixture.info_hash);
    }

    /// Adds `torrent` (a `.torrent` file the daemon reads) with `data_dir` as its download dir, then waits until
    /// it seeds the torrent with `info_hash`.
    ///
    /// # Panics
    ///
    /// If the RPC fails or the torrent is not seeding within 30 s.
    pub fn seed_from(&self, torrent: &Path, data_dir: &Path, info_hash: &[u8; 20]) {
        let reply = self.rpc(
            "torrent-add",
            json!({
                "filename": torrent.to_str().expect("UTF-8 torrent path"),
                "download-dir": data_dir.to_str().expect("UTF-8 data dir"),
                "paused": false,
            }),
        );
        assert!(
            reply["arguments"]["torrent-added"].is_object()
                || reply["arguments"]["torrent-duplicate"].is_object(),
            "torrent-add: {reply}"
        );
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let t = self.torrent(
                info_hash,
                &["status", "percentDone", "error", "errorString"],
            );
            if t["status"].as_u64() == Some(STATUS_SEED) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Transmission is not seeding {} within {START_TIMEOUT:?}: {t}",
                hex::encode(info_hash)
            );
            thread::sleep(POLL_INTERVAL * 5);
        }
    }

    /// `torrent-get` of `fields` for the torrent with `info_hash`: a JSON object, `Null` if the daemon does not
    /// have it. Field names as in Transmission's RPC spec (`uploadedEver`, `peers`, `status`, `haveValid`, …).
    ///
    /// # Panics
    ///
    /// If the RPC fails.
    pub fn torrent(&self, info_hash: &[u8; 20], fields: &[&str]) -> Value {
        let reply = self.rpc(
            "torrent-get",
            json!({ "ids": [hex::encode(info_hash)], "fields": fields }),
        );
        reply["arguments"]["torrents"][0].clone()
    }

    /// Payload bytes uploaded for the torrent (`uploadedEver`; Transmission updates it about once a second).
    pub fn uploaded_bytes(&self, info_hash: &[u8; 20]) -> u64 {
        self.torrent(info_hash, &["uploadedEver"])["uploadedEver"]
            .as_u64()
            .unwrap_or(0)
    }

    /// One RPC call: `{"method": method, "arguments": arguments}`; returns the whole reply. Handles the
    /// `X-Transmission-Session-Id` handshake (409, then retry with the id).
    ///
    /// # Panics
    ///
    /// If the request fails, the reply is not JSON, or its `result` is not `success`.
    pub fn rpc(&self, method: &str, arguments: Value) -> Value {
        let body = json!({ "method": method, "arguments": arguments }).to_string();
        let mut session = String::new();
        for _ in 0..3 {
            let mut headers = vec![("Content-Type", "application/json")];
            if !session.is_empty() {
                headers.push(("X-Transmission-Session-Id", session.as_str()));
            }
            let (status, reply_headers, reply) = http_request(
                self.rpc_port,
                "POST",
                "/transmission/rpc",
                &headers,
                body.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("Transmission RPC {method}: {e}"));
            if status == 409 {
                session = reply_headers
                    .into_iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("X-Transmission-Session-Id"))
                    .map(|(_, v)| v)
                    .expect("409 without X-Transmission-Session-Id");
                continue;
            }
            assert_eq!(
                status,
                200,
                "Transmission RPC {method}: {}",
                String::from_utf8_lossy(&reply)
            );
            let value: Value =
                serde_json::from_slice(&reply).expect("Transmission RPC reply is JSON");
            assert_eq!(
                value["result"], "success",
                "Transmission RPC {method}: {value}"
            );
            return value;
        }
        panic!("Transmission RPC {method}: no session id accepted");
    }

    /// The daemon's log (`--log-info`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("transmission.log")).unwrap_or_default()
    }
}
