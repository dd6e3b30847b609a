//! `FtpProtocol`: registers `ftp` and `ftps` with a `ProtocolRegistry`.

use std::sync::Arc;

use dlm_core::{
    BoxListing, BoxSource, Error, ErrorKind, Input, Options, Protocol, ProtocolRegistry, Result,
};

use crate::listing::is_directory_url;
use crate::{FtpConfig, FtpListing, FtpSource};

/// URL schemes served by this crate.
pub const SCHEMES: &[&str] = &["ftp", "ftps"];

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

    fn source(&self, input: &Input, _options: &Options) -> Result<BoxSource> {
        let Input::Url(url) = input else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{input} is not an ftp URL"),
            ));
        };
        Ok(Arc::new(FtpSource::new(url.clone(), self.config.clone())?))
    }

    /// `ftp://host/dir/`: a path ending in `/` (or none) names a directory.
    fn is_listing(&self, input: &Input) -> bool {
        matches!(input, Input::Url(url) if is_directory_url(url))
    }

    fn listing(&self, input: &Input, _options: &Options) -> Result<BoxListing> {
        let Input::Url(url) = input else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{input} is not an ftp URL"),
            ));
        };
        Ok(Arc::new(FtpListing::new(url.clone(), self.config.clone())?))
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

    #[test]
    fn registers_ftp_and_checks_urls() {
        let mut r = ProtocolRegistry::new();
        register(&mut r).unwrap();
        let s = r
            .source(&Input::parse("ftp://u:secret@h/dir/f.bin"), &Options::new())
            .unwrap();
        assert_eq!(s.identity_dyn(), "ftp://h/dir/f.bin");
        let e = r
            .source(&Input::parse("ftp://h/dir/"), &Options::new())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
