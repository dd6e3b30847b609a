//! `TorrentSource`: a torrent's byte space (its files in metainfo order,
//! BEP 3) as a [`Source`], fetched piece by piece from the swarm, each
//! piece checked against its SHA-1 before a byte of it is handed on.

use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use dlm_core::CancellationToken;
use dlm_core::scheduler::{Availability, ConnId, Scheduler};
use dlm_core::{
    BodyStream, ByteRange, Capabilities, Context, Description, Error, ErrorKind, Probe, RangeSet,
    ReadRange, Result, Source, Storage, StoredBytes, SwarmStats,
};

use tokio::sync::OnceCell;

use crate::peer::{Bitfield, PeerHandle, PeerState};
use crate::picker::PiecePicker;
use crate::swarm::Swarm;
use crate::webseed::WebSeeds;
use crate::{Metainfo, TorrentConfig};

/// Attempts at one piece, each from another peer, before the chunk fails.
const PIECE_ATTEMPTS: usize = 4;

/// Bytes of pieces being assembled in memory at once, over all of a
/// download's connections (a piece is held whole until its SHA-1 is
/// checked, BEP 3): with large pieces (16–64 MiB) fewer pieces are in
/// flight, so memory stays bounded whatever the piece size and the number
/// of peers.
pub const PIECE_MEMORY_BYTES: u64 = 256 << 20;

/// The permits (KiB) a piece of `len` bytes takes from the piece memory,
/// never more than there are.
fn memory_permits(len: u64) -> u32 {
    len.div_ceil(1024).min(PIECE_MEMORY_BYTES / 1024) as u32
}

/// A torrent as a [`Source`].
///
/// `probe` reports the torrent's length, its piece length as the
/// alignment, its files, and the info-hash as the validator, from the
/// metainfo alone; data found on disk is checked against the piece hashes
/// ([`Source::verify_stored`]). The swarm is joined (announced to the
/// trackers, their peers and the configured ones connected) when the
/// storage is attached ([`Source::attach`]), with `left` known, so a
/// download already complete on disk needs no peer. `open` fetches the
/// pieces covering a range from peers that have them; a piece whose SHA-1
/// does not match bans the peer that sent it and is fetched from another.
///
/// Each engine connection downloads from one peer, so give the download as
/// many connections as [`TorrentConfig::max_peers`]
/// (`DownloadOptions::with_connections`); the engine's default of 8 uses
/// at most 8 peers at once. Peers connected meanwhile (re-announces,
/// incoming connections) are picked up by connections without a peer.
#[derive(Debug)]
pub struct TorrentSource {
    metainfo: Arc<Metainfo>,
    swarm: Arc<Swarm>,
    joined: OnceCell<()>,
    sequential: bool,
    /// Set by the picker while every missing piece is being fetched.
    endgame: Arc<AtomicBool>,
    /// Pieces being assembled, in KiB ([`PIECE_MEMORY_BYTES`] in all).
    piece_memory: Arc<tokio::sync::Semaphore>,
    /// The torrent's HTTP/FTP mirrors (BEP 19).
    web_seeds: Arc<WebSeeds>,
}

impl TorrentSource {
    /// A source for `metainfo`.
    pub fn new(metainfo: Metainfo, config: TorrentConfig) -> Self {
        let metainfo = Arc::new(metainfo);
        Self {
            sequential: config.sequential,
            swarm: Arc::new(Swarm::new(metainfo.clone(), config)),
            joined: OnceCell::new(),
            endgame: Arc::new(AtomicBool::new(false)),
            piece_memory: Arc::new(tokio::sync::Semaphore::new(
                (PIECE_MEMORY_BYTES / 1024) as usize,
            )),
            web_seeds: Arc::new(WebSeeds::new(metainfo.clone(), None)),
            metainfo,
        }
    }

    /// Serves the torrent's web seeds (BEP 19 `url-list`: HTTP(S) and FTP
    /// mirrors) through `registry`'s sources, as connections of the swarm:
    /// connections without a peer fetch whole pieces from them, every piece
    /// checked against its SHA-1. Without a registry, web seeds are ignored.
    pub fn with_registry(mut self, registry: dlm_core::ProtocolRegistry) -> Self {
        self.web_seeds = Arc::new(WebSeeds::new(self.metainfo.clone(), Some(registry)));
        self
    }

