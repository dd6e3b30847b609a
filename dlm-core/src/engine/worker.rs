//! One connection of a download: ask for a chunk, fetch it, write it, repeat.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::gather::Gather;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::events::Event;
use super::shared::{Shared, Slot};
use crate::scheduler::{Availability, ChunkEvent, ConnId, ConnInfo};
use crate::{Backoff, BoxSink, BoxSource, ByteRange, Context, Error, ErrorKind, ReadRange};

/// Most bytes all connections together gather before writing (4 MiB: with
/// 16 connections' read buffers and the verifier's hand-off, a 4 GiB
/// download at 16 connections peaked at 36 MiB RSS with 8 MiB here).
const GATHERED_BYTES: usize = 4 << 20;
/// Smallest write size [`GATHERED_BYTES`] shares out (bytes).
const MIN_WRITE_BYTES: usize = 256 << 10;

/// How often a connection with nothing it can serve asks again, when the
/// source's availability is not the whole space.
const AVAILABILITY_RECHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// How a worker ended.
#[derive(Debug)]
pub(crate) enum WorkerExit {
    /// Nothing left to fetch.
    Finished,
    /// Stopped by pause or cancel.
    Stopped,
    /// The source failed permanently (or changed); the engine decides whether
    /// to drop it, restart, or fail.
    SourceFailed(Error),
    /// Temporary failures without progress ran out of attempts.
    Exhausted(Error),
    /// Local storage failed: the download cannot go on.
    SinkFailed(Error),
    /// The remote refused this connection for having too many
    /// ([`Error::is_connection_limit`]) while others to it are working: the
    /// engine goes on with fewer connections.
    Surplus(Error),
}

/// A failure while fetching one chunk.
enum FetchError {
    Source(Error),
    Sink(Error),
    Stopped,
}

/// Everything one connection needs.
#[derive(Debug, Clone)]
pub(crate) struct Worker {
    pub(crate) conn: ConnId,
    pub(crate) source_index: usize,
    pub(crate) source: BoxSource,
    pub(crate) sink: BoxSink,
    pub(crate) shared: Arc<Shared>,
    pub(crate) cancel: CancellationToken,
    /// Ranges are honoured: ask the scheduler; else stream the whole object.
    pub(crate) ranged: bool,
    pub(crate) max_retries: u32,
    pub(crate) backoff: Backoff,
    pub(crate) write_buffer_bytes: usize,
    /// Connections shared with other downloads: one permit per chunk fetch.
    pub(crate) budget: Option<Arc<tokio::sync::Semaphore>>,
}

impl Worker {
    /// Fetches chunks until there are none left, the worker is stopped, or
    /// more workers run than the engine wants (it then stops between chunks).
    pub(crate) async fn run(self) -> WorkerExit {
        self.shared.running.fetch_add(1, Ordering::AcqRel);
        let mut failures = 0u32;
        loop {
            if self.leave_if_surplus() {
                return WorkerExit::Finished;
            }
            if let Some(exit) = self.serve_one(&mut failures).await {
                self.shared.running.fetch_sub(1, Ordering::AcqRel);
                return exit;
            }
        }
    }

    /// Counts this worker out when more run than are wanted.
    fn leave_if_surplus(&self) -> bool {
        let wanted = self.shared.wanted.load(Ordering::Acquire);
        let mut running = self.shared.running.load(Ordering::Acquire);
        while running > wanted {
            match self.shared.running.compare_exchange(
                running,
                running - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => running = now,
            }
        }
        false
    }

