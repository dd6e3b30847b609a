//! `Retrieval`: the bytes of one `RETR`, as the engine's body stream.
//!
//! Reads go into a buffer whose filled part is split off as each frame, so a
//! 1 GiB transfer makes about two thousand 512 KiB allocations, not one per
//! read, and no bytes are zeroed first. Reads that complete without waiting
//! are gathered into frames of at least 64 KiB. When the engine stops early
//! (its range ended before the file), the data connection is closed, the
//! server's `426` is read in the background, and the session goes back to
//! the pool; a session that does not answer is closed.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use tokio::io::AsyncReadExt;

use crate::FtpError;
use crate::error::from_suppaftp;
use crate::pool::Pooled;
use crate::session::Transfer;

/// Bytes allocated at once for reads; frames are split off it.
const BUFFER_BYTES: usize = 512 << 10;
/// Smallest free space a read is given before a new buffer is allocated,
/// and the frame size gathered from reads that complete at once (a TLS
/// stream yields one 16 KiB record per read; each frame costs the engine
/// a little bookkeeping).
const MIN_READ_BYTES: usize = 64 << 10;
/// How long the server may take to confirm a transfer ended early before
/// the session is closed instead.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Ends a transfer the engine no longer needs and brings the control
/// connection back in step: the data connection is closed, so the server
/// ends the transfer with `426` (or had already sent `226`), and a `NOOP`
/// reads that reply before its own `200`.
///
/// No `ABOR`: servers such as vsftpd read the control connection only after
/// the transfer fails, then answer `ABOR` with `225 No transfer to ABOR`
/// after the `426`, a sequence clients cannot tell from a lost reply; closing
/// the data connection is what curl does too.
async fn settle(session: &mut Pooled, transfer: Transfer) -> Result<(), suppaftp::FtpError> {
    drop(transfer);
    session.ftp.noop().await
}

/// One transfer in progress, owning its session.
pub(crate) struct Retrieval {
    session: Option<Pooled>,
    transfer: Option<Transfer>,
    buf: BytesMut,
    host: String,
    idle: Duration,
    /// Limit for the `226` after the last byte.
    reply: Duration,
}

type Step = (Option<dlm_core::Result<Bytes>>, Retrieval);

impl Retrieval {
    pub(crate) fn new(
        session: Pooled,
        transfer: Transfer,
        host: String,
        idle: Duration,
        reply: Duration,
    ) -> Self {
        Self {
            session: Some(session),
            transfer: Some(transfer),
            buf: BytesMut::new(),
            host,
            idle,
            reply,
        }
    }

    /// The next frame; `None` after the server's `226` (the session then
    /// went back to the pool).
    async fn next(mut self) -> Step {
        let Some(transfer) = self.transfer.as_mut() else {
            return (None, self);
        };
        if self.buf.capacity() - self.buf.len() < MIN_READ_BYTES {
            self.buf = BytesMut::with_capacity(BUFFER_BYTES);
        }
        match tokio::time::timeout(self.idle, transfer.read_buf(&mut self.buf)).await {
            Err(_) => {
                let e = FtpError::IdleTimeout {
                    host: self.host.clone(),
                    secs: self.idle.as_secs(),
                };
                self.close();
                (Some(Err(e.into())), self)
            }
            Ok(Err(e)) => {
                let e = FtpError::Connection {
                    host: self.host.clone(),
                    message: e.to_string(),
                    tls_refused: false,
                };
                self.close();
                (Some(Err(e.into())), self)
            }
            Ok(Ok(0)) => {
                // The whole file arrived: read the 226, then the session can serve another range.
                let transfer = self.transfer.take().expect("checked above");
                let finished = tokio::time::timeout(self.reply, transfer.finish()).await;
                // Dropped unless released: a session without its 226 is out of step.
                let session = self.session.take();
                match finished {
                    Ok(Ok(())) => {
                        if let Some(s) = session {
                            s.release();
                        }
                        (None, self)
                    }
                    Ok(Err(e)) => (Some(Err(from_suppaftp(&self.host, e).into())), self),
                    Err(_) => {
                        let e = FtpError::ReplyTimeout {
                            host: self.host.clone(),
                            command: "the end of RETR".into(),
                            secs: self.reply.as_secs_f64(),
                        };
                        (Some(Err(e.into())), self)
                    }
                }
            }
            Ok(Ok(mut n)) => {
                // Take what is already readable too; an end or error shows on the next call.
                while n < MIN_READ_BYTES && self.buf.capacity() > self.buf.len() {
                    match transfer.read_buf(&mut self.buf).now_or_never() {
                        Some(Ok(m)) if m > 0 => n += m,
                        _ => break,
                    }
                }
                let frame = self.buf.split_to(n).freeze();
                (Some(Ok(frame)), self)
            }
        }
    }

    /// Drops the transfer and its session without trying to reuse them.
    fn close(&mut self) {
        self.transfer = None;
        self.session = None;
    }
}

impl Drop for Retrieval {
    fn drop(&mut self) {
        let (Some(mut session), Some(transfer)) = (self.session.take(), self.transfer.take())
        else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            match tokio::time::timeout(SETTLE_TIMEOUT, settle(&mut session, transfer)).await {
                Ok(Ok(())) => session.release(),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "ending a transfer early failed: session closed")
                }
                Err(_) => tracing::debug!("no reply after ending a transfer early: session closed"),
            }
        });
    }
}

impl Retrieval {
    /// The frames of this transfer, ending after the server's `226`.
    pub(crate) fn into_stream(self) -> dlm_core::BodyStream {
        let frames = futures::stream::unfold(Some(self), |state| async move {
            let (item, state) = state?.next().await;
            item.map(|i| (i, Some(state)))
        });
        Box::pin(frames)
    }
}
