//! `MagnetLink`: a parsed `magnet:` URI (BEP 9): the info-hash and the
//! hints that help find the swarm and name the download.

use std::net::SocketAddr;

use percent_encoding::percent_decode_str;

use crate::metainfo_v2::Sha256Hash;
use crate::{InfoHash, TorrentError};

/// Most trackers, peers or web seeds taken from one link (the rest are ignored).
pub const MAX_MAGNET_HINTS: usize = 200;

/// Longest magnet URI parsed, in bytes.
pub const MAX_MAGNET_LEN: usize = 64 << 10;

/// A magnet link: `magnet:?xt=urn:btih:<hash>&dn=…&tr=…&x.pe=…&ws=…&so=…`.
///
/// Keys (BEP 9): `xt` the exact topic (`urn:btih:` + 40 hex digits or 32
/// base32 characters, the v1 info-hash; `urn:btmh:1220` + 64 hex digits,
/// BEP 52, the v2 info-hash as a sha2-256 multihash; a hybrid link has
/// both), `dn` the display name, `tr` trackers (each its own
/// tier, as BEP 12 orders them), `x.pe` peer addresses (`host:port`), `ws`
/// web seeds (BEP 19), `so` the files to download (`0,2,4-6`, zero-based, in
/// metainfo order). Unknown keys are ignored; repeated keys (`tr`, `tr.1`,
/// …) all count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MagnetLink {
    /// The swarm: the v1 info-hash (`btih`), or for a v2-only link
    /// (`btmh` alone) the v2 info-hash truncated to 20 bytes, as the
    /// handshake, trackers and the DHT name a v2 swarm (BEP 52).
    pub info_hash: InfoHash,
    /// `btmh`: the full v2 info-hash (BEP 52), SHA-256 of the info
    /// dictionary, which the fetched metadata must hash to.
    pub info_hash_v2: Option<Sha256Hash>,
    /// `dn`: the display name, shown until the metadata names the torrent.
    pub name: Option<String>,
    /// `tr`: tracker URLs.
    pub trackers: Vec<String>,
    /// `x.pe`: peers to connect to (`host:port`; names are resolved when
    /// the swarm is joined).
    pub peers: Vec<String>,
    /// `ws`: web seed URLs.
    pub web_seeds: Vec<String>,
    /// `so`: zero-based indices of the files to download; `None`: all.
    pub select_only: Option<Vec<usize>>,
}

fn bad(msg: impl Into<String>) -> TorrentError {
    TorrentError::InvalidMagnet(msg.into())
}

impl MagnetLink {
    /// Whether `s` is a magnet URI (by its scheme).
    pub fn is_magnet(s: &str) -> bool {
        s.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"))
    }

