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
use crate::mse::{self, Encryption};
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

async fn tcp(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Opens a connection to `addr` within `timeout`: TCP, or uTP as well
/// when `utp` is given (see [`crate::utp::race`]), or only `only` when set
/// (the plaintext retry goes the way the first attempt went).
async fn open(
    addr: SocketAddr,
    utp: Option<&UtpSocket>,
    only: Option<Transport>,
    timeout: Duration,
) -> Result<(PeerStream, Transport), PeerError> {
    let r = match (only, utp) {
        (Some(Transport::Utp), Some(socket)) => socket
            .connect(addr, timeout)
            .await
            .map(|s| (Box::new(s) as PeerStream, Transport::Utp)),
        (Some(Transport::Tcp), _) | (_, None) => utp::race(addr, None, timeout, tcp(addr)).await,
        (None, Some(_)) => utp::race(addr, utp, timeout, tcp(addr)).await,
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

/// Connects to `addr` within `timeout` (by TCP, or by TCP and uTP as
/// [`crate::utp::race`] says when `utp` is given) and, unless `policy` is
/// [`Encryption::Disable`], runs the MSE handshake as A with our
/// BitTorrent handshake `ours` as its initial payload. Under
/// [`Encryption::Prefer`] MSE gets half of `timeout`, and a peer that
/// closes the connection, stalls or answers in plaintext during it is
/// dialled again in plaintext within what is left, over the transport
/// that carried the first attempt.
pub(crate) async fn dial(
    addr: SocketAddr,
    info_hash: InfoHash,
    ours: &[u8; HANDSHAKE_LEN],
    policy: Encryption,
    timeout: Duration,
    utp: Option<&UtpSocket>,
) -> Result<(PeerStream, OurHandshake), PeerError> {
    let started = Instant::now();
    let (stream, transport) = open(addr, utp, None, timeout).await?;
    tracing::trace!(%addr, ?transport, "connected");
    if policy == Encryption::Disable {
        return Ok((stream, OurHandshake::First));
    }
    // Under `Prefer`, MSE may take half of the limit, so that a peer that
    // stalls on it still gets its plaintext attempt.
    let budget = match policy {
        Encryption::Prefer => timeout / 2,
        _ => timeout,
    };
    let left = budget.saturating_sub(started.elapsed());
    match mse::initiate_with_payload(stream, info_hash, policy, ours, left).await {
        Ok(s) => Ok((Box::new(s), OurHandshake::Sent)),
        Err(e) if policy == Encryption::Prefer && e.may_retry_plaintext() => {
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(PeerError::Encryption { addr, source: e });
            }
            tracing::debug!(%addr, error = %e, "MSE handshake failed, dialling again in plaintext");
            let (stream, _) = open(addr, utp, Some(transport), left).await?;
            Ok((stream, OurHandshake::First))
        }
        Err(e) => Err(PeerError::Encryption { addr, source: e }),
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
