//! `Uploads`: the pieces we serve to other peers (BEP 3 `request` →
//! `piece`), read back from the download's storage.
//!
//! The engine tells the source which byte ranges it has written
//! ([`Uploads::stored`]); a piece counts as ours once all its bytes are
//! stored, and the swarm then sends `have` for it. Every such byte passed
//! the piece's SHA-1 on the way in, so it is not hashed again. Pieces held
//! from an earlier run (the control file says they verified then) are
//! checked once, when first read for a peer (streamed through SHA-1 one
//! window at a time), so a file changed on disk since is never served.
//! Blocks are read in aligned windows of at most 1 MiB that stay in a small
//! cache, so the blocks of one window cost one read and a 64 MiB piece is
//! never read whole for a 16 KiB request.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use dlm_core::{ByteRange, RangeSet, RateLimiter, StoredBytes};

use super::Bitfield;
use crate::Metainfo;
use crate::metainfo_v2::{PieceTree, Sha256Hash};
use crate::wire::MAX_REQUEST_LEN;

/// Windows kept in memory after a read, at most this many bytes in total.
const CACHE_BYTES: u64 = 32 << 20;
/// Bytes read from storage at once to serve blocks (and to check a resumed
/// piece), aligned within the piece.
const READ_WINDOW: u64 = 1 << 20;

/// Our pieces and the means to serve them.
#[derive(Debug)]
pub struct Uploads {
    metainfo: Arc<Metainfo>,
    /// Set by [`Uploads::attach`]; taken by [`Uploads::detach`] so the
    /// download's storage (and its file lock) is released with the swarm.
    storage: Mutex<Option<StoredBytes>>,
    state: Mutex<State>,
    limiter: RateLimiter,
    uploaded: AtomicU64,
    /// Length of the `gained` log, readable without the lock.
    gained_len: AtomicUsize,
    /// The TCP port peers can reach us on (0: not listening), told to them
    /// in the extended handshake (BEP 10 `p`).
    listen_port: std::sync::atomic::AtomicU16,
    /// Merkle trees over the piece layers (BEP 52), by pieces root, built
    /// at a file's first hash request.
    piece_trees: Mutex<HashMap<Sha256Hash, Option<Arc<PieceTree>>>>,
}

#[derive(Debug)]
struct State {
    /// Pieces we have.
    have: Bitfield,
    /// Pieces known to match their SHA-1 on disk (received this session, or
    /// checked at their first upload).
    checked: Bitfield,
    /// Pieces gained while running, in order: connections send `have` for them.
    gained: Vec<u32>,
    /// Bytes stored of pieces not yet complete.
    partial: RangeSet,
    /// Read windows by (piece, offset in the piece), least recently used first.
    cache: VecDeque<((u32, u64), Bytes)>,
    cached_bytes: u64,
}

/// Why a block cannot be served (now).
#[derive(Debug, PartialEq, Eq)]
pub enum BlockError {
    /// Not a block of a piece we have: ignore the request (BEP 3).
    Invalid,
    /// The piece is ours but not readable yet (still being written): try later.
    NotYet,
}

impl Uploads {
    /// Whether `info_hash` names this torrent's swarm: its info-hash, or
    /// for a hybrid torrent either of its two (BEP 52).
    pub fn is_swarm(&self, info_hash: crate::InfoHash) -> bool {
        self.metainfo.swarm_info_hashes().contains(&info_hash)
    }

    /// Nothing to serve yet; uploads limited to `rate` bytes/s (`None`: unlimited).
    pub fn new(metainfo: Arc<Metainfo>, rate: Option<u64>) -> Self {
        let pieces = metainfo.piece_count();
        Self {
            metainfo,
            storage: Mutex::new(None),
            state: Mutex::new(State {
                have: Bitfield::empty(pieces),
                checked: Bitfield::empty(pieces),
                gained: Vec::new(),
                partial: RangeSet::new(),
                cache: VecDeque::new(),
                cached_bytes: 0,
            }),
            limiter: RateLimiter::new(rate),
            uploaded: AtomicU64::new(0),
            gained_len: AtomicUsize::new(0),
            listen_port: std::sync::atomic::AtomicU16::new(0),
            piece_trees: Mutex::new(HashMap::new()),
        }
    }

