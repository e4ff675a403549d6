"""``Client`` and ``AsyncClient`` have one surface: the same methods, parameters and results.

Written from ``inspect``, so a method added to one client and not the other, a renamed parameter,
a changed default or return type fails here. The async side is ``async def`` where the sync one
does I/O; ``stream_chat`` stays a plain ``def`` on both (it sends nothing until iteration).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

import allm_jupyter
from allm_jupyter import AsyncChatStream, AsyncClient, ChatStream, Client

RENAMED = {"close": "aclose", "__enter__": "__aenter__", "__exit__": "__aexit__"}
"""Sync names whose async twin is spelled differently, as in httpx."""
NOT_AWAITED = {"__init__", "stream_chat", "from_config"}
_ASYNC_WORDS = re.compile(r"\b(httpx\.)?Async(Client|ChatStream|BaseTransport)\b")


def public(kind: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(kind)
        if not name.startswith("_")
        or name in RENAMED
        or name in RENAMED.values()
        or name == "__init__"
    }


def _sync_words(annotation: str) -> str:
    return _ASYNC_WORDS.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}", annotation)


def shape(function: Callable[..., Any]) -> tuple[list[tuple[str, str, str, str]], str]:
    """Parameters (name, kind, default, annotation) and the return annotation, in sync words."""
    signature = inspect.signature(function)
    parameters = [
        (p.name, p.kind.name, repr(p.default), _sync_words(str(p.annotation)))
        for p in signature.parameters.values()
    ]
    return parameters, _sync_words(str(signature.return_annotation))


@pytest.mark.parametrize(
    ("sync", "asynchronous"), [(Client, AsyncClient), (ChatStream, AsyncChatStream)]
)
def test_the_two_surfaces_are_one(sync: type, asynchronous: type) -> None:
    sync_members = public(sync)
    async_members = public(asynchronous)
    expected = {RENAMED.get(name, name) for name in sync_members}
    assert expected == set(async_members), "the clients' public names drifted apart"
    for name, member in sync_members.items():
        twin = async_members[RENAMED.get(name, name)]
        if isinstance(member, property):
            assert isinstance(twin, property), name
            assert shape(member.fget) == shape(twin.fget), name  # type: ignore[arg-type]
            continue
        if name in RENAMED:
            continue  # close/aclose and the context protocols differ by nature, not by drift
        assert shape(member) == shape(twin), (
            f"{name} has another signature on {asynchronous.__name__}"
        )
        sync_does_io = not (name in NOT_AWAITED or name == "reply")
        assert inspect.iscoroutinefunction(twin) == sync_does_io, f"{name}: async def or not"
        assert not inspect.iscoroutinefunction(member), name


def test_stream_chat_is_not_awaited_and_returns_an_async_stream() -> None:
    assert not inspect.iscoroutinefunction(AsyncClient.stream_chat)
    assert inspect.signature(AsyncClient.stream_chat).return_annotation == "AsyncChatStream"


def test_dir_lists_the_public_surface() -> None:
    listed = dir(allm_jupyter)
    assert set(allm_jupyter.__all__) <= set(listed)
    assert {"Client", "AsyncClient", "ClientConfig", "events", "attachments"} <= set(listed)
    for name in allm_jupyter.__all__:
        assert getattr(allm_jupyter, name) is not None, name
