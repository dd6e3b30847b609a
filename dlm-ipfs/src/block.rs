//! Blocks and their verification: a block is accepted only when the hash of
//! its bytes is the multihash its CID names (spec: multihash, CID).

use bytes::Bytes;
use cid::Cid;
use sha2::Digest;

use crate::IpfsError;

/// The largest block dlm accepts, bytes (4 MiB). The bitswap spec bounds a
/// block at 2 MiB and UnixFS chunkers write at most 1 MiB; gateways and
/// peers sending more are refused before the bytes are hashed.
pub const MAX_BLOCK_BYTES: usize = 4 << 20;

/// Multicodec `raw` (0x55): the block is the bytes.
pub const RAW: u64 = 0x55;
/// Multicodec `dag-pb` (0x70): a protobuf node (UnixFS files, directories).
pub const DAG_PB: u64 = 0x70;
/// Multicodec `libp2p-key` (0x72): an IPNS name's public key.
pub const LIBP2P_KEY: u64 = 0x72;

/// Multihash `identity` (0x00): the "hash" is the data itself.
pub const IDENTITY: u64 = 0x00;
/// Multihash `sha2-256` (0x12).
pub const SHA2_256: u64 = 0x12;
/// Multihash `sha2-512` (0x13).
pub const SHA2_512: u64 = 0x13;
/// Multihash `blake3` (0x1e), any digest length (XOF).
pub const BLAKE3: u64 = 0x1e;

/// The shortest digest a CID may carry, bytes (20, as Kubo's `verifcid`):
/// a shorter one (a sha2-256 truncated to a few bytes) lets anyone forge a
/// block that matches it.
pub const MIN_DIGEST_BYTES: usize = 20;
/// The longest identity "digest" (inline data) a CID may carry, bytes (128,
/// Kubo's default): identity CIDs carry their block instead of hashing it,
/// so the minimum does not apply to them (nothing can be forged: the data
/// is the CID) and they are accepted, as UnixFS writers inline small
/// blocks. The `cid` crate already holds at most 64 bytes of multihash.
pub const MAX_IDENTITY_BYTES: usize = 128;

