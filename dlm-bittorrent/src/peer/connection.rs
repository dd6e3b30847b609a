//! `PeerConnection`: one TCP connection to a peer (BEP 3) that downloads
//! whole pieces with pipelined 16 KiB block requests.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Bitfield;
use crate::InfoHash;
use crate::tracker::PeerId;
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
}

/// A handshaken connection to a peer.
#[derive(Debug)]
pub struct PeerConnection {
    addr: SocketAddr,
    stream: TcpStream,
    buf: BytesMut,
    remote: Handshake,
    have: Bitfield,
    choked: bool,
    interested: bool,
    pieces: usize,
    /// The next piece, already requested in part while the last one finished.
    ahead: Option<PartialPiece>,
    /// Requests sent and not yet answered.
    outstanding: usize,
}

/// Blocks requested at once from one peer: 160 × 16 KiB = 2.5 MiB in
/// flight. libtorrent accepts up to 2000 queued requests and Transmission
/// 512. Measured with `scripts/bench-bittorrent` (512 MiB from two libtorrent
/// seeders, one round): 64 gave 191 MiB/s, 160 gave 253 MiB/s (rqbit: 267-277).
const PIPELINE: usize = 160;

impl PeerConnection {
    /// Connects to `addr` and exchanges handshakes (BEP 3) within `timeout`.
    ///
    /// # Errors
    /// [`PeerError::Io`] when the connection fails; [`PeerError::Wire`] for
    /// a handshake from another swarm or not BitTorrent at all.
    pub async fn connect(
        addr: SocketAddr,
        info_hash: InfoHash,
        peer_id: PeerId,
        pieces: usize,
        timeout: Duration,
    ) -> Result<Self, PeerError> {
        let io = |source| PeerError::Io { addr, source };
        let go = async {
            let mut stream = TcpStream::connect(addr).await.map_err(io)?;
            let _ = stream.set_nodelay(true);
            stream
                .write_all(&Handshake::ours(info_hash, peer_id).encode())
                .await
                .map_err(io)?;
            let mut hs = [0u8; HANDSHAKE_LEN];
            stream.read_exact(&mut hs).await.map_err(io)?;
            let remote = Handshake::decode(&hs, Some(info_hash))
                .map_err(|source| PeerError::Wire { addr, source })?;
            Ok::<_, PeerError>((stream, remote))
        };
        let (stream, remote) =
            tokio::time::timeout(timeout, go)
                .await
                .map_err(|_| PeerError::Stalled {
                    addr,
                    secs: timeout.as_secs(),
                })??;
        Ok(Self {
            addr,
            stream,
            buf: BytesMut::with_capacity(64 << 10),
            remote,
            have: Bitfield::empty(pieces),
            choked: true,
            interested: false,
            pieces,
            ahead: None,
            outstanding: 0,
        })
    }

    /// The peer's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The peer's handshake.
    pub fn remote(&self) -> &Handshake {
        &self.remote
    }

    /// Whether the peer said it has piece `index`.
    pub fn has(&self, index: usize) -> bool {
        self.have.has(index)
    }

    async fn send(&mut self, m: &Message) -> Result<(), PeerError> {
        let mut out = BytesMut::new();
        m.encode(&mut out);
        self.stream
            .write_all(&out)
            .await
            .map_err(|source| PeerError::Io {
                addr: self.addr,
                source,
            })
    }

    /// Reads the next message, waiting at most `idle`.
    async fn next(&mut self, idle: Duration) -> Result<Message, PeerError> {
        let addr = self.addr;
        let bitfield_len = self.pieces.div_ceil(8);
        loop {
            if let Some(m) = Message::decode(&mut self.buf, bitfield_len)
                .map_err(|source| PeerError::Wire { addr, source })?
            {
                self.note(&m)?;
                return Ok(m);
            }
            let n = tokio::time::timeout(idle, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| PeerError::Stalled {
                    addr,
                    secs: idle.as_secs(),
                })?
                .map_err(|source| PeerError::Io { addr, source })?;
            if n == 0 {
                return Err(PeerError::Io {
                    addr,
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                });
            }
        }
    }

