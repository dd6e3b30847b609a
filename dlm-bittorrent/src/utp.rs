//! uTP, the Micro Transport Protocol (BEP 29): BitTorrent peer connections
//! over UDP, beside TCP, through the `librqbit-utp` crate.
//!
//! # One socket per swarm
//! A swarm that listens binds one UDP socket on the port number of its TCP
//! listener (as libtorrent and Transmission do, so the port announced to
//! trackers and the DHT reaches us both ways), and every uTP connection of
//! that swarm, in and out, shares it: uTP tells its connections apart by
//! their connection IDs (BEP 29, "connection_id"). A swarm that does not
//! listen binds one on a free port for its outgoing connections. One socket
//! per swarm, not per process, because each swarm has its own TCP port and
//! its own lifetime: the socket stops with the swarm.
//!
//! # Choosing TCP or uTP
//! See [`race`]: TCP first; uTP beside it after [`TCP_HEAD_START`] or as
//! soon as TCP fails; the first connection to open is kept.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dlm_core::CancellationToken;
use librqbit_utp::{SocketOpts, UtpSocketUdp, UtpStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

/// How long a TCP connect runs alone before a uTP connect (BEP 29) starts
/// beside it, when TCP has not failed sooner: 500 ms. A peer that answers
/// on TCP is never delayed by uTP; a peer that takes TCP SYNs silently
/// (a firewall) and speaks uTP is reached this much later than it could be.
pub const TCP_HEAD_START: Duration = Duration::from_millis(500);

/// Most uTP connections at once on one socket (BEP 29 sets no limit).
const MAX_CONNECTIONS: usize = 128;

/// A UDP socket that carries uTP connections (BEP 29), shared by every
/// uTP connection of one swarm. Clones share it; it stops when its last
/// clone is dropped or the token it was bound with is cancelled.
#[derive(Clone)]
pub(crate) struct UtpSocket {
    inner: Arc<UtpSocketUdp>,
    _stop: Arc<StopOnDrop>,
}

/// Cancels its token when dropped: the socket's task ends with its last clone.
#[derive(Debug)]
struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl fmt::Debug for UtpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UtpSocket")
            .field("local_addr", &self.inner.bind_addr())
            .finish()
    }
}

impl UtpSocket {
    /// Binds a uTP socket on UDP `addr` (port 0: any free one). Its
    /// background task stops when `stop` is cancelled or the last clone is
    /// dropped.
    ///
    /// # Errors
    /// The address cannot be bound (the UDP port is taken).
    pub(crate) async fn bind(addr: SocketAddr, stop: CancellationToken) -> std::io::Result<Self> {
        let opts = SocketOpts {
            cancellation_token: stop.clone(),
            max_live_vsocks: std::num::NonZeroUsize::new(MAX_CONNECTIONS),
            // BitTorrent messages are written whole; no need to wait for more.
            disable_nagle: true,
            ..SocketOpts::default()
        };
        let inner = UtpSocketUdp::new_udp_with_opts(addr, opts, Default::default())
            .await
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::AddrInUse, e.to_string()))?;
        Ok(Self {
            inner,
            _stop: Arc::new(StopOnDrop(stop)),
        })
    }

    /// The UDP port this socket is bound to.
    pub(crate) fn port(&self) -> u16 {
        self.inner.bind_addr().port()
    }

    /// Opens a uTP connection to `addr` (BEP 29: `ST_SYN`, answered by
    /// `ST_STATE`), within `timeout`.
    ///
    /// # Errors
    /// [`std::io::ErrorKind::TimedOut`] when `addr` does not answer in time,
    /// [`std::io::ErrorKind::ConnectionRefused`] when it refuses
    /// (`ST_RESET`) or the connection fails otherwise.
    pub(crate) async fn connect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> std::io::Result<UtpConnection> {
        match tokio::time::timeout(timeout, self.inner.connect(addr)).await {
            Ok(Ok(s)) => Ok(UtpConnection(s)),
            Ok(Err(e)) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                format!("uTP: {e}"),
            )),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("uTP: no answer in {} ms", timeout.as_millis()),
            )),
        }
    }

    /// Waits for the next incoming uTP connection and its remote address.
    ///
    /// # Cancel safety
    /// Cancel safe: a connection not yet handed over stays queued.
    ///
    /// # Errors
    /// The socket's background task has stopped.
    pub(crate) async fn accept(&self) -> std::io::Result<(UtpConnection, SocketAddr)> {
        let s = self
            .inner
            .accept()
            .await
            .map_err(|e| std::io::Error::other(format!("uTP: {e}")))?;
        let addr = s.remote_addr();
        Ok((UtpConnection(s), addr))
    }
}

/// One uTP connection (BEP 29) as a byte stream, usable as a
/// [`crate::peer::PeerStream`].
pub(crate) struct UtpConnection(UtpStream);

impl fmt::Debug for UtpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UtpConnection")
            .field(&self.0.remote_addr())
            .finish()
    }
}

