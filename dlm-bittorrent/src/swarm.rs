//! `Swarm`: the peers of one torrent. It finds them (trackers and given
//! addresses), connects and handshakes, and lends idle connections to
//! whoever needs a piece one of them has.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use crate::peer::PeerConnection;
use crate::tracker::{AnnounceEvent, AnnounceRequest, PeerId, TrackerTiers};
use crate::{Metainfo, TorrentConfig, TorrentError};

/// Idle connections and how many are being set up.
#[derive(Debug, Default)]
struct Pool {
    idle: Vec<PeerConnection>,
    /// Connections lent out.
    busy: usize,
}

/// The peers of one torrent.
#[derive(Debug)]
pub(crate) struct Swarm {
    metainfo: Arc<Metainfo>,
    config: TorrentConfig,
    peer_id: PeerId,
    pool: Mutex<Pool>,
    returned: Notify,
}

impl Swarm {
    pub(crate) fn new(metainfo: Arc<Metainfo>, config: TorrentConfig) -> Self {
        Self {
            metainfo,
            config,
            peer_id: PeerId::random(),
            pool: Mutex::new(Pool::default()),
            returned: Notify::new(),
        }
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The files the user selected (`None`: all).
    pub(crate) fn selected(&self) -> Option<&[usize]> {
        self.config.selected.as_deref()
    }

    /// How long a peer may send nothing before it is dropped.
    pub(crate) fn idle_timeout(&self) -> std::time::Duration {
        self.config.idle_timeout
    }

    /// Connections, idle or lent.
    pub(crate) fn connected(&self) -> usize {
        let p = self.pool();
        p.idle.len() + p.busy
    }

    /// Announces `started` to the trackers (BEP 3, 12) and connects to their
    /// peers and the configured ones, up to `max_peers`, concurrently.
    ///
    /// # Errors
    /// [`TorrentError::Tracker`] when there are no peers at all: no tracker
    /// answered with any and none was given.
    pub(crate) async fn join(&self) -> Result<(), TorrentError> {
        let mut candidates = self.config.peers.clone();
        let mut tracker_error = None;
        if !self.metainfo.trackers.is_empty() {
            let client = dlm_http::HttpClient::new(self.config.http.clone()).map_err(|e| {
                TorrentError::Tracker {
                    tracker: "(http client)".into(),
                    message: e.to_string(),
                    retryable: false,
                }
            })?;
            let mut tiers = TrackerTiers::new(&self.metainfo.trackers, &client);
            let req = AnnounceRequest {
                info_hash: self.metainfo.info_hash,
                peer_id: self.peer_id,
                port: self.config.port,
                uploaded: 0,
                downloaded: 0,
                left: self.metainfo.total_length,
                event: Some(AnnounceEvent::Started),
                num_want: Some(self.config.max_peers as u32),
                key: fastrand::u32(..),
            };
            match tiers.announce(&req).await {
                Ok((tracker, resp)) => {
                    tracing::debug!(%tracker, peers = resp.peers.len(), "announced");
                    candidates.extend(resp.peers);
                }
                Err(e) => tracker_error = Some(e),
            }
        }
        candidates = crate::tracker::dedup(candidates);
        candidates.truncate(self.config.max_peers);
        if candidates.is_empty() {
            return Err(tracker_error.unwrap_or_else(|| TorrentError::Tracker {
                tracker: "(none)".into(),
                message: "no peers: the torrent has no tracker and no --peer was given".into(),
                retryable: false,
            }));
        }
        let attempts = candidates.iter().map(|addr| async move {
            let mut c = PeerConnection::connect(
                *addr,
                self.metainfo.info_hash,
                self.peer_id,
                self.metainfo.piece_count(),
                self.config.connect_timeout,
            )
            .await?;
            c.wait_for_pieces(self.config.connect_timeout).await?;
            Ok::<_, crate::peer::PeerError>(c)
        });
        for result in futures::future::join_all(attempts).await {
            match result {
                Ok(c) => self.pool().idle.push(c),
                Err(e) => tracing::debug!(error = %e, "peer not usable"),
            }
        }
        if self.connected() == 0 {
            return Err(TorrentError::Tracker {
                tracker: "(peers)".into(),
                message: format!("none of {} peers could be reached", candidates.len()),
                retryable: true,
            });
        }
        Ok(())
    }

    /// Lends an idle connection whose peer has `piece`, waiting for one to
    /// come back; `None` when no connected peer has it.
    pub(crate) async fn take(&self, piece: usize) -> Option<PeerConnection> {
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            {
                let mut pool = self.pool();
                if let Some(i) = pool.idle.iter().position(|c| c.has(piece)) {
                    pool.busy += 1;
                    return Some(pool.idle.swap_remove(i));
                }
                if pool.busy == 0 {
                    return None;
                }
            }
            returned.await;
        }
    }

    /// Returns a lent connection; `None` when it failed and is dropped.
    pub(crate) fn give_back(&self, conn: Option<PeerConnection>) {
        {
            let mut pool = self.pool();
            pool.busy = pool.busy.saturating_sub(1);
            if let Some(c) = conn {
                pool.idle.push(c);
            }
        }
        self.returned.notify_waiters();
    }

    /// Drops every idle connection to a peer that sent bad data (the one
    /// that did is given back as failed). Peers are only dialled at start,
    /// so a banned address is never connected to again.
    pub(crate) fn ban(&self, addr: SocketAddr) {
        self.pool().idle.retain(|c| c.addr() != addr);
    }
}
