"""The magic's own pure parts: its traitlets and the one-line question transform."""

from __future__ import annotations

import ast
import shlex
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from IPython.core.inputtransformer2 import TransformerManager
from IPython.core.interactiveshell import InteractiveShell
from test_options import starts_with_option
from traitlets import TraitError

from allm_jupyter import Batch, load_ipython_extension, unload_ipython_extension
from allm_jupyter.client import Client
from allm_jupyter.commands import COMMANDS, _unquoted
from allm_jupyter.magics import AllmMagics
from allm_jupyter.question import interpolate
from allm_jupyter.render import render_markdown
from allm_jupyter.reply import Reply
from allm_jupyter.testing import RecordedRequest, StandInServer


@pytest.mark.parametrize("value", ["inf", "1e300", "-5", "0", "nan"])
def test_configured_timeouts_must_be_sane(value: str) -> None:
    magics = AllmMagics(shell=None)
    with pytest.raises(TraitError, match="timeout must be"):
        magics.timeout = float(value)


_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
LINES = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters=_LINE_BREAKS)
)
"""Any one line of text."""
BODIES = st.lists(
    st.one_of(LINES, LINES.map(lambda text: f"%allm {text}?"), st.just("%allm What is RAG?")),
    max_size=6,
).map("\n".join)
"""Cell bodies with one-line questions among other lines."""


@pytest.fixture(scope="module")
def transformers() -> Iterator[tuple[TransformerManager, TransformerManager]]:
    """IPython's transforms as the loaded extension has them, and as IPython has them alone."""
    shell = InteractiveShell.instance()
    try:
        load_ipython_extension(shell)
        yield shell.input_transformer_manager, TransformerManager()
    finally:
        unload_ipython_extension(shell)
        InteractiveShell.clear_instance()


def _magic_call(code: str) -> tuple[str, str]:
    """``(name, line)`` of the one ``get_ipython().run_line_magic(name, line)`` in ``code``."""
    call = ast.parse(code).body[0]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call), code
    name, line = (ast.literal_eval(argument) for argument in call.value.args)
    return name, line


@pytest.mark.parametrize(
    ("cell", "line"),
    [
        ("%allm What is a workspace?", "What is a workspace?"),
        ("%allm What's new?", "What's new?"),
        ("  %allm -w r Why?\n", "-w r Why?"),
        ("%allm What is RAG??", "What is RAG??"),
        ("%allm status", "status"),
    ],
)
def test_one_line_questions_are_not_help_requests(transformers, cell: str, line: str) -> None:
    assert _magic_call(transformers[0].transform_cell(cell)) == ("allm", line)


@pytest.mark.parametrize("cell", ["%allm?", "%allm??", "%%allm -w r?", "x = 1?", "# %allm Why?"])
def test_help_requests_and_other_lines_are_left_to_ipython(transformers, cell: str) -> None:
    ours, ipythons = transformers
    assert ours.transform_cell(cell) == ipythons.transform_cell(cell)


@given(LINES.filter(lambda text: not text.startswith(("?", "!"))))
def test_a_one_line_question_reaches_the_magic_as_typed(transformers, text: str) -> None:
    assert _magic_call(transformers[0].transform_cell(f"%allm {text}")) == ("allm", text.rstrip())


@given(st.sampled_from(["allm", "allm -w r", "writefile notes.md", "bash", "capture"]), BODIES)
def test_cell_magic_bodies_are_never_rewritten(transformers, magic: str, body: str) -> None:
    ours, ipythons = transformers
    cell = f"%%{magic}\n{body}"
    assert ours.transform_cell(cell) == ipythons.transform_cell(cell)
    sent = ast.literal_eval(ast.parse(ours.transform_cell(cell)).body[0].value.args[2])
    assert sent.rstrip() == body.rstrip()  # IPython drops the trailing blank lines


QUOTES = st.sampled_from(["'" * 3, '"' * 3])


