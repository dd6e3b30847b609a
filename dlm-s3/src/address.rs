//! Where an object lives: `s3://bucket/key` parsed, and the HTTP URL of a
//! bucket or object for an endpoint, path-style or virtual-hosted-style.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

use crate::S3Error;

/// Bytes S3's URI encoding leaves alone in a key (`A-Z a-z 0-9 - . _ ~`, and
/// `/` between segments), as SigV4's canonical URI needs.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Bytes left alone in a query value (SigV4 canonical query string).
pub(crate) const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s3://bucket/key`: a bucket and a key (empty, or ending in `/`, for a prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The key or prefix, without the leading `/`, percent-decoded.
    pub key: String,
}

impl S3Location {
    /// Parses `s3://bucket[/key]`.
    ///
    /// # Errors
    /// [`S3Error::InvalidInput`] for another scheme, a missing or malformed
    /// bucket name, or a key with `.` or `..` segments (they cannot be sent
    /// through a URL without being resolved away).
    pub fn parse(url: &Url) -> Result<Self, S3Error> {
        if !url.scheme().eq_ignore_ascii_case("s3") {
            return Err(S3Error::InvalidInput(format!("{url} is not an s3:// URL")));
        }
        let bucket = url.host_str().unwrap_or_default().to_string();
        if !valid_bucket(&bucket) {
            return Err(S3Error::InvalidInput(format!(
                "{bucket:?} is not a valid bucket name (3-63 letters, digits, dots, hyphens, underscores)"
            )));
        }
        let raw = url.path().strip_prefix('/').unwrap_or(url.path());
        let key = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| S3Error::InvalidInput(format!("{url}: the key is not UTF-8")))?
            .into_owned();
        if key.split('/').any(|s| s == "." || s == "..") {
            return Err(S3Error::InvalidInput(format!(
                "s3://{bucket}/{key}: keys with . or .. segments are not supported"
            )));
        }
        Ok(Self { bucket, key })
    }

    /// Whether this names a prefix (many objects): the key is empty or ends in `/`.
    pub fn is_prefix(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }

    /// `bucket/key`, for messages.
    pub fn display(&self) -> String {
        format!("{}/{}", self.bucket, self.key)
    }
}

fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        && !b.starts_with(['.', '-'])
        && !b.ends_with(['.', '-'])
}

/// Whether `region` can be a region name: 1 to 63 ASCII letters, digits
/// and `-`, not starting or ending with `-` (AWS's are like `eu-west-3`;
/// MinIO and Ceph allow names of their own, of the same characters). Names
/// from the network (`x-amz-bucket-region`, an error's `Region`) and from
/// the configuration are checked with it before they reach a host name or
/// a signature.
pub(crate) fn is_region(region: &str) -> bool {
    (1..=63).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// How requests reach a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Addressing {
    /// `scheme://host[:port][/base path]` of the service.
    pub(crate) base: Url,
    /// `base/bucket/key` (true) or `bucket.host/key` (false).
    pub(crate) path_style: bool,
}

impl Addressing {
    /// AWS's regional endpoint, `https://s3.{region}.amazonaws.com`.
    ///
    /// # Errors
    /// [`S3Error::InvalidInput`] when `region` is not a region name (see
    /// [`is_region`]); callers check names from the network first.
    pub(crate) fn aws(region: &str) -> Result<Self, S3Error> {
        let bad = || S3Error::InvalidInput(format!("{region:?} is not a region name"));
        if !is_region(region) {
            return Err(bad());
        }
        let base = Url::parse(&format!("https://s3.{region}.amazonaws.com")).map_err(|_| bad())?;
        Ok(Self {
            base,
            path_style: false,
        })
    }

    /// The URL of `key` in `bucket`, the key percent-encoded as SigV4 wants.
    pub(crate) fn object_url(&self, bucket: &str, key: &str) -> Result<Url, S3Error> {
        let encoded = utf8_percent_encode(key, KEY).to_string();
        let base_path = self.base.path().trim_end_matches('/');
        let (host, path) = if self.path_style || bucket.contains('.') {
            (None, format!("{base_path}/{bucket}/{encoded}"))
        } else {
            let host = format!("{bucket}.{}", self.base.host_str().unwrap_or_default());
            (Some(host), format!("{base_path}/{encoded}"))
        };
        let mut url = self.base.clone();
        if let Some(h) = host {
            url.set_host(Some(&h))
                .map_err(|e| S3Error::InvalidInput(format!("bucket host {h:?}: {e}")))?;
        }
        url.set_path(&path);
        url.set_query(None);
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> Result<S3Location, S3Error> {
        S3Location::parse(&Url::parse(s).unwrap())
    }

    #[test]
    fn parses_locations() {
        let l = loc("s3://my-bucket/a/b%20c.bin").unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.key.as_str()),
            ("my-bucket", "a/b c.bin")
        );
        assert!(!l.is_prefix());
        assert!(loc("s3://my-bucket/logs/").unwrap().is_prefix());
        assert!(loc("s3://my-bucket").unwrap().is_prefix());
        assert!(loc("s3://x/k").is_err());
        // The URL parser resolves dot segments before we see the key.
        assert_eq!(loc("s3://my-bucket/a/../b").unwrap().key, "b");
        assert!(loc("https://my-bucket/k").is_err());
    }

    #[test]
    fn builds_path_and_virtual_hosted_urls() {
        let aws = Addressing::aws("eu-west-1").unwrap();
        assert_eq!(
            aws.object_url("bkt", "a b/ü+x.bin").unwrap().as_str(),
            "https://bkt.s3.eu-west-1.amazonaws.com/a%20b/%C3%BC%2Bx.bin"
        );
        // Dots in the bucket would break the TLS name: path style.
        assert_eq!(
            aws.object_url("my.bkt", "k").unwrap().as_str(),
            "https://s3.eu-west-1.amazonaws.com/my.bkt/k"
        );
        let local = Addressing {
            base: Url::parse("http://127.0.0.1:9000").unwrap(),
            path_style: true,
        };
        assert_eq!(
            local.object_url("bkt", "").unwrap().as_str(),
            "http://127.0.0.1:9000/bkt/"
        );
    }

    #[test]
    fn only_region_names_reach_a_host_name() {
        for ok in ["us-east-1", "eu-west-3", "garage", "X1"] {
            assert!(is_region(ok), "{ok}");
            assert!(Addressing::aws(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "-eu",
            "eu-",
            "evil.example/x?",
            "eu west",
            "eu_west",
            "ü",
            long.as_str(),
        ] {
            assert!(!is_region(bad), "{bad:?}");
            assert!(Addressing::aws(bad).is_err(), "{bad:?}");
        }
    }
}