    /// Parses a magnet URI.
    ///
    /// # Errors
    /// [`TorrentError::InvalidMagnet`] when it is not a `magnet:?` URI,
    /// longer than [`MAX_MAGNET_LEN`], has neither a `urn:btih:` nor a
    /// `urn:btmh:` topic, a `btih` that is not 40 hex digits or 32 base32
    /// characters, or a `btmh` that is not a sha2-256 multihash in hex
    /// (`1220` + 64 digits); two different topics of one kind.
    pub fn parse(uri: &str) -> Result<Self, TorrentError> {
        if uri.len() > MAX_MAGNET_LEN {
            return Err(bad(format!("longer than {MAX_MAGNET_LEN} bytes")));
        }
        if !Self::is_magnet(uri) {
            return Err(bad("not a magnet: URI"));
        }
        let query = uri[7..]
            .strip_prefix('?')
            .ok_or_else(|| bad("no ?query after magnet:"))?;
        let mut info_hash = None;
        let mut btmh: Option<Sha256Hash> = None;
        let mut link = Self {
            info_hash: InfoHash([0; 20]),
            info_hash_v2: None,
            name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
            web_seeds: Vec::new(),
            select_only: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            // `tr.1`, `xt.2`: numbered repeats of a key.
            let key = key.split_once('.').map_or(key, |(k, n)| {
                if n.bytes().all(|b| b.is_ascii_digit()) {
                    k
                } else {
                    key
                }
            });
            let value = decode(value)?;
            match key {
                "xt" => {
                    let lower = value.to_ascii_lowercase();
                    if let Some(h) = lower.strip_prefix("urn:btih:") {
                        let parsed = parse_btih(&value[9..])
                            .ok_or_else(|| bad(format!("bad info-hash {h:?}")))?;
                        if info_hash.is_some_and(|ih| ih != parsed) {
                            return Err(bad("two different urn:btih topics"));
                        }
                        info_hash = Some(parsed);
                    } else if let Some(h) = lower.strip_prefix("urn:btmh:") {
                        let parsed =
                            parse_btmh(h).ok_or_else(|| bad(format!("bad v2 info-hash {h:?}")))?;
                        if btmh.is_some_and(|ih| ih != parsed) {
                            return Err(bad("two different urn:btmh topics"));
                        }
                        btmh = Some(parsed);
                    }
                }
                "dn" if !value.is_empty() => link.name = Some(value),
                "tr" => push(&mut link.trackers, value),
                "x.pe" => push(&mut link.peers, value),
                "ws" => push(&mut link.web_seeds, value),
                "so" => link.select_only = Some(parse_select_only(&value)?),
                _ => {}
            }
        }
        link.info_hash_v2 = btmh;
        link.info_hash = match (info_hash, btmh) {
            (Some(ih), _) => ih,
            (None, Some(v2)) => {
                let mut short = [0u8; 20];
                short.copy_from_slice(&v2[..20]);
                InfoHash(short)
            }
            (None, None) => return Err(bad("no xt=urn:btih: or urn:btmh: topic")),
        };
        Ok(link)
    }

    /// The `x.pe` peers that are literal addresses (`1.2.3.4:6881`,
    /// `[::1]:6881`); host names are resolved by [`MagnetLink::resolve_peers`].
    pub async fn resolve_peers(&self) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for p in &self.peers {
            if let Ok(a) = p.parse::<SocketAddr>() {
                out.push(a);
                continue;
            }
            let lookup = tokio::net::lookup_host(p.as_str());
            match tokio::time::timeout(std::time::Duration::from_secs(10), lookup).await {
                Ok(Ok(addrs)) => out.extend(addrs.take(4)),
                _ => tracing::debug!(peer = %p, "x.pe peer not resolved"),
            }
        }
        out
    }
}

fn push(list: &mut Vec<String>, value: String) {
    if !value.is_empty() && list.len() < MAX_MAGNET_HINTS && !list.contains(&value) {
        list.push(value);
    }
}

fn decode(value: &str) -> Result<String, TorrentError> {
    // `+` is a space in query strings (application/x-www-form-urlencoded).
    let spaced = value.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| bad("a value is not UTF-8 after percent-decoding"))
}

/// 40 hex digits, or 32 base32 characters (RFC 4648, either case).
fn parse_btih(s: &str) -> Option<InfoHash> {
    let mut out = [0u8; 20];
    match s.len() {
        40 => hex::decode_to_slice(s, &mut out).ok()?,
        32 => {
            let upper = s.to_ascii_uppercase();
            let bytes = data_encoding::BASE32_NOPAD.decode(upper.as_bytes()).ok()?;
            out.copy_from_slice(bytes.get(..20)?);
        }
        _ => return None,
    }
    Some(InfoHash(out))
}

/// A sha2-256 multihash in hex (BEP 52): `12` (sha2-256), `20` (32 bytes),
/// then the 64-digit digest.
fn parse_btmh(s: &str) -> Option<Sha256Hash> {
    let digest = s.strip_prefix("1220").filter(|d| d.len() == 64)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(digest, &mut out).ok()?;
    Some(out)
}

