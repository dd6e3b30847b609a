#!/usr/bin/env python3
"""A BitTorrent peer for dlm's tests: libtorrent (python bindings, 2.x) on 127.0.0.1.

Seeds and/or downloads torrents, prints ``READY <port>`` once it listens, and keeps a JSON status file up to date
(rewritten atomically every 0.2 s and when it exits) so tests can assert what happened on the wire:

    python3 lt_peer.py --status STATUS.json [--port N] [--seed TORRENT DIR]... [--leech TORRENT DIR]... [--leech-magnet URI DIR]...
                       [--connect HOST:PORT]... [--upload-limit BYTES_PER_SEC] [--download-limit BYTES_PER_SEC]
                       [--no-announce] [--utp | --utp-only] [--encrypted-outgoing] [--encryption forced|enabled|disabled]
                       [--peer-log] [--exit-when-complete] [--unchoke-slots N]

* ``--seed``: the data is in DIR and complete; added in seed mode (no hash check up front; libtorrent hashes each
  piece the first time a peer requests it).
* ``--leech``: download into DIR (data already there is checked first, so a partial download resumes).
* ``--leech-magnet``: download a magnet link into DIR; the metadata comes from peers (BEP 9), a v2 torrent's piece
  layers by hash requests (BEP 52). ``num_pieces`` is 0 until the metadata is in.
* Trackers are the torrent's own (announced at once); ``--no-announce`` strips them.
* ``--connect HOST:PORT``: connect every torrent to that peer directly (no tracker needed). More peers can be
  added at run time by writing ``connect HOST:PORT`` lines to standard input.
* Standard input, one command a line: ``connect HOST:PORT``, ``upload-limit N``, ``download-limit N`` (bytes per
  second, 0 = unlimited), ``pause``, ``resume``, ``reannounce``, ``quit``.
* Transports: TCP only by default; ``--utp`` adds uTP (BEP 29) in and out; ``--utp-only`` turns TCP off both ways
  (``enable_incoming_tcp`` and ``enable_outgoing_tcp`` false), so peers reach it, and it reaches them, over uTP only.
* Outgoing connections use the plain BitTorrent handshake; ``--encrypted-outgoing`` restores libtorrent's default
  (MSE/PE first, then a plaintext retry about 1 s after a peer that does not speak MSE closes). Incoming
  connections may use either.
* ``--encryption POLICY`` sets libtorrent's ``in_enc_policy`` and ``out_enc_policy`` both (it overrides
  ``--encrypted-outgoing``): ``forced`` accepts and opens MSE/PE connections only and, with ``allowed_enc_level`` =
  RC4 and ``prefer_rc4``, encrypts the payload with RC4; ``enabled`` is libtorrent's default (MSE or plaintext, in
  and out, plaintext payload preferred); ``disabled`` refuses MSE both ways.
* Rate limits apply to loopback peers too (libtorrent exempts "local" peers by default; this script removes that
  exemption).

Status file (all byte counts are payload bytes)::

    {"port": 6881, "libtorrent": "2.1.1.0", "elapsed_s": 3.2, "torrents": {"<info-hash hex>": {
        "name", "mode": "seed"|"leech", "state", "progress", "is_finished", "is_seeding", "num_pieces",
        "pieces": "1101…" (one char a piece: 1 = have), "uploaded_bytes", "downloaded_bytes", "hash_failures",
        "peers": {"127.0.0.1:54321": {"peer_id" (hex), "client", "outgoing", "connected", "disconnect_reason",
                  "uploaded_bytes", "downloaded_bytes", "uploaded_pieces", "downloaded_pieces",
                  "requests", "invalid_requests", "hashes_received", "hash_rejects_received", "reserved" (the 64 reserved bits the peer sent, as "0"/"1"),
                  "extension_handshake" (BEP 10 dictionary as libtorrent prints it), "we_choke", "they_choke",
                  "we_interested", "they_interested", "supports_extensions"}}}}}

Per-peer fields are parsed from the peer log unless noted; ``client`` is the extension handshake's ``v`` (else
libtorrent's guess from the peer ID), and the choke/interest flags are the last seen while connected (a peer that
came and went between two status writes has none). Per-peer counts are parsed from libtorrent's peer log (always collected, written out only with ``--peer-log``):
``uploaded_bytes``/``uploaded_pieces`` from the ``PIECE`` messages libtorrent sent to that peer,
``downloaded_*`` from the ``PIECE`` messages it received (a block received twice in end-game mode counts twice),
``requests`` from the ``REQUEST`` messages it received (``[piece, begin, length]`` each, the first 10,000), and
``invalid_requests`` from invalid_request alerts, ``hashes_received``/``hash_rejects_received`` from the BEP 52
``HASHES``/``HASH_REJECT`` messages it received. They survive disconnects, so a test can read what a peer that
has gone got. They may trail ``progress`` by one status write. A peer is keyed by its address as libtorrent sees
it (for an incoming connection, the remote's ephemeral port).

``--peer-log`` writes libtorrent's per-peer protocol log (handshakes, every message, why a peer was dropped) to
``lt.log`` beside the status file; otherwise that log has tracker, connect and error alerts only.

DHT (BEP 5), off by default. ``--dht`` turns libtorrent's DHT on, on the listen port (UDP), purely on loopback:
no bootstrap routers, ``--dht-node HOST:PORT`` (repeatable; also the stdin command ``dht-node HOST:PORT``) adds a
node with ``add_dht_node``, and the per-IP limits that would keep several 127.0.0.1 nodes apart are off
(``dht_restrict_routing_ips``, ``dht_restrict_search_ips``, ``dht_ignore_dark_internet``,
``dht_prefer_verified_node_ids``; ``dht_block_ratelimit`` is raised, since every node shares one IP). The stdin
command ``dht-announce`` forces an announce of every torrent (do it once the nodes have met). The status file then
has ``"dht": {"nodes": N (routing table size), "get_peers": {"<info-hash hex>": n}, "announces": {"<info-hash hex>":
["127.0.0.1:port", …]}}``: the ``get_peers`` and ``announce_peer`` queries this node received, by info-hash.

Exits 0 on SIGTERM/SIGINT or ``quit`` (after a final status write), or when ``--exit-when-complete`` is given and
every ``--leech`` torrent is complete.
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
import time

import libtorrent as lt

STATUS_INTERVAL = 0.2
MAX_REQUESTS_KEPT = 10_000
# libtorrent's peer log lines for a request received and for a block sent or received ("<==" in, "==>" out):
# "<== REQUEST [ piece: 38 s: 4000 l: 4000 ]", "==> PIECE [ piece: 38 s: 0 l: 4000 ]" (begin and length in hex).
REQUEST_RE = re.compile(r"<== REQUEST \[ piece: (\d+) s: ([0-9a-f]+) l: ([0-9a-f]+)")
PIECE_RE = re.compile(r"(<==|==>) PIECE \[ piece: (\d+) s: ([0-9a-f]+) l: ([0-9a-f]+)")
# "<<< HANDSHAKE [ received peer_id: 2d4c54… client: libtorrent 2.1.1 ascii: …", "<== EXTENSIONS [ 0000…0101 ext: …",
# "<== EXTENDED_HANDSHAKE [ { 'm': { … }, 'v': 'aria2/1.36.0' } ]".
PEER_ID_RE = re.compile(r"<<< HANDSHAKE \[ received peer_id: ([0-9a-f]{40}) client: (.*?) ascii:")
RESERVED_RE = re.compile(r"<== EXTENSIONS \[ ([01]{64})")
HASHES_RE = re.compile(r"<== (HASHES|HASH_REJECT) \[")
EXT_HANDSHAKE_RE = re.compile(r"<== EXTENDED_HANDSHAKE \[ (.*) \]$")
CLIENT_VERSION_RE = re.compile(r"'v': '([^']*)'")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--status", required=True, help="JSON status file, rewritten atomically")
    p.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1 (0: any free port)")
    p.add_argument("--seed", nargs=2, action="append", default=[], metavar=("TORRENT", "DIR"))
    p.add_argument("--leech", nargs=2, action="append", default=[], metavar=("TORRENT", "DIR"))
    p.add_argument(
        "--leech-magnet",
        nargs=2,
        action="append",
        default=[],
        metavar=("URI", "DIR"),
        help="download a magnet link into DIR (metadata from peers, BEP 9; v2 piece layers by hash requests)",
    )
    p.add_argument("--connect", action="append", default=[], metavar="HOST:PORT")
    p.add_argument("--upload-limit", type=int, default=0, help="bytes per second, 0 = unlimited")
    p.add_argument("--download-limit", type=int, default=0, help="bytes per second, 0 = unlimited")
    p.add_argument("--no-announce", action="store_true", help="remove the torrents' trackers")
    p.add_argument("--utp", action="store_true", help="also use uTP (default: TCP only)")
    p.add_argument("--lsd", action="store_true", help="local service discovery, BEP 14 (default: off)")
    p.add_argument("--utp-only", action="store_true", help="uTP only: TCP off in and out")
    p.add_argument(
        "--encrypted-outgoing",
        action="store_true",
        help="libtorrent's default for outgoing connections: MSE first, plaintext retry (default: plaintext only)",
    )
    p.add_argument(
        "--encryption",
        choices=("forced", "enabled", "disabled"),
        default=None,
        help="in_enc_policy and out_enc_policy (forced also sets allowed_enc_level = RC4)",
    )
    p.add_argument("--peer-log", action="store_true", help="log every peer message to lt.log")
    p.add_argument("--exit-when-complete", action="store_true")
    p.add_argument("--unchoke-slots", type=int, default=None, help="unchoke_slots_limit (default libtorrent's 8)")
    # --- DHT (BEP 5) ---
    p.add_argument("--dht", action="store_true", help="DHT on, on the listen port, loopback only (see above)")
    p.add_argument("--dht-node", action="append", default=[], metavar="HOST:PORT", help="add_dht_node at start")
    return p.parse_args()


# --- DHT (BEP 5) ---
def dht_settings(args):
    """Session settings for a DHT purely on loopback (tests/peers.md, "DHT purely on loopback")."""
    if not args.dht:
        return {}
    return {
        "enable_dht": True,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_ignore_dark_internet": False,
        "dht_prefer_verified_node_ids": False,
        # Every test node is 127.0.0.1: the default (5 packets/s per IP, averaged over 10 s) bans them all.
        "dht_block_ratelimit": 100_000,
    }


class DhtWatch:
    """The get_peers and announce_peer queries this node received, by info-hash, and its routing table size."""

    def __init__(self):
        self.get_peers = {}
        self.announces = {}
        self.nodes = 0

    def on_alert(self, a):
        if isinstance(a, lt.dht_get_peers_alert):
            ih = str(a.info_hash)
            self.get_peers[ih] = self.get_peers.get(ih, 0) + 1
        elif isinstance(a, lt.dht_announce_alert):
            self.announces.setdefault(str(a.info_hash), []).append(f"{a.ip}:{a.port}")
        elif isinstance(a, lt.dht_stats_alert):
            self.nodes = sum(b["num_nodes"] for b in a.routing_table)

    def to_json(self):
        return {"nodes": self.nodes, "get_peers": self.get_peers, "announces": self.announces}


def category(name):
    cats = getattr(lt, "alert_category", None)
    if cats is not None:
        return int(getattr(cats, name))
    return int(getattr(lt.alert.category_t, name + "_notification"))


def endpoint_key(ep):
    host, port = ep[0], ep[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Peer:
    """What one torrent's status file records per peer address."""

    def __init__(self):
        self.peer_id = None
        self.client = None
        self.outgoing = None
        self.connected = False
        self.disconnect_reason = None
        self.uploaded_bytes = 0
        self.downloaded_bytes = 0
        self.uploaded_pieces = set()
        self.downloaded_pieces = set()
        self.requests = []
        self.invalid_requests = 0
        self.hashes_received = 0
        self.hash_rejects_received = 0
        self.reserved = None
        self.extension_handshake = None
        self.flags = {}

    def to_json(self):
        out = {
            "peer_id": self.peer_id,
            "client": self.client,
            "outgoing": self.outgoing,
            "connected": self.connected,
            "disconnect_reason": self.disconnect_reason,
            "uploaded_bytes": self.uploaded_bytes,
            "downloaded_bytes": self.downloaded_bytes,
            "uploaded_pieces": sorted(self.uploaded_pieces),
            "downloaded_pieces": sorted(self.downloaded_pieces),
            "requests": self.requests,
            "invalid_requests": self.invalid_requests,
            "hashes_received": self.hashes_received,
            "hash_rejects_received": self.hash_rejects_received,
            "reserved": self.reserved,
            "extension_handshake": self.extension_handshake,
        }
        out.update(self.flags)
        return out


