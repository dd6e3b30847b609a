//! `S3Protocol`: registers `s3` with a `ProtocolRegistry`.

use std::sync::{Arc, OnceLock};

use dlm_core::{Error, ErrorKind, Input, Protocol, ProtocolRegistry, Resolve, Result, Target};

use crate::{S3Client, S3Config, S3Listing, S3Location, S3Source};

/// URL schemes served by this crate.
pub const SCHEMES: &[&str] = &["s3"];

/// The options section of this protocol: `s3.endpoint_url=…`, `s3.region=…`
/// (the fields of [`S3Config`]).
pub const SECTION: &str = "s3";

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

    /// `s3://bucket/key` is one object; `s3://bucket/prefix/` (or
    /// `s3://bucket`) every object under the prefix. No I/O.
    /// `s3.*` options ([`S3Config`]'s fields: `s3.endpoint_url`, `s3.region`,
    /// …) make a client for this input only.
    async fn resolve(&self, input: &Input, cx: &Resolve<'_>) -> Result<Target> {
        let location = Self::location(input)?;
        let client = if cx.options.section(SECTION).next().is_some() {
            S3Client::new(dlm_core::config::apply_options(
                &self.config,
                SECTION,
                cx.options,
            )?)?
        } else {
            self.client()?
        };
        Ok(if location.is_prefix() {
            Target::Listing(Arc::new(S3Listing::new(client, location)?))
        } else {
            Target::Source(Arc::new(S3Source::new(client, location)?))
        })
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