    /// The Merkle tree over the piece layer of the file whose pieces root
    /// is `root` (BEP 52), built on first use and kept; `None` when we have
    /// no piece layer for it (a file of one piece has none).
    pub(crate) fn piece_tree(&self, root: &Sha256Hash) -> Option<Arc<PieceTree>> {
        let mut trees = self
            .piece_trees
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = trees.get(root) {
            return t.clone();
        }
        let m = &self.metainfo;
        let tree = m
            .files
            .iter()
            .find(|f| f.pieces_root == Some(*root))
            .zip(m.piece_layers.get(root))
            .and_then(|(f, layer)| PieceTree::new(layer, f.length, m.piece_length))
            .map(Arc::new);
        // Only this torrent's roots are kept: a peer cannot grow the map.
        if m.piece_layers.contains_key(root) {
            trees.insert(*root, tree.clone());
        }
        tree
    }

    /// The torrent served.
    pub(crate) fn metainfo(&self) -> &Arc<Metainfo> {
        &self.metainfo
    }

    /// Sets the port we listen for peers on (0: none).
    pub(crate) fn set_listen_port(&self, port: u16) {
        self.listen_port.store(port, Ordering::Relaxed);
    }

    /// The port we listen for peers on (0: none).
    pub(crate) fn listen_port(&self) -> u16 {
        self.listen_port.load(Ordering::Relaxed)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where pieces are read from, with the pieces it already holds;
    /// `checked`: they were just verified on disk (a re-check), else they
    /// are checked at their first upload. A second call is ignored.
    pub fn attach(&self, storage: StoredBytes, have: &Bitfield, checked: bool) {
        {
            let mut slot = self.storage.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_some() {
                return;
            }
            *slot = Some(storage);
        }
        let mut st = self.state();
        for i in (0..have.len()).filter(|i| have.has(*i)) {
            st.have.set(i);
            if checked {
                st.checked.set(i);
            }
        }
    }

    /// The engine stored `range` (verified bytes this swarm delivered):
    /// returns the pieces it completed, now offered to peers.
    pub fn stored(&self, range: ByteRange) -> Vec<u32> {
        let m = &self.metainfo;
        if m.piece_length == 0 || range.is_empty() {
            return Vec::new();
        }
        let first = (range.start / m.piece_length) as usize;
        let last =
            (range.end.min(m.total_length).div_ceil(m.piece_length) as usize).min(m.piece_count());
        let mut st = self.state();
        st.partial.insert(range);
        let mut completed = Vec::new();
        for i in first..last {
            let piece = m.piece_range(i);
            if !st.partial.contains_range(piece) {
                continue;
            }
            st.partial.remove(piece);
            st.checked.set(i);
            if !st.have.has(i) {
                st.have.set(i);
                st.gained.push(i as u32);
                completed.push(i as u32);
            }
        }
        self.gained_len.store(st.gained.len(), Ordering::Release);
        completed
    }

    /// Our pieces, for a `bitfield` message.
    pub fn pieces(&self) -> Bitfield {
        self.state().have.clone()
    }

    /// Whether we have piece `index`.
    pub fn has(&self, index: usize) -> bool {
        self.state().have.has(index)
    }

    /// Whether we have every piece.
    pub fn is_seed(&self) -> bool {
        self.state().have.is_full()
    }

    /// Length of the log of pieces gained while running.
    pub fn gained_len(&self) -> usize {
        self.gained_len.load(Ordering::Acquire)
    }

    /// Pieces gained since position `from` of the log, and the new position.
    pub fn gained_since(&self, from: usize) -> (Vec<u32>, usize) {
        if self.gained_len() <= from {
            return (Vec::new(), from);
        }
        let st = self.state();
        let new = st.gained.get(from..).unwrap_or_default().to_vec();
        (new, st.gained.len())
    }

    /// Total payload bytes uploaded.
    pub fn uploaded(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    /// The upload limit in bytes/s (`None`: unlimited), changeable while running.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// The `length` bytes at `begin` in piece `index`, after the upload
    /// limit allows them; counts them as uploaded.
    ///
    /// # Errors
    /// [`BlockError::Invalid`] for a request out of bounds or for a piece we
    /// lack; [`BlockError::NotYet`] while the piece cannot be read back correct.
    pub async fn block(&self, index: u32, begin: u32, length: u32) -> Result<Bytes, BlockError> {
        let i = index as usize;
        if i >= self.metainfo.piece_count() || length == 0 || length > MAX_REQUEST_LEN {
            return Err(BlockError::Invalid);
        }
        let piece_len = self.metainfo.piece_len(i);
        if u64::from(begin) + u64::from(length) > piece_len || !self.has(i) {
            return Err(BlockError::Invalid);
        }
        if !self.state().checked.has(i) {
            self.check(index, piece_len).await?;
        }
        let (begin, length) = (u64::from(begin), u64::from(length));
        let start = begin / READ_WINDOW * READ_WINDOW;
        let end = (start + READ_WINDOW).min(piece_len);
        let block = if begin + length <= end {
            let window = self.window(index, start, end - start).await?;
            window.slice((begin - start) as usize..(begin - start + length) as usize)
        } else {
            // A block across two windows (requests need not be aligned): read it alone.
            self.read(index, begin, length).await?
        };
        self.limiter.acquire(length).await;
        self.uploaded.fetch_add(length, Ordering::Relaxed);
        Ok(block)
    }

    /// `len` bytes at `offset` in piece `index`, read back from storage.
    async fn read(&self, index: u32, offset: u64, len: u64) -> Result<Bytes, BlockError> {
        let storage = self
            .storage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(BlockError::NotYet)?;
        let at = self.metainfo.piece_range(index as usize).start + offset;
        let data = storage
            .read_at(at, len as u32)
            .await
            .map_err(|_| BlockError::NotYet)?;
        if data.len() as u64 != len {
            return Err(BlockError::NotYet);
        }
        Ok(data)
    }

    /// The window of `len` bytes at `offset` in piece `index`, from the
    /// cache or read back from storage (then cached).
    async fn window(&self, index: u32, offset: u64, len: u64) -> Result<Bytes, BlockError> {
        let key = (index, offset);
        {
            let mut st = self.state();
            if let Some(pos) = st.cache.iter().position(|(k, _)| *k == key) {
                let hit = st.cache.remove(pos).expect("position is in range");
                let bytes = hit.1.clone();
                st.cache.push_back(hit);
                return Ok(bytes);
            }
        }
        let data = self.read(index, offset, len).await?;
        let mut st = self.state();
        st.cached_bytes += len;
        st.cache.push_back((key, data.clone()));
        while st.cached_bytes > CACHE_BYTES {
            match st.cache.pop_front() {
                Some((_, old)) => st.cached_bytes -= old.len() as u64,
                None => break,
            }
        }
        Ok(data)
    }

    /// Checks a piece held from an earlier run against its SHA-1 (BEP 3),
    /// reading it one window at a time, before any of it is served.
    async fn check(&self, index: u32, piece_len: u64) -> Result<(), BlockError> {
        use sha1::{Digest, Sha1};
        if self.metainfo.meta_version != crate::MetaVersion::V1 {
            // BEP 52 Merkle trees (and SHA-1 too for a hybrid): the piece is
            // read whole (at most MAX_PIECE_LENGTH) and checked at once.
            let data = self.read(index, 0, piece_len).await?;
            if !self.metainfo.piece_matches(index as usize, &data).await {
                tracing::warn!(
                    piece = index,
                    "a resumed piece no longer matches: not served"
                );
                return Err(BlockError::Invalid);
            }
            self.state().checked.set(index as usize);
            return Ok(());
        }
        let Some(want) = self.metainfo.pieces.get(index as usize).copied() else {
            return Err(BlockError::Invalid);
        };
        let mut hasher = Sha1::new();
        let mut at = 0;
        while at < piece_len {
            let len = READ_WINDOW.min(piece_len - at);
            let data = self.read(index, at, len).await?;
            hasher = tokio::task::spawn_blocking(move || {
                hasher.update(&data);
                hasher
            })
            .await
            .map_err(|_| BlockError::NotYet)?;
            at += len;
        }
        if <[u8; 20]>::from(hasher.finalize()) != want {
            tracing::warn!(
                piece = index,
                "a resumed piece no longer matches its SHA-1: not served"
            );
            return Err(BlockError::Invalid);
        }
        self.state().checked.set(index as usize);
        Ok(())
    }

    /// Lets go of the storage: nothing more is served (the swarm is left).
    pub fn detach(&self) {
        self.storage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let mut st = self.state();
        st.cache.clear();
        st.cached_bytes = 0;
    }

    /// Pieces we have.
    pub fn have_count(&self) -> usize {
        self.state().have.count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memory sink that counts the bytes read back.
    #[derive(Debug, Default)]
    struct Counting {
        inner: dlm_core::MemorySink,
        read: AtomicU64,
    }

    impl dlm_core::Sink for Counting {
        async fn prepare(
            &self,
            len: Option<u64>,
            digests: &[dlm_core::DigestAlgorithm],
        ) -> dlm_core::Result<()> {
            self.inner.prepare(len, digests).await
        }
        async fn write_at(&self, offset: u64, data: Bytes) -> dlm_core::Result<()> {
            self.inner.write_at(offset, data).await
        }
        async fn read_at(&self, offset: u64, len: u32) -> dlm_core::Result<Bytes> {
            self.read.fetch_add(u64::from(len), Ordering::Relaxed);
            self.inner.read_at(offset, len).await
        }
        async fn sync(&self) -> dlm_core::Result<()> {
            Ok(())
        }
        async fn commit(&self) -> dlm_core::Result<()> {
            Ok(())
        }
        async fn reset(&self) -> dlm_core::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn blocks_of_a_large_piece_are_read_a_window_at_a_time() {
        use dlm_core::Sink;
        // One 16 MiB piece, resumed (so checked by streaming it once through SHA-1).
        let len: u64 = 16 << 20;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut m = crate::Metainfo::for_tests(len, len);
        use sha1::Digest;
        m.pieces[0] = sha1::Sha1::digest(&data).into();
        let sink = Arc::new(Counting::default());
        sink.prepare(Some(len), &[]).await.unwrap();
        sink.write_at(0, Bytes::from(data.clone())).await.unwrap();
        let u = Uploads::new(Arc::new(m), None);
        let mut have = Bitfield::empty(1);
        have.set(0);
        u.attach(StoredBytes::new(sink.clone()), &have, false);
        let checked = sink.read.load(Ordering::Relaxed);
        for begin in (0u32..4 << 20).step_by(16 << 10) {
            let block = u.block(0, begin, 16 << 10).await.unwrap();
            assert_eq!(
                &block[..],
                &data[begin as usize..begin as usize + (16 << 10)]
            );
        }
        // The check read the piece once; 256 blocks in 4 MiB then cost 4 windows of 1 MiB.
        let read = sink.read.load(Ordering::Relaxed);
        assert_eq!(read - checked, len + (4 << 20));
        // A block across a window boundary is read alone.
        let across = u.block(0, (1 << 20) - 100, 200).await.unwrap();
        assert_eq!(&across[..], &data[(1 << 20) - 100..(1 << 20) + 100]);
    }

    #[test]
    fn pieces_complete_when_all_their_bytes_are_stored() {
        // 3 pieces of 4 bytes, the last one 2 bytes long.
        let m = Arc::new(crate::Metainfo::for_tests(4, 10));
        let u = Uploads::new(m, None);
        assert_eq!(u.stored(ByteRange::new(0, 3)), Vec::<u32>::new());
        assert_eq!(u.stored(ByteRange::new(6, 10)), vec![2]);
        assert_eq!(u.stored(ByteRange::new(3, 6)), vec![0, 1]);
        assert_eq!(u.gained_since(0), (vec![2, 0, 1], 3));
        assert!(u.is_seed());
        // Bytes stored again complete nothing new.
        assert_eq!(u.stored(ByteRange::new(0, 4)), Vec::<u32>::new());
    }
}
