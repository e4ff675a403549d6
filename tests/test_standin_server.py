"""The stand-in server, checked through real loopback sockets against the wire captures."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise, takewhile
from pathlib import Path
from typing import Any

import pytest
from captures import HERE as CAPTURES

from allm_jupyter.testing import (
    REFUSAL_TEXT,
    RESET_TEXT,
    Scenario,
    StandInServer,
    answer_for,
    expected_reply,
    scenarios,
)
from allm_jupyter.testing.data import INDEX_PAGE
from allm_jupyter.testing.scenarios import js_json
from allm_jupyter.testing.server import MODEL_SPEED, express_etag

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


# --- a byte-level HTTP client -----------------------------------------------------------------


@dataclass
class Raw:
    """One response as it came off the socket."""

    head: bytes
    body: bytes  # de-chunked
    chunks: list[bytes] | None  # chunk payloads of a chunked body
    complete: bool  # the body ended as framed (terminator / full Content-Length)

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    @property
    def headers(self) -> list[tuple[str, str]]:
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        return [(name, value) for name, _, value in (line.partition(": ") for line in lines)]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The JSON of every ``data:`` line that parses (bad lines are skipped, as clients do)."""
        found = []
        for block in self.body.split(b"\n\n"):
            if block.startswith(b"data: "):
                try:
                    found.append(json.loads(block[6:]))
                except ValueError:
                    continue
        return found


class Connection:
    """A raw keep-alive connection: write request bytes, read responses exactly as framed."""

    def __init__(self, server: StandInServer) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self.server = server
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def receive(self) -> bool:
        """Read what has arrived into ``buffer``; False once the server closed."""
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.buffer += data
        return bool(data)

    def _line(self) -> bytes | None:
        while b"\r\n" not in self.buffer:
            if not self.receive():
                return None
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _exact(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self.receive():
                return None
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = "default",
        content_type: str | None = "application/json",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        data = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.server.port}"]
        if key is not None:
            lines.append(
                f"Authorization: Bearer {self.server.api_key if key == 'default' else key}"
            )
        if data and content_type:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append(f"Content-Length: {len(data)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + data)

    def read(self) -> Raw:
        while b"\r\n\r\n" not in self.buffer:
            assert self.receive(), "connection closed before the response head"
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        raw = Raw(head, b"", None, False)
        if raw.header("Transfer-Encoding") == "chunked":
            raw.chunks = []
            while (size_line := self._line()) is not None:
                size = int(size_line, 16)
                if size == 0:
                    raw.complete = self._line() == b""
                    break
                data = self._exact(size + 2)
                if data is None:  # cut in the middle of a chunk
                    raw.chunks.append(self.buffer)
                    break
                raw.chunks.append(data[:-2])
            raw.body = b"".join(raw.chunks)
        else:
            body = self._exact(int(raw.header("Content-Length") or 0))
            raw.body, raw.complete = body or b"", body is not None
        return raw

    def request(self, method: str, path: str, body: Any = None, **options: Any) -> Raw:
        self.send(method, path, body, **options)
        return self.read()


@pytest.fixture
def server() -> Iterator[StandInServer]:
    with StandInServer(api_key="test-key-123", speed=0) as started:
        yield started


@pytest.fixture
def conn(server: StandInServer) -> Iterator[Connection]:
    connection = Connection(server)
    yield connection
    connection.close()


def fold(events: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """The final text and error a correct client shows (reference section 11)."""
    text, error = "", None
    for event in events:
        kind = event.get("type")
        if isinstance(event.get("error"), str) and event["error"]:
            error = event["error"]
        if kind == "textResponseChunk":
            text += event.get("textResponse") or ""
        elif kind == "textResponse" and isinstance(event.get("textResponse"), str):
            text = event["textResponse"]  # agent final text and one-shot answers replace
    return text, error


# --- comparison with the captures -------------------------------------------------------------


def capture(name: str) -> tuple[bytes, bytes]:
    head, _, body = (CAPTURES / name).read_bytes().partition(b"\r\n\r\n")
    return head, body


def normalized_head(head: bytes) -> bytes:
    head = re.sub(rb"Date: [^\r]+", b"Date: <date>", head)
    return re.sub(rb'ETag: W/"([0-9a-f]+)-[^"]+"', rb'ETag: W/"\1-<hash>"', head)


def canonical(value: Any) -> Any:
    """Volatile values replaced, keys kept in order (compare with js_json to check order)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if key in ("chatId", "sentAt", "_distance", "score", "distance"):
                out[key] = f"<{key}>"
            elif key == "metrics" and isinstance(item, Mapping):
                out[key] = dict.fromkeys(item, "<n>")
            else:
                out[key] = canonical(item)
        return out
    if isinstance(value, list):
        return [canonical(item) for item in value]
    if isinstance(value, str):
        return ISO.sub("<ts>", UUID.sub("<uuid>", value))
    return value


def same_shape(ours: Any, theirs: Any) -> None:
    assert js_json(canonical(ours)) == js_json(canonical(theirs))


def sse_events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in body.split(b"\n\n") if line]


@pytest.fixture
def wire() -> Iterator[StandInServer]:
    """A fresh instance with the capture session's key (see ``setup_wire``)."""
    with StandInServer(api_key="S13MRH9-VRN4NJG-JVSFMKX-N7S40FM", seed=False, speed=0) as fresh:
        yield fresh


def setup_wire(conn: Connection) -> None:
    assert conn.request("POST", "/api/v1/workspace/new", {"name": "Wire Test"}).status == 200


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "key"),
    [
        ("auth-valid-key.txt", "GET", "/api/v1/auth", None, "default"),
        ("auth-invalid-key.txt", "GET", "/api/v1/auth", None, "BOGUS-KEY-0000"),
        ("auth-missing-key.txt", "GET", "/api/v1/auth", None, None),
        ("workspace-new.txt", "POST", "/api/v1/workspace/new", {"name": "Wire Test"}, "default"),
        ("workspace-get-unknown.txt", "GET", "/api/v1/workspace/no-such-ws", None, "default"),
        (
            "chat-unknown-workspace.txt",
            "POST",
            "/api/v1/workspace/no-such-ws/chat",
            {"message": "hi"},
            "default",
        ),
        (
            "stream-chat-unknown-workspace.txt",
            "POST",
            "/api/v1/workspace/no-such-ws/stream-chat",
            {"message": "hi"},
            "default",
        ),
        (
            "stream-chat-invalid-key.txt",
            "POST",
            "/api/v1/workspace/wire-test/stream-chat",
            {"message": "hi"},
            "BOGUS",
        ),
    ],
)
def test_json_responses_match_the_captures_byte_for_byte(
    wire: StandInServer, name: str, method: str, path: str, body: Any, key: str | None
) -> None:
    conn = Connection(wire)
    ours = conn.request(method, path, body, key=key)
    head, theirs = capture(name)
    assert normalized_head(ours.head) == normalized_head(head)
    assert UUID.sub("<uuid>", ISO.sub("<ts>", ours.body.decode())) == UUID.sub(
        "<uuid>", ISO.sub("<ts>", theirs.decode())
    )
    assert ours.header("ETag") == express_etag(ours.body)
    conn.close()


