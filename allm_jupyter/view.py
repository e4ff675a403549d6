"""The live output of one question: the only code that calls ``display``/``update_display``.

A rich front end gets one Markdown output created with a display id and updated in place; a plain
terminal gets the answer streamed to stdout as text. Either way the reader only marks the view as
behind (:meth:`~_LiveView.arrived`, called by :meth:`~_LiveView.follow` on the cell's thread or by
whoever reads the stream, on any thread); one ticker thread per view takes a snapshot of the reply
and draws it when an update is due. Reading never waits for a draw, and the reply is copied once
per draw, not once per token.

Updates come at most 20 times a second, and for long answers less often: JupyterLab re-parses and
re-renders the whole Markdown of an output on every update, so after an update of N bytes the
next one, of any view of this kernel, waits N / :data:`MARKDOWN_BYTES_PER_SECOND` seconds
(:class:`FrontEndBudget`), and the page keeps up. So that this cost stops growing with the
answer, a long answer is shown in parts (:mod:`~allm_jupyter.segments`): a closed part is drawn
for the last time and only the tail keeps updating. The last update is exact.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol, TextIO

from ._terminal import terminal_text
from .render import (
    plain_answer_part,
    render_answer_part,
    render_markdown,
    render_plain,
    status_line,
)
from .reply import Reply, split_reasoning
from .segments import MAX_PARTS, next_cut, part_size

MIN_INTERVAL = 0.05
"""Seconds between two updates: at most 20 a second."""
MARKDOWN_BYTES_PER_SECOND = 100_000
"""What JupyterLab can re-render a second and stay fluid: while streaming, it redraws Markdown at
about 0.5 MB/s on a 2-core machine, so this keeps it busy a fifth of the time at most (frame gaps
and lag of ``benchmarks/run.py``). An update of N bytes of Markdown waits N / this seconds."""
PART_BYTES_PER_SECOND = 500_000
"""The pace of closing parts, one a draw: a closed part is rendered once, not again and again as
the tail is, and a page far behind the kernel must catch up while the answer streams, or the
final update brings the rest at once, in one long freeze. At this pace JupyterLab keeps up with
1 MB streamed as fast as the stand-in can (``benchmarks/run.py``, section ``long``), one part
(75 KB at most) a task."""
TICK = 1.0
"""Seconds between redraws of the waiting line's elapsed time."""


class HasReply(Protocol):
    """What a view draws from: anything whose ``reply`` is the reply so far (a
    :class:`~allm_jupyter.client.ChatStream`, a background job)."""

    @property
    def reply(self) -> Reply: ...


class LiveReply(HasReply, Protocol):
    """What :meth:`~_LiveView.follow` reads: a :class:`~allm_jupyter.client.ChatStream`, iterated
    once."""

    def __iter__(self) -> Iterator[Any]: ...


class FrontEndBudget:
    """The Markdown bytes a second the front end can re-render, shared by every live view of it.

    Each update of N bytes keeps the front end busy N / ``bytes_per_second`` seconds; no view
    draws while it is busy, so three answers streaming at once pace each other instead of each
    taking the whole budget. One view draws at a time (:meth:`claim` holds the turn until
    :meth:`spend`). Thread-safe: views call it from their ticker threads and from ``close``.
    Times are the caller's clock (``time.monotonic`` in the product).
    """

    def __init__(
        self,
        bytes_per_second: float = MARKDOWN_BYTES_PER_SECOND,
        part_bytes_per_second: float = PART_BYTES_PER_SECOND,
    ) -> None:
        self.bytes_per_second = bytes_per_second
        self.part_bytes_per_second = part_bytes_per_second
        """For a draw that only closes a part of a long answer (:data:`PART_BYTES_PER_SECOND`)."""
        self._lock = threading.Lock()
        self._free_at = float("-inf")
        self._held = False

    def claim(self, now: float) -> float:
        """0.0 when the caller may draw now (it holds the turn until :meth:`spend`); else the
        seconds to wait before asking again."""
        with self._lock:
            if self._held:
                return MIN_INTERVAL
            if now < self._free_at:
                return self._free_at - now
            self._held = True
            return 0.0

    def spend(self, size: int, now: float, *, release: bool, part: bool = False) -> float:
        """Record an update of ``size`` bytes drawn at ``now`` (claimed or not: the first words
        and the final update do not wait), give the turn back if ``release`` (the caller holds
        it); return when the front end is free again. ``part``: the draw only closed a part."""
        rate = self.part_bytes_per_second if part else self.bytes_per_second
        with self._lock:
            if release:
                self._held = False
            self._free_at = max(self._free_at, now) + size / rate
            return self._free_at


