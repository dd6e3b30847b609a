//! Fetching a torrent's info dictionary from peers (BEP 9 over the
//! extension protocol of BEP 10): several peers at once, each asked for
//! every piece; the first dictionary that hashes to the link's info-hashes
//! wins (SHA-1 for `btih`, SHA-256 for `btmh`, BEP 52).

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dlm_core::CancellationToken;
use futures::stream::{FuturesUnordered, Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::extension::ut_metadata::{MAX_METADATA_BYTES, MetadataAssembly, MetadataMessage};
use crate::extension::{ExtendedHandshake, UT_METADATA_ID};
use crate::metainfo_v2::Sha256Hash;
use crate::mse::Encryption;
use crate::peer::{OurHandshake, PeerStream};
use crate::tracker::PeerId;
use crate::wire::{HANDSHAKE_LEN, Handshake, Message};
use crate::{InfoHash, TorrentError};

/// Peers asked for the metadata at once.
const PARALLEL: usize = 8;

/// A peer that sends no message for this long is given up on.
pub(super) const PEER_IDLE: Duration = Duration::from_secs(20);

/// Metadata requests kept in flight with one peer (libtorrent answers
/// each 16 KiB piece at once; more in flight only queues at the peer).
const REQUESTS_IN_FLIGHT: usize = 16;

/// Bitfields of up to this many bytes are accepted while the piece count
/// is unknown (8 Mi pieces).
pub(super) const MAX_BITFIELD_BYTES: usize = 1 << 20;

/// What a metadata fetch found.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// The info dictionary, its SHA-1 checked.
    pub(crate) info: Bytes,
    /// Peers that completed the BitTorrent handshake: the swarm dials them first.
    pub(crate) reachable: Vec<SocketAddr>,
}

/// How one peer's attempt ended.
struct PeerOutcome {
    addr: SocketAddr,
    /// It answered the BitTorrent handshake for this swarm.
    reachable: bool,
    result: Result<Bytes, String>,
}

/// Fetches the info dictionary of `info_hash` from the peers `candidates`
/// yields (trackers, the DHT, `x.pe`), at most [`PARALLEL`] at once, until
/// one delivers it verified or `limit` passes. With `info_hash_v2` (a
/// `btmh` link, BEP 52) the dictionary's SHA-256 must be it; its SHA-1 must
/// be `info_hash` unless that is only the truncated v2 info-hash (a v2-only
/// link).
///
/// # Errors
/// [`TorrentError::Metadata`] when no peer was found, none delivered
/// verified metadata before `limit`, or `cancel` fired.
pub(crate) async fn fetch_metadata(
    (info_hash, info_hash_v2): (InfoHash, Option<Sha256Hash>),
    peer_id: PeerId,
    mut candidates: impl Stream<Item = Vec<SocketAddr>> + Unpin + Send,
    connect_timeout: Duration,
    encryption: Encryption,
    limit: Duration,
    cancel: CancellationToken,
) -> Result<Fetched, TorrentError> {
    let fail = |message: String| TorrentError::Metadata {
        info_hash: info_hash.to_hex(),
        message,
    };
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let mut pending: VecDeque<SocketAddr> = VecDeque::new();
    let mut seen: HashSet<SocketAddr> = HashSet::new();
    let mut running = FuturesUnordered::new();
    let mut reachable = Vec::new();
    let mut candidates_done = false;
    let mut tried = 0usize;
    let mut last_error: Option<String> = None;
    loop {
        while running.len() < PARALLEL {
            let Some(addr) = pending.pop_front() else {
                break;
            };
            tried += 1;
            running.push(from_peer(
                addr,
                (info_hash, info_hash_v2),
                peer_id,
                connect_timeout,
                encryption,
            ));
        }
        if running.is_empty() && candidates_done {
            return Err(fail(match (tried, last_error) {
                (0, _) => "no peer found (trackers, DHT and x.pe gave none)".into(),
                (n, Some(e)) => format!("none of {n} peers delivered it (last: {e})"),
                (n, None) => format!("none of {n} peers delivered it"),
            }));
        }
        tokio::select! {
            () = cancel.cancelled() => return Err(fail("cancelled".into())),
            () = &mut deadline => {
                return Err(fail(format!(
                    "not received within {} s from {tried} peers{}",
                    limit.as_secs(),
                    last_error.map(|e| format!(" (last: {e})")).unwrap_or_default()
                )));
            }
            batch = candidates.next(), if !candidates_done => match batch {
                Some(addrs) => {
                    for a in addrs {
                        if seen.len() < 10_000 && seen.insert(a) {
                            pending.push_back(a);
                        }
                    }
                }
                None => candidates_done = true,
            },
            Some(outcome) = running.next() => {
                let PeerOutcome { addr, reachable: ok, result } = outcome;
                if ok {
                    reachable.push(addr);
                }
                match result {
                    Ok(info) => {
                        tracing::debug!(peer = %addr, bytes = info.len(), "metadata received");
                        return Ok(Fetched { info, reachable });
                    }
                    Err(e) => {
                        tracing::debug!(peer = %addr, error = %e, "no metadata from peer");
                        last_error = Some(format!("{addr}: {e}"));
                    }
                }
            }
        }
    }
}

