//! Property tests: random and mutated bytes given as CIDs, CAR streams,
//! dag-pb/UnixFS blocks and IPNS records never panic, and what is refused
//! is refused as `invalid-input` (or `unsupported` for well-formed CIDs of
//! codecs and hashes dlm does not read).

use bytes::Bytes;
use dlm_core::ErrorKind;
use dlm_ipfs::car::CarReader;
use dlm_ipfs::dag_pb::DagPbNode;
use dlm_ipfs::unixfs::Node;
use dlm_ipfs::{IpfsAddress, block, ipns};
use proptest::prelude::*;

fn kind(e: dlm_ipfs::IpfsError) -> ErrorKind {
    dlm_core::Error::from(e).kind()
}

/// A dag-pb CID for `data` (the hash matches, so only the content is tested).
fn dag_pb_cid(data: &[u8]) -> cid::Cid {
    use sha2::Digest;
    let mh = multihash::Multihash::<64>::wrap(0x12, &sha2::Sha256::digest(data)).unwrap();
    cid::Cid::new_v1(0x70, mh)
}

fn read_car(bytes: Vec<u8>) -> dlm_core::Result<usize> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let stream = futures::stream::iter(vec![Ok(Bytes::from(bytes))]);
        let mut r = CarReader::new(stream).await?;
        let mut n = 0;
        while let Some((cid, data)) = r.next_block().await? {
            let _ = block::verify(&cid, &data, "prop");
            n += 1;
        }
        Ok(n)
    })
}

/// A valid one-block CAR to mutate.
fn sample_car() -> Vec<u8> {
    // Header {"roots": [], "version": 1} as dag-cbor, then one raw block "hi".
    let header: &[u8] = &[
        0xa2, 0x65, b'r', b'o', b'o', b't', b's', 0x80, 0x67, b'v', b'e', b'r', b's', b'i', b'o',
        b'n', 0x01,
    ];
    let cid = block::raw_cid(b"hi").to_bytes();
    let mut out = vec![header.len() as u8];
    out.extend_from_slice(header);
    out.push((cid.len() + 2) as u8);
    out.extend(cid);
    out.extend_from_slice(b"hi");
    out
}

#[test]
fn the_sample_car_reads() {
    assert_eq!(read_car(sample_car()).unwrap(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_text_is_not_a_cid_or_is_refused_cleanly(s in "\\PC{0,80}") {
        if let Err(e) = block::parse_cid(&s) {
            prop_assert_eq!(kind(e), ErrorKind::InvalidInput);
        }
        if let Err(e) = IpfsAddress::parse(&format!("ipfs://{s}")) {
            prop_assert_eq!(kind(e), ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn random_bytes_are_not_a_binary_cid(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Err(e) = block::read_cid(&bytes) {
            prop_assert_eq!(kind(e), ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn random_car_streams_fail_as_invalid_input(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Err(e) = read_car(bytes) {
            prop_assert_eq!(e.kind(), ErrorKind::InvalidInput, "{}", e);
        }
    }

    #[test]
    fn mutated_cars_fail_as_invalid_input(at in 0usize..64, value in any::<u8>(), cut in 0usize..64) {
        let mut car = sample_car();
        let i = at % car.len();
        car[i] = value;
        car.truncate(car.len() - cut % car.len());
        if let Err(e) = read_car(car) {
            prop_assert_eq!(e.kind(), ErrorKind::InvalidInput, "{}", e);
        }
    }

    #[test]
    fn random_dag_pb_blocks_fail_as_invalid_input(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let cid = dag_pb_cid(&bytes);
        if let Err(e) = DagPbNode::decode(&cid, Bytes::from(bytes.clone())) {
            prop_assert_eq!(kind(e), ErrorKind::InvalidInput);
        }
        if let Err(e) = Node::decode(&cid, Bytes::from(bytes)) {
            prop_assert_eq!(kind(e), ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn random_ipns_records_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let name = "12D3KooWCG1B2CZUxHivCkPXscQjH6UZYavgJ2mPxocn2DVnWWvX";
        prop_assert!(ipns::verify_record(name, &bytes, std::time::SystemTime::now()).is_err());
    }
}
