//! A conformance suite for [`Source`](crate::Source) implementations (feature
//! `testkit`): every protocol crate runs it against its real test server.
//!
//! [`Conformance::run`] checks, gated by what the probe says the source can
//! do:
//!
//! - **identity**: stable across calls, no URL password in it;
//! - **probe**: the length is the expected one; a second probe agrees;
//! - **whole read**: `open(From(0))` yields exactly the expected bytes;
//! - **ranged reads** (with [`Capabilities::ranges`](crate::Capabilities)):
//!   exact bytes at odd offsets: the first byte, a run across a 4 KiB
//!   boundary, the middle, the last byte, a suffix;
//! - **past the end**: a range starting at the length yields no byte (an
//!   error or an empty stream) and does not panic;
//! - **cancellation at any await point**: `open` dropped before it
//!   resolves, and streams dropped after 0, 1 and 2 frames, leave the source
//!   working: the next read is exact;
//! - **error kinds** (with [`Conformance::with_missing`]): probing a source
//!   for something that does not exist fails as
//!   [`ErrorKind::NotFound`];
//! - **changed remote** (with [`Conformance::with_change`]): after the
//!   object is replaced, a read made on the first probe's terms fails as
//!   [`ErrorKind::RemoteChanged`], never yields the new object's bytes;
//! - **early close** (with [`Conformance::with_truncating`]): a source whose
//!   server closes the connection early never yields more than it should
//!   and ends in an error, without panicking.
//!
//! # Examples
//! ```
//! # #[allow(dead_code)]
//! # async fn demo(source: dlm_core::BoxSource, bytes: Vec<u8>) {
//! let report = dlm_core::testkit::Conformance::new(source, bytes)
//!     .run()
//!     .await
//!     .unwrap_or_else(|e| panic!("{e}"));
//! assert!(report.checks.contains(&"whole read"));
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;

use crate::{BoxSource, ByteRange, ConnId, Context, ErrorKind, ReadRange};

/// Longest wait for one read before the check fails.
const READ_LIMIT: Duration = Duration::from_secs(60);

/// The conformance suite for one source. See the [module docs](self).
pub struct Conformance<'a> {
    source: BoxSource,
    expected: Bytes,
    missing: Option<BoxSource>,
    change: Option<(BoxFuture<'a, ()>, BoxSource)>,
    truncating: Option<BoxSource>,
}

impl fmt::Debug for Conformance<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conformance")
            .field("source", &self.source.identity_dyn())
            .field("expected_len", &self.expected.len())
            .finish_non_exhaustive()
    }
}

/// What passed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The checks that ran and passed, in order.
    pub checks: Vec<&'static str>,
    /// The checks skipped, with why (the source cannot do ranges, no
    /// missing source was given…).
    pub skipped: Vec<(&'static str, &'static str)>,
}

/// A failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The check.
    pub check: &'static str,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conformance check {:?} failed: {}",
            self.check, self.message
        )
    }
}

impl std::error::Error for Failure {}

fn fail(check: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        check,
        message: message.into(),
    }
}

impl<'a> Conformance<'a> {
    /// The suite for `source`, whose object holds exactly `expected`.
    pub fn new(source: BoxSource, expected: impl Into<Bytes>) -> Self {
        Self {
            source,
            expected: expected.into(),
            missing: None,
            change: None,
            truncating: None,
        }
    }

    /// Also checks that probing `missing` (a source of the same protocol
    /// for an object that does not exist) fails as not-found.
    pub fn with_missing(mut self, missing: BoxSource) -> Self {
        self.missing = Some(missing);
        self
    }

    /// Also checks changed-remote detection: `change` replaces the object
    /// behind `changing` (a source of its own, probed before the change)
    /// with other bytes.
    pub fn with_change(mut self, changing: BoxSource, change: BoxFuture<'a, ()>) -> Self {
        self.change = Some((change, changing));
        self
    }

