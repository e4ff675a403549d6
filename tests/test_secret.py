"""The API key's container never shows the key."""

from __future__ import annotations

import inspect
import os.path
import sys
from collections.abc import Iterator
from typing import Any

import debugpy
import pytest

from allm_jupyter import Client
from allm_jupyter.secret import Secret

KEY = "sekrit-key-0123456789"


def test_secret_never_shows() -> None:
    secret = Secret("sekrit-123")
    assert "sekrit-123" not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    assert secret.reveal() == "sekrit-123"
    with pytest.raises(TypeError):
        vars(secret)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


def test_attribute_walks_never_reach_the_key() -> None:
    secret = Secret(KEY)
    assert "_Secret__value" not in dir(secret)
    assert all(KEY not in repr(value) for _, value in inspect.getmembers(secret))


def debugger_view(value: Any, depth: int, seen: set[int]) -> Iterator[str]:
    """What JupyterLab's variables panel can show under ``value``: debugpy's own resolver."""
    sys.path.insert(0, os.path.join(os.path.dirname(debugpy.__file__), "_vendored", "pydevd"))
    from _pydevd_bundle.pydevd_resolver import defaultResolver  # debugpy's vendored pydevd

    if depth == 0 or id(value) in seen or isinstance(value, type):
        return
    seen.add(id(value))
    try:
        children = defaultResolver.get_contents_debug_adapter_protocol(value)
    except Exception:
        return
    for name, child, _ in children:
        if name.startswith("__") and name.endswith("__"):
            continue
        yield f"{name}={child!r}" if isinstance(child, str | bytes) else name
        yield from debugger_view(child, depth - 1, seen)


def test_the_debugger_variables_view_never_shows_the_key() -> None:
    with Client("http://127.0.0.1:9", api_key=KEY) as client:
        shown = list(debugger_view(client, depth=6, seen=set()))
    assert "api_key" in shown, "the walk must reach the Secret"
    assert not [line for line in shown if KEY in line]
