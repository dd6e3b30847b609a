//! `Metainfo`: a parsed `.torrent` file (BEP 3), with the announce-list
//! tiers of BEP 12, the `private` flag of BEP 27, the `url-list` of
//! BEP 19 (web seeds, recorded for later) and the DHT `nodes` of BEP 5;
//! BitTorrent v2 and hybrid torrents (BEP 52, [`crate::metainfo_v2`]) and
//! BEP 47 padding files.
//!
//! # Byte space and padding
//! A torrent is one byte space (BEP 3: its files in order). Padding is part
//! of it but no file: BEP 47 padding files (`attr` holding `p`, as hybrid
//! torrents use to align each file to a piece) and, in a v2-only torrent,
//! the gap from each non-empty file's end to the next piece boundary (BEP
//! 52). [`Metainfo::files`] lists real files only, so padding shows as gaps
//! between them (and after the last); [`dlm_core::MultiFileSink`] never
//! stores a gap and reads it as zeros. Padding is zeros: pieces are still
//! requested whole (libtorrent serves padding as zeros and rejects requests
//! that are not whole 16 KiB blocks of the piece), and a piece whose padding
//! is not zero fails its check.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use sha1::{Digest, Sha1};

use dlm_core::ByteRange;

use crate::TorrentError;
use crate::bencode;
use crate::metainfo_v2::{self, Sha256Hash};

/// Largest `.torrent` file read, in bytes.
pub const MAX_TORRENT_BYTES: usize = 64 << 20;
/// Largest piece length accepted, in bytes (BEP 3 sets none; clients use up to 16 MiB).
pub const MAX_PIECE_LENGTH: u64 = 64 << 20;
/// Most files in one torrent.
pub const MAX_FILES: usize = 1_000_000;
/// Most DHT nodes read from a torrent's `nodes` (BEP 5); the rest are ignored.
pub const MAX_METAINFO_NODES: usize = 64;

/// SHA-1 of the bencoded `info` dictionary exactly as it appears in the
/// `.torrent` (BEP 3): the swarm's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// 40 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

/// Which hashes a torrent carries (BEP 52 `meta version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetaVersion {
    /// BEP 3: SHA-1 `pieces` only.
    V1,
    /// BEP 52 `meta version` 2 only: `file tree` and `piece layers`.
    V2,
    /// Both (BEP 52 "Upgrade Path"): one byte space, two swarms.
    Hybrid,
}

impl fmt::Display for MetaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V1 => "1 (BEP 3)",
            Self::V2 => "2 (BEP 52)",
            Self::Hybrid => "2, hybrid with v1 (BEP 52)",
        })
    }
}

/// One file of the torrent's byte space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentFile {
    /// Where it goes, relative to the download directory: `name` for a
    /// single-file torrent, `name/dir/…/file` for a multi-file one. Safe to
    /// join: no `..`, no root, no reserved names.
    pub path: PathBuf,
    /// Its length in bytes.
    pub length: u64,
    /// Its first byte's offset in the torrent's byte space (files in
    /// metainfo order, BEP 3; padding between files, BEP 47/52).
    pub offset: u64,
    /// Root of its SHA-256 Merkle tree (BEP 52 `pieces root`); `None` in a
    /// v1 torrent and for an empty file.
    pub pieces_root: Option<Sha256Hash>,
}

/// A parsed `.torrent`.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Metainfo {
    /// The 20-byte info-hash the swarm uses (handshakes, trackers, DHT):
    /// the SHA-1 of the info dictionary (BEP 3) when the torrent has v1
    /// hashes, else its SHA-256 truncated to 20 bytes (BEP 52).
    pub info_hash: InfoHash,
    /// SHA-256 of the bencoded info dictionary exactly as in the `.torrent`
    /// (BEP 52), for a v2 or hybrid torrent.
    pub info_hash_v2: Option<Sha256Hash>,
    /// v1, v2 or hybrid (BEP 52 `meta version`).
    pub meta_version: MetaVersion,
    /// The suggested name (file or top directory), sanitised.
    pub name: String,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u64,
    /// SHA-1 of each piece, in order (BEP 3); empty for a v2-only torrent.
    pub pieces: Vec<[u8; 20]>,
    /// The files, in byte-space order, padding left out (see the module
    /// docs).
    pub files: Vec<TorrentFile>,
    /// BEP 52 `piece layers`: a file's pieces root → the SHA-256 Merkle
    /// hash of each of its pieces, for files longer than one piece, each
    /// checked against its root when parsed. Empty for v1, and for a
    /// torrent built from an info dictionary alone.
    pub piece_layers: BTreeMap<Sha256Hash, Vec<Sha256Hash>>,
    /// Length of the byte space in bytes: the files and their padding.
    pub total_length: u64,
    /// BEP 27: peers only from the torrent's trackers (no DHT, no PEX).
    pub private: bool,
    /// Tracker tiers (BEP 12 `announce-list`, else `[[announce]]`).
    pub trackers: Vec<Vec<String>>,
    /// BEP 19 web seeds (`url-list`).
    pub url_list: Vec<String>,
    /// BEP 5 DHT nodes (`nodes`, for trackerless torrents): `(host, port)`,
    /// the host a name or an IP address; at most [`MAX_METAINFO_NODES`],
    /// malformed entries skipped.
    pub nodes: Vec<(String, u16)>,
    /// `creation date`, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// `created by`.
    pub created_by: Option<String>,
    /// `comment`.
    pub comment: Option<String>,
    /// The bencoded `info` dictionary exactly as in the `.torrent` (its
    /// SHA-1 is the info-hash): what peers fetching the metadata get (BEP 9).
    pub info_bytes: bytes::Bytes,
}

