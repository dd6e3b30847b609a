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
}

/// Blocks requested at once from one peer (libtorrent advertises 2000,
/// Transmission 512; 64 × 16 KiB = 1 MiB in flight fills a fast link).
const PIPELINE: usize = 64;

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
        let blocks: Vec<(u32, u32)> = (0..len)
            .step_by(BLOCK_LEN as usize)
            .map(|b| (b, BLOCK_LEN.min(len - b)))
            .collect();
        let mut piece = BytesMut::zeroed(len as usize);
        let mut received = vec![false; blocks.len()];
        let mut next_block = 0;
        let mut outstanding = 0usize;
        let mut done = 0;
        while done < blocks.len() {
            while self.choked {
                self.next(idle).await?;
                // A choke drops every request: ask again from the first missing block.
                next_block = received.iter().position(|r| !r).unwrap_or(blocks.len());
                outstanding = 0;
            }
            while outstanding < PIPELINE && next_block < blocks.len() {
                if !received[next_block] {
                    let (begin, length) = blocks[next_block];
                    self.send(&Message::Request {
                        index,
                        begin,
                        length,
                    })
                    .await?;
                    outstanding += 1;
                }
                next_block += 1;
            }
            match self.next(idle).await? {
                Message::Piece {
                    index: i,
                    begin,
                    block,
                } if i == index => {
                    let slot = (begin / BLOCK_LEN) as usize;
                    let fits = begin % BLOCK_LEN == 0
                        && blocks
                            .get(slot)
                            .is_some_and(|(_, l)| *l as usize == block.len());
                    if fits && !received[slot] {
                        piece[begin as usize..begin as usize + block.len()].copy_from_slice(&block);
                        received[slot] = true;
                        done += 1;
                    }
                    outstanding = outstanding.saturating_sub(1);
                }
                Message::Choke => {
                    next_block = received.iter().position(|r| !r).unwrap_or(blocks.len());
                    outstanding = 0;
                }
                _ => {}
            }
        }
        Ok(piece.freeze())
    }
}
