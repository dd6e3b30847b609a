//! pure-ftpd on 127.0.0.1: one instance on a free port, plain FTP or
//! explicit FTPS (`AUTH TLS`, optional: `-Y 1`) on the same port, with one
//! virtual user chrooted to its own home in a temp dir.
//!
//! Debian's pure-ftpd conflicts with vsftpd in apt, so `scripts/test` unpacks
//! it into `/opt/dlm-peers/pure-ftpd`; the launcher looks there after `PATH`.
//! Debian's build has no implicit FTPS.
//!
//! The virtual user's password is stored as a SHA-512 crypt (`openssl passwd
//! -6`), not pure-pw's default argon2id, which costs about 2.4 s per login on
//! two cores. Anonymous login is off: pure-ftpd roots it at the home of the
//! system user `ftp`, which is machine-wide state.
//!
//! A failed login takes about 5.6 s (pure-ftpd's own anti-brute-force delay).
//! pure-ftpd logs to syslog only; its transfers also go to
//! [`PureFtpd::transfer_log`] (Common Log Format).

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::peer::{ChildGuard, free_port, missing_peer, which};
use crate::tls::TlsFiles;

/// Where `scripts/test` unpacks pure-ftpd's .deb.
pub const UNPACKED_ROOT: &str = "/opt/dlm-peers/pure-ftpd";
/// The virtual user's name.
pub const PURE_FTPD_USER: &str = "dlm";
/// The virtual user's password.
pub const PURE_FTPD_PASSWORD: &str = "dlm-pure-secret";

/// How long pure-ftpd may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Port races retried before giving up.
const START_ATTEMPTS: usize = 5;
/// Passive ports per instance (each data connection takes one).
const PASSIVE_PORTS: u16 = 32;
/// Where passive ranges are looked for: below Linux's default ephemeral range
/// (32768–60999), so the kernel does not hand these ports to client sockets.
const PASSIVE_SEARCH: std::ops::Range<u16> = 20000..32000;

/// A running pure-ftpd, stopped by PID on drop.
#[derive(Debug)]
pub struct PureFtpd {
    // Field order is drop order: stop the server before removing its dir.
    child: ChildGuard,
    port: u16,
    passive: (u16, u16),
    files: TlsFiles,
    dir: TempDir,
}

impl PureFtpd {
    /// Starts pure-ftpd with the virtual user [`PURE_FTPD_USER`]. Returns
    /// `None` (after `skipping: …`) when pure-ftpd, pure-pw or openssl is not
    /// installed, or the tests do not run as root (pure-ftpd chroots and
    /// switches users).
    ///
    /// # Panics
    /// When a program is missing under `DLM_REQUIRE_PEERS=1`, or pure-ftpd
    /// cannot start.
    pub fn start() -> Option<Self> {
        let unpacked = Path::new(UNPACKED_ROOT);
        let Some(bin) = which("pure-ftpd").or_else(|| which_in(unpacked, "usr/sbin/pure-ftpd"))
        else {
            return missing_peer("pure-ftpd");
        };
        let Some(pure_pw) = which("pure-pw").or_else(|| which_in(unpacked, "usr/bin/pure-pw"))
        else {
            return missing_peer("pure-pw (pure-ftpd)");
        };
        let Some(openssl) = which("openssl") else {
            return missing_peer("openssl");
        };
        if !nix::unistd::geteuid().is_root() {
            return missing_peer("pure-ftpd (it must run as root)");
        }
        let dir = tempfile::Builder::new()
            .prefix("dlm-pure-ftpd-")
            .tempdir()
            .expect("temp dir");
        let home = dir.path().join("home");
        fs::create_dir_all(&home).expect("create home");
        // The virtual user (nobody) must reach its home, and read what the
        // tests put there.
        for d in [dir.path(), home.as_path()] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let files = TlsFiles::generate(dir.path()).expect("certificates");
        write_user_db(&pure_pw, &openssl, dir.path(), &home).unwrap_or_else(|e| panic!("{e}"));
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let passive = free_port_range(PASSIVE_PORTS);
            match Self::launch(&bin, dir.path(), port, passive, &files) {
                Ok(child) => {
                    return Some(Self {
                        child,
                        port,
                        passive,
                        files,
                        dir,
                    });
                }
                Err(e) => last = e,
            }
        }
        panic!("pure-ftpd failed to start: {last}");
    }

    fn launch(
        bin: &Path,
        dir: &Path,
        port: u16,
        passive: (u16, u16),
        t: &TlsFiles,
    ) -> Result<ChildGuard, String> {
        let out_path = dir.join("pure-ftpd.out");
        let out = fs::File::create(&out_path).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg(format!("--bind=127.0.0.1,{port}"))
            .arg(format!("--passiveportrange={}:{}", passive.0, passive.1))
            .arg("--forcepassiveip=127.0.0.1")
            .args([
                "--ipv4only",
                "--dontresolve",
                "--chrooteveryone",
                "--noanonymous",
            ])
            .arg(format!(
                "--login=puredb:{}",
                dir.join("pureftpd.pdb").display()
            ))
            // Virtual users map to nobody (65534); only root (uid 0) is refused.
            .arg("--minuid=1")
            .args(["--maxclientsnumber=100", "--maxclientsperip=100"])
            // Explicit TLS allowed, not required; the certificate file and
            // the key file (PKCS #8 PEM) as "cert,key".
            .arg("--tls=1")
            .arg(format!(
                "--certfile={},{}",
                t.server_pem().display(),
                t.server_key().display()
            ))
            .arg("--tlsciphersuite=HIGH")
            .arg(format!(
                "--altlog=clf:{}",
                dir.join("transfer.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("spawn pure-ftpd: {e}"))?;
        let mut guard = ChildGuard::new("pure-ftpd", child);
        guard
            .wait_for_port(port, START_TIMEOUT)
            .map_err(|e| format!("{e}: {}", fs::read_to_string(&out_path).unwrap_or_default()))?;
        Ok(guard)
    }

    /// The virtual user's home (its chroot): put fixtures here.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `ftp://dlm:PASSWORD@127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        self.url_as(PURE_FTPD_USER, PURE_FTPD_PASSWORD, path)
    }

    /// `ftp://USER:PASSWORD@127.0.0.1:PORT/PATH`, user and password
    /// percent-encoded (for wrong credentials).
    pub fn url_as(&self, user: &str, password: &str, path: &str) -> String {
        with_credentials(&plain_url("127.0.0.1", self.port, path), user, password)
    }

    /// `ftp://dlm:PASSWORD@localhost:PORT/PATH`, for explicit TLS (the
    /// certificate names `localhost`).
    pub fn tls_url(&self, path: &str) -> String {
        with_credentials(
            &plain_url("localhost", self.port, path),
            PURE_FTPD_USER,
            PURE_FTPD_PASSWORD,
        )
    }

    /// The CA that signed the server certificate.
    pub fn ca_pem(&self) -> &Path {
        self.files.ca_pem()
    }

    /// The virtual user's name.
    pub fn user(&self) -> &'static str {
        PURE_FTPD_USER
    }

    /// The virtual user's password.
    pub fn password(&self) -> &'static str {
        PURE_FTPD_PASSWORD
    }

    /// The control port (plain and explicit TLS).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The passive port range, inclusive.
    pub fn passive_ports(&self) -> (u16, u16) {
        self.passive
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Finished and aborted transfers so far, one Common Log Format line each
    /// (empty before the first).
    pub fn transfer_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("transfer.log")).unwrap_or_default()
    }
}

