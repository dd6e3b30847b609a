//! Magnet links (BEP 9): the link itself, fetching the info dictionary
//! from the swarm (`ut_metadata` over the extension protocol, BEP 10), a v2
//! torrent's piece layers (BEP 52 hash requests), and the source that
//! downloads the torrent once the metadata is known.

mod fetch;
mod hashes;
mod link;
mod source;

pub use link::{MAX_MAGNET_HINTS, MAX_MAGNET_LEN, MagnetLink};
pub use source::{METADATA_FILE_SUFFIX, MagnetSource};
