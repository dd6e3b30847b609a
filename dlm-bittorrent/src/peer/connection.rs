//! `PeerConnection`: one TCP connection to a peer (BEP 3). It downloads
//! whole pieces with pipelined 16 KiB block requests, and on the same
//! connection serves the peer's requests from our verified pieces, applies
//! the choker's decisions and announces pieces we gain.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dlm_core::CancellationToken;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::transport::{self, OurHandshake};
use super::upload::BlockError;
use super::{Bitfield, PeerState, Uploads};
use crate::InfoHash;
use crate::extension::ut_metadata::{MetadataMessage, piece_of};
use crate::extension::ut_pex::PexMessage;
use crate::extension::{ExtendedHandshake, UT_METADATA_ID, UT_PEX_ID};
use crate::mse::Encryption;
use crate::tracker::PeerId;
use crate::utp::Transport;
use crate::wire::{BLOCK_LEN, HANDSHAKE_LEN, Handshake, Message, WireError};

/// Why a peer connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// Connecting, reading or writing failed.
    #[error("peer {addr}: {source}")]
    Io {
        /// The peer.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The peer broke the protocol.
    #[error("peer {addr}: {source}")]
    Wire {
        /// The peer.
        addr: SocketAddr,
        /// What it did.
        source: WireError,
    },
    /// The peer sent nothing useful for too long (choked us, or stalled).
    #[error("peer {addr}: nothing for {secs} s")]
    Stalled {
        /// The peer.
        addr: SocketAddr,
        /// How long, in seconds.
        secs: u64,
    },
    /// The peer does not have the piece.
    #[error("peer {addr} does not have piece {piece}")]
    Missing {
        /// The peer.
        addr: SocketAddr,
        /// The piece.
        piece: u32,
    },
    /// The fetch was called off (another peer delivered the piece first).
    #[error("peer {addr}: fetch cancelled")]
    Cancelled {
        /// The peer.
        addr: SocketAddr,
    },
    /// The Message Stream Encryption handshake failed, or our
    /// `bittorrent.encryption` policy refused the peer.
    #[error("peer {addr}: {source}")]
    Encryption {
        /// The peer.
        addr: SocketAddr,
        /// What went wrong.
        source: crate::mse::MseError,
    },
}

impl PeerError {
    /// Whether the connection is still usable after this error.
    pub fn keeps_connection(&self) -> bool {
        matches!(self, Self::Missing { .. } | Self::Cancelled { .. })
    }
}

/// A peer's byte stream: TCP, or anything layered on a transport (an
/// encrypted stream, MSE; a uTP socket, BEP 29).
pub trait PeerIo: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug> PeerIo for T {}

/// A connection's stream, whatever carries it.
pub type PeerStream = Box<dyn PeerIo>;

/// A handshaken connection to a peer.
#[derive(Debug)]
pub struct PeerConnection {
    stream: PeerStream,
    buf: BytesMut,
    remote: Handshake,
    state: Arc<PeerState>,
    uploads: Arc<Uploads>,
    /// The peer chokes us.
    choked: bool,
    /// We told the peer we are interested.
    interested: bool,
    /// We choke the peer (what we last told it).
    choking: bool,
    pieces: usize,
    /// The pieces after the one being fetched, in order (at most
    /// [`AHEAD_BYTES`] of them): requested while the current piece finishes
    /// and while the connection waits for its next fetch, so the request
    /// pipeline does not drain between pieces.
    ahead: VecDeque<PartialPiece>,
    /// Requests sent and not yet answered.
    outstanding: usize,
    /// The peer's requests waiting to be served, oldest first.
    requests: VecDeque<Request>,
    /// Extension messages to send (metadata answers, BEP 9), oldest first.
    ext_out: VecDeque<Message>,
    /// How much of our `gained` log the peer has been told of (`have`s).
    told: usize,
    /// When we last sent anything (keep-alives every two minutes, BEP 3).
    last_sent: Instant,
    /// When the peer last sent any bytes.
    last_received: Instant,
    /// Requests to keep in flight now.
    pipeline: usize,
    /// Payload rate from the peer, bytes/s (moving average).
    rate: f64,
    window_start: Instant,
    window_bytes: u64,
}

/// One block a peer asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Request {
    index: u32,
    begin: u32,
    length: u32,
    /// Tries while the piece was not readable yet.
    tries: u8,
}

/// Blocks requested at once from one peer, adapted to its measured rate:
/// enough to cover [`QUEUE_TIME`] of transfer, between these bounds
/// (libtorrent accepts up to 2000 queued requests, Transmission 512).
/// Measured with `scripts/bench-bittorrent` (512 MiB from two libtorrent
/// seeders on loopback, one round): a fixed 64 gave 191 MiB/s, a fixed
/// 160 gave 253 MiB/s.
const MIN_PIPELINE: usize = 16;
const MAX_PIPELINE: usize = 250;
/// The depth before the first rate measurement.
const START_PIPELINE: usize = 64;
/// Requests in flight cover this much of the peer's rate (libtorrent's
/// `request_queue_time` is 3 s; loopback and LAN peers need far less).
const QUEUE_TIME: f64 = 1.0;
/// Rate measurement window.
const RATE_WINDOW: Duration = Duration::from_millis(250);

