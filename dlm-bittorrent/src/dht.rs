//! The BitTorrent DHT (BEP 5): an adapter over the `mainline` crate that
//! finds a torrent's peers (`get_peers`) and announces ours
//! (`announce_peer`) from nothing but an info-hash, so it serves magnet
//! links as well as `.torrent` files.
//!
//! # One node per process
//! A DHT node is a long-lived UDP endpoint with a routing table; every
//! torrent of a process that uses the same [`DhtSettings`] shares one
//! ([`Dht::shared`]). The registry of running nodes keeps only weak
//! handles, so a node stops (its UDP socket closes, its actor thread ends)
//! when the last torrent using it drops its handle.
//!
//! # Routing table across runs
//! With a state file ([`TorrentConfig::dht_state_file`]) the node's good
//! nodes (those `mainline` does not consider stale) are written there, at
//! most [`MAX_SAVED_NODES`], every [`SAVE_EVERY`] and when the node stops,
//! and read back at the next start as extra bootstrap nodes. The file is
//! text, one `ip:port` a line after a header line; a file larger than
//! [`MAX_STATE_FILE_BYTES`] or with any line that does not parse is
//! ignored with a warning (and replaced at the next save).
//!
//! # Limits
//! IPv4 only: `mainline` 8 binds one IPv4 socket and parses only the
//! compact IPv4 forms (BEP 32, the IPv6 extension, waits for the crate).
//! Host names (bootstrap routers, a torrent's `nodes`) are resolved on a
//! thread of their own, each bounded by [`RESOLVE_TIMEOUT`], so a dead
//! resolver never holds up a download or the runtime's shutdown.

use std::collections::HashSet;
use std::fmt;
use std::io::Write as _;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures::{Stream, StreamExt};
use mainline::Id;
use mainline::async_dht::AsyncDht;

use crate::{InfoHash, TorrentConfig, TorrentError};

/// Longest wait for one host name of a bootstrap node to resolve.
pub(crate) const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most bootstrap nodes used (configured routers, saved nodes and a
/// torrent's `nodes` together): `mainline` asks every bootstrap node at each
/// lookup while its routing table is small, so the list stays short.
pub(crate) const MAX_BOOTSTRAP_NODES: usize = 64;

/// Most nodes written to the state file.
pub(crate) const MAX_SAVED_NODES: usize = 32;

/// Largest state file read, in bytes (a full one is about 800 bytes).
pub(crate) const MAX_STATE_FILE_BYTES: u64 = 16 << 10;

/// The state file is rewritten this often while the node runs.
pub(crate) const SAVE_EVERY: Duration = Duration::from_secs(5 * 60);

/// The routing table is copied (for the next save) this often.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(15);

/// One `get_peers` lookup runs at most this long.
pub(crate) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// One lookup yields at most this many peer addresses.
pub(crate) const MAX_LOOKUP_PEERS: usize = 200;

/// One `announce_peer` (a `get_peers` for the tokens, then the announces)
/// runs at most this long.
pub(crate) const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(30);

/// The first line of a state file.
const STATE_HEADER: &str = "# dlm DHT nodes v1";

/// What makes two torrents share a DHT node: the settings of
/// [`TorrentConfig`] that shape one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DhtSettings {
    /// `host:port` bootstrap routers ([`TorrentConfig::dht_bootstrap`]).
    pub(crate) bootstrap: Vec<String>,
    /// UDP port ([`TorrentConfig::dht_port`]).
    pub(crate) port: u16,
    /// Where the routing table is kept ([`TorrentConfig::dht_state_file`]).
    pub(crate) state_file: Option<PathBuf>,
}

impl DhtSettings {
    /// The DHT settings of `config`.
    pub(crate) fn from_config(config: &TorrentConfig) -> Self {
        Self {
            bootstrap: config.dht_bootstrap.clone(),
            port: config.dht_port,
            state_file: config.dht_state_file.clone(),
        }
    }
}

/// The running nodes, by settings; a dead weak handle is replaced.
static RUNNING: tokio::sync::Mutex<Vec<(DhtSettings, Weak<Dht>)>> =
    tokio::sync::Mutex::const_new(Vec::new());

/// A running DHT node (BEP 5), shared by the torrents of a process.
pub(crate) struct Dht {
    dht: AsyncDht,
    settings: DhtSettings,
    /// The UDP port the node listens on.
    local_port: u16,
    /// The good nodes last seen in the routing table, saved on drop.
    good_nodes: Mutex<Vec<SocketAddrV4>>,
}

