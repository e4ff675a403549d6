"""The job runner over loopback: background answers on the private loop thread, drawn into a
recording display; what docs/magic.md says about them, checked against the code."""

from __future__ import annotations

import asyncio
import gc
import re
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from displays import Display
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allm_jupyter._loop import LoopThread, Work, shared_loop
from allm_jupyter.async_client import AsyncChatStream
from allm_jupyter.attachments import Attachment, data_url
from allm_jupyter.client import Client
from allm_jupyter.commands import COMMANDS
from allm_jupyter.config import DOCUMENT_MIME
from allm_jupyter.context import Context
from allm_jupyter.jobs import AskJob, JobRunner
from allm_jupyter.options import parse_options
from allm_jupyter.render import render_markdown
from allm_jupyter.testing import StandInServer
from allm_jupyter.testing import scenarios as sc
from allm_jupyter.view import FrontEndBudget, NotebookView

DOCS = Path(__file__).resolve().parent.parent / "docs" / "magic.md"
WAIT = 60.0
"""Seconds before a wait that should end at once is called a hang."""


@pytest.fixture(scope="module", autouse=True)
def no_loop_thread_left() -> Iterator[None]:
    """The jobs run on the process's loop thread: stop it after them, as the interpreter's exit
    would (a later use starts it again)."""
    yield
    shared_loop().close()


@pytest.fixture(scope="module")
def server() -> Iterator[StandInServer]:
    with StandInServer(speed=0) as running:
        yield running


@pytest.fixture
def client(server: StandInServer) -> Iterator[Client]:
    with Client(server.base_url, api_key=server.api_key, timeout=30) as made:
        yield made


def ask(runner: JobRunner, client: Client, question: str, session: str, display: Display) -> AskJob:
    prepared = client.stream_chat("research", question, mode="chat", session_id=session)
    return runner.submit(
        prepared,
        question,
        lambda job: NotebookView(
            "research", display=display, budget=FrontEndBudget(), waiting_line=job.waiting_line
        ),
    )


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(question=st.text(min_size=1, max_size=80).filter(str.strip))
def test_a_generated_question_is_asked_and_its_output_ends_exact(
    server: StandInServer, client: Client, question: str
) -> None:
    runner, display = JobRunner(), Display()
    try:
        job = ask(runner, client, question, "generated", display)
        reply = job.result(timeout=WAIT)
        assert server.chat_requests()[-1].json["message"] == question  # byte for byte
        assert reply.text == server.expected_reply("research", question, "chat")
        assert display.shown() == render_markdown(reply, final=True) == job._repr_markdown_()
        assert job.state == "done" and job.done() and job.reply == reply
    finally:
        runner.close()


def test_await_a_job_from_another_loop(client: Client) -> None:
    runner = JobRunner()
    try:
        job = ask(runner, client, "Awaited?", "awaited", Display())

        async def wait() -> str:
            return (await job).text

        assert "Awaited?" in asyncio.run(wait())
    finally:
        runner.close()


def test_a_queued_job_stops_without_asking(server: StandInServer, client: Client) -> None:
    runner = JobRunner(lambda: 1)
    at, release = threading.Event(), threading.Event()
    server.queue(sc.held(sc.normal("Holding the one slot."), at, release))
    try:
        first = ask(runner, client, "Slot?", "one", Display())
        assert at.wait(WAIT)
        asked = len(server.chat_requests())
        display = Display()
        second = ask(runner, client, "Waiting?", "two", display)
        assert (
            second.state == "queued" and "is queued" in display.updates[0].bundle["text/markdown"]
        )
        assert "`%allm stop 2`" in display.updates[0].bundle["text/markdown"]
        assert "queued" in second._repr_markdown_() and "queued" in repr(second)
        second.cancel()
        assert second.state == "stopped" and second.result().interrupted
        assert len(server.chat_requests()) == asked  # it never reached the server
        release.set()
        assert first.result(timeout=WAIT).complete
    finally:
        release.set()
        runner.close()


