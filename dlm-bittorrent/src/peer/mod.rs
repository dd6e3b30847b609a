//! Peers: the wire protocol's state on one connection (BEP 3), what the
//! swarm shares with it, and the pieces we upload.

mod bans;
mod bitfield;
mod connection;
mod counts;
mod extensions;
mod state;
mod task;
mod transport;
mod upload;

pub(crate) use bans::Bans;
pub use bitfield::Bitfield;
pub use connection::{AHEAD_BYTES, PeerConnection, PeerError, PeerIo, PeerStream};
pub use counts::PieceCounts;
pub(crate) use extensions::PeerExtensions;
pub use state::PeerState;
pub use task::PeerHandle;
pub(crate) use transport::{OurHandshake, dial};
pub use upload::{BlockError, Uploads};
