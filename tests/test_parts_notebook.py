"""A long answer in parts, as a saved notebook holds it: run by nbclient in a real kernel against
the stand-in, then exported by nbconvert to Markdown and HTML. The parts are the outputs of one
cell, in order; joined they are exactly the one output the answer would be, and their metadata
says which outputs make the answer (``docs/magic.md``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from long_answers import structured_answer
from nbclient import NotebookClient
from nbconvert import HTMLExporter, MarkdownExporter

from allm_jupyter.testing import StandInServer, scenarios

LONG = structured_answer(120_000, seed=18)
CHECK = """from allm_jupyter.render import render_markdown
print(render_markdown(_allm, final=True), end="")"""


@pytest.fixture(scope="module")
def executed() -> Iterator[nbformat.NotebookNode]:
    with StandInServer(speed=0) as server:
        server.queue(scenarios.normal(LONG, sources=[scenarios.source("guide.md", "The guide.")]))
        nb = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell(source)
                for source in ("%load_ext allm_jupyter", "%%allm\nTell me everything.", CHECK)
            ]
        )
        env = server.environ() | {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        NotebookClient(nb, timeout=120, kernel_name="python3").execute(env=env)
        yield nb


def answer_parts(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The outputs of the cell's answer, found the way docs/magic.md says a tool finds them."""
    outputs = nb.cells[1].outputs
    tail = next(o for o in reversed(outputs) if "parts" in o.metadata.get("allm_jupyter", {}))
    answer = tail.metadata["allm_jupyter"]["answer"]
    parts = [o for o in outputs if o.metadata.get("allm_jupyter", {}).get("answer") == answer]
    assert [o.metadata["allm_jupyter"]["part"] for o in parts] == list(range(len(parts)))
    assert len(parts) == tail.metadata["allm_jupyter"]["parts"]
    return parts


def test_the_saved_parts_join_to_the_whole_answer(executed: nbformat.NotebookNode) -> None:
    parts = answer_parts(executed)
    assert 3 <= len(parts) <= 30
    whole = executed.cells[2].outputs[0].text
    assert "".join(part.data["text/markdown"] for part in parts) == whole
    assert LONG.strip() in "".join(part.data["text/plain"] for part in parts)
    assert parts[-1].metadata["allm_jupyter"]["complete"] is True
    assert ["Sources (1)" in part.data["text/markdown"] for part in parts][-1]
    assert not any("Sources (1)" in part.data["text/markdown"] for part in parts[:-1])


def sections_in_order(text: str) -> list[int]:
    return [int(number) for number in re.findall(r"Section (\d+)", text)]


def test_nbconvert_shows_the_whole_answer_in_order(executed: nbformat.NotebookNode) -> None:
    expected = sections_in_order(LONG)
    markdown, _ = MarkdownExporter().from_notebook_node(executed)
    position = 0
    for part in answer_parts(executed):
        found = markdown.find(part.data["text/markdown"].strip(), position)
        assert found >= position, "a part is missing or out of order in the Markdown export"
        position = found
    page, _ = HTMLExporter().from_notebook_node(executed)
    answer_html = page[: page.index("Sources (1)")]
    assert sections_in_order(answer_html) == expected


def test_the_docs_say_how_a_tool_finds_the_answer() -> None:
    """The keys ``answer_parts`` above reads are the ones docs/magic.md gives."""
    magic = (Path(__file__).resolve().parent.parent / "docs" / "magic.md").read_text()
    text = " ".join(magic.split())
    assert "every output of one answer has `answer` (an id its outputs share) and `part`" in text
    assert "the last one also has `parts` (how many)" in text
