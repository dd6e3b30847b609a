//! Reading a byte range of a UnixFS file: walk the DAG from the file's root
//! node down to the leaves that overlap the range, fetching up to `window`
//! blocks at once and yielding the leaves' bytes in file order. Offsets
//! come from each node's `blocksizes`; a child whose real size differs from
//! what its parent declared is an error, so a bad DAG cannot shift bytes.

use std::sync::Arc;

use bytes::Bytes;
use dlm_core::ByteRange;
use futures::stream::{self, BoxStream, StreamExt};

use crate::IpfsError;
use crate::blocks::Blocks;
use crate::unixfs::Node;

/// Deepest file DAG followed (real DAGs are 1 to 4 levels deep).
pub(crate) const MAX_DEPTH: usize = 32;

enum Item {
    Bytes(Bytes),
    Child {
        cid: cid::Cid,
        offset: u64,
        size: u64,
    },
}

enum Piece {
    Bytes(Bytes),
    Stream(BoxStream<'static, Result<Bytes, IpfsError>>),
}

/// The bytes of `range` of the file whose root node is `root` (which starts
/// at file offset 0), in order.
pub(crate) fn read_range(
    blocks: Arc<dyn Blocks>,
    root: Node,
    range: ByteRange,
    window: usize,
) -> BoxStream<'static, Result<Bytes, IpfsError>> {
    node_stream(blocks, root, 0, range, window.max(1), 0)
}

fn node_stream(
    blocks: Arc<dyn Blocks>,
    node: Node,
    offset: u64,
    range: ByteRange,
    window: usize,
    depth: usize,
) -> BoxStream<'static, Result<Bytes, IpfsError>> {
    let (data, children) = match node {
        Node::Leaf(data) => {
            return stream::iter(slice(&data, offset, range).map(Ok)).boxed();
        }
        Node::File { data, children } => (data, children),
        other => {
            return stream::once(async move {
                Err(IpfsError::UnixFs {
                    cid: "?".into(),
                    reason: format!("{} inside a file", other.describe()),
                })
            })
            .boxed();
        }
    };
    if depth >= MAX_DEPTH {
        return stream::once(async {
            Err(IpfsError::TooLarge(format!(
                "file DAG deeper than {MAX_DEPTH}"
            )))
        })
        .boxed();
    }
    let mut items = Vec::new();
    if let Some(b) = slice(&data, offset, range) {
        items.push(Item::Bytes(b));
    }
    let mut at = offset + data.len() as u64;
    for (link, size) in children {
        if at >= range.end {
            break;
        }
        let end = at.saturating_add(size);
        if end > range.start && size > 0 {
            items.push(Item::Child {
                cid: link.cid,
                offset: at,
                size,
            });
        }
        at = end;
    }
    stream::iter(items)
        .map(move |item| {
            let blocks = blocks.clone();
            async move {
                match item {
                    Item::Bytes(b) => Ok(Piece::Bytes(b)),
                    Item::Child { cid, offset, size } => {
                        let data = blocks.get(&cid).await?;
                        let node = Node::decode(&cid, data)?;
                        if node.file_size() != Some(size) {
                            return Err(IpfsError::UnixFs {
                                cid: cid.to_string(),
                                reason: format!(
                                    "its parent says {size} bytes but it holds {:?}",
                                    node.file_size()
                                ),
                            });
                        }
                        Ok(match node {
                            Node::Leaf(d) => {
                                Piece::Bytes(slice(&d, offset, range).unwrap_or_default())
                            }
                            other => Piece::Stream(node_stream(
                                blocks,
                                other,
                                offset,
                                range,
                                window,
                                depth + 1,
                            )),
                        })
                    }
                }
            }
        })
        .buffered(window)
        .flat_map(|r| match r {
            Ok(Piece::Bytes(b)) => stream::iter((!b.is_empty()).then_some(Ok(b))).boxed(),
            Ok(Piece::Stream(s)) => s,
            Err(e) => stream::iter(Some(Err(e))).boxed(),
        })
        .boxed()
}

/// The part of `data` (which starts at file offset `offset`) inside `range`.
fn slice(data: &Bytes, offset: u64, range: ByteRange) -> Option<Bytes> {
    let end = offset + data.len() as u64;
    let from = range.start.max(offset);
    let to = range.end.min(end);
    (from < to).then(|| data.slice((from - offset) as usize..(to - offset) as usize))
}

#[cfg(test)]
mod tests {
    use crate::blocks::MemoryBlocks as Memory;
    use std::collections::HashMap;

    use super::*;
    use crate::block::sha256_cid as cid;
    use crate::block::{DAG_PB, RAW};
    use crate::dag_pb::{DagPbNode, Link};
    use crate::unixfs::encode_file_data;

    /// A two-level file: root (with 2 bytes of its own) → 3 internal nodes →
    /// 4 raw leaves of 10 bytes each (the last internal node has 2).
    fn build() -> (Vec<u8>, Node, Memory) {
        let mut blocks = HashMap::new();
        let mut content = b"RR".to_vec();
        let mut mids = Vec::new();
        let mut counter = 0u8;
        for leaves in [4, 4, 2] {
            let mut links = Vec::new();
            for _ in 0..leaves {
                let leaf: Vec<u8> = (0..10)
                    .map(|i| counter.wrapping_mul(10).wrapping_add(i))
                    .collect();
                counter += 1;
                content.extend(&leaf);
                let c = cid(RAW, &leaf);
                blocks.insert(c, Bytes::from(leaf));
                links.push(Link {
                    cid: c,
                    name: String::new(),
                    tsize: Some(10),
                });
            }
            let n = links.len() as u64;
            let node = DagPbNode {
                links,
                data: Some(encode_file_data(b"", &vec![10; n as usize])),
            }
            .encode();
            let c = cid(DAG_PB, &node);
            blocks.insert(c, node);
            mids.push((
                Link {
                    cid: c,
                    name: String::new(),
                    tsize: None,
                },
                n * 10,
            ));
        }
        let root = Node::File {
            data: Bytes::from_static(b"RR"),
            children: mids,
        };
        (content, root, Memory(blocks))
    }

    async fn collect(
        s: BoxStream<'static, Result<Bytes, IpfsError>>,
    ) -> Result<Vec<u8>, IpfsError> {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(b) = s.next().await {
            out.extend(b?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn every_range_matches_the_content() {
        let (content, root, mem) = build();
        let blocks: Arc<dyn Blocks> = Arc::new(mem);
        let len = content.len() as u64;
        for (start, end) in [
            (0, len),
            (0, 1),
            (1, 3),
            (5, 45),
            (41, 42),
            (len - 1, len),
            (12, 22),
        ] {
            for window in [1, 3, 16] {
                let got = collect(read_range(
                    blocks.clone(),
                    root.clone(),
                    ByteRange::new(start, end),
                    window,
                ))
                .await
                .unwrap();
                assert_eq!(
                    got,
                    content[start as usize..end as usize],
                    "{start}..{end} window {window}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_child_of_the_wrong_size_is_refused() {
        let (_, root, mem) = build();
        let Node::File { data, mut children } = root else {
            unreachable!()
        };
        children[0].1 = 39;
        let bad = Node::File { data, children };
        let err = collect(read_range(Arc::new(mem), bad, ByteRange::new(0, 30), 4))
            .await
            .unwrap_err();
        assert!(matches!(err, IpfsError::UnixFs { .. }), "{err}");
    }
}