def test_express_etags_of_the_captures_are_reproduced() -> None:
    for path in CAPTURES.glob("*.txt"):
        head, body = capture(path.name)
        if match := re.search(rb'ETag: (W/"[^"]+")', head):
            assert express_etag(body) == match.group(1).decode(), path.name


def test_capture_session_replays_with_the_same_shapes(wire: StandInServer) -> None:
    """Every response of the captured session, in the captured order: same status, same
    headers in the same order, same JSON keys in the same order, same fake-LLM texts."""
    conn = Connection(wire)
    setup_wire(conn)
    steps = [
        ("workspaces-list.txt", "GET", "/api/v1/workspaces", None),
        ("workspace-get.txt", "GET", "/api/v1/workspace/wire-test", None),
        (
            "chat-chat-mode.txt",
            "POST",
            "/api/v1/workspace/wire-test/chat",
            {"message": "Hello there", "mode": "chat"},
        ),
        (
            "stream-chat-chat-mode.txt",
            "POST",
            "/api/v1/workspace/wire-test/stream-chat",
            {"message": "Stream hello", "mode": "chat"},
        ),
        (
            "stream-chat-empty-message.txt",
            "POST",
            "/api/v1/workspace/wire-test/stream-chat",
            {"message": "", "mode": "chat"},
        ),
        (
            "stream-chat-invalid-mode.txt",
            "POST",
            "/api/v1/workspace/wire-test/stream-chat",
            {"message": "hi", "mode": "bogus"},
        ),
        (
            "chat-query-mode-no-docs.txt",
            "POST",
            "/api/v1/workspace/wire-test/chat",
            {"message": "Anything?", "mode": "query"},
        ),
        (
            "stream-chat-query-mode-no-docs.txt",
            "POST",
            "/api/v1/workspace/wire-test/stream-chat",
            {"message": "Anything?", "mode": "query"},
        ),
        (
            "stream-chat-automatic-mode.txt",
            "POST",
            "/api/v1/workspace/wire-test/stream-chat",
            {"message": "Auto hello"},
        ),
        (
            "chat-automatic-mode.txt",
            "POST",
            "/api/v1/workspace/wire-test/chat",
            {"message": "Auto hello"},
        ),
        (
            "thread-new.txt",
            "POST",
            "/api/v1/workspace/wire-test/thread/new",
            {"name": "Wire Thread", "slug": "wire-thread-1"},
        ),
        (
            "thread-stream-chat-chat-mode.txt",
            "POST",
            "/api/v1/workspace/wire-test/thread/wire-thread-1/stream-chat",
            {"message": "Thread stream hello", "mode": "chat"},
        ),
        (
            "thread-chat-chat-mode.txt",
            "POST",
            "/api/v1/workspace/wire-test/thread/wire-thread-1/chat",
            {"message": "Thread hello", "mode": "chat"},
        ),
        (
            "thread-chats-history.txt",
            "GET",
            "/api/v1/workspace/wire-test/thread/wire-thread-1/chats",
            None,
        ),
        (
            "thread-stream-chat-unknown-thread.txt",
            "POST",
            "/api/v1/workspace/wire-test/thread/no-such-thread/stream-chat",
            {"message": "hi"},
        ),
    ]
    for name, method, path, body in steps:
        ours = conn.request(method, path, body)
        head, theirs = capture(name)
        if ours.chunks is None:
            assert (
                normalized_head(ours.head).split(b"\r\n")[:4]
                == normalized_head(head).split(b"\r\n")[:4]
            ), name
            assert [k for k, _ in ours.headers] == [
                k for k, _ in Raw(head, b"", None, True).headers
            ], name
            same_shape(ours.json, json.loads(theirs))
        else:
            assert normalized_head(ours.head) == normalized_head(head), name
            assert ours.complete, name
            same_shape(sse_events(ours.body), sse_events(theirs))
    # Workspace history: thread chats and refusals are not listed; automatic turns are.
    history = conn.request("GET", "/api/v1/workspace/wire-test/chats").json["history"]
    assert [m["content"] for m in history if m["role"] == "user"] == [
        "Hello there",
        "Stream hello",
        "Auto hello",
        "Auto hello",
    ]
    same_shape(history[:4], json.loads(capture("workspace-chats-history.txt")[1])["history"][:4])
    conn.close()


