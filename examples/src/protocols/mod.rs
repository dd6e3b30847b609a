//! The one place that names protocols: it registers every protocol crate
//! dlm ships, turns settings (`-O section.key=value`, the CLI's convenience
//! flags, a `dlmd` job's `options`) into their configurations, and holds the
//! few protocol-specific commands (`dlm s3 presign`, `dlm seed`). Everything
//! else in `dlm` and `dlmd` goes through the [`ProtocolRegistry`].
//!
//! Adding a protocol crate: register it in [`registry`] (its settings section
//! comes with it), and map any convenience flag in [`flags`]; see
//! `dlm_core::docs::adding_a_protocol`.

pub mod extras;
pub mod flags;

use dlm_core::config::apply_options;
use dlm_core::{Error, ErrorKind, Options, ProtocolRegistry, Result};
use dlm_http::HttpConfig;

pub use flags::{NO_PORT_MAPPING_ENV, NetArgs, PeerArg};

/// The settings of every protocol, as built from defaults and options.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `http.*`: also the base of the HTTP clients of S3, trackers and gateways.
    pub http: HttpConfig,
    /// `ftp.*`.
    pub ftp: dlm_ftp::FtpConfig,
    /// `s3.*`.
    pub s3: dlm_s3::S3Config,
    /// `bittorrent.*`.
    pub bittorrent: dlm_bittorrent::TorrentConfig,
    /// `ipfs.*`.
    pub ipfs: dlm_ipfs::IpfsConfig,
}

/// Keys that name per-download settings rather than configuration fields
/// (handled by the protocol when it resolves an input): `http.header`.
pub fn is_per_download(key: &str) -> bool {
    key == dlm_http::OPTION_HEADER
}

/// Settings that keep protocol state under `dir` (the command line passes
/// its cache directory, `dlmd` its state directory): the BitTorrent DHT's
/// routing table, `bittorrent.dht_state_file=DIR/dht-nodes`. Put them
/// before other options, which then win.
pub fn state_options(dir: &std::path::Path) -> Options {
    Options::new().with(
        "bittorrent.dht_state_file",
        dir.join("dht-nodes").display().to_string(),
    )
}

/// Settings that belong to the process, not to one download: a `dlmd` job
/// may not set them (the DHT node is shared by every torrent, and its state
/// file is the daemon's to place; whether ports are opened on the NAT gateway
/// is the host's choice, not an API client's, and the DHT's mapping is shared).
pub fn is_process_setting(key: &str) -> bool {
    matches!(
        key,
        "bittorrent.dht_state_file"
            | "bittorrent.dht_port"
            | "bittorrent.dht_bootstrap"
            | "bittorrent.port_mapping"
    )
}

/// `SECTION.KEY` → value pairs (a `dlmd` job's `options`) as [`Options`].
pub fn options_from<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Options {
    pairs
        .into_iter()
        .fold(Options::new(), |o, (k, v)| o.with(k.clone(), v.clone()))
}

impl Settings {
    /// Defaults with the `section.key=value` pairs of `options` applied.
    /// `http.*` settings (TLS, proxies, timeouts, user agent; not extra
    /// headers, which stay with their origin) also reach the HTTP clients of
    /// S3, trackers and gateways, under their own `s3.*`, `bittorrent.*` and
    /// `ipfs.*` settings.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming an unknown section or key, or a bad value.
    pub fn from_options(options: &Options) -> Result<Self> {
        let known = [
            dlm_http::SECTION,
            dlm_ftp::SECTION,
            dlm_s3::SECTION,
            dlm_bittorrent::SECTION,
            dlm_ipfs::SECTION,
        ];
        let mut config_options = Options::new();
        for (k, v) in &options.pairs {
            let section = k.split('.').next().unwrap_or_default();
            if !known.contains(&section) || !k.contains('.') {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "unknown setting {k:?}: settings are SECTION.KEY with SECTION one of {}",
                        known.join(", ")
                    ),
                ));
            }
            if !is_per_download(k) {
                config_options = config_options.with(k.clone(), v.clone());
            }
        }
        let o = &config_options;
        let http = apply_options(&HttpConfig::default(), dlm_http::SECTION, o)?;
        let mut shared_http = http.clone();
        shared_http.headers.clear();
        Ok(Self {
            ftp: apply_options(&dlm_ftp::FtpConfig::default(), dlm_ftp::SECTION, o)?,
            s3: apply_options(
                &dlm_s3::S3Config::default().with_http(shared_http.clone()),
                dlm_s3::SECTION,
                o,
            )?,
            bittorrent: apply_options(
                &dlm_bittorrent::TorrentConfig::default().with_http(shared_http.clone()),
                dlm_bittorrent::SECTION,
                o,
            )?,
            ipfs: apply_options(
                &dlm_ipfs::IpfsConfig::default().with_http(shared_http),
                dlm_ipfs::SECTION,
                o,
            )?,
            http,
        })
    }

    /// A registry of every protocol with these settings.
    ///
    /// # Errors
    /// When a protocol refuses its settings (a malformed header, an unreadable CA file).
    pub fn registry(&self) -> Result<ProtocolRegistry> {
        let mut r = ProtocolRegistry::new();
        dlm_http::register_with(&mut r, self.http.clone())?;
        dlm_ftp::register_with(&mut r, self.ftp.clone())?;
        dlm_s3::register_with(&mut r, self.s3.clone())?;
        dlm_bittorrent::register_with(&mut r, self.bittorrent.clone())?;
        dlm_ipfs::register(&mut r, self.ipfs.clone())?;
        Ok(r)
    }
}

/// The registry every embedding uses: every protocol, configured by `options`.
///
/// # Errors
/// As [`Settings::from_options`] and [`Settings::registry`].
pub fn registry(options: &Options) -> Result<ProtocolRegistry> {
    Settings::from_options(options)?.registry()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_reach_every_protocol_and_unknown_keys_are_named() {
        let o = Options::new()
            .with("http.insecure", "true")
            .with("http.header", "X-A: 1")
            .with("bittorrent.max_peers", "80")
            .with("ipfs.gateways", "http://127.0.0.1:1")
            .with("s3.region", "eu-west-3");
        let s = Settings::from_options(&o).unwrap();
        assert!(s.http.insecure && s.bittorrent.http.insecure && !s.ftp.insecure);
        assert_eq!(s.bittorrent.max_peers, 80);
        assert_eq!(s.ipfs.gateways.len(), 1);
        assert_eq!(s.s3.region.as_deref(), Some("eu-west-3"));
        let e = Settings::from_options(&Options::new().with("torrent.max_peers", "1")).unwrap_err();
        assert!(e.to_string().contains("torrent.max_peers"), "{e}");
        let e =
            Settings::from_options(&Options::new().with("bittorrent.max_pears", "1")).unwrap_err();
        assert!(e.to_string().contains("bittorrent.max_pears"), "{e}");
        assert!(registry(&Options::new()).is_ok());
    }
}
