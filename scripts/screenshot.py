"""Regenerate ``docs/streaming.png``: a ``%%allm`` answer with its sources, in JupyterLab.

Runs offline against the bundled stand-in server, with JupyterLab and Chromium started exactly as
the browser tests start them (``tests/browser/lab.py``), so the picture shows what they check.
Usage: ``python scripts/screenshot.py [OUTPUT]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser.lab import VIEWPORT, Notebook, chromium, running_lab, standin_env  # noqa: E402

from allm_jupyter.testing import StandInServer  # noqa: E402

CELLS = (
    "%load_ext allm_jupyter",
    "%%allm workspace=research\nWhat does the handbook say about onboarding?",
)
MARGIN = 12
"""CSS pixels of notebook background kept below the answer."""


def screenshot(output: Path) -> None:
    """Ask the stand-in in a fresh Lab, open the answer's sources, keep just the notebook."""
    with (
        StandInServer() as server,
        TemporaryDirectory() as workdir,
        running_lab(Path(workdir), standin_env(server)) as lab,
        chromium() as browser,
    ):
        # Twice the pixels of the viewport, so the text stays sharp on high-density screens.
        page = browser.new_page(viewport=VIEWPORT, device_scale_factor=2)
        notebook = Notebook(page, lab, "onboarding", CELLS)
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
        page.locator("#jp-left-stack").wait_for(state="hidden")  # the notebook gets the width
        notebook.run_all()
        answer = notebook.output(1)
        answer.locator("details summary").click()
        answer.locator("details[open] li").first.wait_for()
        page.mouse.move(0, 0)  # no hover highlight in the picture
        panel, bottom = notebook.panel.bounding_box(), answer.bounding_box()
        assert panel is not None and bottom is not None
        height = bottom["y"] + bottom["height"] + MARGIN - panel["y"]
        page.screenshot(path=output, clip={**panel, "height": height}, animations="disabled")


def main() -> int:
    parser = argparse.ArgumentParser(description="Regenerate docs/streaming.png offline.")
    parser.add_argument("output", nargs="?", type=Path, default=ROOT / "docs" / "streaming.png")
    args = parser.parse_args()
    screenshot(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
