//! A trustless HTTP gateway client (spec: Trustless Gateway, IPIP-402):
//! single blocks with `?format=raw`, DAGs with `?format=car` (`dag-scope`,
//! `entity-bytes`), IPNS records with `?format=ipns-record`. Nothing a
//! gateway sends is used before it is checked against its CID.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use cid::Cid;
use dlm_core::BodyStream;
use dlm_http::HttpClient;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use url::Url;

use crate::IpfsError;
use crate::block::{MAX_BLOCK_BYTES, verify};
use crate::car::CarReader;

/// `Accept` for one raw block.
pub const RAW_MEDIA_TYPE: &str = "application/vnd.ipld.raw";
/// `Accept` for a CARv1 in depth-first order without duplicates.
pub const CAR_MEDIA_TYPE: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";
/// `Accept` for a signed IPNS record.
pub const IPNS_RECORD_MEDIA_TYPE: &str = "application/vnd.ipfs.ipns-record";

/// The largest IPNS record accepted, bytes (the IPNS spec's 10 KiB bound).
pub const MAX_IPNS_RECORD_BYTES: usize = 10 * 1024;

/// What part of a DAG a CAR request asks for (the spec's `dag-scope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DagScope {
    /// The blocks along the path and the terminal block.
    Block,
    /// The blocks needed to read the entity (for a file: the bytes in
    /// `entity-bytes`).
    Entity,
    /// The whole DAG below the terminal block.
    All,
}

impl DagScope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Entity => "entity",
            Self::All => "all",
        }
    }
}

/// One trustless gateway.
#[derive(Debug)]
pub struct Gateway {
    base: Url,
    /// `base` without credentials, for messages.
    name: String,
    client: HttpClient,
    dropped: AtomicBool,
}

impl Gateway {
    /// A gateway at `base` (an `http(s)://` URL; `/ipfs/…` is appended to
    /// its path).
    pub fn new(base: Url, client: HttpClient) -> Self {
        let mut base = base;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        Self {
            name: dlm_core::redact_url(&base),
            base,
            client,
            dropped: AtomicBool::new(false),
        }
    }

    /// The base URL, as given (without credentials).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this gateway was dropped (it sent a bad block).
    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops using this gateway for the rest of the download.
    pub fn drop_gateway(&self, why: &str) {
        if !self.dropped.swap(true, Ordering::Relaxed) {
            tracing::warn!(gateway = %self.name(), "gateway dropped: {why}");
        }
    }

    fn url(&self, namespace: &str, root: &str, query: &[(&str, String)]) -> Result<Url, IpfsError> {
        let mut url = self
            .base
            .join(&format!("{namespace}/{root}"))
            .map_err(|e| self.error(e.to_string(), false))?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    fn error(&self, message: String, retryable: bool) -> IpfsError {
        IpfsError::Gateway {
            gateway: self.name.clone(),
            message,
            retryable,
        }
    }

    fn http_error(&self, source: dlm_core::Error) -> IpfsError {
        IpfsError::Http {
            gateway: self.name.clone(),
            source,
        }
    }

    fn accept(media_type: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(media_type));
        headers
    }

    /// One block by CID (`GET /ipfs/{cid}?format=raw`), verified.
    ///
    /// # Errors
    /// [`IpfsError::Http`] for failed requests and error statuses (404 and
    /// 410 as not-found); [`IpfsError::HashMismatch`] (and the gateway is
    /// dropped) when the bytes do not hash to `cid`.
    pub async fn block(&self, cid: &Cid) -> Result<Bytes, IpfsError> {
        let url = self.url("ipfs", &cid.to_string(), &[("format", "raw".into())])?;
        let body = self
            .client
            .get_bytes(&url, &Self::accept(RAW_MEDIA_TYPE), MAX_BLOCK_BYTES)
            .await
            .map_err(|e| self.http_error(e))?;
        self.check(cid, &body)?;
        Ok(body)
    }

    /// Checks a block this gateway sent; a mismatch drops the gateway.
    ///
    /// # Errors
    /// As [`verify`].
    pub fn check(&self, cid: &Cid, data: &[u8]) -> Result<(), IpfsError> {
        verify(cid, data, &self.name).inspect_err(|e| {
            if matches!(e, IpfsError::HashMismatch { .. }) {
                self.drop_gateway(&e.to_string());
            }
        })
    }

    /// A CAR of `cid`'s DAG (`GET /ipfs/{cid}?format=car&dag-scope=…`),
    /// with `entity_bytes` (first and last byte, inclusive) for
    /// [`DagScope::Entity`]. Blocks come unverified: pass each to
    /// [`Gateway::check`].
    ///
    /// # Errors
    /// As [`Gateway::block`] for the request; the CAR header's errors.
    pub async fn car(
        &self,
        cid: &Cid,
        scope: DagScope,
        entity_bytes: Option<(u64, u64)>,
    ) -> Result<CarReader<BodyStream>, dlm_core::Error> {
        let mut query = vec![
            ("format", "car".to_string()),
            ("dag-scope", scope.as_str().to_string()),
        ];
        if let Some((from, to)) = entity_bytes {
            query.push(("entity-bytes", format!("{from}:{to}")));
        }
        let url = self.url("ipfs", &cid.to_string(), &query)?;
        let resp = self
            .client
            .get(&url, &Self::accept(CAR_MEDIA_TYPE))
            .await
            .map_err(|e| self.http_error(e))?
            .response;
        if let Some(ct) = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            && !ct.starts_with("application/vnd.ipld.car")
        {
            return Err(self
                .error(format!("answered a CAR request with {ct:?}"), false)
                .into());
        }
        let stream = self.client.body_stream(resp.into_body());
        CarReader::new(stream).await
    }

    /// The signed IPNS record of `name` (`GET /ipns/{name}?format=ipns-record`),
    /// not yet validated, at most [`MAX_IPNS_RECORD_BYTES`].
    ///
    /// # Errors
    /// As [`Gateway::block`] for the request.
    pub async fn ipns_record(&self, name: &str) -> Result<Bytes, IpfsError> {
        let url = self.url("ipns", name, &[("format", "ipns-record".into())])?;
        self.client
            .get_bytes(
                &url,
                &Self::accept(IPNS_RECORD_MEDIA_TYPE),
                MAX_IPNS_RECORD_BYTES,
            )
            .await
            .map_err(|e| self.http_error(e))
    }
}
