"""Suite-wide settings and shared fixtures.

Hypothesis never times an example (a busy machine is not a failure).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hostile import HostileServer
from hypothesis import settings

from allm_jupyter import Client

settings.register_profile("allm", deadline=None)
settings.load_profile("allm")


@pytest.fixture(scope="module")
def stream_server() -> Iterator[HostileServer]:
    """A raw-bytes server for the stream tests: each serves its own response at STREAM_ROUTE."""
    with HostileServer() as hostile:
        yield hostile


@pytest.fixture(scope="module")
def stream_client(stream_server: HostileServer) -> Iterator[Client]:
    with Client(stream_server.base_url, api_key="stream-key", timeout=30) as client:
        yield client
