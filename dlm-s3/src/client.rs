//! `S3Client`: signs and sends S3 requests through dlm-http, reads error
//! documents, and re-targets a bucket's region once when S3 says it lives
//! elsewhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use dlm_http::{HttpClient, HttpResponse, NetrcMode};
use http::{HeaderMap, Method};
use percent_encoding::utf8_percent_encode;
use url::Url;

use crate::address::{Addressing, QUERY};
use crate::error::{ErrorDocument, MAX_ERROR_BODY_BYTES, parse_error_document};
use crate::signer::S3Signer;
use crate::{S3Config, S3Error, profile};

/// The region used when nothing names one (S3's global default).
pub const DEFAULT_REGION: &str = "us-east-1";

/// Connect timeout of credential requests (instance metadata, STS, SSO).
const CREDENTIAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle timeout of credential requests.
const CREDENTIAL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

struct Inner {
    http: HttpClient,
    /// The client reqsign's credential providers use (short timeouts).
    credential_http: HttpClient,
    config: S3Config,
    /// The configured endpoint and region.
    home: (Addressing, S3Signer),
    /// Buckets that S3 said live in another region.
    moved: Mutex<HashMap<String, (Addressing, S3Signer)>>,
    custom_endpoint: bool,
}

/// A shared S3 client: one HTTP connection pool for every object of a
/// download or a prefix. Cheap to clone.
#[derive(Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("endpoint", &self.inner.home.0.base.as_str())
            .field("region", &self.inner.home.1.region())
            .finish_non_exhaustive()
    }
}

