"""``python -m allm_jupyter.testing``: serve the stand-in for a demo or a manual check."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from allm_jupyter.testing.server import APP_VERSION, StandInServer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m allm_jupyter.testing",
        description=f"Serve a stand-in for the AnythingLLM {APP_VERSION} developer API "
        "until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--port", type=int, default=3001, help="port to listen on (default 3001)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--api-key", help="the API key to accept (default: a random one)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = StandInServer(api_key=args.api_key, host=args.host, port=args.port)
    try:
        server.start()
    except OSError as error:
        print(f"cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    try:
        print(
            f"AnythingLLM stand-in server (API of AnythingLLM {APP_VERSION}) is running.\n"
            f"  base URL:    {server.base_url}\n"
            f"  API key:     {server.api_key}\n"
            f"  workspaces:  {', '.join(server.slugs)}\n"
            "Stop it with Ctrl-C.",
            flush=True,
        )
        while not stop.wait(timeout=0.5):  # a timed wait stays interruptible on every platform
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
