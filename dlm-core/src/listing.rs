//! `Listing`: a remote collection of files (an FTP directory tree, an S3
//! prefix, a UnixFS directory) that downloads into a local directory.

use std::fmt;
use std::sync::Arc;

use futures::stream::BoxStream;

use crate::{BoxSource, Context, Result};

/// One file of a [`Listing`].
#[non_exhaustive]
#[derive(Debug)]
pub struct Entry {
    /// The path below the listing's root, one component per element, exactly
    /// as the remote named them. Untrusted: the tree download refuses any
    /// component that [`safe_relative_path`](crate::safe_relative_path)
    /// would change (`..`, `/abs`, `a/b`, control characters, reserved names).
    pub path: Vec<String>,
    /// Length in bytes, when the listing says.
    pub len: Option<u64>,
    /// Where the bytes come from.
    pub source: BoxSource,
}

impl Entry {
    /// An entry at `path` (components below the root) read from `source`.
    pub fn new(path: Vec<String>, len: Option<u64>, source: BoxSource) -> Self {
        Self { path, len, source }
    }

    /// The path as the remote wrote it, components joined by `/` (for
    /// messages; never used to build a local path).
    pub fn display_path(&self) -> String {
        self.path.join("/")
    }
}

/// A remote collection of files, listed recursively.
///
/// Implemented by protocol crates: `ftp://host/dir/` (MLSD/LIST),
/// `s3://bucket/prefix/` (ListObjectsV2), an IPFS directory. A
/// [`TreeDownload`](crate::TreeDownload) fetches every entry with the core
/// engine.
pub trait Listing: Send + Sync + fmt::Debug + 'static {
    /// Identifies the collection in events and messages, without credentials.
    fn identity(&self) -> String;

    /// Every file below the root, recursively, in the order the remote lists
    /// them. Directories are not entries: they are created as files need
    /// them. The stream ends after the last entry. An `Err` item is a part
    /// that could not be listed (a subdirectory the server refuses): the
    /// tree download reports it and reads on; a listing that cannot go on
    /// at all ends its stream after the error.
    fn entries<'a>(&'a self, cx: &'a Context) -> BoxStream<'a, Result<Entry>>;

    /// The name of the local directory a download of the whole collection
    /// goes into, unsanitised (the caller applies
    /// [`safe_file_name`](crate::safe_file_name)). The default: the last
    /// non-empty path segment of the [identity](Listing::identity) when it
    /// is a URL, percent-decoded (`ftp://h/pub/data/` → `data`); `None` for
    /// a root.
    fn name(&self) -> Option<String> {
        let url = url::Url::parse(&self.identity()).ok()?;
        let last = url.path_segments()?.rfind(|p| !p.is_empty())?;
        Some(
            percent_encoding::percent_decode_str(last)
                .decode_utf8_lossy()
                .into_owned(),
        )
    }

    /// Facts about the collection known without more I/O, as label/value
    /// pairs for `dlm info` (`("cid", "…")`). The default: none.
    fn describe(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// A shared, type-erased [`Listing`].
pub type BoxListing = Arc<dyn Listing>;
