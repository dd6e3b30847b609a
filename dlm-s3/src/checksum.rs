//! Which published digest verifies an object.
//!
//! In order of preference: a full-object `x-amz-checksum-sha256` (asked for
//! with `x-amz-checksum-mode: ENABLED`); the ETag of a single-part upload,
//! which is the hex MD5 of the bytes unless the object is encrypted with
//! SSE-KMS or SSE-C; else nothing (the user's `--checksum` still applies).
//! Composite checksums of multipart uploads (`…-N`, or
//! `x-amz-checksum-type: COMPOSITE`) are checksums of part checksums, not of
//! the object, and are not used. CRC32C and CRC64NVME full-object checksums
//! are not used yet (dlm-core computes SHA-2, SHA-1 and MD5 only).

use base64::Engine as _;
use dlm_core::{Checksum, DigestAlgorithm};
use http::HeaderMap;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The digests an object's `HEAD` response publishes, best first.
pub(crate) fn published(h: &HeaderMap) -> Vec<Checksum> {
    let mut out = Vec::new();
    let composite =
        header(h, "x-amz-checksum-type").is_some_and(|t| t.eq_ignore_ascii_case("COMPOSITE"));
    if let Some(v) = header(h, "x-amz-checksum-sha256")
        && !composite
        && !v.contains('-')
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(v)
        && let Ok(c) = Checksum::new(DigestAlgorithm::Sha256, bytes)
    {
        out.push(c);
    }
    if let Some(md5) = md5_etag(h) {
        out.push(md5);
    }
    out
}

/// The MD5 in a single-part upload's ETag (`"<32 hex digits>"`), unless the
/// object is encrypted with SSE-KMS, DSSE-KMS or SSE-C (then the ETag is not
/// an MD5 of the bytes).
fn md5_etag(h: &HeaderMap) -> Option<Checksum> {
    let sse = header(h, "x-amz-server-side-encryption").unwrap_or_default();
    if sse.starts_with("aws:kms")
        || header(h, "x-amz-server-side-encryption-customer-algorithm").is_some()
    {
        return None;
    }
    let etag = header(h, "etag")?
        .trim_start_matches("W/")
        .trim_matches('"');
    if etag.len() != 32 || !etag.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Checksum::new(DigestAlgorithm::Md5, hex::decode(etag).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn prefers_sha256_then_md5_etag() {
        // SHA-256 of "hello" in base64, and MD5 of "hello" as the ETag.
        let h = headers(&[
            (
                "x-amz-checksum-sha256",
                "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
            ),
            ("etag", "\"5d41402abc4b2a76b9719d911017c592\""),
        ]);
        let c = published(&h);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].algorithm, DigestAlgorithm::Sha256);
        assert_eq!(c[1].algorithm, DigestAlgorithm::Md5);
        assert_eq!(c[1].to_hex(), "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn skips_composite_multipart_and_kms() {
        let h = headers(&[
            (
                "x-amz-checksum-sha256",
                "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=-3",
            ),
            ("etag", "\"5d41402abc4b2a76b9719d911017c592-3\""),
        ]);
        assert!(published(&h).is_empty());
        let h = headers(&[
            ("etag", "\"5d41402abc4b2a76b9719d911017c592\""),
            ("x-amz-server-side-encryption", "aws:kms"),
        ]);
        assert!(published(&h).is_empty());
        let h = headers(&[
            (
                "x-amz-checksum-sha256",
                "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
            ),
            ("x-amz-checksum-type", "COMPOSITE"),
        ]);
        assert!(published(&h).is_empty());
    }
}
