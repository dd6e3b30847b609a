//! Peers: the wire protocol's state on one connection (BEP 3).

mod bitfield;
mod connection;

pub use bitfield::Bitfield;
pub use connection::{PeerConnection, PeerError};
