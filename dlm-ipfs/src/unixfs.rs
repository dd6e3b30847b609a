//! UnixFS nodes (spec: UnixFS v1): what a raw or dag-pb block means as part
//! of a file or directory.

use bytes::Bytes;
use cid::Cid;
use prost::Message;

use crate::IpfsError;
use crate::block::{DAG_PB, RAW, inline_data};
use crate::dag_pb::{DagPbNode, Link};

#[derive(Clone, PartialEq, Message)]
struct PbData {
    #[prost(int32, optional, tag = "1")]
    r#type: Option<i32>,
    #[prost(bytes = "bytes", optional, tag = "2")]
    data: Option<Bytes>,
    #[prost(uint64, optional, tag = "3")]
    filesize: Option<u64>,
    #[prost(uint64, repeated, packed = "false", tag = "4")]
    blocksizes: Vec<u64>,
    #[prost(uint64, optional, tag = "5")]
    hash_type: Option<u64>,
    #[prost(uint64, optional, tag = "6")]
    fanout: Option<u64>,
}

const TYPE_RAW: i32 = 0;
const TYPE_DIRECTORY: i32 = 1;
const TYPE_FILE: i32 = 2;
const TYPE_METADATA: i32 = 3;
const TYPE_SYMLINK: i32 = 4;
const TYPE_HAMT_SHARD: i32 = 5;

/// The HAMT hash function UnixFS uses: murmur3-x64-64 (multicodec 0x22).
pub const MURMUR3_X64_64: u64 = 0x22;

/// A UnixFS node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// File bytes with no links: a raw block, an identity CID, or a dag-pb
    /// leaf (`File`/`Raw` type without links).
    Leaf(Bytes),
    /// A file node with children: its own data (file bytes that come before
    /// the children's), and one link per child with the child's file size
    /// (from `blocksizes`), bytes.
    File {
        /// Bytes of the file held in this node, before the children's.
        data: Bytes,
        /// The children and their file sizes, bytes.
        children: Vec<(Link, u64)>,
    },
    /// A plain directory: entries by name.
    Directory(Vec<Link>),
    /// A HAMT-sharded directory node (spec: UnixFS HAMTDirectory).
    HamtShard {
        /// The links: `XX` (hex bucket) to a sub-shard, `XXname` to an entry.
        links: Vec<Link>,
        /// The fanout (a power of two, at most 1,024).
        fanout: u64,
    },
    /// A symbolic link and its target.
    Symlink(Bytes),
}

impl Node {
    /// Decodes the block `data` of `cid` (raw, identity or dag-pb).
    ///
    /// # Errors
    /// [`IpfsError::UnsupportedCodec`] for other codecs; [`IpfsError::DagPb`]
    /// and [`IpfsError::UnixFs`] for malformed blocks (bad protobuf, unknown
    /// type, `blocksizes` not matching the links, a HAMT with a hash other
    /// than murmur3 or a fanout that is not a power of two up to 1,024).
    pub fn decode(cid: &Cid, data: Bytes) -> Result<Self, IpfsError> {
        if let Some(inline) = inline_data(cid) {
            if cid.codec() == RAW {
                return Ok(Self::Leaf(inline));
            }
            return Self::decode_dag_pb(cid, inline);
        }
        match cid.codec() {
            RAW => Ok(Self::Leaf(data)),
            DAG_PB => Self::decode_dag_pb(cid, data),
            code => Err(IpfsError::UnsupportedCodec {
                code,
                cid: cid.to_string(),
            }),
        }
    }