fn which_in(root: &Path, rel: &str) -> Option<PathBuf> {
    which(root.join(rel).to_str()?)
}

fn plain_url(host: &str, port: u16, path: &str) -> String {
    format!("ftp://{host}:{port}/{}", path.trim_start_matches('/'))
}

fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let mut url = url::Url::parse(url).expect("valid ftp URL");
    url.set_username(user).expect("ftp URLs take a user name");
    url.set_password(Some(password))
        .expect("ftp URLs take a password");
    url.into()
}

/// Writes the virtual user into `dir/pureftpd.passwd` and compiles it to
/// `dir/pureftpd.pdb` with `pure-pw mkdb`.
///
/// The line is written directly, in pure-pw's format
/// (`user:hash:uid:gid:gecos:home/./` then empty limit fields), because
/// `pure-pw useradd` always hashes with argon2id (about 2 s here), and logins
/// against that hash take as long.
fn write_user_db(pure_pw: &Path, openssl: &Path, dir: &Path, home: &Path) -> Result<(), String> {
    let nobody = nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .ok_or("no system user nobody")?;
    let mut child = Command::new(openssl)
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn openssl: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(format!("{PURE_FTPD_PASSWORD}\n").as_bytes())
        .map_err(|e| format!("openssl passwd: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("openssl passwd: {e}"))?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !hash.starts_with("$6$") {
        return Err(format!(
            "openssl passwd -6 failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let passwd = dir.join("pureftpd.passwd");
    let line = format!(
        "{PURE_FTPD_USER}:{hash}:{uid}:{gid}::{home}/./::::::::::::\n",
        uid = nobody.uid,
        gid = nobody.gid,
        home = home.display()
    );
    fs::write(&passwd, line).map_err(|e| format!("write {}: {e}", passwd.display()))?;
    let out = Command::new(pure_pw)
        .arg("mkdb")
        .arg(dir.join("pureftpd.pdb"))
        .arg("-f")
        .arg(&passwd)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("spawn pure-pw: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pure-pw mkdb failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// `n` consecutive ports that were free a moment ago, inclusive bounds,
/// chosen at random in [`PASSIVE_SEARCH`]. pure-ftpd picks a passive port at
/// random within its range and tries another when one is busy, so a port
/// taken later (say, by a second instance) costs nothing.
///
/// # Panics
/// When no free run is found in 200 tries.
fn free_port_range(n: u16) -> (u16, u16) {
    for _ in 0..200 {
        let first = fastrand::u16(PASSIVE_SEARCH.start..PASSIVE_SEARCH.end - n);
        let all_free =
            (first..first + n).all(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok());
        if all_free {
            return (first, first + n - 1);
        }
    }
    panic!("no {n} consecutive free ports in {PASSIVE_SEARCH:?}");
}
