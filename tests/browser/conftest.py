"""One stand-in server, one Jupyter front end and one Chromium per module; a fresh page per test.

The front end is JupyterLab unless a test is parametrized over ``frontend`` (``test_lab.BOTH``
runs it in JupyterLab and in Notebook 7).

Every test gets its own browser context, which fails the test if the page asked anything but
loopback: the suite must never reach for the internet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request

from allm_jupyter.testing import StandInServer

from .lab import (
    CHROMIUM,
    JUPYTERLAB,
    VIEWPORT,
    Frontend,
    Jupyter,
    Notebook,
    chromium,
    running_jupyter,
    standin_env,
)

HERE = Path(__file__).resolve().parent
_LOCAL_SCHEMES = ("data", "blob", "about")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip this directory, with the reason, where Debian's Chromium is not installed."""
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium)")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def standin() -> Iterator[StandInServer]:
    with StandInServer(speed=0) as server:
        yield server


@pytest.fixture(scope="module")
def frontend(request: pytest.FixtureRequest) -> Frontend:
    """The front end a test runs in: JupyterLab, unless it is parametrized with ``BOTH``."""
    return getattr(request, "param", JUPYTERLAB)


@pytest.fixture(scope="module")
def jupyter(
    frontend: Frontend, standin: StandInServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Jupyter]:
    workdir = tmp_path_factory.mktemp(frontend.module)
    with running_jupyter(frontend, workdir, standin_env(standin)) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    remote: list[str] = []

    def check(request: Request) -> None:
        url = urlsplit(request.url)
        if url.scheme not in _LOCAL_SCHEMES and url.hostname != "127.0.0.1":
            remote.append(request.url)

    context.on("request", check)
    try:
        yield context.new_page()
    finally:
        context.close()
    assert not remote, f"the page reached beyond loopback: {remote}"


@pytest.fixture
def open_notebook(
    page: Page, jupyter: Jupyter, request: pytest.FixtureRequest
) -> Callable[[Sequence[str]], Notebook]:
    """Open a notebook named after the test with these code cells, its kernel idle."""
    name = re.sub(r"\W+", "-", request.node.name).strip("-")
    return lambda cells: Notebook(page, jupyter, name, cells)