def test_document_shapes_match_the_captures(wire: StandInServer) -> None:
    conn = Connection(wire)
    setup_wire(conn)
    fact_sheet = (
        "The Wire Test facility is located on Loopback Lane. Its mascot is a blue heron named "
        "Packet. Opening hours are nine to five on weekdays. The cafeteria serves soup every Tuesday."
    )
    location = upload(conn, "wire-fact-sheet.txt", fact_sheet.encode())["location"]
    updated = conn.request(
        "POST", "/api/v1/workspace/wire-test/update-embeddings", {"adds": [location]}
    )
    theirs = json.loads(capture("workspace-update-embeddings.txt")[1])
    assert list(updated.json["workspace"]) == list(theirs["workspace"])
    ours_doc, their_doc = (
        updated.json["workspace"]["documents"][0],
        theirs["workspace"]["documents"][0],
    )
    assert list(ours_doc) == list(their_doc)
    assert list(json.loads(ours_doc["metadata"])) == list(json.loads(their_doc["metadata"]))

    found = conn.request(
        "POST", "/api/v1/workspace/wire-test/vector-search", {"query": "mascot", "topN": 2}
    )
    result, their_result = (
        found.json["results"][0],
        json.loads(capture("vector-search.txt")[1])["results"][0],
    )
    assert list(result) == list(their_result)
    assert list(result["metadata"]) == list(their_result["metadata"])
    assert result["text"] == their_result["text"].replace(
        "11/25/2026, 11:50:00 AM", result["metadata"]["published"]
    )

    streamed = conn.request(
        "POST",
        "/api/v1/workspace/wire-test/stream-chat",
        {"message": "Where is the Wire Test facility?", "mode": "query"},
    )
    finalize = streamed.events[-1]
    their_finalize = sse_events(capture("stream-chat-query-mode-with-doc.txt")[1])[-1]
    assert list(finalize) == list(their_finalize)
    assert list(finalize["sources"][0]) == list(their_finalize["sources"][0])
    assert (
        fold(streamed.events)[0]
        == "According to wire-fact-sheet.txt: The Wire Test facility is located on Loopback Lane."
    )
    conn.close()


def upload(conn: Connection, filename: str, data: bytes, **fields: str) -> dict[str, Any]:
    boundary = "----standin-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    response = conn.request(
        "POST",
        "/api/v1/document/upload",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status == 200, response.body
    return response.json["documents"][0]


# --- SSE framing and defaults -------------------------------------------------------------------


def test_sse_events_are_framed_exactly(conn: Connection) -> None:
    message = "What should I do on my first day?"
    response = conn.request("POST", "/api/v1/workspace/research/stream-chat", {"message": message})
    assert response.complete
    assert response.header("Content-Type") == "text/event-stream"
    assert [k for k, _ in response.headers] == [
        "X-Powered-By",
        "Vary",
        "Cache-Control",
        "Content-Type",
        "Access-Control-Allow-Origin",
        "Connection",
        "Date",
        "Transfer-Encoding",
    ]
    assert response.chunks is not None
    for chunk in response.chunks:  # one event per HTTP chunk, compact JSON like JSON.stringify
        assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n") and chunk.count(b"\n") == 2
        assert chunk[6:-2].decode() == js_json(json.loads(chunk[6:-2]))
    events = response.events
    assert {event["uuid"] for event in events} == {events[0]["uuid"]}
    assert [e["type"] for e in events] == ["textResponseChunk"] * (len(events) - 1) + [
        "finalizeResponseStream"
    ]
    assert events[-2] | {"uuid": ""} == {
        "uuid": "",
        "sources": [],
        "type": "textResponseChunk",
        "textResponse": "",
        "close": True,
        "error": False,
    }
    assert events[-1]["sources"][0]["title"] == "team-handbook-onboarding.md"
    assert fold(events)[0] == expected_reply("research", message)
    assert expected_reply("research", message) == (
        "According to team-handbook-onboarding.md: New team members get their laptop, building badge "
        "and accounts on their first day."
    )


def test_default_workspaces_produce_sequences_a_b_and_f(
    server: StandInServer, conn: Connection
) -> None:
    assert server.slugs == ["research", "scratchpad", "assistant"]
    plain = conn.request(
        "POST", "/api/v1/workspace/research/stream-chat", {"message": "Hello there"}
    )
    assert fold(plain.events) == (answer_for("Hello there"), None)
    assert answer_for("Hello there") == 'Fake reply 4e478266: you said "Hello there". The end.'

    refused = conn.request(
        "POST", "/api/v1/workspace/scratchpad/stream-chat", {"message": "Anything?"}
    )
    assert [e["type"] for e in refused.events] == ["textResponse"]
    assert (
        refused.events[0]["textResponse"]
        == REFUSAL_TEXT
        == expected_reply("scratchpad", "Anything?")
    )

    agent = conn.request(
        "POST", "/api/v1/workspace/assistant/stream-chat", {"message": "Auto hello"}
    )
    types = [e["type"] for e in agent.events]
    assert types == ["textResponseChunk"] * 9 + [
        "usageMetrics",
        "textResponse",
        "finalizeResponseStream",
    ]
    assert "chatId" not in agent.events[-1]
    assert (
        fold(agent.events)[0]
        == expected_reply("assistant", "Auto hello")
        == answer_for("Auto hello")
    )

    at_agent = conn.request(
        "POST", "/api/v1/workspace/research/stream-chat", {"message": "@agent hi", "mode": "chat"}
    )
    assert at_agent.events[-2]["type"] == "textResponse"
    no_hits = conn.request(
        "POST", "/api/v1/workspace/research/chat", {"message": "Hello", "mode": "query"}
    )
    assert no_hits.json["textResponse"] == REFUSAL_TEXT