    /// Fetches one chunk; `Some` when the worker ends.
    async fn serve_one(&self, failures: &mut u32) -> Option<WorkerExit> {
        let Some((range, slot)) = self.next_chunk().await else {
            return Some(if self.cancel.is_cancelled() {
                WorkerExit::Stopped
            } else {
                WorkerExit::Finished
            });
        };
        // A shared budget is taken only with work in hand: a worker idling for a
        // chunk must not hold a connection another download could use.
        let permit = match &self.budget {
            Some(budget) => {
                let permit = tokio::select! {
                    () = self.cancel.cancelled() => None,
                    p = budget.clone().acquire_owned() => p.ok(),
                };
                if permit.is_none() {
                    // Stopped (or the budget closed) before fetching a byte.
                    self.give_back(range, &slot);
                    return Some(WorkerExit::Stopped);
                }
                permit
            }
            None => None,
        };
        self.shared.emit(Event::ChunkStarted {
            conn: self.conn,
            range,
        });
        self.source_stat(|s| s.connections += 1);
        let result = self.fetch(range, &slot).await;
        drop(permit);
        self.source_stat(|s| s.connections = s.connections.saturating_sub(1));
        let end = slot.end.load(Ordering::Relaxed);
        let reached = slot.pos.load(Ordering::Relaxed).min(end);
        let progressed = reached > range.start;
        match result {
            Ok(()) => {
                *failures = 0;
                if !self.ranged {
                    // A stream of unknown length just ended: that is the length.
                    let mut plan = self.shared.plan();
                    if plan.map.len == u64::MAX {
                        plan.map.len = end;
                    }
                }
                let done = ByteRange::new(range.start, end);
                self.shared.plan().release(
                    self.conn,
                    &ChunkEvent::Done {
                        conn: self.conn,
                        range: done,
                    },
                    Instant::now(),
                );
                self.shared.emit(Event::ChunkDone {
                    conn: self.conn,
                    range: done,
                });
                self.shared.save_requested.notify_one();
                self.shared.changed.notify_waiters();
            }
            Err(err) => {
                let left = ByteRange::new(reached, end);
                self.shared.plan().release(
                    self.conn,
                    &ChunkEvent::Failed {
                        conn: self.conn,
                        range: left,
                    },
                    Instant::now(),
                );
                self.shared.changed.notify_waiters();
                let err = match err {
                    FetchError::Stopped => return Some(WorkerExit::Stopped),
                    FetchError::Sink(e) => return Some(WorkerExit::SinkFailed(e)),
                    FetchError::Source(e) => e,
                };
                self.source_stat(|s| s.errors += 1);
                if progressed {
                    *failures = 0;
                }
                *failures += 1;
                let will_retry = err.is_retryable() && *failures <= self.max_retries;
                self.shared.emit(Event::ChunkFailed {
                    conn: self.conn,
                    range: left,
                    kind: err.kind(),
                    will_retry,
                    message: err.to_string(),
                });
                if err.is_connection_limit() && self.source_connections() > 0 {
                    return Some(WorkerExit::Surplus(err));
                }
                if !err.is_retryable() {
                    return Some(WorkerExit::SourceFailed(err));
                }
                if !will_retry {
                    return Some(WorkerExit::Exhausted(err.exhausted(*failures)));
                }
                tracing::debug!(conn = %self.conn, attempt = *failures, error = %err, "retrying");
                let delay = self.backoff.delay(*failures, err.retry_after());
                tokio::select! {
                    () = self.cancel.cancelled() => return Some(WorkerExit::Stopped),
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
        None
    }

    /// Returns an untouched chunk to the pool (stopped before fetching it).
    fn give_back(&self, range: ByteRange, slot: &Slot) {
        let end = slot.end.load(Ordering::Relaxed);
        self.shared.plan().release(
            self.conn,
            &ChunkEvent::Failed {
                conn: self.conn,
                range: ByteRange::new(range.start, end),
            },
            Instant::now(),
        );
        self.shared.changed.notify_waiters();
    }

    /// Connections of this worker's source fetching right now, not counting this one.
    fn source_connections(&self) -> u32 {
        self.shared
            .plan()
            .sources
            .get(self.source_index)
            .map_or(0, |s| s.connections)
    }

    fn source_stat(&self, f: impl FnOnce(&mut super::events::SourceStats)) {
        if let Some(s) = self.shared.plan().sources.get_mut(self.source_index) {
            f(s);
        }
    }

    /// Waits until the scheduler has work for this connection; `None` when the
    /// download is complete or the worker is stopped.
    async fn next_chunk(&self) -> Option<(ByteRange, Arc<Slot>)> {
        loop {
            // Asked on every pass: a peer's pieces grow as it sends `have`s.
            let info = ConnInfo {
                id: self.conn,
                availability: if self.ranged {
                    self.source.availability_dyn(self.conn)
                } else {
                    Availability::Whole
                },
            };
            let whole = info.availability == Availability::Whole;
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut plan = self.shared.plan();
                if self.cancel.is_cancelled() || plan.map.is_complete() {
                    return None;
                }
                if !self.ranged {
                    // One stream from byte 0 to the end; a retry starts over.
                    let len = plan.map.len;
                    let done = plan.map.done.clone();
                    if !done.covers(len) {
                        plan.map.done = crate::RangeSet::new();
                        plan.map.in_flight.clear();
                        let r = ByteRange::new(0, len);
                        return Some((r, plan.take(self.conn, r)));
                    }
                } else if let Some((a, slot)) = plan.assign(&info, Instant::now()) {
                    return Some((a.range(), slot));
                }
            }
            // What a peer can serve changes without the map changing: look again soon.
            let recheck = async {
                if whole {
                    std::future::pending::<()>().await
                } else {
                    tokio::time::sleep(AVAILABILITY_RECHECK).await
                }
            };
            tokio::select! {
                () = self.cancel.cancelled() => return None,
                () = changed => {}
                () = recheck => {}
            }
        }
    }

    async fn fetch(&self, range: ByteRange, slot: &Slot) -> Result<(), FetchError> {
        let cx = Context::with_cancel(self.cancel.clone()).for_conn(self.conn);
        let read = if self.ranged {
            ReadRange::Bounded(range)
        } else {
            ReadRange::FULL
        };
        let mut stream = tokio::select! {
            () = self.cancel.cancelled() => return Err(FetchError::Stopped),
            s = self.source.open_dyn(&cx, read) => s.map_err(FetchError::Source)?,
        };
        let mut pos = range.start;
        let mut buf = Gather::default();
        loop {
            let frame = tokio::select! {
                biased;
                () = self.cancel.cancelled() => {
                    self.flush(&mut pos, &mut buf).await?;
                    return Err(FetchError::Stopped);
                }
                f = stream.next() => f,
            };
            let end = slot.end.load(Ordering::Relaxed);
            match frame {
                None => {
                    self.flush(&mut pos, &mut buf).await?;
                    if pos < end && end != u64::MAX {
                        return Err(FetchError::Source(
                            Error::new(
                                ErrorKind::Network,
                                "connection closed before the chunk ended",
                            )
                            .with_context("at", pos)
                            .with_context("expected_end", end)
                            .retryable(),
                        ));
                    }
                    if end == u64::MAX {
                        // Unknown length: the stream's end is the object's end.
                        slot.end.store(pos, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                Some(Err(e)) => {
                    self.flush(&mut pos, &mut buf).await?;
                    return Err(FetchError::Source(e));
                }
                Some(Ok(bytes)) => {
                    let n = bytes.len() as u64;
                    self.shared.received.fetch_add(n, Ordering::Relaxed);
                    let have = pos + buf.len() as u64;
                    let take = end.saturating_sub(have).min(n) as usize;
                    let reached_end = have + take as u64 >= end;
                    buf.push(bytes.slice(..take));
                    slot.pos.store(pos + buf.len() as u64, Ordering::Relaxed);
                    if buf.len() >= self.write_size() || reached_end {
                        self.flush(&mut pos, &mut buf).await?;
                    }
                    if reached_end {
                        if end == range.end {
                            // The response should be over: read its end so the
                            // connection can be reused for the next chunk.
                            let _ = tokio::time::timeout(
                                std::time::Duration::from_millis(50),
                                stream.next(),
                            )
                            .await;
                        }
                        return Ok(());
                    }
                    self.shared.throttle(n).await;
                }
            }
        }
    }

    /// Bytes gathered before one write: the option's write size, shared so
    /// that all connections together hold at most [`GATHERED_BYTES`].
    fn write_size(&self) -> usize {
        let connections = self.shared.wanted.load(Ordering::Relaxed).max(1) as usize;
        (GATHERED_BYTES / connections).clamp(
            MIN_WRITE_BYTES.min(self.write_buffer_bytes),
            self.write_buffer_bytes,
        )
    }

    /// Writes the gathered bytes at `pos` and records them as done.
    async fn flush(&self, pos: &mut u64, buf: &mut Gather) -> Result<(), FetchError> {
        if buf.is_empty() {
            return Ok(());
        }
        let frames = buf.take();
        let r = ByteRange::new(
            *pos,
            *pos + frames.iter().map(|f| f.len() as u64).sum::<u64>(),
        );
        // References for the verifier (no copy), in case this write extends the prefix.
        let kept = if self.shared.hashing.load(Ordering::Relaxed) {
            frames.clone()
        } else {
            Vec::new()
        };
        self.sink
            .write_vectored_at_dyn(*pos, frames)
            .await
            .map_err(FetchError::Sink)?;
        self.source_stat(|s| s.received_bytes += r.len());
        *pos = r.end;
        self.shared.mark_done(r, &kept);
        self.source.stored_dyn(r);
        Ok(())
    }
}
