//! Real forward proxies for the client's proxy support: tinyproxy (HTTP
//! proxy, absolute-form requests and `CONNECT` tunnels) and microsocks
//! (SOCKS5).

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::peer::{ChildGuard, free_port, missing_peer, which};

/// How long a proxy may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Port races retried before giving up.
const START_ATTEMPTS: usize = 5;

/// Which proxy program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    /// tinyproxy: `http://` proxy; `CONNECT` for `https://` targets.
    Http,
    /// microsocks: `socks5://` proxy.
    Socks5,
}

/// A running forward proxy on 127.0.0.1, stopped by PID on drop.
#[derive(Debug)]
pub struct ForwardProxy {
    // Field order is drop order: stop the proxy before removing its dir.
    child: ChildGuard,
    kind: ProxyKind,
    port: u16,
    dir: TempDir,
}

impl ForwardProxy {
    /// Starts tinyproxy (`Http`) or microsocks (`Socks5`) on a free port.
    ///
    /// Returns `None` after printing `skipping: … not installed` when the
    /// program is missing.
    ///
    /// # Panics
    /// When the program is missing under `DLM_REQUIRE_PEERS=1`, or cannot start.
    pub fn start(kind: ProxyKind) -> Option<Self> {
        let program = match kind {
            ProxyKind::Http => "tinyproxy",
            ProxyKind::Socks5 => "microsocks",
        };
        let Some(path) = which(program) else {
            return missing_peer(program);
        };
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(kind, &path) {
                Ok(p) => return Some(p),
                Err(e) => last = e,
            }
        }
        panic!("{program} failed to start: {last}");
    }

    fn try_start(kind: ProxyKind, program: &Path) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("dlm-proxy-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        // tinyproxy drops to `nobody`, which must be able to write its log.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777))
            .map_err(|e| e.to_string())?;
        let port = free_port();
        let log_path = dir.path().join("proxy.log");
        let mut cmd = match kind {
            ProxyKind::Http => {
                let conf = dir.path().join("tinyproxy.conf");
                let text = format!(
                    "User nobody\nGroup nogroup\nPort {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 64\n\
                     LogFile \"{}\"\nLogLevel Connect\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
                    log_path.display()
                );
                fs::write(&conf, text).map_err(|e| e.to_string())?;
                let mut c = Command::new(program);
                c.arg("-d")
                    .arg("-c")
                    .arg(&conf)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                c
            }
            ProxyKind::Socks5 => {
                let log = fs::File::create(&log_path).map_err(|e| e.to_string())?;
                let mut c = Command::new(program);
                c.args(["-i", "127.0.0.1", "-p", &port.to_string()])
                    .stdout(log.try_clone().map_err(|e| e.to_string())?)
                    .stderr(log);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let mut child = ChildGuard::new(
            match kind {
                ProxyKind::Http => "tinyproxy",
                ProxyKind::Socks5 => "microsocks",
            },
            child,
        );
        child.wait_for_port(port, START_TIMEOUT).map_err(|e| {
            format!(
                "{e}; log: {}",
                fs::read_to_string(&log_path).unwrap_or_default()
            )
        })?;
        Ok(Self {
            child,
            kind,
            port,
            dir,
        })
    }

    /// The proxy URL: `http://127.0.0.1:PORT` or `socks5://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 => "socks5",
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The proxy's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The proxy's log so far (tinyproxy logs each request and `CONNECT`;
    /// microsocks logs each client).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}
