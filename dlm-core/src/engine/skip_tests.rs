//! Ranges a probe says to skip ([`Probe::skip`], a torrent's unselected
//! files) count as done while downloading but are never saved as done: a
//! resume with another selection must still fetch them.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{
    BodyStream, ByteRange, Capabilities, Context, ControlFile, Download, FileSink, Output, Probe,
    ReadRange, Result, Source,
};

const MIB: u64 = 1 << 20;
const LEN: u64 = 8 * MIB;

/// 8 MiB; the first MiB is skipped; bytes from 6 MiB on never come (the
/// connections stall there, so the download stays unfinished).
#[derive(Debug)]
struct Skipping;

impl Source for Skipping {
    fn identity(&self) -> String {
        "skipping:test".into()
    }
    async fn probe(&self, _cx: &Context) -> Result<Probe> {
        let mut p = Probe::new(Some(LEN), Capabilities::default().with_ranges(true));
        p.skip = vec![ByteRange::new(0, MIB)];
        Ok(p)
    }
    async fn open(&self, _cx: &Context, range: ReadRange) -> Result<BodyStream> {
        let start = range.start();
        let end = range.end().unwrap_or(LEN).min(6 * MIB);
        let sent = Bytes::from(vec![7u8; end.saturating_sub(start) as usize]);
        Ok(futures::stream::iter([Ok(sent)])
            .chain(futures::stream::pending())
            .boxed())
    }
}

#[tokio::test]
async fn skipped_ranges_are_not_saved_as_done() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.bin");
    let handle = Download::new(std::sync::Arc::new(Skipping), Output::File(out.clone())).start();
    let control = FileSink::control_path_for(&out);
    // Wait until the fetched bytes are saved, then stop.
    let mut saved = None;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if let Ok(Some(c)) = ControlFile::load(&control)
            && c.done.contains_range(ByteRange::new(MIB, 2 * MIB))
        {
            saved = Some(c);
            break;
        }
    }
    handle.cancel();
    let _ = handle.wait().await;
    let saved = saved.expect("the fetched range was saved");
    assert!(
        !saved.done.contains_range(ByteRange::new(0, 1)),
        "skipped bytes saved as done: {:?}",
        saved.done
    );
}
