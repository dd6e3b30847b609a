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
/// 30 s; idle timeout 60 s; reply timeout 60 s. A directory tree is listed to
/// at most 64 levels below its root, 1,000,000 entries, paths of 4,096 bytes,
/// 64 MiB of listing per directory and 512 MiB of listings and paths in all.
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
    /// Limit for waiting on the next data bytes (a file's or a listing's).
    #[serde(with = "dlm_core::config::duration")]
    pub idle_timeout: Duration,
    /// Limit for the server's reply to each command after login (`SIZE`,
    /// `MDTM`, `REST`, `RETR`, `LIST`/`MLSD`, and the `226` that ends a
    /// listing), including opening the data connection.
    #[serde(with = "dlm_core::config::duration")]
    pub reply_timeout: Duration,
    /// Most entries (files and directories) listed in one directory tree.
    pub max_tree_entries: usize,
    /// Deepest directory nesting entered below a tree's root (0: the root only).
    pub max_tree_depth: usize,
    /// Longest path of an entry below a tree's root, bytes (`/`-joined).
    pub max_path_bytes: usize,
    /// Largest listing of one directory, bytes.
    pub max_listing_bytes: u64,
    /// Most bytes of one tree's listings read plus the bytes of the entry
    /// paths made from them: bounds the memory and the transfers a listing
    /// may cost, however it is nested.
    pub max_tree_bytes: u64,
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
            reply_timeout: Duration::from_secs(60),
            max_tree_entries: crate::listing::MAX_ENTRIES,
            max_tree_depth: crate::listing::MAX_DEPTH,
            max_path_bytes: crate::listing::MAX_PATH_BYTES,
            max_listing_bytes: crate::listing::MAX_LISTING_BYTES,
            max_tree_bytes: crate::listing::MAX_TREE_BYTES,
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
            .field("reply_timeout", &self.reply_timeout)
            .field("max_tree_entries", &self.max_tree_entries)
            .field("max_tree_depth", &self.max_tree_depth)
            .field("max_path_bytes", &self.max_path_bytes)
            .field("max_listing_bytes", &self.max_listing_bytes)
            .field("max_tree_bytes", &self.max_tree_bytes)
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
    /// Sets [`FtpConfig::reply_timeout`].
    pub fn with_reply_timeout(mut self, t: Duration) -> Self {
        self.reply_timeout = t;
        self
    }
    /// Sets [`FtpConfig::max_tree_entries`].
    pub fn with_max_tree_entries(mut self, n: usize) -> Self {
        self.max_tree_entries = n;
        self
    }
    /// Sets [`FtpConfig::max_tree_depth`].
    pub fn with_max_tree_depth(mut self, n: usize) -> Self {
        self.max_tree_depth = n;
        self
    }
    /// Sets [`FtpConfig::max_path_bytes`].
    pub fn with_max_path_bytes(mut self, n: usize) -> Self {
        self.max_path_bytes = n;
        self
    }
    /// Sets [`FtpConfig::max_listing_bytes`].
    pub fn with_max_listing_bytes(mut self, n: u64) -> Self {
        self.max_listing_bytes = n;
        self
    }
    /// Sets [`FtpConfig::max_tree_bytes`].
    pub fn with_max_tree_bytes(mut self, n: u64) -> Self {
        self.max_tree_bytes = n;
        self
    }
}
