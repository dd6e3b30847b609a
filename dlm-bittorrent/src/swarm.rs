//! `Swarm`: the peers of one torrent. It finds them (trackers, given
//! addresses, the DHT for public torrents, peers that connect to our
//! listening port), keeps each
//! connection running on its own task, binds one peer to each engine
//! connection, lends peers to whoever needs a piece they have, chokes and
//! unchokes uploads, and re-announces at the tracker's interval.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use dlm_core::CancellationToken;
use dlm_core::scheduler::{Availability, ConnId};
use dlm_core::{ByteRange, RangeSet};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::choker::{Candidate, Choker};
use crate::peer::{Bans, PeerConnection, PeerHandle, PeerState, PieceCounts, Uploads};
use crate::port_mapping::{MappedPort, PortMapping, Transport};
use crate::tracker::{AnnounceEvent, AnnounceRequest, PeerId, TrackerTiers};
use crate::{Metainfo, TorrentConfig, TorrentError};

/// The longest wait for the `completed` and `stopped` announces.
const ANNOUNCE_AT_END: Duration = Duration::from_secs(5);

/// Re-announce at most this often, whatever the tracker says.
const MIN_REANNOUNCE: Duration = Duration::from_secs(30);

/// Peer exchange messages go to each peer this often (BEP 11: at most once
/// a minute).
const PEX_INTERVAL_TICKS: u64 = 60;

/// A tracker's announce interval is used up to this long (BEP 3 leaves it
/// to the tracker; an hour bounds a hostile or broken value).
const MAX_REANNOUNCE: Duration = Duration::from_secs(3600);

/// While no tracker or given peer yields one, [`Swarm::join`] waits this
/// long for the DHT's first peers (BEP 5) before failing with "no peers".
const DHT_FIRST_PEERS: Duration = Duration::from_secs(30);

/// DHT lookups and announces repeat this often (BEP 5 nodes keep an
/// announce for about 30 minutes; libtorrent re-announces every 15).
const DHT_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// A DHT lookup that found nothing while no peer is connected is retried
/// after this, doubling up to [`DHT_INTERVAL`].
const DHT_RETRY: Duration = Duration::from_secs(5);

/// Port mapping reports queued per subscriber of [`Swarm::mapped_ports`].
const MAPPED_QUEUE: usize = 16;

/// Connections and who uses them.
#[derive(Debug, Default)]
struct Pool {
    peers: HashMap<SocketAddr, PeerHandle>,
    /// Peers lent to a fetch.
    lent: HashSet<SocketAddr>,
    /// The peer each engine connection downloads from.
    bound: HashMap<ConnId, SocketAddr>,
    /// Peers being dialled or handshaking.
    dialing: HashSet<SocketAddr>,
    /// Peers never connected to again: by IP for bad data, and ourselves.
    banned: Bans,
    /// Peers we unchoke.
    unchoked: HashSet<SocketAddr>,
    /// Each peer's pieces as byte ranges, with the piece count they were
    /// built from.
    ranges: HashMap<SocketAddr, (usize, RangeSet)>,
    /// Why the last connection attempt failed (for "none could be reached").
    last_error: Option<String>,
}

impl Pool {
    /// Forgets connections that ended.
    fn prune(&mut self) {
        let gone: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, h)| h.state().is_closed())
            .map(|(a, _)| *a)
            .collect();
        for a in gone {
            self.forget(a);
        }
    }

    /// Drops everything kept about the peer at `a`, closing its connection.
    fn forget(&mut self, a: SocketAddr) {
        if let Some(h) = self.peers.remove(&a) {
            h.state().close();
        }
        self.lent.remove(&a);
        self.unchoked.remove(&a);
        self.ranges.remove(&a);
        self.bound.retain(|_, b| *b != a);
    }

    fn idle_with(&self, piece: usize) -> impl Iterator<Item = &PeerHandle> {
        self.peers
            .values()
            .filter(move |h| !self.lent.contains(&h.addr()) && h.has(piece))
    }
}

/// The peers of one torrent.
#[derive(Debug)]
pub(crate) struct Swarm {
    metainfo: Arc<Metainfo>,
    config: TorrentConfig,
    peer_id: PeerId,
    counts: Arc<PieceCounts>,
    uploads: Arc<Uploads>,
    pool: Mutex<Pool>,
    returned: Notify,
    /// Stops the background tasks (listener, announces, choker).
    stop: CancellationToken,
    /// The port we listen on (0: not listening), as announced.
    port: AtomicU16,
    /// Verified payload bytes received this session.
    downloaded: AtomicU64,
    /// Pieces received and verified.
    verified: AtomicU64,
    /// `completed` was announced (once, BEP 3).
    completed_sent: std::sync::atomic::AtomicBool,
    /// Bytes still missing, for announces.
    left: AtomicU64,
    tiers: tokio::sync::Mutex<Option<TrackerTiers>>,
    /// The DHT task was started (once per swarm).
    dht_started: std::sync::atomic::AtomicBool,
    /// The LSD task (BEP 14) was started.
    lsd_started: std::sync::atomic::AtomicBool,
    /// The uTP socket (BEP 29) every uTP connection of this swarm uses,
    /// once bound (see [`crate::utp`]).
    utp: std::sync::OnceLock<crate::utp::UtpSocket>,
    /// Ports mapped on the NAT gateway for this swarm (see
    /// [`crate::port_mapping`]), removed when it stops.
    port_mappings: Mutex<Vec<PortMapping>>,
    /// Each mapping the gateway grants, for [`Swarm::mapped_ports`].
    mapped: tokio::sync::broadcast::Sender<MappedPort>,
}

