"""``python -m allm_jupyter.demo``: run the quickstart notebook headless and print the answers.

With no ``ANYTHING_LLM_BASE_URL`` set it starts the bundled stand-in server on loopback and points
the notebook's kernel at it; with a real server configured it runs against that one. ``--lab``
opens JupyterLab on the same set-up instead.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import API_KEY_ENV, BASE_URL_ENV, WORKSPACE_ENV, AllmError
from .settings import env_base_url, env_workspace

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@contextmanager
def demo_environment() -> Iterator[dict[str, str]]:
    """The environment for the kernel: the user's server, or a stand-in started for the demo."""
    env = dict(os.environ)
    if env_base_url():
        if not env_workspace():
            env[WORKSPACE_ENV] = _first_workspace()
        print(f"Using the AnythingLLM server at {env[BASE_URL_ENV]} (from {BASE_URL_ENV}).")
        yield env
        return
    from .testing import StandInServer

    with StandInServer() as server:
        env.update(
            {BASE_URL_ENV: server.base_url, API_KEY_ENV: server.api_key, WORKSPACE_ENV: server.slugs[0]}
        )
        print(
            f"No {BASE_URL_ENV} set: started the bundled stand-in server at {server.base_url}\n"
            f"(workspaces: {', '.join(server.slugs)}). Set {BASE_URL_ENV} and {API_KEY_ENV} "
            "to use your own server."
        )
        yield env


def _first_workspace() -> str:
    from .client import Client

    with Client() as client:
        workspaces = client.workspaces()
    if not workspaces:
        raise AllmError(f"The server has no workspaces; create one, or set {WORKSPACE_ENV}.")
    print(f"{WORKSPACE_ENV} is not set: using the first workspace, {workspaces[0].slug}.")
    return workspaces[0].slug


def run_headless(notebook: Path, env: dict[str, str]) -> int:
    """Execute the notebook in a fresh kernel, echoing each cell and its answer as it streams."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    printed: dict[str, str] = {}

    class EchoingClient(NotebookClient):
        """Prints outputs while they arrive, so the terminal shows the answer streaming."""

        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            _echo(msg, printed)
            return super().process_message(msg, cell, cell_index)

    nb = nbformat.read(notebook, as_version=4)
    client = EchoingClient(nb, timeout=300, kernel_name="python3", allow_errors=True)
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits the demo's server settings
    try:
        client.execute(cwd=str(notebook.parent))
    except CellExecutionError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return 0


def _echo(msg: dict[str, Any], printed: dict[str, str]) -> None:
    kind = msg["msg_type"]
    content = msg["content"]
    if kind == "execute_input":
        print(f"\n\x1b[1mIn [{content['execution_count']}]:\x1b[0m {content['code']}", flush=True)
    elif kind == "stream":
        print(content["text"], end="", flush=True)
    elif kind in ("display_data", "update_display_data", "execute_result"):
        text = content["data"].get("text/plain", "")
        display_id = (content.get("transient") or {}).get("display_id") or ""
        before = printed.get(display_id, "") if display_id else ""
        if display_id and text.startswith(before):
            print(text[len(before) :], end="", flush=True)
        else:
            print(("\n" if before else "") + text, end="", flush=True)
        if display_id:
            printed[display_id] = text
        else:
            print(flush=True)
    elif kind == "error":
        print("\n" + "\n".join(content["traceback"]), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m allm_jupyter.demo", description=__doc__)
    parser.add_argument("--lab", action="store_true", help="open JupyterLab instead of running headless")
    parser.add_argument("--notebook", type=Path, default=NOTEBOOKS / "quickstart.ipynb")
    args = parser.parse_args(argv)
    try:
        with demo_environment() as env:
            if args.lab:
                command = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", str(args.notebook)]
                if os.geteuid() == 0:
                    command.append("--allow-root")
                return subprocess.call(command, env=env)
            return run_headless(args.notebook, env)
    except AllmError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
