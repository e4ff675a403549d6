"""``python -m allm_jupyter.testing.demo``: run the quickstart notebook headless and print the answers.

With no ``ANYTHING_LLM_BASE_URL`` set it starts the bundled stand-in server on loopback and points
the notebook's kernel at it; with a real server configured it runs against that one. ``--lab``
opens JupyterLab on the same set-up instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import AllmError
from ..settings import API_KEY_ENV, BASE_URL_ENV, WORKSPACE_ENV, env_value
from .server import MODEL_SPEED, StandInServer

_PACKAGED = Path(__file__).resolve().parent / "notebooks"
NOTEBOOKS = _PACKAGED if _PACKAGED.is_dir() else _PACKAGED.parents[2] / "notebooks"
"""The notebooks a wheel ships (in ``allm_jupyter/testing/notebooks/``), else the source tree's."""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WIDGET = "application/vnd.jupyter.widget-view+json"


@contextmanager
def demo_environment(speed: float = MODEL_SPEED) -> Iterator[dict[str, str]]:
    """The environment for the kernel: the user's server, or a stand-in started for the demo
    (answering at ``speed`` words per second)."""
    env = dict(os.environ)
    if env_value(env, BASE_URL_ENV):
        if not env_value(env, WORKSPACE_ENV):
            env[WORKSPACE_ENV] = _first_workspace()
        print(f"Using the AnythingLLM server at {env[BASE_URL_ENV]} (from {BASE_URL_ENV}).")
        yield env
        return
    with StandInServer(speed=speed) as server:
        env = server.environ(env)
        print(
            f"No {BASE_URL_ENV} set: started the bundled stand-in server at {server.base_url}\n"
            f"(workspaces: {', '.join(server.slugs)}). Set {BASE_URL_ENV} and {API_KEY_ENV} "
            "to use your own server."
        )
        yield env


@contextmanager
def kernel_sockets() -> Iterator[dict[str, str]]:
    """``KernelManager`` settings: kernels talk over Unix sockets in a private directory where
    there are some (ipykernel then does not warn that its TCP traffic is unencrypted)."""
    if os.name != "posix":
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="allm-demo-") as directory:
        yield {"transport": "ipc", "ip": os.path.join(directory, "kernel")}


def _first_workspace() -> str:
    from ..client import Client  # only to list a configured server's workspaces

    with Client() as client:
        workspaces = client.workspaces()
    if not workspaces:
        raise AllmError(f"The server has no workspaces; create one, or set {WORKSPACE_ENV}.")
    print(f"{WORKSPACE_ENV} is not set: using the first workspace, {workspaces[0].slug}.")
    return workspaces[0].slug


class _Echo:
    """Prints a kernel's output messages as they arrive, so the terminal shows answers streaming.

    A streamed answer is one output updated in place; only the text each update adds is printed.
    """

    def __init__(self, *, colour: bool) -> None:
        self._colour = colour
        self._printed: dict[str, str] = {}
        self._open_line: str | None = None
        """The output whose text ends the terminal's last line, while that line is unfinished."""

    def _write(self, text: str, output: str = "") -> None:
        """Print ``text`` of ``output``; a line another output left unfinished is ended first."""
        if not text:
            return
        if self._open_line not in (None, output):
            text = "\n" + text
        print(text if self._colour else _ANSI.sub("", text), end="", flush=True)
        self._open_line = None if text.endswith("\n") else output

    def heading(self, markdown: str) -> None:
        """The headings of a Markdown cell: the notebook's story between the code."""
        for line in markdown.splitlines():
            if line.startswith("#"):
                self._write(f"\n\x1b[1;34m{line}\x1b[0m\n")

    def message(self, msg: dict[str, Any]) -> None:
        kind = msg["msg_type"]
        content = msg["content"]
        if kind == "execute_input":
            self._write(f"\n\x1b[1mIn [{content['execution_count']}]:\x1b[0m {content['code']}\n")
        elif kind == "stream":
            self._write(content["text"], f"stream:{content['name']}")
        elif kind in ("display_data", "update_display_data", "execute_result"):
            self._data(content)
        elif kind == "error":
            self._write("\n".join(content["traceback"]) + "\n")

    def _data(self, content: dict[str, Any]) -> None:
        data = content["data"]
        text = data.get("text/plain", "")
        if _WIDGET in data:
            text = f"[{text.partition('(')[0]} widget: open the notebook in JupyterLab to use it]"
        elif "text/markdown" in data and text.startswith("<") and text.endswith(" object>"):
            text = data["text/markdown"]  # e.g. IPython.display.Markdown: its source reads best
        display_id = (content.get("transient") or {}).get("display_id")
        if not display_id:
            self._write(text + "\n")
            return
        before = self._printed.get(display_id, "")
        self._write(text[len(before) :] if text.startswith(before) else "\n" + text, display_id)
        self._printed[display_id] = text


