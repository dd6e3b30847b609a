//! `MseStream`: the payload stream after an MSE handshake, RC4 or
//! plaintext, with the bytes the handshake already read served first.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::cipher::Rc4Stream;

/// Bytes encrypted per write call at most (the keystream kept ahead is
/// bounded by it).
const WRITE_CHUNK: usize = 64 << 10;

/// A peer connection after the MSE handshake (or after sniffing a
/// plaintext BitTorrent handshake): reads and writes payload bytes,
/// RC4-encrypted on the wire when the handshake selected RC4 (0x02).
///
/// Bytes read during the handshake beyond its end (A's initial payload,
/// or the peer's first messages) come out of the first reads.
pub struct MseStream<S> {
    inner: S,
    /// Payload bytes already read (and decrypted), served first.
    pending: Vec<u8>,
    pending_at: usize,
    /// RC4 for the peer's bytes and ours, or `None` for plaintext.
    rc4: Option<Rc4Io>,
}

/// The two RC4 streams of an encrypted payload.
struct Rc4Io {
    read: Rc4Stream,
    write: Rc4Stream,
    /// Keystream generated for writes and not yet used: its bytes are
    /// used up only as the inner stream accepts ciphertext, so a partial
    /// or pending write never skips keystream.
    keystream: Vec<u8>,
    keystream_at: usize,
    scratch: Vec<u8>,
}

impl<S> std::fmt::Debug for MseStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MseStream")
            .field("rc4", &self.rc4.is_some())
            .field("pending", &(self.pending.len() - self.pending_at))
            .finish_non_exhaustive()
    }
}

impl<S> MseStream<S> {
    /// A plaintext stream whose first reads return `pending`.
    pub(crate) fn plaintext(inner: S, pending: Vec<u8>) -> Self {
        Self {
            inner,
            pending,
            pending_at: 0,
            rc4: None,
        }
    }

    /// An RC4 stream whose first reads return `pending` (already
    /// decrypted); `read` decrypts the peer's bytes, `write` encrypts ours.
    pub(crate) fn rc4(inner: S, pending: Vec<u8>, read: Rc4Stream, write: Rc4Stream) -> Self {
        Self {
            inner,
            pending,
            pending_at: 0,
            rc4: Some(Rc4Io {
                read,
                write,
                keystream: Vec::new(),
                keystream_at: 0,
                scratch: Vec::new(),
            }),
        }
    }

    /// Whether the payload is RC4-encrypted (`crypto_select` 0x02) rather
    /// than plaintext.
    pub fn is_encrypted(&self) -> bool {
        self.rc4.is_some()
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for MseStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending_at < this.pending.len() {
            let n = buf.remaining().min(this.pending.len() - this.pending_at);
            buf.put_slice(&this.pending[this.pending_at..this.pending_at + n]);
            this.pending_at += n;
            if this.pending_at == this.pending.len() {
                this.pending = Vec::new();
                this.pending_at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Some(rc4) = &mut this.rc4 {
            rc4.read.apply(&mut buf.filled_mut()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MseStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(rc4) = &mut this.rc4 else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        let n = buf.len().min(WRITE_CHUNK);
        let ready_len = rc4.keystream.len() - rc4.keystream_at;
        if ready_len < n {
            rc4.keystream.drain(..rc4.keystream_at);
            rc4.keystream_at = 0;
            let old = rc4.keystream.len();
            rc4.keystream.resize(n, 0);
            rc4.write.keystream(&mut rc4.keystream[old..]);
        }
        let ks = &rc4.keystream[rc4.keystream_at..rc4.keystream_at + n];
        rc4.scratch.clear();
        rc4.scratch
            .extend(buf[..n].iter().zip(ks).map(|(b, k)| b ^ k));
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, &rc4.scratch))?;
        // Only the keystream of the bytes the inner stream took is used up.
        rc4.keystream_at += written.min(n);
        Poll::Ready(Ok(written.min(n)))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::mse::dh::KEY_LEN;

    /// Writes through a duplex small enough to force partial and pending
    /// writes: the peer still decrypts every byte in order.
    #[tokio::test]
    async fn partial_writes_keep_the_keystream_in_step() {
        let s = [9u8; KEY_LEN];
        let (a, b) = tokio::io::duplex(1000);
        // A encrypts with keyA and decrypts with keyB; B the other way.
        let key_a = |s| Rc4Stream::key_a(s, b"k");
        let key_b = |s| Rc4Stream::key_b(s, b"k");
        let mut a = MseStream::rc4(a, Vec::new(), key_b(&s), key_a(&s));
        let mut b = MseStream::rc4(b, b"early".to_vec(), key_a(&s), key_b(&s));
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            a.write_all(&sent).await.unwrap();
            a.flush().await.unwrap();
            a
        });
        let mut got = vec![0u8; 5 + data.len()];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..5], b"early");
        assert_eq!(&got[5..], &data[..]);
        writer.await.unwrap();
    }
}