def test_chat_ids_increase_and_sync_answers_carry_them(conn: Connection) -> None:
    first = conn.request("POST", "/api/v1/workspace/research/chat", {"message": "Hello there"}).json
    second = conn.request(
        "POST", "/api/v1/workspace/research/stream-chat", {"message": "Hi"}
    ).events[-1]
    assert (first["chatId"], second["chatId"]) == (1, 2)
    assert first["textResponse"] == answer_for("Hello there")


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        (
            "/api/v1/workspace/nope/stream-chat",
            {"message": "hi"},
            400,
            "Workspace nope is not a valid workspace.",
        ),
        ("/api/v1/workspace/research/chat", {"mode": "chat"}, 400, "Message is empty"),
        ("/api/v1/workspace/research/stream-chat", {"message": 5}, 400, "Message is empty"),
        (
            "/api/v1/workspace/research/stream-chat",
            {"message": "hi", "mode": "bogus"},
            400,
            "bogus is not a valid mode.",
        ),
        (
            "/api/v1/workspace/research/thread/nope/stream-chat",
            {"message": "hi"},
            400,
            "Workspace research or thread nope is not valid.",
        ),
        (
            "/api/v1/workspace/nope/thread/x/chat",
            {"message": "hi"},
            404,
            "Workspace nope not found.",
        ),
        (
            "/api/v1/workspace/research/thread/nope/chat",
            {"message": "hi"},
            404,
            "Thread nope not found.",
        ),
    ],
)
def test_pre_stream_errors_are_json_aborts(
    conn: Connection, path: str, body: Any, status: int, error: str
) -> None:
    response = conn.request("POST", path, body)
    assert (response.status, response.header("Content-Type")) == (
        status,
        "application/json; charset=utf-8",
    )
    assert list(response.json) == ["id", "type", "textResponse", "sources", "close", "error"]
    assert (response.json["type"], response.json["error"]) == ("abort", error)


def test_thread_stream_on_unknown_workspace_is_the_real_quirk(conn: Connection) -> None:
    response = conn.request(
        "POST", "/api/v1/workspace/nope/thread/x/stream-chat", {"message": "hi"}
    )
    assert response.status == 200 and response.complete
    assert [k for k, _ in response.headers] == [
        "X-Powered-By",
        "Vary",
        "Date",
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
    ]
    assert response.body.startswith(b'data: {"id":"') and response.body.endswith(b"\n\n")
    assert response.events[0]["error"] == "Cannot read properties of null (reading 'id')"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "text"),
    [
        ("GET", "/api/v1/workspace/nope/chats", None, 400, "Bad Request"),
        ("POST", "/api/v1/workspace/nope/update-embeddings", {"adds": []}, 400, "Bad Request"),
        ("POST", "/api/v1/workspace/nope/thread/new", {}, 400, "Bad Request"),
        ("GET", "/api/v1/workspace/research/chats?limit=abc", None, 500, "Internal Server Error"),
    ],
)
def test_plain_text_errors(
    conn: Connection, method: str, path: str, body: Any, status: int, text: str
) -> None:
    response = conn.request(method, path, body)
    assert (response.status, response.header("Content-Type"), response.body) == (
        status,
        "text/plain; charset=utf-8",
        text.encode(),
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/nothing-here"), ("POST", "/api/v1/nothing-here"), ("DELETE", "/api/v1/auth")],
)
def test_unknown_paths_get_the_frontends_index_page(
    conn: Connection, method: str, path: str
) -> None:
    """A production server has no 404: the frontend's index page answers every other path."""
    response = conn.request(method, path, {} if method == "POST" else None)
    assert (response.status, response.header("Content-Type")) == (200, "text/html; charset=utf-8")
    assert response.body == INDEX_PAGE.encode()
    assert response.header("ETag") == express_etag(response.body)


def test_authorization_is_checked_like_the_real_server(conn: Connection) -> None:
    assert conn.request("GET", "/api/v1/auth", key="test-key-123").status == 200
    forbidden = conn.request("GET", "/api/v1/auth", key=" test-key-123")  # two spaces
    assert (forbidden.status, forbidden.json) == (403, {"error": "No valid api key found."})
    bare = [("Authorization", "test-key-123")]
    assert conn.request("GET", "/api/v1/workspaces", key=None, headers=bare).status == 403
    other_scheme = [("Authorization", "Token test-key-123")]
    assert conn.request("GET", "/api/v1/workspaces", key=None, headers=other_scheme).status == 200
    assert conn.request("GET", "/api/ping", key=None).json == {"online": True}
    metrics = conn.request("GET", "/api/utils/metrics", key=None).json
    assert list(metrics) == ["online", "version", "mode", "vectorDB", "storage", "appVersion"]
    assert metrics["appVersion"] == "1.16.0"


def test_request_bodies_are_parsed_like_express(server: StandInServer, conn: Connection) -> None:
    bad_json = conn.request(
        "POST", "/api/v1/workspace/research/chat", b"{nope", content_type="application/json"
    )
    assert (bad_json.status, bad_json.header("Content-Type")) == (400, "text/html; charset=utf-8")
    assert b"<pre>Bad Request</pre>" in bad_json.body
    assert server.requests[-1].json is None and server.requests[-1].body == b"{nope"
    as_text = json.dumps({"message": "Hello there"}).encode()
    plain = conn.request(
        "POST", "/api/v1/workspace/research/chat", as_text, content_type="text/plain"
    )
    assert plain.json["textResponse"] == answer_for("Hello there")
    untyped = conn.request("POST", "/api/v1/workspace/research/chat", as_text, content_type=None)
    assert untyped.json["error"] == "Message is empty"
    broken_text = conn.request(
        "POST", "/api/v1/workspace/research/stream-chat", b"{x", content_type="text/plain"
    )
    assert broken_text.status == 200 and broken_text.header("Content-Type") is None
    assert broken_text.events[0]["type"] == "abort"
    listed = conn.request("POST", "/api/v1/workspace/research/stream-chat", {"message": ["a"]})
    assert fold(listed.events) == ("", "promptString.startsWith is not a function")


