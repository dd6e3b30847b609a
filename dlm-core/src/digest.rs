//! Digests of whole downloads: the algorithms, expected checksums and an
//! in-order multi-algorithm hasher.
//!
//! SHA-256 is always computed (the `sha2` crate uses the CPU's SHA extensions
//! when present); SHA-1, SHA-512 and MD5 exist for compatibility with
//! published checksums (`aria2c --checksum`, RFC 3230 `Digest`).

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

use crate::{Error, ErrorKind};

/// A digest algorithm, named as in the HTTP Digest Algorithm Values registry
/// (RFC 9530 §5: `sha-256`, `sha-512`; legacy `sha`, `md5`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DigestAlgorithm {
    /// SHA-256 (FIPS 180-4), 32 bytes.
    #[serde(rename = "sha-256")]
    Sha256,
    /// SHA-512 (FIPS 180-4), 64 bytes.
    #[serde(rename = "sha-512")]
    Sha512,
    /// SHA-1 (FIPS 180-4), 20 bytes. Broken for collisions; compatibility only.
    #[serde(rename = "sha-1")]
    Sha1,
    /// MD5 (RFC 1321), 16 bytes. Broken; compatibility only.
    #[serde(rename = "md5")]
    Md5,
}

impl DigestAlgorithm {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
            Self::Sha1 => 20,
            Self::Md5 => 16,
        }
    }

    /// The canonical name (`sha-256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
            Self::Sha1 => "sha-1",
            Self::Md5 => "md5",
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DigestAlgorithm {
    type Err = Error;

    /// Accepts `sha-256`/`sha256`, `sha-512`/`sha512`, `sha-1`/`sha1`/`sha`, `md5`
    /// in any case.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for any other name.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "sha-256" | "sha256" => Ok(Self::Sha256),
            "sha-512" | "sha512" => Ok(Self::Sha512),
            "sha-1" | "sha1" | "sha" => Ok(Self::Sha1),
            "md5" | "md-5" => Ok(Self::Md5),
            other => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "unknown digest algorithm {other:?} (expected sha-256, sha-512, sha-1 or md5)"
                ),
            )),
        }
    }
}

/// An expected or computed digest: algorithm plus raw bytes.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: DigestAlgorithm,
    /// The digest bytes, [`DigestAlgorithm::output_len`] long.
    #[serde(with = "hex_bytes")]
    pub value: Vec<u8>,
}

impl Checksum {
    /// A checksum from raw bytes.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the length does not fit the algorithm.
    pub fn new(algorithm: DigestAlgorithm, value: Vec<u8>) -> Result<Self, Error> {
        if value.len() != algorithm.output_len() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{algorithm} digest must be {} bytes, got {}",
                    algorithm.output_len(),
                    value.len()
                ),
            ));
        }
        Ok(Self { algorithm, value })
    }

    /// Lower-case hex of the digest.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.value)
    }
}

impl FromStr for Checksum {
    type Err = Error;

    /// Parses `ALGO=HEX` (aria2's `--checksum` form, e.g. `sha-256=9f86…`);
    /// `ALGO:HEX` is accepted too.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an unknown algorithm, bad hex or a wrong length.
    fn from_str(s: &str) -> Result<Self, Error> {
        let (algo, hex_value) = s.split_once(['=', ':']).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("checksum {s:?} is not ALGO=HEX"),
            )
        })?;
        let algorithm: DigestAlgorithm = algo.trim().parse()?;
        let value = hex::decode(hex_value.trim()).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("checksum is not hex: {e}"))
        })?;
        Self::new(algorithm, value)
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.algorithm, self.to_hex())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

mod hex_bytes {
    pub(super) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

enum State {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
}

/// Hashes bytes fed in order with several algorithms at once.
pub struct MultiHasher {
    states: Vec<(DigestAlgorithm, State)>,
    bytes: u64,
}

impl MultiHasher {
    /// A hasher for each distinct algorithm given.
    pub fn new(algorithms: impl IntoIterator<Item = DigestAlgorithm>) -> Self {
        let mut states: Vec<(DigestAlgorithm, State)> = Vec::new();
        for a in algorithms {
            if states.iter().any(|(b, _)| *b == a) {
                continue;
            }
            let st = match a {
                DigestAlgorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
                DigestAlgorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
                DigestAlgorithm::Sha1 => State::Sha1(sha1::Sha1::new()),
                DigestAlgorithm::Md5 => State::Md5(md5::Md5::new()),
            };
            states.push((a, st));
        }
        Self { states, bytes: 0 }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        for (_, st) in &mut self.states {
            match st {
                State::Sha256(h) => h.update(data),
                State::Sha512(h) => h.update(data),
                State::Sha1(h) => h.update(data),
                State::Md5(h) => h.update(data),
            }
        }
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digests, one per algorithm, in the order first given.
    pub fn finalize(self) -> Vec<Checksum> {
        self.states
            .into_iter()
            .map(|(algorithm, st)| {
                let value = match st {
                    State::Sha256(h) => h.finalize().to_vec(),
                    State::Sha512(h) => h.finalize().to_vec(),
                    State::Sha1(h) => h.finalize().to_vec(),
                    State::Md5(h) => h.finalize().to_vec(),
                };
                Checksum { algorithm, value }
            })
            .collect()
    }
}

impl fmt::Debug for MultiHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algos: Vec<_> = self.states.iter().map(|(a, _)| *a).collect();
        f.debug_struct("MultiHasher")
            .field("algorithms", &algos)
            .field("bytes", &self.bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // FIPS 180-4 / RFC 1321 test vectors for "abc".
    #[test]
    fn known_vectors_for_abc() {
        let mut h = MultiHasher::new([
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha1,
            DigestAlgorithm::Md5,
            DigestAlgorithm::Sha256,
        ]);
        h.update(b"a");
        h.update(b"bc");
        let out = h.finalize();
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0].to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(out[1].to_hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(out[2].to_hex(), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn parse_checksum_specs() {
        let c: Checksum =
            "SHA-256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                .parse()
                .unwrap();
        assert_eq!(c.algorithm, DigestAlgorithm::Sha256);
        assert!("sha-256=abcd".parse::<Checksum>().is_err());
        assert!("crc32=abcd".parse::<Checksum>().is_err());
        assert!("nohex".parse::<Checksum>().is_err());
        let c: Checksum = "md5:900150983cd24fb0d6963f7d28e17f72".parse().unwrap();
        assert_eq!(c.to_string(), "md5=900150983cd24fb0d6963f7d28e17f72");
    }
}
