"""``%%allm background`` in a real kernel against the stand-in: answers stream while other cells
run, each into its own cell, and end exact; jobs, stop, failures, same-session order, shutdown.

Nothing here waits on a clock: the stand-in's held answers say when they got somewhere
(``Reached``) and wait for the test (``Hold``), and the kernel's replies say when a cell ran.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from conftest import CellRun, KernelSession, kernel_env, loaded_kernel

from allm_jupyter.testing import StandInServer
from allm_jupyter.testing import scenarios as sc

WAIT = 60.0
"""Seconds before a wait that should end at once is called a hang (a failure, not a pace)."""


@pytest.fixture
def server() -> Iterator[StandInServer]:
    with StandInServer(speed=0) as standin:
        yield standin


@pytest.fixture
def kernel(server: StandInServer) -> Iterator[KernelSession]:
    with loaded_kernel(kernel_env(server)) as session:
        yield session


def updates(run: CellRun) -> list[str]:
    return [
        o["data"]["text/markdown"]
        for o in run.outputs
        if o["msg_type"] in ("display_data", "update_display_data")
        and "text/markdown" in o.get("data", {})
    ]


def shows(kernel: KernelSession, msg_id: str, text: str) -> CellRun:
    """Read on until the cell's output shows ``text``."""
    return kernel.outputs_until(msg_id, lambda run: any(text in u for u in updates(run)))


def reached() -> threading.Event:
    return threading.Event()


def held_answer(text: str, at: threading.Event, release: threading.Event | None) -> sc.Scenario:
    return sc.held(
        sc.normal(text, sources=[sc.source("Handbook", "The handbook says so.")]), at, release
    )


def ok(kernel: KernelSession, code: str) -> CellRun:
    run = kernel.run(code)
    assert run.status == "ok", run.error_text
    return run


def test_three_answers_stream_at_once_while_a_cell_runs_and_end_exact(
    kernel: KernelSession, server: StandInServer
) -> None:
    release = threading.Event()
    marks = [reached() for _ in range(3)]
    texts = [f"Answer number {n} talks about topic {n} at length." for n in range(3)]
    server.queue(*(held_answer(t, m, release) for t, m in zip(texts, marks, strict=True)))
    cells = []
    for n in range(3):
        run = ok(kernel, f"%%allm background -w research session=s{n} out=job{n}\nQuestion {n}?")
        cells.append(kernel_msg_id(run))
        assert "stop button does not stop it" in updates(run)[0]  # shown before it returns
    for mark in marks:
        assert mark.wait(WAIT), "an answer never started"
    streams = server.streams
    assert len(streams) == 3 and not any(s.finished.is_set() for s in streams)
    # the three are in flight at once: a fourth cell runs and returns meanwhile
    assert ok(kernel, "1 + 1").of_type("execute_result")[0]["data"]["text/plain"] == "2"
    by_question = {s.request.json["message"]: s.scenario.expected_text for s in streams}
    for n, msg_id in enumerate(cells):  # each cell shows its own answer's first word, live
        shows(kernel, msg_id, by_question[f"Question {n}?"].split()[0])
    release.set()
    for n in range(3):
        ok(kernel, f"reply{n} = job{n}.result()")
    for n, msg_id in enumerate(cells):
        expected = by_question[f"Question {n}?"]
        final = shows(kernel, msg_id, "Sources (1)")
        assert expected in updates(final)[-1] and "fake-model" in updates(final)[-1]
        same = ok(kernel, f"print(job{n}._repr_markdown_() == {updates(final)[-1]!r})")
        assert same.text.strip() == "True"  # the job shows as its reply, exactly the output


def kernel_msg_id(run: CellRun) -> str:
    return str(run.messages[0]["parent_header"]["msg_id"])