#[derive(Deserialize)]
struct RawTorrent {
    #[serde(default)]
    announce: Option<String>,
    #[serde(default, rename = "announce-list")]
    announce_list: Option<Vec<Vec<String>>>,
    #[serde(default, rename = "url-list")]
    url_list: Option<UrlList>,
    #[serde(default, rename = "creation date")]
    creation_date: Option<i64>,
    #[serde(default, rename = "created by")]
    created_by: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    nodes: Option<serde_bencode::value::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UrlList {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawInfo {
    name: String,
    #[serde(rename = "piece length")]
    piece_length: u64,
    #[serde(default)]
    pieces: Option<serde_bytes::ByteBuf>,
    #[serde(default, rename = "meta version")]
    meta_version: Option<i64>,
    #[serde(default)]
    length: Option<u64>,
    #[serde(default)]
    files: Option<Vec<RawFile>>,
    #[serde(default)]
    private: Option<i64>,
}

#[derive(Deserialize)]
struct RawFile {
    length: u64,
    #[serde(default)]
    path: Vec<String>,
    /// BEP 47 attributes; `p` marks a padding file.
    #[serde(default)]
    attr: Option<serde_bytes::ByteBuf>,
}

/// BEP 5's `nodes`, a list of `[host, port]` pairs: the well-formed ones
/// (a UTF-8 host, a port in 1..=65535), at most [`MAX_METAINFO_NODES`]. A
/// malformed key is ignored rather than refusing the torrent: the nodes are
/// only hints.
fn dht_nodes(raw: Option<serde_bencode::value::Value>) -> Vec<(String, u16)> {
    use serde_bencode::value::Value;
    let Some(Value::List(list)) = raw else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|n| match n {
            Value::List(pair) => match pair.as_slice() {
                [Value::Bytes(host), Value::Int(port)] => {
                    let host = std::str::from_utf8(host).ok()?.trim();
                    let port = u16::try_from(*port).ok().filter(|p| *p != 0)?;
                    (!host.is_empty()).then(|| (host.to_string(), port))
                }
                _ => None,
            },
            _ => None,
        })
        .take(MAX_METAINFO_NODES)
        .collect()
}

fn invalid(msg: impl Into<String>) -> TorrentError {
    TorrentError::InvalidTorrent(msg.into())
}

/// Makes one path component from the torrent safe, or refuses the torrent:
/// `..`, `.`, empty names and names with `/` or `\` would change where the
/// file goes; other unsafe names (reserved device names, control
/// characters) are rewritten by [`dlm_core::safe_file_name`].
fn component(raw: &str) -> Result<String, TorrentError> {
    if raw.is_empty() || raw == "." || raw == ".." || raw.contains(['/', '\\']) {
        return Err(TorrentError::UnsafePath(raw.to_string()));
    }
    dlm_core::safe_file_name(raw).ok_or_else(|| TorrentError::UnsafePath(raw.to_string()))
}

/// Files and byte-space length of a v1 (or hybrid) info dictionary (BEP 3):
/// padding files (BEP 47 `attr` with `p`) take room but are left out.
fn v1_layout(
    name: &str,
    length: Option<u64>,
    list: Option<Vec<RawFile>>,
) -> Result<(Vec<TorrentFile>, u64), TorrentError> {
    let mut files = Vec::new();
    let mut total: u64 = 0;
    match (length, list) {
        (Some(length), None) => {
            files.push(TorrentFile {
                path: PathBuf::from(name),
                length,
                offset: 0,
                pieces_root: None,
            });
            total = length;
        }
        (None, Some(list)) => {
            if list.is_empty() || list.len() > MAX_FILES {
                return Err(invalid(format!(
                    "{} files (1..={MAX_FILES} allowed)",
                    list.len()
                )));
            }
            let mut seen = HashSet::new();
            for f in list {
                let offset = total;
                total = total
                    .checked_add(f.length)
                    .ok_or_else(|| invalid("total length overflows"))?;
                if f.attr.as_ref().is_some_and(|a| a.contains(&b'p')) {
                    // BEP 47 padding: zeros, never written.
                    continue;
                }
                if f.path.is_empty() {
                    return Err(TorrentError::UnsafePath(String::new()));
                }
                let mut path = PathBuf::from(name);
                for c in &f.path {
                    path.push(component(c)?);
                }
                if !seen.insert(path.clone()) {
                    return Err(invalid(format!("{} is listed twice", path.display())));
                }
                files.push(TorrentFile {
                    path,
                    length: f.length,
                    offset,
                    pieces_root: None,
                });
            }
            if files.is_empty() {
                return Err(invalid("only padding files"));
            }
        }
        (Some(_), Some(_)) => return Err(invalid("both length and files are present")),
        (None, None) => return Err(invalid("neither length nor files is present")),
    }
    Ok((files, total))
}

/// The path of a `file tree` entry (BEP 52): the tree's key alone when the
/// tree is one file at its root (a single-file torrent), else below `name`
/// (as libtorrent lays out a multi-file v2 torrent); sanitised as v1 paths.
fn tree_path(
    name: &str,
    tree: &[metainfo_v2::TreeFile],
    raw: &[String],
) -> Result<PathBuf, TorrentError> {
    let single = tree.len() == 1 && tree[0].path.len() == 1;
    let mut path = if single {
        PathBuf::new()
    } else {
        PathBuf::from(name)
    };
    for c in raw {
        path.push(component(c)?);
    }
    Ok(path)
}

/// A v2-only torrent's files and byte-space length (BEP 52): each non-empty
/// file starts on a piece boundary, and is followed by padding up to the
/// next one (the last file too, as libtorrent 2 lays it out, so the last
/// piece is a whole piece on the wire).
fn v2_layout(
    name: &str,
    tree: &[metainfo_v2::TreeFile],
    piece_length: u64,
) -> Result<(Vec<TorrentFile>, u64), TorrentError> {
    let mut files = Vec::with_capacity(tree.len());
    let mut seen = HashSet::new();
    let mut total: u64 = 0;
    for f in tree {
        let path = tree_path(name, tree, &f.path)?;
        if !seen.insert(path.clone()) {
            return Err(invalid(format!("{} is listed twice", path.display())));
        }
        files.push(TorrentFile {
            path,
            length: f.length,
            offset: total,
            pieces_root: f.pieces_root,
        });
        total = f
            .length
            .div_ceil(piece_length)
            .checked_mul(piece_length)
            .and_then(|padded| total.checked_add(padded))
            .ok_or_else(|| invalid("total length overflows"))?;
    }
    Ok((files, total))
}

/// Checks that a hybrid torrent's v1 file list and v2 file tree describe
/// the same files (BEP 52 "Upgrade Path": names, order, lengths, and each
/// non-empty file starting on a piece boundary), and records each file's
/// pieces root.
fn hybrid_check(
    name: &str,
    files: &mut [TorrentFile],
    tree: &[metainfo_v2::TreeFile],
    piece_length: u64,
) -> Result<(), TorrentError> {
    if files.len() != tree.len() {
        return Err(invalid(format!(
            "hybrid torrent: {} v1 files but {} in the file tree",
            files.len(),
            tree.len()
        )));
    }
    for (f, t) in files.iter_mut().zip(tree) {
        let path = tree_path(name, tree, &t.path)?;
        if f.path != path || f.length != t.length {
            return Err(invalid(format!(
                "hybrid torrent: v1 file {} ({} bytes) is {} ({} bytes) in the file tree",
                f.path.display(),
                f.length,
                path.display(),
                t.length
            )));
        }
        if f.length > 0 && !f.offset.is_multiple_of(piece_length) {
            return Err(invalid(format!(
                "hybrid torrent: {} does not start on a piece boundary",
                f.path.display()
            )));
        }
        f.pieces_root = t.pieces_root;
    }
    Ok(())
}

/// The `piece layers` of a v2 or hybrid torrent, each checked against its
/// file's pieces root (BEP 52: a torrent is not valid otherwise); one is
/// required for each file longer than a piece.
fn checked_layers(
    raw: &[u8],
    files: &[TorrentFile],
    piece_length: u64,
) -> Result<BTreeMap<Sha256Hash, Vec<Sha256Hash>>, TorrentError> {
    let all = metainfo_v2::piece_layers(raw)?;
    let mut out = BTreeMap::new();
    for f in files.iter().filter(|f| f.length > piece_length) {
        let Some(root) = f.pieces_root else { continue };
        if out.contains_key(&root) {
            continue; // identical files share a root
        }
        let layer = all
            .get(&root)
            .ok_or_else(|| invalid(format!("no piece layer for {}", f.path.display())))?;
        if !metainfo_v2::layer_matches(layer, &root, f.length, piece_length) {
            return Err(invalid(format!(
                "the piece layer of {} does not match its pieces root",
                f.path.display()
            )));
        }
        out.insert(root, layer.clone());
    }
    Ok(out)
}

impl Metainfo {
    /// Parses a `.torrent` file's bytes.
    ///
    /// # Errors
    /// [`TorrentError::InvalidTorrent`] for malformed bencode, missing or
    /// ill-typed fields, a piece count that does not match the length, a
    /// BitTorrent v2-only torrent, or input over [`MAX_TORRENT_BYTES`];
    /// [`TorrentError::UnsafePath`] for a file path that would leave the
    /// download directory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TorrentError> {
        if bytes.len() > MAX_TORRENT_BYTES {
            return Err(invalid(format!("larger than {MAX_TORRENT_BYTES} bytes")));
        }
        let info_bytes = bencode::dict_value(bytes, b"info")
            .map_err(|e| invalid(e.to_string()))?
            .ok_or_else(|| invalid("no info dictionary"))?;
        let raw: RawTorrent =
            serde_bencode::from_bytes(bytes).map_err(|e| invalid(format!("metainfo: {e}")))?;
        let trackers = match raw.announce_list {
            Some(tiers) if tiers.iter().any(|t| !t.is_empty()) => {
                tiers.into_iter().filter(|t| !t.is_empty()).collect()
            }
            _ => raw
                .announce
                .filter(|a| !a.is_empty())
                .map(|a| vec![vec![a]])
                .unwrap_or_default(),
        };
        let url_list = match raw.url_list {
            Some(UrlList::One(u)) if !u.is_empty() => vec![u],
            Some(UrlList::Many(v)) => v.into_iter().filter(|u| !u.is_empty()).collect(),
            _ => Vec::new(),
        };
        let layers =
            bencode::dict_value(bytes, b"piece layers").map_err(|e| invalid(e.to_string()))?;
        let mut m = Self::parse_info(info_bytes, layers, true, trackers, url_list)?;
        m.nodes = dht_nodes(raw.nodes);
        m.creation_date = raw.creation_date;
        m.created_by = raw.created_by;
        m.comment = raw.comment;
        Ok(m)
    }

