//! UnixFS directories: resolving a path through plain and HAMT-sharded
//! directories (spec: UnixFS, HAMTDirectory), and listing their entries.

use cid::Cid;

use crate::IpfsError;
use crate::blocks::Blocks;
use crate::dag_pb::Link;
use crate::unixfs::Node;

/// Most entries one directory listing returns.
pub(crate) const MAX_ENTRIES: usize = 1_000_000;

/// Deepest HAMT followed (a fanout-256 HAMT needs 8 levels for 2^64
/// entries).
const MAX_HAMT_DEPTH: usize = 16;

/// Follows `path` from `root`, returning the terminal CID and its node.
///
/// # Errors
/// [`IpfsError::NoSuchLink`] for a missing name, [`IpfsError::NotADirectory`]
/// when a segment goes through a file; the fetch and decode errors.
pub(crate) async fn resolve_path(
    blocks: &dyn Blocks,
    root: Cid,
    path: &[String],
) -> Result<(Cid, Node), IpfsError> {
    let mut cid = root;
    let mut node = Node::decode(&cid, blocks.get(&cid).await?)?;
    let mut walked = format!("/ipfs/{root}");
    for seg in path {
        walked.push('/');
        walked.push_str(seg);
        let next = match &node {
            Node::Directory(links) => links.iter().find(|l| l.name == *seg).map(|l| l.cid),
            Node::HamtShard { links, fanout } => {
                hamt_find(blocks, links.clone(), *fanout, seg).await?
            }
            _ => return Err(IpfsError::NotADirectory { path: walked }),
        };
        cid = next.ok_or_else(|| IpfsError::NoSuchLink {
            path: walked.clone(),
        })?;
        node = Node::decode(&cid, blocks.get(&cid).await?)?;
    }
    Ok((cid, node))
}

/// The entries (name and CID) of a directory node, following HAMT shards.
/// `budget` is how many more entries and shards the caller allows (a tree's
/// [`IpfsConfig::max_tree_entries`](crate::IpfsConfig::max_tree_entries) less what it listed): the
/// same shard may be linked from every bucket of every level, so the walk
/// is bounded by the shards it visits, not by the blocks it fetches.
///
/// # Errors
/// [`IpfsError::NotADirectory`] for other nodes, [`IpfsError::TooLarge`]
/// over [`MAX_ENTRIES`] or `budget`; the fetch and decode errors of shards.
pub(crate) async fn entries(
    blocks: &dyn Blocks,
    node: &Node,
    budget: usize,
) -> Result<Vec<(String, Cid)>, IpfsError> {
    let over = || {
        IpfsError::TooLarge(format!(
            "directory over {budget} entries and shards left by ipfs.max_tree_entries"
        ))
    };
    match node {
        Node::Directory(links) => {
            if links.len() > budget {
                return Err(over());
            }
            if links.len() > MAX_ENTRIES {
                return Err(IpfsError::TooLarge(format!(
                    "directory of {} entries",
                    links.len()
                )));
            }
            Ok(links.iter().map(|l| (l.name.clone(), l.cid)).collect())
        }
        Node::HamtShard { links, fanout } => {
            let mut out = Vec::new();
            let mut pending = vec![(links.clone(), *fanout, 0usize)];
            let mut steps = 0usize;
            while let Some((links, fanout, depth)) = pending.pop() {
                if depth > MAX_HAMT_DEPTH {
                    return Err(IpfsError::TooLarge("HAMT deeper than 16 levels".into()));
                }
                let width = label_width(fanout);
                for l in links {
                    if l.name.len() < width || !l.name.is_char_boundary(width) {
                        return Err(bad_label(&l));
                    }
                    steps += 1;
                    if steps > budget {
                        return Err(over());
                    }
                    if l.name.len() == width {
                        let (sub, fanout) = shard(blocks, &l).await?;
                        pending.push((sub, fanout, depth + 1));
                    } else {
                        out.push((l.name[width..].to_string(), l.cid));
                        if out.len() > MAX_ENTRIES {
                            return Err(IpfsError::TooLarge(format!(
                                "directory over {MAX_ENTRIES} entries"
                            )));
                        }
                    }
                }
            }
            Ok(out)
        }
        _ => Err(IpfsError::NotADirectory {
            path: String::new(),
        }),
    }
}

fn bad_label(l: &Link) -> IpfsError {
    IpfsError::UnixFs {
        cid: l.cid.to_string(),
        reason: format!(
            "HAMT link name {:?} is shorter than its bucket label",
            l.name
        ),
    }
}

async fn shard(blocks: &dyn Blocks, l: &Link) -> Result<(Vec<Link>, u64), IpfsError> {
    match Node::decode(&l.cid, blocks.get(&l.cid).await?)? {
        Node::HamtShard { links, fanout } => Ok((links, fanout)),
        other => Err(IpfsError::UnixFs {
            cid: l.cid.to_string(),
            reason: format!("a HAMT bucket link points to a {}", other.describe()),
        }),
    }
}

