"""A loopback HTTP/1.1 server that behaves like AnythingLLM 1.16.0's developer API.

It reproduces the captured responses byte for byte in framing: status lines, header order,
weak ETags, chunked SSE bodies, keep-alive. Chat requests are answered by :mod:`scenarios`:
the queued ones first, then the default behaviour computed from the in-memory :class:`Store`.

The server never logs requests and never prints the API key.
"""

from __future__ import annotations

import base64
import contextlib
import email.policy
import hashlib
import http.client
import json
import math
import os
import re
import secrets
import select
import shutil
import socket
import socketserver
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.parser import BytesParser
from email.utils import formatdate
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from allm_jupyter.testing import scenarios
from allm_jupyter.testing.data import INDEX_PAGE
from allm_jupyter.testing.scenarios import (
    Drop,
    Respond,
    Save,
    Scenario,
    Send,
    SendRaw,
    SendSplit,
    Sleep,
    Stall,
    encode_json,
    fill,
    sse_bytes,
)
from allm_jupyter.testing.store import SavedChat, Store, Thread, Workspace

__all__ = ["Prices", "RecordedAttachment", "RecordedRequest", "StandInServer", "StreamRecord"]

MODEL_SPEED = 15.0
"""Words per second of the default answers (some 20 tokens a second, a local model's pace), so
streaming can be seen: the quickstart's first answer grows for over a second."""

APP_VERSION = "1.16.0"
KEEP_ALIVE_SECONDS = 5
_JSON = "application/json; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_CHAT_PATH = re.compile(r"^/api/v1/workspace/[^/]+(?:/thread/[^/]+)?/(?:stream-)?chat/?$", re.I)
_NOT_A_DOCUMENT = "application/anythingllm-document"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it (the Authorization header is never kept)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    authorized: bool
    body: bytes = field(default=b"", repr=False)

    @property
    def attachments(self) -> list[RecordedAttachment]:
        """The chat body's ``attachments``, data URLs decoded (objects only)."""
        items = self.json.get("attachments") if isinstance(self.json, dict) else None
        if not isinstance(items, list):
            return []
        return [RecordedAttachment.from_wire(item) for item in items if isinstance(item, dict)]


@dataclass(frozen=True)
class RecordedAttachment:
    """One attachment as sent: ``data`` is ``None`` unless ``contentString`` is a strict
    base64 data URL (``data:<type>;base64,<data>``), the only form the server decodes."""

    name: Any
    mime: Any
    data_type: str | None
    data: bytes | None = field(repr=False)

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> RecordedAttachment:
        content = item.get("contentString")
        match = (
            re.fullmatch(r"data:([^;,]+);base64,(.+)", content, re.S)
            if isinstance(content, str)
            else None
        )
        data = None
        if match:
            with contextlib.suppress(ValueError):
                data = base64.b64decode(match.group(2), validate=True)
        return cls(item.get("name"), item.get("mime"), match.group(1) if match else None, data)


@dataclass
class StreamRecord:
    """One streamed chat response, for tests that wait on what happened to it."""

    request: RecordedRequest
    scenario: Scenario
    turn_id: str
    chat_id: int | None = None
    disconnected: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Prices:
    """What the model costs (USD per token), for servers that report costs in their metrics."""

    input_per_token: float = 0.000_003
    output_per_token: float = 0.000_015


@dataclass
class _Rule:
    """Answer the chat questions ``matches`` accepts with ``scenario``, ``times`` times (or always)."""

    matches: Callable[[str], bool]
    scenario: Scenario
    times: int | None


class _Gone(Exception):
    """The response cannot continue: the client left, or the server dropped or is stopping."""

    def __init__(self, client_left: bool) -> None:
        super().__init__("client left" if client_left else "connection closed by the server")
        self.client_left = client_left


class _JsError(Exception):
    """An exception the real server would throw inside a route handler."""


def express_etag(body: bytes) -> str:
    """Express's weak ETag: length in hex and the start of the body's base64 SHA-1."""
    digest = base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]
    return f'W/"{len(body):x}-{digest}"'


def _finalhandler_page(status: int) -> bytes:
    """Express's HTML error page (production mode: no stack trace)."""
    message = http.client.responses.get(status, "Unknown")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
        f"</head>\n<body>\n<pre>{message}</pre>\n</body>\n</html>\n"
    ).encode()


def _js_truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and not (
        isinstance(value, float) and math.isnan(value)
    )


def _js_string(value: Any) -> str:
    """``String(value)`` for JSON values."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if item is None else _js_string(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return "null" if value is None else scenarios.js_json(value)


def _has_length(value: Any) -> bool:
    """``value?.length`` is truthy: a non-empty string or array."""
    return isinstance(value, str | list) and len(value) > 0


def _parse_int(value: Any) -> int | None:
    """``parseInt``; ``None`` for NaN."""
    match = re.match(r"\s*([+-]?\d+)", str(value))
    return int(match.group(1)) if match else None


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _JsError(f"Unexpected token in JSON at position {error.pos}") from error


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., None]
    auth: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)


def _route(method: str, template: str, handler: Callable[..., None], **options: Any) -> _Route:
    """Express-style matching: case-insensitive, optional trailing slash, ``{name}`` params."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    auth = options.pop("auth", True)
    return _Route(method, re.compile(f"^{regex}/?$", re.I), handler, auth, options)