def test_close_hangs_up_what_streams(server: StandInServer, client: Client) -> None:
    runner = JobRunner()
    at = threading.Event()
    server.queue(sc.held(sc.normal("Open until closed."), at))
    job = ask(runner, client, "Open?", "closing", Display())
    assert at.wait(WAIT)
    runner.close()
    assert server.streams[-1].disconnected.wait(WAIT)
    assert job.state == "stopped" and job.reply.interrupted and job.result().interrupted
    assert not [t for t in threading.enumerate() if t.name == "allm-view-ticker"]


def test_the_flag_in_both_forms() -> None:
    assert parse_options("background -w research").background
    assert parse_options("-b").background
    assert parse_options("--background -w research Why?", question=True).background
    assert not parse_options("-w research").background


def test_the_docs_name_the_job_members_and_commands() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## `%%allm background`: ask without blocking", 1)[1].split("\n## ", 1)[0]
    members = re.findall(r"^\| `(?:await )?job\.?(\w*)", section, re.M)
    assert members and all(hasattr(AskJob, name) for name in members if name)
    for name in re.findall(r"^\| `%allm (\w+)", text, re.M):
        assert name in COMMANDS
    assert "jobs" in COMMANDS and "stop" in COMMANDS
    assert "`%allm stop N`" in section and "background_limit" in section


@given(argument=st.text(max_size=30))
def test_stop_takes_any_text_and_answers_in_one_sentence(argument: str) -> None:
    from allm_jupyter.commands import Message, stop
    from allm_jupyter.context import Context
    from allm_jupyter.errors import ConfigurationError

    try:
        said = stop(Context(), argument)
    except ConfigurationError as exc:
        assert exc.message.endswith((".", "…")) and "\n" not in exc.message.strip()
    else:
        assert isinstance(said, Message)


class StopLanding(KeyboardInterrupt):
    """The stop button, landing at a chosen point of :meth:`JobRunner.submit`."""


def left_tickers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "allm-view-ticker"]


def ended_stopped_unsent(runner: JobRunner, server: StandInServer, asked: int) -> None:
    """After a stop inside submit: the one job ended as stopped (so ``%allm stop`` and
    ``result()`` tell the truth), nothing was sent, no ticker runs on."""
    (job,) = runner.jobs
    assert job.done() and job.state == "stopped"
    assert job.result(timeout=WAIT).interrupted
    assert len(server.chat_requests()) == asked
    assert not left_tickers()


def test_a_stop_while_the_view_is_made_ends_the_job(server: StandInServer, client: Client) -> None:
    runner, asked = JobRunner(), len(server.chat_requests())

    def stopped(job: AskJob) -> NotebookView:
        raise StopLanding

    try:
        prepared = client.stream_chat("research", "Never asked?", mode="chat")
        with pytest.raises(StopLanding):
            runner.submit(prepared, "Never asked?", stopped)
        ended_stopped_unsent(runner, server, asked)
    finally:
        runner.close()


def test_a_stop_while_the_first_update_is_drawn_closes_the_output(
    server: StandInServer, client: Client
) -> None:
    """The cell's first draw sends a display message: the likeliest place for a stop to land."""
    runner, asked, display, calls = JobRunner(), len(server.chat_requests()), Display(), []

    def drawing(bundle: dict[str, str], **options: object) -> object:
        calls.append(bundle)
        if len(calls) == 1:
            raise StopLanding
        return display(bundle, **options)

    def view(job: AskJob) -> NotebookView:
        return NotebookView("research", display=drawing, budget=FrontEndBudget(), ticker=False)

    try:
        prepared = client.stream_chat("research", "Never drawn?", mode="chat")
        with pytest.raises(StopLanding):
            runner.submit(prepared, "Never drawn?", view)
        ended_stopped_unsent(runner, server, asked)
        assert "Stopped by the user" in display.shown()  # the output's final update says so
    finally:
        runner.close()


