"""The package's modules import one way: no cycle, even through imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "allm_jupyter"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> list[tuple[str, ast.stmt, bool]]:
    """(module, statement, at top level) for every import of the package in ``path`` that runs.

    Imports under ``if TYPE_CHECKING:`` never run (they exist so annotations can name a type from
    downstream, e.g. ``AllmError.reply``), so they are left out.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    typing_only = {
        id(child)
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for child in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = f"{base}.{node.module}" if node.level and node.module else node.module or base
            targets = [base]
            if not node.module:  # ``from . import options``
                targets = [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            if target.split(".")[0] == "allm_jupyter":
                found.append((target, node, id(node) in top))
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {
    name: {target for target, _, _ in imported(path) if target in MODULES and target != name}
    for name, path in MODULES.items()
}


def test_there_is_no_import_cycle() -> None:
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = [*trail[trail.index(name) :], name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for target in sorted(GRAPH[name]):
            if not (name.startswith(target + ".") or target == "allm_jupyter"):
                visit(target, [*trail, name])
        done.add(name)

    for name in sorted(GRAPH):
        visit(name, [])


def test_every_import_inside_a_function_says_why() -> None:
    """Lazy imports exist only for load speed (or an optional path); each says so on its line."""
    silent = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for target, node, at_top in imported(path):
            if not at_top and "#" not in lines[node.lineno - 1]:
                silent.append(f"{name}:{node.lineno} imports {target}")
    assert not silent, silent


def test_the_product_never_imports_the_stand_in() -> None:
    product = [n for n in MODULES if not n.startswith("allm_jupyter.testing")]
    leaks = [(n, t) for n in product for t in GRAPH[n] if t.startswith("allm_jupyter.testing")]
    assert not leaks


LIBRARY = {
    "allm_jupyter.client",
    "allm_jupyter.async_client",
    "allm_jupyter._protocol",
    "allm_jupyter.config",
}
"""The clients and their core: a library that knows nothing of notebooks."""
# ``question`` is not the notebook layer: its ``{name}`` references work over any mapping, and a
# batch's template (``ask_many(template=...)``) fills them from a DataFrame's row with the same rules.
NOTEBOOK_LAYER = {
    "allm_jupyter.attachments",
    "allm_jupyter.commands",
    "allm_jupyter.context",
    "allm_jupyter.magics",
    "allm_jupyter.options",
    "allm_jupyter.render",
    "allm_jupyter.session",
    "allm_jupyter.settings",
    "allm_jupyter.view",
    "allm_jupyter.widgets",
}


def reachable(name: str) -> set[str]:
    found: set[str] = set()
    todo = [name]
    while todo:
        for target in GRAPH[todo.pop()] - found:
            found.add(target)
            todo.append(target)
    return found


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_the_clients_import_nothing_from_the_notebook_layer(name: str) -> None:
    assert not reachable(name) & NOTEBOOK_LAYER


TOP_LEVEL = {
    name: {t for t, _, at_top in imported(path) if at_top and t in MODULES and t != name}
    for name, path in MODULES.items()
}
"""What importing each module runs at once (lazy imports wait for their first use)."""
LOADED_LATER = {
    "allm_jupyter.jobs",
    "allm_jupyter._loop",
    "allm_jupyter.render",
    "allm_jupyter.reply",
    "allm_jupyter.events",
    "allm_jupyter.models",
    "allm_jupyter.view",
    "allm_jupyter.client",
    "allm_jupyter.async_client",
    "allm_jupyter._protocol",
    "allm_jupyter.commands",
}
"""Loaded by the first question, command or background answer, never by ``%load_ext``: it runs
in every kernel that has the extension configured, used or not."""


def test_load_ext_loads_nothing_a_question_needs_first() -> None:
    loaded, todo = set(), ["allm_jupyter", "allm_jupyter.magics"]  # load_ipython_extension
    while todo:
        for target in TOP_LEVEL[todo.pop()] - loaded:
            loaded.add(target)
            todo.append(target)
    assert not loaded & LOADED_LATER, sorted(loaded & LOADED_LATER)
