"""The stop button ends a question or a command in one line, wherever it lands: each step that waits
on the server (or on the notebook's own objects) is held open by a loopback server that never
answers, and the stop is sent once the server has the request, so no step is missed or raced."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hostile import HELD, HostileServer, canned, http_response


@pytest.fixture
def silent() -> Iterator[HostileServer]:
    """Accepts every request and never answers."""
    with HostileServer(otherwise=HELD) as server:
        yield server


@pytest.mark.parametrize("command", ["workspaces", "status", "search onboarding"])
def test_stopping_a_command_is_one_line(kernel, silent: HostileServer, command: str) -> None:
    kernel.run(f"%config AllmMagics.base_url = '{silent.base_url}'")
    try:
        msg_id = kernel.execute(f"%allm {command}")
        assert silent.wait_for_any_request(), "the command never reached the server"
        kernel.interrupt()
        run = kernel.collect(msg_id)
    finally:
        kernel.run("%config AllmMagics.base_url = None")
    assert run.status == "error"
    assert run.reply["ename"] == "Interrupted"
    name = command.split()[0]
    assert run.error_text.splitlines() == [
        f"\x1b[0;31mKeyboardInterrupt\x1b[0m: %allm {name} was stopped."
    ]


SLOW_FIGURE = """
import urllib.request

class SlowFigure:
    '''Saves like a matplotlib figure, from a server that never answers.'''

    def savefig(self, buffer, **options):
        urllib.request.urlopen({url!r})

slow = SlowFigure()
notes = "Some notes to attach."
questions = ["What is RAG?", "Who wrote it?"]
_allm = "the previous reply"
"""
SLUG = "ws"
BEFORE = "stopped before the question was sent."
NOTHING_YET = "stopped before any answer arrived."


@pytest.mark.parametrize(
    ("cell", "held", "stopped"),
    [
        ("%%allm workspace=Research\nq", "/api/v1/workspaces", BEFORE),
        ("%allm -w Research What's up?", "/api/v1/workspaces", BEFORE),
        ("%%allm over=questions workspace=Research\n{item}", "/api/v1/workspaces", BEFORE),
        ("%allm -w Research over=questions concurrency=2", "/api/v1/workspaces", BEFORE),
        (f"%%allm -w {SLUG} thread=new\nq", f"/api/v1/workspace/{SLUG}/thread/new", BEFORE),
        (f'%allm -w {SLUG} -t "My thread" Why?', "/api/v1/workspaces", BEFORE),
        (f"%%allm -w {SLUG} attach=slow\nq", "/figure", BEFORE),
        (f"%%allm -w {SLUG} attach=notes\nq", f"/api/v1/workspace/{SLUG}", BEFORE),
        (
            f"%%allm -w {SLUG}\nq",
            f"/api/v1/workspace/{SLUG}/stream-chat",
            NOTHING_YET,
        ),
    ],
    ids=[
        "name",
        "one-line name",
        "over= name",
        "one-line over= name",
        "thread=new",
        "thread name",
        "attachment",
        "mode",
        "stream",
    ],
)
def test_stopping_a_question_anywhere_is_one_line_and_keeps_an_interrupted_reply(
    kernel, cell: str, held: str, stopped: str
) -> None:
    with HostileServer({held: HELD}) as server:
        setup = kernel.run(
            f"%config AllmMagics.base_url = {server.base_url!r}\n"
            + SLOW_FIGURE.format(url=server.base_url + "/figure")
        )
        assert setup.status == "ok", setup.error_text
        try:
            msg_id = kernel.execute(cell)
            assert server.wait_for_request(held), f"{held} was never asked"
            kernel.interrupt()
            run = kernel.collect(msg_id)
            kept = kernel.run("print(type(_allm).__name__, _allm.interrupted, repr(_allm.text))")
        finally:
            kernel.run("%config AllmMagics.base_url = None")
    assert (run.status, run.reply["ename"]) == ("error", "Interrupted")
    assert run.error_text.splitlines() == [f"\x1b[0;31mKeyboardInterrupt\x1b[0m: {stopped}"]
    assert kept.text.strip() == "Reply True ''"


def test_stopping_an_upload_is_one_line(kernel) -> None:
    held = "/api/v1/document/raw-text"
    workspace = json.dumps({"workspace": [{"slug": SLUG, "name": "WS"}]}).encode()
    routes = {held: HELD, f"/api/v1/workspace/{SLUG}": canned(http_response(200, workspace))}
    with HostileServer(routes) as server:
        kernel.run(
            f"%config AllmMagics.base_url = {server.base_url!r}\n"
            f"%config AllmMagics.default_workspace = {SLUG!r}\n"
            "notes = 'Some notes.'"
        )
        try:
            msg_id = kernel.execute("%allm upload notes")
            assert server.wait_for_request(held), "the upload never reached the server"
            kernel.interrupt()
            run = kernel.collect(msg_id)
            assert kernel.run("1 + 1").status == "ok"
        finally:
            kernel.run(
                "%config AllmMagics.base_url = None\n%config AllmMagics.default_workspace = None"
            )
    assert run.error_text.splitlines() == [
        "\x1b[0;31mKeyboardInterrupt\x1b[0m: %allm upload was stopped."
    ]
