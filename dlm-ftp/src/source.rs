//! `FtpSource`: one file on an FTP server, probed with `SIZE`/`MDTM` and read
//! by ranges with `REST` + `RETR` on a fresh control connection per range.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use dlm_core::{BodyStream, Capabilities, Context, Probe, ReadRange, Result, Source, redact_url};
use futures::StreamExt;
use percent_encoding::percent_decode_str;
use rustls::ClientConfig;
use tokio::io::AsyncReadExt;
use url::Url;

use crate::error::from_suppaftp;
use crate::session::{self, Endpoint, Session};
use crate::{FtpConfig, FtpError};

/// Bytes read from the data connection per step.
const READ_BYTES: usize = 64 << 10;

/// An `ftp://` or `ftps://` (implicit TLS, RFC 4217 §2) URL as a [`Source`].
///
/// `probe` logs in and asks `SIZE` and `MDTM` (RFC 3659 §4, §3): the length
/// and the validator. Each `open` is its own session: `REST offset`
/// (RFC 3659 §5) then `RETR`, read until the range's end, then the
/// connection is dropped (the engine stops reading at the end of a range).
#[derive(Debug)]
pub struct FtpSource {
    url: Url,
    path: String,
    endpoint: Endpoint,
    config: FtpConfig,
    tls: Option<Arc<ClientConfig>>,
}

impl FtpSource {
    /// A source for `url` (`ftp://[user[:password]@]host[:port]/path`).
    /// Without userinfo it uses `~/.netrc` ([`FtpConfig::netrc`]), else logs
    /// in anonymously.
    ///
    /// # Errors
    /// [`FtpError::InvalidUrl`] for a URL without host or file path,
    /// [`FtpError::Tls`] when the CA file is unusable, [`FtpError::Netrc`]
    /// when the netrc file cannot be read.
    pub fn new(url: Url, config: FtpConfig) -> Result<Self, FtpError> {
        let host = url
            .host_str()
            .ok_or_else(|| FtpError::InvalidUrl(redact_url(&url)))?
            .trim_matches(['[', ']'])
            .to_string();
        let path = percent_decode_str(url.path())
            .decode_utf8_lossy()
            .into_owned();
        if path.is_empty() || path.ends_with('/') {
            return Err(FtpError::InvalidUrl(format!(
                "{}: names a directory, not a file",
                redact_url(&url)
            )));
        }
        let (user, password) = if url.username().is_empty() {
            match config.netrc.credentials(&host).map_err(FtpError::Netrc)? {
                Some(c) => (c.login, c.password),
                None => ("anonymous".to_string(), "dlm@".to_string()),
            }
        } else {
            (
                percent_decode_str(url.username())
                    .decode_utf8_lossy()
                    .into_owned(),
                url.password()
                    .map(|p| percent_decode_str(p).decode_utf8_lossy().into_owned())
                    .unwrap_or_default(),
            )
        };
        // ftps:// is implicit TLS on port 990; ftp:// is plain unless explicit TLS is asked for.
        let implicit_tls = url.scheme().eq_ignore_ascii_case("ftps");
        let tls = if implicit_tls || config.explicit_tls {
            Some(crate::tls::client_config(&config)?)
        } else {
            None
        };
        Ok(Self {
            endpoint: Endpoint {
                host,
                port: url.port().unwrap_or(if implicit_tls { 990 } else { 21 }),
                user,
                password,
                implicit_tls,
            },
            url,
            path,
            config,
            tls,
        })
    }

    async fn session(&self) -> Result<Session, FtpError> {
        session::open(&self.endpoint, &self.config, self.tls.as_ref()).await
    }

    fn err(&self, e: suppaftp::FtpError) -> FtpError {
        from_suppaftp(&self.endpoint.host, e)
    }
}

fn to_system_time(t: chrono::NaiveDateTime) -> Option<SystemTime> {
    let secs = u64::try_from(t.and_utc().timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

impl Source for FtpSource {
    fn identity(&self) -> String {
        redact_url(&self.url)
    }

    async fn probe(&self, _cx: &Context) -> Result<Probe> {
        let mut ftp = self.session().await?;
        let len = ftp.size(&self.path).await.map_err(|e| self.err(e))? as u64;
        // MDTM is optional (RFC 3659); without it the length is the only validator.
        let modified = ftp.mdtm(&self.path).await.ok().and_then(to_system_time);
        let _ = ftp.quit().await;
        let caps = Capabilities::default()
            .with_ranges(true)
            .with_max_connections(std::num::NonZeroU32::new(self.config.max_connections));
        let mut probe = Probe::new(Some(len), caps);
        probe.last_modified = modified;
        probe.file_name = self.path.rsplit('/').next().map(str::to_string);
        probe.effective_url = Some(redact_url(&self.url));
        Ok(probe)
    }

    async fn open(&self, _cx: &Context, range: ReadRange) -> Result<BodyStream> {
        let mut ftp = self.session().await?;
        if range.start() > 0 {
            ftp.resume_transfer(range.start() as usize)
                .await
                .map_err(|e| self.err(e))?;
        }
        let transfer = ftp
            .retr_as_stream(&self.path)
            .await
            .map_err(|e| self.err(e))?;
        let host = self.endpoint.host.clone();
        let idle = self.config.idle_timeout;
        // The stream owns the control connection: it must stay open while data flows.
        let state = Some((ftp, transfer));
        let stream = futures::stream::unfold(state, move |state| {
            let host = host.clone();
            async move {
                let (ftp, mut transfer) = state?;
                let mut buf = BytesMut::zeroed(READ_BYTES);
                match tokio::time::timeout(idle, transfer.read(&mut buf)).await {
                    Err(_) => {
                        let e = FtpError::IdleTimeout {
                            host,
                            secs: idle.as_secs(),
                        };
                        Some((Err(e.into()), None))
                    }
                    Ok(Err(e)) => {
                        let e = FtpError::Connection {
                            host,
                            message: e.to_string(),
                            tls_refused: false,
                        };
                        Some((Err(e.into()), None))
                    }
                    Ok(Ok(0)) => {
                        // The whole file arrived: read the 226 and log out politely.
                        let mut ftp = ftp;
                        let finished = transfer.finish().await;
                        let _ = ftp.quit().await;
                        match finished {
                            Ok(()) => None,
                            Err(e) => Some((Err(from_suppaftp(&host, e).into()), None)),
                        }
                    }
                    Ok(Ok(n)) => {
                        buf.truncate(n);
                        Some((
                            Ok::<Bytes, dlm_core::Error>(buf.freeze()),
                            Some((ftp, transfer)),
                        ))
                    }
                }
            }
        });
        Ok(stream.boxed())
    }
}
