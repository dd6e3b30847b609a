//! `HttpClient`: one pooled hyper client with TLS, proxies, redirects and
//! credentials, shared by every protocol layered on HTTP.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use dlm_core::{BodyStream, redact_url};
use futures::StreamExt;
use http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, HeaderName, HeaderValue, LOCATION, PROXY_AUTHORIZATION,
    USER_AGENT,
};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioExecutor;
use percent_encoding::percent_decode_str;
use url::Url;

use crate::connector::ProxyConnector;
use crate::error::is_tls_refusal;
use crate::{HttpConfig, HttpError};

/// Size of each HTTP/1 connection's read buffer, in bytes: one `recv` reads
/// at most this much, and a body frame is at most this long. 256 KiB frames
/// are written to the output without being copied into the engine's write
/// buffer, and a GiB takes 4,096 reads instead of 16,384 at 64 KiB.
const READ_BUFFER_BYTES: usize = 256 << 10;

/// A response after redirects, with the URL that produced it.
#[derive(Debug)]
pub struct HttpResponse {
    /// The final URL (after redirects), credentials included as given.
    pub url: Url,
    /// The response head and streaming body.
    pub response: http::Response<Incoming>,
}

impl HttpResponse {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }
}

struct Inner {
    client: Client<HttpsConnector<ProxyConnector>, Full<Bytes>>,
    config: HttpConfig,
    headers: HeaderMap,
    proxies: Option<Arc<Matcher>>,
}

/// A pooled HTTP/1.1 (and optionally HTTP/2) client over rustls. Cheap to
/// clone; clones share the connection pool. Protocols layered on HTTP (S3,
/// IPFS gateways, trackers, web seeds) build requests through it.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn parse_headers(config: &HttpConfig) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::new();
    map.insert(
        USER_AGENT,
        HeaderValue::from_str(&config.user_agent)
            .map_err(|_| HttpError::InvalidHeader("User-Agent".into()))?,
    );
    for (k, v) in &config.headers {
        let name = HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| HttpError::InvalidHeader(k.clone()))?;
        let value =
            HeaderValue::from_str(v.trim()).map_err(|_| HttpError::InvalidHeader(k.clone()))?;
        map.append(name, value);
    }
    Ok(map)
}

fn proxy_matcher(config: &HttpConfig) -> Option<Arc<Matcher>> {
    if let Some(p) = &config.proxy {
        let m = Matcher::builder()
            .all(p.clone())
            .no(config.no_proxy.clone().unwrap_or_default())
            .build();
        return Some(Arc::new(m));
    }
    config.proxy_from_env.then(|| Arc::new(Matcher::from_env()))
}

