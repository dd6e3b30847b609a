//! `FtpError` and its mapping onto `dlm_core::Error`.

use dlm_core::{Error, ErrorKind};

/// What can go wrong over FTP. Converts into [`dlm_core::Error`] with a kind
/// and a retry decision.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FtpError {
    /// The URL is not `ftp://host[:port]/path`.
    #[error("invalid FTP URL: {0}")]
    InvalidUrl(String),
    /// The server answered a command with an error reply (RFC 959 §4.2).
    #[error("FTP {code} from {host}: {text}")]
    Reply {
        /// Reply code.
        code: u32,
        /// Reply text (never contains the password).
        text: String,
        /// The server.
        host: String,
    },
    /// Connecting, the TLS handshake or the transfer failed.
    #[error("FTP connection to {host} failed: {message}")]
    Connection {
        /// The server.
        host: String,
        /// What failed.
        message: String,
        /// Whether a certificate was refused (never retried).
        tls_refused: bool,
    },
    /// No data arrived for the idle timeout.
    #[error("no data from {host} for {secs} s")]
    IdleTimeout {
        /// The server.
        host: String,
        /// The timeout in seconds.
        secs: u64,
    },
    /// The server did not answer a command within
    /// [`FtpConfig::reply_timeout`](crate::FtpConfig::reply_timeout).
    #[error("no reply from {host} to {command} within {secs} s")]
    ReplyTimeout {
        /// The server.
        host: String,
        /// The command (or what was awaited), without credentials.
        command: String,
        /// The timeout in seconds.
        secs: f64,
    },
    /// TLS configuration failed (unreadable CA file).
    #[error("TLS setup: {0}")]
    Tls(String),
    /// A directory listing broke a limit (size, depth, entries).
    #[error("FTP listing: {0}")]
    Listing(String),
    /// `~/.netrc` could not be read.
    #[error("netrc: {0}")]
    Netrc(String),
}

impl FtpError {
    /// Whether the server refused a session for having too many from us
    /// (`421 Too many connections`, `421 There are too many connections from
    /// your internet address`): a limit, not an outage.
    pub fn is_connection_limit(&self) -> bool {
        match self {
            Self::Reply {
                code: 421, text, ..
            } => {
                let t = text.to_ascii_lowercase();
                t.contains("too many") || t.contains("connections")
            }
            _ => false,
        }
    }

    fn classify(&self) -> (ErrorKind, bool) {
        match self {
            Self::InvalidUrl(_) | Self::Tls(_) | Self::Netrc(_) => (ErrorKind::InvalidInput, false),
            Self::Listing(_) => (ErrorKind::Protocol, false),
            Self::Reply { code, .. } => match code {
                530 | 532 => (ErrorKind::Auth, false),
                550 | 553 => (ErrorKind::NotFound, false),
                // 421 too many connections / service closing, 425/426 data connection trouble, 45x transient.
                421 | 425 | 426 | 450 | 451 | 452 => (ErrorKind::Network, true),
                400..=499 => (ErrorKind::Network, true),
                _ => (ErrorKind::Protocol, false),
            },
            Self::Connection { tls_refused, .. } => (ErrorKind::Network, !tls_refused),
            Self::IdleTimeout { .. } | Self::ReplyTimeout { .. } => (ErrorKind::Network, true),
        }
    }
}

impl From<FtpError> for Error {
    fn from(e: FtpError) -> Self {
        let (kind, retry) = e.classify();
        let limit = e.is_connection_limit();
        let mut err = Error::new(kind, e.to_string()).with_source(e);
        if limit {
            err = err.connection_limit();
        }
        if retry { err.retryable() } else { err }
    }
}

/// Converts suppaftp's error for `host`.
pub(crate) fn from_suppaftp(host: &str, e: suppaftp::FtpError) -> FtpError {
    match e {
        suppaftp::FtpError::UnexpectedResponse(r) => {
            let text = String::from_utf8_lossy(&r.body).trim().to_string();
            // suppaftp maps codes it does not know to 0; the text starts with the code.
            let code = match r.status.code() {
                0 => text.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0),
                c => c,
            };
            FtpError::Reply {
                code,
                text,
                host: host.to_string(),
            }
        }
        suppaftp::FtpError::SecureError(m) => FtpError::Connection {
            host: host.to_string(),
            tls_refused: m.contains("certificate") || m.contains("Certificate"),
            message: m,
        },
        other => FtpError::Connection {
            host: host.to_string(),
            message: other.to_string(),
            tls_refused: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u32) -> Error {
        FtpError::Reply {
            code,
            text: "x".into(),
            host: "h".into(),
        }
        .into()
    }

    #[test]
    fn replies_map_to_kinds() {
        assert_eq!(reply(530).kind(), ErrorKind::Auth);
        assert!(!reply(530).is_retryable());
        assert_eq!(reply(550).kind(), ErrorKind::NotFound);
        assert!(reply(421).is_retryable());
        let limit: Error = FtpError::Reply {
            code: 421,
            text: "421 There are too many connections from your internet address.".into(),
            host: "h".into(),
        }
        .into();
        assert!(limit.is_connection_limit() && limit.is_retryable());
        assert!(!reply(421).is_connection_limit());
        assert!(reply(426).is_retryable());
        assert_eq!(reply(502).kind(), ErrorKind::Protocol);
    }
}
