//! `S3Source`: one object, probed with `HeadObject` and read with ranged
//! `GetObject` requests that carry `If-Match`. A small object found by a
//! listing is probed with its whole `GetObject` instead, whose body then
//! serves the first read: one request per object, not two.

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
///
/// Objects a listing found at no more than [`PREFETCH_MAX_BYTES`] are probed
/// with a whole `GetObject` (same headers as `HeadObject`), and its body
/// serves the engine's first read from byte 0.
pub struct S3Source {
    client: S3Client,
    location: S3Location,
    etag: Mutex<Option<HeaderValue>>,
    /// The listing's size: small objects are probed with a GET.
    listed_len: Option<u64>,
    /// That GET's response, until the first read from byte 0 takes its body.
    prefetched: Mutex<Option<dlm_http::HttpResponse>>,
}

/// Largest listed object probed with a whole `GetObject`, in bytes (below
/// the engine's smallest chunk, so the first read is the whole object).
pub const PREFETCH_MAX_BYTES: u64 = 4 << 20;

impl std::fmt::Debug for S3Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Source")
            .field("location", &self.location)
            .field("listed_len", &self.listed_len)
            .finish_non_exhaustive()
    }
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
            listed_len: None,
            prefetched: Mutex::new(None),
        })
    }

    /// A source for an object a listing reported at `len` bytes.
    pub(crate) fn listed(
        client: S3Client,
        location: S3Location,
        len: u64,
    ) -> Result<Self, S3Error> {
        let mut s = Self::new(client, location)?;
        s.listed_len = Some(len);
        Ok(s)
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
        let small = self.listed_len.is_some_and(|l| l <= PREFETCH_MAX_BYTES);
        let method = if small { Method::GET } else { Method::HEAD };
        let resp = match self.send(method.clone(), &h).await {
            Ok(r) => r,
            Err(S3Error::Service {
                status: 400 | 403, ..
            }) if method == Method::HEAD => {
                // A HEAD error has no body: ask for one byte to learn the error's code
                // (SignatureDoesNotMatch, AccessDenied) or the bucket's region, which
                // re-targets the bucket; then HEAD once more.
                let mut one = HeaderMap::new();
                one.insert(RANGE, HeaderValue::from_static("bytes=0-0"));
                self.send(Method::GET, &one).await?;
                self.send(method, &h).await?
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
        if small && resp.status() == StatusCode::OK {
            *self
                .prefetched
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(resp);
        }
        Ok(probe)
    }

    async fn open(&self, _cx: &Context, range: ReadRange) -> Result<BodyStream> {
        if range.start() == 0
            && let Some(resp) = self
                .prefetched
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        {
            // The probe's GET carried the whole object; the engine stops at the range's end.
            return Ok(self.client.http().body_stream(resp.response.into_body()));
        }
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
        let resp = match self.send(Method::GET, &h).await {
            // The engine asks only for ranges inside the probed length; a
            // server that checks the range before If-Match (s3s-fs) answers 416
            // when the object was replaced by a shorter one.
            Err(S3Error::Service { status: 416, .. }) if expected.is_some() => {
                return Err(dlm_core::Error::new(
                    dlm_core::ErrorKind::RemoteChanged,
                    format!(
                        "{}: the object no longer holds {}: it changed",
                        self.location.display(),
                        wanted.as_deref().unwrap_or("the range")
                    ),
                ));
            }
            other => other?,
        };
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
