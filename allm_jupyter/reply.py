"""The answer to one question, and the pure fold that builds it from stream events.

The fold encodes the reference's rules (§4.3, §11) once, so the client, the magic and the tests
agree: ``close: true`` is not the end; an agent's final ``textResponse`` *replaces* the streamed text
(the answer must never appear twice); an ``abort`` may be followed by a finalize; sources and metrics
come from the last non-empty list; a lone ``textResponse`` with no finalize is a query refusal.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import AllmError
from .events import (
    Abort,
    AgentThought,
    Event,
    FileDownload,
    FinalizeResponseStream,
    TextResponse,
    TextResponseChunk,
    UsageMetrics,
)
from .models import Metrics, Source

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


def split_reasoning(text: str) -> tuple[str | None, str]:
    """Split ``<think>…</think>`` reasoning from the answer: ``(reasoning, answer)``.

    Works on partial text while streaming: an unclosed ``<think>`` means everything so far is
    reasoning, and a tag cut off at the end of the text (``"<thi"``) is held back rather than shown.
    """
    stripped = text.lstrip()
    if not stripped.startswith(_THINK_OPEN):
        if _THINK_OPEN.startswith(stripped) and stripped:
            return "", ""
        return None, text
    body = stripped[len(_THINK_OPEN) :]
    end = body.find(_THINK_CLOSE)
    if end == -1:
        return _without_partial_tag(body, _THINK_CLOSE), ""
    return body[:end].strip(), body[end + len(_THINK_CLOSE) :].lstrip()


def _without_partial_tag(text: str, tag: str) -> str:
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return text[:-size]
    return text


@dataclass(frozen=True)
class Reply:
    """Everything the server said about one question, complete or (on error) partial."""

    text: str = ""
    sources: tuple[Source, ...] = ()
    metrics: Metrics | None = None
    chat_id: int | None = None
    thoughts: tuple[str, ...] = ()
    error: str | None = None
    workspace: str | None = None
    thread: str | None = None
    session_id: str | None = None
    refusal: bool = False
    """True for query mode's canned "no relevant information" answer: a normal reply."""
    complete: bool = False
    """True once the stream ended normally; False for partial replies kept on errors."""
    interrupted: bool = False
    turn_id: str | None = None
    files: tuple[FileDownload, ...] = ()
    outputs: tuple[Any, ...] = ()

    @property
    def answer(self) -> str:
        """The text without ``<think>`` reasoning."""
        return split_reasoning(self.text)[1]

    @property
    def reasoning(self) -> str | None:
        return split_reasoning(self.text)[0]

    def __str__(self) -> str:
        return self.answer


def with_error(so_far: Reply, error: Exception) -> Reply:
    """The reply to keep when an answer fails, so what arrived is never lost: the one a library
    error carries (what arrived before it) or ``so_far``, with ``error`` saying why (the
    server's own error, when it sent one, wins)."""
    if not isinstance(error, AllmError):  # a bug or an unmapped failure: its class says what
        return replace(so_far, error=f"{type(error).__name__}: {error}")
    carried = error.reply or so_far
    return carried if carried.error else replace(carried, error=error.message)


