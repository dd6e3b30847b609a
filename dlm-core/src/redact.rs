//! Keeping credentials out of messages.

use url::Url;

/// Query parameters that carry signatures or tokens (S3/GCS presigned URLs,
/// Azure SAS); their values are hidden in displayed URLs.
const SECRET_QUERY_KEYS: &[&str] = &[
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "signature",
    "sig",
    "token",
    "access_token",
];

/// `url` for display: userinfo removed and signature-like query values
/// replaced by `REDACTED`. Every other parameter is shown exactly as sent,
/// percent-encoding included (a tracker's binary `info_hash=%12%AB…` stays
/// readable instead of turning into U+FFFD replacement characters).
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if let Some(query) = u.query() {
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| {
                let (k, _) = pair.split_once('=').unwrap_or((pair, ""));
                let key = percent_encoding::percent_decode_str(k).decode_utf8_lossy();
                if SECRET_QUERY_KEYS
                    .iter()
                    .any(|s| key.eq_ignore_ascii_case(s))
                {
                    format!("{k}=REDACTED")
                } else {
                    pair.to_string()
                }
            })
            .collect();
        u.set_query(Some(&redacted.join("&")));
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_userinfo_and_signatures() {
        let u = Url::parse("https://bob:hunter2@h/x?X-Amz-Signature=abc&part=1").unwrap();
        let s = redact_url(&u);
        assert!(
            !s.contains("hunter2") && !s.contains("bob") && !s.contains("abc"),
            "{s}"
        );
        assert!(s.contains("part=1"));
    }

    #[test]
    fn keeps_binary_parameters_as_sent() {
        let u = Url::parse("http://t/announce?info_hash=%12%AB%00a&peer_id=-DL-%FF&sig=s3cr3t")
            .unwrap();
        let s = redact_url(&u);
        assert_eq!(
            s,
            "http://t/announce?info_hash=%12%AB%00a&peer_id=-DL-%FF&sig=REDACTED"
        );
        assert!(!s.contains('\u{FFFD}') && !s.contains("%EF%BF%BD"), "{s}");
    }
}
