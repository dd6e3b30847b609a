//! The 768-bit Diffie-Hellman key exchange of MSE: `P`, `G = 2`, 160-bit
//! private keys, 96-byte big-endian public keys and shared secret `S`.

use num_bigint::BigUint;

/// Bytes of a public key (`Ya`, `Yb`) and of the shared secret `S`: 96
/// (768 bits), big-endian, left-padded with zeros.
pub const KEY_LEN: usize = 96;

/// Bytes of a private key (`Xa`, `Xb`): 160 bits, as the specification
/// recommends.
pub const PRIVATE_LEN: usize = 20;

/// `P`, the 768-bit prime of the MSE specification (also listed in
/// Tixati's "Peer Connection Encryption" page), big-endian.
const P: [u8; KEY_LEN] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC9, 0x0F, 0xDA, 0xA2, 0x21, 0x68, 0xC2, 0x34,
    0xC4, 0xC6, 0x62, 0x8B, 0x80, 0xDC, 0x1C, 0xD1, 0x29, 0x02, 0x4E, 0x08, 0x8A, 0x67, 0xCC, 0x74,
    0x02, 0x0B, 0xBE, 0xA6, 0x3B, 0x13, 0x9B, 0x22, 0x51, 0x4A, 0x08, 0x79, 0x8E, 0x34, 0x04, 0xDD,
    0xEF, 0x95, 0x19, 0xB3, 0xCD, 0x3A, 0x43, 0x1B, 0x30, 0x2B, 0x0A, 0x6D, 0xF2, 0x5F, 0x14, 0x37,
    0x4F, 0xE1, 0x35, 0x6D, 0x6D, 0x51, 0xC2, 0x45, 0xE4, 0x85, 0xB5, 0x76, 0x62, 0x5E, 0x7E, 0xC6,
    0xF4, 0x4C, 0x42, 0xE9, 0xA6, 0x3A, 0x36, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x05, 0x63,
];

/// `G`, the generator.
const G: u32 = 2;

/// One side's key pair for one connection: the private key `X` (160
/// random bits) and the public key `Y = G^X mod P` sent to the peer.
pub struct KeyPair {
    private: BigUint,
    public: [u8; KEY_LEN],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("KeyPair").finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A fresh key pair from the operating system's random source.
    ///
    /// # Errors
    /// When the operating system has no random bytes to give.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut x = [0u8; PRIVATE_LEN];
        getrandom::fill(&mut x)?;
        Ok(Self::from_private(&x))
    }

    /// The key pair of the private key `x` (big-endian), for tests and the
    /// fuzz target that need a known key.
    pub fn from_private(x: &[u8; PRIVATE_LEN]) -> Self {
        let private = BigUint::from_bytes_be(x);
        let public = to_key_bytes(&BigUint::from(G).modpow(&private, &prime()));
        Self { private, public }
    }

    /// `Y`, 96 bytes big-endian.
    pub fn public(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    /// The shared secret `S = Y_peer^X mod P`, 96 bytes big-endian.
    ///
    /// The peer's key is any 96 bytes: a value of 0, 1 or at least `P`
    /// gives a secret that only this connection's handshake checks will
    /// reject (the peer's hashes then do not match), never a panic.
    pub fn shared_secret(&self, peer_public: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
        let y = BigUint::from_bytes_be(peer_public);
        to_key_bytes(&y.modpow(&self.private, &prime()))
    }
}

fn prime() -> BigUint {
    BigUint::from_bytes_be(&P)
}

/// `n` (below `P`) as 96 big-endian bytes, zeros first.
fn to_key_bytes(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    // n < P < 2^768, so it always fits.
    let skip = KEY_LEN.saturating_sub(bytes.len());
    let take = bytes.len().min(KEY_LEN);
    out[skip..].copy_from_slice(&bytes[bytes.len() - take..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_reach_the_same_secret() {
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::generate().unwrap();
        assert_ne!(a.public(), b.public());
        assert_eq!(a.shared_secret(b.public()), b.shared_secret(a.public()));
    }

    #[test]
    fn small_public_keys_keep_their_width() {
        // X = 1: Y = G = 2, written as 95 zero bytes and a 2.
        let mut x = [0u8; PRIVATE_LEN];
        x[PRIVATE_LEN - 1] = 1;
        let k = KeyPair::from_private(&x);
        assert_eq!(k.public()[KEY_LEN - 1], 2);
        assert!(k.public()[..KEY_LEN - 1].iter().all(|b| *b == 0));
    }

    #[test]
    fn hostile_public_keys_do_not_panic() {
        let k = KeyPair::generate().unwrap();
        assert_eq!(k.shared_secret(&[0u8; KEY_LEN]), [0u8; KEY_LEN]);
        let _ = k.shared_secret(&[0xFF; KEY_LEN]);
        let _ = k.shared_secret(&P);
    }
}