/// Bytes of pieces requested ahead of the one being fetched, per
/// connection (always at least one piece): 4 MiB, as many as
/// `MAX_PIPELINE` (250) blocks, so a full pipeline never waits for the next
/// fetch.
pub const AHEAD_BYTES: u64 = 4 << 20;

/// Spare room kept in the read buffer before each read, so one read can
/// take several blocks (a block message is 16 KiB and 13 bytes).
const READ_ROOM: usize = 64 << 10;

/// Requests from one peer queued at most (libtorrent's default
/// `max_allowed_in_request_queue` is 2000; Transmission keeps 512 — ours
/// are served as they come, so a short queue is plenty).
const MAX_QUEUED_REQUESTS: usize = 512;

/// Metadata requests (BEP 9) from one peer queued at most; more are dropped.
const MAX_QUEUED_EXTENSION_MESSAGES: usize = 64;

/// A request for a piece not readable yet is tried again after this long,
/// at most [`MAX_TRIES`] times.
const RETRY: Duration = Duration::from_millis(100);
const MAX_TRIES: u8 = 50;

/// Keep-alive period: BEP 3 drops connections silent for two minutes.
const KEEPALIVE: Duration = Duration::from_secs(90);

/// A connection on which the peer sent no byte at all (not even a
/// keep-alive) for this long is closed: 180 s, above the two-minute
/// keep-alive period of BEP 3 that libtorrent, Transmission and aria2 keep
/// (libtorrent's own `peer_timeout` is 120 s).
///
/// This is the only limit on a connection with nothing to exchange: as in
/// libtorrent, a peer that is neither interesting nor interested (both
/// seeds, or a leecher we have nothing for while seeding) is kept while it
/// keeps the connection alive. Waiting for a piece is bounded apart, by the
/// fetch's `idle` (`TorrentConfig::idle_timeout`), where only blocks count:
/// see [`PeerConnection::fetch_piece_then`].
pub(crate) const SILENCE_TIMEOUT: Duration = Duration::from_secs(180);

impl PeerConnection {
    /// Connects to `addr`, runs the Message Stream Encryption handshake as
    /// `encryption` says (with our BitTorrent handshake as its initial
    /// payload; under `Prefer` a peer that drops it is dialled again in
    /// plaintext) and exchanges handshakes (BEP 3), all within `timeout`,
    /// then sends our bitfield when we have pieces.
    ///
    /// # Errors
    /// [`PeerError::Io`] when the connection fails; [`PeerError::Wire`] for
    /// a handshake from another swarm or not BitTorrent at all;
    /// [`PeerError::Encryption`] when MSE fails or `encryption` refuses
    /// the peer.
    pub async fn connect(
        state: Arc<PeerState>,
        uploads: Arc<Uploads>,
        info_hash: InfoHash,
        peer_id: PeerId,
        encryption: Encryption,
        timeout: Duration,
    ) -> Result<Self, PeerError> {
        Self::connect_via(
            state, uploads, info_hash, peer_id, encryption, timeout, None,
        )
        .await
    }

    /// As [`PeerConnection::connect`], by TCP or, when `utp` is given, by
    /// TCP and uTP (BEP 29) as [`crate::utp::race`] says.
    pub(crate) async fn connect_via(
        state: Arc<PeerState>,
        uploads: Arc<Uploads>,
        info_hash: InfoHash,
        peer_id: PeerId,
        encryption: Encryption,
        timeout: Duration,
        utp: Option<&crate::utp::UtpSocket>,
    ) -> Result<Self, PeerError> {
        let addr = state.addr();
        let started = Instant::now();
        let ours = Handshake::ours(info_hash, peer_id).encode();
        let (stream, order, how) =
            transport::dial(addr, info_hash, &ours, encryption, timeout, utp).await?;
        // One limit for connecting and handshaking together.
        let left = timeout.saturating_sub(started.elapsed());
        let r = Self::handshake(
            stream,
            order,
            state.clone(),
            uploads.clone(),
            info_hash,
            peer_id,
            left,
        )
        .await;
        match (r, utp) {
            // A peer that closes a TCP connection before the handshake
            // (TCP turned off) may still take uTP (BEP 29).
            (Err(e), Some(socket)) if how == Transport::Tcp && transport::worth_utp(&e) => {
                let left = timeout.saturating_sub(started.elapsed());
                tracing::debug!(%addr, error = %e, "handshake failed over TCP, trying uTP");
                let Ok((stream, order, _)) =
                    transport::dial_utp(addr, info_hash, &ours, encryption, left, socket).await
                else {
                    return Err(e);
                };
                let left = timeout.saturating_sub(started.elapsed());
                Self::handshake(stream, order, state, uploads, info_hash, peer_id, left)
                    .await
                    .map_err(|_| e)
            }
            (r, _) => r,
        }
    }

