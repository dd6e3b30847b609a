//! `HttpConfig`: every knob of the HTTP client, with units and defaults.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use dlm_core::netrc::NetrcMode;

/// Settings of the HTTP client.
///
/// # Defaults
/// User agent `dlm/VERSION`; no extra headers; connect timeout 30 s; idle
/// read timeout 60 s; at most 10 redirects; TLS verified against the
/// webpki (Mozilla) roots; proxies from `HTTP_PROXY`/`HTTPS_PROXY`/
/// `ALL_PROXY`/`NO_PROXY`; `~/.netrc` when present; HTTP/1.1 only
/// (`http2` off: several TCP connections beat one multiplexed one for
/// segmented downloads, see the crate docs).
#[non_exhaustive]
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// `User-Agent` header value.
    pub user_agent: String,
    /// Extra request headers, `(name, value)`, sent on every request.
    pub headers: Vec<(String, String)>,
    /// Limit for TCP connect plus TLS handshake.
    #[serde(with = "dlm_core::config::duration")]
    pub connect_timeout: Duration,
    /// Limit for waiting on response headers or on the next body bytes.
    #[serde(with = "dlm_core::config::duration")]
    pub idle_timeout: Duration,
    /// Redirects followed at most (0: a redirect response is returned as it is).
    pub max_redirects: u32,
    /// PEM file of CA certificates to trust *instead of* the built-in roots
    /// (curl's `--cacert`).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Dangerous: only for testing.
    pub insecure: bool,
    /// Proxy for every request (`http://[user:pass@]host:port`, `socks5://…`,
    /// `socks5h://…`); overrides the environment.
    pub proxy: Option<String>,
    /// Hosts that bypass the proxy (same syntax as `NO_PROXY`).
    pub no_proxy: Option<String>,
    /// Read `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY`.
    pub proxy_from_env: bool,
    /// Where Basic credentials come from.
    pub netrc: NetrcMode,
    /// Offer HTTP/2 through ALPN on HTTPS.
    pub http2: bool,
    /// Send credentials (the `Authorization` and `Cookie` headers given,
    /// URL userinfo, netrc logins) to the origins redirects lead to, not only
    /// to the origin of the URL they were given with (curl's
    /// `--location-trusted`).
    pub location_trusted: bool,
    /// Follow redirects from `https` to plain `http` (refused by default:
    /// the rest of the transfer would be readable and changeable on the way).
    pub allow_insecure_redirect: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            user_agent: format!("dlm/{}", env!("CARGO_PKG_VERSION")),
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_redirects: 10,
            ca_file: None,
            insecure: false,
            proxy: None,
            no_proxy: None,
            proxy_from_env: true,
            netrc: NetrcMode::Auto,
            http2: false,
            location_trusted: false,
            allow_insecure_redirect: false,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values and proxy URLs may carry credentials: show names only.
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("HttpConfig")
            .field("user_agent", &self.user_agent)
            .field("headers", &header_names)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_redirects", &self.max_redirects)
            .field("ca_file", &self.ca_file)
            .field("insecure", &self.insecure)
            .field("proxy", &self.proxy.as_ref().map(|_| "<set>"))
            .field("no_proxy", &self.no_proxy)
            .field("proxy_from_env", &self.proxy_from_env)
            .field("netrc", &self.netrc)
            .field("http2", &self.http2)
            .field("location_trusted", &self.location_trusted)
            .field("allow_insecure_redirect", &self.allow_insecure_redirect)
            .finish_non_exhaustive()
    }
}

impl HttpConfig {
    /// The TLS part of this configuration (`ca_file`, `insecure`), as
    /// [`dlm_tls::client_config`] takes it.
    pub fn tls(&self) -> dlm_tls::TlsConfig {
        dlm_tls::TlsConfig::default()
            .with_ca_file(self.ca_file.clone())
            .with_insecure(self.insecure)
    }

    /// Sets [`HttpConfig::user_agent`].
    pub fn with_user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }
    /// Adds a header sent on every request.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Sets [`HttpConfig::connect_timeout`].
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
    /// Sets [`HttpConfig::idle_timeout`].
    pub fn with_idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = t;
        self
    }
    /// Sets [`HttpConfig::max_redirects`].
    pub fn with_max_redirects(mut self, n: u32) -> Self {
        self.max_redirects = n;
        self
    }
    /// Sets [`HttpConfig::ca_file`].
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
    /// Sets [`HttpConfig::insecure`].
    pub fn with_insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }
    /// Sets [`HttpConfig::proxy`].
    pub fn with_proxy(mut self, proxy: impl Into<String>) -> Self {
        self.proxy = Some(proxy.into());
        self
    }
    /// Sets [`HttpConfig::no_proxy`].
    pub fn with_no_proxy(mut self, hosts: impl Into<String>) -> Self {
        self.no_proxy = Some(hosts.into());
        self
    }
    /// Sets [`HttpConfig::proxy_from_env`].
    pub fn with_proxy_from_env(mut self, on: bool) -> Self {
        self.proxy_from_env = on;
        self
    }
    /// Sets [`HttpConfig::netrc`].
    pub fn with_netrc(mut self, mode: NetrcMode) -> Self {
        self.netrc = mode;
        self
    }
    /// Sets [`HttpConfig::http2`].
    pub fn with_http2(mut self, on: bool) -> Self {
        self.http2 = on;
        self
    }

    /// Sets [`HttpConfig::location_trusted`].
    pub fn with_location_trusted(mut self, on: bool) -> Self {
        self.location_trusted = on;
        self
    }

    /// Sets [`HttpConfig::allow_insecure_redirect`].
    pub fn with_allow_insecure_redirect(mut self, on: bool) -> Self {
        self.allow_insecure_redirect = on;
        self
    }
}