    /// Builds the metainfo from a bencoded `info` dictionary alone (as
    /// fetched from peers for a magnet link, BEP 9), with the trackers and
    /// web seeds known from elsewhere. The info-hash is the SHA-1 of
    /// `info_bytes` as given.
    ///
    /// The `piece layers` live outside the info dictionary (BEP 52): a
    /// hybrid torrent is checked by its v1 hashes only; a v2-only one has
    /// no piece layers yet ([`Metainfo::missing_piece_layers`] lists them),
    /// so its pieces in files longer than one piece fail
    /// [`Metainfo::piece_matches`] until they are learned from peers (BEP 52
    /// hash requests) and added with [`Metainfo::add_piece_layer`].
    ///
    /// # Errors
    /// As [`Metainfo::from_bytes`], except that a v2-only torrent is
    /// accepted without piece layers.
    pub fn from_info(
        info_bytes: &[u8],
        trackers: Vec<Vec<String>>,
        url_list: Vec<String>,
    ) -> Result<Self, TorrentError> {
        Self::parse_info(info_bytes, None, false, trackers, url_list)
    }

    /// The files whose piece layer is missing (BEP 52): the `pieces root`
    /// and length in bytes of each file longer than one piece of a v2 or
    /// hybrid torrent without one, each root once. Empty for v1.
    pub fn missing_piece_layers(&self) -> Vec<(Sha256Hash, u64)> {
        if self.meta_version == MetaVersion::V1 {
            return Vec::new();
        }
        let mut out: Vec<(Sha256Hash, u64)> = Vec::new();
        for f in self.files.iter().filter(|f| f.length > self.piece_length) {
            if let Some(root) = f.pieces_root
                && !self.piece_layers.contains_key(&root)
                && !out.iter().any(|(r, _)| *r == root)
            {
                out.push((root, f.length));
            }
        }
        out
    }

