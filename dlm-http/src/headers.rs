//! Parsing the response headers dlm relies on.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use dlm_core::{Checksum, DigestAlgorithm};
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, LAST_MODIFIED, RETRY_AFTER};

/// Longest `Retry-After` honoured; longer requests are capped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

fn header_str(h: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// A parsed `Content-Range: bytes first-last/complete` (RFC 9110 §14.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ContentRange {
    /// `(first, last)` inclusive, or `None` for an unsatisfied range (`*/len`).
    pub(crate) range: Option<(u64, u64)>,
    /// Complete length, when the server knows it.
    pub(crate) complete: Option<u64>,
}

pub(crate) fn content_range(h: &HeaderMap) -> Option<ContentRange> {
    let v = header_str(h, CONTENT_RANGE)?;
    let rest = v.strip_prefix("bytes")?.trim_start();
    let (range, complete) = rest.split_once('/')?;
    let complete = match complete.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    let range = match range.trim() {
        "*" => None,
        r => {
            let (a, b) = r.split_once('-')?;
            let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if b < a || complete.is_some_and(|c| b >= c) {
                return None;
            }
            Some((a, b))
        }
    };
    Some(ContentRange { range, complete })
}

/// The `Content-Range` header as received, for error messages (empty when absent).
pub(crate) fn raw_content_range(h: &HeaderMap) -> String {
    header_str(h, CONTENT_RANGE).unwrap_or("").to_string()
}

pub(crate) fn content_length(h: &HeaderMap) -> Option<u64> {
    header_str(h, CONTENT_LENGTH)?.parse().ok()
}

pub(crate) fn etag(h: &HeaderMap) -> Option<String> {
    header_str(h, ETAG)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The raw `Last-Modified` value and its parsed time.
pub(crate) fn last_modified(h: &HeaderMap) -> Option<(String, SystemTime)> {
    let raw = header_str(h, LAST_MODIFIED)?;
    Some((raw.to_string(), httpdate::parse_http_date(raw).ok()?))
}

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3), capped at an hour.
pub(crate) fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = header_str(h, RETRY_AFTER)?;
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(v).ok()?;
        at.duration_since(SystemTime::now()).unwrap_or_default()
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// Whole-object digests the server publishes: RFC 9530 `Repr-Digest`
/// (`sha-256=:BASE64:`) and RFC 3230 `Digest` (`SHA-256=BASE64`).
/// `Content-Digest` is ignored: it covers the (possibly partial) content.
pub(crate) fn published_digests(h: &HeaderMap) -> Vec<Checksum> {
    let mut out = Vec::new();
    for name in ["repr-digest", "digest"] {
        for v in h.get_all(name).iter().filter_map(|v| v.to_str().ok()) {
            for member in v.split(',') {
                let Some((algo, value)) = member.split_once('=') else {
                    continue;
                };
                let Ok(algorithm) = algo.trim().parse::<DigestAlgorithm>() else {
                    continue;
                };
                let value = value.trim().trim_matches(':');
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(value) else {
                    continue;
                };
                if let Ok(c) = Checksum::new(algorithm, bytes)
                    && !out.contains(&c)
                {
                    out.push(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn content_ranges() {
        let cr = content_range(&h(&[("content-range", "bytes 0-0/1234")])).unwrap();
        assert_eq!(
            cr,
            ContentRange {
                range: Some((0, 0)),
                complete: Some(1234)
            }
        );
        let cr = content_range(&h(&[("content-range", "bytes */99")])).unwrap();
        assert_eq!(cr.range, None);
        assert_eq!(
            content_range(&h(&[("content-range", "bytes 5-2/10")])),
            None
        );
        assert_eq!(
            content_range(&h(&[("content-range", "bytes 0-10/10")])),
            None
        );
        assert_eq!(content_range(&h(&[("content-range", "items 0-1/2")])), None);
        let cr = content_range(&h(&[("content-range", "bytes 10-19/*")])).unwrap();
        assert_eq!(cr.complete, None);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            retry_after(&h(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "99999")])),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")])),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&h(&[("retry-after", "soon")])), None);
    }

    #[test]
    fn digests() {
        // SHA-256 of "hello world", base64 (RFC 9530 §B examples use this shape).
        let d = published_digests(&h(&[(
            "repr-digest",
            "sha-256=:uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=:, unknown=:AAAA:",
        )]));
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].to_hex(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        let d = published_digests(&h(&[(
            "digest",
            "SHA-256=uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",
        )]));
        assert_eq!(d.len(), 1);
    }
}
