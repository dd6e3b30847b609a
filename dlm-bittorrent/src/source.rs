//! `TorrentSource`: a torrent's byte space (its files in metainfo order,
//! BEP 3) as a [`Source`], fetched piece by piece from the swarm, each
//! piece checked against its SHA-1 before a byte of it is handed on.

use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;

use bytes::Bytes;
use dlm_core::{
    BodyStream, ByteRange, Capabilities, Context, Error, ErrorKind, FileSpan, Probe, ReadRange,
    Result, Source,
};
use sha1::{Digest, Sha1};
use tokio::sync::OnceCell;

use crate::peer::PeerConnection;
use crate::swarm::Swarm;
use crate::{Metainfo, TorrentConfig};

/// Attempts at one piece, each from another peer, before the chunk fails.
const PIECE_ATTEMPTS: usize = 4;

/// A torrent as a [`Source`].
///
/// `probe` joins the swarm (announces to the trackers, connects to their
/// peers and the configured ones) and reports the torrent's length, its
/// piece length as the alignment, its files, and the info-hash as the
/// validator. `open` fetches the pieces covering a range from peers that
/// have them; a piece whose SHA-1 does not match bans the peer that sent it
/// and is fetched from another.
#[derive(Debug)]
pub struct TorrentSource {
    metainfo: Arc<Metainfo>,
    swarm: Arc<Swarm>,
    joined: OnceCell<()>,
}

impl TorrentSource {
    /// A source for `metainfo`.
    pub fn new(metainfo: Metainfo, config: TorrentConfig) -> Self {
        let metainfo = Arc::new(metainfo);
        Self {
            swarm: Arc::new(Swarm::new(metainfo.clone(), config)),
            metainfo,
            joined: OnceCell::new(),
        }
    }

    /// The torrent.
    pub fn metainfo(&self) -> &Metainfo {
        &self.metainfo
    }
}

/// Fetches piece `index` from the swarm, verified, trying other peers.
/// `held` is the connection that fetched the previous piece of this range
/// (it may have requested this one already); `next` is the piece after, to
/// request while this one finishes. Returns the piece and the connection to
/// keep for the next one.
async fn fetch_piece(
    swarm: &Swarm,
    m: &Metainfo,
    index: usize,
    next: Option<usize>,
    mut held: Option<PeerConnection>,
    idle: std::time::Duration,
) -> Result<(Bytes, Option<PeerConnection>)> {
    let len = m.piece_len(index) as u32;
    let next = next.map(|n| (n as u32, m.piece_len(n) as u32));
    for _ in 0..PIECE_ATTEMPTS {
        let mut peer = match held.take() {
            Some(p) if p.has(index) => p,
            Some(p) => {
                swarm.give_back(Some(p));
                match swarm.take(index).await {
                    Some(p) => p,
                    None => break,
                }
            }
            None => match swarm.take(index).await {
                Some(p) => p,
                None => break,
            },
        };
        match peer.fetch_piece_then(index as u32, len, next, idle).await {
            Ok(bytes) if <[u8; 20]>::from(Sha1::digest(&bytes)) == m.pieces[index] => {
                return Ok((bytes, Some(peer)));
            }
            Ok(_) => {
                tracing::warn!(peer = %peer.addr(), piece = index, "piece failed its SHA-1: peer banned");
                swarm.ban(peer.addr());
                swarm.give_back(None);
            }
            Err(e) => {
                tracing::debug!(error = %e, piece = index, "peer failed");
                swarm.give_back(None);
            }
        }
    }
    Err(Error::new(
        ErrorKind::Network,
        format!("no connected peer delivered piece {index}"),
    )
    .retryable())
}

/// Gives the connection held by a range's reader back to the swarm when
/// the reader is dropped (the range ended or the engine moved on).
struct Held {
    swarm: Arc<Swarm>,
    peer: Option<PeerConnection>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(p) = self.peer.take() {
            self.swarm.give_back(Some(p));
        }
    }
}

impl Source for TorrentSource {
    fn identity(&self) -> String {
        format!("bittorrent:{}", self.metainfo.info_hash)
    }

    async fn probe(&self, _cx: &Context) -> Result<Probe> {
        self.joined
            .get_or_try_init(|| async { self.swarm.join().await })
            .await?;
        let m = &self.metainfo;
        let caps = Capabilities::default()
            .with_ranges(true)
            .with_alignment(NonZeroU64::new(m.piece_length))
            // One chunk per connected peer at a time (peers found later are not used yet).
            .with_max_connections(NonZeroU32::new(self.swarm.connected() as u32));
        let mut probe = Probe::new(Some(m.total_length), caps);
        probe.caps.verifies = true;
        probe.etag = Some(format!("\"{}\"", m.info_hash));
        probe.file_name = Some(m.name.clone());
        let selected = self.swarm.selected();
        if let Some(sel) = selected
            && let Some(bad) = sel.iter().find(|i| **i >= m.files.len())
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "file {} is not in the torrent ({} files)",
                    bad + 1,
                    m.files.len()
                ),
            ));
        }
        let wanted = |i: usize| selected.is_none_or(|s| s.contains(&i));
        let multi = m.files.len() > 1
            || m.files
                .first()
                .is_some_and(|f| f.path != std::path::Path::new(&m.name));
        if multi {
            probe.files = m
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| FileSpan {
                    path: f.path.clone(),
                    offset: f.offset,
                    len: f.length,
                    wanted: wanted(i),
                })
                .collect();
            // Pieces that touch no selected file are not fetched at all.
            probe.skip = (0..m.piece_count())
                .map(|p| {
                    let start = p as u64 * m.piece_length;
                    ByteRange::new(start, start + m.piece_len(p))
                })
                .filter(|piece| {
                    !m.files.iter().enumerate().any(|(i, f)| {
                        wanted(i)
                            && ByteRange::new(f.offset, f.offset + f.length)
                                .intersect(piece)
                                .is_some_and(|x| !x.is_empty())
                    })
                })
                .collect();
        }
        Ok(probe)
    }

    async fn open(&self, _cx: &Context, range: ReadRange) -> Result<BodyStream> {
        let m = self.metainfo.clone();
        let swarm = self.swarm.clone();
        let idle = self.swarm.idle_timeout();
        let start = range.start();
        let end = range.end().unwrap_or(m.total_length).min(m.total_length);
        let first = (start / m.piece_length) as usize;
        let last = end.div_ceil(m.piece_length) as usize;
        let held = Held {
            swarm: swarm.clone(),
            peer: None,
        };
        let frames = futures::stream::unfold(Some((first, held)), move |state| {
            let m = m.clone();
            let swarm = swarm.clone();
            async move {
                let (index, mut held) = state?;
                let piece_start = index as u64 * m.piece_length;
                if piece_start >= end {
                    return None;
                }
                let next = (index + 1 < last).then_some(index + 1);
                match fetch_piece(&swarm, &m, index, next, held.peer.take(), idle).await {
                    Ok((bytes, peer)) => {
                        held.peer = peer;
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
}
