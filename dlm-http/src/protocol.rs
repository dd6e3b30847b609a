//! `HttpProtocol`: registers `http` and `https` with a `ProtocolRegistry`.

use std::sync::Arc;

use dlm_core::{
    Error, ErrorKind, Input, Options, Protocol, ProtocolRegistry, Resolve, Result, Target,
};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use crate::{HttpClient, HttpConfig, HttpError, HttpSource};

/// URL schemes served by this crate.
pub const SCHEMES: &[&str] = &["http", "https"];

/// The options section of this protocol: `http.idle_timeout=2m` and the other
/// fields of [`HttpConfig`], plus [`OPTION_HEADER`].
pub const SECTION: &str = "http";

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

    /// An [`HttpSource`] for the URL, with the `http.header` options as
    /// extra request headers. When another registered protocol takes media
    /// types ([`Protocol::media_types`]), the URL is probed first (the
    /// engine reuses that probe) and handed to that protocol if its
    /// `Content-Type` is one of them (`application/x-bittorrent`).
    async fn resolve(&self, input: &Input, cx: &Resolve<'_>) -> Result<Target> {
        let source = Arc::new(match self.client_for(cx.options)? {
            Some(client) => HttpProtocol::with_client(client).source(input, cx.options)?,
            None => self.source(input, cx.options)?,
        });
        if cx.has_media_handlers() {
            let probe = source.probe_early().await?;
            if let Some(ct) = &probe.content_type
                && let Some(target) = cx.hand_off(ct, input).await
            {
                return target;
            }
        }
        Ok(Target::Source(source))
    }
}

impl HttpProtocol {
    /// A client of its own when `options` change [`HttpConfig`] fields
    /// (`http.idle_timeout=…`); `None` to share this protocol's.
    fn client_for(&self, options: &Options) -> Result<Option<HttpClient>> {
        let mut fields = Options::new();
        for (k, v) in options.section(SECTION) {
            if format!("{SECTION}.{k}") != OPTION_HEADER {
                fields = fields.with(format!("{SECTION}.{k}"), v);
            }
        }
        if fields.pairs.is_empty() {
            return Ok(None);
        }
        let config = dlm_core::config::apply_options(self.client.config(), SECTION, &fields)?;
        Ok(Some(HttpClient::new(config)?))
    }

    /// The source for `input` with `options`, unprobed.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a non-HTTP input or a malformed header option.
    pub fn source(&self, input: &Input, options: &Options) -> Result<HttpSource> {
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
        Ok(HttpSource::new(
            self.client.clone(),
            url.url().clone(),
            headers,
        )?)
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
            .await
            .unwrap();
        assert_eq!(src.identity_dyn(), "https://example.org/x.iso");
        let err = r
            .source(&Input::parse("ftp://example.org/x"), &Options::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
    }
}