    fn decode_dag_pb(cid: &Cid, data: Bytes) -> Result<Self, IpfsError> {
        let node = DagPbNode::decode(cid, data)?;
        let bad = |reason: String| IpfsError::UnixFs {
            cid: cid.to_string(),
            reason,
        };
        let Some(raw) = node.data else {
            return Err(bad("no UnixFS data".into()));
        };
        let pb = PbData::decode(raw).map_err(|e| bad(e.to_string()))?;
        match pb.r#type {
            Some(TYPE_FILE | TYPE_RAW) => {
                let data = pb.data.unwrap_or_default();
                if node.links.is_empty() {
                    return Ok(Self::Leaf(data));
                }
                if pb.blocksizes.len() != node.links.len() {
                    return Err(bad(format!(
                        "{} links but {} blocksizes",
                        node.links.len(),
                        pb.blocksizes.len()
                    )));
                }
                let total = pb
                    .blocksizes
                    .iter()
                    .try_fold(data.len() as u64, |a, &b| a.checked_add(b))
                    .ok_or_else(|| bad("blocksizes overflow".into()))?;
                if let Some(size) = pb.filesize
                    && size != total
                {
                    return Err(bad(format!(
                        "filesize {size} but data and blocksizes add up to {total}"
                    )));
                }
                Ok(Self::File {
                    data,
                    children: node.links.into_iter().zip(pb.blocksizes).collect(),
                })
            }
            Some(TYPE_DIRECTORY) => Ok(Self::Directory(node.links)),
            Some(TYPE_HAMT_SHARD) => {
                let fanout = pb.fanout.unwrap_or(0);
                if !fanout.is_power_of_two() || !(2..=1024).contains(&fanout) {
                    return Err(bad(format!("HAMT fanout {fanout}")));
                }
                if pb.hash_type != Some(MURMUR3_X64_64) {
                    return Err(bad(format!("HAMT hash type {:?}", pb.hash_type)));
                }
                Ok(Self::HamtShard {
                    links: node.links,
                    fanout,
                })
            }
            Some(TYPE_SYMLINK) => Ok(Self::Symlink(pb.data.unwrap_or_default())),
            Some(TYPE_METADATA) => Err(bad("metadata nodes are not supported".into())),
            other => Err(bad(format!("unknown type {other:?}"))),
        }
    }

    /// The file size this node stands for, bytes (`None` for directories
    /// and symlinks).
    pub fn file_size(&self) -> Option<u64> {
        match self {
            Self::Leaf(d) => Some(d.len() as u64),
            Self::File { data, children } => Some(
                children
                    .iter()
                    .fold(data.len() as u64, |a, (_, s)| a.saturating_add(*s)),
            ),
            _ => None,
        }
    }

    /// Whether this is a directory (plain or sharded).
    pub fn is_directory(&self) -> bool {
        matches!(self, Self::Directory(_) | Self::HamtShard { .. })
    }

    /// A short description for `dlm info`: `"file (raw leaf)"`,
    /// `"file (dag-pb, 256 children)"`, `"directory (3 entries)"`.
    pub fn describe(&self) -> String {
        match self {
            Self::Leaf(_) => "file (single block)".into(),
            Self::File { children, .. } => format!("file (dag-pb, {} children)", children.len()),
            Self::Directory(l) => format!("directory ({} entries)", l.len()),
            Self::HamtShard { fanout, .. } => format!("directory (HAMT-sharded, fanout {fanout})"),
            Self::Symlink(_) => "symlink".into(),
        }
    }
}

/// Builds the UnixFS `Data` bytes of a file node (for tests).
#[cfg(test)]
pub(crate) fn encode_file_data(data: &[u8], blocksizes: &[u64]) -> Bytes {
    let pb = PbData {
        r#type: Some(TYPE_FILE),
        data: (!data.is_empty()).then(|| Bytes::copy_from_slice(data)),
        filesize: Some(data.len() as u64 + blocksizes.iter().sum::<u64>()),
        blocksizes: blocksizes.to_vec(),
        hash_type: None,
        fanout: None,
    };
    Bytes::from(pb.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::sha256_cid as cid;

    #[test]
    fn file_with_children() {
        let leaf = cid(RAW, b"abc");
        let node = DagPbNode {
            links: vec![Link {
                cid: leaf,
                name: String::new(),
                tsize: Some(3),
            }],
            data: Some(encode_file_data(b"xy", &[3])),
        };
        let bytes = node.encode();
        let decoded = Node::decode(&cid(DAG_PB, &bytes), bytes).unwrap();
        assert_eq!(decoded.file_size(), Some(5));
        let Node::File { data, children } = decoded else {
            panic!("not a file")
        };
        assert_eq!(&data[..], b"xy");
        assert_eq!(children[0].1, 3);
    }

    #[test]
    fn blocksizes_must_match_links() {
        let node = DagPbNode {
            links: vec![],
            data: Some(encode_file_data(b"", &[3])),
        };
        // No links: a leaf with no data, blocksizes ignored.
        let bytes = node.encode();
        assert!(matches!(
            Node::decode(&cid(DAG_PB, &bytes), bytes),
            Ok(Node::Leaf(_))
        ));
        let node = DagPbNode {
            links: vec![
                Link {
                    cid: cid(RAW, b"a"),
                    name: String::new(),
                    tsize: None,
                };
                2
            ],
            data: Some(encode_file_data(b"", &[1])),
        };
        let bytes = node.encode();
        assert!(matches!(
            Node::decode(&cid(DAG_PB, &bytes), bytes),
            Err(IpfsError::UnixFs { .. })
        ));
    }

    #[test]
    fn other_codecs_are_unsupported() {
        let c = cid(0x71, b"{}");
        assert!(matches!(
            Node::decode(&c, Bytes::new()),
            Err(IpfsError::UnsupportedCodec { code: 0x71, .. })
        ));
    }
}
