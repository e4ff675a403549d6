"""The live view: how often it takes snapshots and draws, how many bytes it sends, what its last
update holds, and that one ticker thread draws for it.

Answers are read over loopback from the stand-in. Pacing is checked on a fake clock: the stream
below advances it per event and runs the view's ticker step after every event (the worst case
for pacing), so the counts are exact and no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest
from displays import Display, FakeClock, Update

from allm_jupyter import Client, ConnectionLostError
from allm_jupyter.events import Event
from allm_jupyter.render import render_markdown, render_plain
from allm_jupyter.reply import Reply, ReplyBuilder
from allm_jupyter.segments import MAX_PARTS
from allm_jupyter.testing import StandInServer, scenarios
from allm_jupyter.testing.scenarios import words
from allm_jupyter.view import (
    MARKDOWN_BYTES_PER_SECOND,
    MIN_INTERVAL,
    PART_BYTES_PER_SECOND,
    FrontEndBudget,
    NotebookView,
    TerminalView,
)

WORDS = " ".join(f"word{index:05d}" for index in range(5_000))
MARKDOWN = "".join(
    f"## Part {n}\n\n- **item {n}** uses `tool_{n}`, see [the guide](https://example.org/{n}).\n"
    f"Some *emphasis* and plain words to read in paragraph {n}.\n\n"
    for n in range(1_500)
)


@dataclass
class Replayed:
    """Events read from the stand-in, replayed ``step`` fake seconds apart into a view, whose
    ticker step runs after each one; counts the snapshots the view asks for."""

    events: list[Event]
    clock: FakeClock
    step: float
    view: NotebookView | TerminalView | None = None
    builder: ReplyBuilder = field(default_factory=ReplyBuilder)
    snapshots: int = 0

    def __iter__(self) -> Iterator[Event]:
        for event in self.events:
            self.builder.add(event)
            self.clock.now += self.step
            yield event
            assert self.view is not None
            self.view.draw_due()

    @property
    def reply(self) -> Reply:
        self.snapshots += 1
        return self.builder.reply


def read(server: StandInServer, scenario: scenarios.Scenario) -> list[Event]:
    server.queue(scenario)
    with Client(server.base_url, api_key=server.api_key, timeout=30) as client:
        return list(client.stream_chat(server.slugs[0], "q", mode="chat"))


def replay(events: list[Event], step: float) -> tuple[Replayed, Display]:
    clock = FakeClock()
    display = Display(clock)
    stream = Replayed(events, clock, step)
    view = NotebookView(
        "research", clock=clock, display=display, ticker=False, budget=FrontEndBudget()
    )
    stream.view = view
    view.follow(stream)
    view.close(stream.builder.finish())
    return stream, display


@pytest.fixture(scope="module")
def server() -> Iterator[StandInServer]:
    with StandInServer() as running:
        yield running


def test_snapshots_and_draws_follow_the_clock_not_the_events(server: StandInServer) -> None:
    events = read(server, scenarios.normal(WORDS))
    stream, display = replay(events, step=0.001)  # 5,000 words in 5 s
    intermediate = display.updates[:-1]
    seconds = len(events) * 0.001
    assert stream.snapshots == len(intermediate)  # a snapshot only when drawing
    assert len(intermediate) <= seconds / MIN_INTERVAL + 1
    assert len(intermediate) >= 10  # it did keep drawing as the text grew
    assert len(events) > 50 * len(intermediate)


def test_short_answer_updates_twenty_times_a_second(server: StandInServer) -> None:
    events = read(server, scenarios.normal(WORDS[:600]))  # ~55 words
    _, display = replay(events, step=0.01)
    times = [update.at for update in display.updates[:-1]]
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert gaps and min(gaps) >= MIN_INTERVAL - 1e-9
    assert max(gaps) <= MIN_INTERVAL + 0.01 + 1e-9  # drawn at the first event once due
    assert len(times) >= len(events) * 0.01 / MIN_INTERVAL - 1


def test_long_answer_stays_within_the_byte_budget(server: StandInServer) -> None:
    events = read(server, scenarios.normal(MARKDOWN))
    _, display = replay(events, step=0.0005)
    intermediate = draws(display.updates, FrontEndBudget())[:-1]
    assert len(intermediate) >= 5
    assert {rate for *_, rate in intermediate} == {MARKDOWN_BYTES_PER_SECOND, PART_BYTES_PER_SECOND}
    for (at, size, rate), (following, *_) in pairwise(intermediate):
        assert size <= rate * (following - at) + 1, (size, at)
    busy = sum(size / rate for _, size, rate in intermediate[:-1])
    assert busy <= intermediate[-1][0] - intermediate[0][0] + 1e-9


def draws(updates: list[Update], budget: FrontEndBudget) -> list[tuple[float, int, float]]:
    """``(time, bytes sent, the budget's rate for it)`` of each draw: on the fake clock, a
    draw's updates share a time. A draw that only closes a part (no update names the parts of
    the answer, as the tail's do) has the parts' rate."""
    sizes: dict[float, int] = {}
    tails: set[float] = set()
    for update in updates:
        sizes[update.at] = sizes.get(update.at, 0) + update.size
        if "parts" in update.metadata.get("allm_jupyter", {}):
            tails.add(update.at)
    return [
        (at, size, budget.bytes_per_second if at in tails else budget.part_bytes_per_second)
        for at, size in sizes.items()
    ]


def test_last_update_is_exact_and_every_update_has_its_plain_twin(
    server: StandInServer,
) -> None:
    sources = [scenarios.source("handbook.md", "The handbook.")]
    events = read(server, scenarios.normal(MARKDOWN, sources=sources))
    stream, display = replay(events, step=0.001)
    final = stream.builder.reply
    assert final.text == MARKDOWN and final.complete
    assert display.shown() == render_markdown(final, final=True)
    assert display.shown("text/plain") == render_plain(final, final=True)
    assert MARKDOWN.strip() in display.shown("text/plain")
    texts = [u.bundle for u in display.updates[:-1] if "Part 0" in u.bundle["text/markdown"]]
    assert texts, "no intermediate update showed the text"
    assert all("Part 0" in bundle["text/plain"] for bundle in texts), "text-only front ends"
    assert all("Sources" not in bundle["text/plain"] for bundle in texts), "sources come last"


@dataclass
class FirstDrawAwaited:
    """A real stream that, after its first event, waits until the view drew its text: so even a
    short answer has an intermediate update, whatever the speed of the machine."""

    stream: Any
    display: Display

    def __iter__(self) -> Iterator[Event]:
        for index, event in enumerate(self.stream):
            yield event
            if index == 0:
                with self.display.changed:
                    assert self.display.changed.wait_for(self.drew_text, 60)

    def drew_text(self) -> bool:
        return any("word00000" in u.bundle["text/markdown"] for u in self.display.updates)

    @property
    def reply(self) -> Reply:
        return self.stream.reply


def test_one_ticker_thread_draws_whatever_the_answer_length(server: StandInServer) -> None:
    for text in (WORDS[:200], WORDS * 4):
        server.queue(scenarios.normal(text))
        display = Display()
        with Client(server.base_url, api_key=server.api_key, timeout=30) as client:
            stream = client.stream_chat(server.slugs[0], "q", mode="chat")
            view = NotebookView("research", display=display)
            view.follow(FirstDrawAwaited(stream, display))
            view.close(stream.reply)
        *intermediate, final = display.updates
        assert intermediate, "the ticker never drew"
        assert {update.tickers for update in intermediate} == {1}
        assert len({update.thread for update in intermediate}) == 1
        assert final.thread == threading.get_ident() and final.tickers == 0  # joined
        assert text in final.bundle["text/plain"]
    assert not [t for t in threading.enumerate() if t.name == "allm-view-ticker"]


def test_words_before_a_pause_are_drawn_without_a_new_event() -> None:
    with StandInServer() as stalling:
        stalling.queue(scenarios.stall("Before the pause "))
        display = Display()
        failure: list[BaseException] = []
        with Client(stalling.base_url, api_key=stalling.api_key, timeout=60) as client:
            stream = client.stream_chat(stalling.slugs[0], "q", mode="chat")
            view = NotebookView("research", display=display)

            def cell() -> None:
                try:
                    view.follow(stream)
                except BaseException as error:  # the stall ends when the server stops
                    failure.append(error)

            reading = threading.Thread(target=cell)
            reading.start()
            with display.changed:
                shown = display.changed.wait_for(
                    lambda: any("pause" in u.bundle["text/markdown"] for u in display.updates),
                    timeout=60,  # a guard against hanging, not a speed limit
                )
            stalling.stop()
            reading.join()
            view.close(stream.reply)
    assert shown, "the partial answer was not drawn while the server paused"
    assert failure and isinstance(failure[0], ConnectionLostError)


def test_terminal_prints_the_answer_once_and_exactly(server: StandInServer) -> None:
    events = read(server, scenarios.normal(WORDS))
    clock = FakeClock()
    out = io.StringIO()
    view = TerminalView(stream=out, clock=clock, ticker=False)
    stream = Replayed(events, clock, 0.001, view)
    view.follow(stream)
    view.close(stream.builder.finish())
    printed = out.getvalue()
    assert printed.startswith(WORDS) and printed.count("word04999") == 1
    assert stream.snapshots <= len(events) * 0.001 / MIN_INTERVAL + 2


def test_pushed_events_are_drawn_by_the_ticker_from_any_thread(server: StandInServer) -> None:
    """The push API: the stream is read on another thread (as a background answer's is), which
    only calls ``arrived``; the view draws on its ticker and closes exact."""
    server.queue(scenarios.normal(WORDS))
    display = Display()
    with Client(server.base_url, api_key=server.api_key, timeout=30) as client:
        stream = client.stream_chat(server.slugs[0], "q", mode="chat")
        view = NotebookView("research", display=display, budget=FrontEndBudget())
        view.attach(stream)

        def read() -> None:
            for index, _ in enumerate(stream):
                view.arrived()
                if index == 0:  # an intermediate update, whatever the speed of the machine
                    with display.changed:
                        assert display.changed.wait_for(lambda: display.updates, 60)

        reader = threading.Thread(target=read)
        reader.start()
        reader.join()
        view.close(stream.reply)
    *intermediate, final = display.updates
    assert intermediate and reader.ident not in {update.thread for update in intermediate}
    assert final.bundle["text/markdown"] == render_markdown(stream.reply, final=True)


def test_views_streaming_at_once_share_one_front_end_budget(server: StandInServer) -> None:
    """Two answers at once: together they stay within the front end's bytes a second, where
    each alone would have taken all of it."""
    events = read(server, scenarios.normal(MARKDOWN))
    clock = FakeClock()
    budget = FrontEndBudget()
    shared: list[Update] = []
    builders = [ReplyBuilder(), ReplyBuilder()]
    views = []
    for builder in builders:
        view = NotebookView(
            "research",
            clock=clock,
            display=Display(clock, updates=shared),
            ticker=False,
            budget=budget,
        )
        view.attach(_Snapshot(builder))
        views.append(view)
    for event in events:
        clock.now += 0.0005
        for builder, view in zip(builders, views, strict=True):
            builder.add(event)
            view.arrived()
            view.draw_due()
    later = draws(shared, budget)[2:]  # after each view's first words, which never wait
    assert len(later) >= 5
    for (at, size, rate), (following, *_) in pairwise(later):
        assert size <= rate * (following - at) + 1
    for builder, view in zip(builders, views, strict=True):
        view.close(builder.finish())


@dataclass
class _Snapshot:
    builder: ReplyBuilder

    @property
    def reply(self) -> Reply:
        return self.builder.reply


def test_one_view_at_a_time_holds_the_front_end() -> None:
    budget = FrontEndBudget(bytes_per_second=1_000)
    assert budget.claim(0.0) == 0.0
    assert budget.claim(0.0) > 0  # held by the first caller until it spends
    assert budget.spend(500, 1.0, release=True) == 1.5
    assert budget.claim(1.2) == pytest.approx(0.3)
    assert budget.claim(1.5) == 0.0


def test_a_final_update_holds_the_next_answer_back_as_long_as_a_part_not_a_tail() -> None:
    """The final update is rendered once: after a long answer, the next one's updates wait only
    as long as the front end needs to render it once (the benchmark's slow answer after a 5 MB
    one waited 50 s at the tail's rate)."""
    clock = FakeClock()
    budget = FrontEndBudget(bytes_per_second=1_000, part_bytes_per_second=100_000)
    view = NotebookView(
        "research", clock=clock, display=Display(clock), ticker=False, budget=budget
    )
    view.close(Reply(text="x" * 50_000, complete=True))
    sent = budget.spend(0, clock(), release=False)
    assert 0.5 <= sent - clock() < 50_000 / 1_000  # the parts' rate, never the tail's


def test_a_long_answer_is_drawn_in_parts_and_only_the_tail_is_updated(
    server: StandInServer,
) -> None:
    long = MARKDOWN * 4  # about 900 KB
    sources = [scenarios.source("handbook.md", "The handbook.")]
    events = read(server, scenarios.normal(long, sources=sources))
    stream, display = replay(events, step=0.0001)
    final = stream.builder.reply
    outputs = len(display.outputs)
    assert 10 <= outputs <= MAX_PARTS
    assert display.shown() == render_markdown(final, final=True)
    for index in range(outputs - 1):  # a closed part is drawn for the last time
        opened_next = next(n for n, u in enumerate(display.updates) if u.output == index + 1)
        assert [u for u in display.updates[opened_next:] if u.output == index] == []
    parts = [display.last(index).metadata["allm_jupyter"] for index in range(outputs)]
    assert [part["part"] for part in parts] == list(range(outputs))
    assert len({part["answer"] for part in parts}) == 1
    assert parts[-1]["parts"] == outputs and parts[-1]["complete"] is True
    shown = [display.last(index).bundle["text/markdown"] for index in range(outputs)]
    assert [index for index, part in enumerate(shown) if "Sources (1)" in part] == [outputs - 1]
    largest_part = max(display.last(index).size for index in range(outputs - 1))
    tails = [u.size for u in display.updates if u.output == outputs - 1]
    assert max(tails) <= 2 * largest_part  # an update's cost stops growing with the answer


def test_a_jump_in_the_answer_closes_one_part_a_draw(server: StandInServer) -> None:
    """The kernel far ahead of the page (a long answer arrived between two draws): each draw
    closes one part and sends nothing else, never a burst of parts that JupyterLab would render
    in one long task, and the draws go on without new events until the tail is shown."""
    events = read(server, scenarios.normal(MARKDOWN * 4))
    clock = FakeClock()
    display = Display(clock)
    builder = ReplyBuilder()
    view = NotebookView(
        "research", clock=clock, display=display, ticker=False, budget=FrontEndBudget()
    )
    view.attach(_Snapshot(builder))
    builder.add(events[0])
    view.arrived()
    clock.now += view.draw_due()  # the first words
    first_words = len(display.updates)
    for event in events[1:]:
        builder.add(event)
    view.arrived()
    for _ in range(2 * MAX_PARTS):  # until the tail's draw
        clock.now += view.draw_due()
        drawn = display.updates[first_words:]
        if drawn and "parts" in drawn[-1].metadata["allm_jupyter"]:
            break
    closing = display.updates[first_words:-1]
    assert len(closing) == len(display.outputs) - 1 >= 10
    assert [update.output for update in closing] == list(range(len(closing)))
    assert len({update.at for update in closing}) == len(closing)  # one part a draw
    assert display.shown() == render_markdown(builder.reply)
    view.close(builder.finish())
    assert display.shown() == render_markdown(builder.reply, final=True)


def test_a_replaced_text_is_laid_out_again(server: StandInServer) -> None:
    """An agent's final text replaces what streamed: the parts follow the new text, and the
    outputs it no longer needs are emptied."""
    streamed = MARKDOWN * 2
    events = read(server, scenarios.agent("A short final answer.", deltas=words(streamed)))
    stream, display = replay(events, step=0.0001)
    final = stream.builder.reply
    assert final.text == "A short final answer."
    assert len(display.outputs) > 1
    assert display.shown() == render_markdown(final, final=True)
    assert display.last(0).bundle["text/markdown"].startswith("A short final answer.")
