//! A minimal HTTP/1.1 client over a plain tokio `TcpStream`, for checking what a peer sends: one request per
//! connection (`Connection: close`), the whole response read until the server closes.
//!
//! Not a client for dlm's code paths: it exists so tests can look at peers without dlm (and without another
//! HTTP library).

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed response.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, with chunked framing removed when the response was chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the response used `Transfer-Encoding: chunked`.
    pub fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    /// Parses a whole response as read from the wire: status line, headers, and a body that is de-chunked when
    /// `Transfer-Encoding: chunked` (otherwise kept as is, even if shorter than `Content-Length`).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] for a malformed head or chunked body.
    pub fn parse(raw: &[u8]) -> io::Result<Self> {
        let head_end = find(raw, b"\r\n\r\n").ok_or_else(|| invalid("no end of header section"))?;
        let head = std::str::from_utf8(&raw[..head_end])
            .map_err(|_| invalid("header section is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("bad status line"))?;
        let headers = lines
            .map(|line| {
                line.split_once(':')
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| invalid("bad header line"))
            })
            .collect::<io::Result<Vec<_>>>()?;
        let mut response = Self {
            status,
            headers,
            body: raw[head_end + 4..].to_vec(),
        };
        if response.is_chunked() {
            response.body = dechunk(&response.body)?;
        }
        Ok(response)
    }
}

/// Sends `method path HTTP/1.1` with `Host`, `Connection: close` and `headers` to `addr`, and reads the
/// response until the server closes the connection.
///
/// # Errors
///
/// Connect, write and read errors, and [`Response::parse`]'s.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<Response> {
    Response::parse(&request_raw(addr, method, path, headers).await?)
}

/// [`request`] with `GET`.
///
/// # Errors
///
/// As [`request`].
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
    request(addr, "GET", path, headers).await
}

/// Like [`request`], but returns the raw bytes received (head and body, unparsed) until the server closed the
/// connection. A connection reset after some bytes arrived returns those bytes.
///
/// # Errors
///
/// Connect and write errors; a read error before any byte arrived.
pub async fn request_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(req, "{name}: {value}\r\n");
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return Ok(raw),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if raw.is_empty() => return Err(e),
            Err(_) => return Ok(raw),
        }
    }
}

fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or_else(|| invalid("truncated chunk size"))?;
        let size_field =
            std::str::from_utf8(&rest[..line_end]).map_err(|_| invalid("bad chunk size"))?;
        let size_hex = size_field.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| invalid("bad chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
            return Err(invalid("truncated chunk"));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_chunked_response() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let r = Response::parse(raw).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.is_chunked());
        assert_eq!(r.body, b"abcde");
    }

    #[test]
    fn keeps_a_plain_body() {
        let r = Response::parse(b"HTTP/1.0 206 Partial\r\nContent-Length: 4\r\n\r\nwxyz").unwrap();
        assert_eq!(r.status, 206);
        assert_eq!(r.header("content-length"), Some("4"));
        assert_eq!(r.body, b"wxyz");
    }

    #[test]
    fn rejects_a_truncated_chunk() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc";
        assert!(Response::parse(raw).is_err());
    }
}
