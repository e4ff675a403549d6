"""``ask_many`` and ``Batch`` over loopback on both clients: grids, failures, throttling, a stop
and its resume, concurrency; the questions, the table and the progress line with generated text."""

from __future__ import annotations

import asyncio
import inspect
import io
import re
import shlex
import signal
import threading
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allm_jupyter import AsyncClient, Batch, Client, ConfigurationError, Reply
from allm_jupyter._progress import Counts, LineProgress, progress_line
from allm_jupyter.batch import COLUMNS, question_texts
from allm_jupyter.models import Metrics, Source
from allm_jupyter.options import parse_options
from allm_jupyter.testing import Prices, StandInServer, scenarios


@pytest.fixture
def server() -> Iterator[StandInServer]:
    with StandInServer(speed=0, prices=Prices()) as standin:
        yield standin


def ask_many(kind: str, server: StandInServer, *args: Any, **options: Any) -> Batch:
    """``ask_many`` on the client ``kind``: the sync one here, the async one on its own loop."""
    if kind == "sync":
        with Client(server.base_url, server.api_key) as client:
            return client.ask_many(*args, **options)

    async def run() -> Batch:
        async with AsyncClient(server.base_url, server.api_key) as client:
            return await client.ask_many(*args, **options)

    return asyncio.run(run())


CLIENTS = pytest.mark.parametrize("kind", ["sync", "async"])


def questions_asked(server: StandInServer) -> list[tuple[str, str, str | None]]:
    """(question, workspace, mode) of every chat request, in any order."""
    return sorted(
        (r.json["message"], r.path.split("/")[4], r.json.get("mode"))
        for r in server.chat_requests()
    )


@CLIENTS
def test_the_grid_is_every_question_in_every_workspace_and_mode(
    kind: str, server: StandInServer
) -> None:
    research, scratchpad = server.slugs[:2]
    questions = ["What is RAG?", "Who is on the team?"]
    batch = ask_many(
        kind, server, [research, scratchpad], questions, mode=["chat", "query"], progress=False
    )
    assert [(r.question, r.workspace, r.mode) for r in batch.rows] == [
        (q, w, m) for q in questions for w in (research, scratchpad) for m in ("chat", "query")
    ]
    assert questions_asked(server) == sorted((r.question, r.workspace, r.mode) for r in batch.rows)
    assert (batch.done, batch.failed, batch.pending) == (8, 0, 0)
    for row, reply in zip(batch.rows, batch.replies, strict=True):
        assert reply is not None
        assert reply.text == server.expected_reply(row.workspace, row.question, row.mode)
    sessions = [r.json["sessionId"] for r in server.chat_requests()]
    assert len(set(sessions)) == 8, "each question has its own fresh session"


@CLIENTS
def test_a_failing_question_records_its_error_and_the_batch_goes_on(
    kind: str, server: StandInServer
) -> None:
    server.answer_when(lambda q: "explode" in q, scenarios.abort_before_tokens("upstream boom"))
    batch = ask_many(kind, server, "research", ["one", "please explode", "three"], progress=False)
    assert (batch.done, batch.failed, batch.pending) == (2, 1, 0)
    failed = batch.replies[1]
    assert failed is not None and failed.error is not None and "upstream boom" in failed.error
    frame = batch.to_pandas()
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["status"]) == ["done", "failed", "done"]
    assert frame["cost"].iloc[0] > 0, "the stand-in prices its answers as newer servers do"


@CLIENTS
def test_throttling_slows_down_and_never_storms(kind: str, server: StandInServer) -> None:
    server.answer_when(lambda q: q == "q1", scenarios.throttled(429, "0"), times=1)
    server.answer_when(lambda q: q == "q2", scenarios.throttled(503, "0"), times=1)
    server.answer_when(lambda q: q == "always busy", scenarios.throttled(429, "0"))
    questions = ["q0", "q1", "q2", "always busy"]
    batch = ask_many(kind, server, "research", questions, concurrency=4, progress=False)
    assert (batch.done, batch.failed) == (3, 1)
    asked = [r.json["message"] for r in server.chat_requests()]
    # each throttled question once more; one that stays busy only as often as max_retries allows
    assert sorted(asked) == sorted(["q0", "q1", "q1", "q2", "q2", *["always busy"] * 3])