    /// Also checks a source whose server closes connections before the end.
    pub fn with_truncating(mut self, source: BoxSource) -> Self {
        self.truncating = Some(source);
        self
    }

    /// Runs every check that applies; stops at the first failure.
    ///
    /// # Errors
    /// The first [`Failure`].
    pub async fn run(self) -> Result<Report, Failure> {
        let mut report = Report::default();
        let s = &self.source;
        let len = self.expected.len() as u64;

        let id = s.identity_dyn();
        if id != s.identity_dyn() {
            return Err(fail("identity", "differs between two calls"));
        }
        if let Ok(u) = url::Url::parse(&id)
            && u.password().is_some()
        {
            return Err(fail("identity", format!("{id} shows a password")));
        }
        report.checks.push("identity");

        let cx = Context::new().for_conn(ConnId(0));
        let probe = s
            .probe_dyn(&cx)
            .await
            .map_err(|e| fail("probe", e.to_string()))?;
        if probe.len.is_some_and(|l| l != len) {
            return Err(fail(
                "probe",
                format!("length {:?}, expected {len}", probe.len),
            ));
        }
        let again = s
            .probe_dyn(&cx)
            .await
            .map_err(|e| fail("probe", format!("second probe: {e}")))?;
        if again.len != probe.len || again.validator() != probe.validator() {
            return Err(fail("probe", "a second probe disagrees with the first"));
        }
        report.checks.push("probe");

        self.expect(ReadRange::From(0), "whole read").await?;
        report.checks.push("whole read");

        if probe.caps.ranges && len > 0 {
            let mid = len / 3 + 1;
            let odd = [
                ByteRange::new(0, 1),
                ByteRange::new(1, 4097.min(len)),
                ByteRange::new(
                    mid.min(len - 1),
                    (len / 2 + 7).clamp(mid.min(len - 1) + 1, len),
                ),
                ByteRange::new(len - 1, len),
            ];
            for r in odd {
                self.expect(ReadRange::Bounded(r), "ranged reads").await?;
            }
            self.expect(ReadRange::From(len.saturating_sub(7)), "ranged reads")
                .await?;
            report.checks.push("ranged reads");

            self.past_end(len).await?;
            report.checks.push("past the end");
        } else {
            report.skipped.push(("ranged reads", "no range support"));
        }

        self.cancellation(probe.caps.ranges).await?;
        report.checks.push("cancellation");

        match &self.missing {
            Some(m) => {
                match m.probe_dyn(&Context::new()).await {
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(fail(
                            "error kinds",
                            format!("missing object: {} instead of not-found ({e})", e.kind()),
                        ));
                    }
                    Ok(_) => return Err(fail("error kinds", "a missing object probed fine")),
                }
                report.checks.push("error kinds");
            }
            None => report
                .skipped
                .push(("error kinds", "no missing source given")),
        }

        match self.change {
            Some((change, changing)) => {
                changing
                    .probe_dyn(&Context::new())
                    .await
                    .map_err(|e| fail("changed remote", e.to_string()))?;
                change.await;
                let r = ReadRange::Bounded(ByteRange::new(0, len.min(1024)));
                match read_all(&changing, r).await {
                    Err(ErrorKind::RemoteChanged) => {}
                    Err(k) => {
                        return Err(fail(
                            "changed remote",
                            format!("a replaced object failed as {k}, not remote-changed"),
                        ));
                    }
                    Ok(_) => {
                        return Err(fail(
                            "changed remote",
                            "a replaced object was read as if unchanged",
                        ));
                    }
                }
                report.checks.push("changed remote");
            }
            None => report.skipped.push(("changed remote", "no change given")),
        }