impl Swarm {
    pub(crate) fn new(metainfo: Arc<Metainfo>, config: TorrentConfig) -> Self {
        let counts = Arc::new(PieceCounts::new(metainfo.piece_count()));
        let uploads = Arc::new(Uploads::new(metainfo.clone(), config.upload_limit));
        Self {
            left: AtomicU64::new(metainfo.total_length),
            metainfo,
            config,
            peer_id: PeerId::random(),
            counts,
            uploads,
            pool: Mutex::new(Pool::default()),
            returned: Notify::new(),
            stop: CancellationToken::new(),
            port: AtomicU16::new(0),
            downloaded: AtomicU64::new(0),
            verified: AtomicU64::new(0),
            completed_sent: std::sync::atomic::AtomicBool::new(false),
            tiers: tokio::sync::Mutex::new(None),
            dht_started: std::sync::atomic::AtomicBool::new(false),
            lsd_started: std::sync::atomic::AtomicBool::new(false),
            utp: std::sync::OnceLock::new(),
            port_mappings: Mutex::new(Vec::new()),
            mapped: tokio::sync::broadcast::channel(MAPPED_QUEUE).0,
        }
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        self.config.idle_timeout
    }

    /// Most peers connected at once.
    pub(crate) fn max_peers(&self) -> usize {
        self.config.max_peers
    }

    /// How many peers each piece has, for the picker.
    pub(crate) fn counts(&self) -> Arc<PieceCounts> {
        self.counts.clone()
    }

    /// What we upload.
    pub(crate) fn uploads(&self) -> &Arc<Uploads> {
        &self.uploads
    }

    /// Live connections.
    pub(crate) fn connected(&self) -> usize {
        let mut p = self.pool();
        p.prune();
        p.peers.len()
    }

    /// Every live peer's state.
    pub(crate) fn peers(&self) -> Vec<Arc<PeerState>> {
        let mut p = self.pool();
        p.prune();
        p.peers.values().map(|h| h.state().clone()).collect()
    }

