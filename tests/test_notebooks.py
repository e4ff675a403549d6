"""The notebooks in ``notebooks/`` run end to end in a real kernel against the stand-in server.

Each notebook is executed once per module with nbclient, as ``python -m allm_jupyter.testing.demo`` and
JupyterLab's *Run All* do, and the tests read what it left in its outputs. The stand-in answers
deterministically, so every streamed answer is known in advance.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from allm_jupyter.attachments import DOCUMENT_MIME, EXPLAIN_QUESTION
from allm_jupyter.errors import WorkspaceNotFoundError
from allm_jupyter.options import parse_options
from allm_jupyter.testing import StandInServer, expected_reply
from allm_jupyter.testing.data import SEED_WORKSPACES

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))
UPLOADED = "greenhouse-sensors.md"


class Executed:
    """A notebook after a run, and the server it ran against."""

    def __init__(self, nb: nbformat.NotebookNode, server: StandInServer) -> None:
        self.nb = nb
        self.server = server
        self.slug = server.slugs[0]  # the default workspace the kernel was given

    def cell(self, cell_id: str) -> nbformat.NotebookNode:
        return next(c for c in self.nb.cells if c.get("id") == cell_id)

    def asks(self) -> list[nbformat.NotebookNode]:
        """The ``%%allm`` cells that are meant to succeed."""
        return [
            c
            for c in self.nb.cells
            if c.cell_type == "code"
            and c.source.startswith("%%allm")
            and "raises-exception" not in c.metadata.get("tags", [])
        ]


def execute(name: str, server: StandInServer) -> Executed:
    """Run a notebook in a fresh kernel whose environment points at ``server``."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    env = server.environ() | {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    NotebookClient(nb, timeout=60, kernel_name="python3").execute(cwd=str(NOTEBOOKS), env=env)
    return Executed(nb, server)


@pytest.fixture(scope="module")
def quickstart() -> Iterator[Executed]:
    with StandInServer(speed=0) as server:
        yield execute("quickstart.ipynb", server)


@pytest.fixture(scope="module")
def rag() -> Iterator[Executed]:
    with StandInServer(speed=0) as server:
        yield execute("rag-workflow.ipynb", server)


def question_of(cell: nbformat.NotebookNode) -> tuple[str, str | None]:
    """``(question, mode)`` of a ``%%allm`` cell, read with the magic's own option parser."""
    line, _, body = cell.source.partition("\n")
    return body.strip(), parse_options(line.removeprefix("%%allm")).mode


def answer_output(cell: nbformat.NotebookNode) -> dict[str, Any]:
    """The data of the one live output an ``%%allm`` cell streams its answer into."""
    shown = [o for o in cell.outputs if o.output_type == "display_data"]
    assert len(shown) == 1, cell.outputs
    return shown[0]["data"]


def printed(cell: nbformat.NotebookNode) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


def shown_text(cell: nbformat.NotebookNode) -> str:
    return "\n".join(o.data["text/plain"] for o in cell.outputs if "data" in o)


def errors(executed: Executed) -> dict[str, list[str]]:
    """Cell id -> traceback lines, for every cell that failed."""
    return {
        c.id: o.traceback
        for c in executed.nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    }


def assert_no_key(executed: Executed) -> None:
    assert executed.server.api_key not in json.dumps(executed.nb)


# -- the notebooks as stored in git -------------------------------------------------------------


def test_the_notebooks_are_there() -> None:
    assert [p.name for p in NOTEBOOK_FILES] == [
        "ask-about-data.ipynb",
        "quickstart.ipynb",
        "rag-workflow.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_stored_notebook_has_no_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {cell.id} has outputs"
            assert cell.execution_count is None, f"cell {cell.id} has an execution count"
    assert "widgets" not in nb.metadata


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_stored_notebook_names_no_real_workspace(path: Path) -> None:
    """The workspace comes from the default resolution, so the notebooks run on any server."""
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for workspace in SEED_WORKSPACES:
        assert workspace.slug not in code
    assert "workspace=" not in code.replace("workspace=no-such-workspace", "")


# -- quickstart ---------------------------------------------------------------------------------


def test_quickstart_fails_only_where_it_means_to(quickstart: Executed) -> None:
    assert list(errors(quickstart)) == ["error"]
    assert "raises-exception" in quickstart.cell("error").metadata.tags


def test_quickstart_status_and_config(quickstart: Executed) -> None:
    status = shown_text(quickstart.cell("status"))
    assert quickstart.server.base_url in status
    assert re.search(r"^api key +valid$", status, re.MULTILINE)
    assert re.search(r"^vector database +lancedb$", status, re.MULTILINE)
    assert re.search(rf"^workspace +{quickstart.slug}$", status, re.MULTILINE)
    config = shown_text(quickstart.cell("config"))
    assert f"workspace   {quickstart.slug}" in config
    assert "api_key     set" in config


def test_quickstart_picker_starts_on_the_default_workspace(quickstart: Executed) -> None:
    picker = quickstart.cell("picker").outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in picker)
    assert printed(quickstart.cell("picked")) == f"The next %%allm cell asks: {quickstart.slug}\n"


