//! `Encryption`: when to use MSE, and which crypto methods to allow.

/// When connections use Message Stream Encryption, and how its payload is
/// protected (`bittorrent.encryption=prefer|require|disable`). The
/// `crypto_provide`/`crypto_select` bits are 0x01 (plaintext) and 0x02
/// (RC4).
///
/// # Defaults
/// [`Encryption::Prefer`], as libtorrent's and Transmission's defaults:
/// every outgoing connection starts with an obfuscated handshake and any
/// incoming one is accepted, but the payload stays plaintext when the peer
/// allows it, so downloads pay no RC4 cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Encryption {
    /// Outgoing: an MSE handshake offering plaintext and RC4 (0x03), with
    /// the BitTorrent handshake as its initial payload, within half of the
    /// connect timeout; a peer that closes the connection, stalls or
    /// answers in plaintext during it is dialled again once, in plaintext
    /// (as libtorrent does). Incoming: a plaintext handshake or
    /// MSE, either accepted. When a peer offers both methods we select
    /// plaintext (libtorrent's `prefer_rc4 = false`): the handshake is
    /// obfuscated, the payload is not encrypted.
    #[default]
    Prefer,
    /// MSE with RC4 on both directions, in and out; a plaintext peer is
    /// refused ([`MseError::PlaintextRefused`](super::MseError::PlaintextRefused),
    /// or the peer closing our MSE handshake).
    Require,
    /// Plaintext BitTorrent only: no MSE out, incoming MSE refused
    /// ([`MseError::EncryptionRefused`](super::MseError::EncryptionRefused)).
    Disable,
}

/// `crypto_provide`/`crypto_select` bit: plaintext payload after the handshake.
pub const CRYPTO_PLAINTEXT: u32 = 0x01;
/// `crypto_provide`/`crypto_select` bit: RC4 on the payload.
pub const CRYPTO_RC4: u32 = 0x02;

impl Encryption {
    /// The crypto methods this policy allows in an MSE handshake (0 for
    /// [`Encryption::Disable`]).
    pub fn allowed(self) -> u32 {
        match self {
            Self::Prefer => CRYPTO_PLAINTEXT | CRYPTO_RC4,
            Self::Require => CRYPTO_RC4,
            Self::Disable => 0,
        }
    }

    /// B's `crypto_select` for A's `crypto_provide`: plaintext when both
    /// allow it, else RC4; `None` when nothing is common.
    pub fn select(self, provide: u32) -> Option<u32> {
        let common = provide & self.allowed();
        [CRYPTO_PLAINTEXT, CRYPTO_RC4]
            .into_iter()
            .find(|m| common & m != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_prefers_plaintext_unless_required() {
        assert_eq!(Encryption::Prefer.select(0x03), Some(CRYPTO_PLAINTEXT));
        assert_eq!(Encryption::Prefer.select(0x02), Some(CRYPTO_RC4));
        assert_eq!(Encryption::Require.select(0x03), Some(CRYPTO_RC4));
        assert_eq!(Encryption::Require.select(0x01), None);
        assert_eq!(Encryption::Prefer.select(0x00), None);
        assert_eq!(Encryption::Prefer.select(0xFFFF_FFFC), None);
        assert_eq!(Encryption::Disable.select(0x03), None);
    }
}
