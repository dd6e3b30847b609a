//! Entry points for `fuzz/` (cargo-fuzz targets and their corpus replay):
//! the listing parser and the reply mapping behind plain inputs. Not a
//! stable API; hidden from the docs.

use crate::FtpError;

/// One listed entry as the listing walk sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedEntry {
    /// The entry's name as listed (never `.` or `..`).
    pub name: String,
    /// Whether it is a directory (walked into) rather than a file.
    pub is_directory: bool,
    /// The listed size, bytes.
    pub size: u64,
}

/// Parses a directory listing: `MLSD` facts lines (RFC 3659 §7) when `mlsd`,
/// else `LIST` lines in Unix or DOS format.
pub fn listing(text: &str, mlsd: bool) -> Vec<ListedEntry> {
    crate::listing::parse_listing(text, mlsd)
        .into_iter()
        .map(|f| ListedEntry {
            name: f.name().to_string(),
            is_directory: f.is_directory(),
            size: f.size() as u64,
        })
        .collect()
}

/// The error for an unexpected reply (RFC 959 §4.2) with reply code `code`
/// (0 when the client library did not know it) and `body` (the reply text,
/// code included), from `host`.
pub fn reply(host: &str, code: u32, body: Vec<u8>) -> FtpError {
    let response = suppaftp::types::Response::new(suppaftp::Status::from(code), body);
    crate::error::from_suppaftp(host, suppaftp::FtpError::UnexpectedResponse(response))
}
