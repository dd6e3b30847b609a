//! `SessionPool`: logged-in control connections to one server, reused across
//! ranges and files, at most `max_connections` open at once, kept alive with
//! `NOOP` while idle.
//!
//! A session goes back to the pool after a transfer that ended cleanly
//! (`226` read) or was ended early and confirmed (`426` read); any error
//! closes it. Sessions are not
//! sent `NOOP` during a data transfer: many servers (vsftpd among them) read
//! the control connection only after the transfer, so the reply would arrive
//! after `226` and desynchronise the reply stream. A control connection that
//! dies during a long transfer costs nothing: the engine counts the range's
//! bytes, not the `226`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::session::{self, Endpoint, Session};
use crate::{FtpConfig, FtpError};

/// An idle session older than this is checked with `NOOP` before reuse, and
/// the keeper sends it `NOOP` this often.
const KEEPALIVE: Duration = Duration::from_secs(20);
/// Idle sessions are closed after this long (vsftpd's default idle timeout is 300 s).
const MAX_IDLE: Duration = Duration::from_secs(120);
/// How long a `NOOP` may take before the session counts as dead.
const NOOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `session` answers `NOOP` in time.
async fn alive(session: &mut Session) -> bool {
    matches!(
        tokio::time::timeout(NOOP_TIMEOUT, session.ftp.noop()).await,
        Ok(Ok(()))
    )
}

struct Idle {
    session: Session,
    since: Instant,
}

/// Sessions to one server, as one user.
pub(crate) struct SessionPool {
    endpoint: Endpoint,
    config: FtpConfig,
    tls: Option<Arc<ClientConfig>>,
    /// One permit per open session.
    permits: Arc<Semaphore>,
    /// Permits in all: `max_connections`, less those forgotten after `421`.
    size: AtomicUsize,
    idle: Mutex<Vec<Idle>>,
    keeper: std::sync::Once,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("endpoint", &self.endpoint)
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

/// A session taken from the pool; dropped, it is closed.
/// [`Pooled::release`] gives it back for reuse.
pub(crate) struct Pooled {
    session: Option<Session>,
    _permit: OwnedSemaphorePermit,
    pool: Arc<SessionPool>,
}

impl SessionPool {
    pub(crate) fn new(
        endpoint: Endpoint,
        config: FtpConfig,
        tls: Option<Arc<ClientConfig>>,
    ) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(config.max_connections.max(1) as usize));
        Arc::new(Self {
            endpoint,
            size: AtomicUsize::new(config.max_connections.max(1) as usize),
            config,
            tls,
            permits,
            idle: Mutex::new(Vec::new()),
            keeper: std::sync::Once::new(),
        })
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub(crate) fn config(&self) -> &FtpConfig {
        &self.config
    }

    fn take_idle(&self) -> Option<Idle> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    /// A logged-in session: an idle one (checked with `NOOP` when it has
    /// been idle a while), else a new one once fewer than `max_connections`
    /// are open.
    ///
    /// A new session refused for having too many (`421`) while others are
    /// open lowers the pool's size by one, so later requests wait for a
    /// session instead of being refused again.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Pooled, FtpError> {
        let permit =
            self.permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| FtpError::Connection {
                    host: self.endpoint.host.clone(),
                    message: "session pool closed".into(),
                    tls_refused: false,
                })?;
        while let Some(mut idle) = self.take_idle() {
            if idle.since.elapsed() < KEEPALIVE || alive(&mut idle.session).await {
                return Ok(self.pooled(idle.session, permit));
            }
        }
        match session::open(&self.endpoint, &self.config, self.tls.as_ref()).await {
            Ok(s) => Ok(self.pooled(s, permit)),
            Err(e) => {
                let others_open =
                    self.permits.available_permits() + 1 < self.size.load(Ordering::Relaxed);
                if e.is_connection_limit() && others_open {
                    tracing::debug!(host = %self.endpoint.host, "server session limit reached: pool shrinks by one");
                    self.size.fetch_sub(1, Ordering::Relaxed);
                    permit.forget();
                }
                Err(e)
            }
        }
    }

    fn pooled(self: &Arc<Self>, session: Session, permit: OwnedSemaphorePermit) -> Pooled {
        Pooled {
            session: Some(session),
            _permit: permit,
            pool: self.clone(),
        }
    }

    fn put_back(self: &Arc<Self>, session: Session) {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Idle {
                session,
                since: Instant::now(),
            });
        self.keeper.call_once(|| {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(keep_alive(Arc::downgrade(self)));
            }
        });
    }
}

/// Sends `NOOP` to sessions idle for [`KEEPALIVE`] and closes those idle for
/// [`MAX_IDLE`]; ends when the pool is gone.
async fn keep_alive(pool: Weak<SessionPool>) {
    loop {
        tokio::time::sleep(KEEPALIVE).await;
        let Some(pool) = pool.upgrade() else { return };
        let stale: Vec<Idle> = {
            let mut idle = pool
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (stale, fresh) = idle.drain(..).partition(|i| i.since.elapsed() >= KEEPALIVE);
            *idle = fresh;
            stale
        };
        for mut i in stale {
            if i.since.elapsed() >= MAX_IDLE {
                let _ = tokio::time::timeout(NOOP_TIMEOUT, i.session.ftp.quit()).await;
            } else if alive(&mut i.session).await {
                pool.idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(i);
            }
        }
    }
}

impl Pooled {
    /// Gives the session back for reuse (after a clean `226`).
    pub(crate) fn release(mut self) {
        if let Some(s) = self.session.take() {
            self.pool.put_back(s);
        }
    }
}

impl std::ops::Deref for Pooled {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session
            .as_ref()
            .expect("session present until released")
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Session {
        self.session
            .as_mut()
            .expect("session present until released")
    }
}
