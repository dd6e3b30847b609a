//! A small client for the `dlmd` REST API, used by `dlm remote`.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::ErrorBody;

/// What went wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL is not `http://host:port`.
    #[error("invalid server URL {0:?}")]
    Url(String),
    /// Connecting or sending failed.
    #[error("cannot reach dlmd at {server}: {source}")]
    Connect {
        /// The server.
        server: String,
        /// The cause.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// Reading the response failed.
    #[error("reading the response failed: {0}")]
    Body(#[from] hyper::Error),
    /// The daemon answered with an error.
    #[error("{status}: {message} ({code})")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// Stable code.
        code: String,
        /// Message.
        message: String,
    },
    /// The response was not the JSON expected.
    #[error("unexpected response: {0}")]
    Decode(#[from] serde_json::Error),
}

/// A client for one daemon, authenticated with a bearer token.
#[derive(Clone, Debug)]
pub struct Client {
    server: String,
    token: String,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    /// A client for `server` (`http://127.0.0.1:6800`) with `token`.
    pub fn new(server: &str, token: &str) -> Self {
        Self {
            server: server.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The server this client talks to.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends a request and returns the raw successful response.
    ///
    /// # Errors
    /// [`ClientError`] for transport failures and API errors.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        let uri = format!("{}{path}", self.server);
        let mut req = Request::builder().method(method).uri(&uri).header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", self.token),
        );
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|_| ClientError::Url(uri.clone()))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|source| ClientError::Connect {
                server: self.server.clone(),
                source,
            })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => (e.error.code, e.error.message),
            Err(_) => (
                "unknown".into(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ),
        };
        Err(ClientError::Api {
            status,
            code,
            message,
        })
    }

    /// Sends a request with an optional JSON body and decodes the JSON answer.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let body = body.map(serde_json::to_vec).transpose()?;
        let resp = self.raw(method, path, body).await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&bytes)?)
    }
}