    /// The port peers can reach us on (0 when not listening).
    pub(crate) fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    /// A verified piece of `len` bytes arrived from the swarm.
    pub(crate) fn delivered(&self, len: u64) {
        self.downloaded.fetch_add(len, Ordering::Relaxed);
        let _ = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                Some(l.saturating_sub(len))
            });
        self.verified.fetch_add(1, Ordering::Relaxed);
    }

    /// The engine stored `range` of delivered bytes: pieces it completes are
    /// offered to every peer (`have`, BEP 3). Returns whether they were the
    /// last ones (we are a seed now).
    pub(crate) fn stored(&self, range: dlm_core::ByteRange) -> bool {
        let completed = self.uploads.stored(range);
        if completed.is_empty() {
            return false;
        }
        tracing::trace!(?completed, "offering pieces");
        for p in self.pool().peers.values() {
            p.state().wake.notify_one();
        }
        self.uploads.is_seed()
    }

    /// Pieces received and verified since the swarm started.
    pub(crate) fn verified(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }

    /// Bytes still missing, as announced.
    pub(crate) fn set_left(&self, left: u64) {
        self.left.store(left, Ordering::Relaxed);
    }

    fn request(&self, event: Option<AnnounceEvent>) -> AnnounceRequest {
        let left = self.left.load(Ordering::Relaxed);
        AnnounceRequest {
            info_hash: self.metainfo.info_hash,
            peer_id: self.peer_id,
            port: self.port().max(1),
            uploaded: self.uploads.uploaded(),
            downloaded: self.downloaded.load(Ordering::Relaxed),
            left,
            event,
            num_want: (left > 0 || event == Some(AnnounceEvent::Started))
                .then_some(self.config.max_peers as u32),
            key: self.peer_id.0[19] as u32,
        }
    }

    /// Announces `event`; the peers and the next interval on success.
    async fn announce(
        &self,
        event: Option<AnnounceEvent>,
    ) -> Result<(Vec<SocketAddr>, Duration), TorrentError> {
        let mut tiers = self.tiers.lock().await;
        let Some(tiers) = tiers.as_mut().filter(|t| !t.is_empty()) else {
            return Err(TorrentError::Tracker {
                tracker: "(none)".into(),
                message: "the torrent has no usable tracker".into(),
                retryable: false,
            });
        };
        let req = self.request(event);
        let (tracker, mut resp) = tiers.announce(&req).await?;
        tracing::debug!(%tracker, peers = resp.peers.len(), ?event, "announced");
        // A hybrid torrent joins its v2 swarm too (BEP 52: truncated SHA-256).
        for info_hash in self.metainfo.swarm_info_hashes().into_iter().skip(1) {
            let v2 = AnnounceRequest {
                info_hash,
                ..req.clone()
            };
            match tiers.announce(&v2).await {
                Ok((_, r)) => resp.peers.extend(r.peers),
                Err(e) => tracing::debug!(%info_hash, error = %e, "v2 announce failed"),
            }
        }
        let every =
            Duration::from_secs(u64::from(resp.interval.max(resp.min_interval.unwrap_or(0))))
                .clamp(MIN_REANNOUNCE, MAX_REANNOUNCE);
        Ok((resp.peers, every))
    }

    /// Sets up the torrent's trackers (BEP 12 tiers) for announces.
    ///
    /// # Errors
    /// [`TorrentError::Tracker`] when the HTTP client cannot be built.
    async fn use_trackers(&self) -> Result<(), TorrentError> {
        if self.metainfo.trackers.is_empty() {
            return Ok(());
        }
        let client = dlm_http::HttpClient::new(self.config.http.clone()).map_err(|e| {
            TorrentError::Tracker {
                tracker: "(http client)".into(),
                message: e.to_string(),
                retryable: false,
            }
        })?;
        *self.tiers.lock().await = Some(TrackerTiers::new(&self.metainfo.trackers, &client));
        Ok(())
    }

    /// Serves peers that connect to `listener` as a seeder: tells the
    /// trackers (`completed`, with what is left), then accepts peers under
    /// the choker until [`Swarm::stop`].
    ///
    /// # Errors
    /// As [`Swarm::use_trackers`]; a tracker that does not answer is only logged.
    pub(crate) async fn seed(self: &Arc<Self>, listener: TcpListener) -> Result<(), TorrentError> {
        if let Ok(a) = listener.local_addr() {
            self.map_port(Transport::Tcp, a);
            if self.config.utp {
                match crate::utp::UtpSocket::bind(a, self.stop.child_token()).await {
                    Ok(u) => {
                        self.use_utp(u);
                        self.map_port(Transport::Udp, a);
                    }
                    Err(e) => tracing::warn!(port = a.port(), error = %e, "no uTP: TCP only"),
                }
            }
        }
        self.serve_incoming(listener);
        self.start_dht(false);
        self.start_lsd();
        self.use_trackers().await?;
        if let Err(e) = self.announce(Some(AnnounceEvent::Completed)).await {
            tracing::warn!(error = %e, "announce failed");
        }
        Ok(())
    }

    /// Joins the swarm: listens for peers (when configured), announces
    /// `started` to the trackers (BEP 3, 12), connects to their peers and
    /// the configured ones up to `max_peers`, then keeps re-announcing,
    /// accepting peers and choking in the background until [`Swarm::stop`].
    ///
    /// # Errors
    /// [`TorrentError::Tracker`] when there are no peers at all: no tracker
    /// answered with any and none was given, or none could be reached.
    pub(crate) async fn join(self: &Arc<Self>, wait_for_dht: bool) -> Result<(), TorrentError> {
        // Listening starts at once (peers found through the DHT or the LAN
        // connect while we wait for them), and once: a retried join keeps it.
        if self.port() == 0
            && let Some(l) = self.listen().await
        {
            let port = l.local_addr().map_or(0, |a| a.port());
            if let Ok(a) = l.local_addr() {
                self.map_port(Transport::Tcp, a);
                // `listen` bound uTP's UDP twin on the same port, if any.
                if self.utp.get().is_some_and(|u| u.port() == port) {
                    self.map_port(Transport::Udp, a);
                }
            }
            self.port.store(port, Ordering::Relaxed);
            self.uploads.set_listen_port(port);
            tokio::spawn(self.clone().accept_loop(l));
        }
        self.start_dht(true);
        self.start_lsd();
        self.use_trackers().await?;
        let mut candidates = self.config.peers.clone();
        let mut tracker_error = None;
        let mut every = MAX_REANNOUNCE;
        if !self.metainfo.trackers.is_empty() {
            match self.announce(Some(AnnounceEvent::Started)).await {
                Ok((peers, e)) => {
                    candidates.extend(peers);
                    every = e;
                }
                Err(e) => tracker_error = Some(e),
            }
        }
        candidates = crate::tracker::dedup(candidates);
        let tried = candidates.len();
        if tried > 0 {
            self.dial_first(candidates).await;
        }
        // With nothing to dial at all, peers can still come from the DHT or
        // the LAN: wait for the first ones, unless nothing is missing (a
        // re-checked complete download) or the caller has other sources.
        let waited = self.connected() == 0
            && tried == 0
            && (self.uses_dht() || self.uses_lsd())
            && wait_for_dht
            && self.left.load(Ordering::Relaxed) > 0;
        if waited {
            // The DHT and LSD tasks dial what they find.
            self.wait_for_peers(DHT_FIRST_PEERS).await;
        }
        if self.connected() == 0 && tried == 0 {
            let dht = if waited && self.uses_dht() {
                format!(
                    ", and the DHT found none in {} s",
                    DHT_FIRST_PEERS.as_secs()
                )
            } else {
                String::new()
            };
            return Err(tracker_error.unwrap_or_else(|| TorrentError::Tracker {
                tracker: "(none)".into(),
                message: format!(
                    "no peers: the torrent has no tracker and no --peer was given{dht}"
                ),
                retryable: false,
            }));
        }
        if self.connected() == 0 {
            return Err(TorrentError::Tracker {
                tracker: "(peers)".into(),
                message: match self.pool().last_error.take() {
                    Some(e) => format!("none of {tried} peers could be reached (last: {e})"),
                    None => format!("none of {tried} peers could be reached"),
                },
                retryable: true,
            });
        }
        if tracker_error.is_none() && !self.metainfo.trackers.is_empty() {
            tokio::spawn(self.clone().announce_loop(every));
        }
        tokio::spawn(self.clone().choke_loop());
        Ok(())
    }

    /// Joins with no peer to dial (a torrent served by its web seeds,
    /// BEP 19, alone): listens, announces to the trackers that answer, and
    /// runs the choker, so peers found later still connect.
    pub(crate) async fn join_without_peers(self: &Arc<Self>) {
        self.start_dht(true);
        // `join` already listens when it can.
        tokio::spawn(self.clone().choke_loop());
        if self.use_trackers().await.is_ok() && !self.metainfo.trackers.is_empty() {
            tokio::spawn(self.clone().announce_loop(MIN_REANNOUNCE));
        }
    }

    /// Binds the listening port (when configured) and, with uTP on, its
    /// UDP twin (see [`crate::utp::bind`]); with uTP on and no UDP twin, a
    /// uTP socket for outgoing connections only.
    async fn listen(&self) -> Option<TcpListener> {
        let bound = match self.config.listen_port {
            Some(port) => crate::utp::bind(port, self.config.utp, &self.stop).await,
            None => None,
        };
        let (listener, utp) = match bound {
            Some((l, u)) => (Some(l), u),
            None => (None, None),
        };
        let utp = match utp {
            Some(u) => Some(u),
            None if self.config.utp => crate::utp::outgoing(&self.stop).await,
            None => None,
        };
        if let Some(u) = utp {
            self.use_utp(u);
        }
        listener
    }

    /// Keeps `bound` mapped on the NAT gateway for `transport` while the
    /// swarm runs, when [`TorrentConfig::port_mapping`] is on (see
    /// [`crate::port_mapping`]); what the gateway grants goes to
    /// [`Swarm::mapped_ports`]. Returns at once.
    fn map_port(self: &Arc<Self>, transport: Transport, bound: SocketAddr) {
        if !self.config.port_mapping {
            return;
        }
        let mut mappings = self
            .port_mappings
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock `stop` takes the mappings with.
        if self.stop.is_cancelled() {
            return;
        }
        let Some(mapping) = PortMapping::start(transport, bound) else {
            return;
        };
        let mut granted = mapping.watch();
        granted.mark_changed();
        let (tx, stop) = (self.mapped.clone(), self.stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    c = granted.changed() => if c.is_err() { return },
                }
                if let Some(m) = granted.borrow_and_update().clone() {
                    let _ = tx.send(m);
                }
            }
        });
        mappings.push(mapping);
    }

    /// Each port mapping the gateway grants this swarm from now on (a
    /// process-wide one, the DHT's, as well, also when granted before).
    pub(crate) fn mapped_ports(&self) -> tokio::sync::broadcast::Receiver<MappedPort> {
        self.mapped.subscribe()
    }

    /// Removes this swarm's port mappings from the gateway (those it
    /// shares, once their last user goes), at most
    /// [`crate::port_mapping::REMOVE_TIMEOUT`] for all.
    async fn release_port_mappings(&self) {
        let mappings = std::mem::take(
            &mut *self
                .port_mappings
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        futures::future::join_all(mappings.into_iter().map(PortMapping::release)).await;
    }

    fn use_utp(&self, socket: crate::utp::UtpSocket) {
        tracing::debug!(udp_port = socket.port(), "uTP on");
        let _ = self.utp.set(socket);
    }

    /// Whether engine connection `conn` has a peer bound to it.
    pub(crate) fn is_bound(&self, conn: Option<ConnId>) -> bool {
        conn.is_some_and(|c| self.pool().bound.contains_key(&c))
    }

    /// Whether this torrent uses Local Service Discovery (BEP 14):
    /// configured so, and not private (BEP 27).
    fn uses_lsd(&self) -> bool {
        self.config.lsd && !self.metainfo.private
    }

    /// Announces the torrent on the LAN (BEP 14) once we listen, and dials
    /// the peers that announce it (they may connect to us by themselves
    /// too), until the swarm stops.
    fn start_lsd(self: &Arc<Self>) {
        let port = self.port();
        if !self.uses_lsd() || port == 0 || self.lsd_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let lsd = match crate::lsd::Lsd::shared() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "no local service discovery");
                return;
            }
        };
        let (registration, mut found) = lsd.register(self.metainfo.info_hash, port);
        let swarm = self.clone();
        tokio::spawn(async move {
            let _registration = registration;
            loop {
                let peer = tokio::select! {
                    () = swarm.stop.cancelled() => return,
                    p = found.recv() => match p {
                        Some(p) => p,
                        None => return,
                    },
                };
                tracing::debug!(%peer, "peer from local service discovery");
                // A seeder dials too: a LAN peer announcing the torrent most
                // likely wants it (libtorrent's seeds do the same).
                swarm.dial_all(vec![peer]).await;
            }
        });
    }

    /// Whether this torrent uses the DHT: configured so, and not private
    /// (BEP 27: peers from the torrent's trackers only).
    fn uses_dht(&self) -> bool {
        self.config.dht && !self.metainfo.private
    }

    /// Starts the DHT task once (see [`Swarm::dht_loop`]) when the torrent
    /// uses the DHT; `lookups`: also look up peers while pieces are
    /// missing (a seeder only announces).
    fn start_dht(self: &Arc<Self>, lookups: bool) {
        if self.uses_dht() && !self.dht_started.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().dht_loop(lookups));
        }
    }

    /// Joins the process's DHT node (BEP 5), then until the swarm stops:
    /// looks up peers while pieces are missing (`lookups`) and dials them
    /// as they arrive, and announces our listening port (when we listen).
    /// Repeats every [`DHT_INTERVAL`], sooner ([`DHT_RETRY`], doubling)
    /// while no peer is connected or the announce failed. Nothing here
    /// holds up the download: it runs beside the trackers.
    async fn dht_loop(self: Arc<Self>, lookups: bool) {
        let settings = crate::dht::DhtSettings::from_config(&self.config);
        let node = tokio::select! {
            () = self.stop.cancelled() => return,
            n = crate::dht::Dht::shared(settings, &self.metainfo.nodes) => match n {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "no DHT");
                    return;
                }
            },
        };
        // A hybrid torrent is looked up and announced under both info-hashes (BEP 52).
        let info_hashes = self.metainfo.swarm_info_hashes();
        tracing::debug!(?info_hashes, udp_port = node.local_port(), "using the DHT");
        // The node is the process's: its mapping is shared the same way.
        self.map_port(
            Transport::Udp,
            SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, node.local_port())),
        );
        let mut retry = DHT_RETRY;
        loop {
            let missing = self.left.load(Ordering::Relaxed) > 0;
            let mut found = 0;
            for &info_hash in info_hashes.iter().filter(|_| lookups && missing) {
                let mut peers = node.get_peers(info_hash);
                loop {
                    let batch = tokio::select! {
                        () = self.stop.cancelled() => return,
                        b = futures::StreamExt::next(&mut peers) => match b {
                            Some(b) => b,
                            None => break,
                        },
                    };
                    found += batch.len();
                    let swarm = self.clone();
                    tokio::spawn(async move { swarm.dial_all(batch).await });
                }
                tracing::debug!(%info_hash, found, "DHT peers");
            }
            let port = self.port();
            let mut announce_failed = false;
            for &info_hash in info_hashes.iter().filter(|_| port != 0) {
                tokio::select! {
                    () = self.stop.cancelled() => return,
                    r = node.announce_peer(info_hash, port) => match r {
                        Ok(()) => tracing::debug!(%info_hash, port, "announced to the DHT"),
                        Err(e) => {
                            announce_failed = true;
                            tracing::debug!(%info_hash, error = %e, "DHT announce failed");
                        }
                    },
                }
            }
            let wait = if announce_failed || (lookups && missing && self.connected() == 0) {
                let w = retry;
                retry = (retry * 2).min(DHT_INTERVAL);
                w
            } else {
                retry = DHT_RETRY;
                DHT_INTERVAL
            };
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Waits until a peer that has pieces is connected, for at most `limit`.
    async fn wait_for_peers(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline && !self.stop.is_cancelled() {
            if self.peers().iter().any(|p| p.piece_count() > 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Serves peers that connect to `listener`, with the choker, until the
    /// swarm stops.
    fn serve_incoming(self: &Arc<Self>, listener: TcpListener) {
        if let Ok(a) = listener.local_addr() {
            self.port.store(a.port(), Ordering::Relaxed);
            self.uploads.set_listen_port(a.port());
        }
        tokio::spawn(self.clone().accept_loop(listener));
        tokio::spawn(self.clone().choke_loop());
    }

    /// Connects to the new ones among `addrs`, concurrently, up to `max_peers`.
    async fn dial_all(self: &Arc<Self>, addrs: Vec<SocketAddr>) {
        let addrs: Vec<SocketAddr> = {
            let mut p = self.pool();
            p.prune();
            let room = self
                .config
                .max_peers
                .saturating_sub(p.peers.len() + p.dialing.len());
            let fresh: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| {
                    !p.peers.contains_key(a) && !p.dialing.contains(a) && !p.banned.contains(a)
                })
                .take(room)
                .collect();
            p.dialing.extend(fresh.iter().copied());
            fresh
        };
        let attempts = addrs.iter().map(|addr| {
            self.establish(*addr, |state| {
                PeerConnection::connect_via(
                    state,
                    self.uploads.clone(),
                    self.metainfo.info_hash,
                    self.peer_id,
                    self.config.encryption,
                    self.config.connect_timeout,
                    self.utp.get(),
                )
            })
        });
        futures::future::join_all(attempts).await;
    }

    /// Handshakes with `addr` (already marked as dialing) through
    /// `handshake`, then adopts the connection or logs why not.
    async fn establish<F, Fut>(&self, addr: SocketAddr, handshake: F)
    where
        F: FnOnce(Arc<PeerState>) -> Fut,
        Fut: std::future::Future<Output = Result<PeerConnection, crate::peer::PeerError>>,
    {
        let r = handshake(Arc::new(PeerState::new(addr, self.counts.clone()))).await;
        self.pool().dialing.remove(&addr);
        match r {
            Ok(c) => self.adopt(c),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "peer not usable");
                self.pool().last_error = Some(e.to_string());
            }
        }
    }

    /// Dials `addrs` in the background and returns once one peer that has
    /// pieces is connected, or every attempt ended (bounded by the connect
    /// timeout plus the wait for a bitfield).
    async fn dial_first(self: &Arc<Self>, addrs: Vec<SocketAddr>) {
        let swarm = self.clone();
        let dialing = tokio::spawn(async move { swarm.dial_all(addrs).await });
        let deadline = tokio::time::Instant::now() + self.config.connect_timeout * 2;
        loop {
            let has_pieces = self.peers().iter().any(|p| p.piece_count() > 0);
            if has_pieces || tokio::time::Instant::now() >= deadline {
                return;
            }
            if dialing.is_finished() && self.connected() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs a handshaken connection and makes it available.
    fn adopt(&self, c: PeerConnection) {
        let addr = c.addr();
        if c.remote().peer_id == self.peer_id {
            // Ourselves, listed by the tracker: never again.
            self.pool().banned.ourselves(addr);
            return;
        }
        {
            let mut p = self.pool();
            if p.banned.contains(&addr) || p.peers.contains_key(&addr) {
                return;
            }
            p.peers.insert(addr, PeerHandle::spawn(c));
        }
        self.returned.notify_waiters();
    }

    /// Accepts peers on `listener` (TCP) and on the uTP socket (BEP 29),
    /// when there is one, and hands both to the same handshake.
    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let utp = self.utp.get().cloned();
        loop {
            let accepted = tokio::select! {
                () = self.stop.cancelled() => return,
                a = listener.accept() => a.map(|(s, a)| (Box::new(s) as crate::peer::PeerStream, a)),
                a = async { utp.as_ref()?.accept().await.ok() }, if utp.is_some() => match a {
                    Some((s, a)) => Ok((Box::new(s) as crate::peer::PeerStream, a)),
                    None => Err(std::io::Error::other("the uTP socket stopped")),
                },
            };
            let (stream, addr) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            {
                let mut p = self.pool();
                p.prune();
                if p.banned.contains(&addr)
                    || p.peers.contains_key(&addr)
                    || p.peers.len() + p.dialing.len() >= self.config.max_peers
                {
                    continue;
                }
                p.dialing.insert(addr);
            }
            let swarm = self.clone();
            tokio::spawn(async move {
                swarm
                    .establish(addr, |state| {
                        state.incoming.store(true, Ordering::Relaxed);
                        PeerConnection::accept(
                            stream,
                            state,
                            swarm.uploads.clone(),
                            swarm.metainfo.info_hash,
                            swarm.peer_id,
                            swarm.config.encryption,
                            swarm.config.connect_timeout,
                        )
                    })
                    .await;
            });
        }
    }

    async fn announce_loop(self: Arc<Self>, mut every: Duration) {
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            match self.announce(None).await {
                Ok((peers, e)) => {
                    every = e;
                    if self.left.load(Ordering::Relaxed) > 0 {
                        self.dial_all(peers).await;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "re-announce failed"),
            }
        }
    }

    async fn choke_loop(self: Arc<Self>) {
        let mut choker = Choker::new(self.config.upload_slots);
        let mut last: HashMap<SocketAddr, u64> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for n in 0u64.. {
            tokio::select! {
                () = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let seeding = self.uploads.is_seed();
            let peers = self.peers();
            // Tit-for-tat counts what a peer gave us; a seed, what it took.
            let totals: Vec<u64> = peers
                .iter()
                .map(|s| {
                    if seeding {
                        s.uploaded()
                    } else {
                        s.downloaded()
                    }
                })
                .collect();
            let candidates: Vec<Candidate> = peers
                .iter()
                .zip(&totals)
                .map(|(s, total)| Candidate {
                    addr: s.addr(),
                    interested: s.interested_in_us.load(Ordering::Relaxed),
                    rate: total.saturating_sub(last.get(&s.addr()).copied().unwrap_or(0)),
                })
                .collect();
            let mut unchoked = self.pool().unchoked.clone();
            if n.is_multiple_of(10) {
                unchoked = choker.round(&candidates);
                last = peers.iter().map(|s| s.addr()).zip(totals).collect();
            }
            choker.fill(&candidates, &mut unchoked);
            for s in &peers {
                let choke = !unchoked.contains(&s.addr());
                if s.choke_wanted.swap(choke, Ordering::Relaxed) != choke {
                    s.wake.notify_one();
                }
            }
            self.pool().unchoked = unchoked;
            if !self.metainfo.private {
                self.take_exchanged_peers(&peers);
                if n > 0 && n.is_multiple_of(PEX_INTERVAL_TICKS) {
                    self.exchange_peers(&peers);
                }
            }
        }
    }

    /// Dials the peers that connected peers told us of (BEP 11 `added`)
    /// while pieces are missing.
    fn take_exchanged_peers(self: &Arc<Self>, peers: &[Arc<PeerState>]) {
        let mut found = Vec::new();
        for s in peers {
            found.append(&mut s.extensions().inbox);
        }
        if found.is_empty() || self.left.load(Ordering::Relaxed) == 0 {
            return;
        }
        tracing::debug!(peers = found.len(), "peers from peer exchange");
        let swarm = self.clone();
        tokio::spawn(async move { swarm.dial_all(crate::tracker::dedup(found)).await });
    }

    /// Prepares each peer's next `ut_pex` message (BEP 11): the peers we
    /// are connected to that it was not told of yet, and those gone since.
    fn exchange_peers(&self, peers: &[Arc<PeerState>]) {
        use crate::extension::ut_pex::{FLAG_REACHABLE, FLAG_SEED, MAX_PEX_PEERS, PexMessage};
        let total = self.metainfo.piece_count();
        let current: HashMap<SocketAddr, u8> = peers
            .iter()
            .filter_map(|s| {
                let a = s.listen_addr()?;
                let flags = if s.piece_count() == total {
                    FLAG_SEED | FLAG_REACHABLE
                } else {
                    FLAG_REACHABLE
                };
                Some((a, flags))
            })
            .collect();
        for s in peers {
            let mut e = s.extensions();
            if e.ut_pex == 0 {
                continue;
            }
            let me = s.listen_addr();
            let added: Vec<(SocketAddr, u8)> = current
                .iter()
                .filter(|(a, _)| Some(**a) != me && !e.told.contains(a))
                .map(|(a, f)| (*a, *f))
                .take(MAX_PEX_PEERS)
                .collect();
            let dropped: Vec<SocketAddr> = e
                .told
                .iter()
                .filter(|a| !current.contains_key(a))
                .copied()
                .take(MAX_PEX_PEERS)
                .collect();
            if added.is_empty() && dropped.is_empty() {
                continue;
            }
            for a in &dropped {
                e.told.remove(a);
            }
            e.told.extend(added.iter().map(|(a, _)| *a));
            e.outbox = Some(PexMessage { added, dropped });
            drop(e);
            s.wake.notify_one();
        }
    }

    /// The pieces the peer bound to engine connection `conn` has, as byte
    /// ranges; binds an unbound peer (the one with most pieces) first. Empty
    /// while every peer is bound elsewhere.
    pub(crate) fn availability(&self, conn: ConnId) -> Availability {
        let mut p = self.pool();
        p.prune();
        let bound = p.bound.get(&conn).and_then(|a| p.peers.get(a)).cloned();
        let peer = bound.or_else(|| {
            let taken: HashSet<SocketAddr> = p.bound.values().copied().collect();
            let best = p
                .peers
                .values()
                .filter(|h| !taken.contains(&h.addr()))
                .max_by_key(|h| h.state().piece_count())
                .cloned()?;
            p.bound.insert(conn, best.addr());
            Some(best)
        });
        let Some(peer) = peer else {
            return Availability::Ranges(RangeSet::new());
        };
        // Rebuilt only when the peer's piece count changed (a `have`, its bitfield).
        let count = peer.state().piece_count();
        let set = match p.ranges.get(&peer.addr()) {
            Some((n, set)) if *n == count => set.clone(),
            _ => {
                let set = piece_ranges(&peer.state().pieces(), &self.metainfo);
                p.ranges.insert(peer.addr(), (count, set.clone()));
                set
            }
        };
        Availability::Ranges(set)
    }

    /// Lends a peer that has `piece` to engine connection `conn`: the one
    /// bound to it when it is free, else another free one (then bound to
    /// `conn`), waiting for one to come back. `None` when no live peer has it.
    pub(crate) async fn take(&self, conn: Option<ConnId>, piece: usize) -> Option<PeerHandle> {
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            {
                let mut p = self.pool();
                p.prune();
                let bound = conn
                    .and_then(|c| p.bound.get(&c))
                    .and_then(|a| p.peers.get(a))
                    .filter(|h| !p.lent.contains(&h.addr()) && h.has(piece))
                    .cloned();
                let pick = bound.or_else(|| {
                    let taken: HashSet<SocketAddr> = p.bound.values().copied().collect();
                    let mut free: Vec<&PeerHandle> = p.idle_with(piece).collect();
                    free.sort_by_key(|h| taken.contains(&h.addr()));
                    free.first().map(|h| (*h).clone())
                });
                if let Some(h) = pick {
                    p.lent.insert(h.addr());
                    if let Some(c) = conn {
                        p.bound.insert(c, h.addr());
                    }
                    return Some(h);
                }
                if !p.peers.values().any(|h| h.has(piece)) && p.dialing.is_empty() {
                    return None;
                }
            }
            tokio::select! {
                () = returned => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// A free peer other than `not` that has `piece`, without waiting (for
    /// racing the last pieces in endgame).
    pub(crate) fn take_idle(&self, piece: usize, not: SocketAddr) -> Option<PeerHandle> {
        let mut p = self.pool();
        p.prune();
        let h = p.idle_with(piece).find(|h| h.addr() != not).cloned()?;
        p.lent.insert(h.addr());
        Some(h)
    }

    /// Returns a lent peer.
    pub(crate) fn give_back(&self, peer: &PeerHandle) {
        self.pool().lent.remove(&peer.addr());
        self.returned.notify_waiters();
    }

    /// Drops the peer at `addr` for sending bad data and never connects to
    /// its IP address again, on any port; connections from that address on
    /// other ports are dropped too (see [`Bans`]).
    pub(crate) fn ban(&self, addr: SocketAddr) {
        let mut p = self.pool();
        p.banned.ban(addr);
        let same_ip: Vec<SocketAddr> = p
            .peers
            .keys()
            .filter(|a| p.banned.covers_ip(a))
            .copied()
            .collect();
        for a in same_ip {
            p.forget(a);
        }
        p.forget(addr);
    }

    /// The download ended: announces `completed` when it did complete.
    /// The swarm keeps serving peers until [`Swarm::stop`].
    pub(crate) async fn finished(&self, complete: bool) {
        if complete {
            self.announce_completed().await;
        }
    }

    /// Announces `completed` once (BEP 3): when the last piece is stored,
    /// or at the end of a download of some files only.
    pub(crate) async fn announce_completed(&self) {
        if !self.completed_sent.swap(true, Ordering::AcqRel) {
            self.left.store(0, Ordering::Relaxed);
            // Bounded like `stopped`: the download is done, and a dead
            // tracker must not hold up its completion.
            match tokio::time::timeout(
                ANNOUNCE_AT_END,
                self.announce(Some(AnnounceEvent::Completed)),
            )
            .await
            {
                Ok(Err(e)) => tracing::debug!(error = %e, "completed announce failed"),
                Err(_) => tracing::debug!("completed announce timed out"),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Leaves the swarm: stops the background tasks, drops every peer and
    /// announces `stopped` (at most [`ANNOUNCE_AT_END`]).
    pub(crate) async fn stop(&self) {
        if self.stop.is_cancelled() {
            return;
        }
        self.port_mappings_stop();
        self.uploads.detach();
        let peers: Vec<PeerHandle> = self.pool().peers.drain().map(|(_, h)| h).collect();
        for h in peers {
            h.state().close();
        }
        let announce =
            tokio::time::timeout(ANNOUNCE_AT_END, self.announce(Some(AnnounceEvent::Stopped)));
        let _ = tokio::join!(announce, self.release_port_mappings());
    }

    /// Cancels the swarm's tasks under the port mappings' lock, so no
    /// mapping starts after [`Swarm::release_port_mappings`] took them.
    fn port_mappings_stop(&self) {
        let _mappings = self
            .port_mappings
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.stop.cancel();
    }

    /// Stops the background tasks and closes every connection without
    /// announcing (the source was dropped, or a seeder stops).
    pub(crate) fn abandon(&self) {
        self.port_mappings_stop();
        // Dropped handles remove their mappings on tasks of their own.
        self.port_mappings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.uploads.detach();
        for (_, h) in self.pool().peers.drain() {
            h.state().close();
        }
    }
}

/// The byte ranges of the pieces in `have`.
fn piece_ranges(have: &crate::peer::Bitfield, m: &Metainfo) -> RangeSet {
    let mut set = RangeSet::new();
    let mut i = 0;
    while i < have.len() {
        if !have.has(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < have.len() && have.has(i) {
            i += 1;
        }
        set.insert(ByteRange::new(
            m.piece_range(start).start,
            m.piece_range(i - 1).end,
        ));
    }
    set
}
