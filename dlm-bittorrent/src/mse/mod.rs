//! Message Stream Encryption / Protocol Encryption (MSE/PE), the
//! obfuscated handshake and RC4 stream that most BitTorrent clients speak
//! (specification: "Message Stream Encryption", the Azureus/Vuze wiki; no
//! BEP number).
//!
//! - [`dh`]: the 768-bit Diffie-Hellman exchange (`P`, `G = 2`, 160-bit
//!   private keys);
//! - [`cipher`]: `HASH(...)` (SHA-1) and the RC4 streams keyed
//!   `HASH('keyA', S, SKEY)` / `HASH('keyB', S, SKEY)`, first 1024 bytes
//!   discarded;
//! - [`initiate`] / [`respond`]: the handshake for the side that connected
//!   (A) and the side that accepted (B), invariants in [`handshake`];
//! - [`MseStream`]: the payload stream afterwards, RC4 or plaintext;
//! - [`Encryption`]: the policy (`bittorrent.encryption`).
//!
//! # What it costs
//! Each handshake does two 768-bit modular exponentiations with 160-bit
//! exponents per side, and RC4 runs one table lookup and swap per payload
//! byte. The ignored test `mse::tests::cost` measures both (run it in
//! release); the numbers are in the crate README. Under the default [`Encryption::Prefer`] the payload
//! stays plaintext whenever the peer allows it, so only `require` (or a
//! peer that insists on RC4) pays the RC4 cost.

pub mod cipher;
pub mod dh;
mod error;
pub mod handshake;
mod policy;
mod stream;
#[cfg(test)]
mod tests;

pub use error::MseError;
pub use handshake::{initiate, initiate_with_payload, respond};
pub use policy::{CRYPTO_PLAINTEXT, CRYPTO_RC4, Encryption};
pub use stream::MseStream;
