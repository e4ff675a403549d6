"""The live output of one question: the only code that calls ``display``/``update_display``.

A rich front end gets one Markdown output created with a display id and updated in place, at most
~20 times a second and less often for very long answers (each update re-sends and re-renders the
whole text, so a fixed rate would make the browser fall behind); the last update is exact. A plain
terminal gets the answer streamed to stdout as text instead.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TextIO

from ._terminal import terminal_text
from .render import render_markdown, render_plain, status_line
from .reply import Reply, split_reasoning

MIN_INTERVAL = 0.05
"""Seconds between two updates: at most 20 a second."""
BYTES_PER_SECOND = 1_000_000
"""For long answers the interval grows so no more than about this much Markdown is sent a second."""
TICK = 1.0
"""Seconds between redraws of the waiting line's elapsed time."""


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


class NotebookView:
    """One Markdown output, updated in place through a display handle.

    Updates are coalesced; a timer thread sends the last coalesced one when no further event
    comes (a model pausing mid-answer must not leave words unshown), and ticks the status line's
    elapsed seconds while the server has not answered yet. The timer runs in a copy of the cell's
    context so its messages belong to this cell.
    """

    def __init__(
        self,
        workspace: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        show_images: bool = False,
    ) -> None:
        from IPython.display import display

        self._workspace = workspace
        self._show_images = show_images
        self._clock = clock
        self._started = clock()
        self._last_update = -1.0
        self._showed_text = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._timer_id = 0
        self._pending: Reply | None = None
        self._latest = Reply(workspace=workspace)
        self._closed = False
        self.updates = 0
        status = status_line(workspace, 0.0)
        self._handle = display(self._bundle(status, ""), raw=True, display_id=True)  # type: ignore[no-untyped-call]
        self._schedule(TICK)

    @staticmethod
    def _bundle(markdown: str, plain: str) -> dict[str, str]:
        return {"text/markdown": markdown, "text/plain": plain}

    def show(self, reply: Reply) -> None:
        """Redraw with the partial reply now, or soon if the last redraw was too recent."""
        with self._lock:
            self._pending = self._latest = reply
            wait = self._wait(reply)
            if wait <= 0:
                self._flush()
            elif self._timer is None:
                self._schedule(wait)

    def _wait(self, reply: Reply) -> float:
        """Seconds until ``reply`` may be drawn; the first words are drawn at once."""
        if reply.text and not self._showed_text:
            return 0.0
        interval = max(MIN_INTERVAL, len(reply.text) / BYTES_PER_SECOND)
        return self._last_update + interval - self._clock()

    def _schedule(self, delay: float) -> None:
        self._cancel()
        context = contextvars.copy_context()
        self._timer = threading.Timer(delay, context.run, args=(self._on_timer, self._timer_id))
        self._timer.daemon = True
        self._timer.start()

    def _cancel(self) -> None:
        """Forget the pending timer; one that already fired sees a newer id and does nothing."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_id += 1

    def _on_timer(self, timer_id: int) -> None:
        with self._lock:
            if timer_id != self._timer_id or self._closed:
                return
            self._timer = None
            if self._pending is not None:
                self._flush()
            elif not self._showed_text:
                self._draw_status(self._latest)

    def _flush(self) -> None:
        reply, self._pending = self._pending, None
        assert reply is not None
        self._last_update = self._clock()
        if reply.text:
            if not self._showed_text:
                self._cancel()  # no more status ticks once the answer shows
            self._showed_text = True
            markdown = render_markdown(reply, show_images=self._show_images)
            self._update(markdown, render_plain(reply), reply)
        else:
            self._draw_status(reply)

    def _draw_status(self, reply: Reply) -> None:
        """The waiting line (elapsed seconds, latest agent thought); re-drawn every second."""
        status = status_line(self._workspace, self._clock() - self._started, reply.thoughts)
        markdown = render_markdown(reply, status=status, show_images=self._show_images)
        self._update(markdown, render_plain(reply), reply)
        if self._timer is None:
            self._schedule(TICK)

    def close(self, reply: Reply, *, error_below: bool = False) -> None:
        """The final, exact update: answer, sources, footer, and a marker if it is partial.

        ``error_below``: the cell fails with the error's sentence, so the output only marks the
        answer as partial instead of saying the sentence a second time.
        """
        with self._lock:
            self._closed = True
            self._cancel()
            markdown = render_markdown(
                reply, final=True, error_below=error_below, show_images=self._show_images
            )
            self._update(markdown, render_plain(reply, final=True, error_below=error_below), reply)

    def _update(self, markdown: str, plain: str, reply: Reply) -> None:
        self._handle.update(self._bundle(markdown, plain), raw=True, metadata=metadata_for(reply))
        self.updates += 1


class TerminalView:
    """Plain IPython in a terminal: print the answer as it grows, then sources and footer."""

    def __init__(self, *, stream: TextIO | None = None) -> None:
        self._out = stream or sys.stdout
        self._printed = ""

    def show(self, reply: Reply) -> None:
        answer = terminal_text(split_reasoning(reply.text)[1])
        if answer.startswith(self._printed):
            self._out.write(answer[len(self._printed) :])
        else:  # an agent's final text replaced what streamed: print it whole
            self._out.write("\n" + answer)
        self._printed = answer
        self._out.flush()

    def close(self, reply: Reply, *, error_below: bool = False) -> None:
        self.show(reply)
        tail = render_plain(replace(reply, text=""), final=True, error_below=error_below).strip()
        self._out.write("\n" + (tail + "\n" if tail else ""))
        self._out.flush()


View = NotebookView | TerminalView


def make_view(workspace: str, *, rich: bool, show_images: bool = False) -> View:
    return NotebookView(workspace, show_images=show_images) if rich else TerminalView()
