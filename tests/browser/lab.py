"""JupyterLab, Notebook 7 and Chromium for the browser tests and ``scripts/screenshot.py``.

Both front ends are started one way (:func:`running_jupyter`), on loopback against the stand-in
server: the server gets a private root, runtime, settings and workspaces directory and a random
token, and every feature that would call the internet (news feed, update check, PyPI extension
manager) is switched off. Notebook 7 is JupyterLab's components in another shell, served with the
``jupyterlab`` server extension loaded beside its own, so the same switches apply. Kernels inherit
the server process's environment, which is how they find the stand-in and its key.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import nbformat
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright

from allm_jupyter.testing import StandInServer

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium: ``playwright install`` needs the internet, which CI and this machine lack."""
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
)
VIEWPORT: ViewportSize = {"width": 1200, "height": 800}
START_TIMEOUT = 60.0
"""Seconds the server gets to answer ``/api/status`` (a cold start takes a few)."""
KERNEL_TIMEOUT_MS = 60_000
"""A kernel start and a cell that streams a few seconds both fit well inside this."""
_COUNT_ABOVE = """([prompt, after]) => {  // "[3]:" when done, "[*]:" while running
    const count = Number(/\\[(\\d+)\\]/.exec(prompt.textContent)?.[1]);
    return count > after && count;
}"""
_KERNEL_IDLE = re.compile(r"^(?!No Kernel).* \| Idle$")
"""The status bar's kernel item once a kernel is connected; before, it reads "No Kernel | …"."""
_BANNER_CONNECTED = re.compile(
    r"^(?!.*\bjp-NotebookKernelStatus-(?:info|warn|error)\b).*\bjp-NotebookKernelStatus-fade\b"
)
"""Notebook 7's kernel banner once the kernel said "idle" or "busy" (see _notebook7_kernel_idle)."""
_DIRTY = re.compile(r"\bjp-mod-dirty\b")
_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}
}


def standin_env(server: StandInServer) -> dict[str, str]:
    """This process's environment pointed at ``server`` (and at nothing the user configured)."""
    return server.environ() | {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def _lab_kernel_idle(page: Page, filename: str) -> None:
    # The status bar's kernel item: the toolbar's circle says "idle" before any kernel exists.
    expect(page.get_by_title(f"Change kernel for {filename}")).to_have_text(
        _KERNEL_IDLE, timeout=KERNEL_TIMEOUT_MS
    )


def _notebook7_kernel_idle(page: Page, filename: str) -> None:
    # Notebook 7 has no status bar. Its menu bar's kernel banner starts with no class and no text,
    # shows "Kernel Starting" and the like with -info, and on "idle" or "busy" (statuses a kernel
    # only has once connected) empties and keeps just -fade. The toolbar's execution indicator
    # tells idle from busy, but says "idle" before any kernel exists: so it is asked second.
    expect(page.locator(".jp-NotebookKernelStatus")).to_have_class(
        _BANNER_CONNECTED, timeout=KERNEL_TIMEOUT_MS
    )
    expect(page.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
        "data-status", "idle", timeout=KERNEL_TIMEOUT_MS
    )


@dataclass(frozen=True)
class Frontend:
    """A Jupyter front end: its server, where it opens a notebook, and how its UI tells that the
    notebook's kernel is connected and idle."""

    name: str
    module: str
    """Started as ``python -m <module>``."""
    settings_apps: tuple[str, ...]
    """The server apps whose user settings and workspaces directories the front end reads."""
    notebook_path: str
    """URL path opening ``{file}`` by itself; ``{name}`` is free for a Lab workspace name."""
    wait_for_idle_kernel: Callable[[Page, str], None]
    """Given the page and the notebook's file name; returns once its kernel is idle."""


JUPYTERLAB = Frontend(
    "JupyterLab",
    "jupyterlab",
    ("LabApp",),
    # Its own workspace, so no other tab is restored beside it.
    "/lab/workspaces/{name}/tree/{file}",
    _lab_kernel_idle,
)
NOTEBOOK7 = Frontend(
    "Jupyter Notebook 7",
    "notebook",
    ("LabApp", "JupyterNotebookApp"),  # both serve /lab/api/settings
    "/notebooks/{file}",
    _notebook7_kernel_idle,
)


@dataclass(frozen=True)
class Jupyter:
    """A running Jupyter server and front end: where its notebooks live and how to reach it."""

    frontend: Frontend
    root: Path
    base_url: str
    token: str

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}{path}?token={self.token}"


def running_lab(workdir: Path, env: Mapping[str, str]) -> AbstractContextManager[Jupyter]:
    """JupyterLab: :func:`running_jupyter` with :data:`JUPYTERLAB`."""
    return running_jupyter(JUPYTERLAB, workdir, env)