    /// Payload bytes the web seeds delivered, verified.
    pub fn web_seed_bytes(&self) -> u64 {
        self.web_seeds.delivered()
    }

    /// Joins the swarm once (announces, dials the first peers); a failed
    /// attempt is tried again by the next call. A torrent with usable web
    /// seeds joins even when no peer is found.
    async fn join(&self) -> Result<()> {
        self.joined
            .get_or_try_init(|| async {
                // With web seeds to start from, peers the DHT finds join later.
                match self.swarm.join(!self.web_seeds.usable()).await {
                    Err(e) if self.web_seeds.usable() => {
                        tracing::info!(error = %e, "no peer yet: downloading from the web seeds");
                        self.swarm.join_without_peers().await;
                        Ok(())
                    }
                    r => r,
                }
            })
            .await?;
        Ok(())
    }

    /// The torrent.
    pub fn metainfo(&self) -> &Metainfo {
        &self.metainfo
    }

    /// The connected peers: address, pieces, payload bytes each way.
    pub fn peers(&self) -> Vec<Arc<PeerState>> {
        self.swarm.peers()
    }

    /// Payload bytes uploaded to peers so far.
    pub fn uploaded(&self) -> u64 {
        self.swarm.uploads().uploaded()
    }

    /// The port peers can connect to (0 when not listening).
    pub fn listen_port(&self) -> u16 {
        self.swarm.port()
    }

    /// The upload limit, changeable while running (bytes/s).
    pub fn upload_limiter(&self) -> &dlm_core::RateLimiter {
        self.swarm.uploads().limiter()
    }

    /// Leaves the swarm: closes every connection and announces `stopped`
    /// (BEP 3), waiting at most 5 s for the tracker. Call it when done
    /// seeding; dropping the source stops without the announce.
    pub async fn shutdown(&self) {
        self.swarm.stop().await;
    }
}

impl Drop for TorrentSource {
    fn drop(&mut self) {
        self.swarm.abandon();
    }
}

/// How one peer's attempt at a piece ended.
enum Attempt {
    /// The piece, its SHA-1 checked.
    Good(Bytes),
    /// The peer sent a piece that fails its SHA-1.
    Bad,
    /// The fetch failed (connection, stall, cancel).
    Failed(crate::peer::PeerError),
}

async fn attempt(
    peer: &PeerHandle,
    m: &Metainfo,
    index: usize,
    next: &[(u32, u32)],
    idle: std::time::Duration,
    cancel: CancellationToken,
) -> Attempt {
    let len = m.piece_len(index) as u32;
    match peer
        .fetch(index as u32, len, next.to_vec(), idle, cancel)
        .await
    {
        Ok(bytes) if m.piece_matches(index, &bytes).await => Attempt::Good(bytes),
        Ok(_) => Attempt::Bad,
        Err(e) => Attempt::Failed(e),
    }
}

/// Settles what `peer` did with a piece: bans it for bad data.
fn judge(swarm: &Swarm, peer: &PeerHandle, index: usize, a: &Attempt) {
    match a {
        Attempt::Bad => {
            tracing::warn!(peer = %peer.addr(), piece = index, "piece failed its SHA-1: peer banned");
            swarm.ban(peer.addr());
        }
        Attempt::Failed(e) => tracing::debug!(error = %e, piece = index, "peer failed"),
        Attempt::Good(_) => {}
    }
}

