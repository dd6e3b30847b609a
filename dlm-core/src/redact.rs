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
/// replaced by `REDACTED`.
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_QUERY_KEYS.iter().any(|s| k.eq_ignore_ascii_case(s));
                (
                    k.into_owned(),
                    if secret {
                        "REDACTED".into()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
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
}
