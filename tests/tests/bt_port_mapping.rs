//! Port mapping on a real NAT gateway: `dlm seed` runs in a client network namespace behind miniupnpd
//! ([`Miniupnpd`]: UPnP IGD, NAT-PMP and PCP, nftables DNAT), never against the machine's own network.
//!
//! * UPnP IGD: the seeder maps its TCP port, uTP's UDP port and the DHT's UDP port, prints each mapping,
//!   `upnpc -l` lists them, a BitTorrent handshake from outside the NAT reaches dlm through the external
//!   address, and SIGTERM removes every mapping before dlm exits;
//! * a gateway with NAT-PMP/PCP only: the same ports mapped through PCP (or NAT-PMP), removed on SIGTERM;
//! * `--no-port-mapping`, or `DLM_NO_PORT_MAPPING=1` as the test helpers set it: nothing mapped, while a seeder
//!   beside them without either is.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use dlm_tests::bt::{NO_TRACKER, TorrentFixture, TorrentSpec};
use dlm_tests::nat::{CLIENT_IP, EXTERNAL_IP, Redirect, poll};
use dlm_tests::peer::ChildGuard;
use dlm_tests::{Miniupnpd, MiniupnpdOptions, missing_peer, which};

/// Bounds every wait for the seeder, the gateway or a mapping; nothing asserts a speed.
const WAIT: Duration = Duration::from_secs(60);

fn fixture(dir: &Path) -> Option<TorrentFixture> {
    TorrentSpec::single_file("mapped.bin", 300_000)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(16)
        .create(&dir.join("data"))
}

/// DHT settings that start a node on any free UDP port with no bootstrap router, so the DHT's port is
/// mapped without a lookup going anywhere.
const LONE_DHT: [&str; 4] = [
    "-O",
    "bittorrent.dht_bootstrap=",
    "-O",
    "bittorrent.dht_port=0",
];

/// `dlm seed` in the client namespace, on every interface, its stdout and debug log in files.
struct Seed {
    guard: ChildGuard,
    stdout: PathBuf,
    stderr: PathBuf,
    port: u16,
}

impl Seed {
    fn start(nat: &Miniupnpd, fx: &TorrentFixture, dir: &Path, name: &str, args: &[&str]) -> Self {
        Self::start_with(nat.dlm_command(), fx, dir, name, args)
    }

    fn start_with(
        mut cmd: std::process::Command,
        fx: &TorrentFixture,
        dir: &Path,
        name: &str,
        args: &[&str],
    ) -> Self {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let child = cmd
            .arg("seed")
            .arg(&fx.torrent_path)
            .arg("-d")
            .arg(&fx.data_dir)
            .args(["--listen", "0.0.0.0:0"])
            .args(args)
            .env("DLM_LOG", "dlm_bittorrent=debug")
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("run dlm seed in the client namespace");
        let mut guard = ChildGuard::new(format!("dlm seed ({name})"), child);
        let port = guard
            .wait_for_line(&stdout, WAIT, |l| {
                l.strip_prefix("listening on 0.0.0.0:")?.parse().ok()
            })
            .unwrap_or_else(|e| panic!("{e}\n{}", fs::read_to_string(&stderr).unwrap_or_default()));
        Self {
            guard,
            stdout,
            stderr,
            port,
        }
    }

    fn out(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The `port mapped: …` lines printed so far.
    fn mapped(&self) -> Vec<String> {
        self.out()
            .lines()
            .filter(|l| l.starts_with("port mapped: "))
            .map(str::to_string)
            .collect()
    }

    /// Waits until every line of `want` was printed.
    fn wait_for_mapped(&self, want: &[String], nat: &Miniupnpd) {
        let printed = poll(WAIT, || {
            let got = self.mapped();
            want.iter().all(|w| got.contains(w)).then_some(())
        });
        assert!(
            printed.is_some(),
            "dlm seed did not print {want:#?}\nstdout:\n{}\nlog:\n{}\nminiupnpd:\n{}",
            self.out(),
            self.log(),
            nat.log()
        );
    }

    /// SIGTERM, as Ctrl-C or a service manager stops it, then waits for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.guard.pid() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        poll(WAIT, || self.guard.try_wait().ok().flatten()).unwrap_or_else(|| {
            panic!(
                "dlm seed did not exit within {WAIT:?} of SIGTERM\n{}",
                self.log()
            )
        })
    }
}

