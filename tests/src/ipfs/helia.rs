//! [`HeliaNode`]: `tests/peers/ipfs/helia_node.mjs` (see its header for the gateway's behaviour in detail), and
//! [`helia_fetch`]: `tests/peers/ipfs/helia_fetch.mjs`.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use super::{
    FetchReport, GatewayRequest, HELIA_FETCH_SCRIPT, HELIA_NODE_SCRIPT, START_TIMEOUT, event_line,
    node_with_modules, read_gateway_log, run_fetch,
};
use crate::peer::ChildGuard;

/// What a [`HeliaNode`] runs: serialised as the JSON config `helia_node.mjs` reads.
///
/// # Defaults
///
/// libp2p on any free port, no gateway, nothing added, no IPNS record.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HeliaConfig {
    /// libp2p TCP port on 127.0.0.1; 0 (the default) lets the node pick a free one and report it.
    pub listen: u16,
    /// One trustless gateway per entry, all on the same blockstore.
    pub gateways: Vec<GatewayConfig>,
    /// Files and directories to add, in order; [`HeliaNode::added`] has their CIDs in the same order.
    pub add: Vec<AddSpec>,
    /// Sign an IPNS record (`/ipfs/<CID of the first added entry>`, valid 24 h, V1+V2 signatures) with the
    /// node's Ed25519 key and serve it at `/ipns/{name}?format=ipns-record`. Needs at least one entry in `add`.
    pub ipns: bool,
}

impl HeliaConfig {
    /// Adds `spec` to the node's content.
    pub fn with_add(mut self, spec: AddSpec) -> Self {
        self.add.push(spec);
        self
    }

    /// Adds a gateway that serves every block faithfully, on a free port.
    pub fn with_gateway(mut self) -> Self {
        self.gateways.push(GatewayConfig::default());
        self
    }

    /// Adds a gateway that serves the blocks `cids` with their last byte flipped (raw and inside CARs), on a
    /// free port. Blocks are matched by multihash, so a CIDv0 and its CIDv1 twin are the same block.
    pub fn with_corrupt_gateway<S: Into<String>>(
        mut self,
        cids: impl IntoIterator<Item = S>,
    ) -> Self {
        self.gateways.push(GatewayConfig {
            corrupt: cids.into_iter().map(Into::into).collect(),
            ..GatewayConfig::default()
        });
        self
    }

    /// Adds a gateway that serves the IPNS record (see [`HeliaConfig::with_ipns`]) with its last byte flipped,
    /// so its signature no longer verifies, on a free port.
    pub fn with_tampering_ipns_gateway(mut self) -> Self {
        self.gateways.push(GatewayConfig {
            corrupt_ipns: true,
            ..GatewayConfig::default()
        });
        self
    }

    /// Serves an IPNS record for the first added entry; see [`HeliaConfig::ipns`].
    pub fn with_ipns(mut self, ipns: bool) -> Self {
        self.ipns = ipns;
        self
    }
}

/// One trustless gateway of a [`HeliaNode`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct GatewayConfig {
    /// TCP port on 127.0.0.1; 0 (the default) for a free one.
    pub port: u16,
    /// CIDs of blocks this gateway serves with their last byte flipped; empty (the default) for none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub corrupt: Vec<String>,
    /// Whether this gateway serves the IPNS record with its last byte flipped.
    #[serde(rename = "corruptIpns", skip_serializing_if = "std::ops::Not::not")]
    pub corrupt_ipns: bool,
}

/// The DAG shape of an added file (ipfs-unixfs-importer's layouts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Balanced tree: every internal node has up to `max_children` links (the default).
    #[default]
    Balanced,
    /// Trickle DAG (the streaming layout Kubo offers with `--trickle`).
    Trickle,
}

