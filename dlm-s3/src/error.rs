//! `S3Error` and its mapping onto `dlm_core::Error`; S3 error XML parsing.

use std::time::Duration;

use dlm_core::{Error, ErrorKind};

/// Longest error body read, in bytes (S3 error documents are a few hundred bytes).
pub const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// What can go wrong talking to S3. Converts into [`dlm_core::Error`] with a
/// kind and a retry decision. Messages never contain secrets or signatures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3Error {
    /// The input is not `s3://bucket[/key]`, or an option is malformed.
    #[error("invalid S3 input: {0}")]
    InvalidInput(String),
    /// The service answered with an error document (or a bare status).
    #[error(
        "S3 {status} {code} for {resource}{}",
        if message.is_empty() { String::new() } else { format!(": {message}") }
    )]
    Service {
        /// HTTP status.
        status: u16,
        /// The error `Code` (`NoSuchKey`, `AccessDenied`, `SlowDown`…), or
        /// the status text when the body had none (HEAD responses).
        code: String,
        /// The error `Message`.
        message: String,
        /// `bucket/key` (never a signed URL).
        resource: String,
        /// `Retry-After`, when the service sent one.
        retry_after: Option<Duration>,
    },
    /// No credentials were found (and anonymous access was not asked for).
    #[error(
        "S3 credentials: {0} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pick a profile with \
         AWS_PROFILE or --profile, or use --no-sign-request for a public bucket)"
    )]
    Credentials(String),
    /// Signing failed.
    #[error("S3 request signing: {0}")]
    Signing(String),
    /// A response did not parse (list XML, headers).
    #[error("S3 response from {resource}: {message}")]
    BadResponse {
        /// `bucket/key` or `bucket` for lists.
        resource: String,
        /// What was wrong.
        message: String,
    },
    /// The HTTP layer failed (connect, TLS, timeouts).
    #[error(transparent)]
    Http(#[from] dlm_http::HttpError),
}

impl S3Error {
    fn classify(&self) -> (ErrorKind, bool) {
        match self {
            Self::InvalidInput(_) => (ErrorKind::InvalidInput, false),
            Self::Credentials(_) | Self::Signing(_) => (ErrorKind::Auth, false),
            Self::BadResponse { .. } => (ErrorKind::Protocol, false),
            Self::Http(_) => (ErrorKind::Network, true),
            Self::Service { status, code, .. } => match (code.as_str(), *status) {
                ("NoSuchKey" | "NoSuchBucket" | "NoSuchUpload" | "NotFound", _) | (_, 404) => {
                    (ErrorKind::NotFound, false)
                }
                (
                    "AccessDenied"
                    | "SignatureDoesNotMatch"
                    | "InvalidAccessKeyId"
                    | "ExpiredToken"
                    | "InvalidToken"
                    | "TokenRefreshRequired"
                    | "AllAccessDisabled"
                    | "AccountProblem",
                    _,
                )
                | (_, 401 | 403) => (ErrorKind::Auth, false),
                ("PreconditionFailed", _) | (_, 412) => (ErrorKind::RemoteChanged, false),
                ("InvalidRange", _) | (_, 416) => (ErrorKind::RangeNotSatisfied, false),
                ("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout", _)
                | (_, 500 | 502 | 503 | 504 | 429) => (ErrorKind::Network, true),
                _ => (ErrorKind::Protocol, false),
            },
        }
    }
}

impl From<S3Error> for Error {
    fn from(e: S3Error) -> Self {
        // The HTTP layer already knows its kinds (TLS refusals are not retried).
        if let S3Error::Http(h) = e {
            return h.into();
        }
        let (kind, retry) = e.classify();
        let retry_after = match &e {
            S3Error::Service { retry_after, .. } => *retry_after,
            _ => None,
        };
        let err = Error::new(kind, e.to_string()).with_source(e);
        match (retry, retry_after) {
            (true, Some(d)) => err.retry_after_delay(d),
            (true, None) => err.retryable(),
            _ => err,
        }
    }
}

/// `Code` and `Message` of an S3 error document
/// (`<Error><Code>NoSuchKey</Code><Message>…</Message>…</Error>`).
#[derive(Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ErrorDocument {
    #[serde(default)]
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
    /// `PermanentRedirect`: the bucket's regional endpoint.
    #[serde(default)]
    pub(crate) endpoint: Option<String>,
    /// `AuthorizationHeaderMalformed`/`PermanentRedirect`: the bucket's region.
    #[serde(default)]
    pub(crate) region: Option<String>,
}

/// Parses an error body; `None` when it is not an S3 error document.
pub(crate) fn parse_error_document(body: &[u8]) -> Option<ErrorDocument> {
    let text = std::str::from_utf8(body).ok()?;
    quick_xml::de::from_str::<ErrorDocument>(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> Error {
        S3Error::Service {
            status,
            code: code.into(),
            message: "m".into(),
            resource: "b/k".into(),
            retry_after: None,
        }
        .into()
    }

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(service(404, "NoSuchKey").kind(), ErrorKind::NotFound);
        assert_eq!(service(404, "NoSuchBucket").kind(), ErrorKind::NotFound);
        assert_eq!(service(403, "AccessDenied").kind(), ErrorKind::Auth);
        let e = service(403, "SignatureDoesNotMatch");
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(!e.is_retryable());
        assert!(service(503, "SlowDown").is_retryable());
        assert!(service(500, "InternalError").is_retryable());
        assert_eq!(
            service(412, "PreconditionFailed").kind(),
            ErrorKind::RemoteChanged
        );
        assert_eq!(service(400, "InvalidArgument").kind(), ErrorKind::Protocol);
    }

    #[test]
    fn parses_error_documents() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a/b</Key><RequestId>1</RequestId></Error>"#;
        let d = parse_error_document(xml).unwrap();
        assert_eq!(d.code, "NoSuchKey");
        assert_eq!(d.message, "The specified key does not exist.");
        let xml = br#"<Error><Code>PermanentRedirect</Code><Message>use the endpoint</Message><Endpoint>b.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>b</Bucket></Error>"#;
        let d = parse_error_document(xml).unwrap();
        assert_eq!(d.endpoint.as_deref(), Some("b.s3.eu-west-1.amazonaws.com"));
        assert!(parse_error_document(b"not xml").is_none());
    }
}