def run_headless(notebook: Path, env: dict[str, str], sockets: dict[str, str]) -> int:
    """Execute the notebook in a fresh kernel, echoing each cell and its output as it streams.

    A cell tagged ``raises-exception`` may fail (the quickstart shows an error on purpose); any
    other failing cell stops the run and makes the demo fail.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from traitlets.config import Config

    echo = _Echo(colour=sys.stdout.isatty())

    class EchoingClient(NotebookClient):
        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
            echo.message(msg)
            return super().process_message(msg, cell, cell_index)

        async def async_execute_cell(
            self, cell: Any, cell_index: int, *args: Any, **kw: Any
        ) -> Any:
            if cell.cell_type == "markdown":
                echo.heading(cell.source)
            return await super().async_execute_cell(cell, cell_index, *args, **kw)

    nb = nbformat.read(notebook, as_version=4)  # type: ignore[no-untyped-call]
    config = Config(KernelManager=sockets)
    client = EchoingClient(nb, timeout=300, kernel_name="python3", config=config)
    try:
        client.execute(cwd=str(notebook.parent), env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        print(f"\n{notebook.name} failed: {_ANSI.sub('', str(exc))}", file=sys.stderr)
        return 1
    print(f"\n\nRan {notebook.name} to the end; with --lab the demo opens it in JupyterLab.")
    return 0


def run_lab(notebook: Path, env: dict[str, str], sockets: dict[str, str]) -> int:
    """JupyterLab on the notebook, with the demo's server settings in its kernels' environment;
    once it answers, the last line printed is the notebook's URL with its token."""
    port, token = _free_port(), secrets.token_hex(24)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        "--no-browser",
        f"--ServerApp.root_dir={notebook.parent}",
        *(f"--KernelManager.{name}={value}" for name, value in sockets.items()),
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    base = f"http://127.0.0.1:{port}"
    with subprocess.Popen(command, env=env | {"JUPYTER_TOKEN": token}) as lab:
        try:
            if _wait_until_serving(lab, f"{base}/api/status?token={token}"):
                url = f"{base}/lab/tree/{quote(notebook.name)}?token={token}"
                print(f"\nJupyterLab is ready; open {url}\nStop it with Ctrl-C.", flush=True)
            return lab.wait()
        except KeyboardInterrupt:
            lab.terminate()  # Jupyter's own clean shutdown, which stops its kernels too
            lab.wait()
            return 130


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_serving(lab: subprocess.Popen[bytes], url: str) -> bool:
    """Whether JupyterLab came up and answers ``url``; False when it exited first."""
    while lab.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return True
        except OSError:  # not listening yet (URLError is an OSError)
            with contextlib.suppress(subprocess.TimeoutExpired):
                lab.wait(timeout=0.2)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m allm_jupyter.testing.demo", description=__doc__
    )
    parser.add_argument(
        "--lab", action="store_true", help="open JupyterLab instead of running headless"
    )
    parser.add_argument(
        "--notebook",
        type=Path,
        default=NOTEBOOKS / "quickstart.ipynb",
        help="the notebook to run (default: the quickstart notebook)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=MODEL_SPEED,
        help=f"words per second of the stand-in's answers (default {MODEL_SPEED:g}; 0 is instant)",
    )
    args = parser.parse_args(argv)
    notebook = args.notebook.resolve()
    if not notebook.is_file():
        print(
            f"There is no notebook at {notebook}.",
            file=sys.stderr,
        )
        return 2
    try:
        with demo_environment(max(args.speed, 0.0)) as env, kernel_sockets() as sockets:
            run = run_lab if args.lab else run_headless
            return run(notebook, env, sockets)
    except AllmError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
