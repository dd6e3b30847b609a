//! `S3Protocol`: registers `s3` with a `ProtocolRegistry`.

use std::sync::{Arc, OnceLock};

use dlm_core::{
    BoxListing, BoxSource, Error, ErrorKind, Input, Options, Protocol, ProtocolRegistry, Result,
};

use crate::{S3Client, S3Config, S3Listing, S3Location, S3Source};

/// URL schemes served by this crate.
pub const SCHEMES: &[&str] = &["s3"];

/// The S3 backend: one [`S3Client`] (one connection pool, one credential
/// cache) for every object it serves, made on first use.
#[derive(Debug, Default)]
pub struct S3Protocol {
    config: S3Config,
    client: OnceLock<S3Client>,
}

impl S3Protocol {
    /// A backend with `config`.
    pub fn new(config: S3Config) -> Self {
        Self {
            config,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<S3Client> {
        if let Some(c) = self.client.get() {
            return Ok(c.clone());
        }
        let c = S3Client::new(self.config.clone())?;
        Ok(self.client.get_or_init(|| c).clone())
    }

    fn location(input: &Input) -> Result<S3Location> {
        let Input::Url(url) = input else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{input} is not an s3:// URL"),
            ));
        };
        Ok(S3Location::parse(url)?)
    }
}

impl Protocol for S3Protocol {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn schemes(&self) -> &'static [&'static str] {
        SCHEMES
    }

    fn source(&self, input: &Input, _options: &Options) -> Result<BoxSource> {
        let location = Self::location(input)?;
        Ok(Arc::new(S3Source::new(self.client()?, location)?))
    }

    /// `s3://bucket/prefix/` (or `s3://bucket`): every object under the prefix.
    fn is_listing(&self, input: &Input) -> bool {
        Self::location(input).is_ok_and(|l| l.is_prefix())
    }

    fn listing(&self, input: &Input, _options: &Options) -> Result<BoxListing> {
        let location = Self::location(input)?;
        Ok(Arc::new(S3Listing::new(self.client()?, location)?))
    }
}

/// Registers `s3` with `config`.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when the scheme is already registered.
pub fn register_with(registry: &mut ProtocolRegistry, config: S3Config) -> Result<()> {
    registry.register(S3Protocol::new(config))
}

/// Registers `s3` with the default configuration (environment and `~/.aws`).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when the scheme is already registered.
pub fn register(registry: &mut ProtocolRegistry) -> Result<()> {
    register_with(registry, S3Config::default())
}
