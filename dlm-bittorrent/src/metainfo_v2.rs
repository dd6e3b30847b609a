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

/// Most hashes asked for or served in one `hash request` (BEP 52 leaves the
/// limit to clients; libtorrent asks for at most 512 piece-layer hashes at a
/// time, so larger requests are rejected).
pub const MAX_HASH_REQUEST_LENGTH: u32 = 512;

/// Deepest Merkle tree, in layers above the leaves: a file of `u64::MAX`
/// bytes has 2^50 blocks, so no answer carries more uncle hashes.
pub const MAX_TREE_LAYERS: u32 = 50;

/// The hash of a full subtree of zero leaves `height` layers tall (BEP 52
/// padding: 32 zero bytes at the leaves, each layer up the hash of two).
fn pad_at(height: u32) -> Sha256Hash {
    (0..height).fold([0; 32], |p, _| node(&p, &p))
}

/// The `base layer` of a file's piece layer (BEP 52 "hash request"): layers
/// above the 16 KiB leaves, `log2(piece_length / 16 KiB)`.
pub fn piece_layer_of(piece_length: u64) -> u32 {
    (piece_length / MERKLE_BLOCK_LEN).max(1).trailing_zeros()
}

/// Layers above the leaves in the Merkle tree of a file of `length` bytes
/// (BEP 52): `log2` of its block count rounded up to a power of two.
pub fn tree_layers(length: u64) -> u32 {
    length
        .div_ceil(MERKLE_BLOCK_LEN)
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
}

/// The uncle hashes a `hashes` message carries for `length` base-layer
/// hashes and `proof_layers` (BEP 52; counted as libtorrent does): the
/// `length` hashes (a power of two) prove `log2(length)` layers themselves,
/// one uncle hash proves each layer above them, up to `proof_layers + 1`
/// layers above the base layer.
pub fn uncle_count(length: u32, proof_layers: u32) -> u32 {
    let own = length.max(1).next_power_of_two().trailing_zeros();
    (proof_layers + 1).saturating_sub(own)
}

/// Whether a hash request (BEP 52) fits the tree of a file of
/// `file_length` bytes: `length` a power of two of at most
/// [`MAX_HASH_REQUEST_LENGTH`], `index` a multiple of it, the hashes inside
/// the `base layer` (padding included) and the proof no higher than the
/// root.
pub fn request_fits(
    file_length: u64,
    base_layer: u32,
    index: u32,
    length: u32,
    proof_layers: u32,
) -> bool {
    let layers = tree_layers(file_length);
    if base_layer >= layers || proof_layers >= layers - base_layer {
        return false;
    }
    let width = 1u64 << (layers - base_layer);
    length.is_power_of_two()
        && length <= MAX_HASH_REQUEST_LENGTH
        && index.is_multiple_of(length)
        && u64::from(index) + u64::from(length) <= width
}

/// Checks the answer to a hash request (BEP 52 `hashes`) against a file's
/// `pieces root`: the `length` base-layer hashes are hashed up to their
/// subtree's root, which the uncle hashes that follow take up to the
/// file's root. Returns the base-layer hashes when the proof reaches
/// `root`, that is when the request asked for proof up to the root
/// (`proof_layers = tree layers - base layer - 1`) and the peer told the
/// truth; `None` otherwise, or when `hashes` is not `length` plus
/// [`uncle_count`] hashes or the request (`base_layer`, `index`, `length`,
/// `proof_layers` as sent) does not fit the file.
pub fn verify_hashes(
    root: &Sha256Hash,
    file_length: u64,
    base_layer: u32,
    index: u32,
    length: u32,
    proof_layers: u32,
    hashes: &[Sha256Hash],
) -> Option<Vec<Sha256Hash>> {
    let layers = tree_layers(file_length);
    if !request_fits(file_length, base_layer, index, length, proof_layers)
        || hashes.len() != (length + uncle_count(length, proof_layers)) as usize
        || base_layer + (proof_layers + 1).max(length.trailing_zeros()) != layers
    {
        return None;
    }
    let base_len = length;
    let (base, uncles) = hashes.split_at(base_len as usize);
    let mut cur = merkle_root(base, base.len(), pad_at(base_layer));
    let mut pos = index / base_len;
    for u in uncles {
        cur = if pos.is_multiple_of(2) {
            node(&cur, u)
        } else {
            node(u, &cur)
        };
        pos /= 2;
    }
    (cur == *root).then(|| base.to_vec())
}

/// A file's Merkle tree from its piece layer up to its `pieces root` (BEP
/// 52), padded to full width: what answering hash requests needs, built
/// once per file (about twice the piece layer's size).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceTree {
    file_length: u64,
    piece_layer: u32,
    /// `levels[0]` is the padded piece layer, the last one the root.
    levels: Vec<Vec<Sha256Hash>>,
}