/// Hex digits of a bucket label: 2 for fanout 256.
fn label_width(fanout: u64) -> usize {
    format!("{:X}", fanout - 1).len()
}

/// The HAMT key hash: the first 64 bits of murmur3-x64-128 (seed 0), big
/// endian, as go-unixfs and js-ipfs-unixfs compute it.
fn hamt_hash(name: &str) -> [u8; 8] {
    let h = murmur3::murmur3_x64_128(&mut name.as_bytes(), 0).unwrap_or_default();
    (h as u64).to_be_bytes()
}

/// Finds `name` in a HAMT: at each level the next log2(fanout) bits of the
/// hash (most significant first) pick the bucket whose label is their hex
/// value; a label alone is a sub-shard, a label followed by the name is
/// the entry.
async fn hamt_find(
    blocks: &dyn Blocks,
    links: Vec<Link>,
    fanout: u64,
    name: &str,
) -> Result<Option<Cid>, IpfsError> {
    let hash = hamt_hash(name);
    let mut bit = 0usize;
    let mut links = links;
    let mut fanout = fanout;
    for _ in 0..MAX_HAMT_DEPTH {
        let bits = fanout.trailing_zeros() as usize;
        if bit + bits > 64 {
            return Ok(None);
        }
        let mut idx = 0u64;
        for i in bit..bit + bits {
            idx = (idx << 1) | u64::from((hash[i / 8] >> (7 - i % 8)) & 1);
        }
        bit += bits;
        let width = label_width(fanout);
        let label = format!("{idx:0width$X}");
        let Some(l) = links.iter().find(|l| l.name.starts_with(&label)) else {
            return Ok(None);
        };
        if l.name.len() > width {
            return Ok((l.name[width..] == *name).then_some(l.cid));
        }
        let (sub, f) = shard(blocks, l).await?;
        links = sub;
        fanout = f;
    }
    Err(IpfsError::TooLarge("HAMT deeper than 16 levels".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::MemoryBlocks as Memory;

    use std::collections::HashMap;

    use bytes::Bytes;

    use crate::block::{DAG_PB, sha256_cid};
    use crate::dag_pb::DagPbNode;

    /// UnixFS data of a fanout-16 HAMT shard (type 5, murmur3-x64-64).
    const SHARD_16: &[u8] = &[0x08, 0x05, 0x28, 0x22, 0x30, 0x10];

    /// `levels` shards, each linking all 16 buckets to the one below; the
    /// last holds one file entry. The walk would take 16^levels steps over
    /// `levels` blocks. Returns the top shard's links.
    fn shared_shards(levels: usize) -> (Vec<Link>, Memory) {
        let mut blocks = HashMap::new();
        let file = sha256_cid(crate::block::RAW, b"x");
        let mut links = vec![Link {
            cid: file,
            name: "0file".into(),
            tsize: Some(1),
        }];
        for _ in 0..levels {
            let node = DagPbNode {
                links: links.clone(),
                data: Some(Bytes::from_static(SHARD_16)),
            }
            .encode();
            let cid = sha256_cid(DAG_PB, &node);
            blocks.insert(cid, node);
            links = (0..16)
                .map(|b| Link {
                    cid,
                    name: format!("{b:X}"),
                    tsize: None,
                })
                .collect();
        }
        (links, Memory(blocks))
    }

    #[tokio::test]
    async fn a_hamt_that_links_one_shard_from_every_bucket_is_cut_by_the_budget() {
        let (links, blocks) = shared_shards(12);
        let top = Node::HamtShard { links, fanout: 16 };
        let e = entries(&blocks, &top, 10_000).await.unwrap_err();
        assert!(matches!(e, IpfsError::TooLarge(_)), "{e}");
        assert!(e.to_string().contains("max_tree_entries"), "{e}");
        // Within its budget, the same shape lists every path to the file.
        let (links, blocks) = shared_shards(2);
        let top = Node::HamtShard { links, fanout: 16 };
        assert_eq!(entries(&blocks, &top, 10_000).await.unwrap().len(), 256);
    }

    #[tokio::test]
    async fn a_plain_directory_over_the_budget_is_too_large() {
        let file = sha256_cid(crate::block::RAW, b"x");
        let links = (0..5)
            .map(|i| Link {
                cid: file,
                name: format!("f{i}"),
                tsize: None,
            })
            .collect();
        let blocks = Memory(HashMap::new());
        let dir = Node::Directory(links);
        assert_eq!(entries(&blocks, &dir, 5).await.unwrap().len(), 5);
        let e = entries(&blocks, &dir, 4).await.unwrap_err();
        assert!(matches!(e, IpfsError::TooLarge(_)), "{e}");
    }

    #[test]
    fn labels() {
        assert_eq!(label_width(256), 2);
        assert_eq!(label_width(16), 1);
        assert_eq!(label_width(1024), 3);
    }
}
