//! `HttpError` and its mapping onto `dlm_core::Error`.

use std::time::Duration;

use dlm_core::{ByteRange, Error, ErrorKind};

/// What can go wrong over HTTP. Converts into [`dlm_core::Error`] with a kind
/// and a retry decision taken here, where the response arrives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The server answered with a status that is not a success.
    #[error("HTTP {status} from {url}")]
    Status {
        /// The status code.
        status: u16,
        /// The URL (credentials removed).
        url: String,
        /// `Retry-After` (RFC 9110 §10.2.3), when given.
        retry_after: Option<Duration>,
    },
    /// A ranged request was answered with the whole object (`200`).
    #[error("server ignored Range {asked} and answered 200")]
    RangeIgnored {
        /// The range asked for.
        asked: ByteRange,
    },
    /// An `If-Range` request came back as `200`: the object changed.
    #[error("the object changed on the server (If-Range did not match)")]
    Changed,
    /// `Content-Range` does not match the request (RFC 9110 §14.4).
    #[error("server sent Content-Range {got:?} for range {asked}")]
    ContentRange {
        /// The range asked for.
        asked: ByteRange,
        /// The header as received.
        got: String,
    },
    /// More than the allowed number of redirects.
    #[error("too many redirects (more than {0})")]
    TooManyRedirects(u32),
    /// A redirect without a usable `Location`.
    #[error("redirect {status} without a valid Location")]
    BadRedirect {
        /// The status code.
        status: u16,
    },
    /// A redirect from `https` to plain `http`, refused
    /// ([`HttpConfig::allow_insecure_redirect`](crate::HttpConfig::allow_insecure_redirect)).
    #[error(
        "refusing the redirect from {from} to {to}: it leaves HTTPS (allow with --allow-insecure-redirect, setting http.allow_insecure_redirect)"
    )]
    InsecureRedirect {
        /// Where the redirect came from (credentials removed).
        from: String,
        /// Where it pointed (credentials removed).
        to: String,
    },
    /// The URL cannot be fetched over HTTP (bad scheme, no host).
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A header given by the user or config is malformed.
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
    /// Connecting, the TLS handshake or sending the request failed.
    #[error("request to {url} failed")]
    Request {
        /// The URL (credentials removed).
        url: String,
        /// Whether a certificate was refused (never retried).
        tls_refused: bool,
        /// The cause.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// Reading the body failed.
    #[error("reading the response body failed")]
    Body(#[source] hyper::Error),
    /// No byte arrived for the idle timeout.
    #[error("no data for {0:?}")]
    IdleTimeout(Duration),
    /// Connecting took longer than the connect timeout.
    #[error("timed out after {0:?} waiting for a response")]
    ResponseTimeout(Duration),
    /// TLS configuration failed (unreadable CA file, no certificate in it).
    #[error("TLS setup: {0}")]
    Tls(String),
    /// `~/.netrc` could not be read.
    #[error("netrc: {0}")]
    Netrc(String),
    /// A body read whole ([`HttpClient::read_body`](crate::HttpClient::read_body))
    /// is larger than its limit.
    #[error("response body larger than {0} bytes")]
    BodyTooLarge(usize),
}

impl HttpError {
    /// The kind and whether a retry can help.
    fn classify(&self) -> (ErrorKind, bool) {
        match self {
            Self::Status { status, .. } => match status {
                401 | 403 | 407 => (ErrorKind::Auth, false),
                404 | 410 => (ErrorKind::NotFound, false),
                412 => (ErrorKind::RemoteChanged, false),
                416 => (ErrorKind::RangeNotSatisfied, false),
                408 | 425 | 429 => (ErrorKind::Network, true),
                500..=599 => (ErrorKind::Network, *status != 501 && *status != 505),
                _ => (ErrorKind::Protocol, false),
            },
            Self::RangeIgnored { .. } => (ErrorKind::Unsupported, false),
            Self::Changed => (ErrorKind::RemoteChanged, false),
            Self::ContentRange { .. }
            | Self::TooManyRedirects(_)
            | Self::BadRedirect { .. }
            | Self::InsecureRedirect { .. }
            | Self::BodyTooLarge(_) => (ErrorKind::Protocol, false),
            Self::InvalidUrl(_) | Self::InvalidHeader(_) | Self::Tls(_) | Self::Netrc(_) => {
                (ErrorKind::InvalidInput, false)
            }
            Self::Request { tls_refused, .. } => (ErrorKind::Network, !tls_refused),
            Self::Body(_) | Self::IdleTimeout(_) | Self::ResponseTimeout(_) => {
                (ErrorKind::Network, true)
            }
        }
    }
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        let (kind, retry) = e.classify();
        let retry_after = match &e {
            HttpError::Status { retry_after, .. } => *retry_after,
            _ => None,
        };
        let message = match &e {
            HttpError::Request {
                url,
                tls_refused: true,
                ..
            } => {
                format!("TLS certificate of {url} was refused")
            }
            other => other.to_string(),
        };
        let err = Error::new(kind, message).with_source(e);
        match (retry, retry_after) {
            (true, Some(d)) => err.retry_after_delay(d),
            (true, None) => err.retryable(),
            _ => err,
        }
    }
}

/// Whether a client error was caused by a refused certificate. hyper-rustls
/// wraps the rustls error in `io::Error`s (twice), and `io::Error::source`
/// skips the wrapped error, so each `io::Error` is opened with `get_ref`.
pub(crate) fn is_tls_refusal(err: &hyper_util::client::legacy::Error) -> bool {
    fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && refused(inner)
        {
            return true;
        }
        e.source().is_some_and(refused)
    }
    refused(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: u16) -> Error {
        HttpError::Status {
            status: s,
            url: "u".into(),
            retry_after: Some(Duration::from_secs(2)),
        }
        .into()
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(status(404).kind(), ErrorKind::NotFound);
        assert!(!status(404).is_retryable());
        assert_eq!(status(403).kind(), ErrorKind::Auth);
        assert_eq!(status(412).kind(), ErrorKind::RemoteChanged);
        let e = status(503);
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert!(status(429).is_retryable());
        assert!(!status(501).is_retryable());
        assert_eq!(status(400).kind(), ErrorKind::Protocol);
        let e: Error = HttpError::RangeIgnored {
            asked: ByteRange::new(1, 2),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.source_is_http());
    }

    trait SourceIsHttp {
        fn source_is_http(&self) -> bool;
    }
    impl SourceIsHttp for Error {
        fn source_is_http(&self) -> bool {
            std::error::Error::source(self)
                .and_then(|s| s.downcast_ref::<HttpError>())
                .is_some()
        }
    }
}