impl PieceTree {
    /// The tree over `layer`, the piece layer of a file of `file_length`
    /// bytes in pieces of `piece_length`; `None` when the layer is wider
    /// than the tree (not this file's).
    pub fn new(layer: &[Sha256Hash], file_length: u64, piece_length: u64) -> Option<Self> {
        let piece_layer = piece_layer_of(piece_length);
        let layers = tree_layers(file_length);
        let width = 1usize << layers.checked_sub(piece_layer)?;
        if layer.len() > width {
            return None;
        }
        let mut level = layer.to_vec();
        level.resize(width, pad_at(piece_layer));
        let mut levels = vec![level];
        while let Some(last) = levels.last().filter(|l| l.len() > 1) {
            let up = last.chunks(2).map(|p| node(&p[0], &p[1])).collect();
            levels.push(up);
        }
        Some(Self {
            file_length,
            piece_layer,
            levels,
        })
    }

    /// The root the tree hashes up to.
    pub fn root(&self) -> Sha256Hash {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or([0; 32])
    }

    /// Answers a hash request (BEP 52): the `length` hashes of `base_layer`
    /// from `index` (hashes past the file's end are padding), then the
    /// uncle hashes up `proof_layers` ([`uncle_count`] of them). `None`
    /// when the request does not fit the file (see [`request_fits`]) or
    /// asks for layers below the piece layer (no block hashes are kept).
    pub fn answer(
        &self,
        base_layer: u32,
        index: u32,
        length: u32,
        proof_layers: u32,
    ) -> Option<Vec<Sha256Hash>> {
        if base_layer < self.piece_layer
            || !request_fits(self.file_length, base_layer, index, length, proof_layers)
        {
            return None;
        }
        let at = (base_layer - self.piece_layer) as usize;
        let start = index as usize;
        let mut out = self
            .levels
            .get(at)?
            .get(start..start + length as usize)?
            .to_vec();
        // The subtree the answer spans, then one uncle per layer above it.
        let own = length.trailing_zeros() as usize;
        let mut pos = start >> own;
        for level in self
            .levels
            .iter()
            .skip(at + own)
            .take(uncle_count(length, proof_layers) as usize)
        {
            out.push(*level.get(pos ^ 1)?);
            pos /= 2;
        }
        Some(out)
    }
}

