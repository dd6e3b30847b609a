//! Process exit codes, distinct per outcome.

use dlm_core::ErrorKind;

/// The download completed (and verified, when asked).
pub(crate) const SUCCESS: u8 = 0;
/// The download failed (network, HTTP status, disk, …).
pub(crate) const FAILURE: u8 = 1;
/// Bad command line (clap's own code).
#[allow(dead_code, reason = "documents clap's code next to ours")]
pub(crate) const USAGE: u8 = 2;
/// The bytes did not match the expected digest.
pub(crate) const INTEGRITY: u8 = 3;
/// Interrupted by Ctrl-C or SIGTERM; state saved, run again to resume.
pub(crate) const INTERRUPTED: u8 = 130;

/// The exit code for an error of `kind`.
pub(crate) fn for_kind(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Integrity => INTEGRITY,
        ErrorKind::Cancelled => INTERRUPTED,
        _ => FAILURE,
    }
}
