"""What a new user meets in the first ten minutes, in a real kernel against the stand-in (issue 12):
status on a server that is not AnythingLLM, each thing said once, names for workspaces and
threads, the one-line form, ``%allm login``, and messages that name where a setting came from.
"""

from __future__ import annotations

import queue
import re
import socket
from collections.abc import Iterator

import pytest
from conftest import CellRun, KernelSession, kernel_env
from pages import serving_page

from allm_jupyter.testing import StandInServer, scenarios

RESET_CONTEXT = (
    "from allm_jupyter.context import current_context\n"
    "current_context().session.choose(workspace=None, thread=None)"
)


@pytest.fixture
def not_anythingllm() -> Iterator[str]:
    """A loopback web server that is not AnythingLLM: 404 for everything but one page."""
    with serving_page(b"<p>Some other site</p>", "/index.html") as url:
        yield url.removesuffix("/index.html")


def free_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def research_threads(server: StandInServer) -> dict[str, str]:
    """The research workspace's threads on the server, slug to name."""
    workspace = server.store.workspace("research")
    assert workspace is not None
    return {thread.slug: str(thread.row["name"]) for thread in workspace.threads}


def ok(kernel: KernelSession, code: str) -> CellRun:
    run = kernel.run(code)
    assert run.status == "ok", run.error_text
    return run


def everything_shown(run: CellRun) -> str:
    """Every text a reader could see: each display's Markdown and plain text, streams, errors."""
    markdown = [o["data"].get("text/markdown", "") for o in run.outputs if "data" in o]
    return "\n".join([run.text, *markdown])


# -- %allm status -------------------------------------------------------------------------------


def test_status_on_a_server_that_is_not_anythingllm_still_shows_its_table(
    kernel: KernelSession, not_anythingllm: str
) -> None:
    ok(kernel, f"%config AllmMagics.base_url = {not_anythingllm!r}")
    try:
        status = ok(kernel, "%allm status")
    finally:
        ok(kernel, "%config AllmMagics.base_url = None")
    text = status.text
    assert "not an AnythingLLM server (GET /api/ping answered 404" in text
    for row in ("server", "reachable", "api key", "version", "workspace"):
        assert re.search(rf"^{row}\s", text, re.MULTILINE), f"no {row} row in {text!r}"
    assert not status.of_type("error")


# -- each thing said once -----------------------------------------------------------------------


def test_a_failing_answer_says_its_error_once(kernel: KernelSession, kernel_server) -> None:
    kernel_server.queue(scenarios.midstream_abort("Half an answer ", "provider died"))
    run = kernel.run("%%allm workspace=research mode=chat\nWhat is new?")
    assert run.status == "error"
    assert "The server stopped the answer: provider died." in run.error_text
    assert "Half an answer" in run.final_markdown and "Partial answer" in run.final_markdown
    assert everything_shown(run).count("provider died") == 1, "the sentence is said once"


# -- names --------------------------------------------------------------------------------------


def test_a_workspace_name_asks_its_slug(kernel: KernelSession, kernel_server) -> None:
    ok(kernel, "%%allm workspace=Research mode=chat\nWhat is new?")
    assert kernel_server.chat_requests()[-1].path == "/api/v1/workspace/research/stream-chat"


def test_use_with_a_typo_suggests_the_closest_slug(kernel: KernelSession) -> None:
    run = kernel.run("%allm use reserch")
    assert run.status == "error"
    assert run.reply["ename"] == "WorkspaceNotFoundError"
    assert "There is no workspace 'reserch' on the server (did you mean 'research'?)." in (
        run.error_text
    )
    used = ok(kernel, "%allm use research")
    assert "Using workspace Research (research)." in used.text
    ok(kernel, RESET_CONTEXT)


def test_the_picker_shows_a_new_threads_name(kernel: KernelSession, kernel_server) -> None:
    ok(kernel, "from allm_jupyter import WorkspacePicker\npicker = WorkspacePicker()")
    ok(kernel, "picker.value = 'research'\npicker.thread = 'new'")
    try:
        ok(kernel, "%%allm mode=chat\nA question in a new thread")
        slug = kernel_server.chat_requests()[-1].path.split("/thread/")[1].split("/")[0]
        name = research_threads(kernel_server)[slug]
        shown = ok(kernel, "print(picker.children[2].label, '|', picker.thread)").text.strip()
        assert shown == f"{name} | {slug}"
        assert name.startswith("Notebook ") and slug not in name
    finally:
        ok(kernel, RESET_CONTEXT)


def test_two_new_threads_in_the_same_second_get_distinct_names(
    kernel: KernelSession, kernel_server
) -> None:
    """Both cells run within one kernel execution: well inside the same second on any machine
    the clock would give both the same name, so the second must be told apart."""
    cell = (
        "from datetime import datetime as _dt\n"
        "import allm_jupyter.magics as _m\n"
        "class _Frozen(_dt):\n"
        "    @classmethod\n"
        "    def now(cls, tz=None):\n"
        "        return cls(2026, 12, 1, 9, 30, 0)\n"
        "_real, _m.datetime = _m.datetime, _Frozen\n"
        "try:\n"
        "    for _ in range(2):\n"
        "        get_ipython().run_cell_magic('allm', 'workspace=research thread=new mode=chat',"
        " 'Hello?')\n"
        "finally:\n"
        "    _m.datetime = _real\n"
    )
    before = research_threads(kernel_server)
    try:
        ok(kernel, cell)
    finally:
        ok(kernel, RESET_CONTEXT)
    names = [n for s, n in research_threads(kernel_server).items() if s not in before]
    assert len(names) == 2 and len(set(names)) == 2, names
    assert all("2026-12-01 09:30:00" in name for name in names)


