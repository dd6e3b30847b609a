//! `dlm get ftp://host/dir/`: every file of a listing into one directory.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use dlm_core::{BoxListing, DownloadOptions, ErrorKind, TreeDownload, TreeEvent};
use indicatif::HumanBytes;
use tokio::sync::broadcast;

use crate::args::GetArgs;
use crate::exit_code;
use crate::progress::Mode;

/// The destination of a tree: `-o DIR` exactly, else `-d DIR` (default `.`)
/// joined with the listing's suggested name (`ftp://h/pub/data/` → `data`,
/// `ipfs://CID` → the CID).
fn destination(a: &GetArgs, listing: &BoxListing) -> PathBuf {
    if let Some(out) = &a.output {
        return out.clone();
    }
    let base = a.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let name = listing.name().and_then(|l| dlm_core::safe_file_name(&l));
    match name {
        Some(n) => base.join(n),
        None => base,
    }
}

/// Downloads every file of `listing`; exit code 0 only when all arrived and
/// no name was refused.
pub(crate) async fn get(
    a: &GetArgs,
    listing: BoxListing,
    options: DownloadOptions,
    mode: Mode,
) -> u8 {
    if a.output.as_deref() == Some(std::path::Path::new("-"))
        || !a.mirrors.is_empty()
        || a.checksum.is_some()
    {
        eprintln!("dlm: error: a directory download takes no -o -, --mirror or --checksum");
        return exit_code::FAILURE;
    }
    let dir = destination(a, &listing);
    let tree = TreeDownload::new(listing, dir.clone()).with_options(options);
    let events = tree.subscribe();
    let handle = tree.start();
    let interrupted = {
        let cancel = handle.cancellation();
        crate::cancel_on_signal(move || cancel.cancel())
    };
    let printer = tokio::spawn(show(events, mode));
    let result = handle.wait().await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), printer).await;
    match result {
        Ok(summary) => {
            let p = &summary.progress;
            if mode == Mode::Bar {
                eprintln!(
                    "saved {} files ({}) into {}{}",
                    p.files_done,
                    HumanBytes(p.bytes_done),
                    dir.display(),
                    if summary.is_complete() {
                        String::new()
                    } else {
                        format!(
                            "; {} failed, {} refused",
                            summary.failed.len(),
                            summary.refused.len()
                        )
                    }
                );
                for e in &summary.listing_errors {
                    eprintln!("dlm: could not list: {e}");
                }
            }
            if summary.is_complete() {
                exit_code::SUCCESS
            } else if summary
                .failed
                .iter()
                .any(|(_, e)| e.kind() == ErrorKind::Integrity)
            {
                exit_code::INTEGRITY
            } else {
                exit_code::FAILURE
            }
        }
        Err(e) if e.kind() == ErrorKind::Cancelled && interrupted.load(Ordering::SeqCst) => {
            crate::interrupted_exit(mode)
        }
        Err(e) => crate::fail(&e),
    }
}

/// Shows tree events: JSON lines, or a byte bar with per-file problems above it.
async fn show(mut events: broadcast::Receiver<TreeEvent>, mode: Mode) {
    let bar = (mode == Mode::Bar).then(crate::progress::bar);
    loop {
        let ev = match events.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => break,
        };
        match mode {
            Mode::Json => {
                if let Ok(line) = serde_json::to_string(&ev) {
                    println!("{line}");
                }
            }
            Mode::Bar => {
                let Some(bar) = &bar else { continue };
                match &ev {
                    TreeEvent::Progress(p) => {
                        bar.set_length(p.bytes_listed.max(p.bytes_done));
                        bar.set_position(p.bytes_done);
                        bar.set_message(format!(
                            "{}/s, {}/{} files{}",
                            HumanBytes(p.rate_bytes_per_sec),
                            p.files_done,
                            p.files_listed,
                            if p.listing_done { "" } else { " (listing)" }
                        ));
                    }
                    TreeEvent::Refused { path, reason } => {
                        bar.println(format!("dlm: refused {path:?}: {reason}"));
                    }
                    TreeEvent::FileFailed { path, message, .. } => {
                        bar.println(format!("dlm: {path}: {message}"));
                    }
                    TreeEvent::ListingFailed { message, .. } => {
                        bar.println(format!("dlm: could not list: {message}"));
                    }
                    _ => {}
                }
            }
            Mode::Quiet => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// `dlm info ftp://host/dir/`: every file of the listing with its length, as
/// text or one JSON object per file.
pub(crate) async fn info(listing: BoxListing, json: bool) -> u8 {
    use futures::StreamExt as _;
    let cx = dlm_core::Context::new();
    let mut entries = listing.entries(&cx);
    let (mut files, mut bytes) = (0u64, 0u64);
    if !json {
        println!("listing:        {}", listing.identity());
        crate::print_fields(&listing.describe());
    }
    while let Some(entry) = entries.next().await {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return crate::fail(&e),
        };
        files += 1;
        bytes += entry.len.unwrap_or(0);
        let path = entry.display_path();
        if json {
            println!("{}", serde_json::json!({ "path": path, "len": entry.len }));
        } else {
            let len = entry.len.map_or_else(|| "?".to_string(), |l| l.to_string());
            println!("{len:>14}  {path:?}");
        }
    }
    if !json {
        println!("{files} files, {bytes} bytes ({})", HumanBytes(bytes));
    }
    exit_code::SUCCESS
}