@CLIENTS
def test_resume_asks_only_what_failed_or_is_pending(kind: str, server: StandInServer) -> None:
    server.answer_when(lambda q: q == "flaky", scenarios.http_error(500, "later"), times=1)
    batch = ask_many(kind, server, "research", ["steady", "flaky"], progress=False)
    assert batch.failed == 1
    again = ask_many(kind, server, "research", ["steady", "flaky"], resume=batch, progress=False)
    assert again is batch
    assert (batch.done, batch.failed) == (2, 0)
    assert [r.json["message"] for r in server.chat_requests()].count("steady") == 1


def test_answers_overlap_up_to_the_concurrency_and_a_cancel_hangs_them_up(
    server: StandInServer,
) -> None:
    server.answer_when(lambda q: True, scenarios.stall(""))
    batch = Batch.plan("research", [f"q{i}" for i in range(6)])

    async def run() -> None:
        async with AsyncClient(server.base_url, server.api_key) as client:
            task = asyncio.ensure_future(client.ask_many(resume=batch, concurrency=3))
            await asyncio.to_thread(server.wait_for_answers, 0, in_flight=3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(run())
    for record in server.streams:
        assert record.disconnected.wait(30)
    assert server.peak_in_flight == 3
    assert (batch.done, batch.failed, batch.pending, batch.stopped) == (0, 0, 6, True)


def interrupt_when(ready: Callable[[], None]) -> threading.Thread:
    """Press stop (SIGINT to the main thread, as a terminal's Ctrl-C) once ``ready`` returns."""

    def watch() -> None:
        ready()
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_a_stop_keeps_the_finished_rows_and_resume_finishes() -> None:
    """Concurrency 2 over two quick questions, then two that stall: when the server plays both
    stalled ones, the client has folded the quick ones (a worker moves on only after)."""
    with StandInServer(speed=0) as server, Client(server.base_url, server.api_key) as client:
        server.answer_when(lambda q: q.startswith("slow"), scenarios.stall())
        questions = ["quick 1", "quick 2", "slow 1", "slow 2"]
        watcher = interrupt_when(lambda: server.wait_for_answers(2, in_flight=2))
        batch = client.ask_many("research", questions, concurrency=2, progress=False)
        watcher.join()
        assert (batch.done, batch.pending, batch.stopped) == (2, 2, True)
        assert [r is not None for r in batch.replies] == [True, True, False, False]
        slow = [s for s in server.streams if s.request.json["message"].startswith("slow")]
        assert all(s.disconnected.wait(30) for s in slow)
        server.clear_rules()
        client.ask_many(resume=batch, progress=False)
        assert (batch.done, batch.pending, batch.stopped) == (4, 0, False)
        assert len(server.chat_requests()) == 6


def test_to_polars_has_the_same_table(server: StandInServer) -> None:
    batch = ask_many("sync", server, "research", pl.Series("q", ["a", "b"]), progress=False)
    frame = batch.to_polars()
    assert frame.columns == list(COLUMNS)
    assert frame["question"].to_list() == ["a", "b"]
    assert frame["answer"].to_list() == [r.answer for r in batch.replies if r]


# -- the questions ----------------------------------------------------------------------------

fields = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@given(values=st.lists(fields, min_size=1, max_size=5), extra=fields)
@settings(max_examples=60)
def test_a_template_fills_columns_and_keeps_other_braces(values: list[str], extra: str) -> None:
    frame = pd.DataFrame({"name": values, "n": range(len(values))})
    template = "About {name} (row {n}): {missing} {{name}} {" + extra + "}"
    texts = question_texts(frame, template, {})
    assert texts == [
        f"About {value} (row {n}): {{missing}} {{{{name}}}} {{{extra}}}".strip()
        for n, value in enumerate(values)
    ]


@given(items=st.lists(fields, min_size=1, max_size=5))
def test_a_list_template_names_the_item_or_asks_about_it(items: list[str]) -> None:
    assert question_texts(items, "Q: {item}?", {}) == [f"Q: {i}?".strip() for i in items]
    assert question_texts(items, "Summarise this:", {}) == [
        f"Summarise this:\n\n{i}".strip() for i in items
    ]


@pytest.mark.parametrize(
    ("questions", "template", "sentence"),
    [
        ("What is RAG?", None, "questions is one string"),
        (pd.DataFrame({"a": [1]}), None, "A DataFrame needs a template"),
        (["fine", 3], None, "Question 1 is a int, not text"),
        ([], None, "There are no questions"),
        (42, None, "questions is a int"),
    ],
)
def test_bad_questions_are_one_sentence(questions: Any, template: Any, sentence: str) -> None:
    with pytest.raises(ConfigurationError, match=sentence):
        Batch.plan("research", questions, template=template)


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True])
def test_concurrency_must_be_a_whole_number(server: StandInServer, concurrency: Any) -> None:
    with pytest.raises(ConfigurationError, match="concurrency must be"):
        ask_many("sync", server, "research", ["a"], concurrency=concurrency)
    assert not server.chat_requests()


