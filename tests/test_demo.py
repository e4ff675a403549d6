"""``python -m allm_jupyter.testing.demo``, the README's first command, run as a newcomer runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from itertools import accumulate
from pathlib import Path

import nbformat
import pytest

from allm_jupyter.errors import WorkspaceNotFoundError
from allm_jupyter.testing import REFUSAL_TEXT, StandInServer, expected_reply
from allm_jupyter.testing.data import SEED_WORKSPACES

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"
SETUP = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[demo]' "
    "&& .venv/bin/python -m allm_jupyter.testing.demo"
)
STANDIN_KEY = re.compile(r"standin-[0-9a-f]{16}")
"""The shape of the key a stand-in started by the demo makes up (the test cannot know it)."""


def run_demo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The demo in a subprocess, with no ``ANYTHING_LLM_*`` setting but those given."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ANYTHING_LLM_")}
    environ.update(env, PYDEVD_DISABLE_FILE_VALIDATION="1")
    return subprocess.run(
        [sys.executable, "-m", "allm_jupyter.testing.demo", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=100,
    )


def quickstart_question() -> str:
    """The question of the quickstart's first ``%%allm`` cell."""
    nb = nbformat.read(QUICKSTART, as_version=4)
    ask = next(c for c in nb.cells if c.get("id") == "ask")
    return ask.source.partition("\n")[2].strip()


def test_readme_gives_the_two_set_up_commands() -> None:
    """What the lead and CI rely on, verbatim; the tests below run the demo the first one runs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```bash\n{SETUP}\n```" in readme
    assert "```bash\nbash scripts/test.sh\n```" in readme
    assert readme.count("```bash\n") == 2, "exactly two commands to paste"
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def demo_reads(*args: str) -> tuple[list[str], str, int]:
    """The demo's stdout as the successive reads of its pipe (what a terminal shows, and when),
    its stderr, and its exit code."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ANYTHING_LLM_")}
    environ.update(PYDEVD_DISABLE_FILE_VALIDATION="1")
    with tempfile.TemporaryFile() as stderr:
        demo = subprocess.Popen(
            [sys.executable, "-m", "allm_jupyter.testing.demo", *args],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        assert demo.stdout is not None
        reads = list(iter(lambda: os.read(demo.stdout.fileno(), 65536), b""))
        code = demo.wait(timeout=100)
        demo.stdout.close()
        stderr.seek(0)
        errors = stderr.read().decode()
    return [read.decode(errors="replace") for read in reads], errors, code


def test_demo_without_a_server_uses_the_bundled_stand_in() -> None:
    reads, stderr, code = demo_reads()
    assert code == 0, stderr
    out = "".join(reads)
    assert (
        "No ANYTHING_LLM_BASE_URL set: started the bundled stand-in server at http://127.0.0.1:"
        in out
    )
    slug = SEED_WORKSPACES[0].slug
    answer = expected_reply(slug, quickstart_question())
    assert f"{answer}\n\nSources:\n1. project-glossary.md (100%)" in out
    # The quickstart's failing cell is shown, and does not fail the demo.
    assert (
        WorkspaceNotFoundError("no-such-workspace", [w.slug for w in SEED_WORKSPACES]).message
        in out
    )
    assert out.rstrip().endswith("with --lab the demo opens it in JupyterLab.")
    assert not STANDIN_KEY.search(out + stderr)
    # The answer grows on the terminal: its first words are shown before its last ones arrive.
    shown = list(accumulate(reads))
    first_words = next(i for i, text in enumerate(shown) if answer[:20] in text)
    whole = next(i for i, text in enumerate(shown) if answer in text)
    assert first_words < whole, "the answer was printed in one piece"
    # Said once: the query-mode refusal, and no ipykernel warning about TCP.
    assert out.count(REFUSAL_TEXT) == 1
    assert "without encryption" not in out + stderr


def test_demo_with_a_server_configured_uses_that_server(allm_server: StandInServer) -> None:
    done = run_demo(
        ANYTHING_LLM_BASE_URL=allm_server.base_url, ANYTHING_LLM_API_KEY=allm_server.api_key
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"Using the AnythingLLM server at {allm_server.base_url}" in out
    assert "stand-in" not in out
    first = allm_server.slugs[0]
    assert (
        f"ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG is not set: using the first workspace, {first}."
        in out
    )
    asked = [
        r for r in allm_server.chat_requests() if r.json.get("message") == quickstart_question()
    ]
    assert [r.path for r in asked] == [f"/api/v1/workspace/{first}/stream-chat"]
    assert all(r.authorized for r in allm_server.requests)
    assert allm_server.expected_reply(first, quickstart_question()) in out
    assert allm_server.api_key not in out + done.stderr


def test_demo_asks_the_configured_workspace(allm_server: StandInServer) -> None:
    chosen = allm_server.slugs[1]
    done = run_demo(
        ANYTHING_LLM_BASE_URL=allm_server.base_url,
        ANYTHING_LLM_API_KEY=allm_server.api_key,
        ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG=chosen,
    )
    assert done.returncode == 0, done.stderr
    asked = [
        r for r in allm_server.chat_requests() if r.json.get("message") == quickstart_question()
    ]
    assert [r.path for r in asked] == [f"/api/v1/workspace/{chosen}/stream-chat"]
    assert allm_server.api_key not in done.stdout + done.stderr


def test_demo_fails_on_an_unexpected_error(tmp_path: Path) -> None:
    """Only cells tagged ``raises-exception`` may fail; any other failure fails the demo."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext allm_jupyter"),
            nbformat.v4.new_code_cell("%%allm workspace=no-such-workspace\nHello?"),
        ]
    )
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, path)
    done = run_demo("--notebook", str(path))
    assert done.returncode == 1
    assert "failing.ipynb failed:" in done.stderr
    assert "There is no workspace 'no-such-workspace' on the server" in done.stderr
    assert not STANDIN_KEY.search(done.stdout + done.stderr)


def test_demo_without_the_notebook_says_so(tmp_path: Path) -> None:
    done = run_demo("--notebook", str(tmp_path / "missing.ipynb"))
    assert done.returncode == 2
    assert "There is no notebook at" in done.stderr


def test_demo_lab_ends_by_printing_its_url_with_the_token(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ANYTHING_LLM_")}
    environ.update(PYDEVD_DISABLE_FILE_VALIDATION="1", JUPYTER_RUNTIME_DIR=str(tmp_path))
    with tempfile.TemporaryFile() as stderr:
        lab = subprocess.Popen(
            [sys.executable, "-m", "allm_jupyter.testing.demo", "--lab"],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            assert lab.stdout is not None
            lines = iter(lab.stdout.readline, "")
            ready = next((line for line in lines if line.startswith("JupyterLab is ready")), "")
            url = re.search(r"http://127\.0\.0\.1:\d+/lab/tree/quickstart\.ipynb\?token=\w+", ready)
            assert url, f"no URL with a token in {ready!r}"
            with urllib.request.urlopen(url.group(0), timeout=30) as page:
                assert page.status == 200
            contents = url.group(0).replace("/lab/tree/", "/api/contents/")
            with urllib.request.urlopen(contents, timeout=30) as notebook:
                assert json.load(notebook)["name"] == "quickstart.ipynb"
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(contents.partition("?")[0], timeout=30)
            assert refused.value.code == 403, "the token is what lets a browser in"
            lab.send_signal(signal.SIGINT)
            assert lab.wait(timeout=60) == 130
        finally:
            lab.kill()
            lab.communicate()
            stderr.seek(0)
            errors = stderr.read().decode()
    assert "without encryption" not in errors
    assert not STANDIN_KEY.search(errors)
