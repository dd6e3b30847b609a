//! A peer connection's byte stream before the BitTorrent handshake: TCP
//! or uTP (BEP 29, see [`crate::utp`]), then Message Stream Encryption as
//! [`Encryption`] says.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::PeerError;
use super::connection::PeerStream;
use crate::InfoHash;
use crate::mse::{self, Encryption, MseError};
use crate::utp::{self, Transport, UtpSocket};
use crate::wire::HANDSHAKE_LEN;

/// Who writes our BitTorrent handshake (BEP 3), and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OurHandshake {
    /// We connected in plaintext: ours goes first.
    First,
    /// The peer connected: ours answers theirs.
    Answer,
    /// Sent already, as MSE's initial payload (`IA`).
    Sent,
}

/// The ways [`open`] may connect.
#[derive(Clone, Copy, Debug)]
enum Via<'a> {
    /// TCP alone.
    Tcp,
    /// TCP, and uTP beside it ([`utp::race`]).
    Race(&'a UtpSocket),
    /// uTP alone.
    Utp(&'a UtpSocket),
}

async fn tcp(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Opens a connection to `addr` within `timeout`, `via` TCP, uTP or both.
async fn open(
    addr: SocketAddr,
    via: Via<'_>,
    timeout: Duration,
) -> Result<(PeerStream, Transport), PeerError> {
    let r = match via {
        Via::Tcp => utp::race(addr, None, timeout, tcp(addr)).await,
        Via::Race(socket) => utp::race(addr, Some(socket), timeout, tcp(addr)).await,
        Via::Utp(socket) => socket
            .connect(addr, timeout)
            .await
            .map(|s| (Box::new(s) as PeerStream, Transport::Utp)),
    };
    r.map_err(|source| {
        if source.kind() == std::io::ErrorKind::TimedOut {
            PeerError::Stalled {
                addr,
                secs: timeout.as_secs(),
            }
        } else {
            PeerError::Io { addr, source }
        }
    })
}

/// Whether a connection that failed with `e` over TCP is worth trying
/// again over uTP (BEP 29): the peer closed or reset it (as a client with
/// TCP turned off does) or it failed otherwise on the way, but neither
/// stalled nor answered for another torrent or in a way MSE refuses.
pub(crate) fn worth_utp(e: &PeerError) -> bool {
    match e {
        PeerError::Io { .. } => true,
        PeerError::Encryption { source, .. } => {
            matches!(source, MseError::Io(_) | MseError::Closed)
        }
        _ => false,
    }
}

/// Connects to `addr` within `timeout` (by TCP, or by TCP and uTP as
/// [`crate::utp::race`] says when `utp` is given) and, unless `policy` is
/// [`Encryption::Disable`], runs the MSE handshake as A with our
/// BitTorrent handshake `ours` as its initial payload. Under
/// [`Encryption::Prefer`] MSE gets half of `timeout`, and a peer that
/// closes the connection, stalls or answers in plaintext during it is
/// dialled again in plaintext within what is left, over the transport
/// that carried the first attempt. When MSE fails over TCP because the
/// peer closed the connection ([`worth_utp`]), the whole dial is tried
/// once more over uTP alone, with at most [`utp::UTP_FALLBACK_LIMIT`] to
/// open; TCP's error is returned when that fails too.
pub(crate) async fn dial(
    addr: SocketAddr,
    info_hash: InfoHash,
    ours: &[u8; HANDSHAKE_LEN],
    policy: Encryption,
    timeout: Duration,
    utp: Option<&UtpSocket>,
) -> Result<(PeerStream, OurHandshake, Transport), PeerError> {
    let started = Instant::now();
    let via = utp.map_or(Via::Tcp, Via::Race);
    match dial_via(addr, info_hash, ours, policy, timeout, via).await {
        Ok(d) => Ok(d),
        Err((e, Some(Transport::Tcp))) if worth_utp(&e) => match utp {
            Some(socket) => {
                let left = timeout.saturating_sub(started.elapsed());
                tracing::debug!(%addr, error = %e, "failed over TCP, trying uTP");
                dial_utp(addr, info_hash, ours, policy, left, socket)
                    .await
                    .map_err(|_| e)
            }
            None => Err(e),
        },
        Err((e, _)) => Err(e),
    }
}

/// As [`dial`], over uTP alone (BEP 29): the fallback for a peer whose TCP
/// connection failed, so the uTP connect gets at most
/// [`utp::UTP_FALLBACK_LIMIT`] of `timeout`.
pub(crate) async fn dial_utp(
    addr: SocketAddr,
    info_hash: InfoHash,
    ours: &[u8; HANDSHAKE_LEN],
    policy: Encryption,
    timeout: Duration,
    socket: &UtpSocket,
) -> Result<(PeerStream, OurHandshake, Transport), PeerError> {
    if timeout.is_zero() {
        return Err(PeerError::Stalled { addr, secs: 0 });
    }
    let started = Instant::now();
    let (stream, _) = open(addr, Via::Utp(socket), timeout.min(utp::UTP_FALLBACK_LIMIT)).await?;
    let left = timeout.saturating_sub(started.elapsed());
    with_mse(
        addr,
        stream,
        Transport::Utp,
        info_hash,
        ours,
        policy,
        left,
        Some(socket),
    )
    .await
    .map_err(|(e, _)| e)
}

/// [`dial`] over `via`, without the uTP fallback; an error says which
/// transport carried the connection, when one opened.
async fn dial_via(
    addr: SocketAddr,
    info_hash: InfoHash,
    ours: &[u8; HANDSHAKE_LEN],
    policy: Encryption,
    timeout: Duration,
    via: Via<'_>,
) -> Result<(PeerStream, OurHandshake, Transport), (PeerError, Option<Transport>)> {
    let started = Instant::now();
    let (stream, transport) = open(addr, via, timeout).await.map_err(|e| (e, None))?;
    tracing::trace!(%addr, ?transport, "connected");
    let socket = match via {
        Via::Race(s) | Via::Utp(s) => Some(s),
        Via::Tcp => None,
    };
    let left = timeout.saturating_sub(started.elapsed());
    with_mse(
        addr, stream, transport, info_hash, ours, policy, left, socket,
    )
    .await
}

/// Runs MSE on `stream` as `policy` says (see [`dial`]), within `timeout`;
/// a plaintext retry goes over `transport` again.
#[allow(clippy::too_many_arguments)]
async fn with_mse(
    addr: SocketAddr,
    stream: PeerStream,
    transport: Transport,
    info_hash: InfoHash,
    ours: &[u8; HANDSHAKE_LEN],
    policy: Encryption,
    timeout: Duration,
    socket: Option<&UtpSocket>,
) -> Result<(PeerStream, OurHandshake, Transport), (PeerError, Option<Transport>)> {
    if policy == Encryption::Disable {
        return Ok((stream, OurHandshake::First, transport));
    }
    let started = Instant::now();
    // Under `Prefer`, MSE may take half of the limit, so that a peer that
    // stalls on it still gets its plaintext attempt.
    let budget = match policy {
        Encryption::Prefer => timeout / 2,
        _ => timeout,
    };
    let fail = |e| (e, Some(transport));
    match mse::initiate_with_payload(stream, info_hash, policy, ours, budget).await {
        Ok(s) => Ok((Box::new(s), OurHandshake::Sent, transport)),
        Err(e) if policy == Encryption::Prefer && e.may_retry_plaintext() => {
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(fail(PeerError::Encryption { addr, source: e }));
            }
            tracing::debug!(%addr, error = %e, "MSE handshake failed, dialling again in plaintext");
            let via = match (transport, socket) {
                (Transport::Utp, Some(s)) => Via::Utp(s),
                _ => Via::Tcp,
            };
            let (stream, _) = open(addr, via, left).await.map_err(fail)?;
            Ok((stream, OurHandshake::First, transport))
        }
        Err(e) => Err(fail(PeerError::Encryption { addr, source: e })),
    }
}

/// Answers a peer that connected to us: a plaintext BitTorrent handshake
/// or MSE, as `policy` allows, for `info_hash`, within `timeout`. The
/// stream returned starts with the peer's BitTorrent handshake.
pub(crate) async fn answer(
    stream: PeerStream,
    addr: SocketAddr,
    info_hash: InfoHash,
    policy: Encryption,
    timeout: Duration,
) -> Result<PeerStream, PeerError> {
    match mse::respond(stream, &[info_hash], policy, timeout).await {
        Ok((s, _)) => Ok(Box::new(s)),
        Err(source) => Err(PeerError::Encryption { addr, source }),
    }
}
