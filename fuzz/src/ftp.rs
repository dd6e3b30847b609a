//! FTP: control-connection replies and `LIST`/`MLSD` listings.

use dlm_ftp::FtpError;
use dlm_ftp::fuzzing;

/// Reply lines (RFC 959 §4.2: a 3-digit code, then text) as dlm maps an
/// unexpected reply to an error. Input: lines of text; each line's code is
/// its first three characters.
///
/// Checks: the error keeps a code between 0 and 999; a connection limit is
/// only ever a 421; the error converts to a `dlm_core::Error` and displays.
pub fn ftp_reply(data: &[u8]) {
    for line in data.split(|&b| b == b'\n').take(64) {
        let code = std::str::from_utf8(line.get(..3).unwrap_or_default())
            .ok()
            .and_then(|c| c.parse::<u32>().ok())
            .unwrap_or(0);
        let e = fuzzing::reply("ftp.example", code, line.to_vec());
        if let FtpError::Reply { code, .. } = &e {
            assert!(*code < 1000, "{e}");
        }
        if e.is_connection_limit() {
            assert!(matches!(e, FtpError::Reply { code: 421, .. }), "{e}");
        }
        let e = dlm_core::Error::from(e);
        let _ = (e.kind(), e.is_retryable(), e.to_string());
    }
}

/// A directory listing as the FTP listing walk parses it: `MLSD` facts
/// (RFC 3659 §7) when the first byte is odd, else `LIST` lines (Unix `ls -l`
/// or DOS). Input: that byte, then the listing text (lossy UTF-8, as read).
///
/// Checks: `.` and `..` are never listed; every name a file gets is
/// either refused or a single safe path component.
pub fn ftp_listing(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    for entry in fuzzing::listing(&text, mode & 1 == 1) {
        assert!(entry.name != "." && entry.name != "..", "{entry:?}");
        if let Ok(path) = dlm_core::safe_relative_path(&[entry.name.as_str()]) {
            assert!(dlm_core::stays_inside(&path), "{entry:?}");
        }
    }
}