/// Whether two URLs share scheme, host and port (RFC 6454 origin).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl HttpClient {
    /// A client for `config`.
    ///
    /// # Errors
    /// [`HttpError::Tls`] when the CA file is unreadable or empty,
    /// [`HttpError::InvalidHeader`] for a malformed header.
    pub fn new(config: HttpConfig) -> Result<Self, HttpError> {
        let headers = parse_headers(&config)?;
        let proxies = proxy_matcher(&config);
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let tls =
            dlm_tls::client_config(&config.tls()).map_err(|e| HttpError::Tls(e.to_string()))?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1();
        let connector = ProxyConnector {
            http,
            proxies: proxies.clone(),
        };
        let https = if config.http2 {
            builder.enable_http2().wrap_connector(connector)
        } else {
            builder.wrap_connector(connector)
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .http2_adaptive_window(true)
            .http1_read_buf_exact_size(READ_BUFFER_BYTES)
            .build(https);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                headers,
                proxies,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// Basic credentials for `url`: its userinfo, else the netrc entry for its host.
    fn credentials(&self, url: &Url) -> Result<Option<HeaderValue>, HttpError> {
        let (user, pass) = if !url.username().is_empty() {
            let user = percent_decode_str(url.username())
                .decode_utf8_lossy()
                .into_owned();
            let pass = url
                .password()
                .map(|p| percent_decode_str(p).decode_utf8_lossy().into_owned())
                .unwrap_or_default();
            (user, pass)
        } else {
            let Some(host) = url.host_str() else {
                return Ok(None);
            };
            match self
                .inner
                .config
                .netrc
                .credentials(host)
                .map_err(HttpError::Netrc)?
            {
                Some(c) => (c.login, c.password),
                None => return Ok(None),
            }
        };
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let mut v = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| HttpError::InvalidHeader("Authorization".into()))?;
        v.set_sensitive(true);
        Ok(Some(v))
    }

    /// Sends `method url` with `headers` (on top of the configured ones),
    /// following up to `max_redirects` redirects (with 0, a redirect response
    /// is returned as it is). Credentials (URL userinfo or
    /// netrc) go only to the original origin; `Range`, `If-Range` and the
    /// other given headers are kept on every hop. `Accept-Encoding: identity`
    /// is always sent, so byte offsets are offsets in the stored object.
    ///
    /// # Errors
    /// [`HttpError::Request`] when connecting or sending fails,
    /// [`HttpError::TooManyRedirects`], [`HttpError::BadRedirect`],
    /// [`HttpError::InvalidUrl`], [`HttpError::ResponseTimeout`]. Non-2xx
    /// statuses are returned as responses, not errors.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the request and its connection.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
    ) -> Result<HttpResponse, HttpError> {
        self.send_inner(method, url, headers, Bytes::new(), url)
            .await
    }

    /// As [`HttpClient::send`], for a request to `url` made on behalf of
    /// `origin`, the URL the user gave (a ranged request that goes straight
    /// to where an earlier request was redirected): credentials (the
    /// `Authorization` and `Cookie` headers, `origin`'s userinfo or netrc
    /// login) are sent only while the request is at `origin`'s origin,
    /// unless [`HttpConfig::location_trusted`](crate::HttpConfig::location_trusted).
    ///
    /// # Errors
    /// As [`HttpClient::send`].
    pub async fn send_for(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        origin: &Url,
    ) -> Result<HttpResponse, HttpError> {
        self.send_inner(method, url, headers, Bytes::new(), origin)
            .await
    }

    /// As [`HttpClient::send`], with a request body (sent again on each
    /// redirect hop; a `303` turns the request into a bodyless `GET`). For
    /// small bodies such as an STS or instance-metadata request.
    ///
    /// # Errors
    /// As [`HttpClient::send`].
    pub async fn send_with_body(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        self.send_inner(method, url, headers, body, url).await
    }

    async fn send_inner(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Bytes,
        origin: &Url,
    ) -> Result<HttpResponse, HttpError> {
        let mut method = method;
        let mut body = body;
        let trusted = self.inner.config.location_trusted;
        let auth = self.credentials(origin)?;
        let mut current = url.clone();
        let mut hops = 0;
        loop {
            if !matches!(current.scheme(), "http" | "https") || current.host_str().is_none() {
                return Err(HttpError::InvalidUrl(redact_url(&current)));
            }
            let mut target = current.clone();
            let _ = target.set_username("");
            let _ = target.set_password(None);
            target.set_fragment(None);
            let mut req = Request::builder()
                .method(method.clone())
                .uri(target.as_str())
                .body(Full::new(body.clone()))
                .map_err(|_| HttpError::InvalidUrl(redact_url(&current)))?;
            let h = req.headers_mut();
            h.extend(self.inner.headers.clone());
            h.extend(headers.clone());
            h.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
            if !trusted && !same_origin(origin, &current) {
                // Never forward credentials to another origin, even ones the
                // caller set as plain headers (curl does the same since 7.58).
                h.remove(AUTHORIZATION);
                h.remove(http::header::COOKIE);
            } else if let Some(a) = &auth {
                h.insert(AUTHORIZATION, a.clone());
            }
            if current.scheme() == "http"
                && let Some(p) = self.inner.proxies.as_ref().and_then(|m| {
                    let uri: http::Uri = target.as_str().parse().ok()?;
                    m.intercept(&uri)
                })
                && let Some(pa) = p.basic_auth()
            {
                h.insert(PROXY_AUTHORIZATION, pa.clone());
            }
            let timeout = self.inner.config.connect_timeout + self.inner.config.idle_timeout;
            let response = tokio::time::timeout(timeout, self.inner.client.request(req))
                .await
                .map_err(|_| HttpError::ResponseTimeout(timeout))?
                .map_err(|source| HttpError::Request {
                    url: redact_url(&current),
                    tls_refused: is_tls_refusal(&source),
                    source,
                })?;
            let status = response.status();
            // With `max_redirects` 0 the caller handles redirects (S3 re-signs for the new host).
            let follow = self.inner.config.max_redirects > 0;
            if !follow || !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
                return Ok(HttpResponse {
                    url: current,
                    response,
                });
            }
            hops += 1;
            if hops > self.inner.config.max_redirects {
                return Err(HttpError::TooManyRedirects(self.inner.config.max_redirects));
            }
            let next = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| current.join(loc).ok())
                .ok_or(HttpError::BadRedirect {
                    status: status.as_u16(),
                })?;
            if current.scheme() == "https"
                && next.scheme() == "http"
                && !self.inner.config.allow_insecure_redirect
            {
                return Err(HttpError::InsecureRedirect {
                    from: redact_url(&current),
                    to: redact_url(&next),
                });
            }
            tracing::debug!(from = %redact_url(&current), to = %redact_url(&next), %status, "redirect");
            if status.as_u16() == 303 {
                method = Method::GET;
                body = Bytes::new();
            }
            current = next;
        }
    }

    /// A `GET` of `url` whose status must be 2xx: the response, or the
    /// failure as the engine classifies HTTP failures (a refused TLS
    /// certificate and bad URLs are not retried; 408, 429 and 5xx are, after
    /// `Retry-After` when given; 404/410 are not-found; 401/403 auth).
    ///
    /// # Errors
    /// As [`HttpClient::send`], and [`HttpError::Status`] for other statuses;
    /// all converted into `dlm_core::Error`.
    pub async fn get(&self, url: &Url, headers: &HeaderMap) -> dlm_core::Result<HttpResponse> {
        let resp = self.send(Method::GET, url, headers).await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(HttpError::Status {
                status: status.as_u16(),
                url: redact_url(&resp.url),
                retry_after: crate::headers::retry_after(resp.headers()),
            }
            .into());
        }
        Ok(resp)
    }

    /// [`HttpClient::get`] and [`HttpClient::read_body`]: a whole small
    /// body (a `.torrent`, a tracker reply, a block, a record) of at most
    /// `max` bytes.
    ///
    /// # Errors
    /// As those two.
    pub async fn get_bytes(
        &self,
        url: &Url,
        headers: &HeaderMap,
        max: usize,
    ) -> dlm_core::Result<Bytes> {
        let resp = self.get(url, headers).await?;
        self.read_body(resp.response.into_body(), max).await
    }

    /// Reads a whole small body (a tracker reply, an error document, a
    /// `.torrent`) of at most `max` bytes, with the idle timeout of
    /// [`HttpClient::body_stream`].
    ///
    /// # Errors
    /// [`HttpError::BodyTooLarge`] (not retryable) as soon as more than
    /// `max` bytes arrive; the body stream's errors (retryable).
    pub async fn read_body(&self, body: Incoming, max: usize) -> dlm_core::Result<Bytes> {
        let mut stream = self.body_stream(body);
        let mut out = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if out.len() + chunk.len() > max {
                return Err(HttpError::BodyTooLarge(max).into());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// Turns a response body into a stream of `Bytes` that fails with
    /// [`HttpError::IdleTimeout`] when no bytes arrive for the idle timeout.
    pub fn body_stream(&self, body: Incoming) -> BodyStream {
        let idle = self.inner.config.idle_timeout;
        futures::stream::unfold(Some(body), move |state| async move {
            let mut body = state?;
            loop {
                match tokio::time::timeout(idle, body.frame()).await {
                    Err(_) => return Some((Err(HttpError::IdleTimeout(idle).into()), None)),
                    Ok(None) => return None,
                    Ok(Some(Err(e))) => return Some((Err(HttpError::Body(e).into()), None)),
                    Ok(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data()
                            && !data.is_empty()
                        {
                            return Some((Ok(data), Some(body)));
                        }
                    }
                }
            }
        })
        .boxed()
    }
}
