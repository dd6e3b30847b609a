//! `PeerExtensions`: what the extension protocol (BEP 10) told us about one
//! peer, and the peer exchange (BEP 11) owed to it and received from it.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::extension::ExtendedHandshake;
use crate::extension::ut_pex::{MAX_PEX_READ, PexMessage};

/// Most addresses waiting in one peer's PEX inbox (the rest are dropped).
const MAX_INBOX: usize = 2 * MAX_PEX_READ;

/// One peer's extensions.
#[derive(Debug, Default)]
pub(crate) struct PeerExtensions {
    /// The id the peer receives `ut_metadata` on (0: unsupported).
    pub(crate) ut_metadata: u8,
    /// The id the peer receives `ut_pex` on (0: unsupported).
    pub(crate) ut_pex: u8,
    /// The peer's listening port (`p`).
    pub(crate) listen_port: Option<u16>,
    /// The peer's client (`v`).
    pub(crate) client: Option<String>,
    /// Peers it told us of (`ut_pex` `added`), not yet taken by the swarm.
    pub(crate) inbox: Vec<SocketAddr>,
    /// The next `ut_pex` message to send, prepared by the swarm.
    pub(crate) outbox: Option<PexMessage>,
    /// The addresses the peer has been told of, as connected.
    pub(crate) told: HashSet<SocketAddr>,
}

impl PeerExtensions {
    /// Notes the peer's extended handshake.
    pub(crate) fn handshake(&mut self, h: &ExtendedHandshake) {
        self.ut_metadata = h.id_of("ut_metadata").unwrap_or(0);
        self.ut_pex = h.id_of("ut_pex").unwrap_or(0);
        self.listen_port = h.port();
        self.client = h.client();
    }

    /// Keeps the peers a `ut_pex` message added, up to the inbox's bound.
    pub(crate) fn received(&mut self, m: PexMessage) {
        let room = MAX_INBOX.saturating_sub(self.inbox.len());
        self.inbox
            .extend(m.added.into_iter().map(|(a, _)| a).take(room));
    }
}
