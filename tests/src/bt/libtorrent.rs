//! libtorrent 2.x as a test peer: python3 running `tests/peers/lt_peer.py` (see its docstring for the protocol
//! and the status file's fields).
//!
//! The script binds 127.0.0.1 on a free port itself (or the one asked for) and prints `READY <port>`, so there is
//! no port race. Settings: DHT, LSD, UPnP and NAT-PMP off, uTP off unless asked, outgoing connections from
//! 127.0.0.1 and in plaintext unless asked (libtorrent's default tries MSE first, which costs a plaintext peer a
//! ~1 s reconnect), `allow_multiple_connections_per_ip` on (every test peer is 127.0.0.1), rate limits applied to
//! loopback peers too. Seeding torrents are added in seed mode (no hash check up front).
//!
//! The bindings come from PyPI (`pip install libtorrent`, 2.1.x, for the python3 on `PATH`) or Debian
//! (`python3-libtorrent`, 2.0.8, for `/usr/bin/python3` only); [`libtorrent_python`] finds one that works.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::{POLL_INTERVAL, TorrentFixture};
use crate::peer::{ChildGuard, missing_peer, which};

/// The peer script.
pub const LIBTORRENT_PEER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/lt_peer.py");

/// How long the script may take to print `READY` (bounds a hang only).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The environment variable that names the python interpreter for [`LibtorrentPeer`] (e.g. `/usr/bin/python3` to
/// test Debian's libtorrent 2.0 instead of the wheel).
pub const LIBTORRENT_PYTHON_ENV: &str = "DLM_LIBTORRENT_PYTHON";

/// A python interpreter that can `import libtorrent`: `$DLM_LIBTORRENT_PYTHON` if set, else `python3` on `PATH`
/// (pip's wheel), else `/usr/bin/python3` (Debian's python3-libtorrent). Looked up once per process.
pub fn libtorrent_python() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(python) = std::env::var_os(LIBTORRENT_PYTHON_ENV) {
                return Some(PathBuf::from(python));
            }
            which("python3")
                .into_iter()
                .chain(Some(PathBuf::from("/usr/bin/python3")))
                .find(|python| {
                    Command::new(python)
                        .args(["-c", "import libtorrent"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                })
        })
        .clone()
}

/// What a [`LibtorrentPeer`] does.
///
/// # Defaults
///
/// Nothing to seed or leech, any free port, announce to the torrents' trackers, no rate limits, TCP only (see
/// [`LtTransport`]),
/// plaintext outgoing connections, runs until stopped, libtorrent's 8 unchoke slots.
#[derive(Clone, Debug, Default)]
pub struct LibtorrentOptions {
    seeds: Vec<(PathBuf, PathBuf)>,
    leeches: Vec<(PathBuf, PathBuf)>,
    magnet_leeches: Vec<(String, PathBuf)>,
    connect: Vec<SocketAddr>,
    upload_limit_bytes_per_sec: u64,
    download_limit_bytes_per_sec: u64,
    no_announce: bool,
    lsd: bool,
    exit_when_complete: bool,
    // DHT (BEP 5).
    dht: bool,
    dht_nodes: Vec<SocketAddr>,
    encryption: Option<LtEncryption>,
    transport: LtTransport,
}

/// The transports a libtorrent peer connects and accepts over (`lt_peer.py --utp`, `--utp-only`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LtTransport {
    /// TCP only (uTP off both ways).
    #[default]
    Tcp,
    /// TCP and uTP (BEP 29), in and out: libtorrent's default (it tries uTP first).
    TcpAndUtp,
    /// uTP only: TCP off both ways (`enable_incoming_tcp`, `enable_outgoing_tcp` false).
    UtpOnly,
}

/// libtorrent's MSE/PE policy for both directions (`in_enc_policy`, `out_enc_policy`), `lt_peer.py --encryption`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LtEncryption {
    /// MSE only, in and out, with RC4 on the payload (`allowed_enc_level` = RC4, `prefer_rc4`).
    Forced,
    /// MSE or plaintext, in and out (libtorrent's default).
    Enabled,
    /// Plaintext only: MSE refused both ways.
    Disabled,
}

