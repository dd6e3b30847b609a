#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod bencode;

/// Our client name and version, as sent in the extended handshake's `v` (BEP 10).
pub const CLIENT_NAME: &str = concat!("dlm ", env!("CARGO_PKG_VERSION"));

mod choker;
mod config;
mod dht;
mod error;
pub mod extension;
pub mod lsd;
pub mod magnet;
mod metainfo;
mod metainfo_url;
pub mod metainfo_v2;
pub mod mse;
pub mod peer;
pub mod picker;
pub mod port_mapping;
mod protocol;
pub mod seed;
mod source;
mod swarm;
pub mod tracker;
mod utp;
pub mod verify;
mod webseed;
pub mod wire;

pub use config::TorrentConfig;
pub use error::TorrentError;
pub use magnet::{MagnetLink, MagnetSource};
pub use metainfo::{
    InfoHash, MAX_FILES, MAX_METAINFO_NODES, MAX_PIECE_LENGTH, MAX_TORRENT_BYTES, MetaVersion,
    Metainfo, TorrentFile,
};
pub use metainfo_url::{fetch_metainfo, is_torrent_url};
pub use mse::Encryption;
pub use protocol::{MEDIA_TYPE, SECTION, TorrentProtocol, register, register_with};
pub use source::{PIECE_MEMORY_BYTES, TorrentSource};
pub use utp::{TCP_HEAD_START, UTP_FALLBACK_LIMIT};
pub use webseed::CONNECTIONS_PER_WEB_SEED;
