//! BitTorrent v2 (BEP 52): the `file tree` of a `meta version` 2 info
//! dictionary, its `piece layers`, and the SHA-256 Merkle trees over 16 KiB
//! blocks that check pieces. No I/O, so it can be fuzzed.
//!
//! # Merkle trees (BEP 52, "pieces root" and "piece layers")
//! Each non-empty file has its own binary tree. Its leaves are the SHA-256
//! of each 16 KiB block of the file (the last block may be shorter); a node
//! is the SHA-256 of its two children concatenated. The tree is made full:
//! leaves past the end of the file are 32 zero bytes, and a node over only
//! such leaves is the hash of its zero children, computed like any other.
//! The *pieces root* is the tree's root. The *piece layer* is the layer
//! where one hash covers `piece length` bytes (`piece length / 16 KiB`
//! leaves); a `.torrent` carries it for every file larger than one piece,
//! without the hashes that cover only bytes past the file's end.

use std::collections::BTreeMap;

use serde_bencode::value::Value;
use sha2::{Digest, Sha256};

use crate::TorrentError;

/// A SHA-256 digest (BEP 52: piece hashes, roots and the v2 info-hash).
pub type Sha256Hash = [u8; 32];

/// Bytes per Merkle leaf: BEP 52's 16 KiB block.
pub const MERKLE_BLOCK_LEN: u64 = 16 << 10;
/// Smallest v2 piece length, in bytes (BEP 52: a power of two, at least 16 KiB).
pub const MIN_V2_PIECE_LENGTH: u64 = MERKLE_BLOCK_LEN;
/// Deepest `file tree` path accepted, in components (directories plus
/// the file name).
pub const MAX_FILE_TREE_DEPTH: usize = 32;

/// One file of a `file tree` (BEP 52), before layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TreeFile {
    /// Path components, raw (not yet sanitised), from the tree's root.
    pub(crate) path: Vec<String>,
    /// Length in bytes.
    pub(crate) length: u64,
    /// `pieces root`; `None` for an empty file.
    pub(crate) pieces_root: Option<Sha256Hash>,
}

fn invalid(msg: impl Into<String>) -> TorrentError {
    TorrentError::InvalidTorrent(msg.into())
}

/// The files of a bencoded `file tree` (BEP 52) in tree order (keys sorted
/// as raw bytes, as bencode orders them), at most `max_files` of them and
/// [`MAX_FILE_TREE_DEPTH`] deep.
///
/// # Errors
/// [`TorrentError::InvalidTorrent`] for a malformed tree: a non-dict
/// node, a file with siblings or a bad `length`/`pieces root`, a root that
/// is itself a file, too many files or too deep a path;
/// [`TorrentError::UnsafePath`] for a key that is not UTF-8.
pub(crate) fn file_tree(bytes: &[u8], max_files: usize) -> Result<Vec<TreeFile>, TorrentError> {
    let tree: Value =
        serde_bencode::from_bytes(bytes).map_err(|e| invalid(format!("file tree: {e}")))?;
    let Value::Dict(root) = &tree else {
        return Err(invalid("file tree is not a dictionary"));
    };
    if root.contains_key(&b""[..]) {
        return Err(invalid("the file tree's root is a file"));
    }
    let mut out = Vec::new();
    let mut path = Vec::new();
    walk(&tree, &mut path, &mut out, max_files)?;
    if out.is_empty() {
        return Err(invalid("the file tree holds no file"));
    }
    Ok(out)
}

