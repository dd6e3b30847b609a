//! `FtpProtocol`: registers `ftp` and `ftps` with a `ProtocolRegistry`.

use std::sync::Arc;

use dlm_core::{Error, ErrorKind, Input, Protocol, ProtocolRegistry, Resolve, Result, Target};

use crate::listing::is_directory_url;
use crate::{FtpConfig, FtpListing, FtpSource};

/// URL schemes served by this crate.
pub const SCHEMES: &[&str] = &["ftp", "ftps"];

/// The options section of this protocol: `ftp.active=true`, `ftp.max_connections=4`
/// (the fields of [`FtpConfig`]).
pub const SECTION: &str = "ftp";

/// The FTP protocol backend.
#[derive(Clone, Debug, Default)]
pub struct FtpProtocol {
    config: FtpConfig,
}

impl FtpProtocol {
    /// A backend with `config`.
    pub fn new(config: FtpConfig) -> Self {
        Self { config }
    }
}

impl Protocol for FtpProtocol {
    fn name(&self) -> &'static str {
        "ftp"
    }

    fn schemes(&self) -> &'static [&'static str] {
        SCHEMES
    }

    /// `ftp://host/dir/` (a path ending in `/`, or none) names a directory
    /// tree; any other path one file. No I/O.
    /// The `ftp.*` options ([`FtpConfig`]'s fields) apply to this input only.
    async fn resolve(&self, input: &Input, cx: &Resolve<'_>) -> Result<Target> {
        let config = dlm_core::config::apply_options(&self.config, SECTION, cx.options)?;
        let Input::Url(url) = input else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{input} is not an ftp URL"),
            ));
        };
        Ok(if is_directory_url(url) {
            Target::Listing(Arc::new(FtpListing::new(url.url().clone(), config)?))
        } else {
            Target::Source(Arc::new(FtpSource::new(url.url().clone(), config)?))
        })
    }
}

/// Registers `ftp` and `ftps` with `config`.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when the scheme is already registered.
pub fn register_with(registry: &mut ProtocolRegistry, config: FtpConfig) -> Result<()> {
    registry.register(FtpProtocol::new(config))
}

/// Registers `ftp` and `ftps` with the default configuration.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when the scheme is already registered.
pub fn register(registry: &mut ProtocolRegistry) -> Result<()> {
    register_with(registry, FtpConfig::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registers_ftp_and_checks_urls() {
        use dlm_core::Options;
        let mut r = ProtocolRegistry::new();
        register(&mut r).unwrap();
        let s = r
            .source(&Input::parse("ftp://u:secret@h/dir/f.bin"), &Options::new())
            .await
            .unwrap();
        assert_eq!(s.identity_dyn(), "ftp://h/dir/f.bin");
        let e = r
            .source(&Input::parse("ftp://h/dir/"), &Options::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
