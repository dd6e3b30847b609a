//! A NAT gateway for the port mapping tests: miniupnpd (UPnP IGD, NAT-PMP and PCP) in network namespaces of
//! the test's own, so no request ever reaches the machine's real network or gateway.
//!
//! ```text
//!  client ns                gw ns (miniupnpd, nftables)             wan ns
//!  lan1 10.77.0.2/24 ── lan0 10.77.0.1/24   wan0 192.0.3.1/24 ── wan1 192.0.3.2/24
//!  default via 10.77.0.1    ip_forward=1, DNAT per mapping
//! ```
//!
//! Each [`Miniupnpd`] makes three fresh namespaces (`dlmnat<pid>x<n>-{cl,gw,wan}`), the veth pairs created
//! straight inside them (so interface names never meet on the host), an nftables ruleset in `gw`, and runs
//! miniupnpd there in the foreground (`-d`) with a config in a temp dir; dropping it stops miniupnpd by PID
//! and deletes the namespaces (which deletes the veths). Namespaces left by a test process that died are
//! deleted by the next [`Miniupnpd::start`]. Programs run inside with [`Miniupnpd::client_command`] and
//! [`Miniupnpd::wan_command`] (`ip netns exec`, which execs the program: its PID is the program's).
//!
//! Pitfalls of Debian 12's miniupnpd 2.3.1 (nftables backend), found setting this up:
//! * it refuses to forward from an external address it deems reserved, documentation ranges included
//!   (198.51.100.0/24, 203.0.113.0/24, 192.0.2.0/24: "Reserved / private IP address … Port forwarding is
//!   impossible"), and `ext_ip=` with such an address is an error; 2.3.1 has no `ext_allow_private_ipv4`. So
//!   the external side uses 192.0.3.0/24, a public range; it exists only inside these namespaces (the `gw`
//!   namespace has no route out), so nothing is ever sent to its real owner;
//! * it does not create its nftables tables and chains: `nft_init.sh` in miniupnpd-nftables sources a
//!   `miniupnpd_functions.sh` the package does not ship, so this module writes the ruleset itself (one `inet`
//!   table with the forward, prerouting and postrouting chains, named in the config); without it every
//!   `AddPortMapping` fails with 501 ActionFailed ("send_batch failed");
//! * the kernel here has no `dummy` module, hence a veth pair (and the `wan` namespace) for the external side;
//! * the package `miniupnpd` is only Debian's debconf/init wrapper: `miniupnpd-nftables` alone brings the binary
//!   and starts no daemon.
//!
//! Root, `ip` (iproute2), `nft` (nftables), `/usr/sbin/miniupnpd` (miniupnpd-nftables) and `upnpc` (miniupnpc)
//! are needed; without one of them, or when `ip netns add` fails (no CAP_SYS_ADMIN in a container), `start`
//! returns `None` after a `skipping:` line, or panics under `DLM_REQUIRE_PEERS=1` ([`crate::missing_peer`]).

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::cli::{NO_PORT_MAPPING_ENV, PROXY_ENV_VARS, dlm_binary};
use crate::peer::{ChildGuard, missing_peer, which};

/// The client's address (inside the `cl` namespace).
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The gateway's LAN address, the client's default route.
pub const GATEWAY_LAN_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The gateway's external address (see the module docs for why not a documentation range).
pub const EXTERNAL_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 3, 1);
/// An address outside the NAT, in the `wan` namespace.
pub const WAN_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 3, 2);

/// The nftables table miniupnpd adds its rules to (in the `gw` namespace).
const NFT_TABLE: &str = "dlm_nat";

/// Namespace names start with this, then the test process's PID.
const NS_PREFIX: &str = "dlmnat";

/// How long miniupnpd may take to be ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Which protocols the gateway speaks.
#[derive(Clone, Copy, Debug)]
pub struct MiniupnpdOptions {
    /// UPnP IGD (`enable_upnp`).
    pub upnp: bool,
    /// NAT-PMP and PCP (`enable_natpmp`; miniupnpd serves both on port 5351).
    pub natpmp: bool,
}

