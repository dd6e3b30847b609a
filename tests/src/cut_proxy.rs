//! A TCP proxy on 127.0.0.1 that cuts connections: it forwards bytes both ways between each client and an
//! upstream address, and drops the connection once it has forwarded a set number of bytes downstream
//! (server to client). For testing resume after a dropped connection against a real server.
//!
//! It relays bytes without looking at them, so it works in front of HTTP and HTTPS (TLS passes through) alike.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// No limit, in the atomics below.
const UNLIMITED: u64 = u64::MAX;

/// How a connection is dropped once its limit is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CutMode {
    /// Close both sockets normally: the client reads exactly the limit, then end-of-stream (a FIN), as when a
    /// server closes early.
    #[default]
    Close,
    /// Abort the client's socket with `SO_LINGER` 0: the client gets a connection reset (RST). Bytes still in
    /// the kernel's send buffer are discarded, so the client may read fewer than the limit.
    Reset,
}

/// Settings for [`CutProxy::start`].
#[derive(Clone, Copy, Debug)]
pub struct CutProxyOptions {
    /// Downstream bytes after which a connection is cut; `None` forwards everything. Counted per connection,
    /// over all responses on it (status lines and headers included).
    pub cut_after: Option<u64>,
    /// How many connections, in accept order, get the limit; the later ones are forwarded whole. `None` limits
    /// every connection.
    pub cut_connections: Option<u64>,
    /// How a connection is dropped.
    pub mode: CutMode,
}

impl CutProxyOptions {
    /// Cuts every connection after `bytes` downstream bytes, with [`CutMode::Close`].
    pub fn cut_after(bytes: u64) -> Self {
        Self {
            cut_after: Some(bytes),
            cut_connections: None,
            mode: CutMode::Close,
        }
    }
}

/// What the proxy has done, shared with its tasks.
#[derive(Debug)]
struct State {
    upstream: SocketAddr,
    mode: CutMode,
    cut_after: AtomicU64,
    cuts_left: AtomicU64,
    connections: AtomicU64,
    cuts: AtomicU64,
}

/// A running proxy. Its tasks run on the tokio runtime that started it, and stop when it is dropped (open
/// connections are dropped too).
#[derive(Debug)]
pub struct CutProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl CutProxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `upstream`.
    ///
    /// # Errors
    ///
    /// If 127.0.0.1 cannot be bound.
    ///
    /// # Panics
    ///
    /// If called outside a tokio runtime.
    pub async fn start(upstream: SocketAddr, opts: CutProxyOptions) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream,
            mode: opts.mode,
            cut_after: AtomicU64::new(opts.cut_after.unwrap_or(UNLIMITED)),
            cuts_left: AtomicU64::new(opts.cut_connections.unwrap_or(UNLIMITED)),
            connections: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Self { addr, state, task })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` followed by `path` (a leading `/` is added if missing).
    pub fn http_url(&self, path: &str) -> String {
        let sep = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{sep}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Connections cut so far (each after forwarding exactly the limit downstream).
    pub fn cuts(&self) -> u64 {
        self.state.cuts.load(Ordering::SeqCst)
    }

    /// Changes the limit for connections accepted from now on; `None` forwards everything.
    pub fn set_cut_after(&self, bytes: Option<u64>) {
        self.state
            .cut_after
            .store(bytes.unwrap_or(UNLIMITED), Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        state.connections.fetch_add(1, Ordering::SeqCst);
        let limit = connection_limit(&state);
        connections.spawn(relay(client, limit, Arc::clone(&state)));
    }
}

/// The limit for a newly accepted connection, taking one from `cuts_left` if it applies.
fn connection_limit(state: &State) -> Option<u64> {
    let cut_after = state.cut_after.load(Ordering::SeqCst);
    if cut_after == UNLIMITED {
        return None;
    }
    let took = state
        .cuts_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
            0 => None,
            UNLIMITED => Some(UNLIMITED),
            n => Some(n - 1),
        })
        .is_ok();
    took.then_some(cut_after)
}

async fn relay(client: TcpStream, limit: Option<u64>, state: Arc<State>) {
    let Ok(upstream) = TcpStream::connect(state.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (upstream_read, mut upstream_write) = upstream.into_split();
    let upward = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        let _ = upstream_write.shutdown().await;
    });
    let cut = downward(upstream_read, &mut client_write, limit).await;
    upward.abort();
    if cut {
        state.cuts.fetch_add(1, Ordering::SeqCst);
        if state.mode == CutMode::Reset {
            let _ = client_write.as_ref().set_zero_linger();
        }
    }
    // Dropping both halves of both sockets closes them.
}

/// Forwards upstream to client until upstream ends, the client goes away, or `limit` bytes have gone down;
/// returns whether the limit was reached.
async fn downward(
    mut upstream: OwnedReadHalf,
    client: &mut OwnedWriteHalf,
    limit: Option<u64>,
) -> bool {
    let mut left = limit.unwrap_or(UNLIMITED);
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = match upstream.read(&mut buf[..want]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        if client.write_all(&buf[..n]).await.is_err() {
            return false;
        }
        if left != UNLIMITED {
            left -= n as u64;
        }
    }
    true
}