def test_workspace_and_thread_creation(server: StandInServer, conn: Connection) -> None:
    assert conn.request("GET", "/api/v1/workspace/nope").json == {"workspace": []}
    created = conn.request(
        "POST", "/api/v1/workspace/new", {"name": "Research", "chatMode": "query"}
    ).json
    assert re.fullmatch(r"research-\d{8}", created["workspace"]["slug"])
    assert created["workspace"]["chatMode"] == "query"
    assert conn.request("POST", "/api/v1/workspace/new", {}).json == {
        "workspace": None,
        "message": "name cannot be null",
    }
    fresh = conn.request("POST", "/api/v1/workspace/new", {"name": "My Notes!"}).json["workspace"]
    assert (fresh["slug"], fresh["chatMode"]) == ("my-notes-bang", "automatic")
    thread = conn.request(
        "POST", "/api/v1/workspace/research/thread/new", {"slug": "Mixed-Case"}
    ).json
    assert (thread["thread"]["slug"], thread["thread"]["name"], thread["message"]) == (
        "Mixed-Case",
        "Thread",
        None,
    )
    duplicate = conn.request(
        "POST", "/api/v1/workspace/scratchpad/thread/new", {"slug": "Mixed-Case"}
    )
    assert duplicate.status == 200 and duplicate.json["thread"] is None
    assert "Unique constraint failed" in duplicate.json["message"]
    unnamed = conn.request("POST", "/api/v1/workspace/research/thread/new", {}).json["thread"]
    assert UUID.fullmatch(unnamed["slug"])
    listed = conn.request("GET", "/api/v1/workspaces").json["workspaces"][0]["threads"]
    assert listed[-1] == {"user_id": None, "slug": unnamed["slug"], "name": "Thread"}
    detailed = conn.request("GET", "/api/v1/workspace/research").json["workspace"][0]
    assert detailed["threads"][0] == {"user_id": None, "slug": "onboarding-questions"}
    assert [d["filename"] for d in detailed["documents"]] == [
        "team-handbook-onboarding.json",
        "research-facility-fact-sheet.json",
        "project-glossary.json",
    ]
    assert isinstance(detailed["documents"][0]["metadata"], str)


# --- history, sessions and reset ------------------------------------------------------------


def chat(conn: Connection, text: str, *, thread: str | None = None, **fields: Any) -> Raw:
    route = (
        f"/api/v1/workspace/research/thread/{thread}" if thread else "/api/v1/workspace/research"
    )
    return conn.request("POST", f"{route}/chat", {"message": text, **fields})


def user_turns(conn: Connection, path: str) -> list[str]:
    history = conn.request("GET", path).json["history"]
    return [message["content"] for message in history if message["role"] == "user"]


def test_history_partitions_and_reset_scope(server: StandInServer, conn: Connection) -> None:
    chats = "/api/v1/workspace/research/chats"
    thread_chats = "/api/v1/workspace/research/thread/onboarding-questions/chats"
    chat(conn, "plain one")
    chat(conn, "session one", sessionId="s1")
    chat(conn, "in thread", thread="onboarding-questions", sessionId="ignored")
    chat(conn, "session two", sessionId="s2")
    assert user_turns(conn, chats) == ["plain one"]
    assert user_turns(conn, f"{chats}?apiSessionId=s1") == ["session one"]
    assert user_turns(conn, thread_chats) == ["in thread"]

    # reset without sessionId hides every non-session chat of the workspace, threads included
    reset = conn.request("POST", "/api/v1/workspace/research/stream-chat", {"reset": True})
    assert [(e["type"], e["textResponse"]) for e in reset.events] == [("textResponse", RESET_TEXT)]
    assert user_turns(conn, chats) == [] and user_turns(conn, thread_chats) == []
    assert {c.prompt: c.include for c in server.saved_chats()} == {
        "plain one": False,
        "session one": True,
        "in thread": False,
        "session two": True,
    }
    # reset with a sessionId hides that session only; its listing still shows hidden rows
    assert chat(conn, "", sessionId="s1", reset=True).json["textResponse"] == RESET_TEXT
    assert [c.include for c in server.saved_chats() if c.session_id] == [False, True]
    assert user_turns(conn, f"{chats}?apiSessionId=s1") == ["session one"]

    # a thread reset stays inside the thread; a reset with a message also answers it
    chat(conn, "plain again")
    answered = chat(conn, "thread again", thread="onboarding-questions", reset=True).json
    assert answered["textResponse"] == answer_for("thread again")
    assert user_turns(conn, chats) == ["plain again"]
    assert user_turns(conn, thread_chats) == ["thread again"]


def test_refusals_are_saved_hidden_and_history_paging(
    server: StandInServer, conn: Connection
) -> None:
    refused = conn.request(
        "POST", "/api/v1/workspace/scratchpad/chat", {"message": "why?", "sessionId": 7}
    )
    assert refused.json["textResponse"] == REFUSAL_TEXT
    assert user_turns(conn, "/api/v1/workspace/scratchpad/chats") == []
    assert user_turns(conn, "/api/v1/workspace/scratchpad/chats?apiSessionId=7") == ["why?"]
    for text in ("one", "two", "three"):
        chat(conn, text)
    chats = "/api/v1/workspace/research/chats"
    assert user_turns(conn, f"{chats}?limit=2") == ["one", "two"]
    assert user_turns(conn, f"{chats}?limit=2&orderBy=desc") == ["three", "two"]
    assert user_turns(conn, f"{chats}?limit=0") == ["one"]