    /// Answers a peer that connected to us: a plaintext handshake or
    /// Message Stream Encryption, as `encryption` allows, then reads its
    /// handshake (which must name `info_hash`), sends ours and our
    /// bitfield, all within `timeout`.
    ///
    /// # Errors
    /// As [`PeerConnection::connect`].
    pub async fn accept(
        stream: impl PeerIo + 'static,
        state: Arc<PeerState>,
        uploads: Arc<Uploads>,
        info_hash: InfoHash,
        peer_id: PeerId,
        encryption: Encryption,
        timeout: Duration,
    ) -> Result<Self, PeerError> {
        let addr = state.addr();
        let started = Instant::now();
        let stream =
            transport::answer(Box::new(stream), addr, info_hash, encryption, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        Self::handshake(
            stream,
            OurHandshake::Answer,
            state,
            uploads,
            info_hash,
            peer_id,
            left,
        )
        .await
    }

    /// Exchanges handshakes (BEP 3) within `timeout`: the side that
    /// connected sends first (or sent it as MSE's initial payload, `order`).
    /// Then sends our bitfield.
    async fn handshake(
        mut stream: PeerStream,
        order: OurHandshake,
        state: Arc<PeerState>,
        uploads: Arc<Uploads>,
        info_hash: InfoHash,
        peer_id: PeerId,
        timeout: Duration,
    ) -> Result<Self, PeerError> {
        let addr = state.addr();
        let io = |source| PeerError::Io { addr, source };
        let go = async {
            if order == OurHandshake::First {
                let ours = Handshake::ours(info_hash, peer_id).encode();
                stream.write_all(&ours).await.map_err(io)?;
            }
            let mut hs = [0u8; HANDSHAKE_LEN];
            stream.read_exact(&mut hs).await.map_err(io)?;
            let remote =
                Handshake::decode(&hs, None).map_err(|source| PeerError::Wire { addr, source })?;
            // A hybrid torrent (BEP 52) is one swarm under either info-hash.
            if remote.info_hash != info_hash && !uploads.is_swarm(remote.info_hash) {
                return Err(PeerError::Wire {
                    addr,
                    source: WireError::WrongInfoHash(remote.info_hash),
                });
            }
            if order == OurHandshake::Answer {
                // Answer with the info-hash the peer asked for (BEP 3).
                let ours = Handshake::ours(remote.info_hash, peer_id).encode();
                stream.write_all(&ours).await.map_err(io)?;
            }
            Ok::<_, PeerError>(remote)
        };
        let remote = tokio::time::timeout(timeout, go)
            .await
            .map_err(|_| stalled(addr, timeout))??;
        Self::start(stream, remote, state, uploads).await
    }

    async fn start(
        stream: PeerStream,
        remote: Handshake,
        state: Arc<PeerState>,
        uploads: Arc<Uploads>,
    ) -> Result<Self, PeerError> {
        let pieces = state.pieces().len();
        let mut c = Self {
            stream,
            buf: BytesMut::with_capacity(64 << 10),
            remote,
            state,
            choked: true,
            interested: false,
            choking: true,
            pieces,
            ahead: VecDeque::new(),
            outstanding: 0,
            requests: VecDeque::new(),
            ext_out: VecDeque::new(),
            told: uploads.gained_len(),
            uploads,
            last_sent: Instant::now(),
            last_received: Instant::now(),
            pipeline: START_PIPELINE,
            rate: 0.0,
            window_start: Instant::now(),
            window_bytes: 0,
        };
        if c.remote.supports_extensions() {
            let hs = c.extended_handshake();
            c.send(&hs).await?;
        }
        let ours = c.uploads.pieces();
        if ours.count() > 0 {
            c.send(&Message::Bitfield(Bytes::copy_from_slice(ours.as_bytes())))
                .await?;
        }
        Ok(c)
    }

    /// Our extended handshake (BEP 10): `ut_metadata` (BEP 9) with the
    /// info dictionary's size, `ut_pex` (BEP 11) unless the torrent is
    /// private (BEP 27), our port and client, and our request queue size.
    fn extended_handshake(&self) -> Message {
        let m = self.uploads.metainfo();
        let mut h = ExtendedHandshake::default();
        if !m.info_bytes.is_empty() {
            h.m.insert("ut_metadata".into(), i64::from(UT_METADATA_ID));
            h.metadata_size = Some(m.info_bytes.len() as i64);
        }
        if !m.private {
            h.m.insert("ut_pex".into(), i64::from(UT_PEX_ID));
        }
        let port = self.uploads.listen_port();
        h.p = (port != 0).then_some(i64::from(port));
        h.v = Some(serde_bytes::ByteBuf::from(crate::CLIENT_NAME.as_bytes()));
        h.reqq = Some(MAX_QUEUED_REQUESTS as i64);
        Message::Extended {
            id: 0,
            payload: Bytes::from(h.encode()),
        }
    }

    /// Handles an extension message (BEP 10): the peer's handshake, a
    /// metadata request (BEP 9, answered from our info dictionary), or
    /// peers it exchanges (BEP 11, kept for the swarm; never for a private
    /// torrent, BEP 27). What is not understood is ignored.
    fn note_extended(&mut self, id: u8, payload: &Bytes) {
        let addr = self.state.addr();
        match id {
            0 => match ExtendedHandshake::decode(payload) {
                Ok(h) => self.state.extensions().handshake(&h),
                Err(e) => tracing::debug!(peer = %addr, error = %e, "extended handshake ignored"),
            },
            UT_METADATA_ID => {
                let their_id = self.state.extensions().ut_metadata;
                let piece = match MetadataMessage::decode(payload) {
                    Ok(MetadataMessage::Request { piece }) => piece,
                    Ok(_) => return,
                    Err(e) => {
                        tracing::debug!(peer = %addr, error = %e, "ut_metadata message ignored");
                        return;
                    }
                };
                if their_id == 0 || self.ext_out.len() >= MAX_QUEUED_EXTENSION_MESSAGES {
                    return;
                }
                let info = &self.uploads.metainfo().info_bytes;
                let reply = match piece_of(info, piece) {
                    Some(data) => MetadataMessage::Data {
                        piece,
                        total_size: info.len() as u64,
                        data,
                    },
                    None => MetadataMessage::Reject { piece },
                };
                self.ext_out.push_back(Message::Extended {
                    id: their_id,
                    payload: Bytes::from(reply.encode()),
                });
            }
            UT_PEX_ID if !self.uploads.metainfo().private => match PexMessage::decode(payload) {
                Ok(m) => self.state.extensions().received(m),
                Err(e) => tracing::debug!(peer = %addr, error = %e, "ut_pex message ignored"),
            },
            _ => {}
        }
    }

    /// The peer's address.
    pub fn addr(&self) -> SocketAddr {
        self.state.addr()
    }

    /// The peer's handshake.
    pub fn remote(&self) -> &Handshake {
        &self.remote
    }

    /// What the swarm knows of this peer.
    pub fn state(&self) -> &Arc<PeerState> {
        &self.state
    }

    /// Whether the peer said it has piece `index`.
    pub fn has(&self, index: usize) -> bool {
        self.state.has(index)
    }

    async fn send(&mut self, m: &Message) -> Result<(), PeerError> {
        self.send_all(std::slice::from_ref(m)).await
    }

    /// Sends `ms` in one write.
    async fn send_all(&mut self, ms: &[Message]) -> Result<(), PeerError> {
        if ms.is_empty() {
            return Ok(());
        }
        let mut out = BytesMut::new();
        for m in ms {
            m.encode(&mut out);
        }
        self.last_sent = Instant::now();
        self.stream
            .write_all(&out)
            .await
            .map_err(|source| PeerError::Io {
                addr: self.state.addr(),
                source,
            })
    }

    /// Reads whatever the peer sent into the buffer, waiting at most `wait`;
    /// `false` when nothing came in time. Cancel-safe.
    async fn fill(&mut self, wait: Duration) -> Result<bool, PeerError> {
        let addr = self.state.addr();
        // Moves a partial message to the front when the buffer is ours alone.
        self.buf.reserve(READ_ROOM);
        match tokio::time::timeout(wait, self.stream.read_buf(&mut self.buf)).await {
            Err(_) => Ok(false),
            Ok(Ok(0)) => Err(PeerError::Io {
                addr,
                source: std::io::ErrorKind::UnexpectedEof.into(),
            }),
            Ok(Ok(_)) => {
                self.last_received = Instant::now();
                Ok(true)
            }
            Ok(Err(source)) => Err(PeerError::Io { addr, source }),
        }
    }

    /// The next complete message in the buffer, noted; `None` when more
    /// bytes are needed.
    fn decode(&mut self) -> Result<Option<Message>, PeerError> {
        let addr = self.state.addr();
        let m = Message::decode(&mut self.buf, self.pieces.div_ceil(8))
            .map_err(|source| PeerError::Wire { addr, source })?;
        if let Some(m) = &m {
            self.note(m)?;
        }
        Ok(m)
    }

    /// Reads the next message, waiting at most `idle` for the peer, while
    /// serving its requests and applying the choker in between.
    async fn next(&mut self, idle: Duration) -> Result<Message, PeerError> {
        let never = CancellationToken::new();
        let mut quiet = Duration::ZERO;
        match self.next_or_cancel(idle, &mut quiet, &never).await? {
            Some(m) => Ok(m),
            None => Err(stalled(self.state.addr(), idle)),
        }
    }

    /// Updates what we know of the peer from a message.
    fn note(&mut self, m: &Message) -> Result<(), PeerError> {
        match m {
            Message::Choke => self.choked = true,
            Message::Unchoke => self.choked = false,
            Message::Interested => self.state.interested_in_us.store(true, Ordering::Relaxed),
            Message::NotInterested => self.state.interested_in_us.store(false, Ordering::Relaxed),
            Message::Have(i) => self.state.set_have(*i as usize),
            Message::Bitfield(b) => {
                let pieces = Bitfield::from_bytes(b, self.pieces).ok_or(PeerError::Wire {
                    addr: self.state.addr(),
                    source: WireError::BadLength {
                        id: 5,
                        len: b.len() as u32,
                    },
                })?;
                self.state.set_pieces(pieces);
            }
            // BEP 6 (fast extension): have all / have none.
            Message::Unknown { id: 0x0e } => {
                let mut all = Bitfield::empty(self.pieces);
                all.fill();
                self.state.set_pieces(all);
            }
            Message::Request {
                index,
                begin,
                length,
            } => {
                // BEP 3: requests from a choked peer are discarded.
                if self.choking || self.requests.len() >= MAX_QUEUED_REQUESTS {
                    tracing::debug!(peer = %self.state.addr(), piece = index, choking = self.choking, "request discarded");
                } else {
                    self.requests.push_back(Request {
                        index: *index,
                        begin: *begin,
                        length: *length,
                        tries: 0,
                    });
                }
            }
            Message::Cancel {
                index,
                begin,
                length,
            } => self
                .requests
                .retain(|r| (r.index, r.begin, r.length) != (*index, *begin, *length)),
            Message::Piece { block, .. } => {
                self.state
                    .downloaded
                    .fetch_add(block.len() as u64, Ordering::Relaxed);
            }
            Message::Extended { id, payload } => self.note_extended(*id, payload),
            Message::HashRequest(r) => self.note_hash_request(r),
            _ => {}
        }
        Ok(())
    }

    /// Answers a hash request (BEP 52) from the piece layer of the file
    /// whose `pieces root` it names, with the uncle hashes its proof layers
    /// ask for; a `hash reject` when we have no piece layer for that file
    /// (a file of one piece has none: its root is its only hash), the
    /// request does not fit the file's tree, or asks for block hashes.
    /// Queued as extension answers are, at most
    /// [`MAX_QUEUED_EXTENSION_MESSAGES`].
    fn note_hash_request(&mut self, r: &crate::wire::HashRequest) {
        if self.ext_out.len() >= MAX_QUEUED_EXTENSION_MESSAGES {
            return;
        }
        let answer = self
            .uploads
            .piece_tree(&r.pieces_root)
            .and_then(|t| t.answer(r.base_layer, r.index, r.length, r.proof_layers));
        tracing::debug!(peer = %self.state.addr(), base_layer = r.base_layer, index = r.index, length = r.length, answered = answer.is_some(), "hash request");
        self.ext_out.push_back(match answer {
            Some(hashes) => Message::Hashes {
                request: *r,
                hashes,
            },
            None => Message::HashReject(*r),
        });
    }

    /// Our side of the conversation: applies the choker's decision, sends
    /// `have` for pieces gained, serves queued requests, keeps alive.
    async fn service(&mut self) -> Result<(), PeerError> {
        while let Some(m) = self.ext_out.pop_front() {
            self.send(&m).await?;
        }
        let pex = {
            let mut e = self.state.extensions();
            let id = e.ut_pex;
            e.outbox.take().filter(|_| id != 0).map(|m| (id, m))
        };
        if let Some((id, m)) = pex {
            self.send(&Message::Extended {
                id,
                payload: Bytes::from(m.encode()),
            })
            .await?;
        }
        let choke = self.state.choke_wanted.load(Ordering::Relaxed);
        if choke != self.choking {
            self.choking = choke;
            if choke {
                self.requests.clear();
                self.send(&Message::Choke).await?;
            } else {
                self.send(&Message::Unchoke).await?;
            }
        }
        let (gained, told) = self.uploads.gained_since(self.told);
        self.told = told;
        for index in gained {
            // No `have` for a piece the peer has: it cannot want it.
            if !self.state.has(index as usize) {
                tracing::trace!(peer = %self.state.addr(), piece = index, "have");
                self.send(&Message::Have(index)).await?;
            }
        }
        while let Some(mut r) = self.requests.pop_front() {
            match self.uploads.block(r.index, r.begin, r.length).await {
                Ok(block) => {
                    let n = block.len() as u64;
                    self.send(&Message::Piece {
                        index: r.index,
                        begin: r.begin,
                        block,
                    })
                    .await?;
                    self.state.uploaded.fetch_add(n, Ordering::Relaxed);
                }
                Err(BlockError::Invalid) => {
                    tracing::debug!(peer = %self.state.addr(), piece = r.index, begin = r.begin, "request ignored: not a block we have");
                }
                Err(BlockError::NotYet) => {
                    r.tries += 1;
                    if r.tries < MAX_TRIES {
                        self.requests.push_front(r);
                    } else {
                        tracing::debug!(peer = %self.state.addr(), piece = r.index, "request dropped: piece unreadable");
                    }
                    break;
                }
            }
        }
        if self.last_sent.elapsed() >= KEEPALIVE {
            self.send(&Message::KeepAlive).await?;
        }
        Ok(())
    }

    /// One turn of an idle connection: serves the peer, then waits (at
    /// most until a keep-alive is due) for its next bytes or a wake-up from
    /// the swarm. Blocks that arrive for the piece requested ahead are kept.
    /// Cancel-safe between turns only when dropped while waiting, which is
    /// where the task's `select!` drops it.
    pub(crate) async fn serve_turn(&mut self) -> Result<(), PeerError> {
        while let Some(m) = self.decode()? {
            match m {
                Message::Piece {
                    index,
                    begin,
                    block,
                } => {
                    if let Some(a) = self.ahead.iter_mut().find(|a| a.index == index)
                        && a.place(begin, &block)
                    {
                        self.outstanding = self.outstanding.saturating_sub(1);
                    }
                }
                // The peer dropped every request: ask again once it unchokes us.
                Message::Choke => self.rewind_all(None),
                _ => {}
            }
        }
        if !self.choked {
            self.request_more(None).await?;
        }
        self.service().await
    }

    /// Requests blocks of `cur`, then of the pieces ahead, until
    /// `self.pipeline` requests are in flight; sent in one write.
    async fn request_more(&mut self, cur: Option<&mut PartialPiece>) -> Result<(), PeerError> {
        let mut out = Vec::new();
        let mut want = self.pipeline.saturating_sub(self.outstanding);
        for p in cur.into_iter().chain(self.ahead.iter_mut()) {
            if want == 0 {
                break;
            }
            while want > 0 && p.requested < p.blocks.len() {
                let (begin, length) = p.blocks[p.requested];
                let skip = p.received[p.requested];
                p.requested += 1;
                if !skip {
                    out.push(Message::Request {
                        index: p.index,
                        begin,
                        length,
                    });
                    want -= 1;
                }
            }
        }
        self.outstanding += out.len();
        self.send_all(&out).await
    }

    /// Forgets what was requested of `cur` and the pieces ahead (a choke
    /// dropped every request): the missing blocks are asked for again.
    fn rewind_all(&mut self, cur: Option<&mut PartialPiece>) {
        for p in cur.into_iter().chain(self.ahead.iter_mut()) {
            p.rewind();
        }
        self.outstanding = 0;
    }

    /// Waits for the peer's next bytes, a wake-up, or the retry/keep-alive
    /// time. Cancel-safe.
    ///
    /// # Errors
    /// [`PeerError::Stalled`] once the peer has sent nothing at all for
    /// [`SILENCE_TIMEOUT`]; I/O errors.
    pub(crate) async fn wait(&mut self) -> Result<(), PeerError> {
        let state = self.state.clone();
        let silent = self.last_received.elapsed();
        if silent >= SILENCE_TIMEOUT {
            return Err(stalled(state.addr(), SILENCE_TIMEOUT));
        }
        let wait = if self.requests.is_empty() {
            KEEPALIVE.saturating_sub(self.last_sent.elapsed())
        } else {
            RETRY
        }
        .min(SILENCE_TIMEOUT - silent);
        tokio::select! {
            r = self.fill(wait.max(Duration::from_millis(1))) => r.map(|_| ()),
            () = state.wake.notified() => Ok(()),
        }
    }

    /// Reads messages until the peer has said what it has (its bitfield, or
    /// anything else after it), at most `idle`.
    pub async fn wait_for_pieces(&mut self, idle: Duration) -> Result<(), PeerError> {
        let deadline = Instant::now() + idle;
        while self.state.piece_count() == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.next(left).await {
                Ok(_) => {}
                Err(PeerError::Stalled { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Downloads piece `index` of `len` bytes: interested, wait for unchoke,
    /// pipelined 16 KiB requests, blocks placed by offset. Re-requests what a
    /// choke dropped. Fails when nothing arrives for `idle`.
    ///
    /// # Errors
    /// [`PeerError::Missing`] when the peer lacks the piece; other
    /// [`PeerError`]s when the connection fails or stalls.
    pub async fn fetch_piece(
        &mut self,
        index: u32,
        len: u32,
        idle: Duration,
    ) -> Result<Bytes, PeerError> {
        self.fetch_piece_then(index, len, &[], idle, &CancellationToken::new())
            .await
    }

    /// As [`PeerConnection::fetch_piece`], and once every block of this
    /// piece is requested, goes on requesting blocks of the pieces in `next`
    /// (`(index, length)`, in order; those this peer has, at most
    /// [`AHEAD_BYTES`] of them), also while the connection waits for its
    /// next fetch, so the pipeline never drains between pieces. A later
    /// call for one of them continues with what already arrived; pieces
    /// ahead that a call no longer lists are dropped and their requests
    /// cancelled. When `cancel` fires, the blocks still requested are
    /// cancelled (BEP 3 `cancel`, as in endgame) and
    /// [`PeerError::Cancelled`] is returned.
    ///
    /// Only blocks we asked for count as the peer answering: a peer that
    /// keeps us choked, or unchokes us and then sends keep-alives, `have`s
    /// or anything else but our blocks for `idle` fails the fetch with
    /// [`PeerError::Stalled`], and the connection is closed (libtorrent's
    /// `request_timeout` does the same to a peer that sends no requested
    /// data). Time spent serving the peer's own requests is not counted.
    ///
    /// # Errors
    /// As [`PeerConnection::fetch_piece`].
    pub async fn fetch_piece_then(
        &mut self,
        index: u32,
        len: u32,
        next: &[(u32, u32)],
        idle: Duration,
        cancel: &CancellationToken,
    ) -> Result<Bytes, PeerError> {
        let addr = self.state.addr();
        if !self.has(index as usize) {
            return Err(PeerError::Missing { addr, piece: index });
        }
        if !self.interested {
            self.send(&Message::Interested).await?;
            self.interested = true;
        }
        if self.window_start.elapsed() > 4 * RATE_WINDOW {
            // Idle since the last window: time spent idle is not the peer's rate.
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
        let mut cur = match self
            .ahead
            .iter()
            .position(|a| a.index == index && a.len == len)
        {
            Some(i) => self
                .ahead
                .remove(i)
                .unwrap_or_else(|| PartialPiece::new(index, len)),
            None => PartialPiece::new(index, len),
        };
        self.plan_ahead(index, next).await?;
        // Requests sent for pieces given up on may still be answered: ignored below.
        self.outstanding = cur.in_flight()
            + self
                .ahead
                .iter()
                .map(PartialPiece::in_flight)
                .sum::<usize>();
        // Time waited since the last block we asked for.
        let mut quiet = Duration::ZERO;
        while !cur.is_complete() {
            if cancel.is_cancelled() {
                self.cancel_requests(Some(&cur)).await?;
                return Err(PeerError::Cancelled { addr });
            }
            if self.choked {
                self.next_or_cancel(idle, &mut quiet, cancel).await?;
                if !self.choked {
                    // A choke dropped every request: ask again for what is missing.
                    self.rewind_all(Some(&mut cur));
                }
                continue;
            }
            self.request_more(Some(&mut cur)).await?;
            match self.next_or_cancel(idle, &mut quiet, cancel).await? {
                Some(Message::Piece {
                    index: i,
                    begin,
                    block,
                }) => {
                    let target = if i == cur.index {
                        Some(&mut cur)
                    } else {
                        self.ahead.iter_mut().find(|a| a.index == i)
                    };
                    if let Some(t) = target
                        && t.place(begin, &block)
                    {
                        self.outstanding = self.outstanding.saturating_sub(1);
                        self.measure(block.len());
                        quiet = Duration::ZERO;
                    }
                }
                Some(Message::Choke) => self.rewind_all(Some(&mut cur)),
                _ => {}
            }
        }
        Ok(cur.into_bytes())
    }

    /// Makes the pieces ahead those of `next` this peer has (keeping what
    /// already arrived for them), at most [`AHEAD_BYTES`] and at least one
    /// piece; the requests still in flight for pieces dropped are cancelled.
    async fn plan_ahead(&mut self, index: u32, next: &[(u32, u32)]) -> Result<(), PeerError> {
        let mut old = std::mem::take(&mut self.ahead);
        let mut bytes = 0u64;
        for &(i, l) in next {
            if i == index || !self.has(i as usize) {
                continue;
            }
            if !self.ahead.is_empty() && bytes + u64::from(l) > AHEAD_BYTES {
                break;
            }
            bytes += u64::from(l);
            let p = match old.iter().position(|a| a.index == i && a.len == l) {
                Some(k) => old.remove(k).unwrap_or_else(|| PartialPiece::new(i, l)),
                None => PartialPiece::new(i, l),
            };
            self.ahead.push_back(p);
        }
        let mut cancels = Vec::new();
        for p in &old {
            p.cancels(&mut cancels);
        }
        self.send_all(&cancels).await
    }

    /// Counts `n` payload bytes towards the rate and resizes the pipeline
    /// every [`RATE_WINDOW`].
    fn measure(&mut self, n: usize) {
        self.window_bytes += n as u64;
        let elapsed = self.window_start.elapsed();
        if elapsed < RATE_WINDOW {
            return;
        }
        let sample = self.window_bytes as f64 / elapsed.as_secs_f64();
        self.rate = if self.rate == 0.0 {
            sample
        } else {
            0.7 * self.rate + 0.3 * sample
        };
        self.window_start = Instant::now();
        self.window_bytes = 0;
        let want = (self.rate * QUEUE_TIME / f64::from(BLOCK_LEN)) as usize;
        self.pipeline = want.clamp(MIN_PIPELINE, MAX_PIPELINE);
    }

    /// The next message, or `None` once `cancel` fires; fails once `quiet`
    /// (time spent waiting, carried over from earlier calls until the
    /// caller resets it on a useful message) reaches `idle`: bytes alone,
    /// such as keep-alives, do not reset it. While waiting, our side goes
    /// on: requests are served, `have`s sent and choke decisions applied as
    /// the swarm wakes us, even while the peer chokes us and is silent.
    async fn next_or_cancel(
        &mut self,
        idle: Duration,
        quiet: &mut Duration,
        cancel: &CancellationToken,
    ) -> Result<Option<Message>, PeerError> {
        let state = self.state.clone();
        // Only time spent waiting for the peer counts: serving its requests
        // (which an upload limit may slow) does not count against it.
        loop {
            if let Some(m) = self.decode()? {
                return Ok(Some(m));
            }
            // Only the read below can be interrupted, never a write.
            self.service().await?;
            let left = idle.saturating_sub(*quiet);
            if left.is_zero() {
                return Err(stalled(state.addr(), idle));
            }
            let wait = if self.requests.is_empty() {
                left
            } else {
                left.min(RETRY)
            };
            let waiting = Instant::now();
            tokio::select! {
                r = self.fill(wait) => {
                    r?;
                    *quiet += waiting.elapsed();
                }
                () = state.wake.notified() => *quiet += waiting.elapsed(),
                () = cancel.cancelled() => return Ok(None),
            }
        }
    }

    /// Withdraws the requests still unanswered for `cur` and the pieces
    /// ahead (BEP 3 `cancel`), and forgets the pieces ahead.
    async fn cancel_requests(&mut self, cur: Option<&PartialPiece>) -> Result<(), PeerError> {
        let mut cancels = Vec::new();
        for p in cur.into_iter().chain(self.ahead.iter()) {
            p.cancels(&mut cancels);
        }
        self.ahead.clear();
        self.outstanding = 0;
        self.send_all(&cancels).await
    }
}

fn stalled(addr: SocketAddr, t: Duration) -> PeerError {
    PeerError::Stalled {
        addr,
        secs: t.as_secs(),
    }
}

/// A piece being assembled from its blocks.
#[derive(Debug)]
struct PartialPiece {
    index: u32,
    len: u32,
    /// The bytes from the piece's start up to the furthest block placed;
    /// blocks placed in order are appended, a gap left by a block placed
    /// further on is zero-filled until its own block arrives.
    data: BytesMut,
    blocks: Vec<(u32, u32)>,
    received: Vec<bool>,
    /// Blocks before this one have been requested (or had arrived).
    requested: usize,
    /// Blocks received.
    done: usize,
}

impl PartialPiece {
    fn new(index: u32, len: u32) -> Self {
        let blocks: Vec<(u32, u32)> = (0..len)
            .step_by(BLOCK_LEN as usize)
            .map(|b| (b, BLOCK_LEN.min(len - b)))
            .collect();
        Self {
            index,
            len,
            // Allocated by the first block: a piece requested ahead may never get one.
            data: BytesMut::new(),
            received: vec![false; blocks.len()],
            blocks,
            requested: 0,
            done: 0,
        }
    }

    /// Stores a block; whether it was one we still needed.
    fn place(&mut self, begin: u32, block: &[u8]) -> bool {
        let slot = (begin / BLOCK_LEN) as usize;
        let fits = begin.is_multiple_of(BLOCK_LEN)
            && self
                .blocks
                .get(slot)
                .is_some_and(|(_, l)| *l as usize == block.len());
        if !fits || self.received[slot] {
            return false;
        }
        if self.data.capacity() == 0 {
            self.data.reserve(self.len as usize);
        }
        let (begin, end) = (begin as usize, begin as usize + block.len());
        if begin > self.data.len() {
            self.data.resize(begin, 0);
        }
        if begin == self.data.len() {
            self.data.extend_from_slice(block);
        } else {
            self.data[begin..end].copy_from_slice(block);
        }
        self.received[slot] = true;
        self.done += 1;
        true
    }

    /// Every block arrived.
    fn is_complete(&self) -> bool {
        self.done == self.blocks.len()
    }

    /// The whole piece, once complete.
    fn into_bytes(self) -> Bytes {
        debug_assert_eq!(self.data.len(), self.len as usize);
        self.data.freeze()
    }

    /// Blocks requested and not received.
    fn in_flight(&self) -> usize {
        let requested = self.requested.min(self.blocks.len());
        self.received[..requested].iter().filter(|r| !**r).count()
    }

    /// Appends a BEP 3 `cancel` for each block requested and not received.
    fn cancels(&self, out: &mut Vec<Message>) {
        for slot in 0..self.requested.min(self.blocks.len()) {
            if !self.received[slot] {
                let (begin, length) = self.blocks[slot];
                out.push(Message::Cancel {
                    index: self.index,
                    begin,
                    length,
                });
            }
        }
    }

    /// Forgets what was requested (after a choke): ask again for the missing blocks.
    fn rewind(&mut self) {
        self.requested = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(slot: u32, len: usize) -> Vec<u8> {
        vec![slot as u8 + 1; len]
    }

    #[test]
    fn blocks_in_any_order_make_the_piece() {
        let len = 2 * BLOCK_LEN + 100;
        for order in [[0u32, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut p = PartialPiece::new(7, len);
            for slot in order {
                let l = if slot == 2 { 100 } else { BLOCK_LEN as usize };
                assert!(p.place(slot * BLOCK_LEN, &block(slot, l)));
            }
            assert!(p.is_complete());
            let data = p.into_bytes();
            let mut want = block(0, BLOCK_LEN as usize);
            want.extend(block(1, BLOCK_LEN as usize));
            want.extend(block(2, 100));
            assert_eq!(&data[..], &want[..], "order {order:?}");
        }
    }

    #[test]
    fn duplicate_misaligned_and_wrong_size_blocks_are_refused() {
        let mut p = PartialPiece::new(0, 2 * BLOCK_LEN);
        assert!(p.place(0, &block(0, BLOCK_LEN as usize)));
        assert!(!p.place(0, &block(0, BLOCK_LEN as usize)), "duplicate");
        assert!(!p.place(1, &block(1, BLOCK_LEN as usize)), "misaligned");
        assert!(!p.place(BLOCK_LEN, &block(1, 10)), "short");
        assert!(
            !p.place(2 * BLOCK_LEN, &block(2, BLOCK_LEN as usize)),
            "past the end"
        );
        assert!(!p.is_complete());
    }

    #[test]
    fn in_flight_and_cancels_cover_requested_blocks_not_received() {
        let mut p = PartialPiece::new(3, 4 * BLOCK_LEN);
        p.requested = 3;
        assert!(p.place(BLOCK_LEN, &block(1, BLOCK_LEN as usize)));
        assert_eq!(p.in_flight(), 2);
        let mut cancels = Vec::new();
        p.cancels(&mut cancels);
        let begins: Vec<u32> = cancels
            .iter()
            .map(|m| match m {
                Message::Cancel {
                    index: 3, begin, ..
                } => *begin,
                other => panic!("not a cancel: {other:?}"),
            })
            .collect();
        assert_eq!(begins, vec![0, 2 * BLOCK_LEN]);
        p.rewind();
        assert_eq!(p.in_flight(), 0);
    }
}
