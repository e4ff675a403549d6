"""docs/python-api.md against the code: the signatures it shows, the methods it lists, the config's
fields, each model's and the reply's fields, the error family with each error's fields, the
refusal it quotes, and its async examples run against the stand-in."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_protocol import error_instances

import allm_jupyter
from allm_jupyter import (
    AsyncClient,
    Client,
    ClientConfig,
    ConfigurationError,
    Reply,
    errors,
    models,
)
from allm_jupyter.batch import BatchRow
from allm_jupyter.testing import StandInServer

DOC = (Path(__file__).resolve().parent.parent / "docs" / "python-api.md").read_text(
    encoding="utf-8"
)


def call_form(name: str, function: Callable[..., Any]) -> str:
    """``name(a, b=1, *, c=None)`` as the page writes a signature."""
    parts: list[str] = []
    star = False
    for parameter in list(inspect.signature(function).parameters.values())[1:]:  # not self
        if parameter.kind is parameter.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        empty = parameter.default is parameter.empty
        parts.append(parameter.name if empty else f"{parameter.name}={parameter.default!r}")
    return f"{name}({', '.join(parts)})"


def table(heading: str) -> list[list[str]]:
    """The rows of the first table whose header starts with ``| heading |``."""
    rows = re.search(rf"^\| {heading} \|.*\n\|[-|]+\|\n((?:\|.*\n)+)", DOC, re.M)
    assert rows, heading
    return [
        [cell.strip() for cell in line.strip("|").split(" | ")]
        for line in rows.group(1).splitlines()
    ]


def code(cell: str) -> str:
    return cell.strip("`").split("`")[0]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.S)


def test_the_constructors_are_shown_as_they_are() -> None:
    shown = blocks("text")[0].splitlines()
    assert shown == [
        call_form("Client", Client.__init__),
        call_form("AsyncClient", AsyncClient.__init__),
    ]
    arguments = [code(row[0]) for row in table("argument")]
    assert arguments == list(inspect.signature(Client.__init__).parameters)[1:]


def test_the_method_table_is_the_clients_surface() -> None:
    rows = {code(row[0]).partition("(")[0]: code(row[0]) for row in table("method")}
    public = {
        name
        for name, member in inspect.getmembers(Client)
        if not name.startswith("_") and callable(member) and name != "from_config"
    }
    assert set(rows) == public
    for name, shown in rows.items():
        assert shown == call_form(name, getattr(Client, name)), name


def test_the_config_fields_are_named() -> None:
    sentence = re.search(r"frozen and read-only:\n?(.*?)\. `Client\.from_config", DOC, re.S)
    assert sentence
    named = re.findall(r"`(\w+)`", sentence.group(1))
    fields = [f.name for f in dataclasses.fields(ClientConfig)]
    assert named == [fields[0], "base_url", *fields[1:]]


MODELS = (
    *(
        cls
        for cls in vars(models).values()
        if isinstance(cls, type)
        and dataclasses.is_dataclass(cls)
        and cls.__module__ == models.__name__
    ),
    BatchRow,
)
"""The wire rows (``models.py``) and a batch's rows: the page lists each one's fields."""


def public_names(cls: type) -> set[str]:
    """What a reader may use: the dataclass's fields (not ``raw``, the server's row as it came)
    and its properties."""
    properties = {name for name, member in vars(cls).items() if isinstance(member, property)}
    fields = {f.name for f in dataclasses.fields(cls)} - {"raw"}
    return {name for name in fields | properties if not name.startswith("_")}


def test_each_model_the_page_lists_has_exactly_those_fields() -> None:
    """Wherever the page lists a model's fields, ``Model`` (`a`, `b`), ``list[Model]`` (`a`, `b`)
    or (``Model``: `a`, `b`), they are all of them, so the page cannot drift again."""
    listed: dict[str, list[set[str]]] = {}
    for cls in MODELS:
        pattern = rf"`(?:list\[)?{cls.__name__}\]?`(?:: | \()(`\w+`(?:,\s+`\w+`)*)"
        for names in re.findall(pattern, DOC):
            listed.setdefault(cls.__name__, []).append(set(re.findall(r"`(\w+)`", names)))
            assert listed[cls.__name__][-1] == public_names(cls), cls.__name__
    assert set(listed) == {cls.__name__ for cls in MODELS}


def test_the_reply_paragraph_names_every_field() -> None:
    paragraph = re.search(r"^A \*\*`Reply`\*\* holds (.*?)\.\n\n", DOC, re.S | re.M)
    assert paragraph
    nested = re.sub(r"\(`(?:Source|Metrics)`:[^)]*\)", "", paragraph.group(1))
    assert set(re.findall(r"`(\w+)`", nested)) == public_names(Reply)


def test_the_http_client_refusal_is_quoted_as_raised() -> None:
    (row,) = [row for row in table("argument") if code(row[0]) == "http_client"]
    (way,) = re.findall(r"`(AsyncClient\(http_client=[^`]*\.ask_many)`", row[1])
    with (
        Client("http://127.0.0.1:9", api_key="x", transport=httpx.HTTPTransport()) as client,
        pytest.raises(ConfigurationError) as refused,
    ):
        client.ask_many("ws", ["q?"])
    assert way in refused.value.message


def test_the_error_table_is_the_family_with_its_fields() -> None:
    documented = {
        code(row[0]): {code(f) for f in row[2].split(", ") if f} for row in table("error")
    }
    instances = {
        type(e).__name__: e for e in error_instances("x") if type(e) is not errors.AllmError
    }
    assert set(documented) == set(instances)
    for name, error in instances.items():
        assert documented[name] == set(vars(error)) - {"message", "reply"}, name
        assert name in allm_jupyter.__all__


def test_the_fastapi_example_compiles_and_names_real_things() -> None:
    (example,) = [b for b in blocks("python") if "FastAPI" in b]
    tree = ast.parse(example)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("allm_jupyter"):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), alias.name


def test_the_notebook_await_example_runs(tmp_path: Path) -> None:
    (example,) = [
        b for b in blocks("python") if "async with AsyncClient()" in b and "FastAPI" not in b
    ]
    runner = (
        "import ast, asyncio, sys\n"
        "source = sys.stdin.read()\n"
        "code = compile(source, 'cell', 'exec', flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)\n"
        "asyncio.run(eval(code, {}))\n"
    )
    with StandInServer(speed=0) as server:
        environment = os.environ | {
            "ANYTHING_LLM_BASE_URL": server.base_url,
            "ANYTHING_LLM_API_KEY": server.api_key,
        }
        done = subprocess.run(
            [sys.executable, "-c", runner],
            input=example,
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert "research" in done.stdout and "Sources:" in done.stdout
