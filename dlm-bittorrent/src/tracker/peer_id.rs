//! `PeerId`: our 20-byte name in the swarm, Azureus-style (`-DL0100-` and
//! 12 random characters), as most clients send.

use std::fmt;

/// A peer id (BEP 3, 20 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId(pub [u8; 20]);

/// Client code and version in our peer ids: `DL` 0.1.0.
const PREFIX: &[u8; 8] = b"-DL0100-";

impl PeerId {
    /// A fresh random peer id.
    pub fn random() -> Self {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(PREFIX);
        for b in &mut id[8..] {
            *b = ALPHABET[fastrand::usize(..ALPHABET.len())];
        }
        Self(id)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", String::from_utf8_lossy(&self.0))
    }
}
