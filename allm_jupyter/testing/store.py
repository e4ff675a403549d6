"""The in-memory state of one stand-in server: workspaces, threads, documents, saved chats.

Rows carry the fields and key order of the real database rows (see the wire captures), and the
history rules follow the reference (section 6), including its surprises.
"""

from __future__ import annotations

import base64
import math
import posixpath
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

from allm_jupyter.testing import scenarios
from allm_jupyter.testing.data import (
    DEFAULT_PROMPT,
    SEED_CREATED_AT,
    SEED_DOCUMENTS,
    SEED_PUBLISHED,
    SEED_WORKSPACES,
    answer_for,
    overlap_score,
)
from allm_jupyter.testing.scenarios import Save, Scenario

__all__ = ["SavedChat", "Store", "Workspace", "expected_reply"]

DOCUMENT_MIME = "application/anythingllm-document"
_NAMESPACE = uuid.UUID("6f1c2a52-6a8e-4d59-9a53-5d1f0b7c3e11")
CONTEXT_WINDOW = 4096


def _published_now() -> str:
    """The collector's ``published`` format, e.g. ``11/25/2026, 11:50:00 AM``."""
    stamp = datetime.now(timezone.utc)
    return f"{stamp.month}/{stamp.day}/{stamp.year}, " + stamp.strftime("%I:%M:%S %p").lstrip("0")


def slugify(text: str, *, lower: bool = True) -> str:
    """The server's slugify: its extra character map, then npm ``slugify`` defaults."""
    extra: dict[str, str | int | None] = {
        "+": " plus ",
        "!": " bang ",
        "@": " at ",
        "*": " splat ",
        ".": " dot ",
    }
    mapped = text.translate(str.maketrans(extra | dict.fromkeys(":~()'\"|", "")))
    kept = re.sub(r"[^\w\s$_-]+", "", mapped)
    slug = "-".join(kept.split())
    return slug.lower() if lower else slug


def collector_slug(filename: str) -> str:
    """npm ``slugify`` with its defaults, as the collector names its output files."""
    return "-".join(re.sub(r"[^\w\s$*_+~.()'\"!\-:@]+", "", filename).split())


@dataclass
class LibraryDocument:
    """A processed document (the collector's JSON file), addressable by ``location``."""

    location: str
    metadata: dict[str, Any]  # id, url, title, ..., token_count_estimate (no pageContent)
    page_content: str

    @property
    def chunks(self) -> list[str]:
        """Paragraphs: our stand-in for the text splitter."""
        return [part.strip() for part in self.page_content.split("\n\n") if part.strip()]


@dataclass
class EmbeddedDocument:
    """A ``workspace_documents`` row; its "vectors" are the document's chunks."""

    row: dict[str, Any]
    document: LibraryDocument


@dataclass
class Thread:
    """A ``workspace_threads`` row."""

    row: dict[str, Any]  # id, name, slug, workspace_id, user_id, createdAt, lastUpdatedAt

    @property
    def slug(self) -> str:
        return str(self.row["slug"])


@dataclass
class Workspace:
    """A ``workspaces`` row with its threads and embedded documents, and the three shapes in
    which the API returns it."""

    row: dict[str, Any]  # the ``workspaces`` row, in the captures' key order
    threads: list[Thread] = field(default_factory=list)
    documents: list[EmbeddedDocument] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return str(self.row["slug"])

    def listed(self) -> dict[str, Any]:
        """The element of ``GET /v1/workspaces``."""
        threads = [{k: t.row[k] for k in ("user_id", "slug", "name")} for t in self.threads]
        return self.row | {"threads": threads}

    def detailed(self) -> dict[str, Any]:
        """The element of ``GET /v1/workspace/{slug}``: documents, threads without names."""
        threads = [{k: t.row[k] for k in ("user_id", "slug")} for t in self.threads]
        return self.row | {"documents": [d.row for d in self.documents], "threads": threads}

    def with_context(self) -> dict[str, Any]:
        """``Workspace.get`` as update-embeddings returns it."""
        return self.row | {
            "documents": [d.row for d in self.documents],
            "contextWindow": CONTEXT_WINDOW,
            "currentContextTokenCount": 0,
        }