fn walk(
    node: &Value,
    path: &mut Vec<String>,
    out: &mut Vec<TreeFile>,
    max_files: usize,
) -> Result<(), TorrentError> {
    let Value::Dict(entries) = node else {
        return Err(invalid("a file tree node is not a dictionary"));
    };
    if let Some(file) = entries.get(&b""[..]) {
        if entries.len() != 1 || path.is_empty() {
            return Err(invalid("a file in the file tree has siblings"));
        }
        let Value::Dict(props) = file else {
            return Err(invalid("a file's properties are not a dictionary"));
        };
        let length = match props.get(&b"length"[..]) {
            Some(Value::Int(n)) => u64::try_from(*n).map_err(|_| invalid("negative length"))?,
            _ => return Err(invalid("a file has no length")),
        };
        let pieces_root = match props.get(&b"pieces root"[..]) {
            Some(Value::Bytes(b)) => Some(
                <Sha256Hash>::try_from(b.as_slice())
                    .map_err(|_| invalid("pieces root is not 32 bytes"))?,
            ),
            None => None,
            Some(_) => return Err(invalid("pieces root is not a string")),
        };
        if length > 0 && pieces_root.is_none() {
            return Err(invalid("a non-empty file has no pieces root"));
        }
        if out.len() >= max_files {
            return Err(invalid(format!("more than {max_files} files")));
        }
        out.push(TreeFile {
            path: path.clone(),
            length,
            pieces_root: pieces_root.filter(|_| length > 0),
        });
        return Ok(());
    }
    if path.len() >= MAX_FILE_TREE_DEPTH {
        return Err(invalid(format!(
            "a path in the file tree is deeper than {MAX_FILE_TREE_DEPTH}"
        )));
    }
    let mut keys: Vec<&Vec<u8>> = entries.keys().collect();
    keys.sort();
    for key in keys {
        let name = String::from_utf8(key.clone())
            .map_err(|_| TorrentError::UnsafePath(String::from_utf8_lossy(key).into_owned()))?;
        path.push(name);
        walk(&entries[key], path, out, max_files)?;
        path.pop();
    }
    Ok(())
}

/// The `piece layers` of a `.torrent` (BEP 52): pieces root → that file's
/// piece-layer hashes, in order.
///
/// # Errors
/// [`TorrentError::InvalidTorrent`] when it is not a dictionary of
/// 32-byte keys and strings of whole 32-byte hashes.
pub(crate) fn piece_layers(
    bytes: &[u8],
) -> Result<BTreeMap<Sha256Hash, Vec<Sha256Hash>>, TorrentError> {
    let v: Value =
        serde_bencode::from_bytes(bytes).map_err(|e| invalid(format!("piece layers: {e}")))?;
    let Value::Dict(d) = v else {
        return Err(invalid("piece layers is not a dictionary"));
    };
    let mut out = BTreeMap::new();
    for (k, v) in d {
        let root = <Sha256Hash>::try_from(k.as_slice())
            .map_err(|_| invalid("a piece layers key is not 32 bytes"))?;
        let Value::Bytes(hashes) = v else {
            return Err(invalid("a piece layer is not a string"));
        };
        if hashes.is_empty() || !hashes.len().is_multiple_of(32) {
            return Err(invalid("a piece layer is not a whole number of hashes"));
        }
        let layer = hashes
            .chunks_exact(32)
            .map(|c| <Sha256Hash>::try_from(c).unwrap_or([0; 32]))
            .collect();
        out.insert(root, layer);
    }
    Ok(out)
}

