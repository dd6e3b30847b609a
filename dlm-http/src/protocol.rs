//! `HttpProtocol`: registers `http` and `https` with a `ProtocolRegistry`.

use std::sync::Arc;

use dlm_core::{BoxSource, Error, ErrorKind, Input, Options, Protocol, ProtocolRegistry, Result};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use crate::{HttpClient, HttpConfig, HttpError, HttpSource};

/// URL schemes served by this crate.
pub const SCHEMES: &[&str] = &["http", "https"];

/// Per-download option key: an extra request header, `"Name: value"`; repeatable.
pub const OPTION_HEADER: &str = "http.header";

/// The HTTP protocol backend: one shared [`HttpClient`].
#[derive(Clone, Debug)]
pub struct HttpProtocol {
    client: HttpClient,
}

impl HttpProtocol {
    /// A backend with a client built from `config`.
    ///
    /// # Errors
    /// As [`HttpClient::new`].
    pub fn new(config: HttpConfig) -> Result<Self, HttpError> {
        Ok(Self {
            client: HttpClient::new(config)?,
        })
    }

    /// A backend sharing an existing client (and its connection pool).
    pub fn with_client(client: HttpClient) -> Self {
        Self { client }
    }

    /// The shared client.
    pub fn client(&self) -> &HttpClient {
        &self.client
    }
}

/// Parses `"Name: value"`.
fn parse_header(line: &str) -> Result<(HeaderName, HeaderValue)> {
    let bad = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!("header {line:?} is not \"Name: value\""),
        )
    };
    let (k, v) = line.split_once(':').ok_or_else(bad)?;
    let name = HeaderName::from_bytes(k.trim().as_bytes()).map_err(|_| bad())?;
    let value = HeaderValue::from_str(v.trim()).map_err(|_| bad())?;
    Ok((name, value))
}

impl Protocol for HttpProtocol {
    fn name(&self) -> &'static str {
        "http"
    }

    fn schemes(&self) -> &'static [&'static str] {
        SCHEMES
    }

    fn source(&self, input: &Input, options: &Options) -> Result<BoxSource> {
        let Input::Url(url) = input else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{input} is not an http(s) URL"),
            ));
        };
        let mut headers = HeaderMap::new();
        for line in options.get_all(OPTION_HEADER) {
            let (k, v) = parse_header(line)?;
            headers.append(k, v);
        }
        Ok(Arc::new(HttpSource::new(
            self.client.clone(),
            url.clone(),
            headers,
        )?))
    }
}

/// Registers `http` and `https` with `config`.
///
/// # Errors
/// As [`HttpClient::new`], or [`ErrorKind::InvalidInput`] when the schemes
/// are already registered.
pub fn register_with(registry: &mut ProtocolRegistry, config: HttpConfig) -> Result<()> {
    registry.register(HttpProtocol::new(config)?)
}

/// Registers `http` and `https` with the default configuration.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when the schemes are already registered.
pub fn register(registry: &mut ProtocolRegistry) -> Result<()> {
    register_with(registry, HttpConfig::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines() {
        let (k, v) = parse_header("X-Test:  a:b ").unwrap();
        assert_eq!(k, "x-test");
        assert_eq!(v, "a:b");
        assert!(parse_header("nocolon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[tokio::test]
    async fn registers_both_schemes() {
        let mut r = ProtocolRegistry::new();
        register(&mut r).unwrap();
        assert_eq!(r.schemes().collect::<Vec<_>>(), vec!["http", "https"]);
        assert!(register(&mut r).is_err());
        let src = r
            .source(&Input::parse("https://example.org/x.iso"), &Options::new())
            .unwrap();
        assert_eq!(src.identity_dyn(), "https://example.org/x.iso");
        let err = r
            .source(&Input::parse("ftp://example.org/x"), &Options::new())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
    }
}
