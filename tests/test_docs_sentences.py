"""Every message a doc page quotes is the one the code says in that situation.

``docs/troubleshooting.md`` above all, and the labels and states the other pages quote.

Each quote (an italic span on the page) is tied to a case that brings the situation about for real
(a stand-in server, a hostile loopback server, a bad setting, a real kernel running the magic) and
compares the message produced with the quote. In a quote, ``…`` and the capitalised placeholders
(``URL``, ``N``, ``NAME``, …) stand for the part that depends on the case. A quote no case covers
fails :func:`test_every_quote_on_the_page_is_checked`, so the page cannot say more than is tested.
"""

from __future__ import annotations

import ast
import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile import (
    STREAM_HEAD,
    STREAM_ROUTE,
    STREAM_SLUG,
    Canned,
    HostileServer,
    canned,
    closed_port_url,
    http_response,
)
from kernel.conftest import KernelSession, kernel_env, loaded_kernel
from kernel.test_interrupts import BEFORE, NOTHING_YET
from test_hardening import corporate_ca, tls_server  # noqa: F401 -- fixtures, used by name

from allm_jupyter import Client
from allm_jupyter import commands as allm
from allm_jupyter._protocol import transport_failure
from allm_jupyter.context import Context, in_notebook_words
from allm_jupyter.errors import AllmError
from allm_jupyter.render import render_markdown
from allm_jupyter.reply import Reply
from allm_jupyter.settings import Config
from allm_jupyter.testing import StandInServer, scenarios
from allm_jupyter.testing.scenarios import sse_bytes

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGE = DOCS / "troubleshooting.md"
PAGES = (PAGE, DOCS / "magic.md", DOCS / "security.md", DOCS / "configuration.md")
PLACEHOLDERS = (
    "URL", "N", "n", "NAME", "PATH", "TYPE", "STATUS", "REASON", "METHOD", "HOST", "DOC",
    "SLUG", "SECONDS", "QUERY", "SIZE",
)  # fmt: skip
NOT_OURS = {
    "Object `…` not found.": "IPython's own help-request message, not this package's",
    "Settings > Developer API": "AnythingLLM's own menu",
    "encodes": "emphasis, not a quote",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def page_quotes(page: Path = PAGE) -> list[str]:
    """The page's italic spans, each on one line."""
    flat = re.sub(r"\s*\n\s*", " ", page.read_text(encoding="utf-8"))
    return re.findall(r"(?<![*\w])\*(?!\*)([^*]+?)\*(?!\*)", flat)


def pattern(quote: str) -> re.Pattern[str]:
    """The quote as a regex: ``…`` is any text, a placeholder is itself or any text."""
    words = "|".join(PLACEHOLDERS)
    parts = re.split(rf"(…|\b(?:{words})\b)", quote)
    regex = "".join(
        ".+?" if part == "…" else f"(?:{part}|.+?)" if part in PLACEHOLDERS else re.escape(part)
        for part in parts
    )
    return re.compile(regex, re.S)


@dataclass(frozen=True)
class Case:
    quote: str
    """The start of the quote on the page (enough to name one)."""
    produce: Callable[..., str]
    whole: bool = True
    """Whether the quote is the whole message (else it is a part of it: a reason, a label)."""


def the_quote(start: str, page: Path = PAGE) -> str:
    quotes = page_quotes(page)
    found = [start] if start in quotes else [q for q in quotes if q.startswith(start)]
    assert len(found) == 1, f"{start!r} starts {len(found)} quotes on the page"
    return found[0]


def says(message: str, start: str, *, whole: bool = True, page: Path = PAGE) -> None:
    quote = the_quote(start, page)
    regex = pattern(quote)
    matched = regex.fullmatch(message) if whole else regex.search(message)
    assert matched, f"the page says {quote!r}, the code says {message!r}"


def raised(action: Callable[[], object]) -> str:
    """The sentence a notebook shows for the error ``action`` raises (the magic's and the
    picker's hints added to the library's words, as they add them)."""
    with pytest.raises(AllmError) as error:
        action()
    return in_notebook_words(error.value)


# -- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def standin() -> Iterator[StandInServer]:
    with StandInServer(speed=0) as server:
        yield server


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


def context_for(url: str, key: str | None = "any-key", **config: Any) -> Context:
    """A context whose server, key and workspace come from the environment, as a user's do."""
    environ = {"ANYTHING_LLM_BASE_URL": url, "ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG": "ws"}
    if key is not None:
        environ["ANYTHING_LLM_API_KEY"] = key
    return Context(environ=environ, config=lambda: Config(**config))


def workspaces_from(hostile: HostileServer, answer: bytes | Canned) -> str:
    """``%allm workspaces`` against a server that answers ``answer`` (a whole response)."""
    hostile.routes["/api/v1/workspaces"] = answer if isinstance(answer, Canned) else canned(answer)
    context = context_for(hostile.base_url, timeout=1)
    try:
        return raised(lambda: allm.workspaces(context, ""))
    finally:
        context.close()


# -- server and key: through the commands' code path, over loopback ----------------------------


def test_server_down() -> None:
    context = context_for(closed_port_url())
    says(
        raised(lambda: allm.workspaces(context, "")),
        "Cannot reach the AnythingLLM server at URL (connection refused",
    )


def test_connect_timeout_reason() -> None:
    with Client(closed_port_url(), api_key="hostile-test-key") as client:
        message = transport_failure(httpx.ConnectTimeout("timed out"), client.config).message
    says(message, "connection timed out", whole=False)


def test_no_key(standin: StandInServer) -> None:
    context = context_for(standin.base_url, key=None)
    says(raised(lambda: allm.workspaces(context, "")), "No API key is set for URL")


def test_rejected_key(standin: StandInServer) -> None:
    context = context_for(standin.base_url, key="not-the-key")
    says(raised(lambda: allm.workspaces(context, "")), "The server at URL rejected the API key")


def test_key_with_a_space(standin: StandInServer) -> None:
    context = context_for(standin.base_url, key="two words")
    says(
        raised(lambda: allm.workspaces(context, "")),
        "The API key from ANYTHING_LLM_API_KEY contains spaces",
    )


def test_not_an_http_url() -> None:
    context = context_for("ftp://example.org")
    says(raised(lambda: allm.workspaces(context, "")), "'…' is not an http(s) URL")


def test_empty_url() -> None:
    context = context_for("", base_url=" ")
    says(raised(lambda: allm.workspaces(context, "")), "The server URL is empty")


@pytest.mark.parametrize(
    ("body", "quote"),
    [
        (
            b"<html>Sign in</html>",
            "The server at URL answered METHOD PATH with something that is not JSON.",
        ),
        (b"[1, 2]", "… that is not a JSON object"),
        (b"[" * 100_000, "… with JSON nested too deeply"),
        (b"1" * 5000, "… with a number too long"),
    ],
)
def test_not_json(hostile: HostileServer, body: bytes, quote: str) -> None:
    says(workspaces_from(hostile, http_response(200, body)), quote)


def test_redirect(hostile: HostileServer) -> None:
    location = ("Location", "https://anythingllm.example/api/v1/workspaces")
    answer = http_response(301, b"", "text/plain", reason="Moved Permanently", headers=[location])
    says(workspaces_from(hostile, answer), "The server at URL redirects to https://HOST/PATH")


def test_untrusted_certificate(tls_server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = context_for(tls_server.base_url)
    says(
        raised(lambda: allm.workspaces(context, "")),
        "Cannot reach the AnythingLLM server at URL (its TLS",
    )


def test_error_status(hostile: HostileServer) -> None:
    answer = http_response(502, b"upstream is down", "text/plain", reason="Bad Gateway")
    says(workspaces_from(hostile, answer), "The server answered STATUS REASON")


def test_no_answer_in_time(hostile: HostileServer) -> None:
    says(
        workspaces_from(hostile, Canned((), keep_open=True)),
        "The server at URL sent no answer for N s",
    )


# -- workspaces and threads --------------------------------------------------------------------


def test_no_workspace_chosen(standin: StandInServer) -> None:
    context = Context(
        environ={"ANYTHING_LLM_BASE_URL": standin.base_url, "ANYTHING_LLM_API_KEY": standin.api_key}
    )
    says(raised(lambda: allm.threads(context, "")), "No workspace is chosen")


def test_no_such_workspace(standin: StandInServer) -> None:
    context = context_for(standin.base_url, key=standin.api_key)
    says(
        raised(lambda: allm.use(context, "zzqqxxjj")),
        "There is no workspace '…' on the server (available",
    )


def test_a_server_without_workspaces(hostile: HostileServer) -> None:
    hostile.routes["/api/v1/workspaces"] = canned(http_response(200, b'{"workspaces": []}'))
    context = context_for(hostile.base_url)
    says(
        raised(lambda: allm.use(context, "research")),
        "the server has no workspaces yet",
        whole=False,
    )


def test_the_thread_was_not_created(hostile: HostileServer) -> None:
    body = b'{"thread": null, "message": "Workspace is locked"}'
    hostile.routes["/api/v1/workspace/ws/thread/new"] = canned(http_response(200, body))
    with Client(hostile.base_url, api_key="hostile-test-key") as client:
        says(raised(lambda: client.new_thread("ws")), "The server did not create the thread")


def test_reset_without_a_session(standin: StandInServer) -> None:
    with Client(standin.base_url, api_key=standin.api_key) as client:
        says(
            raised(lambda: client.chat(standin.slugs[0], "", reset=True)),
            "reset needs a session_id",
        )


# -- while an answer streams -------------------------------------------------------------------


def test_no_text_at_all(stream_server: HostileServer, stream_client: Client) -> None:
    final = {"uuid": "t", "type": "finalizeResponseStream", "close": True, "chatId": 1}
    stream_server.routes[STREAM_ROUTE] = canned(STREAM_HEAD + sse_bytes(final))
    says(
        raised(lambda: stream_client.chat(STREAM_SLUG, "q")), "The server ended the answer without"
    )


def test_labels_of_a_partial_answer() -> None:
    """The markers the answer's output carries (``**label:** detail`` in its Markdown)."""

    def shown(reply: Reply) -> str:
        markdown = re.sub(r"^> ?", "", render_markdown(reply, final=True), flags=re.M)
        return " ".join(markdown.replace("**", "").split())

    says(shown(Reply(text="Half", error="The model crashed.")), "⚠ Error: …", whole=False)
    says(shown(Reply(text="Half", interrupted=True)), "■ Stopped by the user", whole=False)
    says(shown(Reply(text="Half")), "⚠ Stopped: the answer ended", whole=False)
    says(
        shown(Reply(text="Nothing on that.", refusal=True, complete=True)),
        "ℹ️ No relevant information",
        whole=False,
    )


# -- uploads -----------------------------------------------------------------------------------


def test_the_server_could_not_read_the_file(standin: StandInServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with Client(standin.base_url, api_key=standin.api_key) as client:
        says(
            raised(lambda: client.upload(standin.slugs[0], empty)), "The server could not read NAME"
        )


def test_uploaded_but_not_embedded(hostile: HostileServer, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Some notes.")
    routes = {
        "/api/v1/workspace/ws": b'{"workspace": [{"slug": "ws", "name": "WS", "documents": []}]}',
        "/api/v1/document/upload": b'{"success": true, "documents": [{"location": "custom-documents/notes.json"}]}',
        "/api/v1/workspace/ws/update-embeddings": b'{"workspace": {"slug": "ws"}}',
    }
    hostile.routes.update({path: canned(http_response(200, body)) for path, body in routes.items()})
    with Client(hostile.base_url, api_key="hostile-test-key") as client:
        says(raised(lambda: client.upload("ws", notes)), "NAME was uploaded but not embedded")


# -- the picker's status line ------------------------------------------------------------------


def picker_line(context: Context) -> str:
    from allm_jupyter.widgets import WorkspacePicker

    picker = WorkspacePicker(context=context)
    try:
        return html.unescape(re.sub(r"<[^>]+>", "", picker._status_line.value))
    finally:
        picker.close()
        context.close()


def headline(line: str) -> str:
    return line.removeprefix("● ").partition(" · ")[0]


def test_picker_status_lines(standin: StandInServer, hostile: HostileServer) -> None:
    says(headline(picker_line(context_for(closed_port_url()))), "unreachable")
    says(headline(picker_line(context_for(standin.base_url, key=None))), "no API key")
    rejected = picker_line(context_for(standin.base_url, key="wrong"))
    says(headline(rejected), "API key rejected")
    says(rejected, "Refresh", whole=False)
    says(headline(picker_line(context_for("ftp://example.org"))), "not configured")
    hostile.routes["/api/ping"] = canned(http_response(200, b'{"online": true}'))
    hostile.routes["/api/v1/workspaces"] = canned(
        http_response(500, b"boom", "text/plain", reason="Internal Server Error")
    )
    says(headline(picker_line(context_for(hostile.base_url))), "server error")
    hostile.routes["/api/v1/workspaces"] = canned(http_response(200, b'{"workspaces": []}'))
    says(picker_line(context_for(hostile.base_url)).removeprefix("● "), "connected · …")


def test_picker_controls(standin: StandInServer) -> None:
    from allm_jupyter.widgets import WorkspacePicker

    context = context_for(standin.base_url, key=standin.api_key)
    picker = WorkspacePicker(context=context)
    try:
        says(picker._refresh_button.description, "Refresh", page=DOCS / "magic.md")
        labels = [label for label, _ in picker._thread_list.options]
        says(labels[-1], "new thread…", page=DOCS / "magic.md")
    finally:
        picker.close()
        context.close()


def test_the_key_is_named_only_as_set_or_unset(standin: StandInServer) -> None:
    security = DOCS / "security.md"

    def rows(key: str | None) -> tuple[str, str]:
        context = context_for(standin.base_url, key=key)
        try:
            config = {row[0]: row[1] for row in allm.config(context, "").rows}
            status = dict(allm.status(context, "").rows)
            return config["api_key"], status["api key"]
        finally:
            context.close()

    (with_key, valid), (wrong_key, rejected), (no_key, unset) = (
        rows(standin.api_key),
        rows("wrong-key"),
        rows(None),
    )
    says(with_key, "set", page=security)
    says(wrong_key, "set", page=security)
    says(no_key, "unset", page=security)
    says(valid, "valid", page=security)
    says(rejected, "rejected (from …)", page=security)
    says(unset, "unset — …", page=security)


def test_picker_refuses_a_workspace_it_does_not_offer(standin: StandInServer) -> None:
    from allm_jupyter.widgets import WorkspacePicker

    context = context_for(standin.base_url, key=standin.api_key)
    picker = WorkspacePicker(context=context)
    try:

        def choose() -> None:
            picker.value = "not-offered"

        says(raised(choose), "'…' is not a workspace this picker offers")
    finally:
        picker.close()
        context.close()


# -- the magic, in a real kernel ---------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel(standin: StandInServer) -> Iterator[KernelSession]:
    with loaded_kernel(kernel_env(standin)) as session:
        yield session


def error_line(kernel: KernelSession, code: str) -> str:
    """What the cell shows as its error, without colours."""
    run = kernel.run(code)
    assert run.status == "error", run.text
    return _ANSI.sub("", run.error_text).strip()


def after_class_name(line: str) -> str:
    return line.partition(": ")[2]


SLUG = "{slug}"
MAGIC_CASES = [
    # Each cell runs in order in one kernel; the first must come before any cell fails.
    ("%allm explain", "No cell has failed in this kernel yet"),
    ("%%allm bogus=1\nq", "Unknown option '…'; valid"),
    ("%allm -v means?", "Unknown option '-v'"),
    ("%%allm workspace research\nq", "Unexpected '…' on the %%allm line"),
    ("%%allm api_key=abc\nq", "The API key is never a magic option"),
    ("%%allm -w\nq", "The option … needs a value."),
    ('%%allm workspace="abc\nq', "Cannot read the options"),
    ("%%allm mode=fast\nq", "mode must be one of"),
    ("%%allm timeout=abc\nq", "timeout must be a number"),
    ("%%allm timeout=0\nq", "timeout must be more than 0"),
    ("%%allm out=1x\nq", "out= needs a Python variable name"),
    (f"%%allm workspace={SLUG}\n  \n", "The question is empty"),
    ("%allm statu", "'…' is not an %allm command"),
    (f"%allm -w {SLUG}", "Write the question after the options"),
    ("%allm use", "Say which workspace"),
    ("%allm search", "Say what to search for"),
    ("%allm upload", "Say what to upload"),
    ("%allm pin", "Say which document"),
    ("%allm history some", "history takes a number"),
    ("%%allm workspace=zzqqxxjj\nq", "There is no workspace '…' on the server (available"),
    (f"%%allm workspace={SLUG} thread=no-such-thread\nq", "Workspace '…' has no thread"),
    ("%allm threads", "No workspace is chosen"),
    (
        "t = 'some text'\n%allm -w " + SLUG + " -m automatic attach=t Why?",
        "Document attachments are not read",
    ),
    (f"%%allm workspace={SLUG} attach=nothing_by_this_name\nq", "There is no variable"),
    (f"%%allm workspace={SLUG} attach=In[999]\nq", "In[n] does not exist"),
    (f"%%allm workspace={SLUG} attach=Out[999]\nq", "Out[n] does not exist"),
    (f"o = object()\n%allm -w {SLUG} attach=o Why?", "Cannot attach NAME: it is a TYPE"),
    (
        f"%config AllmMagics.attachment_max_document_bytes = 100\nbig = 'x' * 2000\n"
        f"%allm -w {SLUG} attach=big Why?",
        "NAME is SIZE, more than the SIZE allowed",
    ),
    (
        f"%config AllmMagics.attachment_max_total_bytes = 3000\nmore = 'y' * 2000\n"
        f"%config AllmMagics.attachment_max_document_bytes = 10000\n"
        f"%allm -w {SLUG} attach=big,more Why?",
        "The attachments add up to",
    ),
    (
        f"empty = ''\n%allm -w {SLUG} attach=empty Why?",
        "NAME is empty; there is nothing to attach.",
    ),
    (f"%allm use {SLUG}", None),  # the commands below work on the chosen workspace
    ("%allm upload no-such-file.txt", "There is no file at PATH."),
    ("x = 5\n%allm upload x", "Cannot upload NAME: it holds a TYPE"),
    ("%allm pin no-such-document", "Workspace '…' has no document DOC"),
]


def test_the_magic_says_what_the_page_quotes(kernel: KernelSession, standin: StandInServer) -> None:
    slug = standin.slugs[0]
    for code, quote in MAGIC_CASES:
        code = code.replace(SLUG, slug)
        if quote is None:
            assert kernel.run(code).status == "ok"
            continue
        says(after_class_name(error_line(kernel, code)), quote)


@pytest.mark.parametrize(
    ("scenario", "options", "quote", "whole"),
    [
        (scenarios.stall(), "timeout=1", "No data arrived from the server for N s", True),
        (scenarios.drop(), "", "The connection to URL broke", True),
        (
            scenarios.abort_before_tokens("The model is not pulled."),
            "",
            "The server stopped the answer",
            True,
        ),
        (
            scenarios.abort_before_tokens(""),
            "",
            "The server aborted the answer without a reason.",
            False,
        ),
    ],
)
def test_a_stream_that_fails_says_what_the_page_quotes(
    kernel: KernelSession,
    standin: StandInServer,
    scenario: scenarios.Scenario,
    options: str,
    quote: str,
    whole: bool,
) -> None:
    standin.queue(scenario)
    line = error_line(kernel, f"%%allm workspace={standin.slugs[0]} {options}\nWhy?")
    says(after_class_name(line), quote, whole=whole)


def test_a_stop_says_what_the_page_quotes(kernel: KernelSession, standin: StandInServer) -> None:
    standin.queue(scenarios.stall())
    msg_id = kernel.execute(f"%%allm workspace={standin.slugs[0]}\nWhy?")
    while "partial" not in str(kernel.next_message(msg_id)["content"].get("data", "")):
        pass  # the partial answer is on screen: the stream is open and stalled
    kernel.interrupt()
    run = kernel.collect(msg_id)
    says(_ANSI.sub("", run.error_text).strip(), "KeyboardInterrupt: stopped;")
    says(run.final_markdown.replace("**", ""), "■ Stopped by the user", whole=False)


def test_a_stop_before_any_answer_says_what_the_pages_quote() -> None:
    """tests/kernel/test_interrupts.py stops each step of a question for real and asserts these
    very lines; here they are held against the pages."""
    for page in (PAGE, DOCS / "magic.md"):
        prefix = "KeyboardInterrupt: " if page == PAGE else ""
        says(prefix + BEFORE, prefix + "stopped before the question", page=page)
        says(prefix + NOTHING_YET, prefix + "stopped before any answer", page=page)


def test_labels_of_an_answer_that_failed() -> None:
    def shown(reply: Reply) -> str:
        return " ".join(
            render_markdown(reply, final=True, error_below=True).replace("**", "").split()
        )

    page = DOCS / "magic.md"
    says(shown(Reply(error="The model crashed.")), "⚠ No answer: see", page=page)
    says(
        shown(Reply(text="Half", error="Cut.")),
        "⚠ Partial answer: it stopped",
        whole=False,
        page=page,
    )


# -- the page as a whole -----------------------------------------------------------------------

CHECKED_HERE = {
    node.value
    for node in ast.walk(ast.parse(Path(__file__).read_text(encoding="utf-8")))
    if isinstance(node, ast.Constant) and isinstance(node.value, str)
}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_quote_on_the_page_is_checked(page: Path) -> None:
    """Each quote is named by a case in this file (by its start), or said to be someone else's."""
    unchecked = [
        quote
        for quote in page_quotes(page)
        if quote not in NOT_OURS
        and not any(
            quote.startswith(start) and len(start) >= min(len(quote), 8) for start in CHECKED_HERE
        )
    ]
    assert not unchecked, f"quotes on {page.name} that no test checks: {unchecked}"
