//! BitTorrent for dlm (work in progress: issue 6): metainfo parsing so far.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod bencode;
mod error;
mod metainfo;
pub mod peer;
pub mod tracker;
pub mod wire;

pub use error::TorrentError;
pub use metainfo::{
    InfoHash, MAX_FILES, MAX_PIECE_LENGTH, MAX_TORRENT_BYTES, Metainfo, TorrentFile,
};
