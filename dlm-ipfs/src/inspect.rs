//! What `dlm info ipfs://…` shows: the resolved CID, its codec and hash,
//! the DAG's shape and the file size.

use cid::Cid;

use crate::IpfsConfig;
use crate::address::IpfsAddress;
use crate::block::{BLAKE3, DAG_PB, IDENTITY, RAW, SHA2_256, SHA2_512};
use dlm_core::Target;

/// A resolved address, described.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Inspection {
    /// The address as given, normalised.
    pub address: String,
    /// The CID the address resolves to.
    pub cid: String,
    /// CID version (0 or 1).
    pub cid_version: u8,
    /// Codec name (`raw`, `dag-pb`).
    pub codec: String,
    /// Multihash function name (`sha2-256`, …).
    pub hash: String,
    /// The node: `file (dag-pb, 256 children)`, `directory (3 entries)`, …
    pub shape: String,
    /// For files, the size in bytes.
    pub size: Option<u64>,
    /// Whether it is a directory (list it with the tree listing).
    pub directory: bool,
}

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

/// Resolves `input` and describes what it names, with the target to list
/// or download it (one resolution, one session).
///
/// # Errors
/// As [`IpfsAddress::parse`] and the resolution.
pub async fn inspect(input: &str, config: IpfsConfig) -> dlm_core::Result<(Inspection, Target)> {
    let (session, address, r) = crate::source::resolve(input, config).await?;
    let info = describe(&address, &r.cid, &r.node);
    Ok((info, crate::source::target(session, address, r)))
}

fn describe(address: &IpfsAddress, cid: &Cid, node: &crate::unixfs::Node) -> Inspection {
    Inspection {
        address: address.to_string(),
        cid: cid.to_string(),
        cid_version: if cid.version() == cid::Version::V0 {
            0
        } else {
            1
        },
        codec: codec_name(cid.codec()),
        hash: hash_name(cid.hash().code()),
        shape: node.describe(),
        size: node.file_size(),
        directory: node.is_directory(),
    }
}
