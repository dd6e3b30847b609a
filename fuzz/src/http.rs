//! HTTP response headers: `Content-Disposition`, `Content-Range`,
//! `Repr-Digest`/`Digest`.

use base64::Engine as _;
use dlm_http::fuzzing;

/// `Content-Disposition` (RFC 6266, RFC 8187 `filename*`) through
/// `dlm_http::content_disposition::file_name` and then
/// `dlm_core::safe_file_name`, as a probe names a download. Input: the
/// header value, UTF-8.
///
/// Checks: a suggested name is never empty; a safe name is a single
/// component (no `/`, `\`, NUL, not `.`/`..`) and is its own safe name.
pub fn content_disposition(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let Some(name) = dlm_http::content_disposition::file_name(value) else {
        return;
    };
    assert!(!name.is_empty());
    if let Some(safe) = dlm_core::safe_file_name(&name) {
        assert!(!safe.is_empty() && safe != "." && safe != "..", "{safe:?}");
        assert!(!safe.contains(['/', '\\', '\0']), "{safe:?}");
        assert_eq!(
            dlm_core::safe_file_name(&safe).as_deref(),
            Some(safe.as_str()),
            "a safe name changes when made safe again"
        );
    }
}

/// `Content-Range` (RFC 9110 §14.4) as the HTTP source parses it. Input: the
/// header value.
///
/// Checks: a satisfied range has `first <= last < complete`; what parses,
/// written back as `bytes first-last/complete`, parses to the same value.
pub fn content_range(data: &[u8]) {
    let Some(parsed) = fuzzing::content_range(data) else {
        return;
    };
    let fuzzing::ContentRange { range, complete } = parsed;
    if let Some((first, last)) = range {
        assert!(first <= last, "{first}-{last}");
        if let Some(c) = complete {
            assert!(last < c, "{first}-{last}/{c}");
        }
    }
    let text = format!(
        "bytes {}/{}",
        range.map_or_else(|| "*".to_string(), |(a, b)| format!("{a}-{b}")),
        complete.map_or_else(|| "*".to_string(), |c| c.to_string())
    );
    assert_eq!(
        fuzzing::content_range(text.as_bytes()),
        Some(parsed),
        "{text}"
    );
}

/// `Repr-Digest` (RFC 9530) and `Digest` (RFC 3230) as the HTTP source
/// reads them. Input: header values, one a line, given once as
/// `repr-digest` and once as `digest`.
///
/// Checks: each digest has its algorithm's length and appears once; the
/// digests written back as one `Repr-Digest` value read back the same.
pub fn digest(data: &[u8]) {
    let values: Vec<&[u8]> = data.split(|&b| b == b'\n').take(64).collect();
    for name in ["repr-digest", "digest"] {
        let found = fuzzing::published_digests(name, &values);
        for (i, c) in found.iter().enumerate() {
            assert_eq!(c.value.len(), c.algorithm.output_len(), "{c:?}");
            assert!(!found[..i].contains(c), "{c:?} twice");
        }
        let again = found
            .iter()
            .map(|c| {
                let b64 = base64::engine::general_purpose::STANDARD.encode(&c.value);
                format!("{}=:{b64}:", c.algorithm)
            })
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(
            fuzzing::published_digests("repr-digest", &[again.as_bytes()]),
            found,
            "{again}"
        );
    }
}
