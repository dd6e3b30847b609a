//! The MSE handshake, both sides. A is the side that connected, B the side
//! that accepted:
//!
//! ```text
//! 1 A->B: Ya, PadA
//! 2 B->A: Yb, PadB
//! 3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! 4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
//! 5 A->B: ENCRYPT2(payload)
//! ```
//!
//! `ENCRYPT` is RC4 with `keyA` (A to B) or `keyB` (B to A); `ENCRYPT2` is
//! the method B selected (RC4 with the same streams, or plaintext). Lengths
//! are big-endian. B finds the end of `PadA` by searching for
//! `HASH('req1', S)`, A finds the end of `PadB` by searching for
//! `ENCRYPT(VC)`; both searches stop after 512 bytes of padding.
//!
//! # Invariants
//! - Every read is bounded: at most 96 + 532 bytes before B's sync point,
//!   96 + 520 before A's, then fixed-size fields and lengths capped at 512
//!   (pads) or 65535 (`IA`, a `u16`); each read call takes at most
//!   4096 bytes, so the buffer stays below the longest handshake
//!   plus one chunk.
//! - Every wait is under the caller's `timeout` (the whole handshake).
//! - Nothing the peer sends can panic: lengths are checked before slicing.
//! - Keystream positions: each direction's RC4 stream has encrypted exactly
//!   the bytes sent before the payload, so [`MseStream`] continues it.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::cipher::{Rc4Stream, req1, req2_xor_req3};
use super::dh::{KEY_LEN, KeyPair};
use super::policy::{CRYPTO_RC4, Encryption};
use super::{MseError, MseStream};
use crate::InfoHash;
use crate::wire::PROTOCOL;

/// Most bytes of padding (`PadA`, `PadB`, `PadC`, `PadD`).
pub const MAX_PAD: usize = 512;
/// The verification constant: 8 zero bytes.
const VC: [u8; 8] = [0; 8];
/// B's search window after `Ya`: `PadA` and the 20-byte `HASH('req1', S)`.
pub const REQ1_SEARCH: usize = MAX_PAD + 20;
/// A's search window after `Yb`: `PadB` and the 8-byte `ENCRYPT(VC)`.
pub const VC_SEARCH: usize = MAX_PAD + VC.len();
/// Longest initial payload (`IA`): its length is a `u16`.
pub const MAX_IA: usize = u16::MAX as usize;
/// Bytes taken from the stream per read call.
const READ_CHUNK: usize = 4096;