/// Answers a hash request (BEP 52) from a file's piece layer, as
/// [`PieceTree::answer`] does (building the tree for this one answer).
pub fn answer_hashes(
    layer: &[Sha256Hash],
    file_length: u64,
    piece_length: u64,
    base_layer: u32,
    index: u32,
    length: u32,
    proof_layers: u32,
) -> Option<Vec<Sha256Hash>> {
    PieceTree::new(layer, file_length, piece_length)?.answer(
        base_layer,
        index,
        length,
        proof_layers,
    )
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

    /// Hash requests and their proofs (BEP 52), checked against vectors
    /// computed with Python's hashlib (a full tree over 16 KiB leaves,
    /// zero leaves as padding; the answer is `hashes[index..index+length]`
    /// of the base layer, then the sibling of each subtree root up).
    #[test]
    fn hash_request_proofs_from_hashlib() {
        // 100000 bytes, byte i = 7i % 253, pieces of 32 KiB: piece layer 1, 3 layers.
        let data: Vec<u8> = (0..100000u32).map(|i| ((i * 7) % 253) as u8).collect();
        let layer: Vec<Sha256Hash> = data.chunks(32768).map(|p| piece_hash(p, 32768)).collect();
        let root = h("ecc396036f014d2ac72f115364bf8e4a06b31d3a1b7e65226a37bd5f0fecdee9");
        assert_eq!(piece_layer_of(32768), 1);
        assert_eq!(tree_layers(100000), 3);
        assert_eq!(uncle_count(2, 1), 1);
        let want = [
            "b2a8a758915b36485756f68c814244e7ff1f0224600713eae1ee0aa82187aab2",
            "72034e52bb1cdd44d762378c5914ab6c36beea92a089665ea61ce7078ec04f92",
            "0b0ed55a7d9a4132c6946c3bd68f04eb1bcc6abd47021beee69880eead740752",
        ]
        .map(h);
        let got = answer_hashes(&layer, 100000, 32768, 1, 2, 2, 1).unwrap();
        assert_eq!(got, want);
        assert_eq!(
            verify_hashes(&root, 100000, 1, 2, 2, 1, &got).unwrap(),
            &want[..2]
        );
        // The whole layer in one answer needs no uncle.
        let all = answer_hashes(&layer, 100000, 32768, 1, 0, 4, 1).unwrap();
        assert_eq!(all, layer);
        assert_eq!(
            verify_hashes(&root, 100000, 1, 0, 4, 1, &all).unwrap(),
            layer
        );
        // A wrong uncle or base hash, a proof short of the root, a
        // misaligned or oversized request: refused.
        let mut bad = got.clone();
        bad[2][0] ^= 1;
        assert!(verify_hashes(&root, 100000, 1, 2, 2, 1, &bad).is_none());
        bad = got.clone();
        bad[0][31] ^= 1;
        assert!(verify_hashes(&root, 100000, 1, 2, 2, 1, &bad).is_none());
        assert!(verify_hashes(&root, 100000, 1, 2, 2, 0, &got[..2]).is_none());
        assert!(verify_hashes(&root, 100000, 1, 2, 2, 1, &got[..2]).is_none());
        assert!(answer_hashes(&layer, 100000, 32768, 1, 1, 2, 1).is_none());
        assert!(answer_hashes(&layer, 100000, 32768, 1, 0, 8, 1).is_none());
        assert!(answer_hashes(&layer, 100000, 32768, 1, 0, 3, 1).is_none());
        assert!(answer_hashes(&layer, 100000, 32768, 1, 0, 4, 2).is_none());
        assert!(answer_hashes(&layer, 100000, 32768, 0, 0, 2, 2).is_none());
        assert!(answer_hashes(&layer, 100000, 32768, 3, 0, 1, 0).is_none());

        // 163845 bytes, byte i = i % 249, pieces of 16 KiB: 11 leaves padded
        // to 16, so the answer holds a zero leaf and a padding uncle.
        let data: Vec<u8> = (0..163845u32).map(|i| (i % 249) as u8).collect();
        let layer: Vec<Sha256Hash> = data.chunks(16384).map(|p| piece_hash(p, 16384)).collect();
        let root = h("7d85a7148b0747612745b487d95fea1780d53763865eb41a6fd9790d9908eb62");
        assert_eq!(file_root(&data), root);
        let want = [
            "ac24dacc90f4f25ce331323bf71628f64bce54270b9aecc893f2e50f7223efef",
            "9de4a94fbd011c42d42866075ddc9fc82ff88201f899e591f9b9c0b202435060",
            "72eee1f19961ad79cce2328e4f2b34d413967d90bc3d61d1ed0d54c965826ef5",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "db56114e00fdd4c1f85c892bf35ac9a89289aaecb1ebd0a96cde606a748b5d71",
            "38c80f1a56cc0375d6bcd9bb1b40c284b8192142b49b324bf18ff918d7878ed3",
        ]
        .map(h);
        assert_eq!(PieceTree::new(&layer, 163845, 16384).unwrap().root(), root);
        let got = answer_hashes(&layer, 163845, 16384, 0, 8, 4, 3).unwrap();
        assert_eq!(got, want);
        assert_eq!(
            verify_hashes(&root, 163845, 0, 8, 4, 3, &got).unwrap(),
            &want[..4]
        );
    }

    /// Every request that fits a file's tree, at every base layer from the
    /// piece layer up: the answer proves out when its proof reaches the
    /// root, and a flipped hash anywhere in it does not.
    #[test]
    fn every_fitting_request_proves_out() {
        // 13 pieces of 32 KiB (piece layer 1), the last one short: 16 wide.
        let length = 12 * 32768 + 5000;
        let layer: Vec<Sha256Hash> = (0..13u8).map(|i| [i; 32]).collect();
        let tree = PieceTree::new(&layer, length, 32768).unwrap();
        let layers = tree_layers(length);
        let mut checked = 0;
        for base in 1..layers {
            for k in 0..=(layers - base) {
                let n = 1u32 << k;
                for index in (0..1u32 << (layers - base)).step_by(n as usize) {
                    for proof in 0..layers - base {
                        let answer = tree.answer(base, index, n, proof).unwrap();
                        assert_eq!(answer.len() as u32, n + uncle_count(n, proof));
                        let v = verify_hashes(&tree.root(), length, base, index, n, proof, &answer);
                        if base + (proof + 1).max(k) == layers {
                            assert!(v.is_some(), "{base} {index} {n} {proof}");
                            for i in 0..answer.len() {
                                let mut bad = answer.clone();
                                bad[i][0] ^= 1;
                                assert!(
                                    verify_hashes(
                                        &tree.root(),
                                        length,
                                        base,
                                        index,
                                        n,
                                        proof,
                                        &bad
                                    )
                                    .is_none()
                                );
                            }
                            checked += 1;
                        } else {
                            assert!(v.is_none());
                        }
                    }
                }
            }
        }
        assert!(checked > 20, "{checked}");
        assert_eq!(tree.answer(0, 0, 2, 1), None, "below the piece layer");
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
