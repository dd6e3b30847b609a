//! Making a rename durable: the directory entry lives in the parent
//! directory, which needs its own fsync (POSIX `rename` is atomic, not
//! durable).

use std::path::Path;

/// Fsyncs the directory holding `path`, so a rename into it (a control
/// file's new version, a `.part` renamed to its final name) survives a
/// power loss.
///
/// # Errors
/// The I/O error from opening or syncing the directory.
pub(crate) fn sync_parent(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}
