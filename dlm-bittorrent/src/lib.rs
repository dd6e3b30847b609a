#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod bencode;
mod choker;
mod config;
mod error;
mod metainfo;
mod metainfo_url;
pub mod mse;
pub mod peer;
pub mod picker;
mod protocol;
pub mod seed;
mod source;
mod swarm;
pub mod tracker;
pub mod verify;
pub mod wire;

pub use config::TorrentConfig;
pub use error::TorrentError;
pub use metainfo::{
    InfoHash, MAX_FILES, MAX_PIECE_LENGTH, MAX_TORRENT_BYTES, Metainfo, TorrentFile,
};
pub use metainfo_url::{fetch_metainfo, is_torrent_url};
pub use mse::Encryption;
pub use protocol::{MEDIA_TYPE, SECTION, TorrentProtocol, register, register_with};
pub use source::{PIECE_MEMORY_BYTES, TorrentSource};