def test_resume_with_other_questions_is_refused(server: StandInServer) -> None:
    batch = Batch.plan("research", ["a"])
    with pytest.raises(ConfigurationError, match="other questions"):
        ask_many("sync", server, "research", ["b"], resume=batch)


# -- the table and the progress line -----------------------------------------------------------


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


@given(question=fields, answer=st.text(max_size=300), title=fields)
@settings(max_examples=80)
def test_the_table_escapes_every_server_text(question: str, answer: str, title: str) -> None:
    batch = Batch.plan("research", [question or "?", "second"], mode=["chat"])
    reply = Reply(text=answer, sources=(Source(title=title, score=0.5),), metrics=Metrics())
    batch._answered(0, reply, 1.0)
    batch._answered(1, Reply(error=answer or "failed"), 1.0)
    parser = Tags()
    parser.feed(batch._repr_html_())
    assert parser.tags <= {"p", "table", "thead", "tbody", "tr", "th", "td"}
    assert "2 questions: 1 done, 1 failed, 0 pending" in parser.text
    record = batch.records()[0]
    assert (record["sources"], record["best_score"]) == ([title], 0.5)


def test_the_table_shows_the_first_rows_and_says_so() -> None:
    batch = Batch.plan("research", [f"question {i}" for i in range(25)])
    shown = batch._repr_html_()
    assert shown.count("<tr>") == 11  # the header and ten rows
    assert "the first 10 rows" in shown
    assert repr(batch) == "<Batch 25 questions: 0 done, 0 failed, 25 pending>"


def test_the_progress_line_counts_rate_and_time_left() -> None:
    counts = Counts(total=10, done=4, failed=1, in_flight=2, answered_now=5, elapsed=30.0)
    assert (
        progress_line(counts) == "4/10 done · 1 failed · 2 in flight · 10.0 answers/min · 0:30 left"
    )
    assert progress_line(Counts(3, 0, 0, 3, 0, 0.0)) == "0/3 done · 3 in flight"
    stopped = Counts(3, 1, 0, 0, 1, 6.0, stopped=True)
    assert progress_line(stopped) == "1/3 done · 10.0 answers/min · stopped"


def test_the_terminal_line_is_rewritten_in_place() -> None:
    out = io.StringIO()
    line = LineProgress(out)
    line.show(Counts(2, 0, 0, 2, 0, 0.0))
    line.close(Counts(2, 2, 0, 0, 2, 60.0))
    assert out.getvalue() == "\r0/2 done · 2 in flight\r2/2 done · 2.0 answers/min\n"


# -- the docs ---------------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_python_api_section_shows_the_signature_and_the_columns() -> None:
    page = (DOCS / "python-api.md").read_text(encoding="utf-8")
    section = page[page.index("## Many questions at once") :]
    signature = inspect.signature(Client.ask_many)
    assert signature == inspect.signature(AsyncClient.ask_many)
    shown = re.search(r"`ask_many\((.*?)\)` is on both clients", section, re.S)
    assert shown
    parameters = list(signature.parameters.values())[1:]
    assert " ".join(shown.group(1).split()) == ", ".join(
        [p.name for p in parameters[:2]]
        + ["*"]
        + [f"{p.name}={p.default!r}" for p in parameters[2:]]
    )
    columns = re.search(r"with the columns (.*?)\. In a notebook", section, re.S)
    assert columns
    assert re.findall(r"`(\w+)`", columns.group(1)) == list(COLUMNS)


