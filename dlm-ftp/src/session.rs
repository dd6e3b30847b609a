//! One logged-in control connection: connect, optional `AUTH TLS`, login,
//! `TYPE I`, extended passive mode.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ClientConfig;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::types::FileType;
use suppaftp::{Mode, Status};

use crate::error::from_suppaftp;
use crate::{FtpConfig, FtpError};

/// A logged-in FTP control connection.
pub(crate) type Session = AsyncRustlsFtpStream;

/// Where and as whom to log in.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: String,
    /// `ftps://`: TLS from the first byte (implicit FTPS).
    pub(crate) implicit_tls: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A connector with a session cache of its own: the control connection's data
/// connections must resume *its* TLS session (vsftpd's `require_ssl_reuse`),
/// not a ticket from a sibling connection to the same host.
fn own_session_cache(tls: &Arc<ClientConfig>) -> AsyncRustlsConnector {
    let mut own = (**tls).clone();
    own.resumption = rustls::client::Resumption::in_memory_sessions(8);
    AsyncRustlsConnector::from(tokio_rustls::TlsConnector::from(Arc::new(own)))
}

/// Opens and logs in a control connection.
pub(crate) async fn open(
    endpoint: &Endpoint,
    config: &FtpConfig,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Session, FtpError> {
    let host = endpoint.host.as_str();
    let addr: SocketAddr = tokio::net::lookup_host((host, endpoint.port))
        .await
        .map_err(|e| FtpError::Connection {
            host: host.to_string(),
            message: e.to_string(),
            tls_refused: false,
        })?
        .next()
        .ok_or_else(|| FtpError::Connection {
            host: host.to_string(),
            message: "no address".into(),
            tls_refused: false,
        })?;
    let login = async {
        let mut ftp = match (tls, endpoint.implicit_tls) {
            (Some(tls), true) => {
                let connector = own_session_cache(tls);
                let mut ftp = Session::connect_secure_implicit(addr, connector, host)
                    .await
                    .map_err(|e| from_suppaftp(host, e))?;
                // Protect the data connections too (RFC 4217 §9).
                for cmd in ["PBSZ 0", "PROT P"] {
                    ftp.custom_command(cmd, &[Status::CommandOk])
                        .await
                        .map_err(|e| from_suppaftp(host, e))?;
                }
                ftp
            }
            (Some(tls), false) => {
                let ftp = Session::connect_timeout(addr, config.connect_timeout)
                    .await
                    .map_err(|e| from_suppaftp(host, e))?;
                ftp.into_secure(own_session_cache(tls), host)
                    .await
                    .map_err(|e| from_suppaftp(host, e))?
            }
            (None, _) => Session::connect_timeout(addr, config.connect_timeout)
                .await
                .map_err(|e| from_suppaftp(host, e))?,
        };
        ftp.login(endpoint.user.as_str(), endpoint.password.as_str())
            .await
            .map_err(|e| from_suppaftp(host, e))?;
        // Paths are UTF-8 (RFC 2640); servers that do not know the option say so and go on.
        let _ = ftp
            .custom_command("OPTS UTF8 ON", &[Status::CommandOk])
            .await;
        ftp.transfer_type(FileType::Binary)
            .await
            .map_err(|e| from_suppaftp(host, e))?;
        if config.active {
            // The server connects back to us; accepted only from the control peer's address.
            ftp = ftp.active_mode(config.connect_timeout);
        } else {
            ftp.set_mode(Mode::ExtendedPassive);
        }
        Ok::<_, FtpError>(ftp)
    };
    tokio::time::timeout(config.connect_timeout, login)
        .await
        .map_err(|_| FtpError::Connection {
            host: host.to_string(),
            message: format!("login took longer than {:?}", config.connect_timeout),
            tls_refused: false,
        })?
}