impl LibtorrentOptions {
    /// A seeder of `fixture` that announces nowhere: peers reach it by its
    /// address (`--peer`, [`LibtorrentOptions::with_connect`]).
    pub fn seeding(fixture: &TorrentFixture) -> Self {
        Self::default().with_seed(fixture).without_trackers()
    }

    /// Seeds `fixture` from its own data dir.
    pub fn with_seed(self, fixture: &TorrentFixture) -> Self {
        self.with_seed_from(&fixture.torrent_path, &fixture.data_dir)
    }

    /// Seeds `torrent` from `data_dir` (the save path: the payload is `data_dir/<name>`), in seed mode.
    pub fn with_seed_from(mut self, torrent: &Path, data_dir: &Path) -> Self {
        self.seeds.push((torrent.to_owned(), data_dir.to_owned()));
        self
    }

    /// Downloads `torrent` into `data_dir`; data already there is hash-checked first, so a partial download
    /// resumes.
    pub fn with_leech(mut self, torrent: &Path, data_dir: &Path) -> Self {
        self.leeches.push((torrent.to_owned(), data_dir.to_owned()));
        self
    }

    /// Downloads the magnet link `uri` into `data_dir` (`lt_peer.py --leech-magnet`): the metadata from peers
    /// (BEP 9), and for a v2 torrent its piece layers by hash requests (BEP 52).
    pub fn with_leech_magnet(mut self, uri: &str, data_dir: &Path) -> Self {
        self.magnet_leeches
            .push((uri.to_owned(), data_dir.to_owned()));
        self
    }

    /// Connects every torrent to `peer` at start (no tracker needed).
    pub fn with_connect(mut self, peer: SocketAddr) -> Self {
        self.connect.push(peer);
        self
    }

    /// Session upload limit in bytes per second (0: unlimited); applies to loopback peers.
    pub fn with_upload_limit(mut self, bytes_per_sec: u64) -> Self {
        self.upload_limit_bytes_per_sec = bytes_per_sec;
        self
    }

    /// Session download limit in bytes per second (0: unlimited); applies to loopback peers.
    pub fn with_download_limit(mut self, bytes_per_sec: u64) -> Self {
        self.download_limit_bytes_per_sec = bytes_per_sec;
        self
    }

    /// Removes the torrents' trackers: the peer talks only to peers it is told to connect to, or that connect
    /// to it.
    pub fn without_trackers(mut self) -> Self {
        self.no_announce = true;
        self
    }

    /// Turns libtorrent's DHT on (BEP 5), on the listen port, purely on loopback: no bootstrap routers, the
    /// per-IP limits that would keep 127.0.0.1 nodes apart off (see `lt_peer.py`).
    pub fn with_dht(mut self) -> Self {
        self.dht = true;
        self
    }

    /// With [`LibtorrentOptions::with_dht`]: a DHT node to add at start (`add_dht_node`).
    pub fn with_dht_node(mut self, node: SocketAddr) -> Self {
        self.dht_nodes.push(node);
        self
    }

    /// Turns on local service discovery (BEP 14): libtorrent announces its torrents to 239.192.152.143:6771
    /// (loopback included) and connects to peers that announce them.
    pub fn with_lsd(mut self) -> Self {
        self.lsd = true;
        self
    }

    /// Sets libtorrent's encryption policy for incoming and outgoing connections (default: MSE or plaintext in,
    /// plaintext out).
    pub fn with_encryption(mut self, policy: LtEncryption) -> Self {
        self.encryption = Some(policy);
        self
    }

    /// Sets the transports it connects and accepts over (default [`LtTransport::Tcp`]).
    pub fn with_transport(mut self, transport: LtTransport) -> Self {
        self.transport = transport;
        self
    }

