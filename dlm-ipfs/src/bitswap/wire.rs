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
    let io = |e: std::io::Error| IpfsError::Bitswap(format!("read: {e}"));
    let mut len = 0u64;
    for i in 0..10 {
        let mut b = [0u8; 1];
        match r.read(&mut b).await.map_err(io)? {
            0 if i == 0 => return Ok(None),
            0 => return Err(IpfsError::Bitswap("stream ends inside a length".into())),
            _ => {}
        }
        if i == 9 {
            return Err(IpfsError::Bitswap("length varint too long".into()));
        }
        len |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    if len as usize > MAX_MESSAGE_BYTES {
        return Err(IpfsError::Bitswap(format!(
            "message of {len} bytes (limit {MAX_MESSAGE_BYTES})"
        )));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf).await.map_err(io)?;
    Message::decode_bytes(Bytes::from(buf)).map(Some)
}

/// Writes one message and flushes.
pub(crate) async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    m: &Message,
) -> Result<(), IpfsError> {
    let body = m.encode_bytes();
    let mut out = Vec::with_capacity(body.len() + 10);
    let mut v = body.len() as u64;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend(body);
    let io = |e: std::io::Error| IpfsError::Bitswap(format!("write: {e}"));
    w.write_all(&out).await.map_err(io)?;
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
