//! Learning a v2 torrent's piece layers from peers (BEP 52 `hash request`,
//! `hashes`, `hash reject`): the info dictionary of a magnet link holds each
//! file's `pieces root` but not its piece layer, without which a piece of a
//! file longer than one piece cannot be checked.
//!
//! Each missing layer is asked for in runs of at most
//! [`MAX_HASH_REQUEST_LENGTH`] hashes, each with the uncle hashes that take
//! it up to the file's pieces root, so every run is checked on arrival
//! whoever sent it. Peers are asked one after another; one that rejects a
//! run, sends hashes that do not prove out, or goes silent is left for the
//! next.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use dlm_core::CancellationToken;

use crate::metainfo_v2::{
    MAX_HASH_REQUEST_LENGTH, Sha256Hash, piece_layer_of, tree_layers, verify_hashes,
};
use crate::mse::Encryption;
use crate::tracker::PeerId;
use crate::wire::{HashRequest, Message};
use crate::{MetaVersion, Metainfo, TorrentError};

/// The requests that fetch the piece layer of a file of `length` bytes
/// whose root is `root` (BEP 52): runs of the piece layer from index `i`
/// (a multiple of [`MAX_HASH_REQUEST_LENGTH`]), each as long as the rest of
/// the layer rounded up to a power of two (the padding hashes past the
/// file's end included), at most [`MAX_HASH_REQUEST_LENGTH`], with proof up
/// to the root (libtorrent asks the same).
pub(crate) fn layer_requests(root: Sha256Hash, length: u64, piece_length: u64) -> Vec<HashRequest> {
    let base_layer = piece_layer_of(piece_length);
    let layers = tree_layers(length);
    let pieces = length.div_ceil(piece_length);
    if layers <= base_layer {
        return Vec::new();
    }
    (0..pieces)
        .step_by(MAX_HASH_REQUEST_LENGTH as usize)
        .map(|i| HashRequest {
            pieces_root: root,
            base_layer,
            index: i as u32,
            length: (pieces - i)
                .next_power_of_two()
                .min(u64::from(MAX_HASH_REQUEST_LENGTH)) as u32,
            proof_layers: layers - base_layer - 1,
        })
        .collect()
}

/// One file's piece layer being assembled.
struct Layer {
    length: u64,
    hashes: Vec<Option<Sha256Hash>>,
}

