//! dag-pb blocks (spec: IPLD dag-pb): a protobuf `PBNode` with links and
//! optional data, decoded with `prost`.

use bytes::Bytes;
use cid::Cid;
use prost::Message;

use crate::IpfsError;
use crate::block::read_cid;

/// Most links one node may have (a 1 MiB block holds about 25,000 links at
/// ~40 bytes each; real DAGs use 174 to 1,024).
pub const MAX_LINKS: usize = 65_536;

#[derive(Clone, PartialEq, Message)]
struct PbLink {
    #[prost(bytes = "bytes", optional, tag = "1")]
    hash: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "2")]
    name: Option<Bytes>,
    #[prost(uint64, optional, tag = "3")]
    tsize: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
struct PbNode {
    #[prost(bytes = "bytes", optional, tag = "1")]
    data: Option<Bytes>,
    #[prost(message, repeated, tag = "2")]
    links: Vec<PbLink>,
}

/// One link of a dag-pb node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The target block.
    pub cid: Cid,
    /// The link's name (a directory entry's file name; empty in files).
    /// Names that are not UTF-8 are refused when decoding.
    pub name: String,
    /// The cumulative size of the target DAG as the writer recorded it,
    /// bytes (informational, never trusted).
    pub tsize: Option<u64>,
}

/// A decoded dag-pb node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DagPbNode {
    /// The links, in block order.
    pub links: Vec<Link>,
    /// The `Data` field (UnixFS data for UnixFS DAGs).
    pub data: Option<Bytes>,
}

impl DagPbNode {
    /// Decodes `block`, the bytes of `cid`.
    ///
    /// # Errors
    /// [`IpfsError::DagPb`] when the protobuf does not decode, a link has no
    /// hash or a bad CID, a name is not UTF-8, or there are more than
    /// [`MAX_LINKS`] links.
    pub fn decode(cid: &Cid, block: Bytes) -> Result<Self, IpfsError> {
        let bad = |reason: String| IpfsError::DagPb {
            cid: cid.to_string(),
            reason,
        };
        let node = PbNode::decode(block).map_err(|e| bad(e.to_string()))?;
        if node.links.len() > MAX_LINKS {
            return Err(bad(format!(
                "{} links (limit {MAX_LINKS})",
                node.links.len()
            )));
        }
        let mut links = Vec::with_capacity(node.links.len());
        for (i, l) in node.links.into_iter().enumerate() {
            let hash = l.hash.ok_or_else(|| bad(format!("link {i} has no hash")))?;
            let (target, used) = read_cid(&hash).map_err(|e| bad(format!("link {i}: {e}")))?;
            if used != hash.len() {
                return Err(bad(format!("link {i}: bytes after the CID")));
            }
            let name = match l.name {
                None => String::new(),
                Some(n) => String::from_utf8(n.to_vec())
                    .map_err(|_| bad(format!("link {i}: name is not UTF-8")))?,
            };
            links.push(Link {
                cid: target,
                name,
                tsize: l.tsize,
            });
        }
        Ok(Self {
            links,
            data: node.data,
        })
    }

    /// Encodes the node (links in the given order), for tests that build
    /// DAGs.
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Bytes {
        let node = PbNode {
            data: self.data.clone(),
            links: self
                .links
                .iter()
                .map(|l| PbLink {
                    hash: Some(Bytes::from(l.cid.to_bytes())),
                    name: Some(Bytes::from(l.name.clone().into_bytes())),
                    tsize: l.tsize,
                })
                .collect(),
        };
        Bytes::from(node.encode_to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::sha256_cid as cid;
    use crate::block::{DAG_PB, RAW};

    #[test]
    fn round_trips() {
        let node = DagPbNode {
            links: vec![Link {
                cid: cid(RAW, b"a"),
                name: "a.txt".into(),
                tsize: Some(1),
            }],
            data: Some(Bytes::from_static(b"\x08\x01")),
        };
        let bytes = node.encode();
        let c = cid(DAG_PB, &bytes);
        assert_eq!(DagPbNode::decode(&c, bytes).unwrap(), node);
    }

    #[test]
    fn rejects_garbage() {
        let c = cid(DAG_PB, b"x");
        // A link (field 2) whose hash (field 1) is not a CID.
        let bad = Bytes::from_static(&[0x12, 0x03, 0x0a, 0x01, 0xff]);
        assert!(matches!(
            DagPbNode::decode(&c, bad),
            Err(IpfsError::DagPb { .. })
        ));
        assert!(DagPbNode::decode(&c, Bytes::from_static(&[0xff, 0xff, 0xff])).is_err());
    }
}