_PROCESS_BUDGET = FrontEndBudget()
"""The kernel's one front end (every browser tab on it renders the same outputs): one budget per
process, so that views made anywhere (a magic, a background job, a second ``Context``) share it."""


def process_budget() -> FrontEndBudget:
    """The budget every notebook view of this process shares unless given its own."""
    return _PROCESS_BUDGET


def metadata_for(reply: Reply) -> dict[str, Any]:
    """What a notebook keeps beside the output, under the ``allm_jupyter`` key."""
    return {
        "allm_jupyter": {
            "workspace": reply.workspace,
            "thread": reply.thread,
            "session_id": reply.session_id,
            "chat_id": reply.chat_id,
            "metrics": dict(reply.metrics.raw) if reply.metrics else None,
            "complete": reply.complete,
            "error": reply.error,
        }
    }


@dataclass(frozen=True)
class Drawn:
    """What one draw sent to the front end."""

    size: int = 0
    """Bytes of Markdown."""
    part_only: bool = False
    """It only closed a part of a long answer: more is due at once, at the parts' pace."""


def _ipython_display() -> Callable[..., Any]:
    from IPython.display import display

    return display


class _Ticker:
    """One long-lived thread that calls ``step`` and sleeps as long as it says, or until woken.

    It runs in a copy of the cell's context, so its display messages belong to that cell.
    """

    def __init__(self, step: Callable[[], float]) -> None:
        self._step = step
        self._wake = threading.Event()
        self._stopping = False
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name="allm-view-ticker", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before the step: a wake during it is not lost
            delay = self._step()
            self._wake.wait(delay)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop, and wait for a draw in progress: nothing may follow the final update."""
        self._stopping = True
        self._wake.set()
        self._thread.join()


class _LiveView:
    """Pacing and the ticker, shared by both views; they say how to draw (``_draw``, …).

    Fed either by :meth:`follow` (reads a stream on the calling thread) or by pushes:
    :meth:`attach` a source once, call :meth:`arrived` whenever events arrived, then :meth:`close`.
    """

    def __init__(
        self, *, clock: Callable[[], float], ticker: bool, budget: FrontEndBudget | None
    ) -> None:
        self._clock = clock
        self._started = clock()
        self._budget = budget
        """Shared with the other views of the front end; None: only the 20 a second limit."""
        self._lock = threading.Lock()  # one drawer at a time: the ticker, or close()
        self._source: HasReply | None = None
        self._behind = False
        """Events arrived since the last snapshot (set by the reading thread, cleared by draws)."""
        self._showed_text = False
        self._closed = False
        self._next_draw = self._started
        self._holding = False
        """This view holds the front end's turn (between a claim and its draw)."""
        self._ticker = _Ticker(self.draw_due) if ticker else None

    def attach(self, source: HasReply) -> None:
        """Draw from ``source.reply`` from now on; :meth:`arrived` says when it changed."""
        self._source = source

    def arrived(self) -> None:
        """Events arrived: the next due update draws them. Cheap and non-blocking, safe from any
        thread (an asyncio loop's too): it sets a flag, and wakes the ticker for the first words."""
        self._behind = True
        if not self._showed_text and self._ticker is not None:
            self._ticker.wake()  # the first words, or an agent's thought, show at once

    def follow(self, stream: LiveReply) -> None:
        """Read ``stream`` to its end on this thread; the ticker draws what arrived when due."""
        self.attach(stream)
        for _ in stream:
            self.arrived()

    def draw_due(self) -> float:
        """Draw if an update is due; return the seconds until it is worth asking again."""
        with self._lock:
            if self._closed:
                return TICK
            reply = None
            wait = 0.0 if not self._showed_text else self._turn()  # the first words at once
            if self._behind and self._source is not None and wait == 0:
                self._behind = False
                reply = self._source.reply
                drawn = Drawn()
                try:
                    if reply.text:
                        self._showed_text = True
                        drawn = self._draw(reply)
                finally:
                    self._spend(drawn)
                self._behind = self._behind or drawn.part_only
            if not self._showed_text:
                return self._wait(reply)
            return max(MIN_INTERVAL, wait, self._next_draw - self._clock())

    def _turn(self) -> float:
        """0.0 when this view may draw now (and then holds the front end's turn until
        :meth:`_spend`); else the seconds until it is worth asking again."""
        wait = self._next_draw - self._clock()
        if wait > 0 or not self._behind or self._budget is None:
            return max(0.0, wait)
        wait = self._budget.claim(self._clock())
        self._holding = wait == 0
        return wait

    def _spend(self, drawn: Drawn) -> None:
        """A draw is done (or none was made): pace this view, charge the front end and give its
        turn back."""
        now = self._clock()
        self._next_draw = now + MIN_INTERVAL
        if self._budget is not None:
            free_at = self._budget.spend(
                drawn.size, now, release=self._holding, part=drawn.part_only
            )
            self._next_draw = max(self._next_draw, free_at)
        self._holding = False

    def close(self, reply: Reply, *, error_below: bool = False) -> None:
        """The final, exact update: answer, sources, footer, and a marker if it is partial.

        ``error_below``: the cell fails with the error's sentence, so the output only marks the
        answer as partial instead of saying the sentence a second time.
        """
        if self._ticker is not None:
            self._ticker.stop()
        with self._lock:
            self._closed = True
            size = self._draw_final(reply, error_below)
            if self._budget is not None:  # the next answer's pace starts from this one
                # Rendered once, as a closed part is: charged at the parts' rate, or one long
                # answer would hold every later answer's updates back for seconds.
                self._budget.spend(size, self._clock(), release=False, part=True)

    def _draw(self, reply: Reply) -> Drawn:
        """Show the partial ``reply``; say what was sent to the front end."""
        raise NotImplementedError

    def _wait(self, reply: Reply | None) -> float:
        """Before any text: show that we wait (``reply``: new events without text); return the
        seconds until the next redraw of that."""
        return TICK

    def _draw_final(self, reply: Reply, error_below: bool) -> int:
        """The final update; return the bytes sent to the front end."""
        raise NotImplementedError


