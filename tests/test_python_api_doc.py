"""docs/python-api.md against the code: the signatures it shows, the methods it lists, the config's
fields, the error family with each error's fields, and its async examples run against the stand-in."""

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

from test_protocol import error_instances

import allm_jupyter
from allm_jupyter import AsyncClient, Client, ClientConfig, errors
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
