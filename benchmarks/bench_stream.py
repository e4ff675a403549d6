"""A 129 KB answer in 20,000 chunks: what ``%%allm`` sends to the front end, and how fast.

The comparison point is the pattern of re-sending the whole text on every token, measured at
1.2 GB of display messages and 15 s of kernel time for this answer, against 0.31 s to read it.
"""

from __future__ import annotations

import json
import sys
import time

from jupyter_client.manager import KernelManager

from allm_jupyter import Client
from allm_jupyter.testing import StandInServer, scenarios

CHUNKS = 20_000
MAX_DISPLAY_BYTES = 25_000_000
MAX_KERNEL_SECONDS = 4.0


def answer() -> str:
    return " ".join(f"w{i:04d}" for i in range(CHUNKS))


def read_with_client(server: StandInServer, text: str) -> float:
    server.queue(scenarios.normal(text))
    with Client(server.base_url, api_key=server.api_key) as client:
        started = time.perf_counter()
        reply = client.chat(server.slugs[0], "q", mode="chat")
        elapsed = time.perf_counter() - started
    assert reply.text == text
    return elapsed


def run_in_kernel(server: StandInServer, text: str) -> tuple[int, int, float]:
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=server.environ())
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        client.execute_interactive("%load_ext allm_jupyter", timeout=60)
        server.queue(scenarios.normal(text))
        messages: list[dict] = []
        started = time.perf_counter()
        client.execute_interactive(
            f"%%allm workspace={server.slugs[0]} mode=chat\nq",
            timeout=120,
            output_hook=messages.append,
        )
        elapsed = time.perf_counter() - started
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    shown = [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")]
    last = shown[-1]["content"]["data"]["text/plain"]
    assert last.startswith(text), "the last update must hold the exact full answer"
    return len(shown), sum(len(json.dumps(m["content"])) for m in shown), elapsed


def main() -> int:
    text = answer()
    with StandInServer() as server:
        read = read_with_client(server, text)
        count, size, kernel = run_in_kernel(server, text)
    print(f"answer: {len(text.encode()) / 1000:.0f} KB in {CHUNKS} chunks")
    print(f"reading the stream with Client: {read:.2f} s")
    print(f"%%allm in a kernel: {kernel:.2f} s, {count} display messages, {size / 1e6:.1f} MB")
    print(f"targets: < {MAX_KERNEL_SECONDS} s, < {MAX_DISPLAY_BYTES / 1e6:.0f} MB")
    return 0 if kernel < MAX_KERNEL_SECONDS and size < MAX_DISPLAY_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