    /// Exits (status 0) once every leeched torrent is complete; see [`LibtorrentPeer::wait_exit`].
    pub fn with_exit_when_complete(mut self, exit: bool) -> Self {
        self.exit_when_complete = exit;
        self
    }
}

/// A running libtorrent peer, stopped by PID on drop.
#[derive(Debug)]
pub struct LibtorrentPeer {
    // Field order is drop order: close stdin, stop the peer, then remove its dir.
    stdin: Option<ChildStdin>,
    child: ChildGuard,
    port: u16,
    dir: TempDir,
}

impl LibtorrentPeer {
    /// Starts the peer and waits until it listens (torrents are added before `READY`; seeding ones announce at
    /// once). Returns `None` (after `skipping: …`) when no python3 can import libtorrent.
    ///
    /// # Panics
    ///
    /// When libtorrent is missing under `DLM_REQUIRE_PEERS=1`, or the peer does not start.
    pub fn start(options: LibtorrentOptions) -> Option<Self> {
        let Some(python) = libtorrent_python() else {
            return missing_peer("python3 libtorrent bindings (python3 -m pip install libtorrent)");
        };
        let dir = tempfile::Builder::new()
            .prefix("dlm-libtorrent-")
            .tempdir()
            .expect("temp dir");
        let stdout_path = dir.path().join("stdout");
        let stderr_path = dir.path().join("stderr");
        let mut command = Command::new(&python);
        command
            .arg("-u")
            .arg(LIBTORRENT_PEER_SCRIPT)
            .arg("--status")
            .arg(dir.path().join("status.json"))
            .arg("--port")
            .arg("0");
        for (torrent, data) in &options.seeds {
            command.arg("--seed").arg(torrent).arg(data);
        }
        for (torrent, data) in &options.leeches {
            command.arg("--leech").arg(torrent).arg(data);
        }
        for (uri, data) in &options.magnet_leeches {
            command.arg("--leech-magnet").arg(uri).arg(data);
        }
        for peer in &options.connect {
            command.arg("--connect").arg(peer.to_string());
        }
        command
            .arg("--upload-limit")
            .arg(options.upload_limit_bytes_per_sec.to_string())
            .arg("--download-limit")
            .arg(options.download_limit_bytes_per_sec.to_string());
        if let Some(policy) = options.encryption {
            command.arg("--encryption").arg(match policy {
                LtEncryption::Forced => "forced",
                LtEncryption::Enabled => "enabled",
                LtEncryption::Disabled => "disabled",
            });
        }
        for (on, flag) in [
            (options.no_announce, "--no-announce"),
            (options.lsd, "--lsd"),
            (options.exit_when_complete, "--exit-when-complete"),
        ] {
            if on {
                command.arg(flag);
            }
        }
        match options.transport {
            LtTransport::Tcp => {}
            LtTransport::TcpAndUtp => {
                command.arg("--utp");
            }
            LtTransport::UtpOnly => {
                command.arg("--utp-only");
            }
        }
        if options.dht {
            command.arg("--dht");
        }
        for node in &options.dht_nodes {
            command.arg("--dht-node").arg(node.to_string());
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(fs::File::create(&stdout_path).expect("create stdout file"))
            .stderr(fs::File::create(&stderr_path).expect("create stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", python.display()));
        let stdin = child.stdin.take();
        let mut child = ChildGuard::new("lt_peer.py", child);
        let port = child
            .wait_for_line(&stdout_path, START_TIMEOUT, super::ready_port)
            .unwrap_or_else(|e| {
                panic!(
                    "lt_peer.py did not start: {e}\n--- stderr ---\n{}",
                    fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            });
        Some(Self {
            stdin,
            child,
            port,
            dir,
        })
    }

    /// The listen port (TCP, and uTP when enabled) on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port)
    }

    /// The peer's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The latest status (rewritten every 0.2 s and when the script exits).
    ///
    /// # Panics
    ///
    /// If the status file cannot be read or parsed.
    pub fn status(&self) -> LtStatus {
        let path = self.dir.path().join("status.json");
        // The file is replaced atomically, so a read sees a whole document.
        let text = fs::read_to_string(&path).expect("read lt_peer status");
        let value: Value = serde_json::from_str(&text).expect("parse lt_peer status");
        LtStatus::from_json(&value)
    }

    /// The status of the torrent with `info_hash` (v1), if the peer has it.
    pub fn torrent(&self, info_hash: &[u8; 20]) -> Option<LtTorrentStatus> {
        self.status().torrents.remove(&hex::encode(info_hash))
    }

    /// Polls the status until `pred` holds and returns that status; `None` if `timeout` passes first or the
    /// script exits. The timeout bounds a hang; it asserts nothing about speed.
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&LtStatus) -> bool,
    ) -> Option<LtStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            // Checked before the read, so the final status written on exit is still seen.
            let exited = self.child.try_wait().ok().flatten().is_some();
            let status = self.status();
            if pred(&status) {
                return Some(status);
            }
            if exited || Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until the torrent with `info_hash` is complete (every wanted piece passed its hash check).
    /// Returns `false` if `timeout` passes first.
    pub fn wait_complete(&mut self, info_hash: &[u8; 20], timeout: Duration) -> bool {
        let key = hex::encode(info_hash);
        self.wait_until(timeout, |s| {
            s.torrents.get(&key).is_some_and(|t| t.is_finished)
        })
        .is_some()
    }

    /// Waits for the script to exit (with [`LibtorrentOptions::with_exit_when_complete`]); `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Connects every torrent to `peer` now.
    pub fn connect(&mut self, peer: SocketAddr) {
        self.command(&format!("connect {peer}"));
    }

    /// Pauses every torrent (libtorrent closes their peer connections).
    pub fn pause(&mut self) {
        self.command("pause");
    }

    /// Resumes every torrent.
    pub fn resume(&mut self) {
        self.command("resume");
    }

    /// Adds a DHT node now (`add_dht_node`; needs [`LibtorrentOptions::with_dht`]).
    pub fn add_dht_node(&mut self, node: SocketAddr) {
        self.command(&format!("dht-node {node}"));
    }

    /// Announces every torrent to the DHT now (`force_dht_announce`).
    pub fn dht_announce(&mut self) {
        self.command("dht-announce");
    }

    fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("lt_peer.py stdin");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("send {line:?} to lt_peer.py: {e}"));
    }

    /// libtorrent's alert log: tracker, connect and error alerts.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("lt.log")).unwrap_or_default()
    }

    /// What the script wrote to stderr (python tracebacks).
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Stops the peer now (SIGTERM: it writes a final status, then exits) and returns its exit status. The
    /// status file stays readable until the handle is dropped.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.stdin = None;
        self.child.stop()
    }
}