impl MiniupnpdOptions {
    /// UPnP IGD, NAT-PMP and PCP, as home routers running miniupnpd have them.
    pub fn all() -> Self {
        Self {
            upnp: true,
            natpmp: true,
        }
    }

    /// NAT-PMP and PCP only.
    pub fn natpmp_only() -> Self {
        Self {
            upnp: false,
            natpmp: true,
        }
    }
}

/// A port the gateway forwards, from its nftables rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// `"tcp"` or `"udp"`.
    pub protocol: &'static str,
    /// The external port.
    pub external_port: u16,
    /// Where it goes, `IP:PORT`.
    pub to: String,
}

/// miniupnpd running as the NAT gateway of a client namespace; see the module docs.
#[derive(Debug)]
pub struct Miniupnpd {
    /// Declared first: stopped before the namespaces go.
    daemon: Option<ChildGuard>,
    client: String,
    gw: String,
    wan: String,
    dir: TempDir,
}

/// Runs `ip ARGS`, `Err` with its stderr when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    run(Command::new("ip").args(args))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Deletes the namespaces of test processes that are gone (a test killed before its drop ran).
fn delete_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name
            .strip_prefix(NS_PREFIX)
            .and_then(|rest| rest.split('x').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

impl Miniupnpd {
    /// Makes the namespaces and starts miniupnpd with `options`, then waits until it listens (up to 20 s, which
    /// bounds a hang only). `None` (a skip) when a program, root or network namespaces are missing.
    ///
    /// # Panics
    /// When the setup fails past those checks, or miniupnpd does not get ready (the message carries its log).
    pub fn start(options: MiniupnpdOptions) -> Option<Self> {
        if !nix::unistd::geteuid().is_root() {
            return missing_peer("root (network namespaces for the port mapping gateway)");
        }
        for program in ["ip", "nft", "upnpc", "miniupnpd"] {
            if which(program).is_none() {
                return missing_peer(program);
            }
        }
        // miniupnpd-iptables installs the same binary name; the ruleset here is for the nftables backend.
        let version = Command::new(which("miniupnpd")?)
            .arg("--version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)
            })
            .unwrap_or_default();
        if !version.contains("nftables") {
            return missing_peer("miniupnpd with its nftables backend (miniupnpd-nftables)");
        }
        delete_stale_namespaces();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = format!(
            "{NS_PREFIX}{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix("dlm-miniupnpd-")
            .tempdir()
            .expect("create a temp dir for miniupnpd");
        let mut nat = Self {
            daemon: None,
            client: format!("{base}-cl"),
            gw: format!("{base}-gw"),
            wan: format!("{base}-wan"),
            dir,
        };
        if let Err(e) = ip(&["netns", "add", &nat.client]) {
            eprintln!("{e}");
            return missing_peer("network namespaces (`ip netns add` failed)");
        }
        nat.build_network()
            .unwrap_or_else(|e| panic!("setting up the NAT namespaces: {e}"));
        nat.start_daemon(options);
        Some(nat)
    }

    fn build_network(&self) -> Result<(), String> {
        let (cl, gw, wan) = (&self.client, &self.gw, &self.wan);
        ip(&["netns", "add", gw])?;
        ip(&["netns", "add", wan])?;
        ip(&[
            "link", "add", "lan0", "netns", gw, "type", "veth", "peer", "name", "lan1", "netns", cl,
        ])?;
        ip(&[
            "link", "add", "wan0", "netns", gw, "type", "veth", "peer", "name", "wan1", "netns",
            wan,
        ])?;
        let lan_gw = format!("{GATEWAY_LAN_IP}/24");
        let lan_cl = format!("{CLIENT_IP}/24");
        let ext = format!("{EXTERNAL_IP}/24");
        let wan_ip = format!("{WAN_IP}/24");
        let gateway = GATEWAY_LAN_IP.to_string();
        for (ns, args) in [
            (gw, vec!["addr", "add", &lan_gw, "dev", "lan0"]),
            (gw, vec!["addr", "add", &ext, "dev", "wan0"]),
            (cl, vec!["addr", "add", &lan_cl, "dev", "lan1"]),
            (wan, vec!["addr", "add", &wan_ip, "dev", "wan1"]),
            (gw, vec!["link", "set", "lo", "up"]),
            (gw, vec!["link", "set", "lan0", "up"]),
            (gw, vec!["link", "set", "wan0", "up"]),
            (cl, vec!["link", "set", "lo", "up"]),
            (cl, vec!["link", "set", "lan1", "up"]),
            (wan, vec!["link", "set", "lo", "up"]),
            (wan, vec!["link", "set", "wan1", "up"]),
            (cl, vec!["route", "add", "default", "via", &gateway]),
        ] {
            let mut all = vec!["-n", ns];
            all.extend(args);
            ip(&all)?;
        }
        run(Command::new("ip").args([
            "netns",
            "exec",
            gw,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ]))?;
        // The chains miniupnpd fills (see the module docs): forwarded traffic is dropped unless it is a
        // reply, comes from the LAN, or matches a mapping's rule in `miniupnpd`.
        let ruleset = format!(
            "table inet {NFT_TABLE} {{\n\
             chain forward {{ type filter hook forward priority 0; policy drop;\n\
               ct state established,related accept; iifname \"lan0\" accept; jump miniupnpd; }}\n\
             chain miniupnpd {{ }}\n\
             chain prerouting {{ type nat hook prerouting priority -100; policy accept;\n\
               jump prerouting_miniupnpd; }}\n\
             chain postrouting {{ type nat hook postrouting priority 100; policy accept;\n\
               jump postrouting_miniupnpd; }}\n\
             chain prerouting_miniupnpd {{ }}\n\
             chain postrouting_miniupnpd {{ }}\n\
             }}\n"
        );
        let rules = self.dir.path().join("ruleset.nft");
        fs::write(&rules, ruleset).map_err(|e| e.to_string())?;
        run(Command::new("ip")
            .args(["netns", "exec", gw, "nft", "-f"])
            .arg(&rules))
    }

    fn start_daemon(&mut self, options: MiniupnpdOptions) {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let d = self.dir.path();
        // A fresh UUID per instance (clients tell gateways apart by it).
        let uuid = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            fastrand::u32(..),
            fastrand::u16(..),
            fastrand::u16(..0x1000),
            fastrand::u16(..0x1000),
            fastrand::u64(..1 << 48)
        );
        let config = format!(
            "ext_ifname=wan0\n\
             listening_ip=lan0\n\
             port=0\n\
             enable_upnp={}\n\
             enable_natpmp={}\n\
             secure_mode=yes\n\
             system_uptime=no\n\
             lease_file={}\n\
             uuid={uuid}\n\
             upnp_table_name={NFT_TABLE}\n\
             upnp_nat_table_name={NFT_TABLE}\n\
             upnp_forward_chain=miniupnpd\n\
             upnp_nat_chain=prerouting_miniupnpd\n\
             upnp_nat_postrouting_chain=postrouting_miniupnpd\n\
             allow 1024-65535 10.77.0.0/24 1024-65535\n\
             deny 0-65535 0.0.0.0/0 0-65535\n",
            yes_no(options.upnp),
            yes_no(options.natpmp),
            d.join("leases").display(),
        );
        let conf = d.join("miniupnpd.conf");
        fs::write(&conf, config).expect("write miniupnpd.conf");
        let log = fs::File::create(self.log_path()).expect("create the miniupnpd log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.gw])
            .arg(which("miniupnpd").unwrap_or_else(|| PathBuf::from("/usr/sbin/miniupnpd")))
            .arg("-f")
            .arg(&conf)
            .arg("-d")
            .arg("-P")
            .arg(d.join("miniupnpd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn()
            .expect("spawn miniupnpd");
        let mut guard = ChildGuard::new("miniupnpd", child);
        // Printed last, once every socket is bound.
        let ready = if options.natpmp {
            "Listening for NAT-PMP/PCP traffic"
        } else {
            "HTTP listening on port"
        };
        if let Err(e) = guard.wait_for_line(&self.log_path(), START_TIMEOUT, |l| {
            l.contains(ready).then_some(())
        }) {
            drop(guard);
            panic!("miniupnpd: {e}\n{}", self.log());
        }
        self.daemon = Some(guard);
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("miniupnpd.log")
    }

    /// What miniupnpd logged (it logs every mapping it adds and removes).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A command that runs `program` in the client namespace.
    pub fn client_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.client]).arg(program);
        cmd
    }

    /// A command that runs `program` outside the NAT (the `wan` namespace, which reaches only
    /// [`EXTERNAL_IP`]).
    pub fn wan_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.wan]).arg(program);
        cmd
    }

    /// `dlm` in the client namespace, as [`crate::dlm_command`] sets it up but with port mapping on (no
    /// [`NO_PORT_MAPPING_ENV`]).
    pub fn dlm_command(&self) -> Command {
        let mut cmd = self.client_command(dlm_binary());
        for var in PROXY_ENV_VARS
            .iter()
            .chain(&["NETRC", "DLM_LOG", NO_PORT_MAPPING_ENV])
        {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// The mappings `upnpc -l` lists from the client, as `(protocol, external port, "IP:PORT")`
    /// (`upnpc` prints ` 0 TCP  6881->10.77.0.2:6881 'desc' '' 3600`).
    ///
    /// # Panics
    /// When `upnpc` cannot be run.
    pub fn upnpc_list(&self) -> Vec<(String, u16, String)> {
        let out: Output = self
            .client_command("upnpc")
            .arg("-l")
            .stdin(Stdio::null())
            .output()
            .expect("run upnpc -l");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                words.next()?.parse::<u32>().ok()?;
                let protocol = words.next()?.to_string();
                let (external, to) = words.next()?.split_once("->")?;
                Some((protocol, external.parse().ok()?, to.to_string()))
            })
            .collect()
    }

    /// The ports the gateway forwards now, from its nftables DNAT rules (however they were made: UPnP,
    /// NAT-PMP or PCP).
    ///
    /// # Panics
    /// When `nft` cannot be run.
    pub fn redirects(&self) -> Vec<Redirect> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.gw, "nft", "list", "chain", "inet"])
            .args([NFT_TABLE, "prerouting_miniupnpd"])
            .stdin(Stdio::null())
            .output()
            .expect("run nft list chain");
        // iif "wan0" @nh,72,8 0x6 th dport 6881 dnat ip to 10.77.0.2:6881
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let protocol = if l.contains("@nh,72,8 0x6 ") {
                    "tcp"
                } else if l.contains("@nh,72,8 0x11 ") {
                    "udp"
                } else {
                    return None;
                };
                let external_port = l.split("dport ").nth(1)?.split_whitespace().next()?;
                let to = l.split("dnat ip to ").nth(1)?.split_whitespace().next()?;
                Some(Redirect {
                    protocol,
                    external_port: external_port.parse().ok()?,
                    to: to.to_string(),
                })
            })
            .collect()
    }
}

impl Drop for Miniupnpd {
    fn drop(&mut self) {
        drop(self.daemon.take());
        for ns in [&self.client, &self.gw, &self.wan] {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("deleting network namespace {ns}: {e}");
            }
        }
    }
}

/// Polls `check` every 100 ms until it gives a value or `timeout` passes (`None`). The timeout bounds a hang;
/// it asserts nothing about speed.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
