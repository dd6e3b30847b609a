//! Entry points for `fuzz/` (cargo-fuzz targets and their corpus replay):
//! the private bitswap reader behind a byte stream. Not a stable API; hidden
//! from the docs.

use bytes::Bytes;
use cid::Cid;
use futures::FutureExt;

use crate::IpfsError;
use crate::bitswap::message::{PresenceType, cid_of};
use crate::bitswap::wire::read_message;
use crate::block::{DAG_PB, SHA2_256, read_cid};

/// What dlm takes from one bitswap message (Bitswap 1.2.0 `message.proto`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitswapMessage {
    /// The blocks, each named by the CID of its bytes: `payload` blocks under
    /// their CID prefix, bitswap 1.0.0 `blocks` as CIDv0. Blocks whose prefix
    /// is malformed or names an unsupported hash are left out.
    pub blocks: Vec<(Cid, Bytes)>,
    /// The block presences with a valid CID, `true` for `Have`.
    pub presences: Vec<(Cid, bool)>,
    /// The wantlist entries' CIDs as sent (dlm serves no blocks).
    pub wants: Vec<Bytes>,
    /// The message encoded again, length-delimited as on the wire.
    pub encoded: Vec<u8>,
}

/// Reads length-delimited bitswap messages from `stream` until it ends
/// cleanly or fails, as a peer's stream is read: the messages read, and the
/// error that ended the stream, if one did.
pub fn bitswap_messages(stream: &[u8]) -> (Vec<BitswapMessage>, Option<IpfsError>) {
    let mut r = futures::io::Cursor::new(stream);
    let mut out = Vec::new();
    loop {
        // A cursor is always ready: the future completes on its first poll.
        let read = read_message(&mut r)
            .now_or_never()
            .unwrap_or_else(|| Err(IpfsError::Bitswap("read did not complete".into())));
        let m = match read {
            Ok(Some(m)) => m,
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        };
        let encoded = prost::Message::encode_length_delimited_to_vec(&m);
        let mut blocks = Vec::new();
        for b in m.payload {
            if let Ok(cid) = cid_of(&b.prefix, &b.data) {
                blocks.push((cid, b.data));
            }
        }
        for data in m.blocks {
            if let Ok(cid) = cid_of(&[0, DAG_PB as u8, SHA2_256 as u8, 32], &data) {
                blocks.push((cid, data));
            }
        }
        let presences = m
            .block_presences
            .iter()
            .filter_map(|p| {
                let (cid, _) = read_cid(&p.cid).ok()?;
                Some((cid, p.r#type != PresenceType::DontHave as i32))
            })
            .collect();
        let wants = m
            .wantlist
            .map(|w| w.entries.into_iter().map(|e| e.block).collect())
            .unwrap_or_default();
        out.push(BitswapMessage {
            blocks,
            presences,
            wants,
            encoded,
        });
    }
}
