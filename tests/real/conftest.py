"""``real_server``: each running real AnythingLLM in turn, or one skip saying why there is none.

Tests are parametrized over the kit's servers (1.16.0 and v1.9.1). ``@pytest.mark.since(1, 12)``
keeps a test to releases that have what it checks (``automatic`` mode came in 1.12),
``@pytest.mark.before(1, 12)`` to the older ones;
``@pytest.mark.user_server`` adds the user's own server (``ALLM_REAL_SERVER=1``) to a test that
needs no kit trigger words and no seeded workspace.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from allm_jupyter import Client

from .servers import RealServer, kit_servers, user_server, why_no_kit

HERE = Path(__file__).resolve().parent
NO_SERVER = None if kit_servers() or user_server() is not None else why_no_kit()
"""Why this directory is skipped as a whole (with one line in the summary), if it is."""


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if NO_SERVER and collection_path.name.startswith("test_"):
        return True
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if NO_SERVER:
        where = HERE.relative_to(terminalreporter.config.rootpath)
        terminalreporter.write_line(f"SKIPPED {where}/: {NO_SERVER}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "since(*version): only for real servers of at least this release"
    )
    config.addinivalue_line(
        "markers", "before(*version): only for real servers older than this release"
    )
    config.addinivalue_line(
        "markers", "user_server: also run against the user's own server (ALLM_REAL_SERVER=1)"
    )


def servers_for(metafunc: pytest.Metafunc) -> list[RealServer]:
    """The running servers this test applies to."""
    since = metafunc.definition.get_closest_marker("since")
    before = metafunc.definition.get_closest_marker("before")
    servers = [
        s
        for s in kit_servers()
        if (since is None or s.at_least(tuple(since.args)))
        and (before is None or not s.at_least(tuple(before.args)))
    ]
    user = user_server()
    if user is not None and metafunc.definition.get_closest_marker("user_server") is not None:
        servers.append(user)
    return servers


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "real_server" not in metafunc.fixturenames:
        return
    servers = servers_for(metafunc)
    if servers:
        ids = [s.name for s in servers]
        metafunc.parametrize("real_server", servers, ids=ids, scope="module")
    else:
        reason = (
            "no running real server of the releases this test is for"
            if kit_servers()
            else f"needs the kit's servers, not the user's own ({why_no_kit()})"
        )
        skipped = pytest.param(None, marks=pytest.mark.skip(reason=reason))
        metafunc.parametrize("real_server", [skipped], ids=["none"], scope="module")


@pytest.fixture
def client(real_server: RealServer) -> Iterator[Client]:
    with real_server.client() as opened:
        yield opened
