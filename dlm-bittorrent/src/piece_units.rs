//! `PieceUnits`: a torrent's pieces as the engine's verification units
//! (BEP 3: SHA-1 of each piece).

use dlm_core::{ByteRange, Units};
use sha1::{Digest, Sha1};

/// Pieces of `piece_length` bytes (the last one shorter), each checked
/// against its SHA-1 from the metainfo.
#[derive(Debug, Clone)]
pub struct PieceUnits {
    piece_length: u64,
    total: u64,
    hashes: Vec<[u8; 20]>,
}

impl PieceUnits {
    /// Units for a torrent's pieces.
    pub fn new(piece_length: u64, total: u64, hashes: Vec<[u8; 20]>) -> Self {
        Self {
            piece_length: piece_length.max(1),
            total,
            hashes,
        }
    }
}

impl Units for PieceUnits {
    fn unit_at(&self, offset: u64) -> ByteRange {
        let start = offset / self.piece_length * self.piece_length;
        ByteRange::new(start, (start + self.piece_length).min(self.total))
    }

    fn verify(&self, unit: ByteRange, data: &[u8]) -> bool {
        let index = (unit.start / self.piece_length) as usize;
        self.hashes
            .get(index)
            .is_some_and(|h| <[u8; 20]>::from(Sha1::digest(data)) == *h)
    }
}
