#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod address;
mod bitswap;
pub mod block;
mod blocks;
pub mod car;
mod config;
pub mod dag_pb;
mod directory;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
mod inspect;
pub mod ipns;
mod listing;
mod protocol;
mod reader;
mod session;
mod source;
pub mod unixfs;

pub use address::{IpfsAddress, Root};
pub use block::{Block, MAX_BLOCK_BYTES};
pub use config::{
    DEFAULT_GATEWAYS, DEFAULT_WINDOW, IpfsConfig, MAX_TREE_DEPTH, MAX_TREE_ENTRIES, parse_peer,
};
pub use error::IpfsError;
pub use libp2p::Multiaddr;
pub use listing::IpfsListing;
pub use protocol::{IpfsProtocol, SECTION, register};
pub use source::{IpfsSource, resolve_target};
