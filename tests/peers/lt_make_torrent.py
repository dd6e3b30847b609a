"""Makes a BitTorrent v2 (BEP 52) or hybrid v1+v2 .torrent with libtorrent's own creator, for dlm's tests.

    python3 lt_make_torrent.py --format v2|hybrid --piece-length BYTES [--tracker URL]... PAYLOAD OUT.torrent

PAYLOAD is a file or a directory; its parent directory is the save path (what a seeder is given). The torrent has
no creation date, so the same payload gives the same bytes. `v2` uses `create_torrent.v2_only`; `hybrid` is
libtorrent's default (v1 `pieces` with BEP 47 padding files, plus the v2 `file tree` and `piece layers`).
Prints nothing on success; exits non-zero with a message otherwise.
"""

import argparse
import os
import sys

import libtorrent as lt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", choices=["v2", "hybrid"], required=True)
    ap.add_argument("--piece-length", type=int, required=True)
    ap.add_argument("--tracker", action="append", default=[])
    ap.add_argument("payload")
    ap.add_argument("out")
    args = ap.parse_args()
    payload = os.path.abspath(args.payload)
    fs = lt.file_storage()
    lt.add_files(fs, payload)
    if fs.num_files() == 0:
        sys.exit(f"no files under {payload}")
    flags = lt.create_torrent.v2_only if args.format == "v2" else 0
    ct = lt.create_torrent(fs, args.piece_length, flags=flags)
    for tier, url in enumerate(args.tracker):
        ct.add_tracker(url, tier)
    lt.set_piece_hashes(ct, os.path.dirname(payload))
    entry = ct.generate()
    entry.pop(b"creation date", None)
    with open(args.out, "wb") as f:
        f.write(lt.bencode(entry))


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    main()
