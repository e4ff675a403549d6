"""Scripted answers the stand-in server plays on one chat request.

A :class:`Scenario` is a list of steps for the streaming route and one for the blocking ``/chat``
route. The builders below reproduce every wire sequence of the reference (A to F) with the exact key
order of the captures, plus transport faults a robust client must survive. Each builder exposes
the text a correct client ends up showing (``expected_text``), so tests never repeat it.

Values that differ per turn (the turn uuid, the saved chat id) are :class:`Slot` placeholders,
filled in when the scenario is played: one scenario object can be queued many times.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from itertools import pairwise
from typing import Any

__all__ = [
    "MODEL",
    "NGINX_502_PAGE",
    "REFUSAL_TEXT",
    "RESET_TEXT",
    "SAMPLE_SOURCES",
    "Drop",
    "Respond",
    "Save",
    "Scenario",
    "Send",
    "SendRaw",
    "SendSplit",
    "Sleep",
    "Slot",
    "Stall",
    "Step",
    "abort_before_tokens",
    "agent",
    "agent_failure",
    "drop",
    "fill",
    "http_error",
    "huge",
    "iso_timestamp",
    "js_json",
    "line_separator",
    "malformed_line",
    "midstream_abort",
    "nginx_bad_gateway",
    "non_streaming",
    "normal",
    "ollama_error",
    "paced",
    "reasoning",
    "refusal",
    "reset_confirmation",
    "source",
    "split_reads",
    "sse_bytes",
    "stall",
    "throttled",
    "trickle",
    "unknown_event",
    "words",
]

MODEL = "fake-model"
REFUSAL_TEXT = "There is no relevant information in this workspace to answer your query."
RESET_TEXT = "Chat history was reset!"
NGINX_502_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.27.4</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_CHAT_PROVIDER = "GenericOpenAiLLM"
_AGENT_PROVIDER = "GenericOpenAiProvider"
# What the fake backend reports as prompt usage on non-streamed completions, and AnythingLLM's own
# estimate on streamed ones (the values of the captures).
_BACKEND_PROMPT_TOKENS = 10
_ESTIMATED_PROMPT_TOKENS = 104
_OUTPUT_TPS = 42.0
"""A plausible local model's speed, so demo footers read like real ones."""
_SEED_PUBLISHED = "5/1/2026, 10:00:00 AM"

Event = Mapping[str, Any]


class Slot(Enum):
    """A per-turn value, filled in at play time so that a scenario can be replayed."""

    TURN_ID = "turn-id"
    CHAT_ID = "chat-id"


@dataclass(frozen=True)
class Send:
    """Write one SSE event (``data: <json>\\n\\n``) as one HTTP chunk."""

    event: Event


@dataclass(frozen=True)
class SendSplit:
    """Write one SSE event as several flushed HTTP chunks of at most ``piece`` bytes.

    The cuts always include one inside the first multi-byte UTF-8 character and one between the
    two closing newlines, the two places where naive SSE decoders break.
    """

    event: Event
    piece: int = 7
    pause: float = 0.001

    def pieces(self, data: bytes) -> list[bytes]:
        """``data`` (the encoded event) cut every ``piece`` bytes plus the two tricky places."""
        cuts = set(range(self.piece, len(data), self.piece)) | {len(data) - 1}
        lead = next((index for index, byte in enumerate(data) if byte >= 0xC0), None)
        if lead is not None:
            cuts.add(lead + 1)
        bounds = [0, *sorted(cut for cut in cuts if 0 < cut < len(data)), len(data)]
        return [data[start:end] for start, end in pairwise(bounds)]


@dataclass(frozen=True)
class SendRaw:
    """Write bytes as one HTTP chunk, unchecked (for lines that are not valid events)."""

    data: bytes


@dataclass(frozen=True)
class Sleep:
    """Pause the response; ends early (closing the connection) when the server stops."""

    seconds: float


@dataclass(frozen=True)
class Stall:
    """Send nothing more; keep the connection open until the client leaves or the server stops."""


@dataclass(frozen=True)
class Drop:
    """Close the socket in the middle of an HTTP chunk: ``tail`` is sent, the rest never is."""

    tail: bytes = b'data: {"uuid":"'


@dataclass(frozen=True)
class Respond:
    """Answer with one complete, non-streamed response (a JSON object or raw bytes)."""

    status: int
    body: Event | bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    """Extra response headers (a proxy's ``Retry-After``)."""


