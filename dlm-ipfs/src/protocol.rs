//! Registration with the `ProtocolRegistry`: `ipfs://`, `ipns://`, and
//! scheme-less CIDs and `/ipfs/…`, `/ipns/…` paths.

use dlm_core::{Input, Protocol, ProtocolRegistry, Resolve, Result, Target};

use crate::IpfsConfig;
use crate::address::IpfsAddress;

/// The options section of this protocol: `ipfs.gateways=…`, `ipfs.dht=true`
/// (the fields of [`IpfsConfig`]).
pub const SECTION: &str = "ipfs";

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
        Input::Url(u) => Some(u.raw().to_string()),
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

    /// Fetches the root of the address (through IPNS and the path, if any)
    /// to learn whether it names a file or a directory.
    /// The `ipfs.*` options ([`IpfsConfig`]'s fields: `ipfs.gateways`,
    /// `ipfs.peers`, `ipfs.dht`) apply to this input only.
    async fn resolve(&self, input: &Input, cx: &Resolve<'_>) -> Result<Target> {
        let config = dlm_core::config::apply_options(&self.config, SECTION, cx.options)?;
        let t = text(input).unwrap_or_else(|| input.to_string());
        crate::resolve_target(&t, config).await
    }
}

/// Registers [`IpfsProtocol`] with `config`.
///
/// # Errors
/// When another protocol already registered `ipfs` or `ipns`.
pub fn register(registry: &mut ProtocolRegistry, config: IpfsConfig) -> Result<()> {
    registry.register(IpfsProtocol::new(config))
}
