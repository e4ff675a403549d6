"""Typed events of AnythingLLM's ``stream-chat`` endpoints.

One dataclass per event type of the wire reference (§4.2). Parsing is tolerant on purpose: the real
server is inconsistent (the turn id is ``uuid`` on some events and ``id`` on others, ``error`` is
``false``, ``null`` or a string, every field may be missing), so :func:`parse_event` never raises and
an event type it does not know becomes an :class:`UnknownEvent`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._json import integer, items, mapping, text


def _turn_id(data: dict[str, Any]) -> str | None:
    value = data.get("uuid") or data.get("id")
    return str(value) if value is not None else None


def _error(data: dict[str, Any]) -> str | None:
    """A truthy string ``error`` is a failure; ``false``/``null``/``""`` are not."""
    value = data.get("error")
    if isinstance(value, str) and value.strip():
        return value
    return None


@dataclass(slots=True)
class TextResponseChunk:
    """A token delta. The last one of a normal turn is empty with ``close=True`` (not the end).

    Not frozen like the other events (read-only all the same): one is built per token, and a
    frozen dataclass's ``__init__`` costs three times as much.
    """

    turn_id: str | None
    text: str
    close: bool = False
    error: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TextResponse:
    """A whole text: a query refusal, a reset confirmation, or an agent's final answer."""

    turn_id: str | None
    text: str | None
    payload: Any = None
    """The raw ``textResponse`` when it is not a string (a skill's custom event object)."""
    sources: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class FinalizeResponseStream:
    """The last event of a turn that reached the LLM; carries chat id, metrics and sources."""

    turn_id: str | None
    chat_id: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    text: str | None = None
    thoughts: list[str] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class Abort:
    """A server-side failure; it may still be followed by a finalize (sequence E)."""

    turn_id: str | None
    error: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentThought:
    """An agent's status line ("Searching documents…"), shown while no answer text exists yet."""

    turn_id: str | None
    thought: str


@dataclass(frozen=True)
class UsageMetrics:
    """Agent token usage, sent before the final text (v1.13+)."""

    turn_id: str | None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileDownload:
    """A file an agent created; fetch it from ``/v1/document/generated-files/{storage_filename}``."""

    turn_id: str | None
    filename: str
    storage_filename: str
    file_size: int | None = None


@dataclass(frozen=True)
class UnknownEvent:
    """An event type this client does not know; kept, never fatal."""

    type: str
    data: dict[str, Any]


Event = (
    TextResponseChunk
    | TextResponse
    | FinalizeResponseStream
    | Abort
    | AgentThought
    | UsageMetrics
    | FileDownload
    | UnknownEvent
)


def _chunk(data: dict[str, Any]) -> TextResponseChunk:
    """Nearly every event is a chunk, so this one is built inline and positionally: per token,
    the stream's cost beyond reading it is mostly here and in the SSE decoding."""
    delta, error = data.get("textResponse"), data.get("error")
    sources, metrics = data.get("sources"), data.get("metrics")
    turn = data.get("uuid") or data.get("id")
    return TextResponseChunk(
        turn if turn is None or type(turn) is str else str(turn),
        delta if isinstance(delta, str) else "",
        bool(data.get("close")),
        _error(data) if error else None,
        items(sources) if sources else [],
        mapping(metrics) if metrics else {},
    )


def parse_event(data: dict[str, Any]) -> Event:
    """Turn one decoded ``data:`` JSON object into a typed event; never raises."""
    kind = data.get("type")
    if kind == "textResponseChunk":
        return _chunk(data)
    turn = _turn_id(data)
    if kind == "textResponse":
        raw = data.get("textResponse")
        return TextResponse(
            turn_id=turn,
            text=text(raw),
            payload=None if raw is None or isinstance(raw, str) else raw,
            sources=items(data.get("sources")),
            metrics=mapping(data.get("metrics")),
            error=_error(data),
        )
    if kind == "finalizeResponseStream":
        return FinalizeResponseStream(
            turn_id=turn,
            chat_id=integer(data.get("chatId")),
            metrics=mapping(data.get("metrics")),
            sources=items(data.get("sources")),
            text=text(data.get("textResponse")),
            thoughts=[str(t) for t in items(data.get("thoughts"))],
            outputs=items(data.get("outputs")),
            error=_error(data),
        )
    if kind == "abort":
        return Abort(
            turn_id=turn,
            error=_error(data) or "The server aborted the answer without a reason.",
            metrics=mapping(data.get("metrics")),
        )
    if kind == "agentThought":
        return AgentThought(turn_id=turn, thought=str(data.get("thought") or ""))
    if kind == "usageMetrics":
        return UsageMetrics(turn_id=turn, metrics=mapping(data.get("metrics")))
    if kind == "fileDownload":
        info = mapping(data.get("fileDownload"))
        return FileDownload(
            turn_id=turn,
            filename=str(info.get("filename") or ""),
            storage_filename=str(info.get("storageFilename") or ""),
            file_size=integer(info.get("fileSize")),
        )
    return UnknownEvent(type=str(kind), data=data)
