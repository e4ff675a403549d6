"""``attach=``, ``explain`` and the document commands in a real kernel, against the stand-in.

What reaches the server is read from the stand-in's recorded requests: each attachment's name, its
``mime`` and its data URL decoded, so a test fails if the wrong bytes (or none) were sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CellRun, KernelSession, kernel_env, loaded_kernel
from pages import serving_page

from allm_jupyter.attachments import DOCUMENT_MIME
from allm_jupyter.testing import StandInServer

HERON_PAGE = (
    b"<html><head><title>Heron facts</title></head>"
    b"<body><p>Grey herons stand still for minutes before they strike.</p></body></html>"
)


@pytest.fixture(scope="module")
def kernel(kernel_server: StandInServer) -> Iterator[KernelSession]:
    """A kernel whose default workspace is ``research`` (chat mode, three documents)."""
    env = kernel_env(kernel_server, ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG=kernel_server.slugs[0])
    with loaded_kernel(env, "import pandas as pd") as session:
        yield session


@pytest.fixture
def page_url() -> Iterator[str]:
    """A web page on a loopback port, for the stand-in to fetch as ``upload-link`` does."""
    with serving_page(HERON_PAGE, "/herons.html") as url:
        yield url


def ok(run: CellRun) -> CellRun:
    assert run.status == "ok", run.error_text
    return run


def one_sentence(run: CellRun, ename: str) -> str:
    """The cell failed as ``ename`` with one line and no stack; returns that line."""
    assert run.status == "error"
    assert run.reply["ename"] == ename, run.error_text
    (line,) = run.of_type("error")[0]["traceback"]
    assert "Traceback" not in line and "File " not in line
    return re.sub(r"\x1b\[[0-9;]*m", "", line)


def attached_output(run: CellRun) -> dict[str, str]:
    """The table shown before the answer: the first display, with the answer's after it."""
    displays = run.of_type("display_data")
    assert len(displays) == 2, run.outputs
    answer = displays[1]["transient"]["display_id"]
    updated = {u["transient"]["display_id"] for u in run.of_type("update_display_data")}
    assert updated == {answer}, "the answer streams into the output after the table"
    assert displays[0]["data"]["text/plain"].startswith("Attached")
    return displays[0]["data"]


def test_a_dataframe_a_figure_and_a_file_go_as_their_attachments(
    kernel, kernel_server, tmp_path: Path
) -> None:
    notes = tmp_path / "field-notes.md"
    notes.write_text("# Field notes\n\nTwo herons at the Porto weir.\n")
    ok(
        kernel.run(
            "import matplotlib.pyplot as plt\nfrom pathlib import Path\n"
            "df = pd.DataFrame({'site': ['Lisbon', 'Porto'], 'herons': [12, 30]})\n"
            "fig, ax = plt.subplots()\nax.bar(df.site, df.herons)\n"
            f"notes = Path({str(notes)!r})"
        )
    )
    run = ok(kernel.run("%%allm attach=df,fig,notes\nWhere are more herons?"))
    request = kernel_server.chat_requests()[-1]
    assert request.json["message"] == "Where are more herons?"
    sent = {a.name: a for a in request.attachments}
    assert list(sent) == ["df.csv", "fig.png", "field-notes.md"]
    assert (sent["df.csv"].mime, sent["df.csv"].data_type) == (DOCUMENT_MIME, "text/csv")
    assert sent["df.csv"].data == (
        b"df: a pandas DataFrame with 2 rows and 2 columns; all rows follow as CSV.\n\n"
        b"site,herons\nLisbon,12\nPorto,30\n"
    )
    assert (sent["fig.png"].mime, sent["fig.png"].data_type) == ("image/png", "image/png")
    assert sent["fig.png"].data is not None and sent["fig.png"].data.startswith(b"\x89PNG")
    assert sent["field-notes.md"].mime == DOCUMENT_MIME
    assert sent["field-notes.md"].data == notes.read_bytes()
    table = attached_output(run)
    for name in sent:
        assert name in table["text/plain"]
    assert re.search(r"^fig\.png +image +\d+\.\d kB", table["text/plain"], re.MULTILINE)
    assert f"| df.csv | document | {len(sent['df.csv'].data)} B |  |" in table["text/markdown"]


