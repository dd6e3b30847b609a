//! What `dlm info ipfs://…` shows: the address, the resolved CID with its
//! codec and hash, and the DAG's shape.

use cid::Cid;

use crate::address::IpfsAddress;
use crate::block::{BLAKE3, DAG_PB, IDENTITY, RAW, SHA2_256, SHA2_512};

fn codec_name(code: u64) -> String {
    match code {
        RAW => "raw".into(),
        DAG_PB => "dag-pb".into(),
        other => format!("0x{other:x}"),
    }
}

fn hash_name(code: u64) -> String {
    match code {
        IDENTITY => "identity".into(),
        SHA2_256 => "sha2-256".into(),
        SHA2_512 => "sha2-512".into(),
        BLAKE3 => "blake3".into(),
        other => format!("0x{other:x}"),
    }
}

/// What `dlm info` shows of a resolved address, as label/value pairs.
pub(crate) fn fields(
    address: &IpfsAddress,
    cid: &Cid,
    node: &crate::unixfs::Node,
) -> Vec<(String, String)> {
    let version = if cid.version() == cid::Version::V0 {
        0
    } else {
        1
    };
    let mut f = vec![
        ("address".to_string(), address.to_string()),
        ("cid".to_string(), cid.to_string()),
        (
            "cid format".to_string(),
            format!(
                "CIDv{version}, {}, {}",
                codec_name(cid.codec()),
                hash_name(cid.hash().code())
            ),
        ),
        ("dag".to_string(), node.describe()),
    ];
    if node.is_directory() {
        f.push(("kind".to_string(), "directory".to_string()));
    }
    f
}