    /// Adds the piece layer of the file whose `pieces root` is `root`, once
    /// it hashes up to that root (BEP 52).
    ///
    /// # Errors
    /// [`TorrentError::InvalidTorrent`] when no file longer than a piece
    /// has that root, or `layer` is not one hash per piece of it that
    /// hashes up to `root`.
    pub fn add_piece_layer(
        &mut self,
        root: Sha256Hash,
        layer: Vec<Sha256Hash>,
    ) -> Result<(), TorrentError> {
        let f = self
            .files
            .iter()
            .find(|f| f.pieces_root == Some(root) && f.length > self.piece_length)
            .ok_or_else(|| invalid("a piece layer for no file longer than a piece"))?;
        if !metainfo_v2::layer_matches(&layer, &root, f.length, self.piece_length) {
            return Err(invalid(format!(
                "the piece layer of {} does not match its pieces root",
                f.path.display()
            )));
        }
        self.piece_layers.insert(root, layer);
        Ok(())
    }

    fn parse_info(
        info_bytes: &[u8],
        layers: Option<&[u8]>,
        layers_required: bool,
        trackers: Vec<Vec<String>>,
        url_list: Vec<String>,
    ) -> Result<Self, TorrentError> {
        if info_bytes.len() > MAX_TORRENT_BYTES {
            return Err(invalid(format!("larger than {MAX_TORRENT_BYTES} bytes")));
        }
        bencode::validate(info_bytes).map_err(|e| invalid(e.to_string()))?;
        let info: RawInfo = serde_bencode::from_bytes(info_bytes)
            .map_err(|e| invalid(format!("info dictionary: {e}")))?;
        // BEP 52: the meta version is checked before anything else.
        let v2 = match info.meta_version {
            None => false,
            Some(2) => true,
            Some(v) => return Err(invalid(format!("meta version {v} is not supported"))),
        };
        if info.piece_length == 0 || info.piece_length > MAX_PIECE_LENGTH {
            return Err(invalid(format!(
                "piece length {} is outside 1..={MAX_PIECE_LENGTH}",
                info.piece_length
            )));
        }
        if v2
            && (!info.piece_length.is_power_of_two()
                || info.piece_length < metainfo_v2::MIN_V2_PIECE_LENGTH)
        {
            return Err(invalid(format!(
                "piece length {} is not a power of two of at least 16 KiB (BEP 52)",
                info.piece_length
            )));
        }
        let name = component(&info.name)?;
        let tree = if v2 {
            let raw = bencode::dict_value(info_bytes, b"file tree")
                .map_err(|e| invalid(e.to_string()))?
                .ok_or_else(|| invalid("meta version 2 without a file tree"))?;
            Some(metainfo_v2::file_tree(raw, MAX_FILES)?)
        } else {
            None
        };
        let sha1_info: [u8; 20] = Sha1::digest(info_bytes).into();
        let info_hash_v2: Option<Sha256Hash> = v2.then(|| sha2::Sha256::digest(info_bytes).into());
        let (pieces, layout, meta_version, info_hash) = match (info.pieces, tree) {
            (Some(p), tree) => {
                if !p.len().is_multiple_of(20) {
                    return Err(invalid("pieces is not a multiple of 20 bytes"));
                }
                let pieces: Vec<[u8; 20]> = p
                    .chunks_exact(20)
                    .map(|c| <[u8; 20]>::try_from(c).unwrap_or([0; 20]))
                    .collect();
                let mut layout = v1_layout(&name, info.length, info.files)?;
                let version = match tree {
                    Some(tree) => {
                        hybrid_check(&name, &mut layout.0, &tree, info.piece_length)?;
                        MetaVersion::Hybrid
                    }
                    None => MetaVersion::V1,
                };
                (pieces, layout, version, InfoHash(sha1_info))
            }
            (None, Some(tree)) => {
                let layout = v2_layout(&name, &tree, info.piece_length)?;
                let mut short = [0u8; 20];
                short.copy_from_slice(&info_hash_v2.unwrap_or_default()[..20]);
                (Vec::new(), layout, MetaVersion::V2, InfoHash(short))
            }
            (None, None) => return Err(invalid("no pieces")),
        };
        let (files, total) = layout;
        let piece_layers = match (meta_version, layers) {
            (MetaVersion::V1, _) => BTreeMap::new(),
            (_, Some(raw)) => checked_layers(raw, &files, info.piece_length)?,
            (MetaVersion::V2, None) if layers_required => {
                return Err(invalid(
                    "a v2-only torrent without piece layers (BEP 52: a .torrent \
                     carries them; only a magnet link learns them from peers)",
                ));
            }
            (_, None) => BTreeMap::new(),
        };
        if meta_version != MetaVersion::V1 && layers.is_none() {
            tracing::debug!("hybrid torrent without piece layers: checked by SHA-1 only");
        }
        let expected = total.div_ceil(info.piece_length);
        if meta_version != MetaVersion::V2 && pieces.len() as u64 != expected {
            return Err(invalid(format!(
                "{} piece hashes for {total} bytes in pieces of {} (expected {expected})",
                pieces.len(),
                info.piece_length
            )));
        }
        if expected > u32::MAX as u64 {
            return Err(invalid(format!("{expected} pieces")));
        }
        Ok(Self {
            info_hash,
            info_hash_v2,
            meta_version,
            name,
            piece_length: info.piece_length,
            pieces,
            files,
            piece_layers,
            total_length: total,
            private: info.private == Some(1),
            trackers,
            url_list,
            nodes: Vec::new(),
            creation_date: None,
            created_by: None,
            comment: None,
            info_bytes: bytes::Bytes::copy_from_slice(info_bytes),
        })
    }