def test_legacy_modes_reject_automatic_and_default_to_query() -> None:
    with StandInServer(legacy_modes=True, speed=0) as legacy:
        conn = Connection(legacy)
        rejected = conn.request(
            "POST",
            "/api/v1/workspace/assistant/stream-chat",
            {"message": "hi", "mode": "automatic"},
        )
        assert (rejected.status, rejected.json["error"]) == (400, "automatic is not a valid mode.")
        retried = conn.request(
            "POST", "/api/v1/workspace/assistant/stream-chat", {"message": "hi", "mode": "chat"}
        )
        assert fold(retried.events)[0] == answer_for("hi")
        defaulted = conn.request(
            "POST", "/api/v1/workspace/research/stream-chat", {"message": "Hello there"}
        )
        assert [list(e) for e in defaulted.events] == [
            ["id", "type", "textResponse", "sources", "close", "error", "metrics"]  # no attachments
        ]
        assert legacy.expected_reply("research", "Hello there") == REFUSAL_TEXT
        assert legacy.chat_requests()[0].json == {"message": "hi", "mode": "automatic"}
        conn.close()


def test_legacy_servers_speak_the_wire_of_v1_9_1() -> None:
    """What tests/real/test_differential.py found v1.9.1 to send, where 1.16.0 sends more."""
    with StandInServer(legacy_modes=True) as legacy:
        conn = Connection(legacy)
        row = conn.request("GET", "/api/v1/workspace/research").json["workspace"][0]
        assert "router_id" not in row and "vectorSearchMode" in row
        blocking = conn.request(
            "POST", "/api/v1/workspace/research/chat", {"message": "Hi", "mode": "chat"}
        ).json
        assert list(blocking["metrics"]) == [
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "outputTps",
            "duration",
        ]
        streamed = conn.request(
            "POST", "/api/v1/workspace/research/stream-chat", {"message": "Hi", "mode": "chat"}
        )
        assert list(streamed.events[-1]["metrics"]) == [
            "completion_tokens",
            "prompt_tokens",
            "total_tokens",
            "outputTps",
            "duration",
        ]
        history = conn.request("GET", "/api/v1/workspace/research/chats").json["history"]
        assert "model" not in history[-1]["metrics"]
        thread = "/api/v1/workspace/research/thread/nope"
        unknown = conn.request("POST", thread + "/chat", {"message": "Hi", "mode": "chat"})
        assert (unknown.status, unknown.json["error"]) == (
            400,
            "Workspace research or thread nope is not valid.",
        )
        crashed = conn.request(
            "POST", "/api/v1/workspace/nope/thread/x/chat", {"message": "Hi", "mode": "chat"}
        )
        assert (crashed.status, crashed.json["error"]) == (
            500,
            "Cannot read properties of null (reading 'id')",
        )
        assert (conn.request("GET", thread + "/chats").status, crashed.json["type"]) == (
            400,
            "abort",
        )
        assert conn.request("GET", "/api/v1/workspace/nope/thread/x/chats").status == 500
        conn.close()


def test_uploaded_documents_are_retrieved(server: StandInServer, conn: Connection) -> None:
    text = "Zebras are striped horses.\n\nQuokkas smile a lot."
    document = upload(conn, "notes on animals.txt", text.encode(), addToWorkspaces="scratchpad")
    assert re.fullmatch(
        r"custom-documents/notes-on-animals\.txt-[0-9a-f-]{36}\.json", document["location"]
    )
    assert list(document)[-4:] == [
        "pageContent",
        "token_count_estimate",
        "location",
        "isDirectUpload",
    ]
    answer = conn.request(
        "POST", "/api/v1/workspace/scratchpad/stream-chat", {"message": "Do quokkas smile?"}
    )
    assert fold(answer.events)[0] == "According to notes on animals.txt: Quokkas smile a lot."
    assert server.expected_reply("scratchpad", "Do quokkas smile?") == fold(answer.events)[0]
    search = conn.request(
        "POST", "/api/v1/workspace/scratchpad/vector-search", {"query": "zebra"}
    ).json
    assert [r["text"].split("\n\n", 1)[1] for r in search["results"]] == [
        "Zebras are striped horses."
    ]
    removed = conn.request(
        "POST",
        "/api/v1/workspace/scratchpad/update-embeddings",
        {"deletes": [document["location"]]},
    )
    assert removed.json["workspace"]["documents"] == []
    empty = conn.request(
        "POST", "/api/v1/workspace/scratchpad/vector-search", {"query": "zebra"}
    ).json
    assert empty == {"results": [], "message": "No embeddings found for this workspace."}
    assert (
        conn.request("POST", "/api/v1/workspace/scratchpad/vector-search", {"query": ""}).status
        == 400
    )
    no_file = conn.request("POST", "/api/v1/document/upload", b"x", content_type="text/plain")
    assert (no_file.status, no_file.body) == (500, b"Internal Server Error")


def test_keep_alive_serves_many_requests_on_one_connection(server: StandInServer) -> None:
    conn = Connection(server)
    assert conn.request("GET", "/api/v1/auth").status == 200
    assert conn.request("POST", "/api/v1/workspace/research/stream-chat", {"message": "a"}).complete
    assert conn.request("GET", "/api/v1/nope").status == 200  # the frontend's index page
    assert conn.request("POST", "/api/v1/workspace/research/chat", {"message": "b"}).status == 200
    assert conn.request("GET", "/api/v1/workspaces").status == 200
    conn.close()
    assert len(server.requests) == 5
    assert [r.json["message"] for r in server.chat_requests()] == ["a", "b"]
    assert all("authorization" not in r.headers for r in server.requests)


# --- scenarios ------------------------------------------------------------------------------


def play(
    server: StandInServer, conn: Connection, scenario: Scenario, *, route: str = "stream-chat"
) -> Raw:
    server.queue(scenario)
    return conn.request("POST", f"/api/v1/workspace/research/{route}", {"message": "scripted"})