/// Reads until `buf` holds at least `want` bytes.
async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    want: usize,
) -> Result<(), MseError> {
    let mut chunk = [0u8; READ_CHUNK];
    while buf.len() < want {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(MseError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Reads until `pattern` appears in `buf[from..from + window]`; returns the
/// index just past it.
async fn sync<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    from: usize,
    pattern: &[u8],
    window: usize,
    what: &'static str,
) -> Result<usize, MseError> {
    loop {
        let end = buf.len().min(from + window);
        if let Some(i) = buf
            .get(from..end)
            .and_then(|w| w.windows(pattern.len()).position(|w| w == pattern))
        {
            return Ok(from + i + pattern.len());
        }
        if buf.len() >= from + window {
            return Err(MseError::NoSync {
                what,
                limit: window,
            });
        }
        fill(stream, buf, buf.len() + 1).await?;
    }
}

/// Whether `buf` starts with BEP 3's handshake header: 19, "BitTorrent
/// protocol" (a public key does with probability 2^-160).
fn is_plaintext_handshake(buf: &[u8]) -> bool {
    buf.first() == Some(&19) && buf.get(1..=PROTOCOL.len()) == Some(&PROTOCOL[..])
}

fn be16(b: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Our public key and random padding of 0 to 512 random bytes (steps 1, 2).
fn public_key_and_pad(keys: &KeyPair) -> Vec<u8> {
    let pad = fastrand::usize(..=MAX_PAD);
    let mut out = Vec::with_capacity(KEY_LEN + pad);
    out.extend_from_slice(keys.public());
    out.extend((0..pad).map(|_| fastrand::u8(..)));
    out
}

fn fresh_keys() -> Result<KeyPair, MseError> {
    KeyPair::generate().map_err(|e| MseError::Random(e.to_string()))
}

async fn within<T>(
    timeout: std::time::Duration,
    f: impl Future<Output = Result<T, MseError>>,
) -> Result<T, MseError> {
    tokio::time::timeout(timeout, f)
        .await
        .map_err(|_| MseError::TimedOut {
            ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        })?
}

/// Opens an MSE connection as A, the side that connected, for the torrent
/// `info_hash` (the `SKEY`), within `timeout`. Sends no initial payload:
/// see [`initiate_with_payload`].
///
/// # Errors
/// As [`initiate_with_payload`].
///
/// # Cancel safety
/// Not cancel safe: dropping the future drops the stream mid-handshake.
pub async fn initiate<S: AsyncRead + AsyncWrite + Unpin + Send>(
    stream: S,
    info_hash: InfoHash,
    policy: Encryption,
    timeout: std::time::Duration,
) -> Result<MseStream<S>, MseError> {
    initiate_with_payload(stream, info_hash, policy, &[], timeout).await
}

/// Opens an MSE connection as A for the torrent `info_hash` (the `SKEY`),
/// within `timeout`, sending `initial_payload` (`IA`, at most 65535 bytes,
/// typically the 68-byte BitTorrent handshake) in step 3 to save a round
/// trip. We provide plaintext and RC4 under [`Encryption::Prefer`], RC4
/// only under [`Encryption::Require`]; under [`Encryption::Disable`] no MSE
/// happens: `initial_payload` is written in plaintext and the stream is
/// returned as it is.
///
/// # Errors
/// [`MseError::Closed`] when the peer closes the connection (a peer
/// without MSE, or one that requires what we do not provide),
/// [`MseError::Io`] when the connection fails,
/// [`MseError::TimedOut`], [`MseError::NoSync`], [`MseError::PadTooLong`],
/// [`MseError::NoCommonMethod`] for a `crypto_select` we did not provide;
/// `Io` with `InvalidInput` for an `initial_payload` above 65535 bytes.
///
/// # Cancel safety
/// Not cancel safe: dropping the future drops the stream mid-handshake.
pub async fn initiate_with_payload<S: AsyncRead + AsyncWrite + Unpin + Send>(
    mut stream: S,
    info_hash: InfoHash,
    policy: Encryption,
    initial_payload: &[u8],
    timeout: std::time::Duration,
) -> Result<MseStream<S>, MseError> {
    if initial_payload.len() > MAX_IA {
        return Err(MseError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "initial payload above 65535 bytes",
        )));
    }
    if policy == Encryption::Disable {
        within(timeout, async {
            stream.write_all(initial_payload).await?;
            Ok(())
        })
        .await?;
        return Ok(MseStream::plaintext(stream, Vec::new()));
    }
    let keys = fresh_keys()?;
    within(
        timeout,
        initiate_keyed(
            stream,
            &info_hash.0,
            policy.allowed(),
            initial_payload,
            keys,
        ),
    )
    .await
}

/// A's side with a given key pair and `crypto_provide`, no time limit.
async fn initiate_keyed<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    skey: &[u8],
    provide: u32,
    ia: &[u8],
    keys: KeyPair,
) -> Result<MseStream<S>, MseError> {
    // 1: Ya, PadA.
    stream.write_all(&public_key_and_pad(&keys)).await?;
    // 2: Yb (PadB is skipped by the VC search).
    let mut buf = Vec::with_capacity(KEY_LEN + VC_SEARCH);
    fill(&mut stream, &mut buf, 1 + PROTOCOL.len()).await?;
    if is_plaintext_handshake(&buf) {
        // A peer without MSE that answered our key with its own handshake.
        return Err(MseError::PlaintextReply);
    }
    fill(&mut stream, &mut buf, KEY_LEN).await?;
    let mut yb = [0u8; KEY_LEN];
    yb.copy_from_slice(&buf[..KEY_LEN]);
    let s = keys.shared_secret(&yb);
    let mut ours = Rc4Stream::key_a(&s, skey);
    let mut theirs = Rc4Stream::key_b(&s, skey);
    // 3: the hashes, then ENCRYPT(VC, crypto_provide, len(PadC) = 0, len(IA)), ENCRYPT(IA).
    let mut msg = Vec::with_capacity(40 + 16 + ia.len());
    msg.extend_from_slice(&req1(&s));
    msg.extend_from_slice(&req2_xor_req3(skey, &s));
    let start = msg.len();
    msg.extend_from_slice(&VC);
    msg.extend_from_slice(&provide.to_be_bytes());
    msg.extend_from_slice(&0u16.to_be_bytes());
    // The caller checked: at most 65535 bytes.
    msg.extend_from_slice(&u16::try_from(ia.len()).unwrap_or(u16::MAX).to_be_bytes());
    msg.extend_from_slice(ia);
    ours.apply(&mut msg[start..]);
    stream.write_all(&msg).await?;
    stream.flush().await?;
    // 4: find ENCRYPT(VC) after PadB, then crypto_select, len(PadD), PadD.
    let mut encrypted_vc = VC;
    theirs.apply(&mut encrypted_vc);
    let at = sync(
        &mut stream,
        &mut buf,
        KEY_LEN,
        &encrypted_vc,
        VC_SEARCH,
        "ENCRYPT(VC)",
    )
    .await?;
    fill(&mut stream, &mut buf, at + 6).await?;
    theirs.apply(&mut buf[at..at + 6]);
    let select = be32(&buf[at..]);
    let pad_d = be16(&buf[at + 4..]);
    if pad_d > MAX_PAD {
        return Err(MseError::PadTooLong {
            what: "PadD",
            len: pad_d,
        });
    }
    if select.count_ones() != 1 || select & provide == 0 {
        return Err(MseError::NoCommonMethod {
            peer: select,
            ours: provide,
        });
    }
    let end = at + 6 + pad_d;
    fill(&mut stream, &mut buf, end).await?;
    theirs.apply(&mut buf[at + 6..end]);
    // 5: what B sent after PadD is payload already.
    let mut rest = buf.split_off(end);
    Ok(if select == CRYPTO_RC4 {
        theirs.apply(&mut rest);
        MseStream::rc4(stream, rest, theirs, ours)
    } else {
        MseStream::plaintext(stream, rest)
    })
}

