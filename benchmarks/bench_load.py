"""How long ``%load_ext allm_jupyter`` takes, and that it imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys

TARGET_SECONDS = 0.1
PROBE = """
import json, sys, time
from IPython.testing.globalipapp import start_ipython
ip = start_ipython()
before = set(sys.modules)
started = time.perf_counter()
ip.run_line_magic("load_ext", "allm_jupyter")
elapsed = time.perf_counter() - started
heavy = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("httpx", "httpx_sse", "ipywidgets"))
print(json.dumps({"seconds": elapsed, "heavy": heavy}))
"""


def main() -> int:
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
            ).stdout.splitlines()[-1]
        )
        for _ in range(5)
    ]
    best = min(r["seconds"] for r in runs)
    heavy = sorted({m for r in runs for m in r["heavy"]})
    print(
        f"%load_ext allm_jupyter: best of 5 = {best * 1000:.1f} ms (target < {TARGET_SECONDS * 1000:.0f} ms)"
    )
    print(f"heavy modules imported by loading: {heavy or 'none'}")
    return 0 if best < TARGET_SECONDS and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
