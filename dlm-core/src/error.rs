//! The one error type every dlm crate converts into.
//!
//! Protocol crates keep their own `thiserror` enums (`HttpError`, …) and convert
//! into [`Error`] where the failure is first seen, choosing an [`ErrorKind`] and
//! whether a retry can help. The engine reads only the kind and the retry flag,
//! never the message; the protocol error stays reachable through
//! [`std::error::Error::source`] and `downcast_ref`.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// `Result` with dlm's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who is at fault, in the field's terms. The engine decides on retries and
/// restarts from this alone.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Connecting, TLS handshake, a reset or an idle timeout.
    Network,
    /// The server or peer broke its protocol (bad status line, wrong `Content-Range`, …).
    Protocol,
    /// A digest, length or validator did not match what was expected.
    Integrity,
    /// Local storage failed (disk full, permission denied, …).
    Io,
    /// Credentials were missing or refused (HTTP 401/403, FTP 530, …).
    Auth,
    /// The resource does not exist (HTTP 404/410, FTP 550, …).
    NotFound,
    /// The input given by the caller is malformed (bad URL, bad checksum spec, …).
    InvalidInput,
    /// Nothing registered can handle the input, or the remote lacks a needed feature.
    Unsupported,
    /// The remote answered a range the object does not have (HTTP 416).
    RangeNotSatisfied,
    /// The remote object changed (new ETag, length or Last-Modified) since it was probed.
    RemoteChanged,
    /// The download was cancelled or paused by its owner.
    Cancelled,
}

impl ErrorKind {
    /// The kebab-case name used in JSON events and CLI messages (`"not-found"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Protocol => "protocol",
            Self::Integrity => "integrity",
            Self::Io => "io",
            Self::Auth => "auth",
            Self::NotFound => "not-found",
            Self::InvalidInput => "invalid-input",
            Self::Unsupported => "unsupported",
            Self::RangeNotSatisfied => "range-not-satisfied",
            Self::RemoteChanged => "remote-changed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether trying again can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Permanent: retrying gives the same answer.
    Never,
    /// Temporary: retry, no sooner than the given delay when the remote said so.
    After(Option<Duration>),
    /// Was temporary, but the engine ran out of attempts.
    Exhausted,
}

/// dlm's error: a kind, a retry decision, a one-line message, key/value
/// context and the underlying cause.
///
/// `Display` is one line, is not a stable API, and never shows credentials:
/// protocol crates must strip userinfo and signed query strings from anything
/// they put in the message or context.
pub struct Error {
    kind: ErrorKind,
    retry: Retry,
    message: Cow<'static, str>,
    context: Vec<(&'static str, String)>,
    source: Option<Box<dyn StdError + Send + Sync>>,
    connection_limit: bool,
}

impl Error {
    /// A new permanent error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            retry: Retry::Never,
            message: message.into(),
            context: Vec::new(),
            source: None,
            connection_limit: false,
        }
    }

    /// Marks the error as the remote refusing one more connection (an FTP
    /// server's `421 Too many connections`, RFC 959 §4.2). The engine then
    /// runs with the connections it already has instead of retrying this one,
    /// as long as at least one other connection to that source is working.
    pub fn connection_limit(mut self) -> Self {
        self.connection_limit = true;
        self
    }

    /// Whether the remote refused a connection for having too many
    /// ([`Error::connection_limit`]).
    pub fn is_connection_limit(&self) -> bool {
        self.connection_limit
    }

    /// Marks the error temporary: the engine retries it with back-off.
    pub fn retryable(mut self) -> Self {
        self.retry = Retry::After(None);
        self
    }

    /// Marks the error temporary with a server-given minimum delay
    /// (`Retry-After`, RFC 9110 §10.2.3).
    pub fn retry_after_delay(mut self, delay: Duration) -> Self {
        self.retry = Retry::After(Some(delay));
        self
    }

    /// Marks a temporary error as out of attempts; adds `("attempts", n)`.
    pub fn exhausted(mut self, attempts: u32) -> Self {
        if self.retry != Retry::Never {
            self.retry = Retry::Exhausted;
        }
        self.with_context("attempts", attempts)
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Adds a `key=value` pair shown after the message.
    pub fn with_context(mut self, key: &'static str, value: impl ToString) -> Self {
        self.context.push((key, value.to_string()));
        self
    }

    /// What went wrong, by who is at fault.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the engine may try again.
    pub fn is_retryable(&self) -> bool {
        matches!(self.retry, Retry::After(_))
    }

    /// Whether this was retryable but retries ran out.
    pub fn is_exhausted(&self) -> bool {
        self.retry == Retry::Exhausted
    }

    /// The minimum delay before a retry that the remote asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.retry {
            Retry::After(d) => d,
            _ => None,
        }
    }

    /// The one-line message without context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The key/value context pairs.
    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }

    /// Shorthand for an [`ErrorKind::Io`] error from a `std::io::Error`, with
    /// [`ErrorKind::Io`] kept even for `StorageFull` so the CLI can say "disk full".
    pub fn io(what: impl Into<Cow<'static, str>>, err: std::io::Error) -> Self {
        let mut what = what.into();
        if err.kind() == std::io::ErrorKind::StorageFull {
            what = format!("{what}: disk full").into();
        }
        Self::new(ErrorKind::Io, what).with_source(err)
    }

    /// A cancellation error.
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "cancelled")
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("retry", &self.retry)
            .field("message", &self.message)
            .field("context", &self.context)
            .field("source", &self.source)
            .field("connection_limit", &self.connection_limit)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        for (k, v) in &self.context {
            write!(f, ", {k}={v}")?;
        }
        if let Some(source) = &self.source {
            // Protocol errors often are the message (and stay reachable as the
            // source for downcasting): do not say it twice.
            let text = source.to_string();
            if text != self.message {
                write!(f, ": {text}")?;
            }
            let mut next = source.source();
            while let Some(cause) = next {
                write!(f, ": {cause}")?;
                next = cause.source();
            }
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Self::io("i/o error", err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_context_and_causes() {
        let io = std::io::Error::other("boom");
        let e = Error::new(ErrorKind::Io, "writing")
            .with_context("offset", 42)
            .with_source(io);
        assert_eq!(e.to_string(), "writing, offset=42: boom");
        assert!(!e.is_retryable());
    }

    #[test]
    fn retry_flags() {
        let e = Error::new(ErrorKind::Network, "reset").retry_after_delay(Duration::from_secs(3));
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let e = e.exhausted(5);
        assert!(!e.is_retryable());
        assert!(e.is_exhausted());
        assert_eq!(e.to_string(), "reset, attempts=5");
        let permanent = Error::new(ErrorKind::NotFound, "404").exhausted(1);
        assert!(!permanent.is_exhausted());
    }

    #[test]
    fn a_source_equal_to_the_message_is_not_repeated() {
        let e = Error::new(ErrorKind::Io, "boom").with_source(std::io::Error::other("boom"));
        assert_eq!(e.to_string(), "boom");
    }

    #[test]
    fn storage_full_says_disk_full() {
        let e = Error::io(
            "writing x.part",
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        );
        assert!(e.to_string().starts_with("writing x.part: disk full"));
    }
}