/// Answers a peer that connected to us, as B, within `timeout`: a
/// plaintext BitTorrent handshake (first byte 19, then "BitTorrent
/// protocol", BEP 3) or an MSE handshake for one of `skey_candidates` (the
/// info-hashes we serve). Returns the payload stream, which starts with
/// the peer's BitTorrent handshake (a plaintext one unread, or MSE's
/// initial payload), and the info-hash the peer asked for.
///
/// Under [`Encryption::Prefer`] both are accepted and plaintext is
/// selected when the peer provides it; [`Encryption::Require`] refuses
/// plaintext handshakes and selects RC4; [`Encryption::Disable`] refuses
/// MSE.
///
/// # Errors
/// [`MseError::PlaintextRefused`], [`MseError::EncryptionRefused`] by
/// policy; [`MseError::UnknownInfoHash`] for a torrent not in
/// `skey_candidates`; [`MseError::NoCommonMethod`] when the peer provides
/// no method we allow; [`MseError::NoSync`], [`MseError::BadVc`],
/// [`MseError::PadTooLong`] for a malformed handshake;
/// [`MseError::Closed`], [`MseError::Io`], [`MseError::TimedOut`].
///
/// # Cancel safety
/// Not cancel safe: dropping the future drops the stream mid-handshake.
pub async fn respond<S: AsyncRead + AsyncWrite + Unpin + Send>(
    stream: S,
    skey_candidates: &[InfoHash],
    policy: Encryption,
    timeout: std::time::Duration,
) -> Result<(MseStream<S>, InfoHash), MseError> {
    within(
        timeout,
        respond_keyed(stream, skey_candidates, policy, None),
    )
    .await
}

