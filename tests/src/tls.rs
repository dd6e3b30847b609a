//! A throw-away certificate authority and a server certificate for `localhost`, `127.0.0.1` and `::1`.
//!
//! The server certificate is a proper leaf (`CA:FALSE`, EKU `serverAuth`): rustls rejects a CA certificate used as
//! an end entity (`CaUsedAsEndEntity`), which is what a plain `openssl req -x509` would give.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The PEM files of a fresh CA and of a server certificate it signed.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    ca_pem: PathBuf,
    server_pem: PathBuf,
    server_key: PathBuf,
}

impl TlsFiles {
    /// Generates a new CA and a server certificate (ECDSA P-256) and writes `ca.pem`, `server.pem` and
    /// `server.key` (PKCS #8) into `dir`, which must exist.
    ///
    /// The server certificate names `localhost`, `127.0.0.1` and `::1`; clients should trust `ca.pem`.
    ///
    /// # Errors
    ///
    /// If a file cannot be written, or (unexpectedly) key generation or signing fails.
    pub fn generate(dir: &Path) -> io::Result<Self> {
        let ca_key = KeyPair::generate().map_err(io::Error::other)?;
        let mut ca_params = CertificateParams::new(Vec::new()).map_err(io::Error::other)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "dlm test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(io::Error::other)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(io::Error::other)?;
        let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        let mut server_params = CertificateParams::new(names).map_err(io::Error::other)?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_params.is_ca = IsCa::ExplicitNoCa;
        server_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .map_err(io::Error::other)?;

        let files = Self {
            ca_pem: dir.join("ca.pem"),
            server_pem: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        };
        fs::write(&files.ca_pem, ca_cert.pem())?;
        fs::write(&files.server_pem, server_cert.pem())?;
        fs::write(&files.server_key, server_key.serialize_pem())?;
        Ok(files)
    }

    /// The CA certificate (PEM) that clients should trust.
    pub fn ca_pem(&self) -> &Path {
        &self.ca_pem
    }

    /// The server certificate (PEM), signed by the CA.
    pub fn server_pem(&self) -> &Path {
        &self.server_pem
    }

    /// The server's private key (PEM, PKCS #8).
    pub fn server_key(&self) -> &Path {
        &self.server_key
    }
}