@contextmanager
def running_jupyter(frontend: Frontend, workdir: Path, env: Mapping[str, str]) -> Iterator[Jupyter]:
    """``frontend`` on a free loopback port under ``workdir``; stopped (kernels too) on exit."""
    root, runtime, settings = workdir / "root", workdir / "runtime", workdir / "settings"
    for directory in (root, runtime, workdir / "workspaces"):
        directory.mkdir(parents=True, exist_ok=True)
    _write_settings(settings)
    token = secrets.token_hex(24)
    command = [
        sys.executable,
        "-m",
        frontend.module,
        "--no-browser",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",  # the server picks a free port and writes it to its info file
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    for app in frontend.settings_apps:
        command += [
            f"--{app}.user_settings_dir={settings}",
            f"--{app}.workspaces_dir={workdir / 'workspaces'}",
        ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    server_env = {
        **env,
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "IPYTHONDIR": str(workdir / "ipython"),
    }
    log_path = workdir / f"{frontend.module}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=server_env,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            info_file = runtime / f"jpserver-{process.pid}.json"
            url = _wait_until_up(frontend, process, info_file, token, log_path)
            yield Jupyter(frontend, root, url, token)
        finally:
            _stop(process)


def _write_settings(directory: Path) -> None:
    """User settings that keep the front end offline and quiet: the news question and the update
    check are front-end settings (the server flags only stop the server fetching)."""
    for plugin, values in _SETTINGS.items():
        path = directory / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_until_up(
    frontend: Frontend,
    process: subprocess.Popen[bytes],
    info_file: Path,
    token: str,
    log_path: Path,
) -> str:
    """The server's URL once ``/api/status`` answers; polls while watching that it did not die."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)  # the poll interval, ended early if the server exits
        if process.returncode is not None:
            break
        with suppress(OSError, ValueError):  # not written yet, or caught half written
            url = json.loads(info_file.read_text())["url"]
            if _status_ok(url, token):
                return url
    raise RuntimeError(f"{frontend.name} did not start; its log:\n{log_path.read_text()[-4000:]}")


def _status_ok(url: str, token: str) -> bool:
    status = url.rstrip("/") + "/api/status"
    request = urllib.request.Request(status, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except OSError:  # refused, reset, timed out, or an HTTP error status
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets the server shut its kernels down; SIGKILL the group if it hangs."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium through Playwright."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()


def write_notebook(root: Path, name: str, cells: Sequence[str]) -> Path:
    """``<root>/<name>.ipynb`` with one code cell per source, bound to the python3 kernel."""
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    path = root / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


class Notebook:
    """One notebook open by itself in a page of ``jupyter``'s front end. Both front ends render it
    with JupyterLab's notebook widgets, so everything below but :meth:`save` works in both."""

    def __init__(self, page: Page, jupyter: Jupyter, name: str, cells: Sequence[str]) -> None:
        self.page = page
        self.path = write_notebook(jupyter.root, name, cells)
        self._count = 0  # the kernel's last execution count: counts only grow
        frontend = jupyter.frontend
        page.goto(jupyter.url(frontend.notebook_path.format(name=name, file=self.path.name)))
        self.panel = page.locator(".jp-NotebookPanel")
        # A cell run before the kernel is connected is silently skipped: wait until it is idle.
        frontend.wait_for_idle_kernel(page, self.path.name)

    def cell(self, index: int) -> Locator:
        return self.panel.locator(".jp-Notebook .jp-Cell").nth(index)

    def output(self, index: int) -> Locator:
        """The cell's output area (its children are the outputs)."""
        return self.cell(index).locator(".jp-OutputArea")

    def run(self, index: int) -> None:
        """Run one cell as a user would (click, Ctrl+Enter: run in place, so no cell is added
        after the last one) and wait until it shows a new execution count: it has finished."""
        self.cell(index).locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Control+Enter")
        prompt = self.cell(index).locator(".jp-InputPrompt").element_handle()
        count = self.page.wait_for_function(
            _COUNT_ABOVE, arg=[prompt, self._count], timeout=KERNEL_TIMEOUT_MS
        )
        self._count = int(count.json_value())

    def run_all(self) -> None:
        """Run the cells in order, each once the one before it has finished."""
        for index in range(self.panel.locator(".jp-Notebook .jp-Cell").count()):
            self.run(index)

    def save(self) -> None:
        """Ctrl+S on a notebook with unsaved changes; return once its tab shows them saved.
        (JupyterLab only: Notebook 7 has no tabs.)"""
        tab = self.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=self.path.name)
        expect(tab).to_have_class(_DIRTY)  # else the wait below would pass before the save
        self.page.keyboard.press("Control+S")
        expect(tab).not_to_have_class(_DIRTY)
