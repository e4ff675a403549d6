"""Small typed views of the server's JSON rows (workspaces, threads, documents, search hits)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .reply import Metrics, Source


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


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
        try:  # the server stores metadata as a JSON *string*
            meta = json.loads(raw_meta) if isinstance(raw_meta, str) else dict(raw_meta or {})
        except ValueError:
            meta = {}
        title = meta.get("title") if isinstance(meta, dict) else None
        return cls(
            docpath=_str(row.get("docpath")),
            filename=_str(row.get("filename")),
            title=title if isinstance(title, str) else None,
            metadata=meta if isinstance(meta, dict) else {},
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
        slug = _str(row.get("slug"))
        return cls(
            slug=slug,
            name=_str(row.get("name")) or slug,
            chat_mode=row.get("chatMode") if isinstance(row.get("chatMode"), str) else None,
            threads=tuple(
                Thread(slug=_str(t.get("slug")), name=t.get("name") or None)
                for t in _list(row.get("threads"))
                if isinstance(t, dict) and t.get("slug")
            ),
            documents=tuple(
                Document.from_wire(d) for d in _list(row.get("documents")) if isinstance(d, dict)
            ),
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
        meta = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
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
        sent_at = row.get("sentAt")
        chat_id = row.get("chatId")
        return cls(
            role=_str(row.get("role")),
            content=_str(row.get("content")),
            sent_at=sent_at if isinstance(sent_at, int) else None,
            chat_id=chat_id if isinstance(chat_id, int) else None,
            mode=row.get("type") if isinstance(row.get("type"), str) else None,
            sources=tuple(
                Source.from_wire(s) for s in _list(row.get("sources")) if isinstance(s, dict)
            ),
            metrics=Metrics.from_wire(row["metrics"])
            if isinstance(row.get("metrics"), dict)
            else None,
        )


@dataclass(frozen=True)
class ServerInfo:
    """What ``/api/utils/metrics`` says; ``reachable=False`` carries the reason instead of raising."""

    base_url: str
    reachable: bool
    version: str | None = None
    mode: str | None = None
    reason: str | None = None