/// `port mapped: PROTO 10.77.0.2:PORT -> 192.0.3.1:PORT (HOW)`: the same port outside as inside.
fn line(proto: &str, port: u16, how: &str) -> String {
    format!("port mapped: {proto} {CLIENT_IP}:{port} -> {EXTERNAL_IP}:{port} ({how})")
}

/// The UDP port of the DHT's mapping among `lines` (the UDP one that is not `listen_port`).
fn dht_port(lines: &[String], listen_port: u16) -> Option<u16> {
    lines.iter().find_map(|l| {
        let rest = l.strip_prefix(&format!("port mapped: UDP {CLIENT_IP}:"))?;
        let port: u16 = rest.split_whitespace().next()?.parse().ok()?;
        (port != listen_port).then_some(port)
    })
}

/// A BitTorrent handshake (BEP 3) from outside the NAT to `EXTERNAL_IP:port`; the info-hash the answer
/// carries (hex), or why there was none.
fn handshake_through_the_nat(
    nat: &Miniupnpd,
    port: u16,
    info_hash_hex: &str,
) -> Result<String, String> {
    const SCRIPT: &str = r#"
import socket, sys
ih = bytes.fromhex(sys.argv[3])
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(bytes([19]) + b"BitTorrent protocol" + bytes(8) + ih + b"-XX0000-" + b"0" * 12)
buf = b""
while len(buf) < 68:
    chunk = s.recv(68 - len(buf))
    if not chunk:
        break
    buf += chunk
print(buf[28:48].hex())
"#;
    let out = nat
        .wan_command("python3")
        .args([
            "-c",
            SCRIPT,
            &EXTERNAL_IP.to_string(),
            &port.to_string(),
            info_hash_hex,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn upnp_igd_maps_the_seeders_ports_and_removes_them_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = fixture(dir.path()) else {
        return;
    };
    if which("python3").is_none() {
        missing_peer::<()>("python3");
        return;
    }
    let Some(nat) = Miniupnpd::start(MiniupnpdOptions::all()) else {
        return;
    };
    let mut seed = Seed::start(&nat, &fx, dir.path(), "upnp", &LONE_DHT);
    let port = seed.port;
    seed.wait_for_mapped(
        &[line("TCP", port, "UPnP IGD"), line("UDP", port, "UPnP IGD")],
        &nat,
    );
    // The DHT node's UDP port too, once its node runs.
    let dht = poll(WAIT, || dht_port(&seed.mapped(), port))
        .unwrap_or_else(|| panic!("no DHT port mapped\n{}\n{}", seed.out(), seed.log()));
    seed.wait_for_mapped(&[line("UDP", dht, "UPnP IGD")], &nat);

    // The gateway's own client sees the three mappings, to the client's address.
    let to = |p: u16| format!("{CLIENT_IP}:{p}");
    let want = [
        ("TCP".to_string(), port, to(port)),
        ("UDP".to_string(), port, to(port)),
        ("UDP".to_string(), dht, to(dht)),
    ];
    let listed = poll(WAIT, || {
        let l = nat.upnpc_list();
        want.iter().all(|w| l.contains(w)).then_some(l)
    });
    assert!(
        listed.is_some(),
        "upnpc -l: {:?}, want {want:?}\n{}",
        nat.upnpc_list(),
        nat.log()
    );

    // From outside the NAT, the external address reaches the seeder: it answers a handshake for its torrent.
    let info_hash = fx.info_hash_hex();
    assert_eq!(
        handshake_through_the_nat(&nat, port, &info_hash).as_deref(),
        Ok(info_hash.as_str()),
        "{}",
        seed.log()
    );

    let status = seed.terminate();
    assert!(status.success(), "dlm seed: {status}\n{}", seed.log());
    // dlm removed its mappings before it exited.
    let left: Vec<_> = nat
        .upnpc_list()
        .into_iter()
        .filter(|(_, _, to)| to.starts_with(&format!("{CLIENT_IP}:")))
        .collect();
    assert!(
        left.is_empty(),
        "mappings left after SIGTERM: {left:?}\n{}\nminiupnpd:\n{}",
        seed.log(),
        nat.log()
    );
    assert!(nat.redirects().is_empty(), "{:?}", nat.redirects());
}

#[test]
fn natpmp_or_pcp_maps_when_the_gateway_has_no_upnp() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = fixture(dir.path()) else {
        return;
    };
    let Some(nat) = Miniupnpd::start(MiniupnpdOptions::natpmp_only()) else {
        return;
    };
    let mut seed = Seed::start(&nat, &fx, dir.path(), "pmp", &["--no-dht"]);
    let port = seed.port;
    // PCP first (RFC 6887), NAT-PMP (RFC 6886) when the gateway speaks only that; miniupnpd speaks both.
    let how = poll(WAIT, || {
        ["PCP", "NAT-PMP"]
            .into_iter()
            .find(|how| seed.mapped().contains(&line("TCP", port, how)))
    })
    .unwrap_or_else(|| {
        panic!(
            "no NAT-PMP/PCP mapping printed\n{}\n{}\nminiupnpd:\n{}",
            seed.out(),
            seed.log(),
            nat.log()
        )
    });
    seed.wait_for_mapped(&[line("UDP", port, how)], &nat);
    let to = format!("{CLIENT_IP}:{port}");
    let want = [
        Redirect {
            protocol: "tcp",
            external_port: port,
            to: to.clone(),
        },
        Redirect {
            protocol: "udp",
            external_port: port,
            to,
        },
    ];
    let redirects = poll(WAIT, || {
        let r = nat.redirects();
        want.iter().all(|w| r.contains(w)).then_some(r)
    });
    assert!(
        redirects.is_some(),
        "gateway rules: {:?}, want {want:?}\n{}",
        nat.redirects(),
        nat.log()
    );
    assert!(
        !seed.log().contains("(UPnP IGD)"),
        "a gateway without UPnP mapped through UPnP?\n{}",
        seed.log()
    );

    let status = seed.terminate();
    assert!(status.success(), "dlm seed: {status}\n{}", seed.log());
    assert!(
        nat.redirects().is_empty(),
        "mappings left after SIGTERM: {:?}\n{}\nminiupnpd:\n{}",
        nat.redirects(),
        seed.log(),
        nat.log()
    );
}

#[test]
fn no_port_mapping_maps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = fixture(dir.path()) else {
        return;
    };
    let Some(nat) = Miniupnpd::start(MiniupnpdOptions::all()) else {
        return;
    };
    let mut args = vec!["--no-port-mapping"];
    args.extend(LONE_DHT);
    let off = Seed::start(&nat, &fx, dir.path(), "off", &args);
    // The environment variable the test helpers set does the same ("1", as dlm_command sets it).
    let mut by_env = nat.dlm_command();
    by_env.env(dlm_tests::cli::NO_PORT_MAPPING_ENV, "1");
    let env_off = Seed::start_with(by_env, &fx, dir.path(), "env-off", &LONE_DHT);
    // A seeder beside it without the flag is mapped: by then the first one, started earlier, would have been
    // too. (Two seeders of one torrent on one machine: harmless, they listen on different ports.)
    let on = Seed::start(&nat, &fx, dir.path(), "on", &["--no-dht"]);
    on.wait_for_mapped(&[line("TCP", on.port, "UPnP IGD")], &nat);
    poll(WAIT, || {
        nat.upnpc_list()
            .iter()
            .any(|(_, p, _)| *p == on.port)
            .then_some(())
    })
    .expect("the control seeder's mapping is listed");

    for (seed, how) in [
        (&off, "--no-port-mapping"),
        (&env_off, "DLM_NO_PORT_MAPPING=1"),
    ] {
        assert!(
            seed.mapped().is_empty(),
            "{how} printed {:?}",
            seed.mapped()
        );
        assert!(
            !seed.log().contains("port mapp"),
            "{how} looked for a gateway:\n{}",
            seed.log()
        );
    }
    let listed = nat.upnpc_list();
    assert!(
        listed.iter().all(|(_, p, _)| *p == on.port),
        "mapped with --no-port-mapping (port {}) or DLM_NO_PORT_MAPPING=1 (port {}): {listed:?}",
        off.port,
        env_off.port
    );
    assert!(
        nat.redirects().iter().all(|r| r.external_port == on.port),
        "{:?}",
        nat.redirects()
    );
}