class StoppedAfterStart(LoopThread):
    """A private loop where the stop lands just after the first work was handed to it."""

    def __init__(self) -> None:
        super().__init__()
        self.landed = False

    def start(self, work: Work[Any]) -> None:
        super().start(work)
        if not self.landed:
            self.landed = True
            raise StopLanding


def test_a_stop_just_after_the_answer_was_started_hangs_it_up(client: Client) -> None:
    loop = StoppedAfterStart()
    runner, display = JobRunner(loop=loop), Display()

    def view(job: AskJob) -> NotebookView:
        return NotebookView("research", display=display, budget=FrontEndBudget())

    try:
        prepared = client.stream_chat("research", "Started?", mode="chat")
        with pytest.raises(StopLanding):
            runner.submit(prepared, "Started?", view)
        (job,) = runner.jobs
        assert job.state == "stopped" and job.result(timeout=WAIT).interrupted
        assert COMMANDS["stop"].run(context_with(runner), "1").text == (
            "Background answer 1 has already ended (stopped)."
        )
        assert not left_tickers()
        assert "Stopped by the user" in display.shown()
    finally:
        runner.close()
        loop.close()


def context_with(runner: JobRunner) -> Context:
    context = Context()
    context._jobs = runner
    return context


def test_a_finished_job_lets_its_question_and_streams_go(
    server: StandInServer, client: Client
) -> None:
    """A kernel keeps its jobs (``%allm jobs``) but not what they sent: an attachment can be
    20 MB."""
    runner = JobRunner()
    try:
        attachment = big_attachment()
        prepared = client.stream_chat(
            "research", "Big?", mode="chat", session_id="released", attachments=[attachment]
        )
        sent, attached = weakref.ref(prepared), weakref.ref(attachment)
        job = runner.submit(
            prepared, "Big?", lambda job: NotebookView("research", display=Display())
        )
        del prepared, attachment
        assert job.result(timeout=WAIT).complete
        gc.collect()
        assert sent() is None and attached() is None
        assert not [
            o
            for o in gc.get_objects()
            if isinstance(o, AsyncChatStream) and o.reply.session_id == "released"
        ]
    finally:
        runner.close()


def big_attachment() -> Attachment:
    data = b"x" * 1_000_000
    return Attachment("big.txt", DOCUMENT_MIME, data_url(DOCUMENT_MIME, data), len(data))


def test_jobs_counts_agree_with_their_noun(client: Client) -> None:
    runner = JobRunner()
    try:
        ask(runner, client, "One?", "counted", Display()).result(timeout=WAIT)
        assert (
            COMMANDS["jobs"].run(context_with(runner), "").title.startswith("1 background answer ")
        )
        ask(runner, client, "Two?", "counted", Display()).result(timeout=WAIT)
        assert (
            COMMANDS["jobs"].run(context_with(runner), "").title.startswith("2 background answers ")
        )
    finally:
        runner.close()


def test_result_with_a_timeout_raises_the_builtin_timeout_error(
    server: StandInServer, client: Client
) -> None:
    runner, release, at = JobRunner(), threading.Event(), threading.Event()
    server.queue(sc.held(sc.normal("Slow."), at, release))
    try:
        job = ask(runner, client, "Slow?", "timing", Display())
        assert at.wait(WAIT)
        with pytest.raises(TimeoutError) as raised:
            job.result(timeout=0)
        assert type(raised.value) is TimeoutError  # not concurrent.futures' on Python 3.10
        assert str(raised.value) == (
            "Background answer 1 has not ended yet; it goes on (job.cancel() hangs it up)."
        )
        release.set()
        assert job.result(timeout=WAIT).complete
    finally:
        release.set()
        runner.close()


def test_stop_with_words_says_how_to_ask_them() -> None:
    from allm_jupyter.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as raised:
        COMMANDS["stop"].run(Context(), "the war?")
    assert raised.value.message.endswith(
        "; to ask a question that starts with 'stop', write %allm -- stop …"
    )