@given(BODIES.filter(lambda body: not {"\\", "\x00"} & set(body)), QUOTES)
def test_lines_inside_strings_are_never_rewritten(transformers, body: str, quote: str) -> None:
    assume(quote not in body and not body.endswith(quote[0]))
    cell = f"notes = {quote}\n{body}\n{quote}\n%allm Why?"
    tree = ast.parse(transformers[0].transform_cell(cell))
    assert ast.literal_eval(tree.body[0].value) == f"\n{body}\n"
    assert _magic_call(ast.unparse(tree.body[1])) == ("allm", "Why?")


def test_a_reply_shows_itself_as_the_magic_does() -> None:
    """The extension registers the reply's Markdown with IPython's formatter, and takes it away."""
    shell = InteractiveShell.instance()
    try:
        reply = Reply(text="Hi <b>there</b>", complete=True)
        load_ipython_extension(shell)
        shown, _ = shell.display_formatter.format(reply)
        assert shown["text/markdown"] == render_markdown(reply, final=True)
        assert "<b>" not in shown["text/markdown"]
        unload_ipython_extension(shell)
        assert "text/markdown" not in shell.display_formatter.format(reply)[0]
    finally:
        InteractiveShell.clear_instance()


@pytest.fixture(scope="module")
def asking_shell() -> Iterator[tuple[InteractiveShell, StandInServer]]:
    """An in-process IPython with the extension loaded, asking the stand-in over loopback."""
    with StandInServer(speed=0) as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.environ().items():
            patch.setenv(name, value)
        shell = InteractiveShell.instance()
        try:
            load_ipython_extension(shell)
            yield shell, server
        finally:
            unload_ipython_extension(shell)
            InteractiveShell.clear_instance()


def _sent(shell: InteractiveShell, server: StandInServer, cell: str) -> str:
    """Run ``cell`` as a notebook would; the message the server received for it."""
    before = len(server.chat_requests())
    result = shell.run_cell(cell)
    assert result.success, result.error_before_exec or result.error_in_exec
    (request,) = server.chat_requests()[before:]
    return str(request.json["message"])


ONE_LINE_QUESTIONS = LINES.filter(lambda text: text.strip() and not starts_with_option(text))
"""Any line a person might ask that does not start with an option."""


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(["", "-w {slug} ", "--raw ", 'workspace="{slug}" -m chat ']), ONE_LINE_QUESTIONS
)
def test_the_server_receives_a_one_line_question_byte_for_byte(
    asking_shell: tuple[InteractiveShell, StandInServer], options: str, question: str
) -> None:
    shell, server = asking_shell
    first = question.split()[0]
    assume(options or (first not in COMMANDS and len(question.split()) > 1))
    assume("--raw" in options or interpolate(question, shell.user_ns) == question)
    cell = f"%allm {options.format(slug=server.slugs[0])}{question}"
    assert _sent(shell, server, cell) == question.strip()


@pytest.mark.parametrize(
    "question",
    ["What's the capital of France", "What's new?", 'Say "hi"  twice\\t$HOME {nothing}?'],
)
def test_apostrophes_and_quotes_need_no_care(asking_shell, question: str) -> None:
    shell, server = asking_shell
    assert _sent(shell, server, f"%allm {question}") == question
    assert _sent(shell, server, f"%allm -w {server.slugs[0]} {question}") == question


def _last(server: StandInServer, suffix: str) -> RecordedRequest:
    return [r for r in server.requests if r.path.endswith(suffix)][-1]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ONE_LINE_QUESTIONS)
def test_a_search_query_reaches_the_server_as_typed(asking_shell, query: str) -> None:
    shell, server = asking_shell
    assume(interpolate(query, shell.user_ns) == query)
    result = shell.run_cell(f"%allm search {query}")
    assert result.success, result.error_in_exec
    assert _last(server, "/vector-search").json["query"] == query.strip()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(LINES.filter(lambda name: name.strip() == name and name))
def test_a_thread_is_found_by_any_name(asking_shell, name: str) -> None:
    shell, server = asking_shell
    # Option values expand {x} and $x as IPython expands the %%allm line (a name meant literally
    # is written without them, or its value taken from a variable).
    assume(shell.var_expand(name) == name)
    slug = server.slugs[0]
    name = f"{name} {uuid.uuid4().hex[:8]}"  # distinct from the threads of earlier examples
    with Client(server.base_url, api_key=server.api_key) as client:
        thread = client.new_thread(slug, name=name)
    cell = f"%allm -w {slug} -t {shlex.quote(name)} What is in this thread?"
    assert _sent(shell, server, cell) == "What is in this thread?"
    assert (
        _last(server, "/stream-chat").path
        == f"/api/v1/workspace/{slug}/thread/{thread.slug}/stream-chat"
    )