@dataclass(frozen=True)
class Save:
    """Store the chat row of this turn. Builders place it before the turn's last event, so a
    client that has read the whole answer finds the row in history (a stall saves after the
    client hung up, as the real server does)."""

    text: str
    sources: Sequence[Event] = ()
    metrics: Event = field(default_factory=dict)
    include: bool = True
    thoughts: Sequence[str] = ()
    outputs: Sequence[Event] = ()


Step = Send | SendSplit | SendRaw | Sleep | Stall | Drop | Respond | Save


@dataclass(frozen=True)
class Scenario:
    """What the server does for one chat request, on the streaming and on the blocking route."""

    name: str
    stream: tuple[Step, ...]
    sync: tuple[Step, ...]
    expected_text: str = ""
    expected_error: str | None = None
    sources: tuple[Event, ...] = ()


# --- encoding -------------------------------------------------------------------------------


def _js_value(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {key: _js_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_js_value(item) for item in value]
    return value


def js_json(value: Any) -> str:
    """Serialise like JavaScript's ``JSON.stringify``: compact, raw non-ASCII (U+2028 included),
    ``3000`` rather than ``3000.0``, non-finite numbers as ``null``."""
    return json.dumps(_js_value(value), ensure_ascii=False, separators=(",", ":"))


def encode_json(value: Any) -> bytes:
    """UTF-8 bytes of :func:`js_json`; lone surrogates come out as ``\\udXXX`` escapes like JS."""
    return js_json(value).encode("utf-8", "backslashreplace")


def fill(value: Any, turn_id: str, chat_id: int | None) -> Any:
    """Replace the :class:`Slot` placeholders of an event (top-level values) for one turn."""
    if not isinstance(value, Mapping):
        return value
    if chat_id is None and Slot.CHAT_ID in value.values():
        raise ValueError("the scenario sends Slot.CHAT_ID before any Save step")
    slots = {Slot.TURN_ID: turn_id, Slot.CHAT_ID: chat_id}
    return {key: slots[item] if isinstance(item, Slot) else item for key, item in value.items()}


def sse_bytes(event: Event) -> bytes:
    """One SSE event exactly as AnythingLLM frames it."""
    return b"data: " + encode_json(event) + b"\n\n"


# --- wire pieces ----------------------------------------------------------------------------


def iso_timestamp() -> str:
    """Now, as JavaScript's ``Date.toISOString`` writes it (metrics, Prisma rows)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stream_metrics(completion: int, prompt: int) -> dict[str, Any]:
    """Metrics of a streamed chat turn, in the key order of the captures."""
    return {
        "completion_tokens": completion,
        "prompt_tokens": prompt,
        "total_tokens": completion + prompt,
        "outputTps": _OUTPUT_TPS,
        "duration": round(completion / _OUTPUT_TPS, 3),
        "model": MODEL,
        "provider": _CHAT_PROVIDER,
        "timestamp": iso_timestamp(),
    }


def _completion_metrics(completion: int, provider: str = _CHAT_PROVIDER) -> dict[str, Any]:
    """Metrics of a non-streamed completion (blocking chat, agent), in the captures' key order."""
    return {
        "prompt_tokens": _BACKEND_PROMPT_TOKENS,
        "completion_tokens": completion,
        "total_tokens": _BACKEND_PROMPT_TOKENS + completion,
        "duration": round(completion / _OUTPUT_TPS, 3),
        "outputTps": _OUTPUT_TPS,
        "model": MODEL,
        "provider": provider,
        "timestamp": iso_timestamp(),
    }


def _chunk(delta: str, *, close: bool = False, error: bool | str = False) -> dict[str, Any]:
    return {
        "uuid": Slot.TURN_ID,
        "sources": [],
        "type": "textResponseChunk",
        "textResponse": delta,
        "close": close,
        "error": error,
    }


def _finalize(metrics: Event | None = None, sources: Sequence[Event] = ()) -> dict[str, Any]:
    """``finalizeResponseStream``; without metrics it is the bare one sent when no text came."""
    event: dict[str, Any] = {
        "uuid": Slot.TURN_ID,
        "type": "finalizeResponseStream",
        "close": True,
        "error": False,
    }
    if metrics is not None:
        event |= {"chatId": Slot.CHAT_ID, "metrics": metrics, "sources": list(sources)}
    return event


def _abort(error: str, key: str = "id") -> dict[str, Any]:
    return {
        key: Slot.TURN_ID,
        "type": "abort",
        "textResponse": None,
        "sources": [],
        "close": True,
        "error": error,
    }


def _one_shot(text: str, *, attachments: bool) -> dict[str, Any]:
    """The single ``textResponse`` event of a refusal or a reset confirmation."""
    event: dict[str, Any] = {
        "id": Slot.TURN_ID,
        "type": "textResponse",
        "textResponse": text,
        "sources": [],
    }
    if attachments:
        event["attachments"] = []
    return event | {"close": True, "error": None, "metrics": {}}


def _sync_answer(text: str, sources: Sequence[Event], metrics: Event) -> dict[str, Any]:
    return {
        "id": Slot.TURN_ID,
        "type": "textResponse",
        "close": True,
        "error": None,
        "chatId": Slot.CHAT_ID,
        "textResponse": text,
        "sources": list(sources),
        "metrics": metrics,
    }


def _sync_agent(
    text: str,
    sources: Sequence[Event],
    thoughts: Sequence[str],
    outputs: Sequence[Event],
    metrics: Event,
) -> dict[str, Any]:
    return {
        "id": Slot.TURN_ID,
        "type": "textResponse",
        "sources": list(sources),
        "close": True,
        "error": None,
        "textResponse": text,
        "thoughts": list(thoughts),
        "outputs": list(outputs),
        "metrics": metrics,
    }


def words(text: str) -> list[str]:
    """Split like the fake LLM of the captures: one delta per space-separated word, the space
    kept attached to the word before it."""
    parts = text.split(" ")
    deltas = [part + " " for part in parts[:-1]]
    if parts[-1]:
        deltas.append(parts[-1])
    return deltas


def source(
    title: str,
    text: str,
    *,
    score: float = 0.75,
    vector_id: str = "00000000-0000-4000-8000-000000000000",
    url: str | None = None,
    doc_author: str = "Unknown",
    description: str = "Unknown",
    doc_source: str = "a text file uploaded by the user.",
    chunk_source: str = "",
    published: str = _SEED_PUBLISHED,
    word_count: int | None = None,
    token_count: int | None = None,
) -> dict[str, Any]:
    """A retrieved-chunk source exactly as the server sends it (LanceDB shape, key order of the
    captures); ``text`` is the chunk body, the ``<document_metadata>`` header is added here."""
    header = (
        f"<document_metadata>\nsourceDocument: {title}\npublished: {published}\n"
        "</document_metadata>\n\n"
    )
    return {
        "id": vector_id,
        "url": url if url is not None else f"file:///app/collector/hotdir/{title}",
        "title": title,
        "docAuthor": doc_author,
        "description": description,
        "docSource": doc_source,
        "chunkSource": chunk_source,
        "published": published,
        "wordCount": word_count if word_count is not None else len(text.split(" ")),
        "token_count_estimate": token_count
        if token_count is not None
        else math.ceil(len(text) / 4),
        "text": header + text,
        "_distance": 1 - score,
        "score": score,
    }


# Two ready-made sources for scenarios that need some (best first, as the server orders them).
SAMPLE_SOURCES: tuple[dict[str, Any], ...] = (
    source(
        "team-handbook-onboarding.md",
        "New team members get their laptop, building badge and accounts on their first day.",
        score=0.82,
        vector_id="0b6f0a8e-3c1d-4f3e-9a57-1f2d3c4b5a60",
    ),
    source(
        "project-glossary.md",
        "A workspace is a container of documents and chats with its own settings.",
        score=0.41,
        vector_id="7d2e4c1a-9b8f-4e6d-8c5b-2a1f0e9d8c71",
    ),
)


# --- builders: the reference sequences ------------------------------------------------------


def _answer(
    name: str,
    text: str,
    deltas: Sequence[str],
    *,
    sources: Sequence[Event] = (),
    prompt_tokens: int = _ESTIMATED_PROMPT_TOKENS,
    delay: float = 0.0,
    piece: int | None = None,
) -> Scenario:
    """Sequence A, optionally trickled (``delay``) or written in small pieces (``piece``)."""
    metrics = _stream_metrics(len(deltas), prompt_tokens)
    events = [_chunk(delta) for delta in deltas] + [_chunk("", close=True)]
    stream: list[Step] = []
    for event in events:
        if delay and event["textResponse"]:
            stream.append(Sleep(delay))
        stream.append(Send(event) if piece is None else SendSplit(event, piece))
    final = _finalize(metrics, sources)
    stream += [
        Save(text, sources, metrics),
        Send(final) if piece is None else SendSplit(final, piece),
    ]
    completion = _completion_metrics(len(deltas))
    sync: list[Step] = [Sleep(delay * len(deltas))] if delay else []
    sync += [Save(text, sources, completion), Respond(200, _sync_answer(text, sources, completion))]
    return Scenario(name, tuple(stream), tuple(sync), expected_text=text, sources=tuple(sources))


def normal(
    text: str, *, sources: Sequence[Event] = (), prompt_tokens: int = _ESTIMATED_PROMPT_TOKENS
) -> Scenario:
    """A. A normal chat/RAG answer: one delta per word, the empty ``close`` chunk, finalize."""
    return _answer("normal", text, words(text), sources=sources, prompt_tokens=prompt_tokens)


def reasoning(
    thinking: str = "The user wants a short answer.",
    answer: str = "Here is the short answer.",
    *,
    sources: Sequence[Event] = (),
) -> Scenario:
    """A with inline reasoning: the first delta starts with ``<think>``, a later delta is exactly
    ``</think>``; ``expected_text`` keeps the tags, as the saved history does."""
    thought = words(thinking)
    deltas = [f"<think>{thought[0]}", *thought[1:], "</think>", *words(answer)]
    return _answer("reasoning", f"<think>{thinking}</think>{answer}", deltas, sources=sources)


def non_streaming(text: str, *, sources: Sequence[Event] = ()) -> Scenario:
    """A for a provider that cannot stream: one chunk with the whole text, then finalize."""
    metrics = _completion_metrics(len(words(text)))
    chunk = {**_chunk(text, close=True), "sources": list(sources), "metrics": metrics}
    stream = (Send(chunk), Save(text, sources, metrics), Send(_finalize(metrics, sources)))
    sync = (Save(text, sources, metrics), Respond(200, _sync_answer(text, sources, metrics)))
    return Scenario("non_streaming", stream, sync, expected_text=text, sources=tuple(sources))


def refusal(text: str = REFUSAL_TEXT, *, empty_workspace: bool = True) -> Scenario:
    """B. Query mode with nothing relevant: one ``textResponse``, no finalize, saved hidden.

    The event has ``attachments: []`` when the workspace has no vectors at all (as captured) and
    not when a search simply found nothing (the other branch of the server code).
    """
    save = Save(text, include=False)
    sync_body = {
        "id": Slot.TURN_ID,
        "type": "textResponse",
        "sources": [],
        "close": True,
        "error": None,
        "textResponse": text,
        "metrics": {},
    }
    stream = (save, Send(_one_shot(text, attachments=empty_workspace)))
    return Scenario("refusal", stream, (save, Respond(200, sync_body)), expected_text=text)


def reset_confirmation() -> Scenario:
    """C. ``reset: true`` without a message: one confirmation event, nothing saved."""
    sync_body = {
        "id": Slot.TURN_ID,
        "type": "textResponse",
        "textResponse": RESET_TEXT,
        "sources": [],
        "close": True,
        "error": None,
        "metrics": {},
    }
    stream = (Send(_one_shot(RESET_TEXT, attachments=True)),)
    return Scenario(
        "reset_confirmation", stream, (Respond(200, sync_body),), expected_text=RESET_TEXT
    )


def abort_before_tokens(error: str = "500 fake upstream exploded") -> Scenario:
    """D. Failure before any token: one ``abort`` keyed ``id``; the blocking route answers 500."""
    return Scenario(
        "abort_before_tokens",
        (Send(_abort(error)),),
        (Respond(500, _abort(error)),),
        expected_error=error,
    )


def _failed_midstream(
    name: str, partial: str, failure: Event, error: str, sources: Sequence[Event]
) -> Scenario:
    """E: the partial deltas, the failure event, then finalize (with chatId when text came)."""
    deltas = words(partial)
    stream: list[Step] = [*(Send(_chunk(delta)) for delta in deltas), Send(failure)]
    if deltas:
        metrics = _stream_metrics(len(deltas), _ESTIMATED_PROMPT_TOKENS)
        stream += [Save(partial, sources, metrics), Send(_finalize(metrics, sources))]
    else:
        stream.append(Send(_finalize()))
    return Scenario(
        name,
        tuple(stream),
        (Respond(500, _abort(error)),),
        expected_text=partial,
        expected_error=error,
        sources=tuple(sources) if deltas else (),
    )


def midstream_abort(
    partial: str = "partial ",
    error: str = "Connection error.",
    *,
    sources: Sequence[Event] = (),
) -> Scenario:
    """E. The provider fails after ``partial``: deltas, ``abort`` keyed ``uuid``, then finalize;
    the partial text is saved as a normal chat."""
    return _failed_midstream("midstream_abort", partial, _abort(error, key="uuid"), error, sources)


def ollama_error(partial: str = "", detail: str = "fetch failed") -> Scenario:
    """E as Ollama reports it: a ``textResponseChunk`` with ``close`` and a string ``error``."""
    error = f"Ollama:streaming - could not stream chat. {detail}"
    return _failed_midstream(
        "ollama_error", partial, _chunk("", close=True, error=error), error, ()
    )


def agent(
    final_text: str = "Done: I looked it up for you.",
    *,
    thoughts: Sequence[str] = (),
    deltas: Sequence[str] | None = None,
    sources: Sequence[Event] = (),
    downloads: Sequence[Event] = (),
) -> Scenario:
    """F. An agent turn, shaped like the automatic-mode capture: thoughts, deltas keyed ``id``,
    file downloads, usage, the full text again as ``textResponse``, finalize without chatId.

    ``deltas`` defaults to the words of ``final_text``; pass ``()`` for a non-streaming agent.
    ``downloads`` are ``{"filename", "storageFilename", "fileSize"}`` objects.
    """
    deltas = words(final_text) if deltas is None else deltas
    metrics = _completion_metrics(len(deltas), _AGENT_PROVIDER)
    base = {"id": Slot.TURN_ID}
    events = [_thought(thought) for thought in thoughts]
    events += [
        base
        | {
            "type": "textResponseChunk",
            "textResponse": delta,
            "sources": [],
            "close": False,
            "error": None,
        }
        for delta in deltas
    ]
    events += [
        base | {"type": "fileDownload", "fileDownload": download, "close": False, "error": None}
        for download in downloads
    ]
    events.append(
        base | {"type": "usageMetrics", "metrics": metrics, "close": False, "error": None}
    )
    return _agent_turn("agent", final_text, events, thoughts, sources, downloads, metrics)


def agent_failure(error: str = "No agent provider is configured for this workspace.") -> Scenario:
    """F failing: the agent reports the error as a thought and as its answer text (``error``
    stays false), then finalizes normally."""
    thought = f"Error encountered while running: {error}"
    return _agent_turn("agent_failure", error, [_thought(thought)], [thought], (), (), {})


def _thought(thought: str) -> dict[str, Any]:
    return {
        "id": Slot.TURN_ID,
        "type": "agentThought",
        "thought": thought,
        "sources": [],
        "attachments": [],
        "close": False,
        "error": None,
        "animate": True,
    }


def _agent_turn(
    name: str,
    text: str,
    events: list[dict[str, Any]],
    thoughts: Sequence[str],
    sources: Sequence[Event],
    outputs: Sequence[Event],
    metrics: Event,
) -> Scenario:
    final = {
        "id": Slot.TURN_ID,
        "type": "textResponse",
        "textResponse": text,
        "sources": [],
        "attachments": [],
        "close": True,
        "error": None,
        "animate": False,
    }
    finalize = {
        "uuid": Slot.TURN_ID,
        "type": "finalizeResponseStream",
        "textResponse": text,
        "thoughts": list(thoughts),
        "outputs": list(outputs),
        "sources": list(sources),
        "close": True,
        "error": False,
        "metrics": metrics,
    }
    save = Save(text, sources, metrics, thoughts=thoughts, outputs=outputs)
    stream: tuple[Step, ...] = (
        *(Send(event) for event in events),
        Send(final),
        save,
        Send(finalize),
    )
    sync = (save, Respond(200, _sync_agent(text, sources, thoughts, outputs, metrics)))
    return Scenario(name, stream, sync, expected_text=text, sources=tuple(sources))


def paced(scenario: Scenario, words_per_second: float) -> Scenario:
    """``scenario`` streamed at a model's pace: a pause before every answer delta as long as its
    words take at ``words_per_second`` (the blocking route waits as long in total); 0 is instant.
    """
    if words_per_second <= 0:
        return scenario

    def pause(step: Step) -> float:
        event = step.event if isinstance(step, Send | SendSplit) else {}
        text = event.get("textResponse") if event.get("type") == "textResponseChunk" else None
        return len(text.split()) / words_per_second if isinstance(text, str) else 0.0

    stream: list[Step] = []
    for step in scenario.stream:
        seconds = pause(step)
        stream += [Sleep(seconds), step] if seconds else [step]
    total = sum(map(pause, scenario.stream))
    sync = (Sleep(total), *scenario.sync) if total else scenario.sync
    return replace(scenario, stream=tuple(stream), sync=sync)


# --- builders: transport faults -------------------------------------------------------------


def trickle(
    text: str = "One word at a time, slowly.",
    delay: float = 0.05,
    *,
    sources: Sequence[Event] = (),
) -> Scenario:
    """A with ``delay`` seconds before every word (the blocking route waits as long in total)."""
    return _answer("trickle", text, words(text), sources=sources, delay=delay)


def stall(partial: str = "partial ") -> Scenario:
    """The captured upstream hang: ``partial`` arrives, then nothing, and the connection stays
    open until the client gives up (the partial text is saved then) or the server stops."""
    deltas = words(partial)
    stream: tuple[Step, ...] = (
        *(Send(_chunk(delta)) for delta in deltas),
        Stall(),
        Save(partial, (), _stream_metrics(len(deltas), _ESTIMATED_PROMPT_TOKENS)),
    )
    return Scenario("stall", stream, (Stall(),), expected_text=partial)


def drop(partial: str = "partial ") -> Scenario:
    """``partial`` arrives, then the socket closes in the middle of a chunk: no chunked
    terminator (the blocking route closes without answering)."""
    stream: tuple[Step, ...] = (*(Send(_chunk(delta)) for delta in words(partial)), Drop())
    return Scenario("drop", stream, (Drop(),), expected_text=partial)


def split_reads(
    text: str = "Grüße aus Köln, naïve café, 東京 🎉 done.", piece: int = 5
) -> Scenario:
    """A, but every event is written in flushed pieces of ``piece`` bytes, cutting inside a
    multi-byte character and inside the closing ``\\n\\n``."""
    return _answer("split_reads", text, words(text), piece=piece)


def line_separator(
    text: str = "First line\u2028second line\u2029new paragraph\u0085after a NEL. The end.",
) -> Scenario:
    """A whose JSON carries raw U+2028, U+2029 and U+0085, unescaped, as JSON.stringify does."""
    return replace(normal(text), name="line_separator")


def _with_inserted(scenario: Scenario, name: str, step: Step) -> Scenario:
    """``scenario`` with one extra stream step inserted half-way through its deltas."""
    at = len(scenario.stream) // 2
    return replace(scenario, name=name, stream=(*scenario.stream[:at], step, *scenario.stream[at:]))


def malformed_line(
    text: str = "Good events around a bad line.",
    line: bytes = b'data: {"uuid":"oops", not json\n\n',
) -> Scenario:
    """A with a ``data:`` line that is not JSON (or that no parser should accept, such as JSON
    nested too deeply) between two good events."""
    return _with_inserted(normal(text), "malformed_line", SendRaw(line))


def unknown_event(text: str = "An event from the future is ignored.") -> Scenario:
    """A with an event of an unknown ``type`` between two good events."""
    event = {
        "id": Slot.TURN_ID,
        "type": "futureEventType",
        "content": {"note": "clients must ignore this"},
        "close": False,
        "error": None,
    }
    return _with_inserted(normal(text), "unknown_event", Send(event))


def huge(n_chars: int = 200_000) -> Scenario:
    """A with an answer of exactly ``n_chars`` characters, one delta per word."""
    text = " ".join(f"word{index:06d}" for index in range(n_chars // 11 + 1))[:n_chars]
    return replace(normal(text), name="huge")


def http_error(
    status: int = 400,
    body: str | bytes = "Bad Request",
    content_type: str = "text/plain; charset=utf-8",
) -> Scenario:
    """A whole non-SSE error response (plain text, an HTML proxy page, ...) on both routes."""
    data = body.encode() if isinstance(body, str) else body
    respond = (Respond(status, data, content_type),)
    return Scenario("http_error", respond, respond, expected_error=data.decode(errors="replace"))


def nginx_bad_gateway() -> Scenario:
    """A reverse proxy's HTML 502 page instead of the stream."""
    return http_error(502, NGINX_502_PAGE, "text/html")


def throttled(status: int = 429, retry_after: str | None = "1") -> Scenario:
    """What a rate-limiting proxy (or a busy server's 503) answers, with its ``Retry-After``."""
    reason = {429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "Busy")
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    respond = (Respond(status, reason.encode(), "text/plain; charset=utf-8", headers),)
    return Scenario("throttled", respond, respond, expected_error=reason)
