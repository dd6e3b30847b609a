//! `TorrentProtocol`: claims `.torrent` files for a `ProtocolRegistry`.

use std::sync::Arc;

use dlm_core::{BoxSource, Error, ErrorKind, Input, Options, Protocol, ProtocolRegistry, Result};

use crate::{Metainfo, TorrentConfig, TorrentSource};

/// The BitTorrent backend: a local `.torrent` file (by extension).
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
        &[]
    }

    fn claims(&self, input: &Input) -> bool {
        matches!(input, Input::File(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("torrent")))
    }

    fn source(&self, input: &Input, _options: &Options) -> Result<BoxSource> {
        let Input::File(path) = input else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{input} is not a .torrent file"),
            ));
        };
        let m = Metainfo::from_file(path)?;
        Ok(Arc::new(TorrentSource::new(m, self.config.clone())))
    }
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
