//! `Units`: a protocol's verification units (BitTorrent pieces, IPFS blocks).
//! Bytes of a unit count as done only after the whole unit has been written
//! and its hash checks out; a unit that fails goes back to missing.

use std::fmt;
use std::sync::Arc;

use crate::ByteRange;

/// How a source's bytes divide into independently verifiable units.
///
/// The engine writes a connection's bytes as they arrive but records them as
/// *unverified*; once every byte of a unit is written, it reads the unit back
/// from the sink, calls [`Units::verify`], and only then counts it as done
/// (and saves it in the control file). A unit that fails is refetched, and
/// its connection's chunk fails with an integrity error.
pub trait Units: Send + Sync + fmt::Debug + 'static {
    /// The unit containing `offset` (`offset` is inside the byte space).
    fn unit_at(&self, offset: u64) -> ByteRange;

    /// Whether `data`, the bytes of `unit`, are correct.
    fn verify(&self, unit: ByteRange, data: &[u8]) -> bool;
}

/// A shared, type-erased [`Units`].
pub type BoxUnits = Arc<dyn Units>;

/// Every unit that overlaps `r`, in offset order, within `[0, len)`.
pub(crate) fn overlapping(units: &dyn Units, r: ByteRange, len: u64) -> Vec<ByteRange> {
    let mut out = Vec::new();
    let mut at = r.start;
    while at < r.end.min(len) {
        let u = units.unit_at(at);
        if u.end <= at {
            break; // a broken Units implementation must not loop forever
        }
        out.push(u);
        at = u.end;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use bytes::Bytes;

    use super::*;
    use crate::{
        BodyStream, Capabilities, Context, Download, DownloadOptions, Event, MemorySink, Output,
        Probe, ReadRange, Result, Source,
    };

    /// Units of 1,000 bytes checked against the true content.
    #[derive(Debug)]
    struct Thousands(Bytes);

    impl Units for Thousands {
        fn unit_at(&self, offset: u64) -> ByteRange {
            let start = offset / 1000 * 1000;
            ByteRange::new(start, (start + 1000).min(self.0.len() as u64))
        }
        fn verify(&self, unit: ByteRange, data: &[u8]) -> bool {
            data == &self.0[unit.start as usize..unit.end as usize]
        }
    }

    /// Serves its bytes, but corrupts byte 2,500 the first time it is sent.
    #[derive(Debug)]
    struct CorruptOnce {
        data: Bytes,
        corrupted: AtomicBool,
    }

    impl Source for CorruptOnce {
        fn identity(&self) -> String {
            "corrupt-once:test".into()
        }
        async fn probe(&self, _cx: &Context) -> Result<Probe> {
            Ok(Probe::new(
                Some(self.data.len() as u64),
                Capabilities::default().with_ranges(true),
            ))
        }
        async fn open(&self, _cx: &Context, range: ReadRange) -> Result<BodyStream> {
            let end = range.end().unwrap_or(self.data.len() as u64) as usize;
            let start = range.start() as usize;
            let mut bytes = self.data.slice(start..end).to_vec();
            if (start..end).contains(&2500) && !self.corrupted.swap(true, Ordering::SeqCst) {
                bytes[2500 - start] ^= 0xff;
            }
            Ok(Box::pin(futures::stream::iter([Ok(Bytes::from(bytes))])))
        }
        fn units(&self) -> Option<BoxUnits> {
            Some(Arc::new(Thousands(self.data.clone())))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_unit_that_fails_is_fetched_again() {
        let data = Bytes::from((0..10_500u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        let source = Arc::new(CorruptOnce {
            data: data.clone(),
            corrupted: AtomicBool::new(false),
        });
        let sink = Arc::new(MemorySink::default());
        let download = Download::new(
            source,
            Output::Sink {
                sink: sink.clone(),
                control_file: None,
            },
        )
        .with_options(
            DownloadOptions::default()
                .with_connections(3)
                .with_max_chunk_bytes(Some(2000)),
        );
        let mut events = download.subscribe();
        let done = download.start().wait().await.unwrap();
        assert_eq!(done.bytes, 10_500);
        assert_eq!(sink.to_vec(), data.to_vec());
        let mut rejected = Vec::new();
        while let Ok(e) = events.try_recv() {
            if let Event::UnitRejected { range, .. } = e {
                rejected.push(range);
            }
        }
        assert_eq!(rejected, vec![ByteRange::new(2000, 3000)]);
    }
}
