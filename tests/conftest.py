"""Suite-wide settings and shared fixtures.

Hypothesis never times an example (a busy machine is not a failure). The client tests run on both
clients: ``make_client`` builds a :class:`~allm_jupyter.Client`, or an
:class:`~allm_jupyter.AsyncClient` driven from the test's plain code through :class:`OnLoop`, so
one test body checks both shells of the protocol core (on the product's own loop thread, ``_loop``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest
from hostile import HostileServer
from hypothesis import settings

from allm_jupyter import AsyncChatStream, AsyncClient, Client, Reply
from allm_jupyter._loop import LoopThread
from allm_jupyter.events import Event

settings.register_profile("allm", deadline=None)
settings.load_profile("allm")


class OnLoopStream:
    """An :class:`AsyncChatStream` read from plain code: ``for``, ``with``, ``close``, ``stop``."""

    def __init__(self, stream: AsyncChatStream, loop: LoopThread) -> None:
        self._stream = stream
        self._loop = loop

    @property
    def reply(self) -> Reply:
        return self._stream.reply

    def __iter__(self) -> Generator[Event, None, None]:
        iterator = self._stream.__aiter__()

        async def step() -> Event:
            return await anext(iterator)

        try:
            while True:
                try:
                    yield self._loop.call(step)
                except StopAsyncIteration:
                    return
        finally:  # break, an exception in the loop: hang up as the sync stream does
            self._loop.call(self._stream.aclose)

    def close(self) -> None:
        self._loop.call(self._stream.aclose)

    def stop(self) -> Reply:
        return self._loop.call(self._stream.stop)

    def __enter__(self) -> OnLoopStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class OnLoop:
    """An :class:`AsyncClient` used from plain code: each ``await``-able method runs on a private
    loop thread, so the sync client's tests run unchanged on the async client."""

    def __init__(self, make: Callable[[], AsyncClient]) -> None:
        self._loop = LoopThread()

        async def build() -> AsyncClient:
            return make()

        try:
            self._client = self._loop.call(build)
        except BaseException:
            self._loop.close()
            raise

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "stream_chat":
            return lambda *args, **kwargs: OnLoopStream(attribute(*args, **kwargs), self._loop)
        if inspect.iscoroutinefunction(attribute):
            return lambda *args, **kwargs: self._loop.call(lambda: attribute(*args, **kwargs))
        return attribute

    def __repr__(self) -> str:
        return repr(self._client)

    def close(self) -> None:
        self._loop.call(self._client.aclose)
        self._loop.close()

    def __enter__(self) -> OnLoop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def client_maker(kind: str) -> Callable[..., Any]:
    """``Client`` itself, or a function with its arguments that builds an async one on a loop."""
    if kind == "sync":
        return Client
    return lambda *args, **kwargs: OnLoop(lambda: AsyncClient(*args, **kwargs))


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Builds the client under test: each test using it runs on both clients."""
    return client_maker(request.param)


@pytest.fixture(scope="module")
def stream_server() -> Iterator[HostileServer]:
    """A raw-bytes server for the stream tests: each serves its own response at STREAM_ROUTE."""
    with HostileServer() as hostile:
        yield hostile


@pytest.fixture(scope="module", params=["sync", "async"])
def stream_client(stream_server: HostileServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    with client_maker(request.param)(stream_server.base_url, api_key="stream-key", timeout=30) as c:
        yield c
