//! Bitswap framing: each message is an unsigned-varint length and that many
//! bytes of protobuf, on a libp2p stream.

use bytes::Bytes;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::message::Message;
use crate::IpfsError;

/// The largest message read, bytes (the spec bounds messages at 4 MiB;
/// some peers pack a little more).
pub(crate) const MAX_MESSAGE_BYTES: usize = 8 << 20;

/// Reads one message; `None` when the stream ends between messages.
pub(crate) async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<Message>, IpfsError> {
    use unsigned_varint::io::ReadError;
    let len = match unsigned_varint::aio::read_usize(&mut *r).await {
        Ok(len) => len,
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(IpfsError::Bitswap(format!("read: message length: {e}"))),
    };
    if len > MAX_MESSAGE_BYTES {
        return Err(IpfsError::Bitswap(format!(
            "message of {len} bytes (limit {MAX_MESSAGE_BYTES})"
        )));
    }
    // Grown as bytes arrive, so an announced length costs nothing until sent.
    let mut buf = Vec::new();
    r.take(len as u64)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| IpfsError::Bitswap(format!("read: {e}")))?;
    if buf.len() < len {
        return Err(IpfsError::Bitswap("stream ends inside a message".into()));
    }
    Message::decode_bytes(Bytes::from(buf)).map(Some)
}

/// Writes one message (protobuf length-delimited: the bitswap framing) and
/// flushes.
pub(crate) async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    m: &Message,
) -> Result<(), IpfsError> {
    use prost::Message as _;
    let io = |e: std::io::Error| IpfsError::Bitswap(format!("write: {e}"));
    w.write_all(&m.encode_length_delimited_to_vec())
        .await
        .map_err(io)?;
    w.flush().await.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitswap::message::{Message, PayloadBlock};

    #[tokio::test]
    async fn frames_round_trip() {
        let m = Message {
            payload: vec![PayloadBlock {
                prefix: Bytes::from_static(&[1, 0x55, 0x12, 32]),
                data: Bytes::from(vec![7u8; 300]),
            }],
            ..Message::default()
        };
        let mut buf = Vec::new();
        write_message(&mut buf, &m).await.unwrap();
        write_message(&mut buf, &m).await.unwrap();
        let mut r = &buf[..];
        assert_eq!(read_message(&mut r).await.unwrap(), Some(m.clone()));
        assert_eq!(read_message(&mut r).await.unwrap(), Some(m));
        assert_eq!(read_message(&mut r).await.unwrap(), None);
        let mut huge: &[u8] = &[0xff, 0xff, 0xff, 0x7f];
        assert!(read_message(&mut huge).await.is_err());
    }
}
