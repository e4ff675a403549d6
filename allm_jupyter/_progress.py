"""A batch's progress display: one ipywidgets bar in a notebook, one line in a terminal.

Only ``batch`` imports this; ipywidgets is imported when a bar is made, so ``%load_ext`` and the
clients stay light.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Protocol, TextIO


@dataclass(frozen=True)
class Counts:
    """Where a batch stands, as its progress display shows it."""

    total: int
    done: int
    failed: int
    in_flight: int
    answered_now: int
    """Rows answered (or failed) in this run, for the rate."""
    elapsed: float
    stopped: bool = False

    @property
    def pending(self) -> int:
        return self.total - self.done - self.failed


class Progress(Protocol):
    """A progress display: drawn at most 10 times a second while the batch runs, closed once."""

    def show(self, counts: Counts) -> None: ...

    def close(self, counts: Counts) -> None: ...


def progress_line(counts: Counts) -> str:
    """One line of plain text: done / failed / in flight, answers a minute, time left."""
    parts = [f"{counts.done}/{counts.total} done"]
    if counts.failed:
        parts.append(f"{counts.failed} failed")
    if counts.in_flight:
        parts.append(f"{counts.in_flight} in flight")
    if counts.answered_now and counts.elapsed > 0:
        per_minute = counts.answered_now * 60 / counts.elapsed
        parts.append(f"{per_minute:.1f} answers/min")
        if counts.pending and not counts.stopped:
            parts.append(f"{_clock(counts.pending * 60 / per_minute)} left")
    if counts.stopped:
        parts.append("stopped")
    return " · ".join(parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def _in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel, whose front end can draw widgets."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def make_progress(total: int, *, forced: bool) -> WidgetProgress | LineProgress | None:
    """A bar in a kernel; a line on a terminal (or anywhere when ``forced``); else nothing."""
    if _in_kernel():
        return WidgetProgress(total)
    if forced or sys.stderr.isatty():
        return LineProgress(sys.stderr)
    return None


class WidgetProgress:
    """An ``IntProgress`` bar (done + failed of the total) and a plain-text label beside it."""

    def __init__(self, total: int) -> None:
        import ipywidgets  # only when a batch shows a bar: load speed
        from IPython.display import display  # only in a kernel: load speed

        self.bar = ipywidgets.IntProgress(value=0, min=0, max=max(total, 1))
        self.label = ipywidgets.Label(value="")
        self.box = ipywidgets.HBox([self.bar, self.label])
        display(self.box)  # type: ignore[no-untyped-call]

    def show(self, counts: Counts) -> None:
        self.bar.value = counts.done + counts.failed
        self.label.value = progress_line(counts)

    def close(self, counts: Counts) -> None:
        self.show(counts)
        style = "warning" if counts.stopped else "danger" if counts.failed else "success"
        self.bar.bar_style = style

    @property
    def state(self) -> dict[str, Any]:
        """What the bar shows (for tests and kernels without a front end)."""
        return {"value": self.bar.value, "max": self.bar.max, "text": self.label.value}


class LineProgress:
    """One line on a terminal, rewritten in place; ended with a newline when the batch ends."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._width = 0

    def show(self, counts: Counts) -> None:
        line = progress_line(counts)
        self._stream.write("\r" + line.ljust(self._width))
        self._stream.flush()
        self._width = max(self._width, len(line))

    def close(self, counts: Counts) -> None:
        self.show(counts)
        self._stream.write("\n")
        self._stream.flush()