/// Fetches piece `index` from the swarm, verified, trying other peers.
/// `held` is the peer that fetched the previous piece of this range (it may
/// have requested this one already); `req.next` are the pieces after it in
/// the range, which the peer requests ahead (up to `crate::peer::AHEAD_BYTES`)
/// while this one finishes and is written. In endgame a second, idle peer races for the
/// piece and the loser's requests are cancelled. Returns the piece and the
/// peer to keep for the next one.
async fn fetch_piece(
    swarm: &Swarm,
    m: &Metainfo,
    req: PieceRequest,
    mut held: Option<PeerHandle>,
) -> Result<(Bytes, Option<PeerHandle>)> {
    let index = req.index;
    let _memory = req
        .memory
        .acquire_many(memory_permits(m.piece_len(index)))
        .await
        .map_err(|_| Error::cancelled())?;
    let next: Vec<(u32, u32)> = req
        .next
        .clone()
        .map(|n| (n as u32, m.piece_len(n) as u32))
        .collect();
    // A connection without a peer of its own takes the piece from a web seed (BEP 19).
    if held.is_none() && !swarm.is_bound(req.conn) && req.web_seeds.has_free_slot() {
        match req.web_seeds.fetch_piece(index, &req.cancel).await {
            Some(Ok(bytes)) => return Ok((bytes, None)),
            Some(Err(e)) => tracing::debug!(piece = index, error = %e, "web seeds failed"),
            None => {}
        }
    }
    for _ in 0..PIECE_ATTEMPTS {
        let peer = match held.take() {
            Some(p) if p.has(index) && !p.state().is_closed() => p,
            other => {
                if let Some(p) = other {
                    swarm.give_back(&p);
                }
                match swarm.take(req.conn, index).await {
                    Some(p) => p,
                    None => break,
                }
            }
        };
        // A racer assembles a second copy of the piece: only with memory to spare.
        let racer_memory = req
            .endgame
            .load(Ordering::Relaxed)
            .then(|| {
                req.memory
                    .clone()
                    .try_acquire_many_owned(memory_permits(m.piece_len(index)))
                    .ok()
            })
            .flatten();
        let racer = racer_memory
            .as_ref()
            .and_then(|_| swarm.take_idle(index, peer.addr()));
        let Some(racer) = racer else {
            let a = attempt(&peer, m, index, &next, req.idle, CancellationToken::new()).await;
            judge(swarm, &peer, index, &a);
            if let Attempt::Good(bytes) = a {
                return Ok((bytes, Some(peer)));
            }
            swarm.give_back(&peer);
            continue;
        };
        let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
        let a = attempt(&peer, m, index, &next, req.idle, stop_a.clone());
        let b = attempt(&racer, m, index, &[], req.idle, stop_b.clone());
        tokio::pin!(a, b);
        let (first, first_is_a) = tokio::select! {
            r = &mut a => (r, true),
            r = &mut b => (r, false),
        };
        let (winner, loser, loser_stop) = if first_is_a {
            (&peer, &racer, &stop_b)
        } else {
            (&racer, &peer, &stop_a)
        };
        judge(swarm, winner, index, &first);
        let result = if let Attempt::Good(bytes) = first {
            loser_stop.cancel();
            Some((bytes, winner.clone()))
        } else {
            None
        };
        let second = if first_is_a { b.await } else { a.await };
        judge(swarm, loser, index, &second);
        let result = result.or(match second {
            Attempt::Good(bytes) => Some((bytes, loser.clone())),
            _ => None,
        });
        match result {
            Some((bytes, keep)) => {
                let other = if keep.addr() == peer.addr() {
                    &racer
                } else {
                    &peer
                };
                swarm.give_back(other);
                return Ok((bytes, Some(keep)));
            }
            None => {
                swarm.give_back(&peer);
                swarm.give_back(&racer);
            }
        }
    }
    // No peer has it (or none delivered it): the web seeds may.
    if let Some(r) = req.web_seeds.fetch_piece(index, &req.cancel).await {
        match r {
            Ok(bytes) => return Ok((bytes, None)),
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Network,
                    format!("no peer or web seed delivered piece {index}: {e}"),
                )
                .retryable());
            }
        }
    }
    Err(Error::new(
        ErrorKind::Network,
        format!("no connected peer delivered piece {index}"),
    )
    .retryable())
}

/// What [`fetch_piece`] needs besides the swarm.
struct PieceRequest {
    index: usize,
    /// The pieces after `index` in the range, to request ahead.
    next: std::ops::Range<usize>,
    conn: Option<ConnId>,
    idle: std::time::Duration,
    endgame: Arc<AtomicBool>,
    /// The download's piece memory ([`PIECE_MEMORY_BYTES`], in KiB permits).
    memory: Arc<tokio::sync::Semaphore>,
    /// The torrent's web seeds.
    web_seeds: Arc<WebSeeds>,
    /// Cancelled when the engine gives the range up.
    cancel: CancellationToken,
}