class _HTTPServer(ThreadingHTTPServer):
    """Threading server that tracks its connections so :meth:`close` ends all of them."""

    def __init__(self, address: tuple[str, int], standin: StandInServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.standin = standin
        self.stopping = threading.Event()
        self.wake, self._wake_writer = socket.socketpair()
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._guard = threading.Lock()

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host name (a DNS lookup); not needed here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = (
            str(self.server_address[0]),
            int(self.server_address[1]),
        )

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True
        )
        with self._guard:
            self._connections.add(request)
            self._handlers.add(thread)
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._guard:
                self._connections.discard(request)
                self._handlers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a vanished client is not an error
            super().handle_error(request, client_address)

    def close(self) -> None:
        """Stop accepting, end stalled streams and idle keep-alive connections, join."""
        self.stopping.set()
        self._wake_writer.send(b"\0")  # never read: every select() on ``wake`` returns at once
        self.shutdown()
        self.server_close()
        with self._guard:
            connections, handlers = list(self._connections), list(self._handlers)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for handler in handlers:
            handler.join(timeout=5)
        self.wake.close()
        self._wake_writer.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = KEEP_ALIVE_SECONDS  # idle keep-alive connections close like Node's
    server: _HTTPServer
    _body: Any  # the parsed request body, as Express's body parsers leave it

    def log_message(self, format: str, *args: Any) -> None:
        """Silence: the server must not log (requests carry the API key)."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # --- plumbing -----------------------------------------------------------------------------

    def _serve(self) -> None:
        url = urlsplit(self.path)
        standin = self.server.standin
        try:
            raw = self._read_body()
            self._body = _parse_body(raw, self.headers.get("Content-Type", ""))
            request = RecordedRequest(
                method=str(self.command),
                path=url.path,
                query=dict(parse_qsl(url.query, keep_blank_values=True)),
                json=_recorded_json(raw),
                headers={
                    k.lower(): v for k, v in self.headers.items() if k.lower() != "authorization"
                },
                authorized=standin.accepts(self.headers.get("Authorization")),
                body=raw,
            )
            standin._record(request)
            if self._body is _MALFORMED:
                self._send(400, _finalhandler_page(400), "text/html; charset=utf-8", etag=False)
                return
            for route in _ROUTES:
                match = route.pattern.match(url.path)
                if match and route.method == self.command:
                    if route.auth and not request.authorized:
                        self._json(403, {"error": "No valid api key found."})
                        return
                    params = {name: unquote(value) for name, value in match.groupdict().items()}
                    try:
                        route.handler(self, request, **params, **route.options)
                    except _JsError:
                        self._status(500)
                    return
            # Production servers hand every other path (and method) to the frontend's index.
            self._send(200, INDEX_PAGE.encode(), "text/html; charset=utf-8")
        except _Gone:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> bytes:
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                parts = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        except (OSError, ValueError) as error:
            raise _Gone(client_left=True) from error

    def _body_object(self) -> dict[str, Any]:
        """``reqBody(request)``: text/plain bodies are JSON-parsed here, and may throw."""
        body = _parse_json(self._body) if isinstance(self._body, str) else self._body
        return body if isinstance(body, dict) else {}

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except OSError as error:
            raise _Gone(client_left=True) from error

    def _write_chunk(self, data: bytes) -> None:
        self._write(b"%x\r\n%s\r\n" % (len(data), data))

    def _head(self, status: int, headers: list[tuple[str, str]]) -> None:
        lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'unknown')}"]
        lines += [f"{name}: {value}" for name, value in headers]
        self._write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def _date_and_connection(self) -> list[tuple[str, str]]:
        """What Node appends to every response it frames itself."""
        if self.close_connection:
            return [("Date", formatdate(usegmt=True)), ("Connection", "close")]
        return [
            ("Date", formatdate(usegmt=True)),
            ("Connection", "keep-alive"),
            ("Keep-Alive", f"timeout={KEEP_ALIVE_SECONDS}"),
        ]

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        etag: bool = True,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """A complete response with Express's headers in Express's order (``extra`` first)."""
        headers = [*extra, ("X-Powered-By", "Express"), ("Vary", "Origin")]
        if not etag:  # finalhandler's error page
            headers += [
                ("Content-Security-Policy", "default-src 'none'"),
                ("X-Content-Type-Options", "nosniff"),
            ]
        headers += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if etag:
            headers.append(("ETag", express_etag(body)))
        self._head(status, headers + self._date_and_connection())
        self._write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, encode_json(value), _JSON)

    def _status(self, status: int) -> None:
        """``response.sendStatus``: the status text as a plain-text body."""
        self._send(status, http.client.responses[status].encode(), _TEXT)

    def _abort(self, status: int, error: str) -> None:
        self._json(status, _abort_body(error))

    def _crash(self, error: str, stream: bool) -> None:
        """A chat handler throwing before any header was set. The blocking route answers 500;
        the streaming one writes an SSE-framed abort into a plain 200 response."""
        if not stream:
            self._json(500, _abort_body(error))
            return
        headers = [("X-Powered-By", "Express"), ("Vary", "Origin"), *self._date_and_connection()]
        self._head(200, [*headers, ("Transfer-Encoding", "chunked")])
        self._write_chunk(sse_bytes(_abort_body(error)))
        self._write(b"0\r\n\r\n")

    def _start_sse(self) -> None:
        self._head(
            200,
            [
                ("X-Powered-By", "Express"),
                ("Vary", "Origin"),
                ("Cache-Control", "no-cache"),
                ("Content-Type", "text/event-stream"),
                ("Access-Control-Allow-Origin", "*"),
                ("Connection", "keep-alive"),
                ("Date", formatdate(usegmt=True)),
                ("Transfer-Encoding", "chunked"),
            ],
        )

    def _pause(self, seconds: float) -> None:
        if self.server.stopping.wait(seconds):
            raise _Gone(client_left=False)

    def _await_hangup(self) -> None:
        """Block until the client closes the connection (then return) or the server stops."""
        while True:
            readable, _, _ = select.select([self.connection, self.server.wake], [], [])
            if self.server.wake in readable:
                raise _Gone(client_left=False)
            try:
                if not self.connection.recv(4096):
                    return
            except OSError:
                return

    # --- scenario player ----------------------------------------------------------------------

    def _play(
        self,
        scenario: Scenario,
        *,
        stream: bool,
        request: RecordedRequest,
        save: Callable[[Save], int],
    ) -> None:
        """Run the scenario's steps. When the client leaves, later writes are dropped but the
        turn is still saved, like the real server does."""
        standin = self.server.standin
        record = StreamRecord(request, scenario, str(uuid.uuid4()))
        if stream:
            standin._add_stream(record)
        steps = scenario.stream if stream else scenario.sync
        chunked = stream and not any(isinstance(step, Respond) for step in steps)
        client_gone = False
        standin._answer_started()
        try:
            if chunked:
                self._start_sse()
            if standin.delay:
                self._pause(standin.delay)
            for step in steps:
                if isinstance(step, Save):
                    record.chat_id = save(step)
                elif client_gone:
                    continue
                elif isinstance(step, Respond):
                    self._respond(step, record)
                elif isinstance(step, Sleep):
                    self._pause(step.seconds)
                elif isinstance(step, Stall):
                    self._await_hangup()
                    client_gone = True
                elif isinstance(step, Drop):
                    if chunked:
                        self._write(b"%x\r\n%s" % (len(step.tail) + 64, step.tail))
                    raise _Gone(client_left=False)
                else:
                    try:
                        self._send_event(step, record)
                    except _Gone as gone:
                        if not gone.client_left:
                            raise
                        client_gone = True
            if client_gone:
                raise _Gone(client_left=True)
            if chunked:
                self._write(b"0\r\n\r\n")
        except _Gone as gone:
            if gone.client_left:
                record.disconnected.set()
            raise
        finally:
            record.finished.set()
            standin._answer_ended()

    def _send_event(self, step: Send | SendSplit | SendRaw, record: StreamRecord) -> None:
        if isinstance(step, SendRaw):
            self._write_chunk(step.data)
            return
        data = sse_bytes(self._as_released(fill(step.event, record.turn_id, record.chat_id)))
        if isinstance(step, Send):
            self._write_chunk(data)
            return
        for index, piece in enumerate(step.pieces(data)):
            if index:
                self._pause(step.pause)
            self._write_chunk(piece)

    def _respond(self, step: Respond, record: StreamRecord) -> None:
        if isinstance(step.body, bytes):
            self._send(step.status, step.body, step.content_type, extra=step.headers)
        else:
            self._send(
                step.status,
                encode_json(self._as_released(fill(step.body, record.turn_id, record.chat_id))),
                step.content_type,
                extra=step.headers,
            )

    def _as_released(self, value: Any) -> Any:
        """An event or body in the wire format of the release the stand-in plays."""
        standin = self.server.standin
        if standin.legacy_modes:
            return _legacy_metrics(value)
        return _priced(value, standin.prices) if standin.prices else value

    # --- routes -------------------------------------------------------------------------------

    def ping(self, request: RecordedRequest) -> None:
        self._json(200, {"online": True})

    def metrics(self, request: RecordedRequest) -> None:
        try:
            usage = shutil.disk_usage("/")
            storage: dict[str, int | None] = {
                "current": usage.free // 1024**3,
                "capacity": usage.total // 1024**3,
            }
        except OSError:
            storage = {"current": None, "capacity": None}
        self._json(
            200,
            {
                "online": True,
                "version": "--",
                "mode": "single-user",
                "vectorDB": "lancedb",
                "storage": storage,
                "appVersion": APP_VERSION,
            },
        )

    def auth(self, request: RecordedRequest) -> None:
        self._json(200, {"authenticated": True})

    def workspaces(self, request: RecordedRequest) -> None:
        listed = [workspace.listed() for workspace in self.server.standin.store.all_workspaces()]
        self._json(200, {"workspaces": listed})

    def workspace_get(self, request: RecordedRequest, slug: str) -> None:
        workspace = self.server.standin.store.workspace(slug)
        self._json(200, {"workspace": [workspace.detailed()] if workspace else []})

    def workspace_new(self, request: RecordedRequest) -> None:
        fields = self._body_object()
        name = fields.get("name")
        if not _js_truthy(name):
            self._json(400, {"workspace": None, "message": "name cannot be null"})
        elif not isinstance(name, str):
            self._status(500)  # slugify throws on non-strings
        else:
            settings = {key: value for key, value in fields.items() if key != "name"}
            workspace = self.server.standin.store.new_workspace(name, settings)
            self._json(200, {"workspace": workspace.row, "message": None})

    def thread_new(self, request: RecordedRequest, slug: str) -> None:
        fields = self._body_object()
        store = self.server.standin.store
        workspace = store.workspace(slug)
        if workspace is None:
            self._status(400)
            return
        thread, message = store.new_thread(workspace, fields.get("name"), fields.get("slug"))
        self._json(200, {"thread": thread.row if thread else None, "message": message})

    def workspace_chats(self, request: RecordedRequest, slug: str) -> None:
        workspace = self.server.standin.store.workspace(slug)
        if workspace is None:
            self._status(400)
            return
        limit = _parse_int(request.query.get("limit", "100"))
        if limit is None:
            raise _JsError("take must be a number")
        session = request.query.get("apiSessionId") or None
        newest_first = request.query.get("orderBy") == "desc"
        history = self.server.standin.store.workspace_history(
            workspace, session, max(1, limit), newest_first
        )
        self._json(200, {"history": history})

    def thread_chats(self, request: RecordedRequest, slug: str, thread: str) -> None:
        store = self.server.standin.store
        workspace = store.workspace(slug)
        found = store.thread(workspace, thread) if workspace else None
        if workspace is None or found is None:
            if self.server.standin.legacy_modes:  # before v1.14.1: workspace.id throws first
                self._status(500 if workspace is None else 400)
                return
            self._json(
                404, {"message": "Workspace not found" if workspace is None else "Thread not found"}
            )
            return
        self._json(200, {"history": store.thread_history(workspace, found)})

    def vector_search(self, request: RecordedRequest, slug: str) -> None:
        fields = self._body_object()
        store = self.server.standin.store
        workspace = store.workspace(slug)
        query = fields.get("query")
        if workspace is None:
            self._json(400, {"message": f"Workspace {slug} is not a valid workspace."})
        elif not _has_length(query):
            self._json(400, {"message": "Query parameter cannot be empty."})
        elif not workspace.documents:
            self._json(200, {"results": [], "message": "No embeddings found for this workspace."})
        else:
            hits = store.search(workspace, _js_string(query), **_search_options(fields))
            self._json(200, {"results": [_vector_result(hit) for hit in hits]})

    def update_embeddings(self, request: RecordedRequest, slug: str) -> None:
        fields = self._body_object()
        store = self.server.standin.store
        workspace = store.workspace(slug)
        if workspace is None:
            self._status(400)
            return
        adds, deletes = fields.get("adds", []), fields.get("deletes", [])
        if not isinstance(adds, list) or not isinstance(deletes, list):
            raise _JsError("adds and deletes must be arrays")
        store.update_embeddings(workspace, adds, deletes)
        self._json(200, {"workspace": workspace.with_context()})

    def upload(self, request: RecordedRequest) -> None:
        """A text-only collector: the file's bytes are decoded as UTF-8 text."""
        parts = _multipart(self.headers.get("Content-Type", ""), request.body)
        files = [part for part in parts if part.filename is not None]
        if any(part.name != "file" for part in files):
            self._json(500, {"success": False, "error": "Invalid file upload. Unexpected field"})
            return
        if not files:
            raise _JsError("Cannot destructure property 'originalname' of 'request.file'")
        filename, content = str(files[0].filename), files[0].text
        fields = {part.name: part.text for part in parts if part.filename is None}
        if not content:
            error = f"No text content found in {filename}."
            self._json(500, {"success": False, "error": error, "documents": []})
            return
        try:
            metadata = json.loads(fields.get("metadata", "{}"))
        except ValueError:
            metadata = {}
        store = self.server.standin.store
        document = store.add_upload(
            filename, content, metadata if isinstance(metadata, dict) else {}
        )
        for slug in filter(None, (s.strip() for s in fields.get("addToWorkspaces", "").split(","))):
            if workspace := store.workspace(slug):
                store.update_embeddings(workspace, [document["location"]], [])
        self._json(200, {"success": True, "error": None, "documents": [document]})

    def _empty(self, status: int) -> None:
        """``response.status(n).end()``: no body and no Content-Type."""
        headers = [("X-Powered-By", "Express"), ("Vary", "Origin"), *self._date_and_connection()]
        self._head(status, [*headers, ("Content-Length", "0")])

    def _workspace_list(self, fields: Mapping[str, Any]) -> str | None:
        """``validateWorkspaceSlugQuery``: ``addToWorkspaces`` must be a string when truthy;
        ``None`` once its 422 has been sent."""
        slugs = fields.get("addToWorkspaces", "")
        if _js_truthy(slugs) and not isinstance(slugs, str):
            kind = {bool: "boolean", int: "number", float: "number"}.get(type(slugs), "object")
            error = (
                f"addToWorkspaces must be a string of comma-separated workspace slugs. Got {kind}"
            )
            self._json(422, {"success": False, "error": error})
            return None
        return slugs if isinstance(slugs, str) else ""

    def raw_text(self, request: RecordedRequest) -> None:
        """``POST /v1/document/raw-text``: title first, then text, then the collector."""
        fields = self._body_object()
        slugs = self._workspace_list(fields)
        if slugs is None:
            return
        metadata = _metadata_object(fields.get("metadata", {}))
        text = fields.get("textContent")
        if not _js_truthy(metadata.get("title")):
            error = (
                "You are missing required metadata key:value pairs in your request. "
                "Required metadata key:values are 'title'"
            )
            self._json(422, {"success": False, "error": error})
        elif not _js_truthy(text) or not _has_length(text):
            error = "The 'textContent' key cannot have an empty value."
            self._json(422, {"success": False, "error": error})
        elif not isinstance(text, str) or not isinstance(metadata["title"], str):
            failed = {"success": False, "error": "A processing error occurred.", "documents": []}
            self._json(500, failed)
        else:
            store = self.server.standin.store
            document = store.add_raw_text(text, metadata)
            if slugs:
                store.embed_into(slugs, document["location"])
            self._json(200, {"success": True, "error": None, "documents": [document]})

    def upload_link(self, request: RecordedRequest) -> None:
        """``POST /v1/document/upload-link``: the page is really fetched (loopback pages in
        tests); a page that cannot be fetched has "no content", as the collector says."""
        fields = self._body_object()
        slugs = self._workspace_list(fields)
        if slugs is None:
            return
        link = fields.get("link")
        if not _js_truthy(link):
            self._json(500, {"success": False})  # processLink returns false for no link
            return
        target = _validate_url(link)
        if not _valid_url(target):
            self._json(500, {"success": False, "error": "Not a valid URL.", "documents": []})
            return
        content = _page_text(target)
        if not content:
            error = f"No URL content found at {target}."
            self._json(500, {"success": False, "error": error, "documents": []})
            return
        store = self.server.standin.store
        document = store.add_link(target, content, _metadata_object(fields.get("metadata", {})))
        if slugs:
            store.embed_into(slugs, document["location"])
        self._json(200, {"success": True, "error": None, "documents": [document]})

    def update_pin(self, request: RecordedRequest, slug: str) -> None:
        """An unknown workspace crashes on ``workspace.id``: a bare 500."""
        fields = self._body_object()
        store = self.server.standin.store
        workspace = store.workspace(slug)
        if workspace is None:
            self._empty(500)
        elif not store.set_pinned(workspace, fields.get("docPath"), fields.get("pinStatus", False)):
            self._status(404)
        else:
            self._json(200, {"message": "Pin status updated successfully"})

    def _chat_scope(
        self, slug: str, thread: str | None, stream: bool
    ) -> tuple[Workspace, Thread | None] | None:
        """The workspace and thread a chat route names; ``None`` once the real server's error
        for a missing one has been sent (each route words and frames it differently)."""
        store = self.server.standin.store
        workspace = store.workspace(slug)
        if thread is None:
            if workspace is None:
                self._abort(400, f"Workspace {slug} is not a valid workspace.")
                return None
            return workspace, None
        old_routes = self.server.standin.legacy_modes  # the thread routes before v1.14.1
        if workspace is None and (stream or old_routes):
            # The real handler reads ``workspace.id`` before checking the workspace.
            self._crash("Cannot read properties of null (reading 'id')", stream)
            return None
        found = store.thread(workspace, thread) if workspace else None
        if workspace is None or found is None:
            if stream or old_routes:
                self._abort(400, f"Workspace {slug} or thread {thread} is not valid.")
            else:
                missing = f"Workspace {slug}" if workspace is None else f"Thread {thread}"
                self._abort(404, f"{missing} not found.")
            return None
        return workspace, found

    def chat(
        self, request: RecordedRequest, slug: str, thread: str | None = None, *, stream: bool
    ) -> None:
        """All four chat routes (workspace or thread, blocking or streaming), validated in the
        real order, then answered by a queued scenario or the default behaviour."""
        standin = self.server.standin
        store = standin.store
        try:
            body = self._body_object()
        except _JsError as error:
            self._crash(str(error), stream)
            return
        scope = self._chat_scope(slug, thread, stream)
        if scope is None:
            return
        workspace, found = scope
        message = body.get("message")
        mode = standin._resolve_mode(body, workspace)
        reset = _js_truthy(body.get("reset"))
        if not reset and not (_has_length(message) and mode in standin.modes):
            empty = not _has_length(message)
            self._abort(
                400, "Message is empty" if empty else f"{_js_string(mode)} is not a valid mode."
            )
            return
        session_id = body.get("sessionId")  # ignored on thread routes
        session = _js_string(session_id) if thread is None and _js_truthy(session_id) else None
        if reset:
            store.reset(workspace, found, session)
        scenario = standin._ruled(message) or standin._dequeue()
        if scenario is None and reset and not _has_length(message):
            scenario = scenarios.reset_confirmation()
        elif scenario is None:
            parsed = store.parse_attachments(body.get("attachments"))
            planned = store.plan(workspace, message, str(mode), parsed)
            scenario = scenarios.paced(planned, standin.speed)
        prompt = message if isinstance(message, str) else _js_string(message)
        attachments = _image_attachments(body.get("attachments"))

        def save(step: Save) -> int:
            if standin.legacy_modes:
                step = replace(step, metrics=_legacy_metrics({"metrics": step.metrics})["metrics"])
            elif standin.prices:
                step = replace(
                    step, metrics=_priced({"metrics": step.metrics}, standin.prices)["metrics"]
                )
            return store.save_chat(
                workspace, found, session, prompt, _js_string(mode), attachments, step
            )

        self._play(scenario, stream=stream, request=request, save=save)


