#!/usr/bin/env python3
"""An FTP server with faults no well-behaved server produces, for dlm's tests.

pyftpdlib on 127.0.0.1, anonymous read-only login rooted at ROOT. It binds a
free port itself and prints `READY <port>` on stdout once it listens; its log
goes to stderr. Stop it with SIGTERM.

Faults, by option:

--drop-data-after BYTES
    The first RETR data connection of each file is closed after exactly BYTES
    bytes (the control connection then gets `426`), as when a server or the
    network drops a transfer midway. Later RETRs of the file are served whole,
    so a client that retries the rest completes.

--evil-listing
    MLSD, LIST and NLST of the root directory list, besides the real entries,
    files named `../evil`, `/abs/evil` and `a/../../evil`: names a client must
    refuse to turn into local paths. SIZE and RETR of those names answer with
    a few bytes.

--no-epsv --pasv-address ADDR
    An old server behind NAT: `EPSV` is an unknown command (500), and `PASV`
    replies announce ADDR (say a private 10.x address no client can reach)
    instead of 127.0.0.1. A client must fall back to `PASV` and connect to
    the control connection's peer instead of ADDR.

Usage: ftp_faults.py ROOT [--drop-data-after BYTES] [--evil-listing] [--no-epsv] [--pasv-address ADDR]
"""

import argparse
import errno
import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.log import logger
from pyftpdlib.servers import FTPServer

EVIL_NAMES = ("../evil", "/abs/evil", "a/../../evil")
EVIL_BYTES = b"this file is outside the download directory\n"


class DroppingDTPHandler(DTPHandler):
    """A data channel that closes the first download of each file early."""

    drop_after = None  # bytes, or None: never
    dropped_files = set()  # real paths whose first RETR was already cut

    def _limit(self):
        """The byte limit of this transfer, decided at its first send."""
        if not hasattr(self, "_drop_limit"):
            self._drop_limit = None
            name = getattr(self.file_obj, "name", None)
            if (
                self.drop_after is not None
                and not self.receive
                and isinstance(name, str)
                and name not in self.dropped_files
            ):
                self.dropped_files.add(name)
                self._drop_limit = self.drop_after
        return self._drop_limit

    def send(self, data):
        limit = self._limit()
        if limit is None:
            return super().send(data)
        room = limit - self.tot_bytes_sent
        sent = super().send(data[:room]) if room > 0 else 0
        if self.tot_bytes_sent >= limit and not self._closed:
            logger.info(
                "fault: dropping the data connection of %s after %d bytes",
                self.file_obj.name,
                self.tot_bytes_sent,
            )
            self._resp = (
                "426 Connection closed; transfer aborted.",
                logger.warning,
            )
            self.close()
        return sent


class FaultHandler(FTPHandler):
    """Control connections that list hostile names when asked to."""

    evil_listing = False
    # sendfile() bypasses send(), where transfers are cut.
    use_sendfile = False
    dtp_handler = DroppingDTPHandler

    def _is_root(self, path):
        return os.path.realpath(path) == os.path.realpath(self.fs.root)

    def pre_process_command(self, line, cmd, arg):
        # Hostile names must be answered before pyftpdlib normalises them into
        # the root (its ftp2fs turns `../evil` into `ROOT/evil`). Any path
        # ending in `evil` counts, however the client joined it to its
        # directory.
        evil = os.path.basename(arg) == "evil"
        if self.evil_listing and cmd in ("SIZE", "RETR") and evil:
            self.logline(f"<- {line}")
            if not self.authenticated:
                self.respond("530 Log in with USER and PASS first.")
            elif cmd == "SIZE":
                self.respond(f"213 {len(EVIL_BYTES)}")
            else:
                self._restart_position = 0
                self.push_dtp_data(EVIL_BYTES, cmd="RETR")
            return
        super().pre_process_command(line, cmd, arg)

    def ftp_MLSD(self, path):
        if not (self.evil_listing and self._is_root(path)):
            return super().ftp_MLSD(path)
        try:
            listing = self.run_as_current_user(self.fs.listdir, path)
        except OSError as err:
            self.respond(f"550 {os.strerror(err.errno or errno.EIO)}.")
            return None
        perms = self.authorizer.get_perms(self.username)
        lines = list(
            self.fs.format_mlsx(path, listing, perms, self._current_facts)
        )
        for name in EVIL_NAMES:
            lines.append(
                (
                    f"type=file;size={len(EVIL_BYTES)};modify=20240101000000;"
                    f"perm=r; {name}\r\n"
                ).encode()
            )
        self.push_dtp_data(b"".join(lines), cmd="MLSD")
        return path

    def ftp_LIST(self, path):
        if not (self.evil_listing and self._is_root(path)):
            return super().ftp_LIST(path)
        try:
            listing = sorted(self.run_as_current_user(self.fs.listdir, path))
        except OSError as err:
            self.respond(f"550 {os.strerror(err.errno or errno.EIO)}.")
            return None
        lines = list(self.fs.format_list(path, listing))
        for name in EVIL_NAMES:
            lines.append(
                (
                    f"-rw-r--r--   1 ftp      ftp      {len(EVIL_BYTES):8d} "
                    f"Jan 01  2024 {name}\r\n"
                ).encode()
            )
        self.push_dtp_data(b"".join(lines), cmd="LIST")
        return path

    def ftp_NLST(self, path):
        if not (self.evil_listing and self._is_root(path)):
            return super().ftp_NLST(path)
        try:
            listing = sorted(self.run_as_current_user(self.fs.listdir, path))
        except OSError as err:
            self.respond(f"550 {os.strerror(err.errno or errno.EIO)}.")
            return None
        names = listing + list(EVIL_NAMES)
        self.push_dtp_data(
            "".join(f"{n}\r\n" for n in names).encode(), cmd="NLST"
        )
        return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="the directory served (read-only)")
    parser.add_argument("--drop-data-after", type=int, metavar="BYTES")
    parser.add_argument("--evil-listing", action="store_true")
    parser.add_argument("--no-epsv", action="store_true")
    parser.add_argument("--pasv-address", metavar="ADDR")
    args = parser.parse_args()
    if args.drop_data_after is not None and args.drop_data_after < 0:
        parser.error("--drop-data-after must be at least 0")

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(os.path.realpath(args.root), perm="elr")
    DroppingDTPHandler.drop_after = args.drop_data_after
    FaultHandler.evil_listing = args.evil_listing
    FaultHandler.authorizer = authorizer
    FaultHandler.banner = "dlm ftp_faults.py ready."
    if args.no_epsv:
        FaultHandler.proto_cmds = {
            k: v for k, v in FTPHandler.proto_cmds.items() if k != "EPSV"
        }
    if args.pasv_address:
        FaultHandler.masquerade_address = args.pasv_address
    server = FTPServer(("127.0.0.1", 0), FaultHandler)
    server.max_cons = 256
    server.max_cons_per_ip = 0  # unlimited
    port = server.socket.getsockname()[1]
    print(f"READY {port}", flush=True)
    server.serve_forever(handle_exit=True)


if __name__ == "__main__":
    main()