/// Gives the peer held by a range's reader back to the swarm when the
/// reader is dropped (the range ended or the engine moved on).
struct Held {
    swarm: Arc<Swarm>,
    peer: Option<PeerHandle>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(p) = self.peer.take() {
            self.swarm.give_back(&p);
        }
    }
}

impl Source for TorrentSource {
    fn identity(&self) -> String {
        format!("bittorrent:{}", self.metainfo.info_hash)
    }

    async fn probe(&self, _cx: &Context) -> Result<Probe> {
        let m = &self.metainfo;
        let caps = Capabilities::default()
            .with_ranges(true)
            .with_alignment(NonZeroU64::new(m.piece_length))
            // One engine connection per peer we may connect to: each is bound to one peer.
            .with_max_connections(NonZeroU32::new(self.swarm.max_peers() as u32));
        let mut probe = Probe::new(Some(m.total_length), caps);
        probe.caps.verifies = true;
        probe.etag = Some(format!("\"{}\"", m.info_hash));
        probe.file_name = Some(m.name.clone());
        let multi = m.files.len() > 1
            || m.files.first().is_some_and(|f| {
                f.path != std::path::Path::new(&m.name) || f.length != m.total_length
            });
        if multi {
            // A selection (DownloadOptions::selected_files) is applied by the engine.
            probe.files = m.file_spans(|_| true);
        }
        Ok(probe)
    }

