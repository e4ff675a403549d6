"""Every ``allm_jupyter…`` name a doc page, the README or a notebook mentions exists.

A dotted name is imported as far as it is a module and the rest looked up as attributes
(``allm_jupyter.testing.StandInServer``); ``from allm_jupyter.x import a, b`` checks ``a`` and ``b``.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(
    [ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")],
) + sorted((ROOT / "notebooks").glob("*.ipynb"))
DOTTED = re.compile(r"\ballm_jupyter(?:\.[A-Za-z_]\w*)+")
FROM_IMPORT = re.compile(r"\bfrom (allm_jupyter(?:\.\w+)*) import (?:\(([\w\s,]*)\)|([\w, ]+))")


def text_of(document: Path) -> str:
    if document.suffix == ".ipynb":
        notebook = nbformat.read(document, as_version=4)
        return "\n".join(cell.source for cell in notebook.cells)
    return document.read_text(encoding="utf-8")


def exists(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


def test_the_names_are_collected_from_every_kind_of_page() -> None:
    names = {name for document in DOCUMENTS for name in DOTTED.findall(text_of(document))}
    assert {"allm_jupyter.testing.demo", "allm_jupyter.render"} <= names
    assert not exists("allm_jupyter.no_such_module") and not exists("allm_jupyter.demo")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_name_a_page_mentions_exists(document: Path) -> None:
    text = text_of(document)
    named = set(DOTTED.findall(text))
    for module, in_parentheses, on_the_line in FROM_IMPORT.findall(text):
        imported = (in_parentheses or on_the_line).split(",")
        named |= {f"{module}.{name.strip()}" for name in imported if name.strip()}
    missing = sorted(name for name in named if not exists(name))
    assert not missing, f"{document.name} names what does not exist: {missing}"
