//! `PeerState`: what the swarm and a connection's task share about one
//! peer: its pieces, its interest and our choke decision (BEP 3), and byte
//! counters for the choker and progress.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::{Bitfield, PeerExtensions, PieceCounts};

/// One peer's shared state.
#[derive(Debug)]
pub struct PeerState {
    addr: SocketAddr,
    have: Mutex<Bitfield>,
    counts: Arc<PieceCounts>,
    /// The peer told us it is interested in our pieces.
    pub(crate) interested_in_us: AtomicBool,
    /// The choker wants this peer choked (true, the BEP 3 start state).
    pub(crate) choke_wanted: AtomicBool,
    /// Payload bytes received from the peer (verified or not).
    pub(crate) downloaded: AtomicU64,
    /// Payload bytes sent to the peer.
    pub(crate) uploaded: AtomicU64,
    /// The connection ended.
    pub(crate) closed: AtomicBool,
    /// The peer connected to us (its port is not where it listens).
    pub(crate) incoming: AtomicBool,
    /// Wakes the connection's task: a choke decision changed or we have new pieces.
    pub(crate) wake: Notify,
    /// The extension protocol's state (BEP 10, 11).
    extensions: Mutex<PeerExtensions>,
}

impl PeerState {
    /// State for a new connection to `addr`, counted in `counts`.
    pub fn new(addr: SocketAddr, counts: Arc<PieceCounts>) -> Self {
        Self {
            addr,
            have: Mutex::new(Bitfield::empty(counts.len())),
            counts,
            interested_in_us: AtomicBool::new(false),
            choke_wanted: AtomicBool::new(true),
            downloaded: AtomicU64::new(0),
            uploaded: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            incoming: AtomicBool::new(false),
            wake: Notify::new(),
            extensions: Mutex::new(PeerExtensions::default()),
        }
    }

    /// The peer's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The extension protocol's state of this peer.
    pub(crate) fn extensions(&self) -> MutexGuard<'_, PeerExtensions> {
        self.extensions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Where the peer accepts connections: the address we dialled, or for
    /// a peer that connected to us, its IP with the port its extended
    /// handshake gave (BEP 10 `p`); `None` when that is unknown.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        if !self.incoming.load(Ordering::Relaxed) {
            return Some(self.addr);
        }
        let port = self.extensions().listen_port?;
        Some(SocketAddr::new(self.addr.ip(), port))
    }

    /// The peer's client name, from its extended handshake (BEP 10 `v`).
    pub fn client(&self) -> Option<String> {
        self.extensions().client.clone()
    }

    fn have_lock(&self) -> MutexGuard<'_, Bitfield> {
        self.have.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the peer has piece `i`.
    pub fn has(&self, i: usize) -> bool {
        self.have_lock().has(i)
    }

    /// A copy of the peer's pieces.
    pub fn pieces(&self) -> Bitfield {
        self.have_lock().clone()
    }

    /// How many pieces the peer has.
    pub fn piece_count(&self) -> usize {
        self.have_lock().count()
    }

    /// The peer sent `have` for piece `i`.
    pub(crate) fn set_have(&self, i: usize) {
        let mut have = self.have_lock();
        if i < have.len() && !have.has(i) {
            have.set(i);
            self.counts.add(i);
        }
    }

    /// The peer sent its whole bitfield (or `have all`).
    pub(crate) fn set_pieces(&self, pieces: Bitfield) {
        let mut have = self.have_lock();
        self.counts.apply(&have, false);
        self.counts.apply(&pieces, true);
        *have = pieces;
    }

    /// Payload bytes received from the peer so far.
    pub fn downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }

    /// Payload bytes sent to the peer so far.
    pub fn uploaded(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

impl PeerState {
    /// The connection ended: its pieces no longer count as available.
    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            let mut have = self.have_lock();
            self.counts.apply(&have, false);
            *have = Bitfield::empty(have.len());
        }
        self.wake.notify_one();
    }
}

impl Drop for PeerState {
    fn drop(&mut self) {
        self.close();
    }
}
