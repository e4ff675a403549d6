"""Stand-ins for IPython's ``display`` and the clock, shared by the live view's tests: they record
every update a view sends, to which output, when and from which thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Update:
    bundle: dict[str, str]
    at: float
    thread: int
    tickers: int
    """Ticker threads alive when this update was sent."""
    output: int = 0
    """Which output of the cell it updated, in order."""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.bundle["text/markdown"].encode())


@dataclass
class Output:
    """Stands in for one display handle."""

    display: Display
    index: int

    def update(self, bundle: dict[str, str], **options: Any) -> None:
        self.display.record(self.index, bundle, options.get("metadata", {}))


@dataclass
class Display:
    """Stands in for IPython's ``display``: records every update the view sends, to any of the
    outputs it made."""

    clock: FakeClock | None = None
    updates: list[Update] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    outputs: list[Output] = field(default_factory=list)

    def __call__(self, bundle: dict[str, str], **options: Any) -> Output:
        output = Output(self, len(self.outputs))
        self.outputs.append(output)
        output.update(bundle, **options)  # displaying is the output's first update
        return output

    def record(self, output: int, bundle: dict[str, str], metadata: dict[str, Any]) -> None:
        tickers = sum(t.name == "allm-view-ticker" for t in threading.enumerate())
        at = self.clock() if self.clock else 0.0
        update = Update(bundle, at, threading.get_ident(), tickers, output, metadata)
        with self.changed:
            self.updates.append(update)
            self.changed.notify_all()

    def last(self, output: int) -> Update:
        return next(u for u in reversed(self.updates) if u.output == output)

    def shown(self, mime: str = "text/markdown") -> str:
        """What the cell shows now: every output's last content, in order."""
        return "".join(self.last(index).bundle[mime] for index in range(len(self.outputs)))


@dataclass
class FakeClock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now