# -- the one-line form --------------------------------------------------------------------------


def test_a_one_line_question_with_a_question_mark_asks(
    kernel: KernelSession, kernel_server
) -> None:
    ok(kernel, "%allm use research")
    try:
        run = ok(kernel, "%allm What is a workspace?")
    finally:
        ok(kernel, RESET_CONTEXT)
    assert kernel_server.chat_requests()[-1].json["message"] == "What is a workspace?"
    assert "not found" not in run.text
    assert run.final_markdown


def test_question_words_are_never_options(kernel: KernelSession, kernel_server) -> None:
    ok(kernel, "%allm -w research -m chat reset the router how")
    request = kernel_server.chat_requests()[-1]
    assert request.json["message"] == "reset the router how"
    assert not request.json.get("reset")
    ok(kernel, "%allm -w research -m chat raw numbers {x}?")
    assert kernel_server.chat_requests()[-1].json["message"] == "raw numbers {x}?"


def test_names_in_one_line_options_expand(kernel: KernelSession, kernel_server) -> None:
    ok(kernel, "ws = 'scratchpad'; chosen_mode = 'chat'")
    ok(kernel, "%allm -w {ws} mode={chosen_mode} What is on the pad?")
    request = kernel_server.chat_requests()[-1]
    assert request.path == "/api/v1/workspace/scratchpad/stream-chat"
    assert request.json["mode"] == "chat"
    assert request.json["message"] == "What is on the pad?"


# -- a kernel without a key: status, %allm login, where settings came from -----------------------


@pytest.fixture(scope="module")
def keyless(kernel_server: StandInServer) -> Iterator[KernelSession]:
    env = kernel_env(kernel_server)
    del env["ANYTHING_LLM_API_KEY"]
    session = KernelSession(env)
    session.secret = kernel_server.api_key  # typed at the prompt: it must never be shown either
    try:
        ok(session, "%load_ext allm_jupyter")
        yield session
    finally:
        session.shutdown()


def login(kernel: KernelSession, typed: str) -> CellRun:
    """``%allm login`` with ``typed`` answered at its password prompt, as a front end does."""
    msg_id = kernel.client.execute("%allm login", allow_stdin=True)
    while True:
        try:
            request = kernel.client.get_stdin_msg(timeout=60)
        except queue.Empty:
            raise AssertionError("%allm login never asked for the key") from None
        if request["parent_header"].get("msg_id") == msg_id:
            break
    assert request["msg_type"] == "input_request"
    assert request["content"]["password"] is True, "the key must be typed hidden"
    kernel.client.input(typed)
    return kernel.collect(msg_id)


def test_status_without_a_key_says_how_to_set_one(keyless: KernelSession) -> None:
    text = ok(keyless, "%allm status").text
    assert re.search(r"^api key\s+unset — set ANYTHING_LLM_API_KEY or run %allm login$", text, re.M)


def test_login_says_whether_the_server_accepted_the_key(
    keyless: KernelSession, kernel_server: StandInServer
) -> None:
    rejected = login(keyless, "not-the-key")
    assert rejected.status == "ok", rejected.error_text
    assert f"API key rejected by {kernel_server.base_url}; it was not kept." in rejected.text
    assert "unset" in ok(keyless, "%allm status").text
    accepted = login(keyless, kernel_server.api_key)
    assert accepted.status == "ok", accepted.error_text
    assert f"API key accepted by {kernel_server.base_url}; kept for this kernel." in accepted.text
    assert re.search(r"^api key\s+valid$", ok(keyless, "%allm status").text, re.M)
    ok(keyless, "%allm logout")


def test_login_keeps_the_key_with_a_note_when_the_server_cannot_be_reached(
    keyless: KernelSession, kernel_server: StandInServer
) -> None:
    down = free_url()
    ok(keyless, f"%config AllmMagics.base_url = {down!r}")
    try:
        kept = login(keyless, kernel_server.api_key)
        assert kept.status == "ok", kept.error_text
        assert (
            f"API key kept for this kernel; the server at {down} could not be reached to check it."
            in kept.text
        )
        assert re.search(r"^api_key\s+set\s+login$", ok(keyless, "%allm config").text, re.M)
    finally:
        ok(keyless, "%allm logout")
        ok(keyless, "%config AllmMagics.base_url = None")


def test_an_unreachable_configured_url_names_config(keyless: KernelSession) -> None:
    down = free_url()
    ok(keyless, f"%config AllmMagics.base_url = {down!r}")
    try:
        run = keyless.run("%%allm workspace=research\nhello")
    finally:
        ok(keyless, "%config AllmMagics.base_url = None")
    assert run.status == "error"
    assert run.reply["ename"] == "ServerUnreachableError"
    assert f"Cannot reach the AnythingLLM server at {down}" in run.error_text
    assert "that %config AllmMagics.base_url points at it" in run.error_text
    assert "ANYTHING_LLM_BASE_URL" not in run.error_text
