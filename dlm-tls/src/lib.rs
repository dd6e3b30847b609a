#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod insecure;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// How server certificates are checked.
///
/// # Defaults
/// The webpki (Mozilla) roots; verification on.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    /// PEM file of CA certificates to trust *instead of* the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Dangerous: only for testing.
    pub insecure: bool,
}

impl TlsConfig {
    /// Trust the CA certificates in `path` instead of the built-in roots.
    pub fn with_ca_file(mut self, path: Option<PathBuf>) -> Self {
        self.ca_file = path;
        self
    }

    /// Accept any certificate (`true`). Dangerous: only for testing.
    pub fn with_insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }
}

/// Why no TLS configuration could be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The CA file could not be read or parsed.
    #[error("{path}: {message}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the protocol versions (never with the built-in provider).
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// The rustls client configuration for `config`: the ring provider (exactly
/// one, chosen explicitly: `ClientConfig::builder()` panics when both ring and
/// aws-lc-rs are compiled in), safe default protocol versions, no client
/// certificate, no ALPN (the caller's connector sets it).
///
/// # Errors
/// [`TlsError::CaFile`] when the CA file cannot be read or holds no usable
/// certificate.
pub fn client_config(config: &TlsConfig) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    if config.insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(insecure::AcceptAnything::new(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let bad = |message: String| TlsError::CaFile {
                path: path.clone(),
                message,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(bad("no usable CA certificate".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_each_mode_and_names_a_bad_ca_file() {
        assert!(client_config(&TlsConfig::default()).is_ok());
        assert!(client_config(&TlsConfig::default().with_insecure(true)).is_ok());
        let dir = std::env::temp_dir().join(format!("dlm-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config(&TlsConfig::default().with_ca_file(Some(empty.clone()))).unwrap_err();
        assert!(e.to_string().contains("empty.pem"), "{e}");
        let missing = dir.join("missing.pem");
        let e = client_config(&TlsConfig::default().with_ca_file(Some(missing))).unwrap_err();
        assert!(matches!(e, TlsError::CaFile { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
