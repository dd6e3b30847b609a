//! A TCP proxy on 127.0.0.1 that counts the bytes it forwards from the server to the client, and can pace each
//! connection to a set rate. For measuring how many bytes a server sent for a download (S3 servers log no byte
//! counts) and for slowing a loopback server down so a download can be interrupted mid-body.
//!
//! It relays bytes without looking at them, so it works in front of any protocol that uses one TCP connection per
//! exchange (HTTP, S3); FTP's data connections go around it.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How many bytes the proxy reads from the server at a time (and so the largest burst when pacing).
const RELAY_BUF_BYTES: usize = 16 * 1024;

/// What the proxy has done, shared with its tasks.
#[derive(Debug)]
struct State {
    upstream: SocketAddr,
    rate_bytes_per_sec: Option<u64>,
    downstream_bytes: AtomicU64,
    open: AtomicU64,
}

/// A running counting proxy. Its tasks run on the tokio runtime that started it, and stop when it is dropped.
#[derive(Debug)]
pub struct CountingProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `upstream`, sending at most
    /// `rate_bytes_per_sec` downstream on each connection (`None`: as fast as they come).
    ///
    /// # Errors
    /// If 127.0.0.1 cannot be bound.
    ///
    /// # Panics
    /// If called outside a tokio runtime.
    pub async fn start(upstream: SocketAddr, rate_bytes_per_sec: Option<u64>) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream,
            rate_bytes_per_sec: rate_bytes_per_sec.filter(|r| *r > 0),
            downstream_bytes: AtomicU64::new(0),
            open: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Self { addr, state, task })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the proxy as an HTTP endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bytes handed to clients' sockets so far, over every connection (status lines and headers included).
    pub fn downstream_bytes(&self) -> u64 {
        self.state.downstream_bytes.load(Ordering::SeqCst)
    }

    /// Connections being relayed now.
    pub fn open_connections(&self) -> u64 {
        self.state.open.load(Ordering::SeqCst)
    }

    /// Waits until no connection is open (every client has gone and the proxy noticed), polling every 20 ms;
    /// `false` if `timeout` passes first. The timeout bounds a hang only.
    pub async fn wait_until_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.open_connections() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

impl Drop for CountingProxy {
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
        state.open.fetch_add(1, Ordering::SeqCst);
        let state = Arc::clone(&state);
        connections.spawn(async move {
            relay(client, &state).await;
            state.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

async fn relay(client: TcpStream, state: &State) {
    let Ok(upstream) = TcpStream::connect(state.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client_read, client_write) = client.into_split();
    let (upstream_read, mut upstream_write) = upstream.into_split();
    let upward = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        let _ = upstream_write.shutdown().await;
    });
    downward(upstream_read, client_write, state).await;
    upward.abort();
}

/// Forwards server to client, counting and pacing, until either side goes away.
async fn downward(mut upstream: OwnedReadHalf, mut client: OwnedWriteHalf, state: &State) {
    let started = Instant::now();
    let mut sent = 0u64;
    let mut buf = vec![0u8; RELAY_BUF_BYTES];
    loop {
        let n = match upstream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(rate) = state.rate_bytes_per_sec {
            // Sending these bytes may not put this connection ahead of `rate`.
            let due = Duration::from_secs_f64((sent + n as u64) as f64 / rate as f64);
            tokio::time::sleep_until((started + due).into()).await;
        }
        if client.write_all(&buf[..n]).await.is_err() {
            return;
        }
        sent += n as u64;
        state.downstream_bytes.fetch_add(n as u64, Ordering::SeqCst);
    }
}