class NotebookView(_LiveView):
    """Markdown outputs updated in place through display handles: one for most answers, and for a
    long one a few parts, each drawn for the last time once closed (:mod:`~allm_jupyter.segments`),
    and the open tail, the only output still updated. So an update's cost stops growing with the
    answer, and the parts, joined, are exactly the one output a short answer would be.

    While the server has not answered, the waiting line ticks its elapsed seconds (and shows an
    agent's latest thought). Every update carries the Markdown and its plain-text twin, so text-only
    front ends (jupyter console, the demo's echo) see the answer grow too; the pacing keeps that
    to a few updates for a long answer. An error is said once, by the final update.

    ``budget``: the front end's, shared with the other views (default: :func:`process_budget`).
    """

    def __init__(
        self,
        workspace: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        display: Callable[..., Any] | None = None,
        ticker: bool = True,
        show_images: bool = False,
        budget: FrontEndBudget | None = None,
        waiting_line: Callable[[float, Sequence[str]], str] | None = None,
    ) -> None:
        if display is None:
            display = _ipython_display()
        self._workspace = workspace
        self._waiting_line = waiting_line or partial(status_line, workspace)
        """The line shown before the first words, from the elapsed seconds and the agent's
        thoughts (a background answer says that it is one, and how to stop it)."""
        self._show_images = show_images
        self._waiting = Reply(workspace=workspace)
        self._next_tick = clock()  # the ticker's first step shows the waiting line at once
        self._display = display
        self._answer_id = uuid.uuid4().hex
        """Names the outputs of this answer in their metadata, so a tool can join them."""
        self._outputs: list[Any] = []
        """Display handles, one per part, made as needed (the first by the first update, so the
        cell's thread never waits for that message); the last one in use is the live tail."""
        self._shown = 0
        """Outputs showing something: more than the parts in use only after a replaced text."""
        self._cuts: list[int] = []
        """Where each closed part ends, as an offset in the answer."""
        self._closed_text = ""
        """The reply's text up to the last cut: if an agent's final text replaces what streamed,
        the parts are laid out again."""
        super().__init__(clock=clock, ticker=ticker, budget=budget or process_budget())

    @staticmethod
    def _bundle(markdown: str, plain: str) -> dict[str, str]:
        return {"text/markdown": markdown, "text/plain": plain}

    def _draw(self, reply: Reply) -> Drawn:
        if reply.error:  # said once, at the end: below the output when the cell fails
            reply = replace(reply, error=None)
        closed = self._close_parts(reply, at_most=1)
        if closed:  # and nothing else: see _close_parts
            return Drawn(closed, part_only=True)
        return Drawn(self._draw_tail(reply, final=False, error_below=False))

    def _wait(self, reply: Reply | None) -> float:
        now = self._clock()
        if reply is not None or now >= self._next_tick:
            self._waiting = reply or self._waiting
            status = self._waiting_line(now - self._started, self._waiting.thoughts)
            markdown = render_markdown(self._waiting, status=status, show_images=self._show_images)
            self._update(0, markdown, render_plain(self._waiting), self._tail_metadata(0, reply))
            self._next_tick = now + TICK
        return self._next_tick - now

    def _draw_final(self, reply: Reply, error_below: bool) -> int:
        closed = self._close_parts(reply, at_most=MAX_PARTS)  # exact at once, however far behind
        return closed + self._draw_tail(reply, final=True, error_below=error_below)

    def _draw_tail(self, reply: Reply, *, final: bool, error_below: bool) -> int:
        """Draw the tail after the closed parts; return the bytes sent."""
        tail = len(self._cuts)
        answer_from = self._cuts[-1] if self._cuts else 0
        markdown = render_markdown(
            reply,
            final=final,
            error_below=error_below,
            show_images=self._show_images,
            answer_from=answer_from,
        )
        plain = render_plain(reply, final=final, error_below=error_below, answer_from=answer_from)
        self._update(tail, markdown, plain, self._tail_metadata(tail, reply))
        for stale in range(tail + 1, self._shown):  # what a replaced text had laid out further
            self._update(stale, "", "", {})
        self._shown = tail + 1
        return len(markdown.encode())

    def _close_parts(self, reply: Reply, *, at_most: int) -> int:
        """Draw, for the last time, up to ``at_most`` parts that are now long enough and closed;
        return the bytes sent.

        While streaming, a draw closes one part at most and sends nothing else: when the kernel
        is far ahead of the page, several parts at once reach JupyterLab as a burst that it
        renders in one long task, a frozen page. One part a draw, paced by the budget at
        :data:`PART_BYTES_PER_SECOND`, is one short task each; the tail is drawn once no part is
        left to close.
        """
        if not reply.text.startswith(self._closed_text) or (reply.refusal and self._cuts):
            self._cuts, self._closed_text = [], ""  # lay the new text out again, from part 0
        if reply.refusal:  # short, and all one block quote
            return 0
        answer = split_reasoning(reply.text)[1]
        sent = 0
        for _ in range(min(at_most, MAX_PARTS - 1 - len(self._cuts))):
            start = self._cuts[-1] if self._cuts else 0
            cut = next_cut(answer, start, part_size(start))
            if cut is None:
                break
            part = len(self._cuts)
            markdown = render_answer_part(reply, start, cut, show_images=self._show_images)
            plain = plain_answer_part(reply, start, cut)
            self._update(part, markdown, plain, self._part_metadata(part))
            self._cuts.append(cut)
            self._closed_text = reply.text[: len(reply.text) - len(answer) + cut]
            sent += len(markdown.encode())
        return sent

    def _part_metadata(self, part: int) -> dict[str, Any]:
        return {"allm_jupyter": {"answer": self._answer_id, "part": part}}

    def _tail_metadata(self, part: int, reply: Reply | None) -> dict[str, Any]:
        """The tail's metadata: the reply's, and how many parts make the answer."""
        metadata = metadata_for(reply or self._waiting)
        metadata["allm_jupyter"].update(self._part_metadata(part)["allm_jupyter"])
        metadata["allm_jupyter"]["parts"] = part + 1
        return metadata

    def _update(self, index: int, markdown: str, plain: str, metadata: dict[str, Any]) -> None:
        """Show this in output ``index``, made if it is new (outputs are only ever appended)."""
        bundle = self._bundle(markdown, plain)
        if index < len(self._outputs):
            self._outputs[index].update(bundle, raw=True, metadata=metadata)
        else:
            handle = self._display(bundle, raw=True, metadata=metadata, display_id=True)
            self._outputs.append(handle)


