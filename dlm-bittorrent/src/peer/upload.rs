//! `Uploads`: the pieces we serve to other peers (BEP 3 `request` →
//! `piece`), read back from the download's storage.
//!
//! A piece the download delivers (it passed its SHA-1 on the way in) is
//! *pending* until [`Uploads::confirm_pending`] reads it back from storage
//! and checks its SHA-1 again: only then is it offered (`have`), so a peer
//! never asks for a piece the engine has not written yet. Pieces the
//! storage held at the start are offered at once. A piece is read whole
//! when first uploaded (and checked again if it never was), and stays in a
//! small cache so the blocks of one piece cost one read.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::Bytes;
use dlm_core::{BoxSink, RateLimiter};

use super::Bitfield;
use crate::Metainfo;
use crate::wire::MAX_REQUEST_LEN;

/// Pieces kept in memory after a read, at most this many bytes in total.
const CACHE_BYTES: u64 = 32 << 20;

/// Our pieces and the means to serve them.
#[derive(Debug)]
pub struct Uploads {
    metainfo: Arc<Metainfo>,
    storage: OnceLock<BoxSink>,
    state: Mutex<State>,
    limiter: RateLimiter,
    uploaded: AtomicU64,
    /// Length of the `gained` log, readable without the lock.
    gained_len: AtomicUsize,
}

#[derive(Debug)]
struct State {
    /// Pieces we have.
    have: Bitfield,
    /// Pieces read back and found correct.
    checked: Bitfield,
    /// Pieces gained while running, in order: connections send `have` for them.
    gained: Vec<u32>,
    /// Pieces delivered by the download, not yet read back and offered.
    pending: Vec<u32>,
    cache: VecDeque<(u32, Bytes)>,
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
    /// Nothing to serve yet; uploads limited to `rate` bytes/s (`None`: unlimited).
    pub fn new(metainfo: Arc<Metainfo>, rate: Option<u64>) -> Self {
        let pieces = metainfo.piece_count();
        Self {
            metainfo,
            storage: OnceLock::new(),
            state: Mutex::new(State {
                have: Bitfield::empty(pieces),
                checked: Bitfield::empty(pieces),
                gained: Vec::new(),
                pending: Vec::new(),
                cache: VecDeque::new(),
                cached_bytes: 0,
            }),
            limiter: RateLimiter::new(rate),
            uploaded: AtomicU64::new(0),
            gained_len: AtomicUsize::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where pieces are read from, with the pieces it already holds
    /// (`checked`: already verified, e.g. by a re-check). A second call is ignored.
    pub fn attach(&self, storage: BoxSink, have: &Bitfield, checked: bool) {
        if self.storage.set(storage).is_err() {
            return;
        }
        let mut st = self.state();
        for i in (0..have.len()).filter(|i| have.has(*i)) {
            st.have.set(i);
            if checked {
                st.checked.set(i);
            }
        }
    }

    /// The download delivered piece `index` (verified): offer it once
    /// [`Uploads::confirm_pending`] finds it in storage.
    pub fn gained(&self, index: u32) {
        let mut st = self.state();
        if !st.have.has(index as usize) {
            st.pending.push(index);
        }
    }

    /// Whether delivered pieces wait to be read back.
    pub fn has_pending(&self) -> bool {
        !self.state().pending.is_empty()
    }

    /// Reads back the pieces delivered since the last call and offers those
    /// whose SHA-1 checks out (the others stay pending: not written yet).
    pub async fn confirm_pending(&self) {
        let pending = std::mem::take(&mut self.state().pending);
        let mut later = Vec::new();
        for index in pending {
            let len = self.metainfo.piece_len(index as usize);
            match self.piece(index, len).await {
                Ok(_) => {
                    let mut st = self.state();
                    if !st.have.has(index as usize) {
                        st.have.set(index as usize);
                        st.gained.push(index);
                        self.gained_len.store(st.gained.len(), Ordering::Release);
                    }
                }
                Err(_) => later.push(index),
            }
        }
        if !later.is_empty() {
            tracing::trace!(?later, "pieces not readable yet");
        }
        self.state().pending.extend(later);
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
        let piece = self.piece(index, piece_len).await?;
        self.limiter.acquire(u64::from(length)).await;
        self.uploaded
            .fetch_add(u64::from(length), Ordering::Relaxed);
        Ok(piece.slice(begin as usize..(begin + length) as usize))
    }

    /// Piece `index`, from the cache or read back and checked.
    async fn piece(&self, index: u32, len: u64) -> Result<Bytes, BlockError> {
        let checked = {
            let mut st = self.state();
            if let Some(pos) = st.cache.iter().position(|(i, _)| *i == index) {
                let hit = st.cache.remove(pos).expect("position is in range");
                let bytes = hit.1.clone();
                st.cache.push_back(hit);
                return Ok(bytes);
            }
            st.checked.has(index as usize)
        };
        let storage = self.storage.get().ok_or(BlockError::NotYet)?;
        let at = self.metainfo.piece_range(index as usize).start;
        let data = storage
            .read_at_dyn(at, len as u32)
            .await
            .map_err(|_| BlockError::NotYet)?;
        if data.len() as u64 != len {
            return Err(BlockError::NotYet);
        }
        if !checked && !self.metainfo.piece_matches(index as usize, &data).await {
            return Err(BlockError::NotYet);
        }
        let mut st = self.state();
        st.checked.set(index as usize);
        st.cached_bytes += len;
        st.cache.push_back((index, data.clone()));
        while st.cached_bytes > CACHE_BYTES {
            match st.cache.pop_front() {
                Some((_, old)) => st.cached_bytes -= old.len() as u64,
                None => break,
            }
        }
        Ok(data)
    }
}
