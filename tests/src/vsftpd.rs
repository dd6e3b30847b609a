//! vsftpd on 127.0.0.1: anonymous FTP, explicit FTPS and implicit FTPS, the
//! TLS ones with `require_ssl_reuse=YES` (data connections must resume the
//! control connection's TLS session), each on a free port in a temp dir.
//!
//! Each instance also takes local-user logins (PAM service `dlm-vsftpd`,
//! chrooted to [`Vsftpd::local_root`]) for the system user
//! [`VSFTPD_LOCAL_USER`], which `scripts/test` creates with
//! [`VSFTPD_LOCAL_PASSWORD`]; [`Vsftpd::local_user`] skips a test when the
//! user or the PAM service is missing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::peer::{ChildGuard, free_ports, missing_peer, which};
use crate::tls::TlsFiles;

/// The system user for local-user logins, created by `scripts/test`.
pub const VSFTPD_LOCAL_USER: &str = "dlmftp";
/// The password `scripts/test` gives [`VSFTPD_LOCAL_USER`].
pub const VSFTPD_LOCAL_PASSWORD: &str = "dlmftp-test-password";
/// The PAM service vsftpd checks local passwords with (pam_unix only), written
/// by `scripts/test`.
const PAM_SERVICE: &str = "dlm-vsftpd";

/// How long vsftpd may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Port races retried before giving up.
const START_ATTEMPTS: usize = 5;

/// Settings for [`Vsftpd::start_with`].
#[derive(Clone, Debug)]
pub struct VsftpdOptions {
    /// Sessions allowed per client address (vsftpd `max_per_ip`; more get `421`).
    pub max_per_ip: u32,
    /// Most bytes per second each data transfer is sent at (vsftpd `anon_max_rate` and `local_max_rate`);
    /// `None`: unlimited.
    pub max_rate_bytes_per_sec: Option<u64>,
}

impl Default for VsftpdOptions {
    fn default() -> Self {
        Self {
            max_per_ip: 100,
            max_rate_bytes_per_sec: None,
        }
    }
}

/// Which vsftpd instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavour {
    Plain,
    ExplicitTls,
    ImplicitTls,
}

/// Three vsftpd instances (plain, explicit TLS, implicit TLS) serving one
/// anonymous root and one local-user root; stopped by PID on drop.
#[derive(Debug)]
pub struct Vsftpd {
    // Field order is drop order: stop the servers before removing their dir.
    plain: ChildGuard,
    tls: ChildGuard,
    implicit: ChildGuard,
    plain_port: u16,
    tls_port: u16,
    implicit_port: u16,
    files: TlsFiles,
    dir: TempDir,
}

impl Vsftpd {
    /// Starts both instances. Returns `None` (after `skipping: …`) when vsftpd
    /// is not installed or the tests do not run as root (vsftpd chroots).
    ///
    /// # Panics
    /// When vsftpd is missing under `DLM_REQUIRE_PEERS=1`, or cannot start.
    pub fn start() -> Option<Self> {
        Self::start_with(VsftpdOptions::default())
    }

    /// As [`Vsftpd::start`], with `options`.
    ///
    /// # Panics
    /// As [`Vsftpd::start`].
    pub fn start_with(options: VsftpdOptions) -> Option<Self> {
        let Some(bin) = which("vsftpd") else {
            return missing_peer("vsftpd");
        };
        if !nix::unistd::geteuid().is_root() {
            return missing_peer("vsftpd (it must run as root)");
        }
        let dir = tempfile::Builder::new()
            .prefix("dlm-vsftpd-")
            .tempdir()
            .expect("temp dir");
        for d in ["anon", "local", "empty"] {
            fs::create_dir_all(dir.path().join(d)).expect("create dir");
        }
        // The chroots (anonymous and local root) must not be writable by the
        // users, or vsftpd refuses them.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::set_permissions(dir.path().join("anon"), fs::Permissions::from_mode(0o555))
            .expect("chmod");
        fs::set_permissions(dir.path().join("local"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let files = TlsFiles::generate(dir.path()).expect("certificates");
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let [p0, p1, p2] = free_ports::<3>();
            let ports = (p0, p1, p2);
            let launch =
                |flavour, port| Self::launch(&bin, dir.path(), flavour, port, &files, &options);
            let plain = launch(Flavour::Plain, ports.0);
            let tls = launch(Flavour::ExplicitTls, ports.1);
            let implicit = launch(Flavour::ImplicitTls, ports.2);
            match (plain, tls, implicit) {
                (Ok(plain), Ok(tls), Ok(implicit)) => {
                    return Some(Self {
                        plain,
                        tls,
                        implicit,
                        plain_port: ports.0,
                        tls_port: ports.1,
                        implicit_port: ports.2,
                        files,
                        dir,
                    });
                }
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => last = e,
            }
        }
        panic!("vsftpd failed to start: {last}");
    }

    fn launch(
        bin: &Path,
        dir: &Path,
        flavour: Flavour,
        port: u16,
        t: &TlsFiles,
        options: &VsftpdOptions,
    ) -> Result<ChildGuard, String> {
        let name = match flavour {
            Flavour::Plain => "plain",
            Flavour::ExplicitTls => "tls",
            Flavour::ImplicitTls => "implicit",
        };
        let mut conf = format!(
            "listen=YES\nlisten_ipv6=NO\nbackground=NO\nlisten_address=127.0.0.1\nlisten_port={port}\n\
             anonymous_enable=YES\nwrite_enable=NO\nanon_root={root}\nno_anon_password=YES\n\
             ftp_username=ftp\nlocal_enable=YES\npam_service_name={PAM_SERVICE}\nlocal_root={local}\n\
             chroot_local_user=YES\ndelay_failed_login=0\npasv_enable=YES\npasv_address=127.0.0.1\nseccomp_sandbox=NO\n\
             secure_chroot_dir={empty}\nvsftpd_log_file={log}\nxferlog_enable=YES\nmax_clients=100\n\
             max_per_ip={per_ip}\n",
            per_ip = options.max_per_ip,
            root = dir.join("anon").display(),
            local = dir.join("local").display(),
            empty = dir.join("empty").display(),
            log = dir.join(format!("{name}.log")).display(),
        );
        if let Some(rate) = options.max_rate_bytes_per_sec {
            conf.push_str(&format!("anon_max_rate={rate}\nlocal_max_rate={rate}\n"));
        }
        if flavour != Flavour::Plain {
            conf.push_str(&format!(
                "ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_data_ssl=YES\nforce_anon_logins_ssl=YES\n\
                 rsa_cert_file={}\nrsa_private_key_file={}\nssl_ciphers=HIGH\nrequire_ssl_reuse=YES\n",
                t.server_pem().display(),
                t.server_key().display()
            ));
        }
        if flavour == Flavour::ImplicitTls {
            conf.push_str("implicit_ssl=YES\n");
        }
        let conf_path = dir.join(format!("{name}.conf"));
        fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
        let out = fs::File::create(dir.join(format!("{name}.out"))).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("spawn vsftpd: {e}"))?;
        let mut guard = ChildGuard::new(format!("vsftpd ({name})"), child);
        guard.wait_for_port(port, START_TIMEOUT).map_err(|e| {
            format!(
                "{e}: {}",
                fs::read_to_string(dir.join(format!("{name}.out"))).unwrap_or_default()
            )
        })?;
        Ok(guard)
    }