/// Checks the multihash of `cid`: at least [`MIN_DIGEST_BYTES`] of digest,
/// or for identity at most [`MAX_IDENTITY_BYTES`] of data.
///
/// # Errors
/// [`IpfsError::InvalidCid`] naming the length.
pub fn check_digest(cid: &Cid) -> Result<(), IpfsError> {
    let mh = cid.hash();
    let len = mh.digest().len();
    let reason = if mh.code() == IDENTITY {
        (len > MAX_IDENTITY_BYTES)
            .then(|| format!("identity data of {len} bytes (at most {MAX_IDENTITY_BYTES})"))
    } else {
        (len < MIN_DIGEST_BYTES)
            .then(|| format!("a {len}-byte digest (at least {MIN_DIGEST_BYTES})"))
    };
    match reason {
        Some(reason) => Err(IpfsError::InvalidCid {
            input: cid.to_string().chars().take(100).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A block: a CID and bytes that hash to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The block's CID.
    pub cid: Cid,
    /// The block's bytes (already checked against `cid`).
    pub data: Bytes,
}

impl Block {
    /// A block from `data`, checked against `cid`.
    ///
    /// # Errors
    /// As [`verify`], with `from` naming where the bytes came from.
    pub fn verified(cid: Cid, data: Bytes, from: &str) -> Result<Self, IpfsError> {
        verify(&cid, &data, from)?;
        Ok(Self { cid, data })
    }
}

/// Checks that `data` hashes to the multihash in `cid`.
///
/// # Errors
/// [`IpfsError::InvalidCid`] for a digest under [`MIN_DIGEST_BYTES`] (see
/// [`check_digest`]), [`IpfsError::BlockTooLarge`] over [`MAX_BLOCK_BYTES`],
/// [`IpfsError::UnsupportedHash`] for hash functions other than identity,
/// sha2-256, sha2-512 and blake3, and [`IpfsError::HashMismatch`] (naming
/// `from`) when the digest differs.
pub fn verify(cid: &Cid, data: &[u8], from: &str) -> Result<(), IpfsError> {
    check_digest(cid)?;
    if data.len() > MAX_BLOCK_BYTES {
        return Err(IpfsError::BlockTooLarge {
            cid: cid.to_string(),
            max: MAX_BLOCK_BYTES,
        });
    }
    let mh = cid.hash();
    let want = mh.digest();
    let got = digest(mh.code(), data, want.len()).ok_or_else(|| IpfsError::UnsupportedHash {
        code: mh.code(),
        cid: cid.to_string(),
    })?;
    if got.as_deref() == Some(want) {
        Ok(())
    } else {
        Err(IpfsError::HashMismatch {
            cid: cid.to_string(),
            from: from.to_string(),
        })
    }
}

/// The `len`-byte digest of `data` under multihash function `code`:
/// `None` for a function dlm cannot compute, `Some(None)` when `len` is not
/// a length that function gives (sha2 digests may be truncated, blake3's
/// may be up to 64 bytes, identity's is the data itself).
pub(crate) fn digest(code: u64, data: &[u8], len: usize) -> Option<Option<Vec<u8>>> {
    let full = match code {
        IDENTITY => data.to_vec(),
        SHA2_256 => sha2::Sha256::digest(data).to_vec(),
        SHA2_512 => sha2::Sha512::digest(data).to_vec(),
        BLAKE3 => {
            let mut out = vec![0u8; len.min(64)];
            let mut h = blake3::Hasher::new();
            h.update(data);
            h.finalize_xof().fill(&mut out);
            out
        }
        _ => return None,
    };
    let fits = if code == IDENTITY {
        len == full.len()
    } else {
        len > 0 && len <= full.len()
    };
    Some(fits.then(|| full[..len].to_vec()))
}

/// The CIDv1 of `data` as a `codec` block hashed with sha2-256: `raw_cid`
/// for raw leaves, and dag-pb nodes' CIDs in tests and tools.
pub fn sha256_cid(codec: u64, data: &[u8]) -> Cid {
    let digest = sha2::Sha256::digest(data);
    // A 32-byte digest always fits a 64-byte multihash.
    let mh = multihash::Multihash::<64>::wrap(SHA2_256, &digest).unwrap_or_default();
    Cid::new_v1(codec, mh)
}

/// The CIDv1 of `data` as a raw block hashed with sha2-256 (`bafkrei…`),
/// as UnixFS writers name raw leaves.
pub fn raw_cid(data: &[u8]) -> Cid {
    sha256_cid(RAW, data)
}

/// The data of an identity-hashed CID, which carries its block inline
/// (`None` too for one over [`MAX_IDENTITY_BYTES`]: see [`check_digest`]).
pub fn inline_data(cid: &Cid) -> Option<Bytes> {
    (cid.hash().code() == IDENTITY && check_digest(cid).is_ok())
        .then(|| Bytes::copy_from_slice(cid.hash().digest()))
}

/// Parses a CID from text: CIDv0 (`Qm…`, base58btc) or CIDv1 in any
/// multibase (`b…` base32 is the usual form, `z…` base58btc, `k…` base36).
///
/// # Errors
/// [`IpfsError::InvalidCid`] for anything else (at most 512 characters are
/// looked at), and for a digest [`check_digest`] refuses.
pub fn parse_cid(text: &str) -> Result<Cid, IpfsError> {
    let bad = |reason: String| IpfsError::InvalidCid {
        input: text.chars().take(100).collect(),
        reason,
    };
    if text.is_empty() || text.len() > 512 {
        return Err(bad("empty or over 512 characters".into()));
    }
    let cid = Cid::try_from(text).map_err(|e| bad(e.to_string()))?;
    check_digest(&cid)?;
    Ok(cid)
}

/// Parses a CID from its binary form, returning it and the bytes it took.
///
/// # Errors
/// [`IpfsError::InvalidCid`].
pub fn read_cid(bytes: &[u8]) -> Result<(Cid, usize), IpfsError> {
    let mut cursor = std::io::Cursor::new(bytes);
    let cid = Cid::read_bytes(&mut cursor).map_err(|e| IpfsError::InvalidCid {
        input: hex::encode(&bytes[..bytes.len().min(16)]),
        reason: e.to_string(),
    })?;
    Ok((cid, cursor.position() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    // "hello world\n" as a raw CIDv1 block (sha2-256), as `ipfs add --raw-leaves --cid-version 1` names it.
    const HELLO: &[u8] = b"hello world\n";

    #[test]
    fn verifies_sha256_and_rejects_other_bytes() {
        let cid = raw_cid(HELLO);
        verify(&cid, HELLO, "test").unwrap();
        let err = verify(&cid, b"hello world!", "gw").unwrap_err();
        assert!(matches!(err, IpfsError::HashMismatch { .. }), "{err}");
    }

    #[test]
    fn round_trips_text_forms() {
        let cid = raw_cid(HELLO);
        let text = cid.to_string();
        assert!(text.starts_with("bafkrei"), "{text}");
        assert_eq!(parse_cid(&text).unwrap(), cid);
        let (back, used) = read_cid(&cid.to_bytes()).unwrap();
        assert_eq!((back, used), (cid, cid.to_bytes().len()));
    }

    #[test]
    fn parses_cidv0() {
        // The empty UnixFS directory, a well-known CIDv0.
        let cid = parse_cid("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn").unwrap();
        assert_eq!(cid.version(), cid::Version::V0);
        assert_eq!(cid.codec(), DAG_PB);
    }

    #[test]
    fn identity_and_blake3() {
        let mh = multihash::Multihash::<64>::wrap(IDENTITY, b"tiny").unwrap();
        let cid = Cid::new_v1(RAW, mh);
        verify(&cid, b"tiny", "t").unwrap();
        assert_eq!(inline_data(&cid).unwrap(), Bytes::from_static(b"tiny"));
        let digest = blake3::hash(HELLO);
        let mh = multihash::Multihash::<64>::wrap(BLAKE3, digest.as_bytes()).unwrap();
        verify(&Cid::new_v1(RAW, mh), HELLO, "t").unwrap();
    }

    #[test]
    fn digests_under_20_bytes_are_refused_and_identity_is_bounded() {
        let short = multihash::Multihash::<64>::wrap(SHA2_256, &[0u8; 4]).unwrap();
        let cid = Cid::new_v1(RAW, short);
        let e = verify(&cid, b"anything", "t").unwrap_err();
        assert!(matches!(e, IpfsError::InvalidCid { .. }), "{e}");
        assert!(parse_cid(&cid.to_string()).is_err());
        let full = raw_cid(HELLO).hash().digest().to_vec();
        let twenty = multihash::Multihash::<64>::wrap(SHA2_256, &full[..20]).unwrap();
        verify(&Cid::new_v1(RAW, twenty), HELLO, "t").unwrap();
        // Identity carries its data, however short: accepted (see check_digest).
        let tiny = multihash::Multihash::<64>::wrap(IDENTITY, b"t").unwrap();
        assert_eq!(inline_data(&Cid::new_v1(RAW, tiny)).unwrap(), &b"t"[..]);
    }

    #[test]
    fn rejects_bad_text() {
        for s in ["", "Qm", "bafy!!", "zzzz", "not a cid"] {
            assert!(parse_cid(s).is_err(), "{s}");
        }
    }
}