impl fmt::Debug for Dht {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dht")
            .field("settings", &self.settings)
            .field("local_port", &self.local_port)
            .finish_non_exhaustive()
    }
}

fn dht_error(message: impl Into<String>) -> TorrentError {
    TorrentError::Dht(message.into())
}

/// The DHT id of an info-hash (both are 160-bit, BEP 5).
fn target(info_hash: InfoHash) -> Result<Id, TorrentError> {
    Id::from_bytes(info_hash.0).map_err(|e| dht_error(e.to_string()))
}

impl Dht {
    /// The node for `settings`: the running one, else a new one
    /// bootstrapped from the routers, the saved nodes and `extra_nodes`
    /// (a torrent's `nodes`, BEP 5). `extra_nodes` are ignored when the node
    /// already runs (its routing table is already filled).
    ///
    /// # Errors
    /// [`TorrentError::Dht`] when the UDP socket cannot be bound.
    ///
    /// # Cancel safety
    /// Cancel safe: a node being made is dropped (and stopped) with the future.
    pub(crate) async fn shared(
        settings: DhtSettings,
        extra_nodes: &[(String, u16)],
    ) -> Result<Arc<Self>, TorrentError> {
        let mut running = RUNNING.lock().await;
        running.retain(|(_, w)| w.strong_count() > 0);
        if let Some(node) = running
            .iter()
            .find(|(s, _)| *s == settings)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(node);
        }
        let node = Arc::new(Self::start(settings.clone(), extra_nodes).await?);
        running.push((settings, Arc::downgrade(&node)));
        tokio::spawn(keep_state(Arc::downgrade(&node)));
        Ok(node)
    }

    async fn start(
        settings: DhtSettings,
        extra_nodes: &[(String, u16)],
    ) -> Result<Self, TorrentError> {
        let saved = settings
            .state_file
            .as_deref()
            .map(load_state)
            .unwrap_or_default();
        let names: Vec<String> = settings
            .bootstrap
            .iter()
            .cloned()
            .chain(extra_nodes.iter().map(|(h, p)| host_port(h, *p)))
            .collect();
        let mut bootstrap = resolve_all(&names).await;
        bootstrap.extend(saved);
        let mut seen = HashSet::new();
        bootstrap.retain(|a| seen.insert(*a));
        bootstrap.truncate(MAX_BOOTSTRAP_NODES);
        let build = |port: u16| {
            // mainline 8.0.1 panics instead of failing when its actor thread
            // exits on a taken port before it is asked anything: look first
            // (the uTP socket of a swarm, BEP 29, may hold the port), and
            // treat a panic in the short race that remains as the error.
            if port != 0
                && std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).is_err()
            {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("UDP port {port} is taken"),
                ));
            }
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                mainline::Dht::builder()
                    .bootstrap(&bootstrap)
                    .port(port)
                    .build()
            }))
            .unwrap_or_else(|_| Err(std::io::Error::other("the DHT node did not start")))
        };
        let dht = match build(settings.port) {
            Ok(d) => Ok(d),
            Err(e) if settings.port != 0 => {
                tracing::debug!(port = settings.port, error = %e, "DHT port taken, using any");
                build(0)
            }
            Err(e) => Err(e),
        }
        .map_err(|e| dht_error(format!("starting the DHT node: {e}")))?
        .as_async();
        let local_port = dht.info().await.local_addr().port();
        tracing::debug!(local_port, bootstrap = bootstrap.len(), "DHT node started");
        Ok(Self {
            dht,
            settings,
            local_port,
            good_nodes: Mutex::new(Vec::new()),
        })
    }

    /// The UDP port the node listens on.
    pub(crate) fn local_port(&self) -> u16 {
        self.local_port
    }

    /// Looks up peers of `info_hash` (BEP 5 `get_peers`): yields new
    /// addresses in batches as nodes answer, at most [`MAX_LOOKUP_PEERS`] in
    /// all, and ends when the lookup does or after [`LOOKUP_TIMEOUT`].
    /// Dropping the stream stops the lookup.
    pub(crate) fn get_peers(
        self: &Arc<Self>,
        info_hash: InfoHash,
    ) -> impl Stream<Item = Vec<SocketAddr>> + Send + Unpin + use<> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<SocketAddr>>(16);
        let node = self.clone();
        // A task of its own: it outlives no caller (it stops when the
        // receiver goes), and a panic in the crate ends only it.
        tokio::spawn(async move {
            let Ok(id) = target(info_hash) else { return };
            let mut answers = node.dht.get_peers(id);
            let deadline = tokio::time::sleep(LOOKUP_TIMEOUT);
            tokio::pin!(deadline);
            let mut seen = HashSet::new();
            loop {
                let batch = tokio::select! {
                    () = &mut deadline => break,
                    () = tx.closed() => break,
                    b = answers.next() => match b {
                        Some(b) => b,
                        None => break,
                    },
                };
                let fresh: Vec<SocketAddr> = batch
                    .into_iter()
                    .filter(|a| a.port() != 0 && !a.ip().is_unspecified())
                    .filter(|a| seen.len() < MAX_LOOKUP_PEERS && seen.insert(*a))
                    .map(SocketAddr::V4)
                    .collect();
                if !fresh.is_empty() && tx.send(fresh).await.is_err() {
                    break;
                }
                if seen.len() >= MAX_LOOKUP_PEERS {
                    break;
                }
            }
            tracing::debug!(%info_hash, peers = seen.len(), "DHT lookup done");
            node.snapshot().await;
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
            .boxed()
    }

    /// Announces that we accept peers of `info_hash` on TCP `port` (BEP 5
    /// `announce_peer`, after a `get_peers` for the nodes' tokens).
    ///
    /// # Errors
    /// [`TorrentError::Dht`] when no node took the announce (none found,
    /// all refused) or [`ANNOUNCE_TIMEOUT`] passed.
    pub(crate) async fn announce_peer(
        self: &Arc<Self>,
        info_hash: InfoHash,
        port: u16,
    ) -> Result<(), TorrentError> {
        let id = target(info_hash)?;
        let node = self.clone();
        let task = tokio::spawn(async move { node.dht.announce_peer(id, Some(port)).await });
        match tokio::time::timeout(ANNOUNCE_TIMEOUT, task).await {
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err(e))) => Err(dht_error(format!("announce_peer: {e}"))),
            Ok(Err(e)) => Err(dht_error(format!("announce_peer failed: {e}"))),
            Err(_) => Err(dht_error("announce_peer timed out")),
        }
    }

    /// Copies the routing table's good nodes for the next save.
    async fn snapshot(&self) {
        let Ok(nodes) = tokio::time::timeout(Duration::from_secs(5), self.dht.to_bootstrap()).await
        else {
            return;
        };
        let nodes: Vec<SocketAddrV4> = nodes
            .iter()
            .filter_map(|n| n.parse().ok())
            .take(MAX_SAVED_NODES)
            .collect();
        if !nodes.is_empty() {
            *self
                .good_nodes
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = nodes;
        }
    }

    /// Writes the last snapshot to the state file, if any.
    fn save(&self) {
        let Some(path) = &self.settings.state_file else {
            return;
        };
        let nodes = self
            .good_nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if nodes.is_empty() {
            return;
        }
        if let Err(e) = save_state(path, &nodes) {
            tracing::warn!(path = %path.display(), error = %e, "could not save the DHT nodes");
        }
    }
}

