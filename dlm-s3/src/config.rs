//! `S3Config`: where S3 is, who we are, and how requests travel.

use std::fmt;

use dlm_http::HttpConfig;
use url::Url;

/// An access key pair given explicitly (highest precedence).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StaticCredentials {
    /// Access key id (`AKIA…`); shown in `Debug` only as its first 4 characters.
    pub access_key_id: String,
    /// Secret access key; never shown.
    pub secret_access_key: String,
    /// Session token for temporary credentials; never shown.
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.access_key_id.chars().take(4).collect();
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &format_args!("{shown}…"))
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Settings of the S3 client.
///
/// # Defaults
/// Credentials, region and endpoint from the environment and `~/.aws` (see
/// [`S3Config::use_environment`]); AWS endpoints with virtual-hosted-style
/// addressing; path-style addressing for a custom endpoint; requests signed
/// with SigV4; HTTP settings from [`HttpConfig::default`] (TLS verified);
/// a prefix listed in at most 100,000 `ListObjectsV2` pages (100 million keys).
#[non_exhaustive]
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct S3Config {
    /// Explicit credentials; when set, nothing else is looked up.
    pub credentials: Option<StaticCredentials>,
    /// Send requests unsigned (public buckets).
    pub anonymous: bool,
    /// The region; else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's
    /// `region`, then `us-east-1`.
    pub region: Option<String>,
    /// The profile in `~/.aws/credentials` and `~/.aws/config`; else
    /// `AWS_PROFILE`, then `default`.
    pub profile: Option<String>,
    /// A custom endpoint (MinIO, Ceph, R2, Wasabi, a local server); else
    /// `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, then AWS's regional endpoint.
    pub endpoint_url: Option<Url>,
    /// Force path-style (`true`) or virtual-hosted-style (`false`)
    /// addressing; `None`: path style for custom endpoints and for bucket
    /// names with dots (their TLS names would not match), else virtual hosted.
    pub path_style: Option<bool>,
    /// Read `AWS_*` variables and `~/.aws` files. Off, only this config counts
    /// (tests use that to ignore the developer's own credentials).
    pub use_environment: bool,
    /// TLS, proxies and timeouts of the HTTP client (its redirect following
    /// and netrc logins are turned off: S3 redirects are handled here,
    /// re-signed, and requests are signed with SigV4).
    pub http: HttpConfig,
    /// Most `ListObjectsV2` pages (of up to 1,000 keys) read for one prefix;
    /// a listing that needs more fails. Also bounds a service that keeps
    /// sending new continuation tokens (a token sent twice fails at once).
    pub max_list_pages: usize,
}

/// Default of [`S3Config::max_list_pages`]: 100,000 pages, 100 million keys.
pub const MAX_LIST_PAGES: usize = 100_000;

impl Default for S3Config {
    fn default() -> Self {
        Self {
            credentials: None,
            anonymous: false,
            region: None,
            profile: None,
            endpoint_url: None,
            path_style: None,
            use_environment: true,
            http: HttpConfig::default(),
            max_list_pages: MAX_LIST_PAGES,
        }
    }
}

impl S3Config {
    /// Sets [`S3Config::credentials`].
    pub fn with_credentials(mut self, credentials: StaticCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Sets [`S3Config::anonymous`].
    pub fn with_anonymous(mut self, anonymous: bool) -> Self {
        self.anonymous = anonymous;
        self
    }

    /// Sets [`S3Config::region`].
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets [`S3Config::profile`].
    pub fn with_profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// Sets [`S3Config::endpoint_url`].
    pub fn with_endpoint_url(mut self, url: Url) -> Self {
        self.endpoint_url = Some(url);
        self
    }

    /// Sets [`S3Config::path_style`].
    pub fn with_path_style(mut self, path_style: Option<bool>) -> Self {
        self.path_style = path_style;
        self
    }

    /// Sets [`S3Config::use_environment`].
    pub fn with_use_environment(mut self, on: bool) -> Self {
        self.use_environment = on;
        self
    }

    /// Sets [`S3Config::http`].
    pub fn with_http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Sets [`S3Config::max_list_pages`] (at least 1).
    pub fn with_max_list_pages(mut self, pages: usize) -> Self {
        self.max_list_pages = pages.max(1);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secrets() {
        let c = S3Config::default().with_credentials(StaticCredentials {
            access_key_id: "AKIAEXAMPLEKEY123456".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("token-secret-value".into()),
        });
        let shown = format!("{c:?}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(!shown.contains("token-secret-value"), "{shown}");
        assert!(!shown.contains("AKIAEXAMPLEKEY123456"), "{shown}");
        assert!(shown.contains("AKIA…"), "{shown}");
    }
}
