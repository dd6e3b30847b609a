//! A peer connection's own task: it keeps reading the peer, serving its
//! requests and applying choke decisions while idle, and downloads pieces
//! when a [`PeerHandle`] asks it to.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dlm_core::CancellationToken;
use tokio::sync::{mpsc, oneshot};

use super::{PeerConnection, PeerError, PeerState};

/// A request to download one piece.
struct Fetch {
    index: u32,
    len: u32,
    next: Vec<(u32, u32)>,
    idle: Duration,
    cancel: CancellationToken,
    reply: oneshot::Sender<Result<Bytes, PeerError>>,
}

/// The swarm's side of a running connection. Dropping every handle ends
/// the connection.
#[derive(Debug, Clone)]
pub struct PeerHandle {
    state: Arc<PeerState>,
    fetches: mpsc::Sender<Fetch>,
}

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetch").field("index", &self.index).finish()
    }
}

impl PeerHandle {
    /// Runs `conn` on its own task until it fails or every handle is dropped.
    pub fn spawn(conn: PeerConnection) -> Self {
        let state = conn.state().clone();
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(run(conn, rx));
        Self { state, fetches: tx }
    }

    /// What the swarm knows of the peer.
    pub fn state(&self) -> &Arc<PeerState> {
        &self.state
    }

    /// The peer's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.state.addr()
    }

    /// Whether the peer has piece `index`.
    pub fn has(&self, index: usize) -> bool {
        self.state.has(index)
    }

    /// Downloads piece `index` of `len` bytes, then requests ahead into
    /// the pieces of `next`, `(index, length)` in order (see [`PeerConnection::fetch_piece_then`]).
    ///
    /// # Errors
    /// As [`PeerConnection::fetch_piece_then`]; a connection that ended is
    /// [`PeerError::Io`].
    pub async fn fetch(
        &self,
        index: u32,
        len: u32,
        next: Vec<(u32, u32)>,
        idle: Duration,
        cancel: CancellationToken,
    ) -> Result<Bytes, PeerError> {
        let gone = || PeerError::Io {
            addr: self.state.addr(),
            source: std::io::ErrorKind::ConnectionAborted.into(),
        };
        let (reply, answer) = oneshot::channel();
        self.fetches
            .send(Fetch {
                index,
                len,
                next,
                idle,
                cancel,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn run(mut conn: PeerConnection, mut fetches: mpsc::Receiver<Fetch>) {
    let addr = conn.addr();
    loop {
        if conn.state().is_closed() {
            return; // banned or the swarm stopped
        }
        if let Err(e) = conn.serve_turn().await {
            tracing::debug!(%addr, error = %e, "peer connection ended");
            break;
        }
        tokio::select! {
            f = fetches.recv() => {
                let Some(f) = f else { break };
                let r = conn.fetch_piece_then(f.index, f.len, &f.next, f.idle, &f.cancel).await;
                let fatal = matches!(&r, Err(e) if !e.keeps_connection());
                if let Err(e) = &r && fatal {
                    tracing::debug!(%addr, error = %e, "peer connection ended");
                }
                let _ = f.reply.send(r);
                if fatal {
                    break;
                }
            }
            r = conn.wait() => if let Err(e) = r {
                tracing::debug!(%addr, error = %e, "peer connection ended");
                break;
            },
        }
    }
    conn.state().close();
}