class TerminalView(_LiveView):
    """Plain IPython in a terminal: print the answer as it grows, then sources and footer."""

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        ticker: bool = True,
    ) -> None:
        self._out = stream or sys.stdout
        self._printed = ""
        super().__init__(clock=clock, ticker=ticker, budget=None)  # a terminal keeps up

    def _draw(self, reply: Reply) -> Drawn:
        answer = terminal_text(split_reasoning(reply.text)[1])
        if answer.startswith(self._printed):
            self._out.write(answer[len(self._printed) :])
        else:  # an agent's final text replaced what streamed: print it whole
            self._out.write("\n" + answer)
        self._printed = answer
        self._out.flush()
        return Drawn()

    def _draw_final(self, reply: Reply, error_below: bool) -> int:
        self._draw(reply)
        tail = render_plain(reply, final=True, error_below=error_below, with_answer=False).strip()
        self._out.write("\n" + (tail + "\n" if tail else ""))
        self._out.flush()
        return 0


View = NotebookView | TerminalView


def make_view(
    workspace: str,
    *,
    rich: bool,
    show_images: bool = False,
    budget: FrontEndBudget | None = None,
    waiting_line: Callable[[float, Sequence[str]], str] | None = None,
) -> View:
    """A notebook view for rich front ends, else a terminal one; ``budget``: the front end's
    Markdown budget to share (default: the process's, :func:`process_budget`);
    ``waiting_line(elapsed, thoughts)``: the notebook's line before the first words."""
    if rich:
        return NotebookView(
            workspace, show_images=show_images, budget=budget, waiting_line=waiting_line
        )
    return TerminalView()