@dataclass
class ReplyBuilder:
    """Folds events into a :class:`Reply`, one event at a time, in time linear in the answer.

    Chunk texts are collected in a list and joined only when a snapshot (:attr:`reply`) is asked
    for, so a view drawing ~20 times a second costs one join per draw, not one copy per token.
    Snapshots may be taken from another thread (a view's ticker) while the stream's thread adds.
    """

    workspace: str | None = None
    thread: str | None = None
    session_id: str | None = None
    reset_only: bool = False
    """A ``reset`` with no message: its lone ``textResponse`` is a confirmation, not a refusal."""

    _parts: list[str] = field(default_factory=list)
    """The text so far: chunk texts not joined yet (a snapshot joins them into one)."""
    _sources: tuple[Source, ...] = ()
    _metrics: Metrics | None = None
    _chat_id: int | None = None
    _thoughts: list[str] = field(default_factory=list)
    _error: str | None = None
    _turn_id: str | None = None
    _files: list[FileDownload] = field(default_factory=list)
    _outputs: list[Any] = field(default_factory=list)
    _saw_chunk: bool = False
    _saw_whole_text: bool = False
    _saw_finalize: bool = False
    _complete: bool = False
    _interrupted: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, event: Event) -> None:
        if isinstance(event, TextResponseChunk) and not (
            event.sources or event.metrics or event.error
        ):
            # Nearly every event, so no lock: an append and attribute stores are atomic, and a
            # snapshot folds only the parts it counted (see _text), so none is lost.
            if event.text:
                self._parts.append(event.text)
                self._saw_chunk = True
            if not self._turn_id:
                self._turn_id = event.turn_id
            return
        with self._lock:
            turn_id = getattr(event, "turn_id", None)
            if turn_id and not self._turn_id:
                self._turn_id = turn_id
            self._add_other(event)

    def _add_other(self, event: Event) -> None:
        if isinstance(event, TextResponseChunk):
            if event.text:
                self._parts.append(event.text)
                self._saw_chunk = True
            self._take(event.sources, event.metrics, event.error)
        elif isinstance(event, TextResponse):
            if event.text is not None:
                # The agent's final message repeats the streamed deltas: replace, never append.
                self._parts = [event.text]
                self._saw_whole_text = True
            elif event.payload is not None:
                self._outputs.append(event.payload)
            self._take(event.sources, event.metrics, event.error)
        elif isinstance(event, FinalizeResponseStream):
            self._saw_finalize = True
            if event.chat_id is not None:
                self._chat_id = event.chat_id
            if event.text:
                self._parts = [event.text]
            if event.thoughts:
                self._thoughts = list(event.thoughts)
            self._outputs.extend(event.outputs)
            self._take(event.sources, event.metrics, event.error)
        elif isinstance(event, Abort):
            self._take([], event.metrics, event.error)
        elif isinstance(event, AgentThought):
            if event.thought:
                self._thoughts.append(event.thought)
        elif isinstance(event, UsageMetrics):
            self._take([], event.metrics, None)
        elif isinstance(event, FileDownload):
            self._files.append(event)

    def _take(
        self, sources: list[dict[str, Any]], metrics: dict[str, Any], error: str | None
    ) -> None:
        if sources:
            self._sources = Source.all_from_wire(sources)
        parsed = Metrics.from_wire(metrics)
        if parsed is not None:
            self._metrics = parsed
        if error and not self._error:
            self._error = error

    def _text(self) -> str:
        """The parts joined, and kept joined: replacing only the ``count`` parts it joined keeps
        any part appended meanwhile by the stream's thread."""
        parts = self._parts
        count = len(parts)
        if count > 1:
            parts[:count] = ["".join(parts[:count])]
        return parts[0] if count else ""

    def finish(self) -> Reply:
        """Mark the stream as ended normally (EOF) and return the final reply."""
        with self._lock:
            self._complete = True
        return self.reply

    def interrupt(self) -> Reply:
        """Mark the reply as stopped by the user and return it."""
        with self._lock:
            self._interrupted = True
        return self.reply

    @property
    def reply(self) -> Reply:
        """A snapshot of the reply so far (a join of the text: ask for it when you draw)."""
        with self._lock:
            refusal = (
                self._complete
                and self._saw_whole_text
                and not self._saw_chunk
                and not self._saw_finalize
                and not self._error
                and not self.reset_only
            )
            return Reply(
                text=self._text(),
                sources=self._sources,
                metrics=self._metrics,
                chat_id=self._chat_id,
                thoughts=tuple(self._thoughts),
                error=self._error,
                workspace=self.workspace,
                thread=self.thread,
                session_id=self.session_id,
                refusal=refusal,
                complete=self._complete,
                interrupted=self._interrupted,
                turn_id=self._turn_id,
                files=tuple(self._files),
                outputs=tuple(self._outputs),
            )


def fold(events: list[Event] | tuple[Event, ...], **context: Any) -> Reply:
    """Fold a whole, ended stream of events into its reply."""
    builder = ReplyBuilder(**context)
    for event in events:
        builder.add(event)
    return builder.finish()
