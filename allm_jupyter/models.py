"""Small typed views of the server's JSON rows (workspaces, threads, documents, search hits)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._json import integer, mapping, objects, read_json, text
from .errors import ServerError
from .reply import Metrics, Source


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
    chat_id: int | None = None
    mode: str | None = None
    sources: tuple[Source, ...] = ()
    metrics: Metrics | None = None

    @classmethod
    def from_wire(cls, row: dict[str, Any]) -> HistoryMessage:
        return cls(
            role=text(row.get("role")) or "",
            content=text(row.get("content")) or "",
            sent_at=integer(row.get("sentAt")),
            chat_id=integer(row.get("chatId")),
            mode=text(row.get("type")),
            sources=tuple(Source.from_wire(s) for s in objects(row.get("sources"))),
            metrics=Metrics.from_wire(mapping(row.get("metrics"))),
        )


@dataclass(frozen=True)
class ServerInfo:
    """What ``/api/utils/metrics`` says; ``reachable=False`` carries the reason instead of raising."""

    base_url: str
    reachable: bool
    version: str | None = None
    mode: str | None = None
    reason: str | None = None