impl Drop for Dht {
    fn drop(&mut self) {
        self.save();
    }
}

/// Copies the routing table every [`SNAPSHOT_EVERY`] and saves it every
/// [`SAVE_EVERY`], while the node runs.
async fn keep_state(node: Weak<Dht>) {
    let mut since_save = Duration::ZERO;
    loop {
        tokio::time::sleep(SNAPSHOT_EVERY).await;
        let Some(node) = node.upgrade() else { return };
        node.snapshot().await;
        since_save += SNAPSHOT_EVERY;
        if since_save >= SAVE_EVERY {
            since_save = Duration::ZERO;
            node.save();
        }
    }
}

/// `host:port`, with brackets around an IPv6 literal.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The IPv4 addresses of `names` (`host:port`), each resolved on a thread
/// of its own within [`RESOLVE_TIMEOUT`]; names that fail are logged and
/// skipped.
async fn resolve_all(names: &[String]) -> Vec<SocketAddrV4> {
    let lookups = names
        .iter()
        .take(MAX_BOOTSTRAP_NODES)
        .map(|name| async move {
            if let Ok(SocketAddr::V4(a)) = name.parse::<SocketAddr>() {
                return vec![a];
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            let owned = name.clone();
            let spawned = std::thread::Builder::new()
                .name("dlm-dht-resolve".into())
                .spawn(move || {
                    let _ = tx.send(owned.to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
                });
            if spawned.is_err() {
                return Vec::new();
            }
            match tokio::time::timeout(RESOLVE_TIMEOUT, rx).await {
                Ok(Ok(Ok(addrs))) => addrs
                    .into_iter()
                    .filter_map(|a| match a {
                        SocketAddr::V4(a) => Some(a),
                        SocketAddr::V6(_) => None,
                    })
                    .collect(),
                Ok(Ok(Err(e))) => {
                    tracing::debug!(%name, error = %e, "DHT bootstrap node not resolved");
                    Vec::new()
                }
                _ => {
                    tracing::debug!(%name, "DHT bootstrap node not resolved in time");
                    Vec::new()
                }
            }
        });
    futures::future::join_all(lookups)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The nodes saved in the state file at `path`: empty when there is none;
/// a file too large or not in the format is ignored with a warning.
pub(crate) fn load_state(path: &Path) -> Vec<SocketAddrV4> {
    let read = || -> Result<Vec<SocketAddrV4>, String> {
        let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        if len > MAX_STATE_FILE_BYTES {
            return Err(format!("larger than {MAX_STATE_FILE_BYTES} bytes"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        parse_state(&text)
    };
    match read() {
        Ok(nodes) => nodes,
        Err(_) if !path.exists() => Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring the DHT state file");
            Vec::new()
        }
    }
}

/// Parses a state file's text.
fn parse_state(text: &str) -> Result<Vec<SocketAddrV4>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(STATE_HEADER) {
        return Err("not a dlm DHT state file".into());
    }
    let mut nodes = Vec::new();
    for line in lines.map(str::trim).filter(|l| !l.is_empty()) {
        let a: SocketAddrV4 = line.parse().map_err(|_| format!("bad line {line:?}"))?;
        if nodes.len() < MAX_SAVED_NODES {
            nodes.push(a);
        }
    }
    Ok(nodes)
}

/// Writes `nodes` (at most [`MAX_SAVED_NODES`]) to `path` atomically
/// (a temporary file renamed over it), creating its directory.
pub(crate) fn save_state(path: &Path, nodes: &[SocketAddrV4]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::from(STATE_HEADER);
    text.push('\n');
    for n in nodes.iter().take(MAX_SAVED_NODES) {
        text.push_str(&n.to_string());
        text.push('\n');
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dht.dat");
        let nodes: Vec<SocketAddrV4> = (1..=40u16)
            .map(|i| SocketAddrV4::new([10, 0, 0, i as u8].into(), 6000 + i))
            .collect();
        save_state(&path, &nodes).unwrap();
        let loaded = load_state(&path);
        assert_eq!(loaded, nodes[..MAX_SAVED_NODES]);
        // No temporary file is left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn missing_or_corrupt_state_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dht.dat");
        assert!(load_state(&path).is_empty());
        for bad in [
            "garbage\n".to_string(),
            format!("{STATE_HEADER}\n1.2.3.4:5\nnot an address\n"),
            format!("{STATE_HEADER}\n[::1]:6881\n"),
            String::from_utf8_lossy(&[0xff, 0xfe, 0]).into_owned(),
        ] {
            std::fs::write(&path, bad.as_bytes()).unwrap();
            assert!(load_state(&path).is_empty(), "{bad:?}");
        }
        std::fs::write(&path, [0xffu8, 0xfe, 0x00]).unwrap();
        assert!(load_state(&path).is_empty());
        let big = format!("{STATE_HEADER}\n{}", "1.2.3.4:5\n".repeat(2000));
        std::fs::write(&path, big).unwrap();
        assert!(load_state(&path).is_empty(), "a file over the size bound");
        std::fs::write(&path, format!("{STATE_HEADER}\n1.2.3.4:5\n\n")).unwrap();
        assert_eq!(load_state(&path), vec!["1.2.3.4:5".parse().unwrap()]);
    }

    #[tokio::test]
    async fn resolves_literals_and_skips_what_does_not_resolve() {
        let got = resolve_all(&[
            "127.0.0.1:6881".into(),
            "[::1]:6881".into(),
            "no-such-host.invalid:6881".into(),
            "not a host".into(),
        ])
        .await;
        assert_eq!(got, vec!["127.0.0.1:6881".parse().unwrap()]);
    }

    #[tokio::test]
    async fn torrents_with_the_same_settings_share_a_node() {
        let settings = |bootstrap: &[&str]| DhtSettings {
            bootstrap: bootstrap.iter().map(ToString::to_string).collect(),
            port: 0,
            state_file: None,
        };
        let a = Dht::shared(settings(&[]), &[]).await.unwrap();
        let b = Dht::shared(settings(&[]), &[]).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_ne!(a.local_port(), 0);
        let other = Dht::shared(settings(&["127.0.0.1:9"]), &[]).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &other), "other settings, another node");
        let weak = Arc::downgrade(&a);
        drop((a, b));
        // The last handle stopped it.
        assert!(weak.upgrade().is_none());
    }
}