fn node(left: &Sha256Hash, right: &Sha256Hash) -> Sha256Hash {
    let mut h = Sha256::new();
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of a full binary tree `width` leaves wide (a power of two, at
/// least `layer.len()`) whose first leaves are `layer` and whose others are
/// `pad`; the pad of each layer up is the hash of two pads below.
pub fn merkle_root(layer: &[Sha256Hash], width: usize, pad: Sha256Hash) -> Sha256Hash {
    let mut width = width.max(1).next_power_of_two();
    let mut pad = pad;
    let mut layer: Vec<Sha256Hash> = layer.to_vec();
    while width > 1 {
        layer = layer
            .chunks(2)
            .map(|pair| node(&pair[0], pair.get(1).unwrap_or(&pad)))
            .collect();
        pad = node(&pad, &pad);
        width /= 2;
    }
    layer.first().copied().unwrap_or(pad)
}

/// SHA-256 of each 16 KiB block of `data`, the last possibly shorter
/// (BEP 52 leaves).
pub fn block_hashes(data: &[u8]) -> Vec<Sha256Hash> {
    data.chunks(MERKLE_BLOCK_LEN as usize)
        .map(|b| Sha256::digest(b).into())
        .collect()
}

/// The root over `data`'s blocks in a tree `width` leaves wide, zero leaves
/// past the data (BEP 52).
fn blocks_root(data: &[u8], width: usize) -> Sha256Hash {
    merkle_root(&block_hashes(data), width, [0; 32])
}

/// The `pieces root` of a file whose bytes are `data` (BEP 52): its blocks
/// in a tree as wide as the next power of two.
pub fn file_root(data: &[u8]) -> Sha256Hash {
    let blocks = data.len().div_ceil(MERKLE_BLOCK_LEN as usize);
    blocks_root(data, blocks)
}

/// The piece-layer hash of one piece of a file (BEP 52): its blocks in a
/// tree of `piece_length / 16 KiB` leaves; a file's last piece is padded
/// with zero leaves.
pub fn piece_hash(data: &[u8], piece_length: u64) -> Sha256Hash {
    blocks_root(data, (piece_length / MERKLE_BLOCK_LEN) as usize)
}

/// Whether `layer` is the piece layer of a file of `length` bytes whose
/// root is `root` (BEP 52): one hash per piece, and the tree over them
/// (padded with the hash of a piece of zero leaves) has that root.
pub(crate) fn layer_matches(
    layer: &[Sha256Hash],
    root: &Sha256Hash,
    length: u64,
    piece_length: u64,
) -> bool {
    if layer.len() as u64 != length.div_ceil(piece_length) {
        return false;
    }
    let zero_piece = merkle_root(&[], (piece_length / MERKLE_BLOCK_LEN) as usize, [0; 32]);
    merkle_root(layer, layer.len(), zero_piece) == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Sha256Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// Vectors computed independently of this code with Python's hashlib
    /// (`python3 tests/peers/merkle_vectors.py`, a full tree padded with
    /// zero leaves at the bottom).
    #[test]
    fn merkle_vectors_from_hashlib() {
        // 40000 bytes, byte i = i % 251: 3 blocks and one zero leaf.
        let data: Vec<u8> = (0..40000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            file_root(&data),
            h("ab671631a9fa97a1fdac651fff6c68773b9acf0735b9c7f6ecdd54cbf1bf5dc2")
        );
        // 100000 bytes, byte i = 7i % 253, pieces of 32 KiB: 7 blocks, 4 pieces.
        let data: Vec<u8> = (0..100000u32).map(|i| ((i * 7) % 253) as u8).collect();
        let layer: Vec<Sha256Hash> = data.chunks(32768).map(|p| piece_hash(p, 32768)).collect();
        let want = [
            "fde340d526d24a9f1aea60ea99f789320ab99b2ec942e21041517bda42eb2ae3",
            "9a51deede6ea257a74160b6cc470f49227f832285c53580154b9f52db8e211a3",
            "b2a8a758915b36485756f68c814244e7ff1f0224600713eae1ee0aa82187aab2",
            "72034e52bb1cdd44d762378c5914ab6c36beea92a089665ea61ce7078ec04f92",
        ];
        assert_eq!(layer, want.map(h));
        let root = h("ecc396036f014d2ac72f115364bf8e4a06b31d3a1b7e65226a37bd5f0fecdee9");
        assert_eq!(file_root(&data), root);
        assert!(layer_matches(&layer, &root, 100000, 32768));
        // A flipped byte changes the piece's hash: the Merkle check fails.
        let mut bad = data[32768..65536].to_vec();
        bad[100] ^= 1;
        assert_ne!(piece_hash(&bad, 32768), layer[1]);
        assert!(!layer_matches(&layer[..3], &root, 100000, 32768));
    }

    #[test]
    fn tree_shapes() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_eq!(merkle_root(&[a], 1, [0; 32]), a);
        assert_eq!(merkle_root(&[a, b], 2, [0; 32]), node(&a, &b));
        let z = [0u8; 32];
        assert_eq!(merkle_root(&[a], 4, z), node(&node(&a, &z), &node(&z, &z)));
        assert_eq!(merkle_root(&[], 2, z), node(&z, &z));
    }
}