/// `0,2,4-6` → `[0, 2, 4, 5, 6]` (BEP 53), at most 100,000 indices.
fn parse_select_only(s: &str) -> Result<Vec<usize>, TorrentError> {
    const MAX: usize = 100_000;
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("so: {part:?} is not an index or a range")))
        };
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if a > b || b - a >= MAX || out.len() + (b - a) >= MAX {
            return Err(bad(format!("so: range {part:?} is reversed or too long")));
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    #[test]
    fn parses_every_key() {
        let m = MagnetLink::parse(&format!(
            "magnet:?xt=urn:btih:{HEX}&dn=Big+Buck%20Bunny&tr=udp%3A%2F%2Ft1%3A80&tr.1=http://t2/a\
             &x.pe=127.0.0.1:6881&ws=http%3A%2F%2Fmirror%2Fx&so=0,2,4-6&zz=ignored"
        ))
        .unwrap();
        assert_eq!(m.info_hash.to_hex(), HEX);
        assert_eq!(m.name.as_deref(), Some("Big Buck Bunny"));
        assert_eq!(m.trackers, ["udp://t1:80", "http://t2/a"]);
        assert_eq!(m.peers, ["127.0.0.1:6881"]);
        assert_eq!(m.web_seeds, ["http://mirror/x"]);
        assert_eq!(m.select_only, Some(vec![0, 2, 4, 5, 6]));
    }

    #[test]
    fn base32_and_hex_name_the_same_swarm() {
        // The same 20 bytes in RFC 4648 base32.
        let bytes = hex::decode(HEX).unwrap();
        let b32 = data_encoding::BASE32_NOPAD.encode(&bytes);
        let a = MagnetLink::parse(&format!("magnet:?xt=urn:btih:{b32}")).unwrap();
        let b = MagnetLink::parse(&format!("MAGNET:?xt=urn:btih:{}", b32.to_ascii_lowercase()))
            .unwrap();
        assert_eq!(a.info_hash.to_hex(), HEX);
        assert_eq!(a.info_hash, b.info_hash);
    }

    #[test]
    fn refuses_what_names_no_v1_swarm() {
        for bad in [
            "http://x",
            "magnet:",
            "magnet:?dn=x",
            "magnet:?xt=urn:btih:1234",
            "magnet:?xt=urn:btih:zz2fe1c06bba254a9dc9f519b335aa7c1367a88a",
            "magnet:?xt=urn:btmh:1220aaaa",
            "magnet:?xt=urn:btmh:1320caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e",
            "magnet:?xt=urn:btmh:1220zaf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e",
            "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&so=5-2",
            "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&so=x",
        ] {
            assert!(MagnetLink::parse(bad).is_err(), "{bad}");
        }
    }

    /// BEP 52's example v2 magnet (its test torrent `bittorrent-v2-test`):
    /// the 20-byte swarm is the first 20 bytes of the v2 info-hash; a hybrid
    /// link keeps its `btih` for the swarm.
    #[test]
    fn parses_v2_and_hybrid_topics() {
        const V2: &str = "caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";
        let m = MagnetLink::parse(&format!(
            "magnet:?xt=urn:btmh:1220{V2}&dn=bittorrent-v2-test"
        ))
        .unwrap();
        assert_eq!(hex::encode(m.info_hash_v2.unwrap()), V2);
        assert_eq!(m.info_hash.to_hex(), V2[..40]);
        let m = MagnetLink::parse(&format!(
            "magnet:?xt=urn:btih:{HEX}&xt=urn:btmh:1220{}",
            V2.to_ascii_uppercase()
        ))
        .unwrap();
        assert_eq!(m.info_hash.to_hex(), HEX);
        assert_eq!(hex::encode(m.info_hash_v2.unwrap()), V2);
    }

    proptest! {
        #[test]
        fn never_panics(s in "magnet:\\?[a-z.=&%0-9:+,-]{0,120}") {
            let _ = MagnetLink::parse(&s);
        }
    }
}
