//! `FtpSource`: one file on an FTP server, probed with `SIZE`/`MDTM` and read
//! by ranges with `REST` + `RETR`, on control connections from a
//! [`SessionPool`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dlm_core::{BodyStream, Capabilities, Context, Probe, ReadRange, Result, Source, redact_url};
use percent_encoding::percent_decode_str;
use url::Url;

use crate::pool::SessionPool;
use crate::retrieval::Retrieval;
use crate::session::{Endpoint, within};
use crate::{FtpConfig, FtpError};

/// An `ftp://` or `ftps://` (implicit TLS, RFC 4217 §2) URL as a [`Source`].
///
/// `probe` asks `SIZE` and `MDTM` (RFC 3659 §4, §3): the length and the
/// validator. Each `open` sends `REST offset` (RFC 3659 §5) then `RETR` on a
/// pooled control connection and reads until the range's end. A range that
/// reaches the end of the file hands its session back to the pool once the
/// server's `226` arrives; a range cut short closes its data connection and
/// its session is reused once the server confirms with `426`.
#[derive(Debug)]
pub struct FtpSource {
    url: Url,
    path: String,
    pool: Arc<SessionPool>,
}

/// A session pool for `url`'s server, logging in with the URL's userinfo,
/// else `~/.netrc`, else anonymously; TLS mode from the scheme and `config`.
pub(crate) fn session_pool(url: &Url, config: &FtpConfig) -> Result<Arc<SessionPool>, FtpError> {
    let host = url
        .host_str()
        .ok_or_else(|| FtpError::InvalidUrl(redact_url(url)))?
        .trim_matches(['[', ']'])
        .to_string();
    let (user, password) = if url.username().is_empty() {
        match config.netrc.credentials(&host).map_err(FtpError::Netrc)? {
            Some(c) => (c.login, c.password),
            None => ("anonymous".to_string(), "dlm@".to_string()),
        }
    } else {
        (
            decode(url.username()),
            url.password().map(decode).unwrap_or_default(),
        )
    };
    // ftps:// is implicit TLS on port 990; ftp:// is plain unless explicit TLS is asked for.
    let implicit_tls = url.scheme().eq_ignore_ascii_case("ftps");
    let tls = if implicit_tls || config.explicit_tls {
        Some(Arc::new(
            dlm_tls::client_config(&config.tls()).map_err(|e| FtpError::Tls(e.to_string()))?,
        ))
    } else {
        None
    };
    let endpoint = Endpoint {
        host,
        port: url.port().unwrap_or(if implicit_tls { 990 } else { 21 }),
        user,
        password,
        implicit_tls,
    };
    Ok(SessionPool::new(endpoint, config.clone(), tls))
}

/// A percent-decoded URL part (paths are sent to the server decoded).
pub(crate) fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The path a URL names on the server, per RFC 1738 §3.2.2 as curl reads it:
/// relative to the login directory (`ftp://h/a/b` is `a/b`), absolute when it
/// starts with an encoded slash (`ftp://h/%2Fetc/f` is `/etc/f`).
pub(crate) fn remote_path(url: &Url) -> String {
    let raw = url.path().strip_prefix('/').unwrap_or(url.path());
    decode(raw)
}

impl FtpSource {
    /// A source for `url` (`ftp://[user[:password]@]host[:port]/path`).
    /// Without userinfo it uses `~/.netrc` ([`FtpConfig::netrc`]), else logs
    /// in anonymously.
    ///
    /// # Errors
    /// [`FtpError::InvalidUrl`] for a URL without host or file path (a path
    /// ending in `/` is a directory: see [`FtpListing`](crate::FtpListing)),
    /// [`FtpError::Tls`] when the CA file is unusable, [`FtpError::Netrc`]
    /// when the netrc file cannot be read.
    pub fn new(url: Url, config: FtpConfig) -> Result<Self, FtpError> {
        if crate::listing::is_directory_url(&url) {
            return Err(FtpError::InvalidUrl(format!(
                "{}: names a directory, not a file",
                redact_url(&url)
            )));
        }
        let pool = session_pool(&url, &config)?;
        let path = remote_path(&url);
        Ok(Self { url, path, pool })
    }

    /// A file at `path` on the pool's server (a directory listing's entry).
    pub(crate) fn in_pool(url: Url, path: String, pool: Arc<SessionPool>) -> Self {
        Self { url, path, pool }
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
        let config = self.pool.config();
        let host = &self.pool.endpoint().host;
        let mut session = self.pool.get().await?;
        let len = within(config, host, "SIZE", session.ftp.size(&self.path)).await? as u64;
        // MDTM is optional (RFC 3659); without it the length is the only validator.
        let modified = match within(config, host, "MDTM", session.ftp.mdtm(&self.path)).await {
            Ok(t) => to_system_time(t),
            // No reply: the session is out of step and is closed.
            Err(e @ FtpError::ReplyTimeout { .. }) => return Err(e.into()),
            Err(_) => None,
        };
        session.release();
        let caps = Capabilities::default()
            .with_ranges(true)
            .with_max_connections(std::num::NonZeroU32::new(
                self.pool.config().max_connections,
            ));
        let mut probe = Probe::new(Some(len), caps);
        probe.last_modified = modified;
        probe.file_name = self.path.rsplit('/').next().map(str::to_string);
        probe.effective_url = Some(redact_url(&self.url));
        Ok(probe)
    }

    async fn open(&self, _cx: &Context, range: ReadRange) -> Result<BodyStream> {
        let config = self.pool.config();
        let host = self.pool.endpoint().host.clone();
        let mut session = self.pool.get().await?;
        let transfer = within(
            config,
            &host,
            "RETR",
            session.retr(&self.path, range.start()),
        )
        .await?;
        let body = Retrieval::new(
            session,
            transfer,
            host,
            config.idle_timeout,
            config.reply_timeout,
        )
        .into_stream();
        // RETR runs to the end of the file: stop at the end of the range.
        Ok(match range.end() {
            Some(end) => dlm_core::limit_body(body, end.saturating_sub(range.start())),
            None => body,
        })
    }
}
