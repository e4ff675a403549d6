"""pytest plugin, registered as the ``allm_jupyter`` entry point: the ``allm_server`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from allm_jupyter.testing.server import StandInServer


@pytest.fixture
def allm_server() -> Iterator[StandInServer]:
    """A started stand-in server with the default workspaces, stopped after the test."""
    with StandInServer(speed=0) as server:
        yield server
