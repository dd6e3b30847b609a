//! `Fixed`: an in-memory [`Source`] for dlm-core's own unit tests.

use bytes::Bytes;

use crate::{BodyStream, Capabilities, Context, Probe, ReadRange, Result, Source};

/// Serves its bytes with ranges, each range as one frame.
#[derive(Debug)]
pub(crate) struct Fixed(pub(crate) Bytes);

impl Source for Fixed {
    fn identity(&self) -> String {
        "fixed:test".into()
    }
    async fn probe(&self, _cx: &Context) -> Result<Probe> {
        Ok(Probe::new(
            Some(self.0.len() as u64),
            Capabilities::default().with_ranges(true),
        ))
    }
    async fn open(&self, _cx: &Context, range: ReadRange) -> Result<BodyStream> {
        let len = self.0.len() as u64;
        let end = range.end().unwrap_or(len).min(len);
        let bytes = self.0.slice(range.start().min(end) as usize..end as usize);
        Ok(Box::pin(futures::stream::iter([Ok(bytes)])))
    }
}