def test_a_long_table_is_cut_and_the_cut_is_stated(kernel, kernel_server) -> None:
    ok(kernel.run("big = pd.DataFrame({'n': range(12_000)})"))
    run = ok(kernel.run("%%allm attach=big\nDescribe n."))
    assert "first 500 of 12,000 rows" in attached_output(run)["text/plain"]
    data = kernel_server.chat_requests()[-1].attachments[0].data
    assert data is not None and data.decode().splitlines()[3:] == [str(i) for i in range(500)]
    try:
        ok(kernel.run("%config AllmMagics.attachment_rows = 20"))
        run = ok(kernel.run("%%allm -a big\nDescribe n."))
        assert "first 20 of 12,000 rows" in attached_output(run)["text/plain"]
        assert kernel_server.chat_requests()[-1].attachments[0].data.count(b"\n") == 3 + 20
    finally:
        kernel.run("%config AllmMagics.attachment_rows = 500")


@pytest.mark.parametrize(
    ("setup", "line", "sentence"),
    [
        ("", "attach=nope", "There is no variable 'nope' in the notebook."),
        (
            "thing = {'a': 1}",
            "attach=thing",
            "Cannot attach thing: it is a dict; attach a pandas or polars DataFrame, a matplotlib "
            "Figure, a PIL or IPython image, PNG/JPEG bytes, text (str or bytes) or a "
            "pathlib.Path to a file.",
        ),
        (
            "%config AllmMagics.attachment_max_document_bytes = 50\ntext = 'x' * 100",
            "attach=text",
            "text.txt is 100 B, more than the 50 B allowed for an attached document; attach less "
            "(or raise the limit).",
        ),
        ("blank = '  '", "attach=blank", "blank is empty; there is nothing to attach."),
    ],
    ids=["missing", "unknown-type", "too-large", "empty"],
)
def test_refusals_are_one_sentence_and_send_nothing(
    kernel, kernel_server, setup: str, line: str, sentence: str
) -> None:
    try:
        ok(kernel.run(setup))
        before = len(kernel_server.chat_requests())
        run = kernel.run(f"%%allm {line}\nAnything?")
        assert one_sentence(run, "AttachmentError") == f"AttachmentError: {sentence}"
        assert len(kernel_server.chat_requests()) == before
        assert not run.of_type("display_data"), "nothing is shown as attached"
    finally:
        kernel.run("%config AllmMagics.attachment_max_document_bytes = 1_000_000")


def test_documents_are_asked_in_chat_mode_where_the_mode_would_be_automatic(
    kernel, kernel_server
) -> None:
    """``assistant``'s own mode is automatic, whose agent turns drop documents without a word."""
    ok(kernel.run("df = pd.DataFrame({'a': [1]})\npng = bytes.fromhex('89504e470d0a1a0a') + b'x'"))
    run = ok(kernel.run("%%allm workspace=assistant attach=df\nWhat is a?"))
    assert kernel_server.chat_requests()[-1].json["mode"] == "chat"
    assert attached_output(run)["text/plain"].startswith(
        "Attached (asked in chat mode: agent turns do not read attached documents)"
    )
    try:  # automatic from the config: the same
        ok(kernel.run("%config AllmMagics.mode = 'automatic'"))
        ok(kernel.run("%%allm attach=df\nWhat is a?"))
        assert kernel_server.chat_requests()[-1].json["mode"] == "chat"
    finally:
        kernel.run("%config AllmMagics.mode = None")
    # An image alone goes in the workspace's own mode; a workspace in chat mode is left alone.
    ok(kernel.run("%%allm workspace=assistant attach=png\nWhat is this?"))
    assert "mode" not in kernel_server.chat_requests()[-1].json
    run = ok(kernel.run("%%allm attach=df\nWhat is a?"))
    assert "mode" not in kernel_server.chat_requests()[-1].json
    assert attached_output(run)["text/plain"].startswith("Attached\n")
    # The cell's own automatic is what the user asked for: refused, not changed.
    refused = kernel.run("%%allm workspace=assistant mode=automatic attach=df\nWhat is a?")
    assert "Document attachments are not read in agent turns" in one_sentence(
        refused, "ConfigurationError"
    )


