//! Running a peer program: finding it, skipping when it is missing, free ports, and a child process that is
//! stopped by PID on drop.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The environment variable that turns a missing peer from a skip into a failure (set by `.ci/run`).
pub const REQUIRE_PEERS_ENV: &str = "DLM_REQUIRE_PEERS";

/// How long [`ChildGuard`] waits after SIGTERM before it sends SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// How often the helpers here poll a port or a child.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Whether every peer must be present: `true` when `DLM_REQUIRE_PEERS` is `1` (or `true`/`yes`).
pub fn require_peers() -> bool {
    std::env::var(REQUIRE_PEERS_ENV)
        .map(|v| matches!(v.trim(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// Reports that the peer program `name` is not installed, and returns `None` so a `start` can hand it on.
///
/// Prints `skipping: <name> not installed` to stderr; the caller's test then returns early (it passes).
///
/// # Panics
///
/// Under `DLM_REQUIRE_PEERS=1` ([`require_peers`]), with a message that names the program and how to install it.
pub fn missing_peer<T>(name: &str) -> Option<T> {
    if require_peers() {
        panic!(
            "{name} is not installed, and {REQUIRE_PEERS_ENV}=1 requires every test peer: \
             run scripts/test as root (it installs the peers) or unset {REQUIRE_PEERS_ENV}"
        );
    }
    eprintln!("skipping: {name} not installed");
    None
}

/// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the port the kernel chose, and closes
/// the socket.
///
/// Another process may take the port before the peer binds it; the peer launchers here retry on
/// "address in use".
///
/// # Panics
///
/// If 127.0.0.1 cannot be bound at all.
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct TCP ports on 127.0.0.1 that were free a moment ago: all are
/// bound at once before any is released, so the kernel cannot hand out the
/// same port twice (two separate [`free_port`] calls can).
///
/// # Panics
///
/// If 127.0.0.1 cannot be bound at all.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .expect("bind 127.0.0.1:0 to find a free port")
        })
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("bound address").port())
}

/// The full path of the executable `program`, searched in `PATH` and then in `/usr/local/sbin`, `/usr/sbin` and
/// `/sbin` (nginx lives in `/usr/sbin`, which a non-root `PATH` often lacks). A `program` containing `/` is
/// checked as given.
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Waits until a TCP connect to 127.0.0.1:`port` succeeds, polling every 20 ms. Returns `false` if `timeout`
/// passes first. The timeout bounds a hang; it asserts nothing about speed.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if port_accepts(port) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

fn port_accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// A child process that is stopped by PID when dropped: SIGTERM, up to 3 s for it to exit, then SIGKILL, then
/// `wait` so no zombie is left.
///
/// For nginx the child is the master process; SIGTERM makes it stop its workers before it exits.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
    exited: Option<ExitStatus>,
}

impl ChildGuard {
    /// Polls `file` (which the child writes: its stdout or log) every 20 ms until a whole line (ending in a
    /// newline, so a half-written number is never read) gives `parse` a value, and returns it.
    ///
    /// # Errors
    ///
    /// When the child exits first (with what the file held), or `timeout` passes. The timeout bounds a hang; it
    /// asserts nothing about speed.
    pub fn wait_for_line<T>(
        &mut self,
        file: &Path,
        timeout: Duration,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if let Some(v) = text
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .find_map(|l| parse(l.trim_end()))
            {
                return Ok(v);
            }
            if let Some(status) = self.try_wait().map_err(|e| e.to_string())? {
                return Err(format!(
                    "{} exited ({status}) before it was ready: {text:?}",
                    self.name
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!("{} was not ready within {timeout:?}", self.name));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Takes ownership of `child`; `name` is used in messages.
    pub fn new(name: impl Into<String>, child: Child) -> Self {
        Self {
            name: name.into(),
            child,
            exited: None,
        }
    }

    /// The child's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's exit status if it has exited, without blocking.
    ///
    /// # Errors
    ///
    /// As [`Child::try_wait`].
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait()?;
        }
        Ok(self.exited)
    }

    /// Waits until 127.0.0.1:`port` accepts connections, polling every 20 ms.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::BrokenPipe`] if the child exits first (for example because the port was taken),
    /// [`io::ErrorKind::TimedOut`] if `timeout` passes first.
    pub fn wait_for_port(&mut self, port: u16, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    format!(
                        "{} exited ({status}) before listening on port {port}",
                        self.name
                    ),
                ));
            }
            if port_accepts(port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} did not listen on port {port} within {timeout:?}",
                        self.name
                    ),
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Stops the child now (SIGTERM, then SIGKILL after 3 s) and returns its exit status. Dropping the guard does
    /// the same; calling this twice is harmless.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.try_wait() {
            return Some(status);
        }
        if let Ok(raw) = i32::try_from(self.child.id()) {
            // ESRCH only means it is already gone; `wait` below reaps it either way.
            let _ = kill(Pid::from_raw(raw), Signal::SIGTERM);
        }
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.try_wait() {
                return Some(status);
            }
            thread::sleep(POLL_INTERVAL);
        }
        eprintln!(
            "{} (pid {}) ignored SIGTERM for {TERM_GRACE:?}; sending SIGKILL",
            self.name,
            self.child.id()
        );
        let _ = self.child.kill();
        let status = self.child.wait().ok();
        self.exited = status;
        status
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}