/// Asks one peer for the whole info dictionary.
async fn from_peer(
    addr: SocketAddr,
    info_hash: (InfoHash, Option<Sha256Hash>),
    peer_id: PeerId,
    connect_timeout: Duration,
    encryption: Encryption,
) -> PeerOutcome {
    let mut reachable = false;
    let result = exchange(
        addr,
        info_hash,
        peer_id,
        (connect_timeout, encryption),
        &mut reachable,
    )
    .await;
    PeerOutcome {
        addr,
        reachable,
        result,
    }
}

/// Dials `addr` over TCP (no uTP here yet), with MSE as `encryption` says
/// (our handshake may ride in its payload), and exchanges BEP 3 handshakes
/// for `info_hash`, all within `connect_timeout`. Returns the stream and
/// the peer's handshake.
///
/// # Errors
/// A message saying why: the dial, MSE or handshake failed, the peer named
/// another torrent, or no handshake came in time.
pub(super) async fn handshake(
    addr: SocketAddr,
    info_hash: InfoHash,
    peer_id: PeerId,
    connect_timeout: Duration,
    encryption: Encryption,
) -> Result<(PeerStream, Handshake), String> {
    let ours = Handshake::ours(info_hash, peer_id).encode();
    let exchange = async {
        let (mut stream, sent, _) =
            crate::peer::dial(addr, info_hash, &ours, encryption, connect_timeout, None)
                .await
                .map_err(|e| e.to_string())?;
        if sent != OurHandshake::Sent {
            stream.write_all(&ours).await.map_err(|e| e.to_string())?;
        }
        let mut hs = [0u8; HANDSHAKE_LEN];
        stream
            .read_exact(&mut hs)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((stream, hs))
    };
    let (stream, hs) = tokio::time::timeout(connect_timeout, exchange)
        .await
        .map_err(|_| format!("no handshake within {} s", connect_timeout.as_secs()))??;
    let remote = Handshake::decode(&hs, Some(info_hash)).map_err(|e| e.to_string())?;
    Ok((stream, remote))
}