@pytest.mark.parametrize(
    ("scenario", "types"),
    [
        (scenarios.normal("Two words."), ["textResponseChunk"] * 3 + ["finalizeResponseStream"]),
        (
            scenarios.reasoning("Hmm.", "Yes."),
            ["textResponseChunk"] * 4 + ["finalizeResponseStream"],
        ),
        (scenarios.non_streaming("Whole."), ["textResponseChunk", "finalizeResponseStream"]),
        (scenarios.refusal(), ["textResponse"]),
        (scenarios.reset_confirmation(), ["textResponse"]),
        (scenarios.abort_before_tokens("boom"), ["abort"]),
        (
            scenarios.midstream_abort("partial ", "cut"),
            ["textResponseChunk", "abort", "finalizeResponseStream"],
        ),
        (scenarios.midstream_abort("", "cut"), ["abort", "finalizeResponseStream"]),
        (scenarios.ollama_error("so far "), ["textResponseChunk"] * 3 + ["finalizeResponseStream"]),
        (
            scenarios.agent("Final.", thoughts=["Looking"], downloads=[{"filename": "a.txt"}]),
            [
                "agentThought",
                "textResponseChunk",
                "fileDownload",
                "usageMetrics",
                "textResponse",
                "finalizeResponseStream",
            ],
        ),
        (
            scenarios.agent_failure("no provider"),
            ["agentThought", "textResponse", "finalizeResponseStream"],
        ),
        (scenarios.unknown_event(), None),
        (scenarios.line_separator(), None),
        (scenarios.trickle("Slow but steady.", delay=0.01), None),
        (scenarios.huge(50_000), None),
    ],
    ids=lambda value: value.name if isinstance(value, Scenario) else "",
)
def test_scenarios_stream_what_they_promise(
    server: StandInServer, conn: Connection, scenario: Scenario, types: list[str] | None
) -> None:
    response = play(server, conn, scenario)
    assert response.status == 200 and response.complete
    events = response.events
    if types is not None:
        assert [event["type"] for event in events] == types
    assert fold(events) == (scenario.expected_text, scenario.expected_error)
    turn = server.streams[-1]
    assert turn.finished.wait(5) and not turn.disconnected.is_set()
    assert {e.get("uuid") or e.get("id") for e in events} == {turn.turn_id}
    final = [e for e in events if e["type"] == "finalizeResponseStream"]
    if final and "chatId" in final[0]:
        assert final[0]["chatId"] == turn.chat_id == server.saved_chats()[-1].id
        assert final[0]["sources"] == list(scenario.sources)


def test_scenario_details(server: StandInServer, conn: Connection) -> None:
    thinking = play(server, conn, scenarios.reasoning("Let me see.", "Done.")).events
    assert (
        thinking[0]["textResponse"].startswith("<think>")
        and thinking[3]["textResponse"] == "</think>"
    )
    aborted = play(server, conn, scenarios.midstream_abort("part ", "cut")).events
    assert "uuid" in aborted[1] and aborted[2]["chatId"] == server.saved_chats()[-1].id
    assert server.saved_chats()[-1].response["text"] == "part "
    ollama = play(server, conn, scenarios.ollama_error(detail="refused")).events
    assert ollama[0]["error"] == "Ollama:streaming - could not stream chat. refused"
    refused = play(server, conn, scenarios.refusal(empty_workspace=False)).events
    assert "attachments" not in refused[0] and server.saved_chats()[-1].include is False
    source = scenarios.source("guide.pdf", "Chunk body.", score=0.5)
    cited = play(server, conn, scenarios.agent("Cited.", sources=[source])).events
    assert cited[-1]["sources"] == [source] and cited[-1]["thoughts"] == []
    replay = scenarios.normal("Again.")
    first, second = play(server, conn, replay), play(server, conn, replay)
    assert first.events[0]["uuid"] != second.events[0]["uuid"]


def test_scenarios_on_the_blocking_route(server: StandInServer, conn: Connection) -> None:
    answered = play(server, conn, scenarios.normal("Blocking answer."), route="chat")
    assert answered.json["textResponse"] == "Blocking answer." and answered.json["chatId"] >= 1
    failed = play(server, conn, scenarios.abort_before_tokens("down"), route="chat")
    assert (failed.status, failed.json["error"]) == (500, "down")
    agent = play(server, conn, scenarios.agent_failure("nope"), route="chat").json
    assert list(agent) == [
        "id",
        "type",
        "sources",
        "close",
        "error",
        "textResponse",
        "thoughts",
        "outputs",
        "metrics",
    ]
    assert agent["thoughts"] == ["Error encountered while running: nope"]
    thread_route = "thread/onboarding-questions/chat"
    assert (
        play(server, conn, scenarios.normal("In thread."), route=thread_route).json["textResponse"]
        == "In thread."
    )


@pytest.mark.parametrize(
    ("scenario", "status", "content_type", "body"),
    [
        (scenarios.http_error(), 400, "text/plain; charset=utf-8", b"Bad Request"),
        (scenarios.nginx_bad_gateway(), 502, "text/html", scenarios.NGINX_502_PAGE.encode()),
    ],
)
def test_http_error_scenarios(
    server: StandInServer,
    conn: Connection,
    scenario: Scenario,
    status: int,
    content_type: str,
    body: bytes,
) -> None:
    for route in ("stream-chat", "chat"):
        response = play(server, conn, scenario, route=route)
        assert (response.status, response.header("Content-Type"), response.body) == (
            status,
            content_type,
            body,
        )


