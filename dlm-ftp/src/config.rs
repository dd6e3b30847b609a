//! `FtpConfig`: the FTP client's settings, with units and defaults.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use dlm_core::netrc::NetrcMode;

/// Settings of the FTP client.
///
/// # Defaults
/// Plain FTP (no TLS); explicit TLS (`AUTH TLS`, RFC 4217) when `explicit_tls`
/// is on, verified against the webpki roots or `ca_file`; extended passive
/// mode (`EPSV`, RFC 2428; active mode by option); credentials from the URL,
/// else `~/.netrc`, else anonymous; at most 4 connections per server; connect timeout
/// 30 s; idle timeout 60 s.
#[non_exhaustive]
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FtpConfig {
    /// Secure the control and data connections with `AUTH TLS`, `PBSZ 0`, `PROT P`.
    pub explicit_tls: bool,
    /// PEM file of CA certificates to trust instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Dangerous: only for testing.
    pub insecure: bool,
    /// Active mode: the server connects back to a port we listen on
    /// (`EPRT`/`PORT`, RFC 2428/959) instead of us connecting to it (`EPSV`).
    pub active: bool,
    /// Connections per server at once (servers limit sessions per client).
    pub max_connections: u32,
    /// Where the user name and password come from when the URL has none
    /// (then anonymous when netrc has no entry either).
    pub netrc: NetrcMode,
    /// Limit for connecting and logging in.
    #[serde(with = "dlm_core::config::duration")]
    pub connect_timeout: Duration,
    /// Limit for waiting on the next data bytes.
    #[serde(with = "dlm_core::config::duration")]
    pub idle_timeout: Duration,
}

impl Default for FtpConfig {
    fn default() -> Self {
        Self {
            explicit_tls: false,
            ca_file: None,
            insecure: false,
            active: false,
            max_connections: 4,
            netrc: NetrcMode::Auto,
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for FtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpConfig")
            .field("explicit_tls", &self.explicit_tls)
            .field("ca_file", &self.ca_file)
            .field("insecure", &self.insecure)
            .field("active", &self.active)
            .field("max_connections", &self.max_connections)
            .field("netrc", &self.netrc)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl FtpConfig {
    /// The TLS part of this configuration (`ca_file`, `insecure`), as
    /// [`dlm_tls::client_config`] takes it.
    pub fn tls(&self) -> dlm_tls::TlsConfig {
        dlm_tls::TlsConfig::default()
            .with_ca_file(self.ca_file.clone())
            .with_insecure(self.insecure)
    }

    /// Sets [`FtpConfig::explicit_tls`].
    pub fn with_explicit_tls(mut self, on: bool) -> Self {
        self.explicit_tls = on;
        self
    }
    /// Sets [`FtpConfig::ca_file`].
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
    /// Sets [`FtpConfig::insecure`].
    pub fn with_insecure(mut self, on: bool) -> Self {
        self.insecure = on;
        self
    }
    /// Sets [`FtpConfig::active`].
    pub fn with_active(mut self, on: bool) -> Self {
        self.active = on;
        self
    }
    /// Sets [`FtpConfig::max_connections`] (at least 1).
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }
    /// Sets [`FtpConfig::netrc`].
    pub fn with_netrc(mut self, mode: NetrcMode) -> Self {
        self.netrc = mode;
        self
    }
    /// Sets [`FtpConfig::connect_timeout`].
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
    /// Sets [`FtpConfig::idle_timeout`].
    pub fn with_idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = t;
        self
    }
}