@given(LINES.filter(lambda name: name.strip() == name))
def test_a_name_may_be_quoted_once(name: str) -> None:
    assert _unquoted(f'"{name}"') == _unquoted(f"'{name}'") == _unquoted(f"  '{name}' ") == name
    if not (len(name) >= 2 and name[0] == name[-1] and name[0] in "'\""):
        assert _unquoted(name) == name  # Students' or "quoted" inside stays


def test_an_upload_path_may_have_spaces_quotes_and_a_tilde(
    asking_shell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell, server = asking_shell
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "Bob's notes.md").write_text("# Notes\n\nThe heron is called Packet.\n")
    result = shell.run_cell(f'%allm use {server.slugs[0]}\n%allm upload "~/Bob\'s notes.md"')
    assert result.success, result.error_in_exec
    assert b'filename="Bob\'s notes.md"' in _last(server, "/document/upload").body


def _batch_run(shell: InteractiveShell, server: StandInServer, cell: str) -> list[str]:
    """Run ``cell``; the questions the server received for it, in order asked."""
    before = len(server.chat_requests())
    result = shell.run_cell(cell)
    assert result.success, result.error_before_exec or result.error_in_exec
    return [str(r.json["message"]) for r in server.chat_requests()[before:]]


BATCH_QUESTIONS = st.lists(
    st.one_of(
        LINES.filter(lambda text: text.strip() and "{" not in text), st.sampled_from(["", " \t"])
    ),
    min_size=1,
    max_size=4,
)
"""Questions, some blank (a blank one fails its row, the batch goes on)."""


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    BATCH_QUESTIONS,
    st.sampled_from(["-w {slug} over=qs concurrency=2 {{item}}", "over=qs", "over=qs -w {slug}"]),
)
def test_a_one_line_batch_asks_every_question(
    asking_shell: tuple[InteractiveShell, StandInServer], questions: list[str], line: str
) -> None:
    """``over=``, ``concurrency=`` and ``resume=`` work on one line as on the ``%%allm`` line: one
    chat per question, ``_allm`` the ``Batch``; the question, if any, is the template."""
    shell, server = asking_shell
    shell.user_ns["qs"] = questions
    shell.run_cell(f"%allm use {server.slugs[0]}")
    asked = _batch_run(shell, server, "%allm " + line.format(slug=server.slugs[0]))
    assert sorted(asked) == sorted(q.strip() for q in questions if q.strip())
    batch = shell.user_ns["_allm"]
    blank = sum(1 for q in questions if not q.strip())
    assert isinstance(batch, Batch)
    assert (batch.done, batch.failed, batch.pending) == (len(questions) - blank, blank, 0)
    assert _batch_run(shell, server, "%allm resume=_allm") == [], "only blank ones to ask again"


@pytest.mark.parametrize(
    "cell",
    [
        "%%allm over=qs background\n{item}",
        "%%allm -b resume=_allm\n\n",
        "%allm --background over=qs",
    ],
)
def test_a_batch_is_never_sent_to_the_background(asking_shell, cell: str) -> None:
    shell, server = asking_shell
    shell.user_ns["qs"] = ["What is RAG?"]
    before = len(server.chat_requests())
    result = shell.run_cell(cell)
    assert "background does not go with over= or resume=" in str(result.error_in_exec)
    assert len(server.chat_requests()) == before, "nothing was asked, in any way"


def test_a_batch_that_cannot_start_leaves_its_error_in_allm(asking_shell) -> None:
    shell, _ = asking_shell
    shell.user_ns["_allm"] = "the previous reply"
    result = shell.run_cell("%%allm over=nothing_here out=kept\n{item}")
    assert "there is no variable nothing_here" in str(result.error_in_exec)
    kept = shell.user_ns["_allm"]
    assert isinstance(kept, Reply) and kept.error == str(result.error_in_exec)
    assert shell.user_ns["kept"] is kept
