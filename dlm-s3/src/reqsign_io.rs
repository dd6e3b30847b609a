//! reqsign's I/O on dlm's stack: files through tokio, HTTP (instance
//! metadata, STS, SSO) through dlm-http's client, so credential lookups use
//! the same TLS roots and proxies as every other request.

use bytes::Bytes;
use dlm_http::HttpClient;
use http::HeaderMap;
use reqsign_core::{Error as SignError, ErrorKind as SignErrorKind, FileRead, HttpSend};

/// Largest credential-endpoint response read, in bytes.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Reads credential and config files with tokio.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TokioFiles;

impl FileRead for TokioFiles {
    async fn file_read(&self, path: &str) -> reqsign_core::Result<Vec<u8>> {
        tokio::fs::read(path).await.map_err(|e| {
            SignError::new(SignErrorKind::ConfigInvalid, format!("read {path}")).with_source(e)
        })
    }
}

/// Sends reqsign's requests with dlm-http. Never logs bodies or headers:
/// they carry credentials.
#[derive(Debug, Clone)]
pub(crate) struct DlmHttp(pub(crate) HttpClient);

impl HttpSend for DlmHttp {
    async fn http_send(
        &self,
        req: http::Request<Bytes>,
    ) -> reqsign_core::Result<http::Response<Bytes>> {
        let (parts, body) = req.into_parts();
        let url = url::Url::parse(&parts.uri.to_string()).map_err(|e| {
            SignError::new(SignErrorKind::RequestInvalid, "credential request URL").with_source(e)
        })?;
        let resp = self
            .0
            .send_with_body(parts.method, &url, &parts.headers, body)
            .await
            .map_err(|e| {
                SignError::new(SignErrorKind::Unexpected, "credential request failed")
                    .with_source(e)
            })?;
        let status = resp.status();
        let headers: HeaderMap = resp.headers().clone();
        let body = self
            .0
            .read_body(resp.response.into_body(), MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| {
                SignError::new(
                    SignErrorKind::Unexpected,
                    format!("credential response: {e}"),
                )
            })?;
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}
