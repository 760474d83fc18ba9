"""The `view` subcommand: serve the viewer on a loopback port until interrupted."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError, RoundtableError


def add_parser(sub: Any) -> None:
    """Add `view` to the CLI's subparsers."""
    p = sub.add_parser(
        "view",
        help="watch runs and studies in a browser (live while they are written)",
        description="Serve a read-only web viewer of the runs and studies under DIR (README, "
        '"Watching a run"). Loopback only unless --host says otherwise.',
    )
    p.add_argument(
        "directory",
        nargs="?",
        type=Path,
        metavar="DIR",
        help="the runs and studies to show (default: outputs/ of the current table)",
    )
    p.add_argument("--port", type=int, default=8321, metavar="N", help="port (default: 8321)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="H",
        help="address to listen on (default: 127.0.0.1; others expose your transcripts)",
    )


def is_loopback(host: str) -> bool:
    """Does this address only accept connections from this machine?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(args: argparse.Namespace) -> int:
    """Run `roundtable view`; returns the exit code."""
    root = args.directory if args.directory is not None else Path("outputs")
    if not root.is_dir():
        hint = " (no run has been written here yet: start one with python -m roundtable)"
        raise InputError(
            f"{root}: not a directory; pass the directory that holds the runs"
            f"{hint if args.directory is None else ''}"
        )
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port: must be from 0 to 65535, got {args.port}")
    if not args.host.strip():
        raise InputError("--host: is empty; give an address such as 127.0.0.1 or 0.0.0.0")
    from werkzeug.serving import WSGIRequestHandler, make_server

    class _Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # a line per page and per stream would bury the one line that matters

    from .app import create_app
    from .render import moderator_diagram

    app = create_app(root, diagram=moderator_diagram)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = _bind(args.host, args.port, family)
    if not is_loopback(args.host):
        # Only once bound: a host we cannot listen on exposes nothing.
        print(
            f"roundtable: warning: serving on {args.host}: anyone who can reach this address "
            "can read these transcripts",
            file=sys.stderr,
        )
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=_Quiet, fd=sock.fileno()
    )
    server.daemon_threads = True  # type: ignore[attr-defined]  # live streams end with us
    port = server.socket.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"roundtable: viewing {root.resolve()} at http://{shown}:{port}/ (Ctrl-C to stop)",
          flush=True)  # fmt: skip
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        sock.close()
    return 0


def _bind(host: str, port: int, family: int) -> socket.socket:
    """A socket listening on host:port, or one Error line saying which option to change."""
    # Bound here, so a port in use is an OSError we can word (werkzeug would exit).
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise RoundtableError(
            f"{host}: cannot listen ({exc.strerror or exc}); check --host"
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        # A port in use or reserved is the port's fault; anything else (an unknown name,
        # an address not on this machine) is the host's.
        port_fault = exc.errno in (errno.EADDRINUSE, errno.EACCES)
        fix = "pick another port with --port" if port_fault else "check --host"
        raise RoundtableError(
            f"{host}:{port}: cannot listen ({exc.strerror or exc}); {fix}"
        ) from None
    return sock
