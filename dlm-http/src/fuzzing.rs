//! Entry points for `fuzz/` (cargo-fuzz targets and their corpus replay):
//! the private header parsers behind a `&[u8]` header value. Not a stable
//! API; hidden from the docs.

use dlm_core::Checksum;
use http::{HeaderMap, HeaderName, HeaderValue};

/// A parsed `Content-Range` (RFC 9110 §14.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    /// `(first, last)`, inclusive byte positions, or `None` for `*` (an
    /// unsatisfied range).
    pub range: Option<(u64, u64)>,
    /// The complete length in bytes, or `None` for `*`.
    pub complete: Option<u64>,
}

/// A `Content-Range` value as the source parses it; `None` when the value is
/// not a byte `Content-Range` or is not a valid header value.
pub fn content_range(value: &[u8]) -> Option<ContentRange> {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::CONTENT_RANGE,
        HeaderValue::from_bytes(value).ok()?,
    );
    crate::headers::content_range(&h).map(|cr| ContentRange {
        range: cr.range,
        complete: cr.complete,
    })
}

/// The whole-object digests published by `values` of the header `name`
/// (`repr-digest`, RFC 9530, or `digest`, RFC 3230), as the source reads
/// them; values that are not valid header values are left out.
///
/// # Panics
/// When `name` is not a lowercase header name.
pub fn published_digests(name: &'static str, values: &[&[u8]]) -> Vec<Checksum> {
    let name = HeaderName::from_static(name);
    let mut h = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            h.append(name.clone(), v);
        }
    }
    crate::headers::published_digests(&h)
}