_NEWER_METRICS = ("model", "provider", "timestamp")


def _legacy_metrics(value: Any) -> Any:
    """An event or body as v1.9.1 sends it: its ``metrics`` without model, provider and
    timestamp, and ``duration`` last (the blocking route put it before ``outputTps`` later)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("metrics"), Mapping):
        return value
    metrics = {k: v for k, v in value["metrics"].items() if k not in _NEWER_METRICS}
    if "duration" in metrics:
        metrics["duration"] = metrics.pop("duration")
    return {**value, "metrics": metrics}


def _priced(value: Any, prices: Prices) -> Any:
    """An event or body whose token counts are priced, as servers after 1.16.0 send them."""
    metrics = value.get("metrics") if isinstance(value, Mapping) else None
    if not isinstance(metrics, Mapping) or "prompt_tokens" not in metrics:
        return value
    input_cost = metrics["prompt_tokens"] * prices.input_per_token
    output_cost = metrics.get("completion_tokens", 0) * prices.output_per_token
    costs = {
        "inputCost": input_cost,
        "outputCost": output_cost,
        "totalCost": input_cost + output_cost,
    }
    return {**value, "metrics": {**metrics, **costs}}


def _abort_body(error: str) -> dict[str, Any]:
    """The abort object of pre-stream errors (also the blocking route's 500)."""
    return {
        "id": str(uuid.uuid4()),
        "type": "abort",
        "textResponse": None,
        "sources": [],
        "close": True,
        "error": error,
    }


_MALFORMED = object()


def _parse_body(raw: bytes, content_type: str) -> Any:
    """What Express's body parsers leave in ``request.body``: JSON objects/arrays, text/plain
    as a string (``reqBody`` JSON-parses it later), url-encoded forms, else ``{}``.
    ``_MALFORMED`` when the JSON parser rejects the body (a 400 before any route runs)."""
    kind = content_type.split(";")[0].strip().lower()
    if not raw:
        return {}
    if kind == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            return _MALFORMED
        return body if isinstance(body, dict | list) else _MALFORMED  # strict mode
    if kind == "text/plain":
        return raw.decode("utf-8", "replace")
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    return {}


def _recorded_json(raw: bytes) -> Any:
    """The request body as JSON, whatever its content type claimed; ``None`` if it is not."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _image_attachments(value: Any) -> list[Any]:
    """Attachments kept in history: document attachments are parsed away (or dropped)."""
    if not isinstance(value, list):
        return []
    return [
        item
        for item in value
        if not (isinstance(item, dict) and str(item.get("mime", "")).lower() == _NOT_A_DOCUMENT)
    ]


def _to_number(value: Any) -> float:
    """``Number(value)``-ish; NaN when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _search_options(fields: Mapping[str, Any]) -> dict[str, Any]:
    """vector-search's ``topN``/``scoreThreshold``; invalid ones fall back to the workspace's."""
    options: dict[str, Any] = {}
    threshold = _to_number(fields.get("scoreThreshold"))
    if 0 <= threshold <= 1:
        options["threshold"] = threshold
    top_n = _to_number(fields.get("topN"))
    if top_n >= 1:
        options["top_n"] = int(top_n)
    return options


def _vector_result(hit: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": hit["id"],
        "text": hit["text"],
        "metadata": {
            "url": hit["url"],
            "title": hit["title"],
            "author": hit["docAuthor"],
            "description": hit["description"],
            "docSource": hit["docSource"],
            "chunkSource": hit["chunkSource"],
            "published": hit["published"],
            "wordCount": hit["wordCount"],
            "tokenCount": hit["token_count_estimate"],
        },
        "distance": hit["_distance"],
        "score": hit["score"],
    }


@dataclass(frozen=True)
class _Part:
    name: str
    filename: str | None
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def _multipart(content_type: str, body: bytes) -> list[_Part]:
    """The parts of a multipart/form-data body (the ``email`` package does the parsing)."""
    if not content_type.lower().startswith("multipart/form-data"):
        return []
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return []
    return [
        _Part(
            str(part.get_param("name", header="content-disposition") or ""),
            part.get_filename(),
            _payload_bytes(part.get_payload(decode=True)),
        )
        for part in message.iter_parts()
    ]


def _metadata_object(value: Any) -> dict[str, Any]:
    """A document route's ``metadata``: an object, or a JSON string of one."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _validate_url(link: Any) -> str:
    """The collector's ``validateURL``: ``https://`` when no scheme, no trailing slash."""
    if not isinstance(link, str):
        return ""
    target = link.strip()
    if "://" not in target:
        target = "https://" + target
    parts = urlsplit(target)
    if not parts.path:
        target += "/"  # what ``new URL(...).toString()`` adds
    return target[:-1] if target.endswith("/") else target


def _valid_url(link: str) -> bool:
    """The collector's ``validURL``: http(s) only; private IPv4 ranges refused, loopback allowed."""
    try:
        parts = urlsplit(link)
        host = parts.hostname or ""
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}", host) and host not in ("127.0.0.1", "0.0.0.0"):
        return int(host.split(".")[0]) not in (192, 172, 10, 127, 169)
    return True


