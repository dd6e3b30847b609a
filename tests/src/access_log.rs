//! nginx's access log in the format the [`Nginx`](crate::Nginx) peer writes, parsed into entries.

use std::fs;
use std::io;
use std::path::Path;

/// The nginx `log_format` these entries are parsed from: one line per request, fields separated by spaces, the
/// request's `Range` header last and quoted (it may contain spaces).
pub const LOG_FORMAT: &str = r#"'$scheme $server_protocol $request_method $status $bytes_sent $body_bytes_sent $request_uri "$http_range"'"#;

/// One request as nginx logged it, written when the response is finished (or the client went away).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLogEntry {
    /// `http` or `https`.
    pub scheme: String,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: String,
    /// The request method, e.g. `GET`.
    pub method: String,
    /// The response status code.
    pub status: u16,
    /// Bytes sent to the client, status line and headers included (nginx `$bytes_sent`).
    pub bytes_sent: u64,
    /// Bytes of the response body sent, chunked framing included (nginx `$body_bytes_sent`).
    pub body_bytes_sent: u64,
    /// The request target as the client sent it, query included (nginx `$request_uri`).
    pub uri: String,
    /// The request's `Range` header, if it had one.
    pub range: Option<String>,
}

impl AccessLogEntry {
    /// Parses one line written in [`LOG_FORMAT`]; `None` for a line that does not fit (e.g. a request nginx
    /// could not parse).
    pub fn parse(line: &str) -> Option<Self> {
        let (fields, range) = line.split_once(" \"")?;
        let range = range.strip_suffix('"')?;
        let mut fields = fields.split(' ');
        let entry = Self {
            scheme: fields.next()?.to_owned(),
            protocol: fields.next()?.to_owned(),
            method: fields.next()?.to_owned(),
            status: fields.next()?.parse().ok()?,
            bytes_sent: fields.next()?.parse().ok()?,
            body_bytes_sent: fields.next()?.parse().ok()?,
            uri: fields.next()?.to_owned(),
            range: (range != "-").then(|| range.to_owned()),
        };
        fields.next().is_none().then_some(entry)
    }
}

/// Reads and parses every line of the access log at `path`, skipping lines that do not fit [`LOG_FORMAT`].
///
/// # Errors
///
/// If the file cannot be read.
pub fn read_access_log(path: &Path) -> io::Result<Vec<AccessLogEntry>> {
    Ok(fs::read_to_string(path)?
        .lines()
        .filter_map(AccessLogEntry::parse)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_ranged_request() {
        let e = AccessLogEntry::parse(
            r#"http HTTP/1.1 GET 206 355 100 /f.bin?x=1 "bytes=0-99, 200-299""#,
        )
        .unwrap();
        assert_eq!(e.scheme, "http");
        assert_eq!(e.protocol, "HTTP/1.1");
        assert_eq!(e.method, "GET");
        assert_eq!(e.status, 206);
        assert_eq!(e.bytes_sent, 355);
        assert_eq!(e.body_bytes_sent, 100);
        assert_eq!(e.uri, "/f.bin?x=1");
        assert_eq!(e.range.as_deref(), Some("bytes=0-99, 200-299"));
    }

    #[test]
    fn a_missing_range_is_none() {
        let e = AccessLogEntry::parse(r#"https HTTP/2.0 GET 200 1200 1000 /a "-""#).unwrap();
        assert_eq!(e.range, None);
    }

    #[test]
    fn rejects_other_lines() {
        assert_eq!(AccessLogEntry::parse(""), None);
        assert_eq!(
            AccessLogEntry::parse(r#"http HTTP/1.1 GET abc 1 1 /a "-""#),
            None
        );
        assert_eq!(
            AccessLogEntry::parse(r#"http HTTP/1.1 GET 200 1 1 /a extra "-""#),
            None
        );
    }
}