def test_explain_sends_the_last_failing_cell_and_its_traceback(kernel, kernel_server) -> None:
    failing = "def average(rows):\n    return sum(rows) / len(rows)\n\naverage([])"
    assert kernel.run(failing).status == "error"
    ok(kernel.run("x = 1"))  # a cell that works in between changes nothing
    assert kernel.run("raise KeyboardInterrupt").status == "error"  # nor does a stop
    explained = ok(kernel.run("%allm explain"))
    message = kernel_server.chat_requests()[-1].json["message"]
    assert message.startswith("Why does this notebook cell fail, and how do I fix it?\n\n")
    sent = explained.outputs[0]["data"]["text/plain"]  # before the answer: what was sent
    traceback_lines = len(message.split("Its traceback:\n\n~~~~\n")[1].splitlines()) - 1
    assert sent.splitlines() == [
        "Sent with the question",
        "           what",
        "cell       4 lines: def average(rows):",
        f"traceback  {traceback_lines} lines",
        f"size       {len(message.encode()) / 1000:.1f} kB"
        if len(message.encode()) >= 1000
        else f"size       {len(message.encode())} B",
    ]
    assert f"~~~~python\n{failing}\n~~~~" in message
    assert "ZeroDivisionError: division by zero" in message
    assert "return sum(rows) / len(rows)" in message
    assert "interactiveshell" not in message and "\x1b[" not in message

    ok(kernel.run("%%allm explain\nWhich input breaks it?"))
    own = kernel_server.chat_requests()[-1].json["message"]
    assert own.startswith("Which input breaks it?\n\n") and failing in own

    # A failing explain keeps the failure it was about.
    failed = kernel.run("%allm explain -w no-such-ws")
    one_sentence(failed, "WorkspaceNotFoundError")
    ok(kernel.run("%allm explain"))
    assert kernel_server.chat_requests()[-1].json["message"] == message

    assert kernel.run("import no_such_module_here").status == "error"
    ok(kernel.run("%allm --explain What is missing?"))
    latest = kernel_server.chat_requests()[-1].json["message"]
    assert latest.startswith("What is missing?\n\n")
    assert "ModuleNotFoundError: No module named 'no_such_module_here'" in latest


def test_explain_shows_the_home_folder_as_a_tilde(kernel, kernel_server) -> None:
    missing = Path.home() / "no-such-allm-file.csv"
    cell = f"open({str(missing)!r})"
    assert kernel.run(cell).status == "error"
    explained = ok(kernel.run("%allm explain Why doesn't it run"))
    message = kernel_server.chat_requests()[-1].json["message"]
    assert message.startswith("Why doesn't it run\n\n")
    assert "open('~/no-such-allm-file.csv')" in message
    assert "No such file or directory: '~/no-such-allm-file.csv'" in message
    assert str(Path.home()) not in message and str(Path.home()) not in explained.text
    assert "cell       1 line: open('~/no-such-allm-file.csv')" in explained.text