def _open_page(link: str) -> Any:
    try:
        return urllib.request.urlopen(link, timeout=10)
    except urllib.error.HTTPError as error:
        return error


class _PageText(HTMLParser):
    """The visible text of a page (the real collector renders it in Chromium)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("script", "style", "head")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("script", "style", "head") and self._hidden > 0

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


def _page_text(link: str) -> str:
    """The page's text, or ``""`` when nothing answers. An error page is a page: the
    collector's browser scrapes whatever it shows."""
    try:
        with _open_page(link) as page:
            body: str = page.read(5_000_000).decode("utf-8", "replace")
            kind: str = page.headers.get_content_type()
    except (OSError, ValueError):
        return ""
    if kind != "text/html":
        return body.strip()
    parser = _PageText()
    parser.feed(body)
    return "\n\n".join(parser.parts)


_ROUTES: tuple[_Route, ...] = (
    _route("GET", "/api/ping", _Handler.ping, auth=False),
    _route("GET", "/api/utils/metrics", _Handler.metrics, auth=False),
    _route("GET", "/api/v1/auth", _Handler.auth),
    _route("GET", "/api/v1/workspaces", _Handler.workspaces),
    _route("POST", "/api/v1/workspace/new", _Handler.workspace_new),
    _route("GET", "/api/v1/workspace/{slug}", _Handler.workspace_get),
    _route("POST", "/api/v1/workspace/{slug}/chat", _Handler.chat, stream=False),
    _route("POST", "/api/v1/workspace/{slug}/stream-chat", _Handler.chat, stream=True),
    _route("GET", "/api/v1/workspace/{slug}/chats", _Handler.workspace_chats),
    _route("POST", "/api/v1/workspace/{slug}/vector-search", _Handler.vector_search),
    _route("POST", "/api/v1/workspace/{slug}/update-embeddings", _Handler.update_embeddings),
    _route("POST", "/api/v1/workspace/{slug}/thread/new", _Handler.thread_new),
    _route("POST", "/api/v1/workspace/{slug}/thread/{thread}/chat", _Handler.chat, stream=False),
    _route(
        "POST", "/api/v1/workspace/{slug}/thread/{thread}/stream-chat", _Handler.chat, stream=True
    ),
    _route("GET", "/api/v1/workspace/{slug}/thread/{thread}/chats", _Handler.thread_chats),
    _route("POST", "/api/v1/document/upload", _Handler.upload),
    _route("POST", "/api/v1/document/raw-text", _Handler.raw_text),
    _route("POST", "/api/v1/document/upload-link", _Handler.upload_link),
    _route("POST", "/api/v1/workspace/{slug}/update-pin", _Handler.update_pin),
)


