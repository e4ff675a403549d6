"""docs/testing.md's examples, run as a user runs them: the fixture example in a pytest of its own,
outside this project's configuration."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_allm_server_fixture_example_passes(tmp_path: Path) -> None:
    (example,) = [block for block in python_blocks() if "def test_" in block]
    (tmp_path / "test_example.py").write_text(example, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # not this project's
    command = [sys.executable, "-m", "pytest", "-q", "-p", "allm_jupyter.testing.plugin"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_stand_in_example_runs(tmp_path: Path) -> None:
    (example,) = [block for block in python_blocks() if "StandInServer(" in block]
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