/// One file or directory to add to a [`HeliaNode`], with the UnixFS importer's options.
///
/// # Defaults
///
/// CIDv1, raw leaves, 256 KiB fixed-size chunks, balanced layout with 174 links per node, a directory becomes a
/// HAMT once its links take more than 256 KiB (`shardSplitThresholdBytes` 262144, fanout 256), a one-chunk file
/// is its single block, no wrapping directory.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddSpec {
    /// The file or directory (added recursively, entries sorted by name; the directory itself is the root).
    pub path: PathBuf,
    /// 0 (`Qm…`, which needs `raw_leaves: false`) or 1 (`bafy…`/`bafk…`).
    pub cid_version: u8,
    /// Leaves are raw blocks (codec `raw`) rather than dag-pb UnixFS `file` nodes.
    pub raw_leaves: bool,
    /// Fixed chunk size in bytes.
    pub chunk_size: u32,
    /// DAG layout.
    pub layout: Layout,
    /// Maximum links per internal node (174 if `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_children: Option<u32>,
    /// Trickle layout's layer repeat (4 if `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_repeat: Option<u32>,
    /// A directory whose links take more bytes than this becomes a HAMT-sharded directory (262144 if `None`;
    /// 1 shards every directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_split_threshold_bytes: Option<u64>,
    /// Bits of the name hash per HAMT level (8, a fanout of 256, if `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_fanout_bits: Option<u8>,
    /// Whether a one-chunk file is its chunk alone (`true` if `None`); `false` puts a dag-pb root above it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reduce_single_leaf_to_self: Option<bool>,
    /// Wrap the entry in a directory (the reported CID is then the directory's, holding the file by name).
    pub wrap: bool,
}

impl AddSpec {
    /// `path` with the default options.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            cid_version: 1,
            raw_leaves: true,
            chunk_size: 262_144,
            layout: Layout::Balanced,
            max_children: None,
            layer_repeat: None,
            shard_split_threshold_bytes: None,
            shard_fanout_bits: None,
            reduce_single_leaf_to_self: None,
            wrap: false,
        }
    }

    /// CIDv0 with dag-pb leaves: the shape Kubo's defaults give (`Qm…`).
    pub fn cid_v0(mut self) -> Self {
        self.cid_version = 0;
        self.raw_leaves = false;
        self
    }

    /// Chunk size in bytes.
    pub fn with_chunk_size(mut self, bytes: u32) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// DAG layout.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// HAMT threshold for directories, in bytes of links (1 shards every directory).
    pub fn with_shard_split_threshold_bytes(mut self, bytes: u64) -> Self {
        self.shard_split_threshold_bytes = Some(bytes);
        self
    }
}

/// An added entry, as the ready line reports it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Added {
    /// The path given in [`AddSpec::path`].
    pub path: PathBuf,
    /// Its root CID (string form: base32 `b…` for v1, base58 `Qm…` for v0).
    pub cid: String,
}

/// The IPNS name a [`HeliaNode`] serves a record for.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpnsName {
    /// The name as a CIDv1 (`libp2p-key` codec) in base36: `k51…`.
    pub name: String,
    /// The same name as a peer ID: `12D3KooW…` (the node's own peer ID).
    pub peer_id_name: String,
    /// The record's value: `/ipfs/<CID of the first added entry>`.
    pub value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadyLine {
    peer_id: String,
    multiaddrs: Vec<String>,
    gateways: Vec<String>,
    added: Vec<Added>,
    ipns: Option<IpnsName>,
}

/// A running Helia node (see the [module docs](super)), stopped by PID on drop.
#[derive(Debug)]
pub struct HeliaNode {
    /// Its peer ID, `12D3KooW…`.
    pub peer_id: String,
    /// Where it listens, each ending in `/p2p/<peer_id>`: `/ip4/127.0.0.1/tcp/PORT/p2p/12D3KooW…`.
    pub multiaddrs: Vec<String>,
    /// The gateways' origins, `http://127.0.0.1:PORT`, in the order of [`HeliaConfig::gateways`].
    pub gateways: Vec<String>,
    /// The added entries and their CIDs, in the order of [`HeliaConfig::add`].
    pub added: Vec<Added>,
    /// The IPNS name, when [`HeliaConfig::ipns`] was set.
    pub ipns: Option<IpnsName>,
    // Field order is drop order: stop the node before removing its dir.
    child: ChildGuard,
    dir: TempDir,
}

