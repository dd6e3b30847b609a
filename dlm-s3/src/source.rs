//! `S3Source`: one object, probed with `HeadObject` and read with ranged
//! `GetObject` requests that carry `If-Match`.

use std::sync::{Mutex, PoisonError};

use dlm_core::{BodyStream, Capabilities, Context, Probe, ReadRange, Result, Source};
use http::header::{
    CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderValue, IF_MATCH, LAST_MODIFIED, RANGE,
};
use http::{HeaderMap, Method, StatusCode};

use crate::{S3Client, S3Error, S3Location, checksum};

/// An object as a [`Source`].
///
/// `probe` sends `HeadObject` with `x-amz-checksum-mode: ENABLED`: length,
/// ETag (the validator), `Last-Modified`, and the digest to verify against
/// (see the crate docs). Each `open` is a `GetObject` with `Range` and
/// `If-Match: <ETag>`, so an object replaced mid-download answers `412` and
/// the download restarts (`remote-changed`); a response whose `ETag`
/// differs counts the same (some S3-compatible servers ignore `If-Match`).
#[derive(Debug)]
pub struct S3Source {
    client: S3Client,
    location: S3Location,
    etag: Mutex<Option<HeaderValue>>,
}

impl S3Source {
    /// A source for the object at `location`, through `client`.
    ///
    /// # Errors
    /// [`S3Error::InvalidInput`] when `location` names a prefix (see
    /// [`S3Listing`](crate::S3Listing)).
    pub fn new(client: S3Client, location: S3Location) -> Result<Self, S3Error> {
        if location.is_prefix() {
            return Err(S3Error::InvalidInput(format!(
                "s3://{} names a prefix, not an object",
                location.display()
            )));
        }
        Ok(Self {
            client,
            location,
            etag: Mutex::new(None),
        })
    }

    async fn send(
        &self,
        method: Method,
        headers: &HeaderMap,
    ) -> Result<dlm_http::HttpResponse, S3Error> {
        let resp = self
            .client
            .send(
                method,
                &self.location.bucket,
                &self.location.key,
                &[],
                headers,
            )
            .await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self.client.error_for(resp, &self.location.display()).await)
    }
}

fn header(h: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl Source for S3Source {
    fn identity(&self) -> String {
        format!("s3://{}", self.location.display())
    }

    async fn probe(&self, _cx: &Context) -> Result<Probe> {
        let mut h = HeaderMap::new();
        h.insert("x-amz-checksum-mode", HeaderValue::from_static("ENABLED"));
        let resp = match self.send(Method::HEAD, &h).await {
            Ok(r) => r,
            Err(S3Error::Service {
                status: 400 | 403, ..
            }) => {
                // A HEAD error has no body: ask for one byte to learn the error's code
                // (SignatureDoesNotMatch, AccessDenied) or the bucket's region, which
                // re-targets the bucket; then HEAD once more.
                let mut one = HeaderMap::new();
                one.insert(RANGE, HeaderValue::from_static("bytes=0-0"));
                self.send(Method::GET, &one).await?;
                self.send(Method::HEAD, &h).await?
            }
            Err(e) => return Err(e.into()),
        };
        let rh = resp.headers();
        let len = header(rh, CONTENT_LENGTH)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| S3Error::BadResponse {
                resource: self.location.display(),
                message: "HeadObject without Content-Length".into(),
            })?;
        let mut probe = Probe::new(Some(len), Capabilities::default().with_ranges(true));
        probe.etag = header(rh, ETAG).map(str::to_string);
        probe.last_modified =
            header(rh, LAST_MODIFIED).and_then(|v| httpdate::parse_http_date(v).ok());
        probe.content_type = header(rh, CONTENT_TYPE).map(str::to_string);
        probe.checksums = checksum::published(rh);
        probe.file_name = self
            .location
            .key
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        *self.etag.lock().unwrap_or_else(PoisonError::into_inner) = rh.get(ETAG).cloned();
        Ok(probe)
    }

    async fn open(&self, _cx: &Context, range: ReadRange) -> Result<BodyStream> {
        let mut h = HeaderMap::new();
        let wanted = match range {
            ReadRange::Bounded(b) => b.to_http_inclusive().map(|(a, z)| format!("bytes={a}-{z}")),
            ReadRange::From(0) => None,
            ReadRange::From(s) => Some(format!("bytes={s}-")),
        };
        if let Some(r) = &wanted
            && let Ok(v) = HeaderValue::from_str(r)
        {
            h.insert(RANGE, v);
        }
        if let Some(etag) = self
            .etag
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            h.insert(IF_MATCH, etag);
        }
        let expected = h.get(IF_MATCH).cloned();
        let resp = self.send(Method::GET, &h).await?;
        // Servers that ignore If-Match (s3s-fs) still name the object's ETag.
        if let (Some(want), Some(got)) = (&expected, resp.headers().get(ETAG))
            && want != got
        {
            return Err(S3Error::Service {
                status: 412,
                code: "PreconditionFailed".into(),
                message: format!(
                    "the object changed: ETag {} instead of {}",
                    got.to_str().unwrap_or("?"),
                    want.to_str().unwrap_or("?")
                ),
                resource: self.location.display(),
                retry_after: None,
            }
            .into());
        }
        if wanted.is_some() && resp.status() != StatusCode::PARTIAL_CONTENT && range.start() > 0 {
            return Err(S3Error::BadResponse {
                resource: self.location.display(),
                message: format!("asked for a range, got {}", resp.status()),
            }
            .into());
        }
        Ok(self.client.http().body_stream(resp.response.into_body()))
    }
}