    async fn open(&self, cx: &Context, range: ReadRange) -> Result<BodyStream> {
        self.join().await?;
        let m = self.metainfo.clone();
        let swarm = self.swarm.clone();
        let idle = self.swarm.idle_timeout();
        let conn = cx.conn;
        let endgame = self.endgame.clone();
        let memory = self.piece_memory.clone();
        let web_seeds = self.web_seeds.clone();
        let cancel = cx.cancel.clone();
        let start = range.start();
        let end = range.end().unwrap_or(m.total_length).min(m.total_length);
        let first = (start / m.piece_length) as usize;
        let last = end.div_ceil(m.piece_length) as usize;
        // Pieces a peer requests ahead of the one fetched (crate::peer::AHEAD_BYTES).
        let ahead_pieces = (crate::peer::AHEAD_BYTES / m.piece_length).max(1) as usize;
        let held = Held {
            swarm: swarm.clone(),
            peer: None,
        };
        let frames = futures::stream::unfold(Some((first, held)), move |state| {
            let m = m.clone();
            let swarm = swarm.clone();
            let endgame = endgame.clone();
            let memory = memory.clone();
            let web_seeds = web_seeds.clone();
            let cancel = cancel.clone();
            async move {
                let (index, mut held) = state?;
                let piece_start = m.piece_range(index).start;
                if piece_start >= end {
                    return None;
                }
                let req = PieceRequest {
                    index,
                    next: index + 1..last.min(index + 1 + ahead_pieces),
                    conn,
                    idle,
                    endgame,
                    memory,
                    web_seeds,
                    cancel,
                };
                match fetch_piece(&swarm, &m, req, held.peer.take()).await {
                    Ok((bytes, peer)) => {
                        held.peer = peer;
                        swarm.delivered(bytes.len() as u64);
                        let from = start.saturating_sub(piece_start) as usize;
                        let to = (end - piece_start).min(bytes.len() as u64) as usize;
                        Some((Ok(bytes.slice(from..to)), Some((index + 1, held))))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            }
        });
        Ok(Box::pin(frames))
    }

    /// The pieces of the peer bound to `conn`; every piece for a
    /// connection without a peer while a web seed is usable (BEP 19).
    fn availability(&self, conn: ConnId) -> Availability {
        match self.swarm.availability(conn) {
            Availability::Ranges(r) if r.is_empty() && self.web_seeds.usable() => {
                Availability::Whole
            }
            a => a,
        }
    }

    fn scheduler(&self, sequential: bool) -> Option<Box<dyn Scheduler>> {
        let picker = PiecePicker::new(
            self.metainfo.piece_length,
            self.metainfo.total_length,
            self.swarm.counts(),
            sequential || self.sequential,
        )
        // The picker decides endgame; fetches read it.
        .sharing_endgame(self.endgame.clone());
        Some(Box::new(picker))
    }

    /// Offers the verified pieces to peers and joins the swarm, announcing
    /// what is left.
    async fn attach(&self, storage: Storage) -> Result<()> {
        let m = &self.metainfo;
        let mut have = Bitfield::empty(m.piece_count());
        for i in 0..m.piece_count() {
            if storage.done.contains_range(m.piece_range(i)) {
                have.set(i);
            }
        }
        // `left` as announced (BEP 3): the bytes still to fetch, not those
        // of files left out of the selection.
        let mut had = storage.done.clone();
        for r in storage.skip.ranges() {
            had.insert(*r);
        }
        let wanted_left = m.total_length.saturating_sub(had.total_len());
        self.swarm.set_left(wanted_left);
        self.swarm.uploads().attach(storage.reader, &have, false);
        self.join().await
    }

    fn describe(&self) -> Option<Description> {
        let m = &self.metainfo;
        let mut f = vec![
            ("name".to_string(), m.name.clone()),
            ("info-hash".to_string(), m.info_hash.to_hex()),
            ("meta version".to_string(), m.meta_version.to_string()),
            (
                "pieces".to_string(),
                format!("{} × {} bytes", m.piece_count(), m.piece_length),
            ),
            (
                "private".to_string(),
                if m.private { "yes" } else { "no" }.to_string(),
            ),
        ];
        let padding = m.total_length - m.files.iter().map(|f| f.length).sum::<u64>();
        if padding > 0 {
            f.push((
                "padding".to_string(),
                format!("{padding} bytes between files (BEP 47/52, never written)"),
            ));
        }
        if let Some(v2) = m.info_hash_v2 {
            // BEP 52: the SHA-256 info-hash; its first 20 bytes name the v2 swarm.
            f.insert(2, ("info-hash v2".to_string(), hex::encode(v2)));
        }
        for (i, tier) in m.trackers.iter().enumerate() {
            f.push((format!("tracker tier {i}"), tier.join(", ")));
        }
        for u in &m.url_list {
            f.push(("web seed".to_string(), u.clone()));
        }
        if let Some(t) = m.creation_date {
            f.push(("created".to_string(), format!("{t} (Unix time)")));
        }
        if let Some(c) = &m.created_by {
            f.push(("created by".to_string(), c.clone()));
        }
        if let Some(c) = &m.comment {
            f.push(("comment".to_string(), c.clone()));
        }
        let files = m.file_spans(|_| true);
        Some(
            Description::new(f)
                .with_len(Some(m.total_length))
                .with_files(files),
        )
    }

    fn stored(&self, range: ByteRange) {
        // The last piece is in: tell the trackers now, not when seeding ends.
        if self.swarm.stored(range) {
            let swarm = self.swarm.clone();
            tokio::spawn(async move { swarm.announce_completed().await });
        }
    }

    /// Hashes every piece lying wholly in `ranges` against the metainfo
    /// (BEP 3) and returns the ones that match.
    async fn verify_stored(&self, stored: StoredBytes, ranges: RangeSet) -> Result<RangeSet> {
        let m = &self.metainfo;
        let pieces = crate::verify::verified_pieces(m, &stored, &ranges).await?;
        Ok(RangeSet::from_ranges(
            pieces.into_iter().map(|i| m.piece_range(i)),
        ))
    }

    fn swarm(&self) -> Option<SwarmStats> {
        let peers = self.swarm.peers();
        let total = self.metainfo.piece_count();
        let seeds = peers.iter().filter(|p| p.piece_count() == total).count();
        Some(
            SwarmStats::new(peers.len() as u32, self.uploaded())
                .with_seeds(seeds as u32)
                .with_pieces(
                    self.swarm.verified(),
                    self.swarm.uploads().have_count() as u64,
                    Some(total as u64),
                ),
        )
    }

    /// Announces `completed` when every byte arrived, then leaves the swarm
    /// (`stopped`, BEP 3) and lets go of the storage: the engine calls this
    /// last, after any seeding.
    async fn finish(&self, complete: bool) {
        self.swarm.finished(complete).await;
        self.swarm.stop().await;
    }
}