def test_result_await_jobs_stop_and_a_failure(kernel: KernelSession, server: StandInServer) -> None:
    server.queue(sc.normal("The first answer."))
    ok(kernel, "%%allm -b -w research out=first\nOne?")
    awaited = ok(kernel, "reply = await first\nprint(reply.text, reply.complete)")
    assert "The first answer. True" in awaited.text

    at = reached()
    server.queue(held_answer("Never finished, this one.", at, None))
    stopped_cell = kernel_msg_id(ok(kernel, "%allm --background -w research Two"))
    assert at.wait(WAIT)
    shows(kernel, stopped_cell, "Never")  # the first word arrived: stop it mid-answer
    listed = ok(kernel, "%allm jobs").text
    assert "streaming" in listed and "Two" in listed and "done" in listed
    assert "Stopped background answer 2." in ok(kernel, "%allm stop 2").text
    assert server.streams[-1].disconnected.wait(WAIT), "the server never saw the hang-up"
    state = ok(kernel, "print(_allm.state, _allm.reply.interrupted, repr(_allm.reply.text))")
    assert "stopped True 'Never '" in state.text
    shows(kernel, stopped_cell, "Stopped by the user")

    server.queue(sc.midstream_abort())
    failing = kernel_msg_id(ok(kernel, "%%allm background -w research out=third\nThree?"))
    failed = kernel.run("third.result()")
    assert failed.status == "error" and failed.reply["ename"] == "ChatAbortedError"
    assert len(failed.error_text.splitlines()) == 1  # one sentence, as the magic says it
    assert "Connection error" in failed.error_text
    shown = updates(shows(kernel, failing, "⚠ Error"))[-1]
    assert "Connection error" in shown and "partial" in shown  # its own output says why
    listed = ok(kernel, "%allm jobs").text
    for state_word in ("done", "stopped", "failed"):
        assert state_word in listed


def queued_behind(kernel: KernelSession, server: StandInServer, first: str, second: str) -> None:
    """Ask ``first`` (held by the server), then ``second``: it waits, queued and unsent, until
    the first ends; then the server gets it."""
    release, at = threading.Event(), reached()
    server.queue(held_answer("Holding the way.", at, release))
    ok(kernel, f"%%allm background -w research {first}\nFirst?")
    assert at.wait(WAIT)
    asked = len(server.chat_requests())
    ok(kernel, f"%%allm background -w research {second} out=second\nSecond?")
    assert "queued" in ok(kernel, "print(second.state)").text
    assert "queued" in ok(kernel, "%allm jobs").text
    assert len(server.chat_requests()) == asked  # not sent while the first holds the way
    release.set()
    ok(kernel, "second.result()")
    assert [r.json["message"] for r in server.chat_requests()][-2:] == ["First?", "Second?"]


def test_one_session_asks_in_order_and_the_limit_queues(
    kernel: KernelSession, server: StandInServer
) -> None:
    queued_behind(kernel, server, "session=same", "session=same")
    assert server.streams[0].finished.is_set()
    ok(kernel, "%config AllmMagics.background_limit = 1")
    queued_behind(kernel, server, "session=x", "session=y")


def test_unload_and_shutdown_hang_up_every_answer(server: StandInServer) -> None:
    marks = [reached() for _ in range(2)]
    with loaded_kernel(kernel_env(server)) as kernel:
        server.queue(*(held_answer("Stays open.", m, None) for m in marks))
        ok(kernel, "%%allm background -w research session=u1\nOne?")
        ok(kernel, "%%allm background -w research session=u2\nTwo?")
        for mark in marks:
            assert mark.wait(WAIT)
        ok(kernel, "%unload_ext allm_jupyter")
        assert all(s.disconnected.wait(WAIT) for s in server.streams)
        threads = ok(kernel, "import threading; print([t.name for t in threading.enumerate()])")
        assert "allm-view-ticker" not in threads.text

        marks = [reached() for _ in range(2)]
        server.queue(*(held_answer("Open at shutdown.", m, None) for m in marks))
        ok(kernel, "%load_ext allm_jupyter")
        cells = [
            kernel_msg_id(ok(kernel, f"%%allm background -w research session=v{n}\nQ{n}?"))
            for n in range(2)
        ]
        for mark in marks:
            assert mark.wait(WAIT)
        kernel.manager.shutdown_kernel(now=False)  # as the front end's shutdown or restart
        assert all(s.disconnected.wait(WAIT) for s in server.streams[2:])
        for cell in cells:  # hung up by the kernel itself on its way out, not by a kill
            shows(kernel, cell, "Stopped by the user")


