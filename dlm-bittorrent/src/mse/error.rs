//! `MseError`: why an MSE handshake failed.

/// Why a Message Stream Encryption handshake failed. The `Display` text
/// says which side is at fault: the peer (a malformed or unsupported
/// handshake) or our policy (`bittorrent.encryption`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MseError {
    /// Reading or writing failed.
    #[error("encrypted handshake: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection mid-handshake: a peer without MSE
    /// support does on our key, and so does one that refuses what we
    /// provide (plaintext under its `require`, RC4 under its `disable`).
    #[error(
        "encrypted handshake: the peer closed the connection (no MSE support, or it refuses what we provide)"
    )]
    Closed,
    /// The handshake did not finish in time.
    #[error("encrypted handshake: no answer within {ms} ms")]
    TimedOut {
        /// The limit, in milliseconds.
        ms: u64,
    },
    /// The synchronisation point (`HASH('req1', S)` for B, `ENCRYPT(VC)`
    /// for A) was not within the 512 bytes of padding allowed.
    #[error("encrypted handshake: no {what} within {limit} bytes (not MSE, or a wrong key)")]
    NoSync {
        /// What was searched for.
        what: &'static str,
        /// Bytes searched, after the peer's public key.
        limit: usize,
    },
    /// The initiator asked for a torrent we do not serve (no candidate
    /// `SKEY` matches `HASH('req2', SKEY)`).
    #[error("the peer asked for a torrent we do not serve")]
    UnknownInfoHash,
    /// The decrypted verification constant was not 8 zero bytes.
    #[error("encrypted handshake: wrong verification constant (VC)")]
    BadVc,
    /// A padding length above 512 bytes.
    #[error("encrypted handshake: {what} of {len} bytes (at most 512)")]
    PadTooLong {
        /// `PadC` or `PadD`.
        what: &'static str,
        /// The length announced.
        len: usize,
    },
    /// No crypto method both sides allow: the peer's `crypto_provide`, or
    /// what it selected, against our policy.
    #[error(
        "encrypted handshake: no common crypto method (peer {peer:#04x}, ours {ours:#04x}; 0x01 plaintext, 0x02 RC4)"
    )]
    NoCommonMethod {
        /// The peer's `crypto_provide` or `crypto_select` bits.
        peer: u32,
        /// The methods our policy allows.
        ours: u32,
    },
    /// Our policy requires encryption and the peer sent a plaintext
    /// BitTorrent handshake.
    #[error("plaintext BitTorrent handshake refused: bittorrent.encryption=require")]
    PlaintextRefused,
    /// We started MSE and the peer answered with a plaintext BitTorrent
    /// handshake: it does not speak MSE.
    #[error("the peer answered the encrypted handshake in plaintext (no MSE support)")]
    PlaintextReply,
    /// Our policy disables encryption and the peer started an MSE handshake.
    #[error("encrypted handshake refused: bittorrent.encryption=disable")]
    EncryptionRefused,
    /// The operating system gave no random bytes for the key.
    #[error("encrypted handshake: no random bytes for the key: {0}")]
    Random(String),
}

impl MseError {
    /// Whether the peer looks like one without MSE support (it closed or
    /// reset the connection, stalled, sent no sync point, or answered in
    /// plaintext), rather than one that refused what we offered: the cases
    /// where dialling again in plaintext can help.
    pub fn may_retry_plaintext(&self) -> bool {
        matches!(
            self,
            Self::Io(_)
                | Self::Closed
                | Self::TimedOut { .. }
                | Self::NoSync { .. }
                | Self::PlaintextReply
        )
    }
}