def test_quickstart_every_answer_streams_as_the_server_sent_it(quickstart: Executed) -> None:
    asks = quickstart.asks()
    assert len(asks) == 5
    for cell in asks:
        question, mode = question_of(cell)
        expected = expected_reply(quickstart.slug, question, mode)
        data = answer_output(cell)
        assert expected in data["text/plain"], cell.source
        assert html.escape(expected, quote=False) in data["text/markdown"], cell.source


def test_quickstart_answer_shows_its_sources(quickstart: Executed) -> None:
    data = answer_output(quickstart.cell("ask"))
    assert "Sources:\n1. project-glossary.md (100%)" in data["text/plain"]
    assert "<summary>Sources (1)</summary>" in data["text/markdown"]
    question, _ = question_of(quickstart.cell("ask"))
    assert printed(quickstart.cell("reply")).startswith(expected_reply(quickstart.slug, question))
    assert "\n1. project-glossary.md (100%): " in printed(quickstart.cell("reply"))


def test_quickstart_query_mode_refuses_where_chat_mode_answers(quickstart: Executed) -> None:
    assert (
        "No relevant information in the workspace"
        in answer_output(quickstart.cell("query"))["text/plain"]
    )
    assert printed(quickstart.cell("compare")) == "query refused: True | chat refused: False\n"
    modes = [r.json.get("mode") for r in quickstart.server.chat_requests()]
    assert "query" in modes and "chat" in modes


def test_quickstart_follow_up_stays_in_the_new_thread(quickstart: Executed) -> None:
    prefix = f"/api/v1/workspace/{quickstart.slug}/thread/"
    in_threads = [r.path for r in quickstart.server.chat_requests() if r.path.startswith(prefix)]
    assert len(in_threads) == 2 and in_threads[0] == in_threads[1]
    new_thread = in_threads[0].removeprefix(prefix).split("/")[0]
    assert new_thread != "onboarding-questions"
    assert "▶  Notebook " in shown_text(quickstart.cell("threads"))
    history = shown_text(quickstart.cell("history"))
    for cell_id in ("thread", "followup"):
        assert question_of(quickstart.cell(cell_id))[0] in history


def test_quickstart_error_reads_as_one_sentence(quickstart: Executed) -> None:
    sentence = WorkspaceNotFoundError("no-such-workspace", quickstart.server.slugs).message
    (line,) = errors(quickstart)["error"]  # no stack trace: one line
    assert re.sub(r"\x1b\[[0-9;]*m", "", line) == f"WorkspaceNotFoundError: {sentence}"


def test_quickstart_never_holds_the_key(quickstart: Executed) -> None:
    assert_no_key(quickstart)


# -- rag-workflow -------------------------------------------------------------------------------


def test_rag_runs_without_errors(rag: Executed) -> None:
    assert errors(rag) == {}


def test_rag_refuses_before_the_upload(rag: Executed) -> None:
    question, mode = question_of(rag.cell("before"))
    refusal = expected_reply(rag.slug, question, mode)  # what a fresh server answers
    data = answer_output(rag.cell("before"))
    assert data["text/plain"] == (
        f"{refusal}\n\nℹ️ No relevant information in the workspace "
        f"(query mode answers only from its documents)\n\nworkspace {rag.slug}"
    )


def test_rag_upload_embeds_the_document(rag: Executed) -> None:
    assert UPLOADED in shown_text(rag.cell("upload"))
    workspace = rag.server.store.workspace(rag.slug)
    assert workspace is not None
    titles = [d.document.metadata["title"] for d in workspace.documents]
    assert titles.count(UPLOADED) == 1


def test_rag_search_is_a_table(rag: Executed) -> None:
    (output,) = rag.cell("search").outputs
    markdown = output.data["text/markdown"]
    assert "| score | source | text |" in markdown
    assert f"| 100% | {UPLOADED} | A humidity sensor should be calibrated" in markdown


