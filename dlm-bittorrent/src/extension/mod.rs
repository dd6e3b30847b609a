//! The extension protocol (BEP 10): the extended handshake that maps
//! extension names to message ids, and the extensions dlm speaks over it:
//! `ut_metadata` (BEP 9, the info dictionary for magnet links) and `ut_pex`
//! (BEP 11, peer exchange). Parsing only, no I/O, so it can be fuzzed.

mod handshake;
pub mod ut_metadata;
pub mod ut_pex;

pub use handshake::{ExtendedHandshake, MAX_EXTENDED_HANDSHAKE};

/// Our id for `ut_metadata` messages sent to us (BEP 10: each side picks
/// the ids it receives on; 0 is the extended handshake itself).
pub const UT_METADATA_ID: u8 = 1;
/// Our id for `ut_pex` messages sent to us.
pub const UT_PEX_ID: u8 = 2;

/// Why an extension message was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{extension}: {what}")]
pub struct ExtensionError {
    /// `handshake`, `ut_metadata` or `ut_pex`.
    pub extension: &'static str,
    /// What was wrong.
    pub what: String,
}

impl ExtensionError {
    pub(crate) fn new(extension: &'static str, what: impl Into<String>) -> Self {
        Self {
            extension,
            what: what.into(),
        }
    }
}