def test_explain_without_a_failure_says_so_and_unload_removes_the_hook(kernel_server) -> None:
    session = KernelSession(kernel_env(kernel_server))
    try:
        ok(session.run("%load_ext allm_jupyter"))
        before = len(kernel_server.chat_requests())
        run = session.run(f"%allm explain -w {kernel_server.slugs[0]}")
        assert one_sentence(run, "ConfigurationError") == (
            "ConfigurationError: No cell has failed in this kernel yet; run %allm explain after "
            "one fails."
        )
        assert len(kernel_server.chat_requests()) == before
        ok(session.run("%unload_ext allm_jupyter"))
        hooks = session.run(
            "print([f.__name__ for f in get_ipython().events.callbacks['post_run_cell']])"
        )
        assert "remember_failure" not in hooks.text
    finally:
        session.shutdown()


def documents_of(server: StandInServer, slug: str) -> dict[str, bool]:
    """Title -> pinned, as the stand-in holds the workspace's documents."""
    workspace = server.store.workspace(slug)
    assert workspace is not None
    return {d.document.metadata["title"]: d.row["pinned"] for d in workspace.documents}


def test_uploads_of_a_variable_a_dataframe_and_a_link(kernel, kernel_server, page_url) -> None:
    slug = kernel_server.slugs[0]
    ok(kernel.run("heron_notes = 'Herons nest in colonies called heronries.'"))
    text = ok(kernel.run("%allm upload heron_notes"))
    assert "heron_notes.txt" in text.text and f"Embedded into {slug}" in text.text
    sent = [r for r in kernel_server.requests if r.path.endswith("/document/raw-text")][-1].json
    assert sent["textContent"] == "Herons nest in colonies called heronries."
    assert (sent["metadata"], sent["addToWorkspaces"]) == ({"title": "heron_notes"}, slug)

    ok(kernel.run("counts = pd.DataFrame({'site': ['Porto'], 'herons': [30]})"))
    ok(kernel.run("%allm upload counts"))
    sent = [r for r in kernel_server.requests if r.path.endswith("/document/raw-text")][-1].json
    assert sent["textContent"] == "site,herons\nPorto,30\n"

    page = ok(kernel.run(f"%allm upload {page_url}"))
    assert "127.0.0.1_herons.html" in page.text
    titles = documents_of(kernel_server, slug)
    assert {"heron_notes.txt", "counts.txt"} <= set(titles)
    library = kernel_server.store.library.values()
    assert any("Grey herons stand still" in d.page_content for d in library)

    refused = kernel.run("number = 3\n%allm upload number")
    assert "Cannot upload number: it holds a int" in one_sentence(refused, "UploadError")


def test_documents_pin_and_unpin(kernel, kernel_server) -> None:
    slug = kernel_server.slugs[0]
    title = next(iter(documents_of(kernel_server, slug)))
    listing = ok(kernel.run("%allm documents"))
    assert title in listing.text and "📌" not in listing.text
    pinned = ok(kernel.run(f"%allm pin {title}"))
    assert pinned.text.strip() == f"Pinned {title} in {slug}."
    assert documents_of(kernel_server, slug)[title] is True
    listing = ok(kernel.run("%allm documents"))
    assert re.search(rf"^📌 +{re.escape(title)} ", listing.text, re.MULTILINE)
    ok(kernel.run(f"%allm unpin {title}"))
    assert documents_of(kernel_server, slug)[title] is False
    missing = kernel.run("%allm pin no-such-document.md")
    assert one_sentence(missing, "DocumentNotFoundError").startswith(
        f"DocumentNotFoundError: Workspace '{slug}' has no document no-such-document.md ("
    )


def test_attachment_names_are_shown_escaped(kernel, kernel_server, tmp_path: Path) -> None:
    hostile = tmp_path / "<img src=x onerror=alert(1)>.md"
    hostile.write_text("Herons.\n")
    ok(kernel.run(f"from pathlib import Path\nodd = Path({str(hostile)!r})"))
    run = ok(kernel.run("%%allm attach=odd\nWhat is in it?"))
    assert kernel_server.chat_requests()[-1].attachments[0].data == b"Herons.\n"
    markdown = attached_output(run)["text/markdown"]
    assert "<img" not in markdown and "&lt;img" in markdown