def test_rag_answers_come_from_the_document(rag: Executed) -> None:
    asks = [c for c in rag.asks() if c.id != "before"]
    assert len(asks) == 3
    for cell in asks:
        question, mode = question_of(cell)
        assert mode == "query"
        text = answer_output(cell)["text/plain"]
        assert text.startswith(rag.server.expected_reply(rag.slug, question, mode))
        assert f"Sources:\n1. {UPLOADED} (100%)" in text


def test_rag_report_tabulates_the_replies(rag: Executed) -> None:
    (output,) = rag.cell("report").outputs
    report = output.data["text/markdown"]
    lines = report.splitlines()
    assert lines[:2] == ["| topic | answer | sources |", "|---|---|---|"]
    topics = {
        "Calibration": "ask-calibration",
        "Silent sensor": "ask-silent",
        "Archive": "ask-archive",
    }
    for (topic, cell_id), line in zip(topics.items(), lines[2:], strict=True):
        question, mode = question_of(rag.cell(cell_id))
        answer = rag.server.expected_reply(rag.slug, question, mode)
        assert line == f"| {topic} | {html.escape(answer)} | {UPLOADED} |"


def test_rag_python_api(rag: Executed) -> None:
    out = printed(rag.cell("api"))
    assert out.startswith(f"100%  {UPLOADED}: When a sensor goes silent")
    assert WorkspaceNotFoundError("no-such-workspace", rag.server.slugs).message in out


def test_rag_never_holds_the_key(rag: Executed) -> None:
    assert_no_key(rag)


# -- ask-about-data -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> Iterator[Executed]:
    with StandInServer() as server:
        yield execute("ask-about-data.ipynb", server)


def attached_table(cell: nbformat.NotebookNode) -> str:
    """The plain text of the table of attachments shown before the answer."""
    shown = [o for o in cell.outputs if o.output_type == "display_data"]
    assert len(shown) == 2, cell.outputs  # the table, then the answer
    return str(shown[0].data["text/plain"])


def answer_text(cell: nbformat.NotebookNode) -> str:
    """The plain text of the answer, the last output an attaching cell shows."""
    shown = [o for o in cell.outputs if o.output_type == "display_data"]
    return str(shown[-1].data["text/plain"])


def test_data_fails_only_where_it_means_to(data: Executed) -> None:
    assert list(errors(data)) == ["error"]
    assert "raises-exception" in data.cell("error").metadata.tags


def test_data_sends_the_dataframe_and_the_plot(data: Executed) -> None:
    requests = data.server.chat_requests()
    asked = [question_of(data.cell(c))[0] for c in ("ask-dataframe", "ask-plot", "ask-big")]
    by_question = {r.json["message"]: r for r in requests}
    table, plot, big = (by_question[q] for q in asked)
    assert [(a.name, a.mime) for a in table.attachments] == [("df.csv", DOCUMENT_MIME)]
    assert [(a.name, a.mime) for a in plot.attachments] == [
        ("df.csv", DOCUMENT_MIME),
        ("fig.png", "image/png"),
    ]
    csv = table.attachments[0].data
    assert csv is not None and b"month,site,herons\nJan,Lisbon,12\n" in csv
    png = plot.attachments[1].data
    assert png is not None and png.startswith(b"\x89PNG")
    assert "df.csv      document" in attached_table(data.cell("ask-dataframe"))
    assert "fig.png     image" in attached_table(data.cell("ask-plot"))
    # The stand-in answers from the parsed document: the table reached the model's context.
    assert "Jun,Porto,17" in answer_text(data.cell("ask-dataframe"))
    assert big.attachments[0].data is not None
    assert big.attachments[0].data.count(b"\n") == 500 + 3  # caption, blank line, header


def test_data_states_the_cap(data: Executed) -> None:
    assert "first 500 of 12,000 rows" in attached_table(data.cell("ask-big"))


def test_data_explains_the_error(data: Executed) -> None:
    source = data.cell("error").source
    messages = [
        r.json["message"] for r in data.server.chat_requests() if source in r.json["message"]
    ]
    default, own = messages
    assert default.startswith(EXPLAIN_QUESTION)
    own_question = data.cell("explain-own").source.partition("\n")[2].strip()
    assert own.startswith(own_question + "\n\n")
    for message in messages:
        assert "KeyError: 'Column not found: heron'" in message
        assert "interactiveshell" not in message
    assert not errors(data).get("explain") and not errors(data).get("explain-own")


def test_data_never_holds_the_key(data: Executed) -> None:
    assert_no_key(data)