class Torrent:
    def __init__(self, handle, mode, info):
        self.handle = handle
        self.mode = mode
        self.info = info
        self.hash_failures = 0
        self.peers = {}

    def peer(self, ep):
        return self.peers.setdefault(endpoint_key(ep), Peer())


def num_pieces(t):
    """The torrent's piece count; 0 while a magnet link's metadata is missing."""
    if t.info is not None:
        return t.info.num_pieces()
    ti = t.handle.torrent_file()
    return ti.num_pieces() if ti is not None else 0


def hex_hash(handle):
    ih = handle.info_hashes() if hasattr(handle, "info_hashes") else None
    if ih is not None:
        return str(ih.v1) if ih.has_v1() else str(ih.v2)
    return str(handle.info_hash())


def main():
    args = parse_args()
    status_path = os.path.abspath(args.status)
    log = open(os.path.join(os.path.dirname(status_path), "lt.log"), "a", buffering=1)

    mask = (
        category("error")
        | category("peer")
        | category("tracker")
        | category("connect")
        | category("status")
        | category("storage")
        | category("peer_log")
    )
    settings = {
        "listen_interfaces": f"127.0.0.1:{args.port}",
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": args.lsd,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_incoming_utp": args.utp or args.utp_only,
        "enable_outgoing_utp": args.utp or args.utp_only,
        "enable_incoming_tcp": not args.utp_only,
        "enable_outgoing_tcp": not args.utp_only,
        # Outgoing: plaintext only unless asked (libtorrent's default opens with an MSE handshake and, when the
        # peer closes on it, reconnects in plaintext about 1 s later). Incoming: MSE or plaintext.
        "out_enc_policy": 1 if args.encrypted_outgoing else 2,
        "in_enc_policy": 1,
        "announce_to_all_tiers": True,
        "announce_to_all_trackers": True,
        "alert_mask": mask,
        "alert_queue_size": 1_000_000,
        "upload_rate_limit": args.upload_limit,
        "download_rate_limit": args.download_limit,
    }
    if args.dht:
        mask |= category("dht") | category("dht_operation") | category("stats")
        settings["alert_mask"] = mask
    settings.update(dht_settings(args))
    if args.encryption is not None:
        # libtorrent's enc_policy: pe_forced = 0, pe_enabled = 1, pe_disabled = 2; enc_level: pe_rc4 = 2, pe_both = 3.
        policy = {"forced": 0, "enabled": 1, "disabled": 2}[args.encryption]
        settings["out_enc_policy"] = policy
        settings["in_enc_policy"] = policy
        if args.encryption == "forced":
            settings["allowed_enc_level"] = 2
            settings["prefer_rc4"] = True
    if args.unchoke_slots is not None:
        settings["unchoke_slots_limit"] = args.unchoke_slots
    ses = lt.session(settings)
    dht = DhtWatch() if args.dht else None
    for node in args.dht_node:
        ses.add_dht_node(parse_hostport(node))
    # By default libtorrent puts loopback and LAN peers in the "local" peer class, which rate limits ignore; keep
    # every peer in the global class so --upload-limit applies to 127.0.0.1.
    if hasattr(ses, "set_peer_class_filter"):
        f = lt.ip_filter()
        f.add_rule("0.0.0.0", "255.255.255.255", 1 << ses.global_peer_class_id)
        f.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 << ses.global_peer_class_id)
        ses.set_peer_class_filter(f)

    port = ses.listen_port()
    deadline = time.monotonic() + 10
    while port == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
        port = ses.listen_port()
    if port == 0:
        sys.exit("lt_peer: libtorrent did not open a listen socket")

    torrents = {}
    for mode, pairs in (("seed", args.seed), ("leech", args.leech)):
        for torrent_path, data_dir in pairs:
            info = lt.torrent_info(torrent_path)
            atp = lt.add_torrent_params()
            atp.ti = info
            atp.save_path = data_dir
            flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
            if mode == "seed":
                flags |= lt.torrent_flags.seed_mode
            atp.flags = flags
            handle = ses.add_torrent(atp)
            if args.no_announce:
                handle.replace_trackers([])
            torrents[hex_hash(handle)] = Torrent(handle, mode, info)
    for uri, data_dir in args.leech_magnet:
        atp = lt.parse_magnet_uri(uri)
        atp.save_path = data_dir
        atp.flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
        handle = ses.add_torrent(atp)
        if args.no_announce:
            handle.replace_trackers([])
        torrents[hex_hash(handle)] = Torrent(handle, "leech", None)
    by_handle = {t.handle: t for t in torrents.values()}

    def connect(target):
        host, p = parse_hostport(target)
        for t in torrents.values():
            t.handle.connect_peer((host, p))

    for target in args.connect:
        connect(target)

    stop = threading.Event()
    commands = []
    lock = threading.Lock()

    def read_stdin():
        for line in sys.stdin:
            with lock:
                commands.append(line.strip())
        # EOF on stdin is not a command: the launcher may simply not write.

    threading.Thread(target=read_stdin, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    started = time.monotonic()

    def torrent_of(alert):
        try:
            return by_handle.get(alert.handle)
        except Exception:  # noqa: BLE001 - alerts without a handle
            return None

    def handle_alert(a):
        if dht is not None:
            dht.on_alert(a)
        t = torrent_of(a)
        if isinstance(a, lt.peer_log_alert):
            if t:
                msg = a.message()
                m = PIECE_RE.search(msg)
                if m:
                    peer = t.peer(a.endpoint)
                    if m[1] == "==>":
                        peer.uploaded_bytes += int(m[4], 16)
                        peer.uploaded_pieces.add(int(m[2]))
                    else:
                        peer.downloaded_bytes += int(m[4], 16)
                        peer.downloaded_pieces.add(int(m[2]))
                m = PEER_ID_RE.search(msg)
                if m:
                    peer = t.peer(a.endpoint)
                    peer.peer_id = m[1]
                    peer.client = peer.client or m[2]
                m = RESERVED_RE.search(msg)
                if m:
                    t.peer(a.endpoint).reserved = m[1]
                m = EXT_HANDSHAKE_RE.search(msg)
                if m:
                    peer = t.peer(a.endpoint)
                    peer.extension_handshake = m[1]
                    v = CLIENT_VERSION_RE.search(m[1])
                    if v:
                        peer.client = v[1]
                m = HASHES_RE.search(msg)
                if m:
                    peer = t.peer(a.endpoint)
                    if m[1] == "HASHES":
                        peer.hashes_received += 1
                    else:
                        peer.hash_rejects_received += 1
                m = REQUEST_RE.search(msg)
                if m:
                    peer = t.peer(a.endpoint)
                    if len(peer.requests) < MAX_REQUESTS_KEPT:
                        peer.requests.append([int(m[1]), int(m[2], 16), int(m[3], 16)])
            if args.peer_log:
                log.write(f"{time.monotonic() - started:8.3f} {a.message()}\n")
            return
        if isinstance(a, lt.invalid_request_alert) and t:
            t.peer(a.endpoint).invalid_requests += 1
        if isinstance(a, lt.hash_failed_alert) and t:
            t.hash_failures += 1
        if isinstance(a, lt.peer_connect_alert) and t:
            peer = t.peer(a.endpoint)
            peer.connected = True
            peer.outgoing = "outgoing connection" in a.message()
            peer.disconnect_reason = None
        if isinstance(a, lt.peer_disconnected_alert) and t:
            peer = t.peer(a.endpoint)
            peer.connected = False
            peer.disconnect_reason = a.message()
        log.write(f"{time.monotonic() - started:8.3f} {type(a).__name__}: {a.message()}\n")

    def snapshot():
        out = {
            "port": port,
            "libtorrent": lt.__version__,
            "elapsed_s": round(time.monotonic() - started, 3),
            "torrents": {},
        }
        if dht is not None:
            out["dht"] = dht.to_json()
        for ih, t in torrents.items():
            st = t.handle.status()
            for pi in t.handle.get_peer_info():
                peer = t.peer(pi.ip)
                peer.connected = True
                client = pi.client
                peer.client = client.decode("utf-8", "replace") if isinstance(client, bytes) else client
                peer.outgoing = bool(pi.flags & lt.peer_info.local_connection)
                peer.flags = {
                    "we_choke": bool(pi.flags & lt.peer_info.choked),
                    "they_choke": bool(pi.flags & lt.peer_info.remote_choked),
                    "we_interested": bool(pi.flags & lt.peer_info.interesting),
                    "they_interested": bool(pi.flags & lt.peer_info.remote_interested),
                    "supports_extensions": bool(pi.flags & lt.peer_info.supports_extensions),
                }
            out["torrents"][ih] = {
                "name": st.name,
                "mode": t.mode,
                "state": str(st.state),
                "progress": st.progress,
                "is_finished": st.is_finished,
                "is_seeding": st.is_seeding,
                "num_pieces": num_pieces(t),
                "pieces": "".join("1" if b else "0" for b in st.pieces),
                "uploaded_bytes": st.total_payload_upload,
                "downloaded_bytes": st.total_payload_download,
                "hash_failures": t.hash_failures,
                "peers": {k: p.to_json() for k, p in t.peers.items()},
            }
        return out

    def write_status():
        tmp = status_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(snapshot(), f, indent=1)
        os.replace(tmp, status_path)

    write_status()
    print(f"READY {port}", flush=True)

    def run_command(cmd):
        word, _, arg = cmd.partition(" ")
        if word == "connect":
            connect(arg)
        elif word == "upload-limit":
            ses.apply_settings({"upload_rate_limit": int(arg)})
        elif word == "download-limit":
            ses.apply_settings({"download_rate_limit": int(arg)})
        elif word == "pause":
            for t in torrents.values():
                t.handle.pause()
        elif word == "resume":
            for t in torrents.values():
                t.handle.resume()
        elif word == "reannounce":
            for t in torrents.values():
                t.handle.force_reannounce()
        elif word == "dht-node":
            ses.add_dht_node(parse_hostport(arg))
        elif word == "dht-announce":
            for t in torrents.values():
                t.handle.force_dht_announce()
        elif word == "quit":
            stop.set()
        elif word:
            log.write(f"unknown command: {cmd!r}\n")

    leeching = [t for t in torrents.values() if t.mode == "leech"]
    next_status = time.monotonic()
    while not stop.is_set():
        ses.wait_for_alert(50)
        for a in ses.pop_alerts():
            handle_alert(a)
        with lock:
            pending, commands[:] = commands[:], []
        for cmd in pending:
            run_command(cmd)
        if time.monotonic() >= next_status:
            if dht is not None:
                ses.post_dht_stats()
            write_status()
            next_status = time.monotonic() + STATUS_INTERVAL
        if args.exit_when_complete and leeching and all(t.handle.status().is_finished for t in leeching):
            break
    for a in ses.pop_alerts():
        handle_alert(a)
    write_status()
    log.close()


if __name__ == "__main__":
    main()
