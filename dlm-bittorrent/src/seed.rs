//! `Seeder`: serves a complete (or partly complete) torrent from disk to
//! peers that connect (BEP 3): the data is re-checked piece by piece first,
//! then a listening socket answers handshakes with our bitfield and serves
//! `request`s of up to 128 KiB from the verified pieces.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dlm_core::{FileSpan, MultiFileSink, Sink};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::peer::Bitfield;
use crate::tracker::PeerId;
use crate::wire::{HANDSHAKE_LEN, Handshake, MAX_REQUEST_LEN, Message};
use crate::{Metainfo, TorrentError};

/// A peer that sends nothing for this long is disconnected.
const PEER_IDLE: Duration = Duration::from_secs(120);

/// Serves one torrent's verified pieces.
#[derive(Debug)]
pub struct Seeder {
    metainfo: Arc<Metainfo>,
    storage: Arc<MultiFileSink>,
    have: Arc<Bitfield>,
    peer_id: PeerId,
    uploaded: Arc<AtomicU64>,
}

fn io(what: &str, e: std::io::Error) -> TorrentError {
    TorrentError::Io {
        what: what.to_string(),
        source: e,
    }
}

impl Seeder {
    /// Opens the torrent's files under `dir` (as a download into `dir`
    /// wrote them) and re-checks every piece; missing or wrong pieces are
    /// not offered.
    ///
    /// # Errors
    /// [`TorrentError::Io`] when the files cannot be opened.
    pub async fn open(metainfo: Metainfo, dir: PathBuf) -> Result<Self, TorrentError> {
        let spans: Vec<FileSpan> = metainfo
            .files
            .iter()
            .map(|f| FileSpan {
                path: f.path.clone(),
                offset: f.offset,
                len: f.length,
                wanted: true,
            })
            .collect();
        for f in &spans {
            if !dir.join(&f.path).is_file() {
                return Err(io(
                    &format!("opening {}", dir.join(&f.path).display()),
                    std::io::ErrorKind::NotFound.into(),
                ));
            }
        }
        let storage = MultiFileSink::new(dir, &metainfo.name, spans)
            .map_err(|e| TorrentError::InvalidTorrent(e.to_string()))?;
        let mut have = Bitfield::empty(metainfo.piece_count());
        for i in 0..metainfo.piece_count() {
            let start = i as u64 * metainfo.piece_length;
            let len = metainfo.piece_len(i) as u32;
            if let Ok(data) = storage.read_at(start, len).await
                && <[u8; 20]>::from(Sha1::digest(&data)) == metainfo.pieces[i]
            {
                have.set(i);
            }
        }
        Ok(Self {
            metainfo: Arc::new(metainfo),
            storage: Arc::new(storage),
            have: Arc::new(have),
            peer_id: PeerId::random(),
            uploaded: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Pieces verified on disk.
    pub fn pieces_verified(&self) -> usize {
        self.have.count()
    }

    /// Bytes uploaded so far.
    pub fn uploaded(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    /// Accepts peers on `listener` until `until` resolves (a time limit, a
    /// ratio reached, Ctrl-C), serving each on its own task.
    pub async fn serve(&self, listener: TcpListener, until: impl std::future::Future<Output = ()>) {
        tokio::pin!(until);
        let mut peers = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                () = &mut until => break,
                accepted = listener.accept() => {
                    let Ok((stream, addr)) = accepted else { continue };
                    let ctx = PeerTask {
                        metainfo: self.metainfo.clone(),
                        storage: self.storage.clone(),
                        have: self.have.clone(),
                        peer_id: self.peer_id,
                        uploaded: self.uploaded.clone(),
                    };
                    peers.spawn(async move {
                        if let Err(e) = ctx.run(stream).await {
                            tracing::debug!(%addr, error = %e, "peer left");
                        }
                    });
                }
                Some(_) = peers.join_next(), if !peers.is_empty() => {}
            }
        }
        peers.shutdown().await;
    }
}

/// What one peer connection needs.
struct PeerTask {
    metainfo: Arc<Metainfo>,
    storage: Arc<MultiFileSink>,
    have: Arc<Bitfield>,
    peer_id: PeerId,
    uploaded: Arc<AtomicU64>,
}

impl PeerTask {
    async fn run(self, mut stream: TcpStream) -> Result<(), TorrentError> {
        let _ = stream.set_nodelay(true);
        let mut hs = [0u8; HANDSHAKE_LEN];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut hs))
            .await
            .map_err(|_| io("handshake", std::io::ErrorKind::TimedOut.into()))?
            .map_err(|e| io("handshake", e))?;
        Handshake::decode(&hs, Some(self.metainfo.info_hash))
            .map_err(|e| TorrentError::InvalidTorrent(e.to_string()))?;
        let mut out = BytesMut::new();
        out.extend_from_slice(&Handshake::ours(self.metainfo.info_hash, self.peer_id).encode());
        Message::Bitfield(Bytes::copy_from_slice(self.have.as_bytes())).encode(&mut out);
        // Every peer is unchoked: upload slots and tit-for-tat come with the choker.
        Message::Unchoke.encode(&mut out);
        stream.write_all(&out).await.map_err(|e| io("writing", e))?;
        let mut buf = BytesMut::with_capacity(16 << 10);
        let bitfield_len = self.metainfo.piece_count().div_ceil(8);
        loop {
            let msg = loop {
                if let Some(m) = Message::decode(&mut buf, bitfield_len)
                    .map_err(|e| TorrentError::InvalidTorrent(e.to_string()))?
                {
                    break m;
                }
                let n = tokio::time::timeout(PEER_IDLE, stream.read_buf(&mut buf))
                    .await
                    .map_err(|_| io("reading", std::io::ErrorKind::TimedOut.into()))?
                    .map_err(|e| io("reading", e))?;
                if n == 0 {
                    return Ok(());
                }
            };
            if let Message::Request {
                index,
                begin,
                length,
            } = msg
            {
                let i = index as usize;
                let piece_len = if i < self.metainfo.piece_count() {
                    self.metainfo.piece_len(i)
                } else {
                    0
                };
                let valid = self.have.has(i)
                    && length > 0
                    && length <= MAX_REQUEST_LEN
                    && u64::from(begin) + u64::from(length) <= piece_len;
                if !valid {
                    continue; // BEP 3: ignore requests for what we do not have
                }
                let at = i as u64 * self.metainfo.piece_length + u64::from(begin);
                let block = self
                    .storage
                    .read_at(at, length)
                    .await
                    .map_err(|e| TorrentError::InvalidTorrent(e.to_string()))?;
                let mut out = BytesMut::with_capacity(length as usize + 13);
                Message::Piece {
                    index,
                    begin,
                    block,
                }
                .encode(&mut out);
                stream.write_all(&out).await.map_err(|e| io("writing", e))?;
                self.uploaded
                    .fetch_add(u64::from(length), Ordering::Relaxed);
            }
        }
    }
}

/// Binds a listening socket for peers.
///
/// # Errors
/// [`TorrentError::Io`] when the address cannot be bound.
pub async fn listen(addr: SocketAddr) -> Result<TcpListener, TorrentError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io(&format!("listening on {addr}"), e))
}
