//! Downloads through a [`ProtocolRegistry`], as the CLI makes them: one
//! file into a path, or a listing into a directory, with every event kept.

use std::path::Path;
use std::sync::{Arc, Mutex};

use dlm_core::{
    Completed, Download, DownloadOptions, Event, Input, Options, Output, ProtocolRegistry, Result,
    Target, TreeDownload, TreeSummary,
};
use tokio::sync::broadcast::error::RecvError;

/// A download of `url` (one file) into `out`.
///
/// # Panics
/// When no registered protocol gives a source for `url`.
pub async fn file_download(
    registry: &ProtocolRegistry,
    url: &str,
    out: &Path,
    options: DownloadOptions,
) -> Download {
    let source = registry
        .source(&Input::parse(url), &Options::new())
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    Download::new(source, Output::File(out.to_path_buf())).with_options(options)
}

/// Downloads every file of the listing `url` names into `out` with
/// `connections` shared by all of them.
///
/// # Panics
/// When `url` is not a listing, or the tree download fails as a whole.
pub async fn tree_download(
    registry: &ProtocolRegistry,
    url: &str,
    out: &Path,
    connections: u32,
) -> TreeSummary {
    let Target::Listing(listing) = registry
        .target(&Input::parse(url), &Options::new())
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
    else {
        panic!("{url} should be a listing");
    };
    TreeDownload::new(listing, out.to_path_buf())
        .with_options(DownloadOptions::default().with_connections(connections))
        .start()
        .wait()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Runs `download` to its end; returns its result and every event it sent.
pub async fn with_events(download: Download) -> (Result<Completed>, Vec<Event>) {
    let mut rx = download.subscribe();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let watcher = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) => sink.lock().unwrap_or_else(|e| e.into_inner()).push(ev),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
    });
    let result = download.start().wait().await;
    // The sender is gone once the download has ended, so the watcher ends too.
    let _ = watcher.await;
    let events = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    (result, events)
}

/// Runs `download` and cancels it once its progress reaches `bytes`; returns
/// its result (a `Cancelled` error when it was cancelled in time). Lagged
/// events are skipped, never taken for the end.
pub async fn cancel_after(download: Download, bytes: u64) -> Result<Completed> {
    let mut rx = download.subscribe();
    let handle = download.start();
    let control = handle.control();
    let waiter = tokio::spawn(handle.wait());
    loop {
        match rx.recv().await {
            Ok(Event::Progress(s)) if s.downloaded_bytes >= bytes => {
                control.cancel();
                break;
            }
            Ok(_) | Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        }
    }
    waiter.await.expect("the download task ends")
}