/// A snapshot of `lt_peer.py`'s status file.
#[derive(Clone, Debug, Default)]
pub struct LtStatus {
    /// The listen port.
    pub port: u16,
    /// The libtorrent version, e.g. `2.1.1.0`.
    pub libtorrent: String,
    /// Seconds since the script started.
    pub elapsed_s: f64,
    /// Torrents by v1 info-hash (40 lowercase hex digits).
    pub torrents: BTreeMap<String, LtTorrentStatus>,
    /// What the DHT saw ([`LibtorrentOptions::with_dht`] only).
    pub dht: Option<LtDhtStatus>,
}

/// What a libtorrent DHT node saw (BEP 5), from its DHT alerts.
#[derive(Clone, Debug, Default)]
pub struct LtDhtStatus {
    /// Nodes in its routing table.
    pub nodes: u64,
    /// `get_peers` queries received, by info-hash (40 lowercase hex digits).
    pub get_peers: BTreeMap<String, u64>,
    /// `announce_peer` queries received, by info-hash: the announced `ip:port` each.
    pub announces: BTreeMap<String, Vec<String>>,
}

impl LtDhtStatus {
    fn from_json(v: &Value) -> Option<Self> {
        let map = v.as_object()?;
        Some(Self {
            nodes: map.get("nodes").and_then(Value::as_u64).unwrap_or(0),
            get_peers: map
                .get("get_peers")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default(),
            announces: map
                .get("announces")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, a)| {
                            let addrs = a
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|x| x.as_str().map(str::to_owned))
                                        .collect()
                                })
                                .unwrap_or_default();
                            (k.clone(), addrs)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// One torrent in an [`LtStatus`]. Byte counts are payload bytes.
#[derive(Clone, Debug, Default)]
pub struct LtTorrentStatus {
    /// The torrent's name.
    pub name: String,
    /// `seed` or `leech`.
    pub mode: String,
    /// libtorrent's state (`seeding`, `downloading`, `checking_files`, …).
    pub state: String,
    /// 0.0 to 1.0.
    pub progress: f64,
    /// Every wanted piece is in and verified.
    pub is_finished: bool,
    /// Complete and seeding.
    pub is_seeding: bool,
    /// The number of pieces.
    pub num_pieces: u32,
    /// Which pieces the peer has, by index.
    pub pieces: Vec<bool>,
    /// Payload bytes uploaded since the script started.
    pub uploaded_bytes: u64,
    /// Payload bytes downloaded since the script started.
    pub downloaded_bytes: u64,
    /// Pieces that failed their hash check.
    pub hash_failures: u64,
    /// Every peer seen, by address as libtorrent sees it (`127.0.0.1:port`; for an incoming connection, the
    /// remote's ephemeral port).
    pub peers: BTreeMap<String, LtPeerStats>,
}

impl LtTorrentStatus {
    /// The sum of [`LtPeerStats::uploaded_bytes`] over the peers whose `peer_id` (hex) starts with
    /// `peer_id_prefix_hex` (e.g. the hex of `-DL0001-`); all peers for `""`.
    pub fn uploaded_to(&self, peer_id_prefix_hex: &str) -> u64 {
        self.peers
            .values()
            .filter(|p| {
                p.peer_id
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with(peer_id_prefix_hex)
            })
            .map(|p| p.uploaded_bytes)
            .sum()
    }
}

/// What one peer got from, and gave to, a libtorrent peer: counted from libtorrent's peer log, so a peer that
/// has disconnected keeps its numbers. The counts may trail the torrent's progress by one status write (0.2 s):
/// wait for them with [`LibtorrentPeer::wait_until`].
#[derive(Clone, Debug, Default)]
pub struct LtPeerStats {
    /// The remote's peer ID, 40 hex digits (once its handshake was seen).
    pub peer_id: Option<String>,
    /// The client: the extension handshake's `v` (BEP 10), else libtorrent's guess from the peer ID.
    pub client: Option<String>,
    /// libtorrent opened the connection.
    pub outgoing: Option<bool>,
    /// Connected at the last status write.
    pub connected: bool,
    /// libtorrent's message for the last disconnect.
    pub disconnect_reason: Option<String>,
    /// Payload bytes sent to this peer (`PIECE` messages libtorrent sent).
    pub uploaded_bytes: u64,
    /// Payload bytes received from this peer (`PIECE` messages, a block received twice counting twice).
    pub downloaded_bytes: u64,
    /// Pieces of which at least one block was sent to this peer, ascending.
    pub uploaded_pieces: Vec<u32>,
    /// Pieces of which at least one block came from this peer, ascending.
    pub downloaded_pieces: Vec<u32>,
    /// Requests received from this peer, `[piece, begin, length]`, the first 10,000.
    pub requests: Vec<[u64; 3]>,
    /// Requests libtorrent found invalid (invalid_request alerts).
    pub invalid_requests: u64,
    /// BEP 52 `hashes` messages received from this peer (answers to libtorrent's hash requests).
    pub hashes_received: u64,
    /// BEP 52 `hash reject` messages received from this peer.
    pub hash_rejects_received: u64,
    /// The 64 reserved handshake bits the peer sent, as `0`/`1` characters (BEP 3: bit 43 (`…1` at index 43) is
    /// BEP 10's extension protocol, 61 BEP 6's fast extension, 63 DHT).
    pub reserved: Option<String>,
    /// The peer's BEP 10 extension handshake as libtorrent prints it (`{ 'm': { 'ut_metadata': 2 }, 'v': … }`).
    pub extension_handshake: Option<String>,
    /// libtorrent chokes the peer (last seen while connected; `None` for a peer that came and went between two
    /// status writes).
    pub we_choke: Option<bool>,
    /// The peer chokes libtorrent.
    pub they_choke: Option<bool>,
    /// The peer sent the BEP 10 extension bit.
    pub supports_extensions: Option<bool>,
}

impl LtStatus {
    fn from_json(v: &Value) -> Self {
        Self {
            port: u64_of(v, "port") as u16,
            libtorrent: str_of(v, "libtorrent").unwrap_or_default(),
            elapsed_s: v["elapsed_s"].as_f64().unwrap_or(0.0),
            torrents: v["torrents"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, t)| (k.clone(), LtTorrentStatus::from_json(t)))
                        .collect()
                })
                .unwrap_or_default(),
            dht: LtDhtStatus::from_json(&v["dht"]),
        }
    }
}

