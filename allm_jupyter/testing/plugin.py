"""The opt-in pytest plugin (``pytest -p allm_jupyter.testing.plugin``): the ``allm_server`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from allm_jupyter.testing.server import StandInServer


@pytest.fixture
def allm_server() -> Iterator[StandInServer]:
    """A started stand-in with the seeded workspaces and instant answers, stopped after the test."""
    with StandInServer(speed=0) as server:
        yield server