def test_split_reads_cut_inside_characters_and_separators(
    server: StandInServer, conn: Connection
) -> None:
    scenario = scenarios.split_reads()
    response = play(server, conn, scenario)
    chunks = response.chunks
    assert chunks is not None and response.complete
    cut_characters = 0
    for chunk in chunks:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError:
            cut_characters += 1
    assert cut_characters > 0
    assert any(a.endswith(b"\n") and b == b"\n" for a, b in pairwise(chunks))
    assert fold(response.events)[0] == scenario.expected_text


def test_line_separators_are_sent_unescaped(server: StandInServer, conn: Connection) -> None:
    body = play(server, conn, scenarios.line_separator()).body
    for character in ("\u2028", "\u2029", "\u0085"):
        assert character.encode() in body
    assert b"\\u2028" not in body


def test_malformed_line_sits_between_good_events(server: StandInServer, conn: Connection) -> None:
    scenario = scenarios.malformed_line()
    response = play(server, conn, scenario)
    blocks = response.body.split(b"\n\n")
    bad = blocks.index(b'data: {"uuid":"oops", not json')
    assert 0 < bad < len(blocks) - 2
    assert fold(response.events)[0] == scenario.expected_text


def test_drop_ends_without_the_chunked_terminator(server: StandInServer, conn: Connection) -> None:
    scenario = scenarios.drop("half ")
    response = play(server, conn, scenario)
    assert not response.complete
    assert fold(response.events)[0] == "half " == scenario.expected_text
    assert response.body.endswith(b'data: {"uuid":"')
    assert server.streams[-1].finished.wait(5)
    assert not server.streams[-1].disconnected.is_set()


def test_stall_notices_the_client_hanging_up(server: StandInServer, conn: Connection) -> None:
    server.queue(scenarios.stall("waiting "))
    conn.send("POST", "/api/v1/workspace/research/stream-chat", {"message": "hang"})
    while b"waiting" not in conn.buffer:
        assert conn.receive()
    turn = server.streams[-1]
    assert not turn.finished.is_set()
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    assert turn.disconnected.wait(5) and turn.finished.wait(5)
    assert server.saved_chats()[-1].response["text"] == "waiting "


def test_stop_ends_a_stalled_stream_and_the_port_can_be_reused() -> None:
    first = StandInServer(api_key="k", speed=0).start()
    port = first.port
    conn = Connection(first)
    first.queue(scenarios.stall())
    conn.send("POST", "/api/v1/workspace/research/stream-chat", {"message": "hang"})
    while b"partial" not in conn.buffer:
        assert conn.receive()
    first.stop()
    assert first.streams[-1].finished.is_set() and not first.streams[-1].disconnected.is_set()
    assert not conn.receive()  # the server closed the connection
    conn.close()
    with StandInServer(api_key="k", port=port, speed=0) as second:
        assert Connection(second).request("GET", "/api/ping").status == 200
    first.start()  # the same instance comes back on its port, with its state
    assert first.port == port and len(first.streams) == 1
    assert Connection(first).request("GET", "/api/ping").status == 200
    first.stop()


def test_the_api_key_is_never_printed(capfd: pytest.CaptureFixture[str]) -> None:
    with StandInServer(speed=0) as quiet:
        assert quiet.api_key.startswith("standin-") and quiet.api_key not in repr(quiet)
        conn = Connection(quiet)
        conn.request("POST", "/api/v1/workspace/research/stream-chat", {"message": "hi"})
        conn.request("GET", "/api/v1/auth", key="wrong")
        conn.send("GET", "/api/v1/auth")  # and a client leaving mid-conversation
        conn.close()
        http.client.HTTPConnection("127.0.0.1", quiet.port).request("BOGUS", "/")
    out, err = capfd.readouterr()
    assert quiet.api_key not in out + err
    assert err == ""


def test_command_line_serves_until_sigterm(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "allm_jupyter.testing", "--port", str(port), "--api-key", "K-123"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        banner = iter(process.stdout.readline, "")
        text = "".join(takewhile(lambda line: not line.startswith("Stop"), banner))
        assert "research, scratchpad, assistant" in text
        exports = "\n".join(line for line in text.splitlines() if line.startswith("export "))
        pasted = subprocess.run(
            ["bash", "-c", f"{exports}\nenv"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        assert f"ANYTHING_LLM_BASE_URL=http://127.0.0.1:{port}" in pasted
        assert "ANYTHING_LLM_API_KEY=K-123" in pasted
        assert "ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG=research" in pasted
        ping = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        ping.request("GET", "/api/ping")
        assert ping.getresponse().read() == b'{"online":true}'
        ping.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.communicate()


def paused_seconds(steps: Sequence[object]) -> float:
    return sum(step.seconds for step in steps if isinstance(step, scenarios.Sleep))


def test_default_answers_stream_at_a_model_pace_unless_told_otherwise() -> None:
    """The demo's answers visibly grow (15 words/s by default); ``speed=0`` is for tests."""
    question = {"message": "What is a workspace?", "mode": "chat"}
    for speed in (MODEL_SPEED, 30.0, 0):
        with StandInServer(speed=speed) as paced:
            conn = Connection(paced)
            conn.request("POST", "/api/v1/workspace/research/stream-chat", question)
            conn.close()
            played = paced.streams[-1].scenario
        answer_words = len(played.expected_text.split())
        assert answer_words > 10
        expected = answer_words / speed if speed else 0
        assert paused_seconds(played.stream) == pytest.approx(expected)
        assert paused_seconds(played.sync) == pytest.approx(expected)
    queued = scenarios.normal("My own timing.")
    with StandInServer() as paced:
        paced.queue(queued)
        conn = Connection(paced)
        conn.request("POST", "/api/v1/workspace/research/stream-chat", question)
        conn.close()
        assert paced.streams[-1].scenario == queued, "queued scenarios keep their own timing"


def test_command_line_takes_the_speed() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "allm_jupyter.testing", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--speed" in done.stdout and "words per second" in done.stdout
