//! `Content-Disposition` file names (RFC 6266, with RFC 8187 `filename*`).

use percent_encoding::percent_decode_str;

/// The file name a `Content-Disposition` value suggests, *unsanitised*:
/// `filename*` (RFC 8187 extended value, UTF-8 or ISO-8859-1) wins over
/// `filename` (RFC 6266 §4.3). Callers must pass the result through
/// [`dlm_core::safe_file_name`].
pub fn file_name(value: &str) -> Option<String> {
    let params = parameters(value);
    let extended = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("filename*"))
        .and_then(|(_, v)| decode_ext_value(v));
    extended.or_else(|| {
        params
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("filename"))
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
    })
}

/// Splits `type; k=v; k="quoted; value"` into `(k, v)` pairs, unquoting values.
fn parameters(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = match value.split_once(';') {
        Some((_, r)) => r,
        None => return out,
    };
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let val;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => v.push(c),
                }
            }
            val = v;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            val = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((key, val));
    }
    out
}

/// Decodes an RFC 8187 `charset'lang'pct-encoded` value.
fn decode_ext_value(v: &str) -> Option<String> {
    let mut parts = v.splitn(3, '\'');
    let charset = parts.next()?;
    let _lang = parts.next()?;
    let encoded = parts.next()?;
    let bytes: Vec<u8> = percent_decode_str(encoded).collect();
    let s = if charset.eq_ignore_ascii_case("utf-8") {
        String::from_utf8(bytes).ok()?
    } else if charset.eq_ignore_ascii_case("iso-8859-1") {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        return None;
    };
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6266_examples() {
        // RFC 6266 §5 examples.
        assert_eq!(
            file_name("Attachment; filename=example.html").as_deref(),
            Some("example.html")
        );
        assert_eq!(
            file_name("INLINE; FILENAME= \"an example.html\"").as_deref(),
            Some("an example.html")
        );
        assert_eq!(
            file_name("attachment; filename*= UTF-8''%e2%82%ac%20rates").as_deref(),
            Some("€ rates")
        );
        assert_eq!(
            file_name("attachment; filename=\"EURO rates\"; filename*=utf-8''%e2%82%ac%20rates")
                .as_deref(),
            Some("€ rates")
        );
    }

    #[test]
    fn odd_inputs() {
        assert_eq!(file_name("attachment"), None);
        assert_eq!(
            file_name("attachment; filename=\"a\\\"b;c.txt\"; size=3").as_deref(),
            Some("a\"b;c.txt")
        );
        assert_eq!(
            file_name("attachment; filename=\"unterminated").as_deref(),
            Some("unterminated")
        );
        assert_eq!(
            file_name("attachment; filename*=bogus''x; filename=y").as_deref(),
            Some("y")
        );
        assert_eq!(
            file_name("attachment; filename*=iso-8859-1'en'%e9t%e9").as_deref(),
            Some("été")
        );
        assert_eq!(
            file_name("attachment; filename=\"../../etc/passwd\"").as_deref(),
            Some("../../etc/passwd")
        );
    }
}
