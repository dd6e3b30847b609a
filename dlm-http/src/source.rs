//! `HttpSource`: one HTTP(S) resource, probed once and read by ranges.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use dlm_core::{
    BodyStream, ByteRange, Capabilities, Context, Error, Probe, ReadRange, Result, Source,
    redact_url,
};
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue, IF_RANGE, RANGE};
use http::{HeaderMap, Method, StatusCode};
use percent_encoding::percent_decode_str;
use url::Url;

use crate::{HttpClient, HttpError, content_disposition, headers};

/// What the probe learned and later requests reuse.
#[derive(Clone, Debug, Default)]
struct Probed {
    /// Where the redirects ended; ranged requests go straight there.
    url: Option<Url>,
    /// `If-Range` value: a strong ETag, else the raw Last-Modified.
    if_range: Option<HeaderValue>,
}

/// An HTTP or HTTPS URL as a [`Source`].
///
/// `probe` sends `GET` with `Range: bytes=0-0`: a `206` with `Content-Range`
/// gives the length and proves range support in one round trip (servers
/// that mishandle `HEAD` are fine too); a `200` means no ranges. Later
/// `open` calls go to the final URL after redirects, with `If-Range` so a
/// replaced object is detected (RFC 9110 §13.1.5).
#[derive(Debug)]
pub struct HttpSource {
    client: HttpClient,
    url: Url,
    headers: HeaderMap,
    probed: Mutex<Probed>,
    /// A probe made before the download started (to learn the media type
    /// while resolving), answered once by the next [`Source::probe`] if it is
    /// fresh, so resolving costs no extra round trip.
    early: Mutex<Option<(Instant, Probe)>>,
}

/// How long an early probe stands in for the engine's.
const EARLY_PROBE_FRESH: Duration = Duration::from_secs(30);

impl HttpSource {
    /// A source for `url` using `client`, with `headers` added to each request.
    ///
    /// # Errors
    /// [`HttpError::InvalidUrl`] when the URL is not `http`/`https` with a host.
    pub fn new(client: HttpClient, url: Url, headers: HeaderMap) -> Result<Self, HttpError> {
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(HttpError::InvalidUrl(redact_url(&url)));
        }
        Ok(Self {
            client,
            url,
            headers,
            probed: Mutex::new(Probed::default()),
            early: Mutex::new(None),
        })
    }

    /// Probes now and keeps the answer for the engine's first
    /// [`Source::probe`] (within 30 s): what resolution uses to learn the
    /// media type behind the URL.
    ///
    /// # Errors
    /// As [`Source::probe`].
    pub async fn probe_early(&self) -> Result<Probe> {
        let probe = self.fetch_probe().await?;
        *self.early.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), probe.clone()));
        Ok(probe)
    }

    fn probed(&self) -> Probed {
        self.probed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn status_error(&self, status: StatusCode, url: &Url, h: &HeaderMap) -> Error {
        HttpError::Status {
            status: status.as_u16(),
            url: redact_url(url),
            retry_after: headers::retry_after(h),
        }
        .into()
    }
}

/// The last non-empty path segment of `url`, percent-decoded.
fn url_file_name(url: &Url) -> Option<String> {
    let seg = url.path_segments()?.rev().find(|s| !s.is_empty())?;
    Some(percent_decode_str(seg).decode_utf8_lossy().into_owned())
}

fn range_header(r: ReadRange) -> Option<HeaderValue> {
    let v = match r {
        ReadRange::Bounded(b) => {
            let (first, last) = b.to_http_inclusive()?;
            format!("bytes={first}-{last}")
        }
        ReadRange::From(0) => return None,
        ReadRange::From(s) => format!("bytes={s}-"),
    };
    HeaderValue::from_str(&v).ok()
}

impl Source for HttpSource {
    fn identity(&self) -> String {
        redact_url(&self.url)
    }

    async fn probe(&self, _cx: &Context) -> Result<Probe> {
        let early = self
            .early
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((at, probe)) = early
            && at.elapsed() < EARLY_PROBE_FRESH
        {
            return Ok(probe);
        }
        self.fetch_probe().await
    }

    async fn open(&self, _cx: &Context, range: ReadRange) -> Result<BodyStream> {
        self.open_range(range).await
    }
}

