//! The TCP-level connector: direct, through an HTTP proxy (absolute-form for
//! `http://`, `CONNECT` tunnel for `https://`), or through SOCKS5.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A TCP stream that remembers whether requests on it go to a forward proxy
/// (and so must use absolute-form targets, RFC 9112 §3.2.2).
#[derive(Debug)]
pub(crate) struct ProxyStream {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Read for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for ProxyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.inner().connected().proxy(self.proxied)
    }
}

/// Chooses per destination between a direct connection and a proxy.
#[derive(Clone, Debug)]
pub(crate) struct ProxyConnector {
    pub(crate) http: HttpConnector,
    pub(crate) proxies: Option<Arc<Matcher>>,
}

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut http = self.http.clone();
        let intercept = self.proxies.as_ref().and_then(|m| m.intercept(&dst));
        Box::pin(async move {
            let Some(proxy) = intercept else {
                let io = http.call(dst).await?;
                return Ok(ProxyStream { io, proxied: false });
            };
            let proxy_uri = proxy.uri().clone();
            match proxy_uri.scheme_str() {
                Some("socks5" | "socks5h") => {
                    let mut socks = SocksV5::new(proxy_uri.clone(), http)
                        .local_dns(proxy_uri.scheme_str() == Some("socks5"));
                    if let Some((user, pass)) = proxy.raw_auth() {
                        socks = socks.with_auth(user.to_string(), pass.to_string());
                    }
                    let io = socks.call(dst).await?;
                    Ok(ProxyStream { io, proxied: false })
                }
                Some("http") => {
                    if dst.scheme_str() == Some("https") {
                        let mut tunnel = Tunnel::new(proxy_uri, http);
                        if let Some(auth) = proxy.basic_auth() {
                            tunnel = tunnel.with_auth(auth.clone());
                        }
                        let io = tunnel.call(dst).await?;
                        Ok(ProxyStream { io, proxied: false })
                    } else {
                        let io = http.call(proxy_uri).await?;
                        Ok(ProxyStream { io, proxied: true })
                    }
                }
                other => Err(format!(
                    "unsupported proxy scheme {other:?} (use http://, socks5:// or socks5h://)"
                )
                .into()),
            }
        })
    }
}
