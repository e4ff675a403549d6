"""The release a stranger installs: ``python -m build``, ``twine check``, then the wheel alone.

The wheel is installed into a fresh venv with its ``demo`` extra and used from a directory outside
the clone, so nothing of the source tree (nor this suite's editable install) can stand in for a
file the wheel forgot.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import allm_jupyter

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(900)  # a hang guard only: building, and ~80 packages to install
LOAD_AND_ASK_HELP = """
import importlib.metadata, pathlib, sys
import allm_jupyter
from IPython.core.interactiveshell import InteractiveShell
here = pathlib.Path(allm_jupyter.__file__).parent
assert pathlib.Path(sys.prefix) in here.parents, here
assert (here / "py.typed").is_file()
assert importlib.metadata.version("allm-jupyter") == allm_jupyter.__version__
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "allm_jupyter")
shell.run_line_magic("allm", "help")
print("version", allm_jupyter.__version__)
"""


def run(*command: str | Path, cwd: Path) -> str:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ANYTHING_LLM_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist, then the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT, cwd=out)
    return out


def test_build_makes_one_wheel_and_one_sdist_that_twine_accepts(dist: Path) -> None:
    version = allm_jupyter.__version__
    assert sorted(p.name for p in dist.iterdir()) == [
        f"allm_jupyter-{version}-py3-none-any.whl",
        f"allm_jupyter-{version}.tar.gz",
    ]
    run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()), cwd=dist)


def test_the_wheel_holds_every_module_the_typing_marker_and_the_notebooks(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tree = {p.relative_to(ROOT).as_posix() for p in (ROOT / "allm_jupyter").rglob("*.py")}
    assert tree <= names, tree - names
    assert "allm_jupyter/py.typed" in names
    notebooks = {
        f"allm_jupyter/testing/notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")
    }
    assert notebooks and notebooks <= names


def test_the_version_is_written_once(dist: Path) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # no tomllib on 3.10
    project = pyproject.partition("\n[project]\n")[2].partition("\n[")[0]
    assert not re.search(r"^version\s*=", project, re.M)
    assert re.search(r'^dynamic = \["version"\]', project, re.M)
    assert re.search(r'^version = \{ attr = "allm_jupyter.__version__" \}$', pyproject, re.M)
    (wheel,) = dist.glob("*.whl")
    metadata = zipfile.ZipFile(wheel).read(
        f"allm_jupyter-{allm_jupyter.__version__}.dist-info/METADATA"
    )
    assert f"\nVersion: {allm_jupyter.__version__}\n".encode() in metadata
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(r"^## Unreleased$", changelog, re.M)


def test_the_release_page_installs_the_wheel_this_builds() -> None:
    readme = (ROOT / "docs" / "release.md").read_text(encoding="utf-8")
    wheel = f"dist/allm_jupyter-{allm_jupyter.__version__}-py3-none-any.whl[demo]"
    command = f"python -m build && pip install '{wheel}' && python -m allm_jupyter.testing.demo"
    assert f"```bash\n{command}\n```" in readme


def test_the_wheel_alone_loads_the_extension_and_runs_the_demo(dist: Path, tmp_path: Path) -> None:
    """A clean venv, no clone: ``%load_ext allm_jupyter`` works and the README's demo runs."""
    (wheel,) = dist.glob("*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(python, "-m", "pip", "install", "--quiet", f"{wheel}[demo]", cwd=elsewhere)
    assert f"version {allm_jupyter.__version__}" in run(
        python, "-c", LOAD_AND_ASK_HELP, cwd=elsewhere
    )
    demo = run(python, "-m", "allm_jupyter.testing.demo", "--speed", "0", cwd=elsewhere)
    assert "started the bundled stand-in server" in demo
    assert "Ran quickstart.ipynb to the end" in demo
