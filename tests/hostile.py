"""A hostile HTTP server on loopback: canned raw response bytes, for what the stand-in cannot send.

The stand-in plays AnythingLLM's behaviour; this one plays a broken proxy or a malicious server.
Each route answers with exact bytes (status line and headers included), written in the given
separate writes, and may keep the connection open afterwards until the client hangs up; a route
given a list answers its requests in that order, the last answer repeating. Every request is
recorded, headers included, so tests can check what the client sent.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

_HEAD_LIMIT = 65_536


@dataclass(frozen=True)
class Canned:
    """One response as raw bytes, sent in ``writes`` (each its own ``send``)."""

    writes: tuple[bytes, ...]
    keep_open: bool = False
    """After the last write, wait for the client to close instead of closing."""


def http_response(
    status: int,
    body: bytes = b"",
    content_type: str = "application/json",
    *,
    reason: str = "OK",
    headers: Iterable[tuple[str, str]] = (),
    length: bool = True,
) -> bytes:
    """A whole HTTP/1.1 response; without ``length`` the body runs until the connection closes."""
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}", "Connection: close"]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def canned(data: bytes, *, keep_open: bool = False) -> Canned:
    return Canned((data,), keep_open)


HELD = Canned((), keep_open=True)
"""Accept the request and never answer: the client waits until it is stopped (pair it with
:meth:`HostileServer.wait_for_request`, which says when the request has arrived)."""


STREAM_SLUG = "ws"
STREAM_ROUTE = f"/api/v1/workspace/{STREAM_SLUG}/stream-chat"
"""Where the stream tests serve their raw responses."""
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Connection: close\r\n\r\n"
)
"""The head of an SSE response that ends when the connection closes, as the real server sends."""


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    """Without the query string."""
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    """Lower-cased names."""
    arrived: float = field(default_factory=time.monotonic)
    """When its head was read (``time.monotonic``, the clients' backoff clock)."""


class HostileServer:
    """Serves ``routes`` (path -> :class:`Canned`) on 127.0.0.1, a free port; elsewhere
    ``otherwise`` (default: 404)."""

    def __init__(
        self,
        routes: Mapping[str, Canned | list[Canned]] | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        otherwise: Canned | None = None,
    ) -> None:
        self.routes: dict[str, Canned | list[Canned]] = dict(routes or {})
        self.otherwise = otherwise or canned(
            http_response(404, b"Not Found", "text/plain", reason="Not Found")
        )
        self._tls = tls
        self.requests: list[RawRequest] = []
        self.hangups = threading.Semaphore(0)
        """Released each time a kept-open connection is closed by the client."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._port = self._listener.getsockname()[1]
        self._wake_read, self._wake_write = socket.socketpair()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)

    @property
    def base_url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    def wait_for_any_request(self, timeout: float = 60) -> bool:
        """Whether any request arrived (now or within ``timeout`` seconds)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: bool(self.requests), timeout)

    def requested(self, path: str) -> bool:
        with self._lock:
            return self._has(path)

    def wait_for_request(self, path: str, timeout: float = 60) -> bool:
        """Whether a request for ``path`` arrived (now or within ``timeout`` seconds)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self._has(path), timeout)

    def _has(self, path: str) -> bool:
        return any(request.path == path for request in self.requests)

    def __enter__(self) -> HostileServer:
        self._spawn(self._accept_loop)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._wake_write.send(b"x")
        for thread in list(self._threads):
            thread.join(timeout=10)
        self._listener.close()
        self._wake_read.close()
        self._wake_write.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _readable(self, sock: socket.socket) -> bool:
        """Wait until ``sock`` can be read; False once the server stops."""
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        ready, _, _ = select.select([sock, self._wake_read], [], [])
        return sock in ready and not self._stopping.is_set()

    def _accept_loop(self) -> None:
        while self._readable(self._listener):
            connection, _ = self._listener.accept()
            self._spawn(self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            try:
                connection = self._tls.wrap_socket(connection, server_side=True)
            except (ssl.SSLError, OSError):  # the client refused our certificate
                connection.close()
                return
        with connection:
            request = self._read_request(connection)
            if request is None:
                return
            with self._arrived:
                self.requests.append(request)
                self._arrived.notify_all()
            answer = self._answer(request.path)
            try:
                for data in answer.writes:
                    connection.sendall(data)
                if answer.keep_open:
                    self._await_hangup(connection)
            except OSError:  # the client left early: fine, it may
                return

    def _answer(self, path: str) -> Canned:
        with self._lock:
            route = self.routes.get(path)
            if isinstance(route, list):
                return route.pop(0) if len(route) > 1 else route[0]
        return route or self.otherwise

    def count(self, path: str) -> int:
        """How many requests for ``path`` arrived."""
        with self._lock:
            return sum(request.path == path for request in self.requests)

    def _await_hangup(self, connection: socket.socket) -> None:
        while self._readable(connection):
            try:
                if not connection.recv(4096):
                    self.hangups.release()
                    return
            except OSError:
                self.hangups.release()
                return

    def _read_request(self, connection: socket.socket) -> RawRequest | None:
        data = b""
        while b"\r\n\r\n" not in data:
            if len(data) > _HEAD_LIMIT or not self._readable(connection):
                return None
            chunk = connection.recv(4096)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        remaining = int(headers.get("content-length", "0")) - len(body)
        while remaining > 0 and self._readable(connection):
            chunk = connection.recv(min(remaining, 65_536))
            if not chunk:
                break
            remaining -= len(chunk)
        return RawRequest(method, target.partition("?")[0], target, headers)


def closed_port_url() -> str:
    """``http://localhost:PORT`` where nothing listens (a port just freed on 127.0.0.1)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://localhost:{probe.getsockname()[1]}"
