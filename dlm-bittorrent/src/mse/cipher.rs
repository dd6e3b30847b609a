//! The MSE hashes and the RC4 streams: `HASH(...)` is SHA-1 over the
//! concatenated arguments; each direction gets its own RC4 stream, keyed
//! `HASH('keyA', S, SKEY)` (A to B) or `HASH('keyB', S, SKEY)` (B to A),
//! with the first 1024 bytes of keystream thrown away.

use rc4::{KeyInit, Rc4, StreamCipher};
use sha1::{Digest, Sha1};

use super::dh::KEY_LEN;

/// Bytes of keystream thrown away before the first encrypted byte, as the
/// specification asks (RC4's first bytes leak key bits).
pub const DISCARD: usize = 1024;

/// `HASH(parts...)`: SHA-1 of the parts, one after another.
pub fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `HASH('req1', S)`: what B synchronises on after `Ya` and `PadA`.
pub fn req1(s: &[u8; KEY_LEN]) -> [u8; 20] {
    hash(&[b"req1", s])
}

/// `HASH('req2', SKEY) xor HASH('req3', S)`: tells B which torrent (`SKEY`,
/// its info-hash) A wants without sending the info-hash itself.
pub fn req2_xor_req3(skey: &[u8], s: &[u8; KEY_LEN]) -> [u8; 20] {
    let mut out = hash(&[b"req2", skey]);
    for (o, r) in out.iter_mut().zip(hash(&[b"req3", s])) {
        *o ^= r;
    }
    out
}

/// One direction's RC4 stream, past its first 1024 bytes.
pub struct Rc4Stream(Rc4);

impl std::fmt::Debug for Rc4Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rc4Stream").finish_non_exhaustive()
    }
}

impl Rc4Stream {
    /// RC4 keyed with `key` (1 to 256 bytes; MSE's keys are 20), the first
    /// 1024 bytes of keystream discarded.
    fn new(key: &[u8; 20]) -> Self {
        // A 20-byte key is always in RC4's 1..=256 range.
        let mut rc4 = match Rc4::new_from_slice(key) {
            Ok(c) => c,
            Err(_) => unreachable!("20-byte RC4 key"),
        };
        let mut drop = [0u8; DISCARD];
        rc4.apply_keystream(&mut drop);
        Self(rc4)
    }

    /// The stream A encrypts with and B decrypts with: `HASH('keyA', S, SKEY)`.
    pub fn key_a(s: &[u8; KEY_LEN], skey: &[u8]) -> Self {
        Self::new(&hash(&[b"keyA", s, skey]))
    }

    /// The stream B encrypts with and A decrypts with: `HASH('keyB', S, SKEY)`.
    pub fn key_b(s: &[u8; KEY_LEN], skey: &[u8]) -> Self {
        Self::new(&hash(&[b"keyB", s, skey]))
    }

    /// Encrypts or decrypts `buf` in place (XOR with the next keystream bytes).
    pub fn apply(&mut self, buf: &mut [u8]) {
        self.0.apply_keystream(buf);
    }

    /// Writes the next keystream bytes into `buf`.
    pub fn keystream(&mut self, buf: &mut [u8]) {
        self.0.write_keystream(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6229 §2, key length 40 bits, key 0x0102030405: keystream at
    /// offsets 0, 1024 and 1520.
    #[test]
    fn rc4_matches_rfc_6229() {
        let mut rc4 = Rc4::new_from_slice(&[1, 2, 3, 4, 5]).unwrap();
        let mut ks = [0u8; 1536];
        rc4.write_keystream(&mut ks);
        assert_eq!(hex::encode(&ks[..16]), "b2396305f03dc027ccc3524a0a1118a8");
        assert_eq!(
            hex::encode(&ks[1024..1040]),
            "30abbcc7c20b01609f23ee2d5f6bb7df"
        );
        assert_eq!(
            hex::encode(&ks[1520..1536]),
            "3294f744d8f9790507e70f62e5bbceea"
        );
    }

    /// The stream starts at keystream byte 1024: encrypting zeros with a
    /// keyed `Rc4Stream` gives plain RC4's bytes 1024.. for that key.
    #[test]
    fn the_first_1024_bytes_are_discarded() {
        let key = hash(&[b"keyA", &[7u8; KEY_LEN], b"skey"]);
        let mut plain = Rc4::new_from_slice(&key).unwrap();
        let mut ks = [0u8; DISCARD + 32];
        plain.write_keystream(&mut ks);
        let mut ours = Rc4Stream::key_a(&[7u8; KEY_LEN], b"skey");
        let mut buf = [0u8; 32];
        ours.apply(&mut buf);
        assert_eq!(buf, ks[DISCARD..]);
    }

    #[test]
    fn the_two_directions_use_different_keys() {
        let s = [3u8; KEY_LEN];
        let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
        Rc4Stream::key_a(&s, b"x").apply(&mut a);
        Rc4Stream::key_b(&s, b"x").apply(&mut b);
        assert_ne!(a, b);
    }
}
