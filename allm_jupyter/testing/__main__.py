"""``python -m allm_jupyter.testing``: serve the stand-in for a demo or a manual check."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Sequence

from allm_jupyter.testing.server import APP_VERSION, MODEL_SPEED, StandInServer


def export_lines(server: StandInServer) -> str:
    """The ``export`` lines that point a POSIX shell at ``server``, quoted for pasting."""
    env = server.environ({})
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m allm_jupyter.testing",
        description=f"Serve a stand-in for the AnythingLLM {APP_VERSION} developer API "
        "until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--port", type=int, default=3001, help="port to listen on (default 3001)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--api-key", help="the API key to accept (default: a random one)")
    parser.add_argument(
        "--speed",
        type=float,
        default=MODEL_SPEED,
        help=f"words per second of the answers (default {MODEL_SPEED:g}, a local model's pace; "
        "0 answers at once)",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = StandInServer(
        api_key=args.api_key, host=args.host, port=args.port, speed=max(args.speed, 0.0)
    )
    try:
        server.start()
    except OSError as error:
        print(f"cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    try:
        print(
            f"AnythingLLM stand-in server (API of AnythingLLM {APP_VERSION}) is running, "
            f"with the workspaces {', '.join(server.slugs)}.\n"
            "Paste these lines into another shell, then start Jupyter or IPython there:\n\n"
            f"{export_lines(server)}\n\n"
            "Stop the server with Ctrl-C.",
            flush=True,
        )
        while not stop.wait(timeout=0.5):  # a timed wait stays interruptible on every platform
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