/// B's side with a given key pair (`None`: a fresh one), no time limit.
/// For the fuzz target, which needs a known key; not a stable API.
#[doc(hidden)]
pub async fn respond_keyed<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    skey_candidates: &[InfoHash],
    policy: Encryption,
    keys: Option<KeyPair>,
) -> Result<(MseStream<S>, InfoHash), MseError> {
    let mut buf = Vec::with_capacity(KEY_LEN + REQ1_SEARCH + 64);
    fill(&mut stream, &mut buf, 1 + PROTOCOL.len()).await?;
    if is_plaintext_handshake(&buf) {
        if policy == Encryption::Require {
            return Err(MseError::PlaintextRefused);
        }
        // pstrlen, pstr, 8 reserved bytes, then the info-hash (BEP 3).
        let at = 1 + PROTOCOL.len() + 8;
        fill(&mut stream, &mut buf, at + 20).await?;
        let asked = &buf[at..at + 20];
        let info_hash = *skey_candidates
            .iter()
            .find(|c| c.0 == asked)
            .ok_or(MseError::UnknownInfoHash)?;
        return Ok((MseStream::plaintext(stream, buf), info_hash));
    }
    if policy == Encryption::Disable {
        return Err(MseError::EncryptionRefused);
    }
    // 1: Ya; 2: Yb, PadB.
    fill(&mut stream, &mut buf, KEY_LEN).await?;
    let keys = match keys {
        Some(k) => k,
        None => fresh_keys()?,
    };
    stream.write_all(&public_key_and_pad(&keys)).await?;
    stream.flush().await?;
    let mut ya = [0u8; KEY_LEN];
    ya.copy_from_slice(&buf[..KEY_LEN]);
    let s = keys.shared_secret(&ya);
    // 3: HASH('req1', S) after PadA, then which torrent.
    let at = sync(
        &mut stream,
        &mut buf,
        KEY_LEN,
        &req1(&s),
        REQ1_SEARCH,
        "HASH('req1', S)",
    )
    .await?;
    // HASH('req2', SKEY) xor HASH('req3', S), VC, crypto_provide, len(PadC).
    fill(&mut stream, &mut buf, at + 20 + 14).await?;
    let asked = &buf[at..at + 20];
    let info_hash = *skey_candidates
        .iter()
        .find(|c| req2_xor_req3(&c.0, &s) == asked)
        .ok_or(MseError::UnknownInfoHash)?;
    let mut theirs = Rc4Stream::key_a(&s, &info_hash.0);
    let mut ours = Rc4Stream::key_b(&s, &info_hash.0);
    let head = at + 20;
    theirs.apply(&mut buf[head..head + 14]);
    if buf[head..head + 8] != VC {
        return Err(MseError::BadVc);
    }
    let provide = be32(&buf[head + 8..]);
    let pad_c = be16(&buf[head + 12..]);
    if pad_c > MAX_PAD {
        return Err(MseError::PadTooLong {
            what: "PadC",
            len: pad_c,
        });
    }
    let select = policy.select(provide).ok_or(MseError::NoCommonMethod {
        peer: provide,
        ours: policy.allowed(),
    })?;
    // PadC, len(IA), IA.
    let ia_at = head + 14 + pad_c + 2;
    fill(&mut stream, &mut buf, ia_at).await?;
    theirs.apply(&mut buf[head + 14..ia_at]);
    let ia_len = be16(&buf[ia_at - 2..]);
    fill(&mut stream, &mut buf, ia_at + ia_len).await?;
    let mut rest = buf.split_off(ia_at);
    theirs.apply(&mut rest[..ia_len]);
    // 4: ENCRYPT(VC, crypto_select, len(PadD) = 0).
    let mut reply = [0u8; 14];
    reply[8..12].copy_from_slice(&select.to_be_bytes());
    ours.apply(&mut reply);
    stream.write_all(&reply).await?;
    stream.flush().await?;
    Ok(if select == CRYPTO_RC4 {
        theirs.apply(&mut rest[ia_len..]);
        (MseStream::rc4(stream, rest, theirs, ours), info_hash)
    } else {
        (MseStream::plaintext(stream, rest), info_hash)
    })
}
