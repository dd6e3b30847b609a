//! Magnet links (BEP 9): the link itself, fetching the info dictionary
//! from the swarm (`ut_metadata` over the extension protocol, BEP 10), and
//! the source that downloads the torrent once the metadata is known.

mod fetch;
mod link;
mod source;

pub use link::{MAX_MAGNET_HINTS, MAX_MAGNET_LEN, MagnetLink};
pub use source::{METADATA_FILE_SUFFIX, MagnetSource};