    /// A `.torrent` file for this metainfo (BEP 3): its trackers
    /// (`announce`, and the tiers as BEP 12 `announce-list`), the `info`
    /// dictionary byte for byte, the `piece layers` known (BEP 52), and the
    /// web seeds (BEP 19 `url-list`). Reading it back gives the same
    /// info-hash.
    pub fn to_torrent_bytes(&self) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &[u8]) {
            out.extend_from_slice(s.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(s);
        }
        let mut out = b"d".to_vec();
        // Keys in sorted order (BEP 3).
        if let Some(first) = self.trackers.iter().flatten().next() {
            string(&mut out, b"announce");
            string(&mut out, first.as_bytes());
            string(&mut out, b"announce-list");
            out.push(b'l');
            for tier in &self.trackers {
                out.push(b'l');
                for t in tier {
                    string(&mut out, t.as_bytes());
                }
                out.push(b'e');
            }
            out.push(b'e');
        }
        string(&mut out, b"info");
        out.extend_from_slice(&self.info_bytes);
        if !self.piece_layers.is_empty() {
            // A BTreeMap iterates its keys in byte order, as bencode sorts them.
            string(&mut out, b"piece layers");
            out.push(b'd');
            for (root, layer) in &self.piece_layers {
                string(&mut out, root);
                string(&mut out, &layer.concat());
            }
            out.push(b'e');
        }
        if !self.url_list.is_empty() {
            string(&mut out, b"url-list");
            out.push(b'l');
            for u in &self.url_list {
                string(&mut out, u.as_bytes());
            }
            out.push(b'e');
        }
        out.push(b'e');
        out
    }

    /// Reads and parses a `.torrent` file.
    ///
    /// # Errors
    /// [`TorrentError::Io`] when it cannot be read; as [`Metainfo::from_bytes`].
    pub fn from_file(path: &std::path::Path) -> Result<Self, TorrentError> {
        let len = std::fs::metadata(path)
            .map_err(|source| TorrentError::Io {
                what: format!("reading {}", path.display()),
                source,
            })?
            .len();
        if len > MAX_TORRENT_BYTES as u64 {
            return Err(invalid(format!("larger than {MAX_TORRENT_BYTES} bytes")));
        }
        let bytes = std::fs::read(path).map_err(|source| TorrentError::Io {
            what: format!("reading {}", path.display()),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Whether `data` is piece `index` (`false` for an index past the end
    /// or data of the wrong length). Large pieces are hashed on a blocking
    /// thread so the runtime keeps serving peers.
    ///
    /// * v1 (BEP 3): its SHA-1 is the one `pieces` lists.
    /// * v2 (BEP 52): the SHA-256 Merkle root over its 16 KiB blocks is
    ///   the file's piece-layer hash, or, for a file of one piece or less,
    ///   its `pieces root`; the padding after the file's end is zeros.
    /// * hybrid: both must hold, as BEP 52's "Upgrade Path" asks ("verify
    ///   that pieces match both piece hash formats"): the two swarms share
    ///   the storage, so a piece taken from either is served to both. It
    ///   costs one SHA-1 and one SHA-256 pass per piece. A hybrid built
    ///   from its info dictionary alone (no piece layers) is checked by
    ///   SHA-1, plus the roots of files of one piece or less.
    pub async fn piece_matches(&self, index: usize, data: &bytes::Bytes) -> bool {
        if index >= self.piece_count() || data.len() as u64 != self.piece_len(index) {
            return false;
        }
        let sha1 = self.pieces.get(index).copied();
        let v2 = match self.meta_version {
            MetaVersion::V1 => None,
            _ => match self.v2_check(index) {
                Some(c) => Some(c),
                None if self.meta_version == MetaVersion::V2 => return false,
                None => None,
            },
        };
        let piece_length = self.piece_length;
        let check = move |data: &[u8]| {
            sha1.is_none_or(|want| <[u8; 20]>::from(Sha1::digest(data)) == want)
                && v2.is_none_or(|c| c.matches(data, piece_length))
        };
        if data.len() <= 256 << 10 {
            return check(data);
        }
        let data = data.clone();
        tokio::task::spawn_blocking(move || check(&data))
            .await
            .unwrap_or(false)
    }

    /// What piece `index`'s v2 hash is (BEP 52), or `None` when this
    /// metainfo cannot say (no piece layer for a file longer than a piece).
    fn v2_check(&self, index: usize) -> Option<V2Check> {
        let r = self.piece_range(index);
        let i = self
            .files
            .partition_point(|f| f.offset + f.length <= r.start);
        let Some(f) = self.files.get(i).filter(|f| f.offset <= r.start) else {
            // Padding only.
            return Some(V2Check {
                body: 0,
                want: None,
            });
        };
        let body = (f.offset + f.length - r.start).min(r.len()) as usize;
        let root = f.pieces_root?;
        let want = if f.length <= self.piece_length {
            Hashed::File(root)
        } else {
            let k = ((r.start - f.offset) / self.piece_length) as usize;
            Hashed::Piece(*self.piece_layers.get(&root)?.get(k)?)
        };
        Some(V2Check {
            body,
            want: Some(want),
        })
    }

    /// The 20-byte info-hashes of the torrent's swarms (BEP 52: a v2
    /// info-hash truncated to 20 bytes): [`Metainfo::info_hash`] first,
    /// then, for a hybrid torrent, its truncated v2 info-hash (hybrid
    /// torrents join both swarms).
    pub fn swarm_info_hashes(&self) -> Vec<InfoHash> {
        let mut out = vec![self.info_hash];
        if let Some(v2) = self.info_hash_v2 {
            let mut short = [0u8; 20];
            short.copy_from_slice(&v2[..20]);
            if short != self.info_hash.0 {
                out.push(InfoHash(short));
            }
        }
        out
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> usize {
        self.total_length.div_ceil(self.piece_length) as usize
    }

    /// Length of piece `index` in bytes (the last may be shorter).
    pub fn piece_len(&self, index: usize) -> u64 {
        self.piece_range(index).len()
    }

    /// The files as spans of the byte space, `wanted(i)` telling whether
    /// file `i` (0-based, metainfo order) is to be downloaded.
    pub fn file_spans(&self, wanted: impl Fn(usize) -> bool) -> Vec<dlm_core::FileSpan> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| dlm_core::FileSpan {
                path: f.path.clone(),
                offset: f.offset,
                len: f.length,
                wanted: wanted(i),
            })
            .collect()
    }

    /// The bytes of piece `index` in the torrent's byte space (its files
    /// concatenated, BEP 3).
    pub fn piece_range(&self, index: usize) -> ByteRange {
        let start = (index as u64)
            .saturating_mul(self.piece_length)
            .min(self.total_length);
        ByteRange::new(start, (start + self.piece_length).min(self.total_length))
    }
}

/// A piece's v2 check (BEP 52): the first `body` bytes are the file's,
/// the rest padding (zeros).
#[derive(Clone, Copy, Debug)]
struct V2Check {
    body: usize,
    want: Option<Hashed>,
}

/// What a v2 piece's bytes hash to.
#[derive(Clone, Copy, Debug)]
enum Hashed {
    /// The whole file is in the piece: its pieces root.
    File(Sha256Hash),
    /// One piece of a longer file: its piece-layer hash.
    Piece(Sha256Hash),
}

impl V2Check {
    fn matches(&self, data: &[u8], piece_length: u64) -> bool {
        let Some((body, pad)) = data.split_at_checked(self.body) else {
            return false;
        };
        pad.iter().all(|b| *b == 0)
            && match self.want {
                None => true,
                Some(Hashed::File(root)) => metainfo_v2::file_root(body) == root,
                Some(Hashed::Piece(h)) => metainfo_v2::piece_hash(body, piece_length) == h,
            }
    }
}

#[cfg(test)]
impl Metainfo {
    /// A one-file torrent of `total_length` bytes in pieces of
    /// `piece_length`, with zeroed hashes, for unit tests of piece maths.
    pub(crate) fn for_tests(piece_length: u64, total_length: u64) -> Self {
        Self {
            info_hash: InfoHash([0; 20]),
            info_hash_v2: None,
            meta_version: MetaVersion::V1,
            name: "t".into(),
            piece_length,
            pieces: vec![[0; 20]; total_length.div_ceil(piece_length) as usize],
            files: vec![TorrentFile {
                path: PathBuf::from("t"),
                length: total_length,
                offset: 0,
                pieces_root: None,
            }],
            piece_layers: BTreeMap::new(),
            total_length,
            private: false,
            trackers: Vec::new(),
            url_list: Vec::new(),
            nodes: Vec::new(),
            creation_date: None,
            created_by: None,
            comment: None,
            info_bytes: bytes::Bytes::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A multi-file torrent written by hand (bencode keys sorted as BEP 3 wants).
    fn multi(path_a: &str) -> Vec<u8> {
        let pieces = [7u8; 40];
        let mut info = Vec::new();
        info.extend_from_slice(b"d5:filesld6:lengthi20000e4:pathl3:sub5:a.binee");
        info.extend_from_slice(
            format!("d6:lengthi12768e4:pathl{}:{path_a}ee", path_a.len()).as_bytes(),
        );
        info.extend_from_slice(b"e4:name4:root12:piece lengthi16384e6:pieces40:");
        info.extend_from_slice(&pieces);
        info.extend_from_slice(b"7:privatei1ee");
        let mut t = Vec::new();
        t.extend_from_slice(b"d8:announce20:http://t.invalid/ann13:announce-listll20:http://t.invalid/annel18:udp://u.invalid:80ee7:comment2:hi10:created by3:dlm13:creation datei1700000000e4:info");
        t.extend_from_slice(&info);
        t.extend_from_slice(b"8:url-list18:http://ws.invalid/e");
        t
    }

    #[test]
    fn parses_a_multi_file_torrent() {
        let t = multi("b.txt");
        let m = Metainfo::from_bytes(&t).unwrap();
        let info = bencode::dict_value(&t, b"info").unwrap().unwrap();
        assert_eq!(m.info_hash.0, <[u8; 20]>::from(Sha1::digest(info)));
        assert_eq!(m.name, "root");
        assert_eq!(m.total_length, 32768);
        assert_eq!(m.piece_count(), 2);
        assert_eq!(m.piece_len(1), 16384);
        assert!(m.private);
        assert_eq!(m.files[0].path, PathBuf::from("root/sub/a.bin"));
        assert_eq!((m.files[1].offset, m.files[1].length), (20000, 12768));
        assert_eq!(
            m.trackers,
            vec![
                vec!["http://t.invalid/ann".to_string()],
                vec!["udp://u.invalid:80".to_string()]
            ]
        );
        assert_eq!(m.url_list, vec!["http://ws.invalid/".to_string()]);
        assert_eq!(m.creation_date, Some(1_700_000_000));
    }

    /// A single-file torrent with `nodes` given as raw bencode after `info`.
    fn trackerless(nodes: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(b"d4:infod6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:");
        t.extend_from_slice(&[1u8; 20]);
        t.extend_from_slice(b"e5:nodes");
        t.extend_from_slice(nodes);
        t.push(b'e');
        t
    }

    #[test]
    fn reads_dht_nodes() {
        // BEP 5's example shape: [["<host>", <port>], ["<host>", <port>], ...].
        let m = Metainfo::from_bytes(&trackerless(
            b"ll9:127.0.0.1i6881eel14:router.invalidi25401eee",
        ))
        .unwrap();
        assert!(m.trackers.is_empty());
        assert_eq!(
            m.nodes,
            vec![
                ("127.0.0.1".to_string(), 6881),
                ("router.invalid".to_string(), 25401)
            ]
        );
        // Malformed entries are skipped, the torrent is kept.
        let m = Metainfo::from_bytes(&trackerless(
            b"ll1:ai0eel1:bi70000eel1:cel1:di-1eei5el1:ei1ei2eel2:oki1eee",
        ))
        .unwrap();
        assert_eq!(m.nodes, vec![("ok".to_string(), 1)]);
        // Not a list at all.
        let m = Metainfo::from_bytes(&trackerless(b"i3e")).unwrap();
        assert!(m.nodes.is_empty());
        // Bounded.
        let mut many = b"l".to_vec();
        for _ in 0..(MAX_METAINFO_NODES + 10) {
            many.extend_from_slice(b"l1:hi1ee");
        }
        many.push(b'e');
        let m = Metainfo::from_bytes(&trackerless(&many)).unwrap();
        assert_eq!(m.nodes.len(), MAX_METAINFO_NODES);
    }

    #[test]
    fn refuses_escaping_paths() {
        for bad in ["..", ".", "a/b", "..\\x"] {
            let e = Metainfo::from_bytes(&multi(bad)).unwrap_err();
            assert!(matches!(e, TorrentError::UnsafePath(_)), "{bad}: {e}");
            assert_eq!(
                dlm_core::Error::from(e).kind(),
                dlm_core::ErrorKind::InvalidInput
            );
        }
        // A reserved device name is rewritten, not refused.
        let m = Metainfo::from_bytes(&multi("CON")).unwrap();
        assert_eq!(m.files[1].path, PathBuf::from("root/_CON"));
    }

    /// A bencode value for hand-made v2 torrents (dictionary keys sorted
    /// when encoded, BEP 3).
    enum B {
        I(i64),
        S(Vec<u8>),
        L(Vec<B>),
        D(Vec<(&'static str, B)>),
        /// A dictionary with raw keys (a file tree's names, piece layers' roots).
        Dk(Vec<(Vec<u8>, B)>),
    }

    impl B {
        fn enc(&self, out: &mut Vec<u8>) {
            fn bytes(out: &mut Vec<u8>, b: &[u8]) {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            match self {
                B::I(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
                B::S(b) => bytes(out, b),
                B::L(l) => {
                    out.push(b'l');
                    l.iter().for_each(|v| v.enc(out));
                    out.push(b'e');
                }
                B::D(d) => {
                    let mut d: Vec<_> = d.iter().collect();
                    d.sort_by_key(|(k, _)| *k);
                    out.push(b'd');
                    for (k, v) in d {
                        bytes(out, k.as_bytes());
                        v.enc(out);
                    }
                    out.push(b'e');
                }
                B::Dk(d) => {
                    let mut d: Vec<_> = d.iter().collect();
                    d.sort_by(|a, b| a.0.cmp(&b.0));
                    out.push(b'd');
                    for (k, v) in d {
                        bytes(out, k);
                        v.enc(out);
                    }
                    out.push(b'e');
                }
            }
        }
        fn bytes(&self) -> Vec<u8> {
            let mut out = Vec::new();
            self.enc(&mut out);
            out
        }
    }

    fn file_node(len: u64, root: Option<Sha256Hash>) -> B {
        let mut props = vec![("length", B::I(len as i64))];
        if let Some(r) = root {
            props.push(("pieces root", B::S(r.to_vec())));
        }
        B::Dk(vec![(Vec::new(), B::D(props))])
    }

    /// `root/a` (20000 bytes: two 16 KiB pieces) and `root/sub/b` (5
    /// bytes); with `hybrid`, the v1 list too, with a BEP 47 padding file.
    fn v2_torrent(hybrid: bool, layer_a: Option<Vec<u8>>) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let a: Vec<u8> = (0..20000u32).map(|i| (i % 13) as u8).collect();
        let b = b"hello".to_vec();
        let root_a = metainfo_v2::file_root(&a);
        let root_b = metainfo_v2::file_root(&b);
        let layer: Vec<u8> = a
            .chunks(16384)
            .flat_map(|p| metainfo_v2::piece_hash(p, 16384))
            .collect();
        let tree = B::Dk(vec![
            (b"a".to_vec(), file_node(20000, Some(root_a))),
            (
                b"sub".to_vec(),
                B::Dk(vec![(b"b".to_vec(), file_node(5, Some(root_b)))]),
            ),
        ]);
        let mut info = vec![
            ("file tree", tree),
            ("meta version", B::I(2)),
            ("name", B::S(b"root".to_vec())),
            ("piece length", B::I(16384)),
        ];
        if hybrid {
            let mut space = a.clone();
            space.resize(32768, 0);
            space.extend_from_slice(&b);
            let pieces: Vec<u8> = space
                .chunks(16384)
                .flat_map(|p| <[u8; 20]>::from(Sha1::digest(p)))
                .collect();
            let file = |len: i64, path: &[&str], pad: bool| {
                let mut d = vec![
                    ("length", B::I(len)),
                    (
                        "path",
                        B::L(path.iter().map(|c| B::S(c.as_bytes().to_vec())).collect()),
                    ),
                ];
                if pad {
                    d.push(("attr", B::S(b"p".to_vec())));
                }
                B::D(d)
            };
            info.push((
                "files",
                B::L(vec![
                    file(20000, &["a"], false),
                    file(12768, &[".pad", "12768"], true),
                    file(5, &["sub", "b"], false),
                ]),
            ));
            info.push(("pieces", B::S(pieces)));
        }
        let t = B::D(vec![
            ("info", B::D(info)),
            (
                "piece layers",
                B::Dk(vec![(root_a.to_vec(), B::S(layer_a.unwrap_or(layer)))]),
            ),
        ]);
        let mut space = a;
        space.resize(32768, 0);
        space.extend_from_slice(&b);
        (t.bytes(), space, b)
    }

    #[tokio::test]
    async fn parses_a_v2_only_torrent_and_checks_its_pieces() {
        let (t, space, _) = v2_torrent(false, None);
        let m = Metainfo::from_bytes(&t).unwrap();
        let info = bencode::dict_value(&t, b"info").unwrap().unwrap();
        let v2: Sha256Hash = sha2::Sha256::digest(info).into();
        assert_eq!(m.meta_version, MetaVersion::V2);
        assert_eq!(m.info_hash_v2, Some(v2));
        assert_eq!(m.info_hash.0[..], v2[..20]);
        assert_eq!(m.swarm_info_hashes(), vec![m.info_hash]);
        assert!(m.pieces.is_empty());
        let files: Vec<_> = m
            .files
            .iter()
            .map(|f| (f.path.clone(), f.offset, f.length))
            .collect();
        assert_eq!(
            files,
            vec![
                (PathBuf::from("root/a"), 0, 20000),
                (PathBuf::from("root/sub/b"), 32768, 5)
            ]
        );
        // Each file padded to a piece boundary, the last one too (as libtorrent lays it out).
        assert_eq!(m.total_length, 49152);
        assert_eq!(m.piece_count(), 3);
        let mut space = space;
        space.resize(49152, 0);
        for i in 0..3 {
            let r = m.piece_range(i);
            let piece = bytes::Bytes::copy_from_slice(&space[r.start as usize..r.end as usize]);
            assert!(m.piece_matches(i, &piece).await, "piece {i}");
            let mut bad = piece.to_vec();
            bad[0] ^= 1;
            assert!(!m.piece_matches(i, &bytes::Bytes::from(bad)).await);
            // Padding that is not zeros fails too.
            let mut bad = piece.to_vec();
            *bad.last_mut().unwrap() = 1;
            assert!(!m.piece_matches(i, &bytes::Bytes::from(bad)).await);
        }
        let spans = m.file_spans(|_| true);
        assert_eq!(spans.len(), 2, "no span for padding");
    }

    #[tokio::test]
    async fn parses_a_hybrid_torrent_without_its_padding_file() {
        let (t, space, _) = v2_torrent(true, None);
        let m = Metainfo::from_bytes(&t).unwrap();
        assert_eq!(m.meta_version, MetaVersion::Hybrid);
        let info = bencode::dict_value(&t, b"info").unwrap().unwrap();
        assert_eq!(m.info_hash.0, <[u8; 20]>::from(Sha1::digest(info)));
        assert_eq!(m.swarm_info_hashes().len(), 2);
        assert_eq!(
            m.swarm_info_hashes()[1].0[..],
            m.info_hash_v2.unwrap()[..20]
        );
        assert_eq!(m.files.len(), 2);
        assert_eq!((m.files[1].offset, m.total_length), (32768, 32773));
        assert_eq!(m.piece_len(2), 5);
        for i in 0..3 {
            let r = m.piece_range(i);
            let piece = bytes::Bytes::copy_from_slice(&space[r.start as usize..r.end as usize]);
            assert!(m.piece_matches(i, &piece).await, "piece {i}");
        }
        // From the info dictionary alone (a magnet link): no piece layers, SHA-1 still checks.
        let alone = Metainfo::from_info(info, Vec::new(), Vec::new()).unwrap();
        assert!(alone.piece_layers.is_empty());
        let r = alone.piece_range(0);
        let piece = bytes::Bytes::copy_from_slice(&space[r.start as usize..r.end as usize]);
        assert!(alone.piece_matches(0, &piece).await);
    }

    /// A v2-only torrent from its info dictionary alone (a magnet link)
    /// lacks the piece layers; once added (as learned from peers) it saves
    /// as a complete `.torrent` that reads back the same.
    #[test]
    fn learns_piece_layers_and_saves_them() {
        let (t, _, _) = v2_torrent(false, None);
        let full = Metainfo::from_bytes(&t).unwrap();
        let info = bencode::dict_value(&t, b"info").unwrap().unwrap();
        let mut m = Metainfo::from_info(info, Vec::new(), Vec::new()).unwrap();
        let missing = m.missing_piece_layers();
        assert_eq!(missing.len(), 1);
        let (root, length) = missing[0];
        assert_eq!(length, 20000);
        assert!(m.add_piece_layer(root, vec![[7; 32]; 2]).is_err());
        assert!(m.add_piece_layer([9; 32], vec![[7; 32]; 2]).is_err());
        m.add_piece_layer(root, full.piece_layers[&root].clone())
            .unwrap();
        assert!(m.missing_piece_layers().is_empty());
        let back = Metainfo::from_bytes(&m.to_torrent_bytes()).unwrap();
        assert_eq!(back.info_hash, full.info_hash);
        assert_eq!(back.piece_layers, full.piece_layers);
    }

    #[test]
    fn refuses_bad_v2_torrents() {
        let err = |t: &[u8]| Metainfo::from_bytes(t).unwrap_err().to_string();
        // A piece layer that is not the file's.
        let (t, _, _) = v2_torrent(false, Some(vec![7u8; 64]));
        assert!(err(&t).contains("does not match"), "{}", err(&t));
        // A piece layer of the wrong length.
        let (t, _, _) = v2_torrent(false, Some(vec![7u8; 32]));
        assert!(err(&t).contains("does not match"));
        // A .torrent must carry its piece layers (BEP 52).
        let (t, _, _) = v2_torrent(false, None);
        let info = bencode::dict_value(&t, b"info").unwrap().unwrap();
        let mut alone = b"d4:info".to_vec();
        alone.extend_from_slice(info);
        alone.push(b'e');
        assert!(
            err(&alone).contains("without piece layers"),
            "{}",
            err(&alone)
        );
        let torrent = |info: B| B::D(vec![("info", info)]).bytes();
        let base = |tree: B, version: i64, piece: i64| {
            B::D(vec![
                ("file tree", tree),
                ("meta version", B::I(version)),
                ("name", B::S(b"n".to_vec())),
                ("piece length", B::I(piece)),
            ])
        };
        let one = || B::Dk(vec![(b"f".to_vec(), file_node(5, Some([1; 32])))]);
        assert!(err(&torrent(base(one(), 3, 16384))).contains("meta version 3"));
        assert!(err(&torrent(base(one(), 2, 20000))).contains("power of two"));
        assert!(err(&torrent(base(one(), 2, 8192))).contains("power of two"));
        // A file with a sibling, a root that is a file, a file without a root.
        let sibling = B::Dk(vec![(
            b"f".to_vec(),
            B::Dk(vec![
                (Vec::new(), B::D(vec![("length", B::I(1))])),
                (b"x".to_vec(), file_node(1, Some([1; 32]))),
            ]),
        )]);
        assert!(err(&torrent(base(sibling, 2, 16384))).contains("siblings"));
        assert!(err(&torrent(base(file_node(5, Some([1; 32])), 2, 16384))).contains("root"));
        let rootless = B::Dk(vec![(b"f".to_vec(), file_node(5, None))]);
        assert!(err(&torrent(base(rootless, 2, 16384))).contains("no pieces root"));
        // Unsafe names are refused as in v1.
        let evil = B::Dk(vec![(b"..".to_vec(), file_node(5, Some([1; 32])))]);
        let e = Metainfo::from_bytes(&torrent(base(evil, 2, 16384))).unwrap_err();
        assert!(matches!(e, TorrentError::UnsafePath(_)), "{e}");
        // Too deep a tree.
        let mut deep = file_node(5, Some([1; 32]));
        for _ in 0..=metainfo_v2::MAX_FILE_TREE_DEPTH {
            deep = B::Dk(vec![(b"d".to_vec(), deep)]);
        }
        assert!(err(&torrent(base(deep, 2, 16384))).contains("deeper"));
    }

    #[test]
    fn refuses_a_hybrid_whose_v1_and_v2_files_differ() {
        let (t, _, _) = v2_torrent(true, None);
        // Rename the v1 file `b` to `c`: same length, so the torrent still parses as bencode.
        let at = t.windows(13).position(|w| w == b"4:pathl3:sub1").unwrap();
        let mut bad = t.clone();
        bad[at + 14] = b'c';
        let e = Metainfo::from_bytes(&bad).unwrap_err().to_string();
        assert!(e.contains("hybrid"), "{e}");
    }

    proptest! {
        #[test]
        fn never_panics_on_mutations(pos in 0usize..400, byte in any::<u8>()) {
            let mut t = multi("b.txt");
            let p = pos % t.len();
            t[p] = byte;
            let _ = Metainfo::from_bytes(&t);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Metainfo::from_bytes(&bytes);
        }
    }
}