/// Learns every piece layer `m` lacks from `peers` (tried in order, each
/// within `connect_timeout` to connect and [`PEER_IDLE`](super::fetch::PEER_IDLE) between messages)
/// and adds them to `m`, all within `limit`.
///
/// # Errors
/// [`TorrentError::PieceLayers`] when the peers run out, `limit` passes or
/// `cancel` fires before every layer is known.
///
/// # Cancel safety
/// Dropping the future drops the connection and adds nothing to `m`: the
/// layers are added together, once all are known.
pub(crate) async fn fetch_piece_layers(
    m: &mut Metainfo,
    peers: &[SocketAddr],
    peer_id: PeerId,
    connect_timeout: Duration,
    encryption: Encryption,
    limit: Duration,
    cancel: CancellationToken,
) -> Result<(), TorrentError> {
    let info_hash = m.info_hash;
    let fail = |message: String| TorrentError::PieceLayers {
        info_hash: info_hash.to_hex(),
        message,
    };
    let mut layers: BTreeMap<Sha256Hash, Layer> = m
        .missing_piece_layers()
        .into_iter()
        .map(|(root, length)| {
            let n = length.div_ceil(m.piece_length) as usize;
            (
                root,
                Layer {
                    length,
                    hashes: vec![None; n],
                },
            )
        })
        .collect();
    if layers.is_empty() {
        return Ok(());
    }
    let piece_length = m.piece_length;
    let v2_swarm = m.meta_version == MetaVersion::V2;
    let work = async {
        let mut last_error = String::from("no peer to ask");
        for &addr in peers {
            let requests: Vec<HashRequest> = layers
                .iter()
                .flat_map(|(root, l)| layer_requests(*root, l.length, piece_length))
                .filter(|r| {
                    let l = &layers[&r.pieces_root].hashes;
                    let end = (r.index as usize + r.length as usize).min(l.len());
                    l[r.index as usize..end].iter().any(Option::is_none)
                })
                .collect();
            if requests.is_empty() {
                break;
            }
            let r = from_peer(
                addr,
                (info_hash, v2_swarm),
                peer_id,
                (connect_timeout, encryption),
                requests,
                &mut layers,
            )
            .await;
            if let Err(e) = r {
                tracing::debug!(peer = %addr, error = %e, "no piece layers from peer");
                last_error = format!("{addr}: {e}");
            }
        }
        last_error
    };
    let last_error = tokio::select! {
        () = cancel.cancelled() => return Err(fail("cancelled".into())),
        r = tokio::time::timeout(limit, work) => match r {
            Ok(e) => e,
            Err(_) => format!("not learned within {} s", limit.as_secs()),
        },
    };
    for (root, l) in layers {
        let Some(layer) = l.hashes.into_iter().collect::<Option<Vec<_>>>() else {
            return Err(fail(format!(
                "a piece layer is still missing after asking {} peers (last: {last_error})",
                peers.len()
            )));
        };
        // Each run was proved against the root already; this checks the whole.
        m.add_piece_layer(root, layer)
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// Sends every request in `requests` to one peer and places the answers
/// that prove out; returns once each was answered or rejected. The peer
/// must speak v2: the reserved bit of BEP 52, or, in a v2-only swarm
/// (`v2_swarm`), the handshake under the truncated v2 info-hash.
async fn from_peer(
    addr: SocketAddr,
    (info_hash, v2_swarm): (crate::InfoHash, bool),
    peer_id: PeerId,
    (connect_timeout, encryption): (Duration, Encryption),
    requests: Vec<HashRequest>,
    layers: &mut BTreeMap<Sha256Hash, Layer>,
) -> Result<(), String> {
    let (mut stream, remote) =
        super::fetch::handshake(addr, info_hash, peer_id, connect_timeout, encryption).await?;
    // A peer in a v2-only swarm speaks v2: the handshake named the truncated
    // v2 info-hash (BEP 52). libtorrent 2.1 sets the v2 reserved bit only
    // for hybrid torrents (observed: none on a v2-only one), so the bit is
    // needed only where the info-hash could be a v1 one.
    if !remote.supports_v2() && !v2_swarm {
        return Err(format!(
            "does not speak BitTorrent v2 (BEP 52 reserved bit; reserved bytes {})",
            hex::encode(remote.reserved)
        ));
    }
    let mut out = BytesMut::new();
    for r in &requests {
        Message::HashRequest(*r).encode(&mut out);
    }
    super::fetch::send_bytes(&mut stream, &out).await?;
    // Outstanding requests, by what identifies their answer.
    let mut pending: HashSet<HashRequest> = requests.iter().copied().collect();
    let mut rejected = 0usize;
    let mut buf = BytesMut::with_capacity(32 << 10);
    while !pending.is_empty() {
        let m = super::fetch::next_message(&mut stream, &mut buf).await?;
        match m {
            Message::Hashes { request, hashes } => {
                if !pending.remove(&request) {
                    continue;
                }
                let Some(layer) = layers.get_mut(&request.pieces_root) else {
                    continue;
                };
                let Some(base) = verify_hashes(
                    &request.pieces_root,
                    layer.length,
                    request.base_layer,
                    request.index,
                    request.length,
                    request.proof_layers,
                    &hashes,
                ) else {
                    return Err("sent hashes that do not prove out to the pieces root".into());
                };
                let start = request.index as usize;
                for (slot, h) in layer.hashes.iter_mut().skip(start).zip(base) {
                    *slot = Some(h);
                }
            }
            Message::HashReject(request) if pending.remove(&request) => rejected += 1,
            _ => {}
        }
    }
    if rejected > 0 {
        return Err(format!(
            "rejected {rejected} of {} hash requests",
            requests.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The requests for a piece layer: runs of 512 aligned on 512, the last
    /// one rounded up to a power of two, proof up to the root.
    #[test]
    fn requests_cover_the_layer_in_aligned_runs() {
        // 1300 pieces of 16 KiB: a tree of 2048 leaves (11 layers).
        let rs = layer_requests([1; 32], 1300 * 16384 - 7, 16384);
        let got: Vec<_> = rs
            .iter()
            .map(|r| (r.base_layer, r.index, r.length, r.proof_layers))
            .collect();
        assert_eq!(
            got,
            [(0, 0, 512, 10), (0, 512, 512, 10), (0, 1024, 512, 10)]
        );
        // 5 pieces of 64 KiB (base layer 2): one run of 8, no uncle needed.
        let rs = layer_requests([1; 32], 5 * 65536, 65536);
        assert_eq!(rs.len(), 1);
        assert_eq!((rs[0].base_layer, rs[0].index, rs[0].length), (2, 0, 8));
        assert_eq!(rs[0].proof_layers, 2);
        assert_eq!(crate::metainfo_v2::uncle_count(8, 2), 0);
        for r in layer_requests([1; 32], 1300 * 16384 - 7, 16384) {
            assert!(crate::metainfo_v2::request_fits(
                1300 * 16384 - 7,
                r.base_layer,
                r.index,
                r.length,
                r.proof_layers
            ));
        }
        // A file of one piece has no piece layer to ask for.
        assert!(layer_requests([1; 32], 16384, 16384).is_empty());
    }
}