    /// Updates what we know of the peer from a message.
    fn note(&mut self, m: &Message) -> Result<(), PeerError> {
        match m {
            Message::Choke => self.choked = true,
            Message::Unchoke => self.choked = false,
            Message::Have(i) => self.have.set(*i as usize),
            Message::Bitfield(b) => {
                self.have = Bitfield::from_bytes(b, self.pieces).ok_or(PeerError::Wire {
                    addr: self.addr,
                    source: WireError::BadLength {
                        id: 5,
                        len: b.len() as u32,
                    },
                })?;
            }
            // BEP 6 (fast extension): have all / have none.
            Message::Unknown { id: 0x0e } => self.have.fill(),
            _ => {}
        }
        Ok(())
    }

    /// Reads messages until the peer has said what it has (its bitfield, or
    /// anything else after it), at most `idle`.
    pub async fn wait_for_pieces(&mut self, idle: Duration) -> Result<(), PeerError> {
        let deadline = tokio::time::Instant::now() + idle;
        while self.have.count() == 0 {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
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
        self.fetch_piece_then(index, len, None, idle).await
    }

    /// As [`PeerConnection::fetch_piece`], and once every block of this
    /// piece is requested, goes on requesting blocks of `next` (a piece this
    /// peer has), so the pipeline never drains between pieces. The next call
    /// for `next` continues with what already arrived.
    ///
    /// # Errors
    /// As [`PeerConnection::fetch_piece`].
    pub async fn fetch_piece_then(
        &mut self,
        index: u32,
        len: u32,
        next: Option<(u32, u32)>,
        idle: Duration,
    ) -> Result<Bytes, PeerError> {
        if !self.has(index as usize) {
            return Err(PeerError::Missing {
                addr: self.addr,
                piece: index,
            });
        }
        if !self.interested {
            self.send(&Message::Interested).await?;
            self.interested = true;
        }
        let mut cur = match self.ahead.take() {
            Some(a) if a.index == index && a.len == len => a,
            _ => PartialPiece::new(index, len),
        };
        let mut nxt = next
            .filter(|(i, _)| *i != index && self.has(*i as usize))
            .map(|(i, l)| PartialPiece::new(i, l));
        // Requests sent for a piece given up on may still be answered: ignored below.
        self.outstanding = cur.requested - cur.done.min(cur.requested);
        while cur.done < cur.blocks.len() {
            if self.choked {
                self.next(idle).await?;
                if !self.choked {
                    // A choke dropped every request: ask again for what is missing.
                    cur.rewind();
                    if let Some(n) = nxt.as_mut() {
                        n.rewind();
                    }
                    self.outstanding = 0;
                }
                continue;
            }
            while self.outstanding < PIPELINE {
                let target = if cur.requested < cur.blocks.len() {
                    &mut cur
                } else if let Some(n) = nxt.as_mut().filter(|n| n.requested < n.blocks.len()) {
                    n
                } else {
                    break;
                };
                let (begin, length) = target.blocks[target.requested];
                let index = target.index;
                let skip = target.received[target.requested];
                target.requested += 1;
                if !skip {
                    self.send(&Message::Request {
                        index,
                        begin,
                        length,
                    })
                    .await?;
                    self.outstanding += 1;
                }
            }
            match self.next(idle).await? {
                Message::Piece {
                    index: i,
                    begin,
                    block,
                } => {
                    let target = if i == cur.index {
                        Some(&mut cur)
                    } else {
                        nxt.as_mut().filter(|n| n.index == i)
                    };
                    if let Some(t) = target
                        && t.place(begin, &block)
                    {
                        self.outstanding = self.outstanding.saturating_sub(1);
                    }
                }
                Message::Choke => {
                    cur.rewind();
                    if let Some(n) = nxt.as_mut() {
                        n.rewind();
                    }
                    self.outstanding = 0;
                }
                _ => {}
            }
        }
        self.ahead = nxt;
        Ok(cur.data.freeze())
    }
}

/// A piece being assembled from its blocks.
#[derive(Debug)]
struct PartialPiece {
    index: u32,
    len: u32,
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
            data: BytesMut::zeroed(len as usize),
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
        self.data[begin as usize..begin as usize + block.len()].copy_from_slice(block);
        self.received[slot] = true;
        self.done += 1;
        true
    }

    /// Forgets what was requested (after a choke): ask again for the missing blocks.
    fn rewind(&mut self) {
        self.requested = 0;
    }
}