impl HttpSource {
    /// One `GET` with `Range: bytes=0-0`: see the type's docs.
    async fn fetch_probe(&self) -> Result<Probe> {
        let mut h = self.headers.clone();
        h.insert(RANGE, HeaderValue::from_static("bytes=0-0"));
        let resp = self.client.send(Method::GET, &self.url, &h).await?;
        let status = resp.status();
        let rh = resp.headers().clone();
        let (len, ranges) = match status {
            StatusCode::PARTIAL_CONTENT | StatusCode::RANGE_NOT_SATISFIABLE => {
                let cr = headers::content_range(&rh).ok_or_else(|| HttpError::ContentRange {
                    asked: ByteRange::new(0, 1),
                    got: headers::raw_content_range(&rh),
                })?;
                (cr.complete, cr.complete.is_some())
            }
            s if s.is_success() => {
                let chunked = rh
                    .get(http::header::TRANSFER_ENCODING)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
                let len = if chunked {
                    None
                } else {
                    headers::content_length(&rh)
                };
                (len, false)
            }
            s => return Err(self.status_error(s, &resp.url, &rh)),
        };
        drop(resp.response);

        let etag = headers::etag(&rh);
        let last_modified = headers::last_modified(&rh);
        let strong_etag = etag.as_ref().filter(|e| !e.starts_with("W/"));
        let if_range = strong_etag
            .cloned()
            .or_else(|| last_modified.as_ref().map(|(raw, _)| raw.clone()))
            .and_then(|v| HeaderValue::from_str(&v).ok());
        *self.probed.lock().unwrap_or_else(PoisonError::into_inner) = Probed {
            url: Some(resp.url.clone()),
            if_range,
        };

        let file_name = rh
            .get(CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(content_disposition::file_name)
            .or_else(|| url_file_name(&self.url))
            .or_else(|| url_file_name(&resp.url));
        let mut probe = Probe::new(len, Capabilities::default().with_ranges(ranges));
        probe.etag = etag;
        probe.last_modified = last_modified.map(|(_, t)| t);
        probe.file_name = file_name;
        probe.content_type = rh
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        probe.checksums = headers::published_digests(&rh);
        probe.effective_url = Some(redact_url(&resp.url));
        Ok(probe)
    }

    async fn open_range(&self, range: ReadRange) -> Result<BodyStream> {
        let probed = self.probed();
        let url = probed.url.as_ref().unwrap_or(&self.url);
        let mut h = self.headers.clone();
        let ranged = range_header(range);
        if let Some(r) = &ranged {
            h.insert(RANGE, r.clone());
            if let Some(v) = &probed.if_range {
                h.insert(IF_RANGE, v.clone());
            }
        }
        // Straight to where the probe was redirected, with credentials only
        // if that is still the origin they were given for.
        let resp = self
            .client
            .send_for(Method::GET, url, &h, &self.url)
            .await?;
        let status = resp.status();
        match status {
            StatusCode::PARTIAL_CONTENT if ranged.is_some() => {
                let cr = headers::content_range(resp.headers());
                let asked = match range {
                    ReadRange::Bounded(b) => b,
                    ReadRange::From(s) => ByteRange::new(s, u64::MAX),
                };
                match cr.and_then(|c| c.range) {
                    Some((first, last)) if first == asked.start && last < asked.end => {}
                    _ => {
                        return Err(HttpError::ContentRange {
                            asked,
                            got: headers::raw_content_range(resp.headers()),
                        }
                        .into());
                    }
                }
            }
            StatusCode::OK if ranged.is_some() => {
                if probed.if_range.is_some() {
                    return Err(HttpError::Changed.into());
                }
                if range.start() > 0 {
                    let asked = ByteRange::new(range.start(), range.end().unwrap_or(u64::MAX));
                    return Err(HttpError::RangeIgnored { asked }.into());
                }
                // Bytes from 0: the engine stops reading at the range's end.
            }
            StatusCode::OK if ranged.is_none() => {}
            StatusCode::RANGE_NOT_SATISFIABLE => {
                return Err(self.status_error(status, &resp.url, resp.headers()));
            }
            s => return Err(self.status_error(s, &resp.url, resp.headers())),
        }
        Ok(self.client.body_stream(resp.response.into_body()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        let u = Url::parse("https://h/a/b/r%C3%A9sum%C3%A9.pdf?x=1").unwrap();
        assert_eq!(url_file_name(&u).as_deref(), Some("résumé.pdf"));
        let u = Url::parse("https://h/dir/").unwrap();
        assert_eq!(url_file_name(&u).as_deref(), Some("dir"));
        let u = Url::parse("https://h/").unwrap();
        assert_eq!(url_file_name(&u), None);
    }

    #[test]
    fn range_headers() {
        assert_eq!(range_header(ReadRange::FULL), None);
        assert_eq!(range_header(ReadRange::From(5)).unwrap(), "bytes=5-");
        assert_eq!(
            range_header(ReadRange::Bounded(ByteRange::new(0, 10))).unwrap(),
            "bytes=0-9"
        );
    }
}
