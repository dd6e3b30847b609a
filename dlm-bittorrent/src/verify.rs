//! Checking stored data against a torrent's piece hashes (BEP 3): what a
//! download keeps from files found on disk without resume state, and what
//! a seeder offers.

use dlm_core::{RangeSet, Result, StoredBytes};
use futures::StreamExt;

use crate::Metainfo;

/// Pieces hashed at once: one being read while another is hashed.
const IN_FLIGHT: usize = 2;

/// The pieces lying wholly inside `within` (byte-space ranges storage
/// holds) whose stored bytes hash to the SHA-1 the metainfo lists, as piece
/// indices in order. Reads one piece at a time per check, so memory is
/// bounded by `2 ×` the piece length (at most 64 MiB each).
///
/// # Errors
/// [`ErrorKind::Io`](dlm_core::ErrorKind::Io) when storage cannot be read.
pub async fn verified_pieces(
    metainfo: &Metainfo,
    stored: &StoredBytes,
    within: &RangeSet,
) -> Result<Vec<usize>> {
    let candidates: Vec<usize> = (0..metainfo.piece_count())
        .filter(|i| within.contains_range(metainfo.piece_range(*i)))
        .collect();
    let mut checks = futures::stream::iter(candidates)
        .map(|index| async move {
            let r = metainfo.piece_range(index);
            // Pieces are at most MAX_PIECE_LENGTH (64 MiB): the length fits a u32.
            let data = stored.read_at(r.start, r.len() as u32).await?;
            Ok::<_, dlm_core::Error>((index, metainfo.piece_matches(index, &data).await))
        })
        .buffered(IN_FLIGHT);
    let mut verified = Vec::new();
    while let Some(check) = checks.next().await {
        let (index, matches) = check?;
        if matches {
            verified.push(index);
        }
    }
    Ok(verified)
}