impl LtTorrentStatus {
    fn from_json(v: &Value) -> Self {
        Self {
            name: str_of(v, "name").unwrap_or_default(),
            mode: str_of(v, "mode").unwrap_or_default(),
            state: str_of(v, "state").unwrap_or_default(),
            progress: v["progress"].as_f64().unwrap_or(0.0),
            is_finished: v["is_finished"].as_bool().unwrap_or(false),
            is_seeding: v["is_seeding"].as_bool().unwrap_or(false),
            num_pieces: u64_of(v, "num_pieces") as u32,
            pieces: v["pieces"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .map(|c| c == '1')
                .collect(),
            uploaded_bytes: u64_of(v, "uploaded_bytes"),
            downloaded_bytes: u64_of(v, "downloaded_bytes"),
            hash_failures: u64_of(v, "hash_failures"),
            peers: v["peers"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, p)| (k.clone(), LtPeerStats::from_json(p)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

impl LtPeerStats {
    fn from_json(v: &Value) -> Self {
        let u32s = |key: &str| -> Vec<u32> {
            v[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_u64())
                        .map(|x| x as u32)
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            peer_id: str_of(v, "peer_id"),
            client: str_of(v, "client"),
            outgoing: v["outgoing"].as_bool(),
            connected: v["connected"].as_bool().unwrap_or(false),
            disconnect_reason: str_of(v, "disconnect_reason"),
            uploaded_bytes: u64_of(v, "uploaded_bytes"),
            downloaded_bytes: u64_of(v, "downloaded_bytes"),
            uploaded_pieces: u32s("uploaded_pieces"),
            downloaded_pieces: u32s("downloaded_pieces"),
            requests: v["requests"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| {
                            let r = r.as_array()?;
                            Some([
                                r.first()?.as_u64()?,
                                r.get(1)?.as_u64()?,
                                r.get(2)?.as_u64()?,
                            ])
                        })
                        .collect()
                })
                .unwrap_or_default(),
            invalid_requests: u64_of(v, "invalid_requests"),
            hashes_received: u64_of(v, "hashes_received"),
            hash_rejects_received: u64_of(v, "hash_rejects_received"),
            reserved: str_of(v, "reserved"),
            extension_handshake: str_of(v, "extension_handshake"),
            we_choke: v["we_choke"].as_bool(),
            they_choke: v["they_choke"].as_bool(),
            supports_extensions: v["supports_extensions"].as_bool(),
        }
    }
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().map(str::to_owned)
}
