"""Command line: python -m dummy_server [--port 8000] [test modes]."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .app import QUIRKS, ServerConfig
from .server import BackgroundServer

_EPILOG = """\
examples:
  python -m dummy_server --port 8000
  python -m dummy_server --tokens-per-second 20 --latency-ms 300     # feel like a real model
  python -m dummy_server --fail-rate 0.3 --drop-rate 0.3 --seed 1    # a flaky server
  python -m dummy_server --quirk alternating-roles                   # Mistral-style template
  python -m dummy_server --context-window 1024                       # a small context

The API key may also come from the DUMMY_SERVER_API_KEY environment variable.
"""


def _ranged(kind: type, low: float, high: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value  # type: ignore[no-any-return]

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The dummy server's argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m dummy_server",
        description="Offline OpenAI-compatible chat server with Markov-chain replies.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument(
        "--port",
        type=_ranged(int, 0, 65535),
        default=8000,
        help="port (default: %(default)s; 0 picks a free one)",
    )
    p.add_argument(
        "--model", default="markov-dummy", help="model id to report (default: %(default)s)"
    )
    p.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (else 401)")
    p.add_argument(
        "--latency-ms", type=_ranged(float, 0), default=0.0, help="delay before the first token"
    )
    p.add_argument(
        "--tokens-per-second",
        type=_ranged(float, 0),
        default=0.0,
        help="pace replies at this rate (0: as fast as possible)",
    )
    p.add_argument(
        "--fail-rate",
        type=_ranged(float, 0, 1),
        default=0.0,
        help="share of chat requests answered 500 or 429",
    )
    p.add_argument(
        "--drop-rate",
        type=_ranged(float, 0, 1),
        default=0.0,
        help="share of streams cut mid-reply (no finish_reason, no [DONE])",
    )
    p.add_argument(
        "--quirk",
        action="append",
        choices=QUIRKS,
        default=[],
        help="simulate a server quirk (repeatable)",
    )
    p.add_argument(
        "--context-window",
        type=_ranged(int, 1),
        default=32768,
        help="prompt + max_tokens limit (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, help="seed for fault injection (fail/drop draws)")
    p.add_argument(
        "--retry-after-ms",
        type=_ranged(int, 0),
        default=1000,
        help="Retry-After sent with simulated 429s (default: %(default)s)",
    )
    p.add_argument(
        "--template-error-status",
        type=int,
        choices=(400, 422, 500),
        default=400,
        help="HTTP status of template errors: 400 vLLM, 422 TGI, 500 llama.cpp",
    )
    p.add_argument(
        "--corpus",
        type=argparse.FileType("r", encoding="utf-8"),
        metavar="FILE",
        help="learn from this text instead of the built-in corpus",
    )
    p.add_argument("--quiet", action="store_true", help="do not log each request")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until interrupted."""
    args = build_parser().parse_args(argv)
    config = ServerConfig(
        model=args.model,
        api_key=args.api_key or os.environ.get("DUMMY_SERVER_API_KEY") or None,
        latency_ms=args.latency_ms,
        tokens_per_second=args.tokens_per_second,
        fail_rate=args.fail_rate,
        drop_rate=args.drop_rate,
        quirks=frozenset(args.quirk),
        context_window=args.context_window,
        seed=args.seed,
        retry_after_ms=args.retry_after_ms,
        template_error_status=args.template_error_status,
        corpus=args.corpus.read() if args.corpus else None,
    )
    try:
        server = BackgroundServer(config, host=args.host, port=args.port, quiet=args.quiet)
    except OSError as exc:
        print(
            f"Error: {args.host}:{args.port}: cannot listen ({exc.strerror}); "
            "pick another port with --port",
            file=sys.stderr,
        )
        return 1
    print(f"dummy_server: serving {config.model} at {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        print("dummy_server: stopped", file=sys.stderr)
        server.close()
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