@dataclass
class SavedChat:
    """A ``workspace_chats`` row."""

    id: int
    workspace_id: int
    thread_id: int | None
    session_id: str | None
    prompt: str
    response: dict[str, Any]
    include: bool
    sent_at: int

    def history(self) -> list[dict[str, Any]]:
        """The two history messages of ``convertToChatHistory``."""
        response = self.response
        assistant: dict[str, Any] = {
            "type": response.get("type") or "chart",
            "role": "assistant",
            "content": response["text"],
            "sources": response.get("sources") or [],
            "chatId": self.id,
            "sentAt": self.sent_at,
            "feedbackScore": None,
            "metrics": response.get("metrics") or {},
        }
        if response.get("outputs"):
            assistant["outputs"] = response["outputs"]
        user = {
            "role": "user",
            "content": self.prompt,
            "sentAt": self.sent_at,
            "attachments": response.get("attachments") or [],
            "chatId": self.id,
        }
        return [user, assistant]


def _workspace_row(
    row_id: int, name: str, slug: str, created: str, **fields: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": row_id,
        "name": name,
        "slug": slug,
        "vectorTag": None,
        "createdAt": created,
        "openAiTemp": None,
        "openAiHistory": 20,
        "lastUpdatedAt": created,
        "openAiPrompt": DEFAULT_PROMPT,
        "similarityThreshold": 0.25,
        "chatProvider": None,
        "chatModel": None,
        "topN": 4,
        "chatMode": "automatic",
        "pfpFilename": None,
        "agentProvider": None,
        "agentModel": None,
        "queryRefusalResponse": None,
        "vectorSearchMode": "default",
        "router_id": None,
    }
    return row | {key: value for key, value in fields.items() if key in row}


def _text_or_none(value: Any) -> str | None:
    return str(value) if value and isinstance(value, str) else None


