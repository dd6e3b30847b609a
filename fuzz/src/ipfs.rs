//! IPFS: CAR streams, dag-pb/UnixFS blocks, IPNS records, bitswap messages.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use dlm_ipfs::block::{self, DAG_PB};
use dlm_ipfs::car::CarReader;
use dlm_ipfs::dag_pb::{DagPbNode, MAX_LINKS};
use dlm_ipfs::unixfs::Node;
use futures::FutureExt;

/// Bytes per chunk a CAR stream is cut into, so sections straddle chunks
/// as they do on the network (a prime, so boundaries drift).
const CAR_CHUNK_BYTES: usize = 61;

/// Blocks read from one CAR input at most.
const MAX_CAR_BLOCKS: usize = 4096;

/// A CARv1 stream (IPFS CAR spec: varint-framed dag-cbor header, then CID
/// and block sections) through `CarReader`, as a gateway's `?format=car`
/// answer is read. Input: the stream, delivered in 61-byte chunks.
///
/// Checks: the blocks read add up to no more bytes than were sent, and each
/// is checked against its CID without panicking.
pub fn car(data: &[u8]) {
    let chunks: Vec<dlm_core::Result<Bytes>> = data
        .chunks(CAR_CHUNK_BYTES)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let stream = futures::stream::iter(chunks);
    // An in-memory stream is always ready: each future completes at once.
    let Some(Ok(mut reader)) = CarReader::new(stream).now_or_never() else {
        return;
    };
    let mut read = 0usize;
    for _ in 0..MAX_CAR_BLOCKS {
        let Some(Ok(Some((cid, bytes)))) = reader.next_block().now_or_never() else {
            break;
        };
        read += bytes.len();
        assert!(read <= data.len());
        let _ = block::verify(&cid, &bytes, "fuzz");
    }
}

/// A dag-pb block (dag-pb spec) and its UnixFS data (UnixFS spec) through
/// `DagPbNode::decode` and `unixfs::Node::decode`, as every block of a
/// UnixFS DAG is read; the input is also decoded as a raw leaf. Input: the
/// block.
///
/// Checks: at most `MAX_LINKS` links; a file node's size covers its own
/// data; a raw block is a leaf holding exactly its bytes.
pub fn dag_pb(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let cid = block::sha256_cid(DAG_PB, data);
    if let Ok(node) = DagPbNode::decode(&cid, bytes.clone()) {
        assert!(node.links.len() <= MAX_LINKS);
    }
    if let Ok(node) = Node::decode(&cid, bytes.clone()) {
        let _ = (node.is_directory(), node.describe());
        if let Node::File { data: own, .. } = &node {
            assert!(node.file_size().expect("a file has a size") >= own.len() as u64);
        }
    }
    let raw = block::raw_cid(data);
    assert_eq!(
        Node::decode(&raw, bytes.clone()).ok(),
        Some(Node::Leaf(bytes))
    );
}

/// The time IPNS records are checked at: 2027-01-15T08:00:00Z, fixed so
/// corpus runs are reproducible (the seed records are valid until 2100).
const IPNS_NOW: Duration = Duration::from_secs(1_800_000_000);

/// IPNS records (IPNS spec: protobuf `IpnsEntry`, V2 signature over the
/// dag-cbor `data`) through `ipns::verify_record`, as a gateway's
/// `application/vnd.ipfs.ipns-record` answer is checked. Input: the IPNS name
/// on the first line (a peer ID or `libp2p-key` CID), the record after it;
/// the whole input is also read as a DNSLink TXT value.
///
/// Checks: a verified record points at an `/ipfs/` or `/ipns/` path.
pub fn ipns(data: &[u8]) {
    let (name, record) = crate::split_head(data);
    let _ = dlm_ipfs::ipns::is_key_name(&name);
    let now = SystemTime::UNIX_EPOCH + IPNS_NOW;
    if let Ok(r) = dlm_ipfs::ipns::verify_record(&name, record, now) {
        assert!(r.valid_until > now);
        assert!(
            r.value.starts_with("/ipfs/") || r.value.starts_with("/ipns/"),
            "{r:?}"
        );
    }
    let _ = dlm_ipfs::ipns::parse_dnslink(&String::from_utf8_lossy(data));
}

/// A bitswap stream (Bitswap 1.2.0: varint-length-delimited protobuf
/// messages) as a peer's stream is read. Input: the stream.
///
/// Checks: the messages read, encoded again and read back, give the same
/// blocks, presences and wants (and the same encoding).
pub fn bitswap(data: &[u8]) {
    let (messages, _) = dlm_ipfs::fuzzing::bitswap_messages(data);
    let again: Vec<u8> = messages.iter().flat_map(|m| m.encoded.clone()).collect();
    let (reread, error) = dlm_ipfs::fuzzing::bitswap_messages(&again);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(reread, messages);
}