fn env(config: &S3Config, key: &str) -> Option<String> {
    if !config.use_environment {
        return None;
    }
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

impl S3Client {
    /// A client for `config`: the region from the config, `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1`; the
    /// endpoint from the config, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`,
    /// the profile's `endpoint_url`, else AWS's regional endpoint.
    ///
    /// # Errors
    /// [`S3Error::InvalidInput`] for an unusable endpoint URL;
    /// [`S3Error::Http`] when the HTTP client cannot be built (CA file);
    /// [`S3Error::Credentials`] as [`S3Config::use_environment`] explains.
    pub fn new(config: S3Config) -> Result<Self, S3Error> {
        let profile = config
            .profile
            .clone()
            .or_else(|| env(&config, "AWS_PROFILE"))
            .unwrap_or_else(|| "default".into());
        let from_profile = |key: &str| {
            config
                .use_environment
                .then(|| profile::setting(&profile, key))
                .flatten()
        };
        let region = config
            .region
            .clone()
            .or_else(|| env(&config, "AWS_REGION"))
            .or_else(|| env(&config, "AWS_DEFAULT_REGION"))
            .or_else(|| from_profile("region"))
            .unwrap_or_else(|| DEFAULT_REGION.into());
        if !crate::address::is_region(&region) {
            return Err(S3Error::InvalidInput(format!(
                "{region:?} is not a region name"
            )));
        }
        let endpoint = match config.endpoint_url.clone() {
            Some(u) => Some(u),
            None => env(&config, "AWS_ENDPOINT_URL_S3")
                .or_else(|| env(&config, "AWS_ENDPOINT_URL"))
                .or_else(|| from_profile("endpoint_url"))
                .map(|s| {
                    Url::parse(&s)
                        .map_err(|e| S3Error::InvalidInput(format!("endpoint URL {s:?}: {e}")))
                })
                .transpose()?,
        };
        let custom_endpoint = endpoint.is_some();
        let addressing = match endpoint {
            Some(base) => {
                if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
                    return Err(S3Error::InvalidInput(format!(
                        "endpoint {base} is not http(s)://host"
                    )));
                }
                Addressing {
                    base,
                    path_style: config.path_style.unwrap_or(true),
                }
            }
            None => {
                let mut a = Addressing::aws(&region)?;
                a.path_style = config.path_style.unwrap_or(false);
                a
            }
        };
        // Requests carry SigV4 signatures: a netrc login would replace their
        // `Authorization` header, and must not reach the credential endpoints.
        let http_config = config.http.clone().with_netrc(NetrcMode::Off);
        // S3 redirects must be re-signed for the new host: never followed blindly.
        let http = HttpClient::new(http_config.clone().with_max_redirects(0))?;
        // Credential lookups (instance metadata above all) must fail fast off
        // AWS instead of waiting out the download's connect timeout.
        let credential_http = HttpClient::new(
            http_config
                .with_connect_timeout(CREDENTIAL_CONNECT_TIMEOUT)
                .with_idle_timeout(CREDENTIAL_IDLE_TIMEOUT),
        )?;
        let signer = S3Signer::new(&config, &region, &credential_http)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                credential_http,
                config,
                home: (addressing, signer),
                moved: Mutex::new(HashMap::new()),
                custom_endpoint,
            }),
        })
    }

    /// The HTTP client (for streaming bodies).
    pub(crate) fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &S3Config {
        &self.inner.config
    }

    /// The region requests are signed for by default.
    pub fn region(&self) -> &str {
        self.inner.home.1.region()
    }

    fn target(&self, bucket: &str) -> (Addressing, S3Signer) {
        self.inner
            .moved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(bucket)
            .cloned()
            .unwrap_or_else(|| self.inner.home.clone())
    }

    /// Signs and sends a bodyless request for `key` in `bucket`. A response
    /// saying the bucket lives in another region (`301 PermanentRedirect`,
    /// `400 AuthorizationHeaderMalformed`, or any status with
    /// `x-amz-bucket-region`) re-targets that bucket once and resends.
    /// Error statuses are returned as responses: see [`S3Client::error_for`].
    ///
    /// # Errors
    /// [`S3Error::Http`] when the request fails; signing errors.
    pub(crate) async fn send(
        &self,
        method: Method,
        bucket: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: &HeaderMap,
    ) -> Result<HttpResponse, S3Error> {
        let mut retargeted = false;
        loop {
            let (addressing, signer) = self.target(bucket);
            let mut url = addressing.object_url(bucket, key)?;
            set_query(&mut url, query);
            let mut h = headers.clone();
            signer.sign(&method, &url, &mut h).await?;
            let resp = self.inner.http.send(method.clone(), &url, &h).await?;
            let status = resp.status().as_u16();
            if retargeted || !matches!(status, 301 | 307 | 400) {
                return Ok(resp);
            }
            let header_region = resp
                .headers()
                .get("x-amz-bucket-region")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let (_, _, doc) = self.error_document(resp).await;
            let region = header_region.or_else(|| doc.region.clone());
            let Some(region) = region.filter(|r| r != signer.region()) else {
                // Not a region problem: the error as S3 stated it.
                let fallback = if status == 400 {
                    "BadRequest"
                } else {
                    "PermanentRedirect"
                };
                let resource = format!("{bucket}/{key}");
                return Err(service_error(status, None, doc, &resource, fallback));
            };
            if !crate::address::is_region(&region) {
                // Never into a host name or a signature: the service is broken or hostile.
                return Err(S3Error::BadResponse {
                    resource: format!("{bucket}/{key}"),
                    message: format!(
                        "status {status} names the bucket's region as {:?}, which is not a region name",
                        region.chars().take(64).collect::<String>()
                    ),
                });
            }
            tracing::debug!(bucket, %region, "bucket lives in another region: re-targeting");
            // AWS: the bucket's regional endpoint. A custom endpoint stays; only the
            // signing region changes (MinIO and Ceph answer a wrong one with 400).
            let a = if self.inner.custom_endpoint {
                addressing.clone()
            } else {
                let mut a = Addressing::aws(&region)?;
                a.path_style = addressing.path_style;
                a
            };
            let s = S3Signer::new(&self.inner.config, &region, &self.inner.credential_http)?;
            self.inner
                .moved
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(bucket.to_string(), (a, s));
            retargeted = true;
        }
    }

    /// Reads a whole (small) response body, at most `max` bytes.
    ///
    /// # Errors
    /// [`S3Error::BadResponse`] when the body is larger; the body's errors.
    pub(crate) async fn read_body(&self, resp: HttpResponse, max: usize) -> Result<Bytes, S3Error> {
        self.inner
            .http
            .read_body(resp.response.into_body(), max)
            .await
            .map_err(|e| S3Error::BadResponse {
                resource: "response body".into(),
                message: e.to_string(),
            })
    }

    /// The error for a non-success response: its error document's `Code`
    /// and `Message`, or the bare status for bodyless (`HEAD`) responses.
    pub(crate) async fn error_for(&self, resp: HttpResponse, resource: &str) -> S3Error {
        let (status, retry_after, doc) = self.error_document(resp).await;
        let fallback = status
            .canonical_reason()
            .unwrap_or("Error")
            .replace(' ', "");
        service_error(status.as_u16(), retry_after, doc, resource, &fallback)
    }

    /// A response's status, `Retry-After` and error document (empty when
    /// the body is missing or not one).
    async fn error_document(
        &self,
        resp: HttpResponse,
    ) -> (http::StatusCode, Option<Duration>, ErrorDocument) {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = self
            .read_body(resp, MAX_ERROR_BODY_BYTES)
            .await
            .unwrap_or_default();
        (
            status,
            retry_after,
            parse_error_document(&body).unwrap_or_default(),
        )
    }

    /// A presigned `GET` URL for `key` in `bucket`, valid for `expires`.
    ///
    /// # Errors
    /// [`S3Error::InvalidInput`] for an anonymous client or an expiry
    /// outside 1 s to 7 days; credential and signing errors.
    pub async fn presign(
        &self,
        bucket: &str,
        key: &str,
        expires: Duration,
    ) -> Result<Url, S3Error> {
        let (addressing, signer) = self.target(bucket);
        let url = addressing.object_url(bucket, key)?;
        signer.presign(&url, expires).await
    }
}

/// An [`S3Error::Service`] from an error document; `fallback` names the
/// error when the document has no `Code`.
fn service_error(
    status: u16,
    retry_after: Option<Duration>,
    doc: ErrorDocument,
    resource: &str,
    fallback: &str,
) -> S3Error {
    S3Error::Service {
        status,
        code: if doc.code.is_empty() {
            fallback.to_string()
        } else {
            doc.code
        },
        message: doc.message,
        resource: resource.to_string(),
        retry_after,
    }
}

fn set_query(url: &mut Url, query: &[(&str, &str)]) {
    if query.is_empty() {
        url.set_query(None);
        return;
    }
    let q: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                utf8_percent_encode(k, QUERY).to_string()
            } else {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, QUERY),
                    utf8_percent_encode(v, QUERY)
                )
            }
        })
        .collect();
    url.set_query(Some(&q.join("&")));
}