def test_every_option_works_in_the_background(kernel: KernelSession, server: StandInServer) -> None:
    ok(kernel, 'notes = "The meeting moved to Tuesday."')
    cell = kernel_msg_id(
        ok(kernel, "%%allm background -w research thread=new attach=notes out=threaded\nWhen?")
    )
    reply = ok(kernel, "r = threaded.result(); print(r.thread, r.complete)").text.split()
    request = server.chat_requests()[-1]
    assert f"/thread/{reply[0]}/stream-chat" in request.path and reply[1] == "True"
    assert [a.name for a in request.attachments] == ["notes.txt"]
    shown = updates(shows(kernel, cell, "fake-model"))  # the final update, with its footer
    assert "Attached" in shown[0] and "notes" in shown[0]  # the table, first in the asking cell

    assert kernel.run("1 / 0").status == "error"
    ok(kernel, "%%allm background -w research out=explained explain\nWhy did it fail?")
    ok(kernel, "explained.result()")
    message = server.chat_requests()[-1].json["message"]
    assert "ZeroDivisionError" in message and "Why did it fail?" in message


def test_the_stop_button_stops_the_running_cell_not_a_background_answer(
    kernel: KernelSession, server: StandInServer
) -> None:
    release, at = threading.Event(), reached()
    server.queue(held_answer("Goes on after the stop button.", at, release))
    ok(kernel, "%%allm background -w research out=going\nOn?")
    assert at.wait(WAIT)
    msg_id = kernel.execute(
        "print('waiting', flush=True)\nimport threading\nthreading.Event().wait()"
    )
    printed = ""
    while "waiting" not in printed:  # the cell is running: it printed (maybe in pieces)
        printed += kernel.next_message(msg_id).get("content", {}).get("text", "")
    kernel.interrupt()
    assert kernel.collect(msg_id).reply["ename"] == "KeyboardInterrupt"
    assert "streaming" in ok(kernel, "print(going.state)").text
    assert not server.streams[-1].disconnected.is_set()
    release.set()
    assert "True" in ok(kernel, "print(going.result().complete)").text


def test_a_stop_while_handing_the_answer_over_is_one_line_and_ends_the_job(
    kernel: KernelSession, server: StandInServer
) -> None:
    """The stop lands in the job runner's submit (here: while the output is made, the cell's
    first display message), after the job was numbered: the cell ends in one line, the job as
    stopped, and the next background answer runs."""
    ok(
        kernel,
        "import allm_jupyter.view as view\n"
        "made = view.make_view\n"
        "def stopped(*args, **kwargs):\n"
        "    view.make_view = made\n"
        "    raise KeyboardInterrupt\n"
        "view.make_view = stopped",
    )
    run = kernel.run("%%allm background -w research out=handed\nHanded over?")
    assert (run.status, run.reply["ename"]) == ("error", "Interrupted")
    assert len(run.error_text.splitlines()) == 1
    assert run.error_text.endswith(
        "KeyboardInterrupt\x1b[0m: stopped before the question was sent."
    )
    assert not server.chat_requests()
    assert "stopped" in ok(kernel, "%allm jobs").text
    assert "already ended (stopped)" in ok(kernel, "%allm stop 1").text
    assert "True" in ok(kernel, "print(_allm.interrupted, handed.interrupted)").text
    server.queue(sc.normal("After the stop."))
    ok(kernel, "%%allm background -w research out=after\nAfter?")
    assert "After the stop." in ok(kernel, "print(after.result().text)").text
