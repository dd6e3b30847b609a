//! One logged-in control connection: connect, optional `AUTH TLS`, login,
//! `FEAT`, `OPTS UTF8 ON`, `TYPE I`, and extended passive mode with a `PASV`
//! fallback.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ClientConfig;
use suppaftp::tokio::{
    AsyncRustlsConnector, AsyncRustlsFtpStream, AsyncRustlsStream, TransferStream,
};
use suppaftp::types::FileType;
use suppaftp::{Mode, Status};

use crate::error::from_suppaftp;
use crate::{FtpConfig, FtpError};

/// suppaftp's data stream over rustls.
pub(crate) type Transfer = TransferStream<AsyncRustlsStream>;

/// How data connections are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DataMode {
    /// `EPSV` (RFC 2428 §3).
    ExtendedPassive,
    /// `PASV` (RFC 959), after the server refused `EPSV`.
    Passive,
    /// `EPRT`/`PORT`: the server connects to us.
    Active,
}

/// A logged-in FTP control connection and what its server supports.
pub(crate) struct Session {
    pub(crate) ftp: AsyncRustlsFtpStream,
    /// `FEAT` lists `MLST`: directories are listed with `MLSD` (RFC 3659 §7).
    pub(crate) mlsd: bool,
    mode: DataMode,
}

impl Session {
    /// `REST offset` (when not 0, RFC 3659 §5) and `RETR path`.
    pub(crate) async fn retr(
        &mut self,
        path: &str,
        offset: u64,
    ) -> Result<Transfer, suppaftp::FtpError> {
        loop {
            if offset > 0 {
                self.ftp.resume_transfer(offset as usize).await?;
            }
            match self.ftp.retr_as_stream(path).await {
                Err(e) if self.passive_fallback(&e) => {}
                other => return other,
            }
        }
    }

    /// A data command whose reply is a listing (`MLSD dir`, `LIST dir`).
    pub(crate) async fn data_command(
        &mut self,
        command: &str,
    ) -> Result<Transfer, suppaftp::FtpError> {
        let expected = [Status::AboutToSend, Status::AlreadyOpen];
        loop {
            match self.ftp.custom_data_command(command, &expected).await {
                Err(e) if self.passive_fallback(&e) => {}
                other => return other.map(|(_, t)| t),
            }
        }
    }

    /// When `e` says the server does not know `EPSV` (500/502), switches to
    /// `PASV` and says to try again (once per session). The address in a
    /// `PASV` reply is ignored in favour of the control connection's peer:
    /// a server behind NAT often announces a private address (curl does the
    /// same by default, `--ftp-skip-pasv-ip`).
    fn passive_fallback(&mut self, e: &suppaftp::FtpError) -> bool {
        let suppaftp::FtpError::UnexpectedResponse(r) = e else {
            return false;
        };
        let text = String::from_utf8_lossy(&r.body);
        if self.mode != DataMode::ExtendedPassive || !matches!(text.get(..3), Some("500" | "502")) {
            return false;
        }
        tracing::debug!(reply = %text.trim(), "EPSV refused: falling back to PASV");
        self.ftp.set_mode(Mode::Passive);
        self.ftp.set_passive_nat_workaround(true);
        self.mode = DataMode::Passive;
        true
    }
}

/// Waits at most [`FtpConfig::reply_timeout`] for `reply`, the outcome of
/// `command` on a logged-in session. A session that timed out must be
/// dropped (closed), never released: its replies are out of step.
///
/// # Errors
/// [`FtpError::ReplyTimeout`] when no reply came in time; the command's own
/// error converted for `host`.
pub(crate) async fn within<T>(
    config: &FtpConfig,
    host: &str,
    command: &str,
    reply: impl std::future::Future<Output = Result<T, suppaftp::FtpError>>,
) -> Result<T, FtpError> {
    match tokio::time::timeout(config.reply_timeout, reply).await {
        Ok(r) => r.map_err(|e| from_suppaftp(host, e)),
        Err(_) => Err(FtpError::ReplyTimeout {
            host: host.to_string(),
            command: command.chars().take(200).collect(),
            secs: config.reply_timeout.as_secs_f64(),
        }),
    }
}

/// Where and as whom to log in.
#[derive(Clone, PartialEq, Eq, Hash)]
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

fn connection_error(host: &str, message: String) -> FtpError {
    FtpError::Connection {
        host: host.to_string(),
        message,
        tls_refused: false,
    }
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
        .map_err(|e| connection_error(host, e.to_string()))?
        .next()
        .ok_or_else(|| connection_error(host, "no address".into()))?;
    let login = async {
        let mut ftp = match (tls, endpoint.implicit_tls) {
            (Some(tls), true) => {
                let connector = own_session_cache(tls);
                let mut ftp = AsyncRustlsFtpStream::connect_secure_implicit(addr, connector, host)
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
                let ftp = AsyncRustlsFtpStream::connect_timeout(addr, config.connect_timeout)
                    .await
                    .map_err(|e| from_suppaftp(host, e))?;
                ftp.into_secure(own_session_cache(tls), host)
                    .await
                    .map_err(|e| from_suppaftp(host, e))?
            }
            (None, _) => AsyncRustlsFtpStream::connect_timeout(addr, config.connect_timeout)
                .await
                .map_err(|e| from_suppaftp(host, e))?,
        };
        ftp.login(endpoint.user.as_str(), endpoint.password.as_str())
            .await
            .map_err(|e| from_suppaftp(host, e))?;
        // FEAT (RFC 2389) is optional: without it, assume the RFC 959 basics.
        let features = ftp.feat().await.unwrap_or_default();
        let has = |name: &str| features.keys().any(|k| k.eq_ignore_ascii_case(name));
        if features.is_empty() || has("UTF8") {
            // Paths are UTF-8 (RFC 2640 §3.2); a server that does not know the option says so and goes on.
            let _ = ftp
                .custom_command("OPTS UTF8 ON", &[Status::CommandOk])
                .await;
        }
        ftp.transfer_type(FileType::Binary)
            .await
            .map_err(|e| from_suppaftp(host, e))?;
        let mode = if config.active {
            // The server connects back to us; accepted only from the control peer's address.
            ftp = ftp.active_mode(config.connect_timeout);
            DataMode::Active
        } else {
            ftp.set_mode(Mode::ExtendedPassive);
            DataMode::ExtendedPassive
        };
        Ok::<_, FtpError>(Session {
            ftp,
            mlsd: has("MLST"),
            mode,
        })
    };
    tokio::time::timeout(config.connect_timeout, login)
        .await
        .map_err(|_| {
            connection_error(
                host,
                format!("login took longer than {:?}", config.connect_timeout),
            )
        })?
}