async fn exchange(
    addr: SocketAddr,
    (info_hash, info_hash_v2): (InfoHash, Option<Sha256Hash>),
    peer_id: PeerId,
    (connect_timeout, encryption): (Duration, Encryption),
    reachable: &mut bool,
) -> Result<Bytes, String> {
    let (mut stream, remote) =
        handshake(addr, info_hash, peer_id, connect_timeout, encryption).await?;
    *reachable = true;
    if !remote.supports_extensions() {
        return Err("does not speak the extension protocol (BEP 10)".into());
    }
    let mut ours = ExtendedHandshake::default();
    ours.m
        .insert("ut_metadata".into(), i64::from(UT_METADATA_ID));
    ours.v = Some(serde_bytes::ByteBuf::from(crate::CLIENT_NAME.as_bytes()));
    send(
        &mut stream,
        &Message::Extended {
            id: 0,
            payload: Bytes::from(ours.encode()),
        },
    )
    .await?;
    let mut buf = BytesMut::with_capacity(32 << 10);
    let mut assembly: Option<MetadataAssembly> = None;
    let mut their_id = 0u8;
    let mut requested: VecDeque<u32> = VecDeque::new();
    let mut in_flight = 0usize;
    loop {
        let m = next_message(&mut stream, &mut buf).await?;
        let Message::Extended { id, payload } = m else {
            continue;
        };
        if id == 0 {
            if assembly.is_some() {
                continue;
            }
            let theirs = ExtendedHandshake::decode(&payload).map_err(|e| e.to_string())?;
            their_id = theirs
                .id_of("ut_metadata")
                .ok_or("does not offer ut_metadata (BEP 9)")?;
            let size = theirs.metadata_size(MAX_METADATA_BYTES).ok_or_else(|| {
                format!(
                    "metadata_size {:?} missing or over {MAX_METADATA_BYTES} bytes",
                    theirs.metadata_size
                )
            })?;
            let a = MetadataAssembly::new(size).ok_or("bad metadata_size")?;
            requested.extend(a.missing());
            assembly = Some(a);
        } else if id == UT_METADATA_ID {
            let Some(a) = assembly.as_mut() else {
                continue;
            };
            match MetadataMessage::decode(&payload).map_err(|e| e.to_string())? {
                MetadataMessage::Data {
                    piece,
                    total_size,
                    data,
                } => {
                    a.place(piece, total_size, &data)
                        .map_err(|e| e.to_string())?;
                    in_flight = in_flight.saturating_sub(1);
                    if a.is_complete() {
                        // A v2-only link names no SHA-1: its swarm is the truncated v2 hash.
                        let v1 = info_hash_v2
                            .is_none_or(|v2| v2[..20] != info_hash.0)
                            .then_some(&info_hash);
                        return a.verified_by(v1, info_hash_v2.as_ref()).ok_or_else(|| {
                            "sent metadata that does not match the info-hash".into()
                        });
                    }
                }
                MetadataMessage::Reject { piece } => {
                    return Err(format!("rejected the request for metadata piece {piece}"));
                }
                MetadataMessage::Request { piece } => {
                    // We have nothing to serve yet: BEP 9 says reject.
                    let reject = MetadataMessage::Reject { piece };
                    send(
                        &mut stream,
                        &Message::Extended {
                            id: their_id,
                            payload: Bytes::from(reject.encode()),
                        },
                    )
                    .await?;
                }
            }
        } else {
            continue;
        }
        while in_flight < REQUESTS_IN_FLIGHT {
            let Some(piece) = requested.pop_front() else {
                break;
            };
            let req = MetadataMessage::Request { piece };
            send(
                &mut stream,
                &Message::Extended {
                    id: their_id,
                    payload: Bytes::from(req.encode()),
                },
            )
            .await?;
            in_flight += 1;
        }
    }
}

/// The next whole message from `stream`, read into `buf` (which keeps
/// what follows it), waiting at most [`PEER_IDLE`] for each read.
///
/// # Errors
/// A message saying why: a malformed message, silence, the connection
/// closed, or an I/O error.
pub(super) async fn next_message(
    stream: &mut PeerStream,
    buf: &mut BytesMut,
) -> Result<Message, String> {
    loop {
        if let Some(m) = Message::decode(buf, MAX_BITFIELD_BYTES).map_err(|e| e.to_string())? {
            return Ok(m);
        }
        match tokio::time::timeout(PEER_IDLE, stream.read_buf(buf)).await {
            Err(_) => return Err(format!("silent for {} s", PEER_IDLE.as_secs())),
            Ok(Ok(0)) => return Err("closed the connection".into()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.to_string()),
        }
    }
}

async fn send(stream: &mut PeerStream, m: &Message) -> Result<(), String> {
    let mut out = BytesMut::new();
    m.encode(&mut out);
    send_bytes(stream, &out).await
}

/// Writes `bytes` (encoded messages), within [`PEER_IDLE`].
///
/// # Errors
/// A message saying why: the write timed out or failed.
pub(super) async fn send_bytes(stream: &mut PeerStream, bytes: &[u8]) -> Result<(), String> {
    tokio::time::timeout(PEER_IDLE, stream.write_all(bytes))
        .await
        .map_err(|_| "write timed out".to_string())?
        .map_err(|e| e.to_string())
}
