"""Typed views of the server's JSON rows: sources, metrics, workspaces, threads, documents, hits.

Every reader is tolerant (see ``_json``): the real server sends ``null`` or nothing for fields it
documents, and a row we cannot read must not cost the answer it came with. A value that does not
convert (a timestamp no calendar holds, NaN, a number sent as a string, a negative count, a score
outside -1..1) reads as ``None``, which the ``%allm`` tables show as ``?``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ._json import (
    count,
    epoch_seconds,
    mapping,
    measure,
    nonempty,
    objects,
    read_json,
    similarity,
    text,
)
from .errors import ServerError

_METADATA_HEADER = re.compile(r"^\s*<document_metadata>.*?</document_metadata>\s*", re.DOTALL)


@dataclass(frozen=True)
class Source:
    """One retrieved chunk (or agent citation) that an answer drew on."""

    title: str
    text: str = ""
    score: float | None = None
    url: str | None = None
    chunk_source: str | None = None
    doc_source: str | None = None
    published: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Source:
        return cls(
            title=nonempty(data.get("title")) or nonempty(data.get("chunkSource")) or "Untitled",
            text=text(data.get("text")) or "",
            score=similarity(data.get("score")),
            url=nonempty(data.get("url")),
            chunk_source=nonempty(data.get("chunkSource")),
            doc_source=nonempty(data.get("docSource")),
            published=nonempty(data.get("published")),
            raw=data,
        )

    @classmethod
    def all_from_wire(cls, rows: object) -> tuple[Source, ...]:
        """The sources of a ``sources`` list, which the server may also send as ``null``."""
        return tuple(cls.from_wire(row) for row in objects(rows))

    @property
    def snippet(self) -> str:
        """The chunk text without the ``<document_metadata>`` header the server prepends."""
        return _METADATA_HEADER.sub("", self.text, count=1).strip()

    @property
    def link(self) -> str | None:
        """The source's URL when a browser can open it (``file://`` paths on the server cannot)."""
        for candidate in (self.url, self.chunk_source):
            if candidate and candidate.lower().startswith(("http://", "https://")):
                return candidate
        return None


@dataclass(frozen=True)
class Metrics:
    """Token counts and speed the server reports for a turn."""

    model: str | None = None
    provider: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    output_tps: float | None = None
    duration: float | None = None
    timestamp: str | None = None
    input_cost: float | None = None
    """USD for the prompt: AnythingLLM after 1.16.0 reports costs when it knows the price."""
    output_cost: float | None = None
    total_cost: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Metrics | None:
        """``None`` for the empty ``metrics: {}`` of refusals and aborts."""
        if not data:
            return None
        return cls(
            model=nonempty(data.get("model")),
            provider=nonempty(data.get("provider")),
            prompt_tokens=count(data.get("prompt_tokens")),
            completion_tokens=count(data.get("completion_tokens")),
            total_tokens=count(data.get("total_tokens")),
            output_tps=measure(data.get("outputTps")),
            duration=measure(data.get("duration")),
            timestamp=nonempty(data.get("timestamp")),
            input_cost=measure(data.get("inputCost")),
            output_cost=measure(data.get("outputCost")),
            total_cost=measure(data.get("totalCost")),
            raw=data,
        )


@dataclass(frozen=True)
class Thread:
    slug: str
    name: str | None = None


@dataclass(frozen=True)
class Document:
    """A document embedded in a workspace; ``docpath`` is what ``update-embeddings`` adds."""

    docpath: str
    filename: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    pinned: bool = False
    """Pinned documents go into every prompt whole, not only their matching chunks."""

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> Document:
        raw_meta = row.get("metadata")
        try:  # the server stores metadata as a JSON *string*; a bad one costs only the title
            meta = mapping(
                read_json(raw_meta, "The document's metadata")
                if isinstance(raw_meta, str)
                else raw_meta
            )
        except ServerError:
            meta = {}
        return cls(
            docpath=text(row.get("docpath")) or "",
            filename=text(row.get("filename")) or "",
            title=text(meta.get("title")),
            metadata=meta,
            pinned=row.get("pinned") is True,
        )


@dataclass(frozen=True)
class Workspace:
    slug: str
    name: str
    chat_mode: str | None = None
    threads: tuple[Thread, ...] = ()
    documents: tuple[Document, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> Workspace:
        slug = text(row.get("slug")) or ""
        return cls(
            slug=slug,
            name=text(row.get("name")) or slug,
            chat_mode=text(row.get("chatMode")),
            threads=tuple(
                Thread(slug=thread_slug, name=text(t.get("name")) or None)
                for t in objects(row.get("threads"))
                if (thread_slug := text(t.get("slug")))
            ),
            documents=tuple(Document.from_wire(d) for d in objects(row.get("documents"))),
            raw=row,
        )


@dataclass(frozen=True)
class SearchResult:
    """A vector-search hit; its ``metadata`` differs from a chat source's (``author``, ``tokenCount``)."""

    text: str
    score: float | None
    title: str
    url: str | None
    metadata: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> SearchResult:
        meta = mapping(row.get("metadata"))
        source = Source.from_wire({**meta, "text": row.get("text"), "score": row.get("score")})
        return cls(
            text=source.snippet,
            score=source.score,
            title=source.title,
            url=source.url,
            metadata=meta,
        )


@dataclass(frozen=True)
class HistoryMessage:
    role: str
    content: str
    sent_at: int | None = None
    """Seconds since 1970 (UTC); ``None`` when missing or no real moment."""
    chat_id: int | None = None
    mode: str | None = None
    sources: tuple[Source, ...] = ()
    metrics: Metrics | None = None

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> HistoryMessage:
        return cls(
            role=text(row.get("role")) or "",
            content=text(row.get("content")) or "",
            sent_at=epoch_seconds(row.get("sentAt")),
            chat_id=count(row.get("chatId")),
            mode=text(row.get("type")),
            sources=Source.all_from_wire(row.get("sources")),
            metrics=Metrics.from_wire(mapping(row.get("metrics"))),
        )


@dataclass(frozen=True)
class ServerInfo:
    """What ``/api/ping`` and ``/api/utils/metrics`` say; problems are carried, never raised."""

    base_url: str
    reachable: bool
    anythingllm: bool = True
    """False when something answers that is not AnythingLLM (its ``/api/ping`` did not)."""
    version: str | None = None
    """``appVersion``: ``null`` on installs outside Docker."""
    build: str | None = None
    """The git commit the server reports as ``version`` (``--`` when it does not know)."""
    mode: str | None = None
    vector_db: str | None = None
    reason: str | None = None