    /// The anonymous root: put fixtures here.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("anon")
    }

    /// The local users' root (chroot): put their fixtures here.
    pub fn local_root(&self) -> PathBuf {
        self.dir.path().join("local")
    }

    /// `ftp://USER:PASSWORD@127.0.0.1:PORT/PATH` on the plain instance, user
    /// and password percent-encoded.
    pub fn local_url(&self, path: &str, user: &str, password: &str) -> String {
        let mut url = url::Url::parse(&self.url(path)).expect("valid ftp URL");
        url.set_username(user).expect("ftp URLs take a user name");
        url.set_password(Some(password))
            .expect("ftp URLs take a password");
        url.into()
    }

    /// Whether local-user logins can work here: [`VSFTPD_LOCAL_USER`] and
    /// the PAM service `dlm-vsftpd` exist. Returns `Some(())`, or `None` after
    /// `skipping: …` so a test can return early.
    ///
    /// # Panics
    /// When either is missing under `DLM_REQUIRE_PEERS=1`.
    pub fn local_user(&self) -> Option<()> {
        let user = nix::unistd::User::from_name(VSFTPD_LOCAL_USER)
            .ok()
            .flatten();
        let pam = Path::new("/etc/pam.d").join(PAM_SERVICE).is_file();
        if user.is_some() && pam {
            Some(())
        } else {
            missing_peer(&format!(
                "vsftpd local user {VSFTPD_LOCAL_USER} (created by scripts/test)"
            ))
        }
    }

    /// `ftp://127.0.0.1:PORT/PATH` on the plain instance.
    pub fn url(&self, path: &str) -> String {
        format!(
            "ftp://127.0.0.1:{}/{}",
            self.plain_port,
            path.trim_start_matches('/')
        )
    }

    /// `ftp://localhost:PORT/PATH` on the explicit-TLS instance (the
    /// certificate names `localhost`).
    pub fn tls_url(&self, path: &str) -> String {
        format!(
            "ftp://localhost:{}/{}",
            self.tls_port,
            path.trim_start_matches('/')
        )
    }

    /// `ftps://localhost:PORT/PATH` on the implicit-TLS instance.
    pub fn implicit_url(&self, path: &str) -> String {
        format!(
            "ftps://localhost:{}/{}",
            self.implicit_port,
            path.trim_start_matches('/')
        )
    }

    /// The CA that signed the TLS instances' certificate.
    pub fn ca_pem(&self) -> &Path {
        self.files.ca_pem()
    }

    /// vsftpd's own log of an instance (`"plain"`, `"tls"` or `"implicit"`):
    /// one `OK LOGIN` line per session, one `OK DOWNLOAD` per transfer.
    pub fn log_path(&self, instance: &str) -> PathBuf {
        self.dir.path().join(format!("{instance}.log"))
    }

    /// Bytes the plain instance's log says it sent for `path` (as the client named it, e.g. `/f.bin`), summed
    /// over every `DOWNLOAD` line, completed (`OK`) or cut short (`FAIL`, as when the client was killed). vsftpd
    /// writes a line when a transfer ends, so a transfer still running is not counted yet.
    pub fn downloaded_bytes(&self, path: &str) -> u64 {
        let log = fs::read_to_string(self.log_path("plain")).unwrap_or_default();
        let quoted = format!("\"{path}\", ");
        log.lines()
            .filter(|l| l.contains(" DOWNLOAD: "))
            .filter_map(|l| l.split_once(&quoted))
            .filter_map(|(_, rest)| rest.split_once(" bytes"))
            .filter_map(|(n, _)| n.trim().parse::<u64>().ok())
            .sum()
    }

    /// The PIDs of the plain, explicit-TLS and implicit-TLS instances.
    pub fn pids(&self) -> (u32, u32, u32) {
        (self.plain.pid(), self.tls.pid(), self.implicit.pid())
    }
}