impl AsyncRead for UtpConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for UtpConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Binds the listening port: `port`, else the next nine (as clients that
/// default to 6881 do), else any free port. With `utp`, a port counts only
/// when its UDP twin binds as well (the uTP socket, BEP 29, is returned
/// beside the listener); when no port has both, the first TCP port that
/// binds is used without incoming uTP. `None` when no TCP port binds.
pub(crate) async fn bind(
    port: u16,
    utp: bool,
    stop: &CancellationToken,
) -> Option<(TcpListener, Option<UtpSocket>)> {
    let tries: Vec<u16> = if port == 0 {
        vec![0; 4]
    } else {
        (port..port.saturating_add(10)).chain([0; 4]).collect()
    };
    for p in tries.iter().copied() {
        let Ok(l) = TcpListener::bind((Ipv4Addr::UNSPECIFIED, p)).await else {
            continue;
        };
        if !utp {
            return Some((l, None));
        }
        let Ok(bound) = l.local_addr() else { continue };
        let udp = SocketAddr::from((Ipv4Addr::UNSPECIFIED, bound.port()));
        match UtpSocket::bind(udp, stop.child_token()).await {
            Ok(s) => return Some((l, Some(s))),
            Err(e) => tracing::debug!(port = bound.port(), error = %e, "no uTP on this port"),
        }
    }
    for p in tries {
        if let Ok(l) = TcpListener::bind((Ipv4Addr::UNSPECIFIED, p)).await {
            tracing::warn!(port, "no UDP port for uTP beside the TCP listener: TCP only");
            return Some((l, None));
        }
    }
    tracing::warn!(port, "could not listen for peers");
    None
}

/// A uTP socket for outgoing connections only, on any free UDP port.
pub(crate) async fn outgoing(stop: &CancellationToken) -> Option<UtpSocket> {
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    match UtpSocket::bind(any, stop.child_token()).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no UDP socket for uTP: TCP only");
            None
        }
    }
}

/// How a peer connection was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// TCP.
    Tcp,
    /// uTP over UDP (BEP 29).
    Utp,
}

/// Connects to `addr` by TCP and, when `utp` is given, by uTP (BEP 29) as
/// well, and keeps the first connection that opens: TCP starts at once;
/// uTP starts after [`TCP_HEAD_START`], or as soon as TCP fails, whichever
/// comes first. Both run within `timeout` from the start. `tcp` and the
/// uTP connect are the two dialers (so a caller may wrap them).
///
/// Why TCP first (libtorrent tries uTP first): uTP's point is its
/// delay-based congestion control (LEDBAT, BEP 29), which `librqbit-utp`
/// 0.7 does not implement (it uses CUBIC, like TCP), and user-space uTP
/// costs more CPU per byte than the kernel's TCP. So uTP is here to reach
/// peers TCP cannot, at no cost to the peers TCP can.
///
/// # Errors
/// TCP's error when both fail (uTP's when there is no TCP error to tell).
pub(crate) async fn race<T, FT>(
    addr: SocketAddr,
    utp: Option<&UtpSocket>,
    timeout: Duration,
    tcp: FT,
) -> std::io::Result<(crate::peer::PeerStream, Transport)>
where
    T: crate::peer::PeerIo + 'static,
    FT: std::future::Future<Output = std::io::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let tcp = tokio::time::timeout_at(deadline, tcp);
    let Some(socket) = utp else {
        return match tcp.await {
            Ok(r) => r.map(|s| (Box::new(s) as crate::peer::PeerStream, Transport::Tcp)),
            Err(_) => Err(timed_out(timeout)),
        };
    };
    tokio::pin!(tcp);
    let head_start = tokio::time::sleep(TCP_HEAD_START.min(timeout));
    tokio::pin!(head_start);
    // TCP alone for its head start.
    let tcp_error = tokio::select! {
        r = &mut tcp => match r {
            Ok(Ok(s)) => return Ok((Box::new(s), Transport::Tcp)),
            Ok(Err(e)) => Some(e),
            Err(_) => return Err(timed_out(timeout)),
        },
        () = &mut head_start => None,
    };
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let utp = socket.connect(addr, left);
    tokio::pin!(utp);
    match tcp_error {
        Some(e) => match utp.await {
            Ok(s) => Ok((Box::new(s), Transport::Utp)),
            Err(u) => {
                tracing::debug!(%addr, error = %u, "uTP failed too");
                Err(e)
            }
        },
        None => tokio::select! {
            r = &mut tcp => match r {
                Ok(Ok(s)) => Ok((Box::new(s), Transport::Tcp)),
                Ok(Err(e)) => match utp.await {
                    Ok(s) => Ok((Box::new(s), Transport::Utp)),
                    Err(_) => Err(e),
                },
                Err(_) => Err(timed_out(timeout)),
            },
            r = &mut utp => match r {
                Ok(s) => Ok((Box::new(s), Transport::Utp)),
                Err(u) => match tcp.await {
                    Ok(r) => r.map(|s| (Box::new(s) as crate::peer::PeerStream, Transport::Tcp)),
                    Err(_) => Err(u),
                },
            },
        },
    }
}

fn timed_out(timeout: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no connection in {} ms", timeout.as_millis()),
    )
}