def _parse(value: Any, cast: type) -> Any:
    """``parseFloat``/``parseInt`` of a setting; ``None`` when it is not a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return cast(number) if math.isfinite(number) else None


# Validation of ``POST /v1/workspace/new`` fields, as ``Workspace.validations`` does it.
_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "openAiTemp": lambda v: t if (t := _parse(v, float)) is not None and t >= 0 else None,
    "openAiHistory": lambda v: 20 if (n := _parse(v, int)) is None else max(n, 0),
    "openAiPrompt": _text_or_none,
    "similarityThreshold": lambda v: 0.25 if (t := _parse(v, float)) is None else min(max(t, 0), 1),
    "chatProvider": lambda v: None if v == "none" else _text_or_none(v),
    "chatModel": _text_or_none,
    "topN": lambda v: 4 if (n := _parse(v, int)) is None else max(n, 1),
    "chatMode": lambda v: v if v in ("chat", "query", "automatic") else "automatic",
    "agentProvider": lambda v: None if v == "none" else _text_or_none(v),
    "agentModel": _text_or_none,
    "queryRefusalResponse": _text_or_none,
    "vectorSearchMode": lambda v: v if v in ("default", "rerank") else "default",
}


class Store:
    """All state of one server instance; every method is thread-safe."""

    def __init__(self, *, seed: bool = True, router_id: bool = True) -> None:
        self._lock = threading.RLock()
        self._router_id = router_id
        """Workspace rows have ``router_id`` (releases after v1.9.1)."""
        self.workspaces: list[Workspace] = []
        self.library: dict[str, LibraryDocument] = {}
        self.chats: list[SavedChat] = []
        self._ids: dict[str, int] = {}
        if seed:
            self._seed()

    def _row(
        self, row_id: int, name: str, slug: str, created: str, **fields: Any
    ) -> dict[str, Any]:
        """A ``workspaces`` row as the release played has it (v1.9.1's lack ``router_id``)."""
        row = _workspace_row(row_id, name, slug, created, **fields)
        if not self._router_id:
            del row["router_id"]
        return row

    def _next_id(self, table: str) -> int:
        self._ids[table] = self._ids.get(table, 0) + 1
        return self._ids[table]

    def _seed(self) -> None:
        for seed in SEED_DOCUMENTS:
            self.library[f"custom-documents/{seed.name}.json"] = LibraryDocument(
                location=f"custom-documents/{seed.name}.json",
                metadata=_document_metadata(
                    str(uuid.uuid5(_NAMESPACE, seed.name)),
                    f"file:///app/collector/hotdir/{seed.title}",
                    seed.title,
                    seed.text,
                    published=SEED_PUBLISHED,
                    description=seed.description,
                ),
                page_content=seed.text,
            )
        for spec in SEED_WORKSPACES:
            workspace = Workspace(
                self._row(
                    self._next_id("workspaces"),
                    spec.name,
                    spec.slug,
                    SEED_CREATED_AT,
                    chatMode=spec.chat_mode,
                )
            )
            self.workspaces.append(workspace)
            for name, slug in spec.threads:
                self._add_thread(workspace, name, slug, SEED_CREATED_AT)
            for document in spec.documents:
                self._embed(workspace, f"custom-documents/{document}.json", SEED_CREATED_AT)

    # --- workspaces and threads -------------------------------------------------------------

    def slugs(self) -> list[str]:
        with self._lock:
            return [workspace.slug for workspace in self.workspaces]

    def all_workspaces(self) -> list[Workspace]:
        with self._lock:
            return list(self.workspaces)

    def workspace(self, slug: str) -> Workspace | None:
        with self._lock:
            return next((w for w in self.workspaces if w.slug == slug), None)

    def new_workspace(self, name: str, fields: Mapping[str, Any]) -> Workspace:
        """``Workspace.new``: slug from the name, a random suffix on collision."""
        with self._lock:
            slug = slugify(name) or str(uuid.uuid4())
            if self.workspace(slug):
                slug = slugify(f"{name}-{uuid.uuid4().int % 90_000_000 + 10_000_000}")
            validated = {k: _VALIDATORS[k](v) for k, v in fields.items() if k in _VALIDATORS}
            if not validated.get("openAiPrompt"):
                validated["openAiPrompt"] = DEFAULT_PROMPT
            created = scenarios.iso_timestamp()
            row_id = self._next_id("workspaces")
            row = self._row(row_id, name[:255], slug, created, **validated)
            workspace = Workspace(row)
            self.workspaces.append(workspace)
            return workspace

    def thread(self, workspace: Workspace, slug: str) -> Thread | None:
        with self._lock:
            return next((t for t in workspace.threads if t.slug == slug), None)

    def new_thread(
        self, workspace: Workspace, name: Any, slug: Any
    ) -> tuple[Thread | None, str | None]:
        """``WorkspaceThread.new``: thread slugs are unique across all workspaces, and a
        caller-supplied slug keeps its letter case (the server passes ``lowercase``, which
        slugify ignores)."""
        with self._lock:
            wanted = slugify(str(slug), lower=False) if slug else str(uuid.uuid4())
            if any(t.slug == wanted for w in self.workspaces for t in w.threads):
                return None, (
                    "\nInvalid `prisma.workspace_threads.create()` invocation:\n\n\n"
                    "Unique constraint failed on the fields: (`slug`)"
                )
            return self._add_thread(
                workspace, str(name) if name else "Thread", wanted, scenarios.iso_timestamp()
            ), None

    def _add_thread(self, workspace: Workspace, name: str, slug: str, created: str) -> Thread:
        row = {
            "id": self._next_id("threads"),
            "name": name,
            "slug": slug,
            "workspace_id": workspace.row["id"],
            "user_id": None,
            "createdAt": created,
            "lastUpdatedAt": created,
        }
        thread = Thread(row)
        workspace.threads.append(thread)
        return thread

    # --- documents --------------------------------------------------------------------------

    def add_upload(
        self, filename: str, content: str, metadata: Mapping[str, Any]
    ) -> dict[str, Any]:
        """What the collector returns for an uploaded text file."""
        with self._lock:
            doc_id = str(uuid.uuid4())
            location = f"custom-documents/{collector_slug(filename)}-{doc_id}.json"
            described = _document_metadata(
                doc_id,
                f"file:///app/collector/hotdir/{filename}",
                str(metadata.get("title") or filename),
                content,
                published=_published_now(),
                doc_author=str(metadata.get("docAuthor") or "Unknown"),
                description=str(metadata.get("description") or "Unknown"),
                doc_source=str(metadata.get("docSource") or "a text file uploaded by the user."),
            )
            self.library[location] = LibraryDocument(location, described, content)
            head = {k: v for k, v in described.items() if k != "token_count_estimate"}
            return head | {
                "pageContent": content,
                "token_count_estimate": described["token_count_estimate"],
                "location": location,
                "isDirectUpload": False,
            }

    def update_embeddings(
        self, workspace: Workspace, adds: Sequence[Any], deletes: Sequence[Any]
    ) -> None:
        """Unknown paths are skipped silently, like the real server does."""
        with self._lock:
            workspace.documents = [
                d for d in workspace.documents if d.row["docpath"] not in deletes
            ]
            for path in adds:
                if isinstance(path, str) and path in self.library:
                    self._embed(workspace, path, scenarios.iso_timestamp())

    def add_raw_text(self, text: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """What the collector's ``processRawText`` returns: the title is slugged into a
        ``.txt`` name, and absent metadata gets its own defaults (not the upload ones)."""
        with self._lock:
            title = str(metadata.get("title"))
            name = strip_and_slug(title)
            doc_id = str(uuid.uuid4())
            url = metadata.get("url")
            is_web = isinstance(url, str) and re.match(r"^https?://", url, re.I) is not None
            data = {
                "id": doc_id,
                "url": f"web://{str(url).lower()}.website" if is_web else f"file://{name}.txt",
                "title": f"{name}.txt",
                "docAuthor": _string_or(metadata.get("docAuthor"), "no author specified"),
                "description": _string_or(metadata.get("description"), "no description found"),
                "docSource": _string_or(metadata.get("docSource"), "no source set"),
                "chunkSource": _string_or(metadata.get("chunkSource"), f"{name}.txt"),
                "published": _published_now(),
            }
            return self._store(f"custom-documents/raw-{name}-{doc_id}.json", data, text)

    def add_link(self, link: str, content: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """What the collector's ``scrapeGenericUrl`` returns for a fetched page."""
        with self._lock:
            parts = urlsplit(link)
            name = collector_slug(f"{parts.hostname}{unquote(parts.path).replace('/', '_')}")
            doc_id = str(uuid.uuid4())
            data = {
                "id": doc_id,
                "url": f"file://{name}.html",
                "title": str(metadata.get("title") or f"{name}.html"),
                "docAuthor": str(metadata.get("docAuthor") or "no author found"),
                "description": str(metadata.get("description") or "No description found."),
                "docSource": str(metadata.get("docSource") or "URL link uploaded by the user."),
                "chunkSource": f"link://{link}",
                "published": _published_now(),
            }
            return self._store(f"custom-documents/url-{name}-{doc_id}.json", data, content)

    def _store(self, location: str, data: dict[str, Any], text: str) -> dict[str, Any]:
        """Keep a collector document; the returned row is ``writeToServerDocuments``'s."""
        described = data | {
            "wordCount": len(text.split(" ")),
            "token_count_estimate": math.ceil(len(text) / 4),
        }
        self.library[location] = LibraryDocument(location, described, text)
        return data | {
            "wordCount": described["wordCount"],
            "pageContent": text,
            "token_count_estimate": described["token_count_estimate"],
            "location": location,
            "isDirectUpload": False,
        }

    def embed_into(self, slugs: str, location: str) -> None:
        """``Document.api.uploadToWorkspace``: comma-separated slugs, lower-cased; unknown
        ones are skipped silently."""
        wanted = {slug.strip().lower() for slug in slugs.split(",")}
        with self._lock:
            for workspace in self.workspaces:
                if workspace.slug in wanted:
                    self.update_embeddings(workspace, [location], [])

    def set_pinned(self, workspace: Workspace, docpath: Any, pinned: Any) -> bool:
        """``update-pin``: ``False`` when the workspace has no such document. A missing
        ``docPath`` matches the first document (Prisma drops ``undefined`` filters); a
        non-boolean status fails inside ``Document.update``, which the route ignores."""
        with self._lock:
            if docpath is not None and not isinstance(docpath, str):
                return False
            found = next(
                (d for d in workspace.documents if docpath is None or d.row["docpath"] == docpath),
                None,
            )
            if found is None:
                return False
            if isinstance(pinned, bool):
                found.row["pinned"] = pinned
            return True

    def parse_attachments(self, value: Any) -> list[dict[str, Any]]:
        """The sources of document attachments, as ``processDocumentAttachments`` makes them
        (text types only: this collector reads no PDF). Anything it cannot read is dropped
        without a word, like the real server does."""
        if not isinstance(value, list):
            return []
        parsed = []
        for item in value:
            if not (
                isinstance(item, dict)
                and _js_truthy_text(item.get("contentString"))
                and _js_truthy_text(item.get("mime"))
                and str(item["mime"]).lower() == DOCUMENT_MIME
            ):
                continue
            content = str(item["contentString"])
            match = re.match(r"^data:[^;]+;base64,(.+)$", content)
            try:
                data = base64.b64decode(match.group(1) if match else content)
                text = data.decode("utf-8")
            except ValueError:
                continue
            name = item.get("name") if _js_truthy_text(item.get("name")) else None
            filename = _hotdir_name(str(name or f"attachment-{uuid.uuid4()}"))
            if not text or filename is None:
                continue
            doc_id = str(uuid.uuid4())
            metadata = _document_metadata(
                doc_id,
                f"file:///app/collector/hotdir/{filename}",
                filename,
                text,
                published=_published_now(),
            )
            parsed.append(
                {"text": text[:1000] + "...continued on in source document..."}
                | metadata
                | {
                    "location": f"direct-uploads/{collector_slug(filename)}-{doc_id}.json",
                    "isDirectUpload": True,
                }
            )
        return parsed

    def _embed(self, workspace: Workspace, location: str, created: str) -> None:
        document = self.library[location]
        row = {
            "id": self._next_id("documents"),
            "docId": str(uuid.uuid5(_NAMESPACE, f"{workspace.slug}/{location}")),
            "filename": location.rsplit("/", 1)[-1],
            "docpath": location,
            "workspaceId": workspace.row["id"],
            "metadata": scenarios.js_json(document.metadata),
            "pinned": False,
            "watched": False,
            "createdAt": created,
            "lastUpdatedAt": created,
        }
        workspace.documents.append(EmbeddedDocument(row, document))

    def search(
        self,
        workspace: Workspace,
        query: str,
        *,
        top_n: int | None = None,
        threshold: float | None = None,
    ) -> list[dict[str, Any]]:
        """Chunks scoring at least the workspace's similarity threshold, best first."""
        with self._lock:
            limit = int(top_n if top_n is not None else workspace.row["topN"])
            floor = float(
                threshold if threshold is not None else workspace.row["similarityThreshold"]
            )
            hits = []
            for embedded in workspace.documents:
                meta = embedded.document.metadata
                for index, chunk in enumerate(embedded.document.chunks):
                    score = overlap_score(query, chunk)
                    if score > 0 and score >= floor:
                        vector_id = uuid.uuid5(_NAMESPACE, f"{embedded.row['docId']}/{index}")
                        hits.append(
                            scenarios.source(
                                meta["title"],
                                chunk,
                                score=score,
                                vector_id=str(vector_id),
                                url=meta["url"],
                                doc_author=meta["docAuthor"],
                                description=meta["description"],
                                doc_source=meta["docSource"],
                                chunk_source=meta["chunkSource"],
                                published=meta["published"],
                                word_count=meta["wordCount"],
                                token_count=meta["token_count_estimate"],
                            )
                        )
            hits.sort(key=lambda hit: -hit["score"])
            return hits[:limit]

    # --- chats ------------------------------------------------------------------------------

    def plan(
        self,
        workspace: Workspace,
        message: Any,
        mode: str,
        attached: Sequence[dict[str, Any]] = (),
    ) -> Scenario:
        """The default answer to a validated chat request (the stand-in's 'LLM'). ``attached``
        are the sources of parsed document attachments (:meth:`parse_attachments`): they come
        first, as context, except in agent turns and in query mode on an empty workspace,
        which the real server answers before it parses attachments."""
        if not isinstance(message, str):
            # A non-string message passes validation, then the agent check crashes on it.
            return scenarios.abort_before_tokens("promptString.startsWith is not a function")
        if message.startswith("@agent") or mode == "automatic":
            return scenarios.agent(answer_for(message))
        sources = [
            *(attached if workspace.documents or mode != "query" else ()),
            *self.search(workspace, message),
        ]
        if mode == "query" and not sources:
            refusal = workspace.row["queryRefusalResponse"] or scenarios.REFUSAL_TEXT
            return scenarios.refusal(refusal, empty_workspace=not workspace.documents)
        context = DEFAULT_PROMPT + message + "".join(str(s["text"]) for s in sources)
        return scenarios.normal(
            answer_for(message, sources), sources=sources, prompt_tokens=len(context) // 4
        )

    def save_chat(
        self,
        workspace: Workspace,
        thread: Thread | None,
        session_id: str | None,
        prompt: str,
        mode: str,
        attachments: list[Any],
        save: Save,
    ) -> int:
        with self._lock:
            response: dict[str, Any] = {
                "text": save.text,
                "sources": list(save.sources),
                "type": mode,
                "attachments": attachments,
                "metrics": dict(save.metrics),
            }
            if save.thoughts or save.outputs:
                response |= {"thoughts": list(save.thoughts), "outputs": list(save.outputs)}
            chat = SavedChat(
                id=self._next_id("chats"),
                workspace_id=workspace.row["id"],
                thread_id=thread.row["id"] if thread else None,
                session_id=session_id,
                prompt=prompt,
                response=response,
                include=save.include,
                sent_at=int(datetime.now(timezone.utc).timestamp()),
            )
            self.chats.append(chat)
            return chat.id

    def saved_chats(self) -> list[SavedChat]:
        with self._lock:
            return list(self.chats)

    def reset(self, workspace: Workspace, thread: Thread | None, session_id: str | None) -> None:
        """Hide rows like ``markThreadHistoryInvalidV2``: the session is always matched (a
        missing one matches rows *without* a session), the thread only on thread routes. So a
        reset on the workspace route without sessionId hides every non-session chat,
        threads included."""
        with self._lock:
            for chat in self.chats:
                if (
                    chat.workspace_id == workspace.row["id"]
                    and chat.session_id == session_id
                    and (thread is None or chat.thread_id == thread.row["id"])
                ):
                    chat.include = False

    def workspace_history(
        self, workspace: Workspace, session_id: str | None, limit: int, newest_first: bool
    ) -> list[dict[str, Any]]:
        """``GET /v1/workspace/{slug}/chats``: default chats, or one session's including its
        hidden rows; ``limit`` counts exchanges."""
        with self._lock:
            rows = [
                c
                for c in self.chats
                if c.workspace_id == workspace.row["id"]
                and c.thread_id is None
                and (
                    c.session_id == session_id if session_id else c.session_id is None and c.include
                )
            ]
            rows = (rows[::-1] if newest_first else rows)[:limit]
            return [message for chat in rows for message in chat.history()]

    def thread_history(self, workspace: Workspace, thread: Thread) -> list[dict[str, Any]]:
        with self._lock:
            return [
                message
                for c in self.chats
                if c.workspace_id == workspace.row["id"]
                and c.thread_id == thread.row["id"]
                and c.session_id is None
                and c.include
                for message in c.history()
            ]


def _hotdir_name(name: str) -> str | None:
    """``sanitizeFileName(normalizePath(name))``, or ``None`` where the collector gives up: an
    invalid path, or no extension (the kit's hot folder path has a dot, so the collector's
    "no file extension" check applies)."""
    normal = re.sub(r"^(\.\.(/|\\|$))+", "", posixpath.normpath(name.strip())).strip()
    if normal in ("..", ".", "/"):
        return None
    filename = re.sub(r'[<>:"/\\|?*\u201c-\u201f\u2018-\u201b]', "", normal)
    return filename if posixpath.splitext(filename)[1] else None


def strip_and_slug(title: str) -> str:
    """The collector's ``stripAndSlug``: drop the last extension, then lower-case slugify."""
    stem = "-".join(title.split(".")[:-1]) if "." in title else title
    return collector_slug(stem).lower()


def _string_or(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _js_truthy_text(value: Any) -> bool:
    return value not in (None, False, 0, "")


def _document_metadata(
    doc_id: str,
    url: str,
    title: str,
    text: str,
    *,
    published: str,
    doc_author: str = "Unknown",
    description: str = "Unknown",
    doc_source: str = "a text file uploaded by the user.",
) -> dict[str, Any]:
    """The collector's document fields (the ``metadata`` of a workspace document row)."""
    return {
        "id": doc_id,
        "url": url,
        "title": title,
        "docAuthor": doc_author,
        "description": description,
        "docSource": doc_source,
        "chunkSource": "",
        "published": published,
        "wordCount": len(text.split(" ")),
        "token_count_estimate": math.ceil(len(text) / 4),
    }


def expected_reply(slug: str, message: str, mode: str | None = None) -> str:
    """The text a default stand-in server streams for ``message`` sent to workspace ``slug``
    (``mode`` defaults to the workspace's chatMode), computed from the default data."""
    store = Store()
    workspace = store.workspace(slug)
    if workspace is None:
        raise KeyError(f"no default workspace {slug!r}; have {store.slugs()}")
    return store.plan(workspace, message, mode or workspace.row["chatMode"]).expected_text