        match &self.truncating {
            Some(t) => {
                let got = tokio::time::timeout(READ_LIMIT, async {
                    let mut n = 0u64;
                    let Ok(mut stream) = t.open_dyn(&Context::new(), ReadRange::From(0)).await
                    else {
                        return (n, true);
                    };
                    while let Some(frame) = stream.next().await {
                        match frame {
                            Ok(b) => n += b.len() as u64,
                            Err(_) => return (n, true),
                        }
                    }
                    (n, false)
                })
                .await
                .map_err(|_| fail("early close", "no end within 60 s"))?;
                if got.0 > len {
                    return Err(fail("early close", format!("{} bytes of {len}", got.0)));
                }
                if !got.1 {
                    return Err(fail(
                        "early close",
                        format!(
                            "{} of {len} bytes, then a clean end instead of an error",
                            got.0
                        ),
                    ));
                }
                report.checks.push("early close");
            }
            None => report
                .skipped
                .push(("early close", "no truncating source given")),
        }
        Ok(report)
    }

    /// Reads `range` and compares it with the expected bytes.
    async fn expect(&self, range: ReadRange, check: &'static str) -> Result<(), Failure> {
        let len = self.expected.len() as u64;
        let end = range.end().unwrap_or(len).min(len);
        let want = self.expected.slice(range.start() as usize..end as usize);
        let got = read_all(&self.source, range)
            .await
            .map_err(|k| fail(check, format!("{range:?}: failed as {k}")))?;
        if got != want {
            return Err(fail(
                check,
                format!(
                    "{range:?}: {} bytes, expected {}{}",
                    got.len(),
                    want.len(),
                    if got.len() == want.len() {
                        " (different bytes)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(())
    }

    async fn past_end(&self, len: u64) -> Result<(), Failure> {
        let r = ReadRange::Bounded(ByteRange::new(len, len + 10));
        let got = tokio::time::timeout(READ_LIMIT, async {
            match self.source.open_dyn(&Context::new(), r).await {
                Err(_) => 0,
                Ok(mut s) => {
                    let mut n = 0usize;
                    while let Some(Ok(b)) = s.next().await {
                        n += b.len();
                    }
                    n
                }
            }
        })
        .await
        .map_err(|_| fail("past the end", "no answer within 60 s"))?;
        if got > 0 {
            return Err(fail("past the end", format!("{got} bytes past the end")));
        }
        Ok(())
    }

    async fn cancellation(&self, ranges: bool) -> Result<(), Failure> {
        let len = self.expected.len() as u64;
        let range = if ranges && len > 2 {
            ReadRange::Bounded(ByteRange::new(1, len - 1))
        } else {
            ReadRange::From(0)
        };
        // `open` dropped before it resolves.
        let cx = Context::new().for_conn(ConnId(1));
        let _ =
            tokio::time::timeout(Duration::from_millis(1), self.source.open_dyn(&cx, range)).await;
        // A context cancelled up front: any answer, promptly.
        let cx = Context::new().for_conn(ConnId(1));
        cx.cancel.cancel();
        if let Ok(Ok(mut s)) =
            tokio::time::timeout(READ_LIMIT, self.source.open_dyn(&cx, range)).await
        {
            let _ = tokio::time::timeout(Duration::from_millis(100), s.next()).await;
        }
        // Streams dropped after 0, 1 and 2 frames.
        for frames in 0..3 {
            let cx = Context::new().for_conn(ConnId(1));
            let mut s = tokio::time::timeout(READ_LIMIT, self.source.open_dyn(&cx, range))
                .await
                .map_err(|_| fail("cancellation", "open did not answer within 60 s"))?
                .map_err(|e| fail("cancellation", e.to_string()))?;
            for _ in 0..frames {
                let _ = tokio::time::timeout(READ_LIMIT, s.next()).await;
            }
            drop(s);
            self.expect(range, "cancellation").await?;
        }
        Ok(())
    }
}

/// Every byte of `range`, or the error kind that ended it.
async fn read_all(source: &BoxSource, range: ReadRange) -> Result<Bytes, ErrorKind> {
    let work = async {
        let cx = Context::new().for_conn(ConnId(0));
        let mut s = source.open_dyn(&cx, range).await.map_err(|e| e.kind())?;
        let mut out = bytes::BytesMut::new();
        while let Some(frame) = s.next().await {
            out.extend_from_slice(&frame.map_err(|e| e.kind())?);
        }
        Ok(out.freeze())
    };
    tokio::time::timeout(READ_LIMIT, work)
        .await
        .unwrap_or(Err(ErrorKind::Network))
}

/// An object held in memory, for tests and benchmarks of what sits above a
/// [`Source`](crate::Source): ranged reads of `bytes`, each delivered in
/// frames of at most `frame_len` bytes (default: the whole range in one).
#[derive(Debug)]
pub struct MemorySource {
    bytes: Bytes,
    frame_len: usize,
}

impl MemorySource {
    /// Serves `bytes`, each read as one frame.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self {
            bytes: bytes.into(),
            frame_len: usize::MAX,
        }
    }

    /// Delivers each read in frames of at most `len` bytes (at least 1), as
    /// a network body arrives (an HTTP/1 read is up to 256 KiB in dlm-http).
    pub fn with_frame_len(mut self, len: usize) -> Self {
        self.frame_len = len.max(1);
        self
    }
}

impl crate::Source for MemorySource {
    fn identity(&self) -> String {
        "memory:test".into()
    }
    async fn probe(&self, _cx: &Context) -> crate::Result<crate::Probe> {
        Ok(crate::Probe::new(
            Some(self.bytes.len() as u64),
            crate::Capabilities::default().with_ranges(true),
        ))
    }
    async fn open(&self, _cx: &Context, range: ReadRange) -> crate::Result<crate::BodyStream> {
        let len = self.bytes.len() as u64;
        let end = range.end().unwrap_or(len).min(len) as usize;
        let body = self.bytes.slice((range.start() as usize).min(end)..end);
        if body.is_empty() {
            return Ok(Box::pin(futures::stream::iter([Ok(body)])));
        }
        let frames: Vec<crate::Result<Bytes>> = (0..body.len())
            .step_by(self.frame_len.min(body.len()))
            .map(|at| Ok(body.slice(at..at.saturating_add(self.frame_len).min(body.len()))))
            .collect();
        Ok(Box::pin(futures::stream::iter(frames)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::MemorySource;
    use super::*;

    #[tokio::test]
    async fn a_memory_source_serves_ranges_in_frames_of_the_set_length() {
        use futures::StreamExt as _;
        let src = MemorySource::new(Bytes::from((0..10u8).collect::<Vec<_>>())).with_frame_len(4);
        let cx = Context::default();
        let frames: Vec<Bytes> =
            crate::Source::open(&src, &cx, ReadRange::Bounded(ByteRange::new(1, 10)))
                .await
                .unwrap()
                .map(|f| f.unwrap())
                .collect()
                .await;
        assert_eq!(frames, [&[1u8, 2, 3, 4][..], &[5, 6, 7, 8], &[9]]);
    }

    #[tokio::test]
    async fn an_exact_source_passes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let report = Conformance::new(Arc::new(MemorySource::new(Bytes::from(data.clone()))), data)
            .run()
            .await
            .unwrap();
        assert!(report.checks.contains(&"ranged reads"), "{report:?}");
        assert!(report.checks.contains(&"cancellation"), "{report:?}");
    }

    #[tokio::test]
    async fn a_change_read_as_if_unchanged_fails() {
        let data = vec![7u8; 100];
        let e = Conformance::new(
            Arc::new(MemorySource::new(Bytes::from(data.clone()))),
            data.clone(),
        )
        .with_change(
            Arc::new(MemorySource::new(Bytes::from(data))),
            Box::pin(async {}),
        )
        .run()
        .await
        .unwrap_err();
        assert_eq!(e.check, "changed remote");
    }

    #[tokio::test]
    async fn other_bytes_fail() {
        let data = vec![7u8; 100];
        let e = Conformance::new(
            Arc::new(MemorySource::new(Bytes::from(vec![8u8; 100]))),
            data,
        )
        .run()
        .await
        .unwrap_err();
        assert_eq!(e.check, "whole read");
    }
}