def test_the_magic_page_names_the_options_it_explains() -> None:
    page = (DOCS / "magic.md").read_text(encoding="utf-8")
    section = page[page.index("## `%%allm over=`") : page.index("## `%allm`: commands")]
    for option in ("over=", "concurrency=", "resume=", "out=", "session="):
        assert option in section
    assert (
        parse_options(
            "over=contracts workspace=legal,legal-v2 mode=chat,query concurrency=4 out=results"
        ).over
        == "contracts"
    )


def test_a_shared_session_is_one_conversation(server: StandInServer) -> None:
    ask_many("sync", server, "research", ["one", "two"], session="notes", progress=False)
    assert {r.json["sessionId"] for r in server.chat_requests()} == {"notes"}


@given(value=st.text(max_size=8))
def test_concurrency_on_the_cell_line_is_a_whole_number_or_one_sentence(value: str) -> None:
    line = f"over=qs concurrency={shlex.quote(value)}"
    try:
        options = parse_options(line)
    except ConfigurationError as error:
        assert str(error).count(".") >= 1 and "\n" not in str(error)
        return
    assert options.concurrency == int(value.strip()) >= 1


@given(
    questions=st.lists(st.text(min_size=1, max_size=60).filter(str.strip), min_size=1, max_size=6)
)
@settings(max_examples=15)
def test_generated_questions_arrive_as_written(questions: list[str]) -> None:
    with StandInServer(speed=0) as server:
        batch = ask_many("sync", server, "research", questions, mode="chat", progress=False)
        assert sorted(r.json["message"] for r in server.chat_requests()) == sorted(
            q.strip() for q in questions
        )
        assert batch.failed == 0


@pytest.mark.parametrize(
    "line", ["over=q thread=t", "over=q attach=df", "over=q reset", "resume=b explain"]
)
def test_what_a_batch_cannot_do_is_one_sentence(line: str) -> None:
    with pytest.raises(ConfigurationError, match="does not go with over= or resume="):
        parse_options(line)


BLANKS = st.text(st.sampled_from(" \t\n\r\u00a0\u2003"), max_size=4)
"""Questions that are only white space (the empty one too)."""


@CLIENTS
@given(
    questions=st.lists(
        st.one_of(st.text(min_size=1, max_size=40).filter(str.strip), BLANKS),
        min_size=1,
        max_size=6,
    ).filter(lambda qs: any(not q.strip() for q in qs))
)
@settings(max_examples=10)
def test_a_blank_question_fails_its_row_and_the_batch_goes_on(
    kind: str, questions: list[str]
) -> None:
    with StandInServer(speed=0) as server:
        batch = ask_many(kind, server, "research", questions, mode="chat", progress=False)
        asked = sorted(r.json["message"] for r in server.chat_requests())
    assert asked == sorted(q.strip() for q in questions if q.strip())
    blank = [not q.strip() for q in questions]
    assert [r is not None and r.error is not None for r in batch.replies] == blank
    for reply, empty in zip(batch.replies, blank, strict=True):
        assert reply is not None and reply.complete is not empty
        if empty:
            assert reply.error == "The question is empty; pass the message to ask."
    assert (batch.failed, batch.pending) == (sum(blank), 0)


_BATCHES = ("over=qs", "resume=b")
_IN_BACKGROUND = ("background", "-b", "--background")


@given(
    st.permutations(["workspace=research", "out=x"])
    .flatmap(lambda rest: st.permutations([*rest, "BATCH", "BACKGROUND"]))
    .map(" ".join),
    st.sampled_from(_BATCHES),
    st.sampled_from(_IN_BACKGROUND),
)
def test_a_batch_in_the_background_is_one_sentence(line: str, batch: str, background: str) -> None:
    """A batch runs in its cell (its bar, a stop that keeps what finished): ``background`` is
    refused, wherever it stands on the line and however it is spelt."""
    line = line.replace("BATCH", batch).replace("BACKGROUND", background)
    with pytest.raises(ConfigurationError) as refused:
        parse_options(line)
    assert str(refused.value).startswith("background does not go with over= or resume=")
    assert "\n" not in str(refused.value)
