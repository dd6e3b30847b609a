//! Registration with the `ProtocolRegistry`: `ipfs://`, `ipns://`, and
//! scheme-less CIDs and `/ipfs/…`, `/ipns/…` paths.

use std::sync::Arc;

use dlm_core::{BoxSource, Input, Options, Protocol, ProtocolRegistry, Result};

use crate::address::IpfsAddress;
use crate::{IpfsConfig, IpfsSource};

/// The IPFS protocol.
#[derive(Debug, Default)]
pub struct IpfsProtocol {
    config: IpfsConfig,
}

impl IpfsProtocol {
    /// A protocol whose sources use `config`.
    pub fn new(config: IpfsConfig) -> Self {
        Self { config }
    }
}

fn text(input: &Input) -> Option<String> {
    match input {
        Input::Url(u) => Some(u.as_str().to_string()),
        Input::Text(t) => Some(t.clone()),
        _ => None,
    }
}

impl Protocol for IpfsProtocol {
    fn name(&self) -> &'static str {
        "ipfs"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["ipfs", "ipns"]
    }

    fn claims(&self, input: &Input) -> bool {
        matches!(input, Input::Text(t) if IpfsAddress::looks_like(t))
    }

    fn source(&self, input: &Input, _options: &Options) -> Result<BoxSource> {
        let t = text(input).unwrap_or_else(|| input.to_string());
        let address = IpfsAddress::parse(&t)?;
        Ok(Arc::new(IpfsSource::new(address, self.config.clone())?))
    }
}

/// Registers [`IpfsProtocol`] with `config`.
///
/// # Errors
/// When another protocol already registered `ipfs` or `ipns`.
pub fn register(registry: &mut ProtocolRegistry, config: IpfsConfig) -> Result<()> {
    registry.register(IpfsProtocol::new(config))
}