impl HeliaNode {
    /// Starts a node with `config`, waits until it has added everything and listens, and parses its ready line.
    /// Returns `None` (after `skipping: …`) when `node` or the npm packages are missing.
    ///
    /// # Panics
    ///
    /// When they are missing under `DLM_REQUIRE_PEERS=1`, or the node does not start (a path to add is missing,
    /// a port is taken, …; the message has its stderr).
    pub fn start(config: &HeliaConfig) -> Option<Self> {
        let node = node_with_modules()?;
        let dir = tempfile::Builder::new()
            .prefix("dlm-helia-")
            .tempdir()
            .expect("temp dir");
        let config_path = dir.path().join("config.json");
        fs::write(
            &config_path,
            serde_json::to_vec(config).expect("serialise HeliaConfig"),
        )
        .expect("write helia config");
        let stdout_path = dir.path().join("stdout");
        let stderr_path = dir.path().join("stderr");
        let child = Command::new(&node)
            .arg(HELIA_NODE_SCRIPT)
            .arg(&config_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).expect("create stdout file"))
            .stderr(fs::File::create(&stderr_path).expect("create stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", node.display()));
        let mut child = ChildGuard::new("helia_node.mjs", child);
        let ready: ReadyLine = child
            .wait_for_line(&stdout_path, START_TIMEOUT, |line| {
                event_line(line, "ready")
            })
            .unwrap_or_else(|e| {
                panic!(
                    "helia_node.mjs did not start: {e}\n--- stderr ---\n{}",
                    fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            });
        Some(Self {
            peer_id: ready.peer_id,
            multiaddrs: ready.multiaddrs,
            gateways: ready.gateways,
            added: ready.added,
            ipns: ready.ipns,
            child,
            dir,
        })
    }

    /// The CID of the `index`th added entry.
    ///
    /// # Panics
    ///
    /// If fewer entries were added.
    pub fn cid(&self, index: usize) -> &str {
        &self.added[index].cid
    }

    /// The first multiaddr (`/ip4/127.0.0.1/tcp/PORT/p2p/12D3KooW…`).
    pub fn multiaddr(&self) -> &str {
        &self.multiaddrs[0]
    }

    /// The `index`th gateway's origin, `http://127.0.0.1:PORT`.
    ///
    /// # Panics
    ///
    /// If there are fewer gateways.
    pub fn gateway(&self, index: usize) -> &str {
        &self.gateways[index]
    }

    /// The `index`th gateway's socket address, for [`crate::http1`].
    ///
    /// # Panics
    ///
    /// If there are fewer gateways.
    pub fn gateway_addr(&self, index: usize) -> SocketAddr {
        self.gateways[index]
            .trim_start_matches("http://")
            .parse()
            .expect("gateway origin is http://IP:PORT")
    }

    /// Every gateway request logged so far, in the order the responses ended. A response is logged when it has
    /// been sent (or the client went away), so a client that just read the last byte may be a few ms ahead.
    pub fn gateway_requests(&self) -> Vec<GatewayRequest> {
        read_gateway_log(&self.stderr_path())
    }

    /// How many requests the gateway at `origin` (one of [`HeliaNode::gateways`]) has answered so far.
    pub fn gateway_request_count(&self, origin: &str) -> usize {
        self.gateway_requests()
            .iter()
            .filter(|r| r.gateway == origin)
            .count()
    }

    /// Its stderr so far: the request log lines and any warning or error.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// The node's PID.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Stops the node now; dropping it does the same.
    pub fn stop(&mut self) {
        self.child.stop();
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr")
    }
}

/// Downloads the UnixFS file `cid` from the peer at `multiaddr` (ending in `/p2p/<peer id>`) into `out` with a
/// second Helia node over bitswap (`helia_fetch.mjs`), and reports bytes and time. Blocks until done. Returns
/// `None` (after `skipping: …`) when `node` or the npm packages are missing.
///
/// # Panics
///
/// When they are missing under `DLM_REQUIRE_PEERS=1`, or the fetch fails (the client gives up after 10 min).
pub fn helia_fetch(multiaddr: &str, cid: &str, out: &Path) -> Option<FetchReport> {
    let node = node_with_modules()?;
    let mut command = Command::new(node);
    command
        .arg(HELIA_FETCH_SCRIPT)
        .args(["--peer", multiaddr, "--cid", cid, "--out"])
        .arg(out);
    Some(run_fetch("helia_fetch.mjs", command))
}