def _payload_bytes(payload: object) -> bytes:
    """A decoded multipart body; anything else (a nested message) counts as empty."""
    return payload if isinstance(payload, bytes) else b""


class StandInServer:
    """An AnythingLLM 1.16.0 stand-in on a real loopback socket.

    ``port=0`` picks a free port; after the first start the port stays fixed, so ``stop()`` then
    ``start()`` (or a new server on ``server.port``) brings "the same" server back.
    ``legacy_modes=True`` behaves like a server older than 1.12, as v1.9.1 does: ``automatic`` is
    rejected and an omitted ``mode`` means ``query``; metrics have no model, provider or
    timestamp; workspace rows have no ``router_id``; the thread routes answer an unknown
    workspace or thread as before v1.14.1. ``seed=False`` starts without any workspace, like a
    fresh install. ``speed`` is the words per second the default answers stream at (queued
    scenarios keep their own timing); ``speed=0`` answers at once, as tests want. ``delay`` is
    the seconds every chat answer waits after its headers (a model's time to first token): the
    server answers many questions at once, each on its own thread. ``prices`` adds the costs to
    the metrics, as servers after 1.16.0 do when they know the model's price.
    """

    def __init__(
        self,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        legacy_modes: bool = False,
        *,
        seed: bool = True,
        speed: float = MODEL_SPEED,
        delay: float = 0.0,
        prices: Prices | None = None,
    ) -> None:
        self.api_key = api_key or f"standin-{secrets.token_hex(8)}"
        self.speed = speed
        self.delay = delay
        self.prices = prices
        self._rules: list[_Rule] = []
        self._in_flight = 0
        self.peak_in_flight = 0
        """The most chat answers that were ever being played at the same time."""
        self.answers_ended = 0
        """Chat answers played to their end (or to the client's hang-up) so far."""
        self._answers_changed = threading.Condition()
        self.host = host
        self.port = port
        self.legacy_modes = legacy_modes
        self.modes: tuple[str, ...] = (
            ("chat", "query") if legacy_modes else ("automatic", "chat", "query")
        )
        self.store = Store(seed=seed, router_id=not legacy_modes)
        self._lock = threading.Lock()
        self._queued: deque[Scenario] = deque()
        self._requests: list[RecordedRequest] = []
        self._streams: list[StreamRecord] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never shows the key
        state = "running" if self._httpd else "stopped"
        return f"<StandInServer {self.base_url} {state}>"

    @property
    def base_url(self) -> str:
        """The instance root, without ``/api``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def slugs(self) -> list[str]:
        """The served workspace slugs, in creation order (``research`` first by default)."""
        return self.store.slugs()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def streams(self) -> list[StreamRecord]:
        """One record per stream-chat response played so far, oldest first (a copy)."""
        with self._lock:
            return list(self._streams)

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) pointed at this server, for a kernel,
        a Jupyter server or a CLI: the ``ANYTHING_LLM_*`` variables name this server, its key and
        its first workspace, and none of the user's own settings leak in."""
        env = {
            name: value
            for name, value in (os.environ if base is None else base).items()
            if not name.startswith(("ANYTHING_LLM_", "ALLM_KIT_"))  # nor the real servers'
        }
        env.update(
            ANYTHING_LLM_BASE_URL=self.base_url,
            ANYTHING_LLM_API_KEY=self.api_key,
            ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG=self.slugs[0],
        )
        return env

    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded chat and stream-chat requests (workspace and thread routes)."""
        return [r for r in self.requests if r.method == "POST" and _CHAT_PATH.match(r.path)]

    def saved_chats(self) -> list[SavedChat]:
        """The saved chat rows, hidden ones included (``include`` tells)."""
        return self.store.saved_chats()

    def queue(self, *scenario: Scenario) -> None:
        """Serve the next chat requests (any chat route, in order) with these scenarios."""
        with self._lock:
            self._queued.extend(scenario)

    def answer_when(
        self, matches: Callable[[str], bool], scenario: Scenario, *, times: int | None = None
    ) -> None:
        """Answer the chat questions ``matches`` accepts with ``scenario`` (``times`` times, or
        until :meth:`clear_rules`), before queued scenarios: fail, throttle or stall some rows
        of a batch. A later rule does not shadow an earlier one that still applies."""
        with self._lock:
            self._rules.append(_Rule(matches, scenario, times))

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def in_flight(self) -> int:
        """Chat answers being played right now."""
        with self._answers_changed:
            return self._in_flight

    def wait_for_answers(self, count: int, *, in_flight: int = 0) -> None:
        """Block until ``count`` chat answers have ended and ``in_flight`` more are being played:
        the signal a test waits on before it stops a batch half-way (pytest's timeout ends a hang)."""
        with self._answers_changed:
            self._answers_changed.wait_for(
                lambda: self.answers_ended >= count and self._in_flight >= in_flight
            )

    def expected_reply(self, slug: str, message: str, mode: str | None = None) -> str:
        """The text this server's default behaviour produces for ``message`` right now."""
        workspace = self.store.workspace(slug)
        if workspace is None:
            raise KeyError(f"no workspace {slug!r}; have {self.slugs}")
        resolved = mode or ("query" if self.legacy_modes else workspace.row["chatMode"])
        return self.store.plan(workspace, message, resolved).expected_text

    def accepts(self, authorization: str | None) -> bool:
        """The real check: the second space-separated token of the header is the key."""
        parts = (authorization or "").split(" ")
        return len(parts) > 1 and secrets.compare_digest(parts[1].encode(), self.api_key.encode())

    def start(self) -> StandInServer:
        """Listen and serve from a background thread (no-op if running); returns ``self``."""
        if self._httpd is None:
            httpd = _HTTPServer((self.host, self.port), self)
            self.port = int(httpd.server_address[1])
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
                name=f"standin:{self.port}",
            )
            self._httpd = httpd
            self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection (stalled streams included) and free the port."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- used by the request handler ----------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _add_stream(self, record: StreamRecord) -> None:
        with self._lock:
            self._streams.append(record)

    def _ruled(self, message: Any) -> Scenario | None:
        question = message if isinstance(message, str) else _js_string(message)
        with self._lock:
            for rule in self._rules:
                if rule.matches(question):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times == 0:
                            self._rules.remove(rule)
                    return rule.scenario
        return None

    def _answer_started(self) -> None:
        with self._answers_changed:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            self._answers_changed.notify_all()

    def _answer_ended(self) -> None:
        with self._answers_changed:
            self._in_flight -= 1
            self.answers_ended += 1
            self._answers_changed.notify_all()

    def _dequeue(self) -> Scenario | None:
        with self._lock:
            return self._queued.popleft() if self._queued else None

    def _resolve_mode(self, body: Mapping[str, Any], workspace: Workspace) -> Any:
        """``mode ?? workspace.chatMode``; before 1.12 an absent mode meant ``query``."""
        if self.legacy_modes:
            return body.get("mode", "query")
        mode = body.get("mode")
        return workspace.row["chatMode"] if mode is None else mode
