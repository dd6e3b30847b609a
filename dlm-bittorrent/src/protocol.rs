//! `TorrentProtocol`: claims `.torrent` files and URLs for a `ProtocolRegistry`.

use std::sync::Arc;

use dlm_core::{Error, ErrorKind, Input, Protocol, ProtocolRegistry, Resolve, Result, Target};

use crate::{
    MagnetLink, MagnetSource, Metainfo, TorrentConfig, TorrentSource, fetch_metainfo,
    is_torrent_url,
};

/// The media type of a `.torrent` (BEP 3 names none; trackers and aria2 use this one).
pub const MEDIA_TYPE: &str = "application/x-bittorrent";

/// The options section of this protocol: `bittorrent.max_peers=80`,
/// `bittorrent.upload_limit=1048576` (the fields of [`TorrentConfig`]).
pub const SECTION: &str = "bittorrent";

/// The BitTorrent backend: a local `.torrent` file (by extension), an
/// `http(s)://…/x.torrent` URL, any HTTP URL served as
/// `application/x-bittorrent` (handed over by the HTTP protocol), a
/// `magnet:` link (BEP 9), or a bare info-hash (40 hex digits, taken as
/// `magnet:?xt=urn:btih:…`).
#[derive(Debug, Clone, Default)]
pub struct TorrentProtocol {
    config: TorrentConfig,
}

impl TorrentProtocol {
    /// A backend with `config`.
    pub fn new(config: TorrentConfig) -> Self {
        Self { config }
    }
}

impl Protocol for TorrentProtocol {
    fn name(&self) -> &'static str {
        "bittorrent"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["magnet"]
    }

    fn claims(&self, input: &Input) -> bool {
        match input {
            Input::File(p) => p
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("torrent")),
            Input::Url(u) => is_torrent_url(u.as_str()).is_some(),
            Input::Text(t) => is_info_hash(t),
            _ => false,
        }
    }

    fn media_types(&self) -> &'static [&'static str] {
        &[MEDIA_TYPE]
    }

    /// Reads the `.torrent` (from disk, or over HTTP with the configured
    /// client, at most [`MAX_TORRENT_BYTES`](crate::MAX_TORRENT_BYTES)) and
    /// makes its [`TorrentSource`]. Joins no swarm yet.
    /// The `bittorrent.*` options ([`TorrentConfig`]'s fields:
    /// `bittorrent.max_peers`, `bittorrent.upload_limit=1048576`, …) apply to this
    /// input only.
    async fn resolve(&self, input: &Input, cx: &Resolve<'_>) -> Result<Target> {
        let config = dlm_core::config::apply_options(&self.config, SECTION, cx.options)?;
        let metainfo = match input {
            Input::Url(url) if url.scheme() == "magnet" => {
                let link = MagnetLink::parse(url.raw())?;
                let source = MagnetSource::new(link, config).with_registry(cx.registry());
                return Ok(Target::Source(Arc::new(source)));
            }
            Input::Text(t) if is_info_hash(t) => {
                let link = MagnetLink::parse(&format!("magnet:?xt=urn:btih:{t}"))?;
                let source = MagnetSource::new(link, config).with_registry(cx.registry());
                return Ok(Target::Source(Arc::new(source)));
            }
            Input::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || Metainfo::from_file(&path))
                    .await
                    .map_err(|e| Error::new(ErrorKind::Io, format!("reading task failed: {e}")))??
            }
            Input::Url(url) if matches!(url.scheme(), "http" | "https") => {
                let client = dlm_http::HttpClient::new(config.http.clone())?;
                fetch_metainfo(&client, url).await?
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{input} is not a .torrent file or URL"),
                ));
            }
        };
        Ok(Target::Source(Arc::new(
            TorrentSource::new(metainfo, config).with_registry(cx.registry()),
        )))
    }
}

/// Whether `s` is a bare v1 info-hash: 40 hex digits.
fn is_info_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Registers `.torrent` files with `config`.
///
/// # Errors
/// As [`ProtocolRegistry::register`].
pub fn register_with(registry: &mut ProtocolRegistry, config: TorrentConfig) -> Result<()> {
    registry.register(TorrentProtocol::new(config))
}

/// Registers `.torrent` files with the default configuration.
///
/// # Errors
/// As [`ProtocolRegistry::register`].
pub fn register(registry: &mut ProtocolRegistry) -> Result<()> {
    register_with(registry, TorrentConfig::default())
}
