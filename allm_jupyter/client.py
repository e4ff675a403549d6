"""``Client``: AnythingLLM's developer API over one ``httpx.Client``.

It normalises the base URL, maps every failure to one :class:`~allm_jupyter.errors.AllmError`
subclass with an actionable sentence, and turns ``stream-chat`` into typed events (framing by
``_sse``). The API key lives in a :class:`~allm_jupyter.settings.Secret` and is added per request
by an ``httpx.Auth``, so it is in no attribute, default header or traceback local.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import mimetypes
import os
import re
import ssl
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from ._json import objects, read_json, text
from ._sse import event_data
from .attachments import DOCUMENT_MIME, Attachment, is_dataframe, table
from .errors import (
    AllmError,
    AuthenticationError,
    ChatAbortedError,
    ConfigurationError,
    ConnectionLostError,
    DocumentNotFoundError,
    ServerError,
    ServerUnreachableError,
    StreamTimeoutError,
    ThreadNotFoundError,
    UploadError,
    WorkspaceNotFoundError,
)
from .events import Event, FinalizeResponseStream, parse_event
from .models import Document, HistoryMessage, SearchResult, ServerInfo, Thread, Workspace
from .reply import Reply, ReplyBuilder
from .secret import Secret
from .settings import API_KEY_ENV, BASE_URL_ENV, DEFAULT_TIMEOUT, Origin, env_value
from .urls import DEFAULT_BASE_URL, normalize_base_url, redact_url

logger = logging.getLogger("allm_jupyter")

_LEGACY_MODE_ERROR = "automatic is not a valid mode."
_MISSING_WORKSPACE = re.compile(
    r"^Workspace (?P<slug>\S+) (is not a valid workspace|not found)\.?$|^Workspace not found$"
)
_MISSING_THREAD = re.compile(
    r"^Thread (?P<thread>\S+) not found\.?$|^Workspace \S+ or thread (?P<either>\S+) is not valid\.?$"
    r"|^Thread not found$"
)
_EMBED_TIMEOUT = 600.0
_Row = TypeVar("_Row")
_MASK = "********"


class PlainHttpWarning(UserWarning):
    """The API key is about to travel unencrypted to a host that is not this machine."""


class _BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` per request, reading the key from its wrapper only then."""

    def __init__(self, secret: Secret, origin: Origin) -> None:
        self._secret = secret
        self._origin = origin
        self._warned_hosts: set[str] = set()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._secret:
            if not self._secret.well_formed:
                raise ConfigurationError(
                    f"The API key from {self._origin.api_key} contains spaces or control characters; "
                    "copy it again from Settings > Developer API."
                )
            self._warn_if_plain_http(request.url)
            request.headers["Authorization"] = "Bearer " + self._secret.reveal()
        yield request

    def _warn_if_plain_http(self, url: httpx.URL) -> None:
        """Once per host: anyone on the network path can read a key sent over http."""
        if url.scheme != "http" or _is_loopback(url.host) or url.host in self._warned_hosts:
            return
        self._warned_hosts.add(url.host)
        warnings.warn(
            f"The API key goes to {url.host} over plain http, readable by anyone on the way; "
            f"use an https:// address in {self._origin.base_url} if the server offers one.",
            PlainHttpWarning,
            stacklevel=2,
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _TitleParser(HTMLParser):
    """Finds the ``<title>`` of a proxy's HTML error page, so the message stays one sentence."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _error_detail(body: str, content_type: str, reason: str) -> str:
    """The server's own words for an error, from JSON (``error``/``message``), text or HTML."""
    body = body.strip()
    if "json" in content_type:
        try:
            data = read_json(body, "The error")
        except ServerError:
            data = None
        if isinstance(data, dict):
            for key in ("error", "message"):
                if words := (text(data.get(key)) or "").strip():
                    return words
    if "html" in content_type or body.lstrip().lower().startswith(("<!doctype", "<html")):
        parser = _TitleParser()
        parser.feed(body)
        body = parser.title.strip()
    body = " ".join(body.split())
    return body[:200] or reason or "no details"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


class ChatStream:
    """The events of one streamed answer; iterate once. ``.reply`` is the fold so far.

    The HTTP request starts on iteration; the connection is closed when iteration ends (an error,
    the end of the answer) or on :meth:`close`/:meth:`stop`, which makes the real server stop
    generating. Errors raised after the answer started carry the partial reply as ``error.reply``.
    """

    def __init__(
        self,
        client: Client,
        path: str,
        body: dict[str, Any],
        builder: ReplyBuilder,
        workspace: str,
        thread: str | None,
        timeout: float,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._path = path
        self._body = body
        self._builder = builder
        self._workspace = workspace
        self._thread = thread
        self._iterator: Generator[Event, None, None] | None = None

    @property
    def reply(self) -> Reply:
        return self._builder.reply

    def __iter__(self) -> Iterator[Event]:
        if self._iterator is not None:
            raise RuntimeError("a ChatStream can be iterated only once")
        self._iterator = self._events()
        return self._iterator

    def _events(self) -> Generator[Event, None, None]:
        client = self._client
        try:
            with client._open_stream(
                self._path, self._body, self._workspace, self._thread, self._timeout
            ) as response:
                for message in event_data(response.iter_bytes()):
                    try:
                        data = read_json(client._masked(message), "An event")
                    except ServerError as exc:
                        logger.warning("ignored an event line from the server: %s", exc)
                        continue
                    if not isinstance(data, dict):
                        continue
                    event = parse_event(data)
                    self._builder.add(event)
                    yield event
                    if isinstance(event, FinalizeResponseStream):
                        break  # the end of the turn (§11.1), even if the server keeps the body open
        except KeyboardInterrupt:
            self._builder.interrupt()
            raise
        except httpx.TimeoutException:
            raise StreamTimeoutError(
                f"No data arrived from the server for {self._timeout:g} s, so the answer was cut "
                "off; raise the timeout (timeout=SECONDS) if the model is slow.",
                reply=self._builder.reply,
            ) from None
        except httpx.HTTPError as exc:
            raise ConnectionLostError(
                f"The connection to {client.base_url} broke before the answer ended "
                f"({type(exc).__name__}).",
                reply=self._builder.reply,
            ) from None
        reply = self._builder.finish()
        if reply.error:
            raise ChatAbortedError(
                f"The server stopped the answer: {_sentence(reply.error)}", reply=reply
            )
        if not (reply.text or reply.thoughts or reply.outputs or reply.files):
            raise ServerError("The server ended the answer without sending any text.", reply=reply)

    def close(self) -> None:
        """Hang up now, e.g. after ``break``; the server stops generating."""
        if self._iterator is not None:
            self._iterator.close()

    def stop(self) -> Reply:
        """Hang up because the user asked to stop; the reply is marked interrupted."""
        self.close()
        return self._builder.interrupt()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Client:
    """A synchronous AnythingLLM client.

    ``base_url`` (instance root; ``…/api`` and ``…/api/v1`` are accepted too), ``api_key`` and
    ``timeout`` (seconds without any byte before a stream is given up) default to
    ``ANYTHING_LLM_BASE_URL``, ``ANYTHING_LLM_API_KEY`` and 120 s. ``origin`` names where the URL
    and key came from, for messages (the magic passes its settings' sources). TLS certificates are
    always verified: against ``ca_bundle`` (a PEM file, e.g. a corporate CA) if given, else against
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` if set, else against certifi's bundle. Redirects are never
    followed (the key would go along); the error names where the server points instead.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        timeout: float | None = None,
        *,
        ca_bundle: str | Path | None = None,
        transport: httpx.BaseTransport | None = None,
        origin: Origin | None = None,
    ) -> None:
        self._origin = origin or Origin(
            base_url="Client's base_url" if base_url else BASE_URL_ENV,
            api_key="Client's api_key" if api_key is not None else API_KEY_ENV,
        )
        root = normalize_base_url(
            base_url or env_value(os.environ, BASE_URL_ENV) or DEFAULT_BASE_URL,
            origin=self._origin.base_url,
        )
        self.base_url = redact_url(root)
        """The server, as shown in messages (a password in the URL is masked)."""
        self._api_key = (
            api_key
            if isinstance(api_key, Secret)
            else Secret(api_key if api_key is not None else os.environ.get(API_KEY_ENV))
        )
        self.timeout = float(timeout) if timeout else DEFAULT_TIMEOUT
        self._http = httpx.Client(
            base_url=root + "/api",
            auth=_BearerAuth(self._api_key, self._origin),
            timeout=_timeouts(self.timeout),
            verify=ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else True,
            transport=transport,
            headers={"User-Agent": "allm-jupyter"},
        )

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, api_key={self._api_key!r}, timeout={self.timeout:g})"

    @property
    def has_api_key(self) -> bool:
        return bool(self._api_key)

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnreachableError:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return ServerUnreachableError(
                self.base_url,
                "its TLS certificate is not trusted; if a corporate CA signed it, point "
                "SSL_CERT_FILE at that CA's PEM file",
                url_origin=self._origin.base_url,
            )
        reason = {
            httpx.ConnectError: "connection refused or host not found",
            httpx.ConnectTimeout: "connection timed out",
        }.get(type(exc), type(exc).__name__)
        return ServerUnreachableError(self.base_url, reason, url_origin=self._origin.base_url)

    def _masked(self, text: str) -> str:
        """Server text with the API key masked: a proxy or server may quote the request back.

        Every string from the server passes through here first (bodies, events, reasons, headers
        we show), so no error, reply, log line or output can carry the key on its behalf.
        """
        key = self._api_key.reveal()
        if not key:
            return text
        if key.isascii() and key.isprintable() and '"' not in key and "\\" not in key:
            # JSON writes such a key (most keys) as it is: one form, no encoding per stream event.
            return text.replace(key, _MASK)
        for form in {key, json.dumps(key)[1:-1], json.dumps(key, ensure_ascii=False)[1:-1]}:
            text = text.replace(form, _MASK)
        return text

    def _body(self, response: httpx.Response) -> str:
        """A read response's body as text, masked; bytes that are not UTF-8 become U+FFFD."""
        return self._masked(response.content.decode("utf-8", "replace"))

    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send, turning transport failures and redirects into errors that name the server."""
        logger.debug("%s %s%s", request.method, request.url.path, " (stream)" if stream else "")
        try:
            response = self._http.send(request, stream=stream)
        except httpx.ConnectTimeout as exc:
            raise self._unreachable(exc) from None
        except httpx.TimeoutException:
            seconds = request.extensions.get("timeout", {}).get("read") or self.timeout
            raise StreamTimeoutError(
                f"The server at {self.base_url} sent no answer for {seconds:g} s; raise the "
                "timeout (timeout=SECONDS) if it is slow."
            ) from None
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.has_redirect_location:
            response.close()
            raise self._redirected(request, self._masked(response.headers["location"]))
        return response

    def _redirected(self, request: httpx.Request, location: str) -> ConfigurationError:
        """Where the server sends us, as scheme, host and path (no credentials, no query)."""
        try:
            target = request.url.join(location)
            shown = target.copy_with(username=None, password=None, query=None, fragment=None)
        except (httpx.InvalidURL, ValueError):
            return ConfigurationError(
                f"The server at {self.base_url} redirects to an address that is not a URL; set "
                f"{self._origin.base_url} to the server's own address."
            )
        # The part of the request's path below the instance root, e.g. "/api/v1/workspaces".
        root_path = self._http.base_url.path.rstrip("/").removesuffix("/api")
        below_root = request.url.path[len(root_path) :]
        if shown.path.endswith(below_root) and shown.scheme in ("http", "https"):
            suggested = str(shown.copy_with(path=shown.path[: -len(below_root)] or "/"))
            advice = f"set {self._origin.base_url} to {suggested.rstrip('/')}"
        else:
            advice = f"set {self._origin.base_url} to the server's own address"
        return ConfigurationError(
            f"The server at {self.base_url} redirects to {shown}; {advice} (redirects are not "
            "followed, so the API key goes nowhere else)."
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        workspace: str | None = None,
        thread: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Send one request and return its JSON object, or raise the mapped error."""
        response = self._send(self._http.build_request(method, path, **kwargs))
        if response.status_code >= 400:
            self._raise_for(response, workspace=workspace, thread=thread)
        answered = f"The server at {self.base_url} answered {method} {path}"
        data = read_json(self._body(response), answered)
        if not isinstance(data, dict):
            raise ServerError(
                f"{answered} with something that is not a JSON object; is this an AnythingLLM "
                "server?",
                status=response.status_code,
            )
        return data

    def _send_stream(self, path: str, body: dict[str, Any], timeout: float) -> httpx.Response:
        request = self._http.build_request("POST", path, json=body, timeout=_timeouts(timeout))
        return self._send(request, stream=True)

    @contextmanager
    def _open_stream(
        self, path: str, body: dict[str, Any], workspace: str, thread: str | None, timeout: float
    ) -> Iterator[httpx.Response]:
        """A response checked to be an event stream; pre-stream errors are raised."""
        response = self._send_stream(path, body, timeout)
        try:
            if (
                response.status_code == 400
                and body.get("mode") == "automatic"
                and _LEGACY_MODE_ERROR in response.read().decode("utf-8", "replace")
            ):
                # Servers before v1.12 know no "automatic" mode: ask again in chat mode, once.
                response.close()
                logger.info("server rejected mode 'automatic'; retrying in 'chat' mode")
                body["mode"] = "chat"
                response = self._send_stream(path, body, timeout)
            content_type = response.headers.get("content-type", "").partition(";")[0].strip()
            if response.status_code != 200 or content_type.lower() != "text/event-stream":
                response.read()
                if response.status_code == 200:
                    # The thread route crashes on an unknown workspace and answers 200 without SSE.
                    self.workspace(workspace)
                self._raise_for(response, workspace=workspace, thread=thread)
            yield response
        finally:
            response.close()

    def _available_slugs(self) -> list[str]:
        try:
            return [w.slug for w in self.workspaces()]
        except AllmError:
            return []

    def _raise_for(
        self, response: httpx.Response, *, workspace: str | None = None, thread: str | None = None
    ) -> None:
        """Raise the :class:`AllmError` that says what this error response means."""
        status = response.status_code
        if status == 403:
            raise AuthenticationError(
                key_set=bool(self._api_key), base_url=self.base_url, key_origin=self._origin.api_key
            )
        reason = self._masked(response.reason_phrase)
        content_type = response.headers.get("content-type", "").lower()
        detail = _error_detail(self._body(response), content_type, reason)
        missing_thread = _MISSING_THREAD.match(detail)
        if thread and missing_thread:
            raise ThreadNotFoundError(workspace or "", thread)
        if workspace and _MISSING_WORKSPACE.match(detail):
            raise WorkspaceNotFoundError(workspace, self._available_slugs())
        if workspace and status in (400, 404, 500) and "json" not in content_type:
            # Many workspace routes answer a bare "Bad Request" for an unknown slug, and before
            # v1.14.1 the thread routes a bare 400 (unknown thread) or 500 (unknown workspace).
            self.workspace(workspace)
            if thread and all(t.slug != thread for t in self.threads(workspace)):
                raise ThreadNotFoundError(workspace, thread)
        raise ServerError(
            f"The server answered {status} {reason}: {_sentence(detail)}",
            status=status,
            detail=detail,
        )

    # -- information ------------------------------------------------------------------------

    def server_info(self) -> ServerInfo:
        """Reachability, whether it is AnythingLLM, and its version; never raises."""
        try:
            ping = self._send(self._http.build_request("GET", "/ping"))
        except AllmError as exc:
            return ServerInfo(self.base_url, reachable=False, reason=exc.message)
        if not _is_ping(ping):
            kind = ping.headers.get("content-type", "").partition(";")[0] or "no content type"
            answered = f"{ping.status_code} {ping.reason_phrase}"
            answered += f", {kind}" if ping.status_code == 200 else ""
            reason = f"not an AnythingLLM server (GET /api/ping answered {answered})"
            return ServerInfo(self.base_url, reachable=True, anythingllm=False, reason=reason)
        try:
            data = self._request("GET", "/utils/metrics")
        except AllmError:
            data = {}
        build = text(data.get("version"))
        return ServerInfo(
            self.base_url,
            reachable=True,
            version=text(data.get("appVersion")),
            build=build if build and build.strip("-") else None,
            mode=text(data.get("mode")),
            vector_db=text(data.get("vectorDB")),
        )

    def auth(self) -> bool:
        """Whether the server accepts the API key (``False`` on 403; raises if unreachable)."""
        try:
            data = self._request("GET", "/v1/auth")
        except AuthenticationError:
            return False
        return bool(data.get("authenticated"))

    def workspaces(self) -> list[Workspace]:
        data = self._request("GET", "/v1/workspaces")
        return [Workspace.from_wire(r) for r in objects(data.get("workspaces"))]

    def workspace(self, slug: str) -> Workspace:
        """One workspace with its documents; an unknown slug raises with the available ones."""
        data = self._request("GET", f"/v1/workspace/{_segment(slug)}")
        found = data.get("workspace")
        if isinstance(found, list):  # v1.1.0+: a list of 0 or 1 rows
            found = found[0] if found else None
        if not isinstance(found, dict):
            raise WorkspaceNotFoundError(slug, self._available_slugs())
        return Workspace.from_wire(found)

    def find_workspace(self, wanted: str) -> Workspace:
        """The workspace whose slug is ``wanted``, else the one whose name or slug matches it
        case-insensitively (the web UI shows names); otherwise the error suggests the closest slug.
        """
        found = self.workspaces()
        match = _one_match(wanted, found, lambda w: (w.slug, w.name))
        if match is None:
            raise WorkspaceNotFoundError(wanted, [w.slug for w in found])
        return match

    def threads(self, slug: str) -> list[Thread]:
        """The workspace's threads with their names (the single-workspace route omits names)."""
        for workspace in self.workspaces():
            if workspace.slug == slug:
                return list(workspace.threads)
        raise WorkspaceNotFoundError(slug, self._available_slugs())

    def find_thread(self, slug: str, wanted: str) -> Thread:
        """The thread of ``slug`` whose slug is ``wanted``, else the one named so (case-insensitively)."""
        match = _one_match(wanted, self.threads(slug), lambda t: (t.slug, t.name or ""))
        if match is None:
            raise ThreadNotFoundError(slug, wanted)
        return match

    def new_thread(self, slug: str, name: str | None = None) -> Thread:
        body = {"name": name} if name else {}
        data = self._request(
            "POST", f"/v1/workspace/{_segment(slug)}/thread/new", json=body, workspace=slug
        )
        row = data.get("thread")
        if not isinstance(row, dict) or not row.get("slug"):
            message = data.get("message")
            raise ServerError(f"The server did not create the thread: {_sentence(str(message))}")
        return Thread(slug=str(row["slug"]), name=row.get("name") or name)

    def history(
        self,
        slug: str,
        session_id: str | None = None,
        thread: str | None = None,
        limit: int = 20,
    ) -> list[HistoryMessage]:
        """The latest ``limit`` exchanges, oldest first (a session's hidden ones included)."""
        if thread:
            data = self._request(
                "GET",
                f"/v1/workspace/{_segment(slug)}/thread/{_segment(thread)}/chats",
                workspace=slug,
                thread=thread,
            )
            messages = [HistoryMessage.from_wire(r) for r in objects(data.get("history"))]
            return messages[-2 * limit :] if limit else messages
        params: dict[str, Any] = {"limit": limit, "orderBy": "desc"}
        if session_id:
            params["apiSessionId"] = session_id
        data = self._request(
            "GET", f"/v1/workspace/{_segment(slug)}/chats", params=params, workspace=slug
        )
        return _oldest_first([HistoryMessage.from_wire(r) for r in objects(data.get("history"))])

    def vector_search(
        self, slug: str, query: str, top_n: int = 4, score_threshold: float | None = None
    ) -> list[SearchResult]:
        body: dict[str, Any] = {"query": query, "topN": top_n}
        if score_threshold is not None:
            body["scoreThreshold"] = score_threshold
        data = self._request(
            "POST", f"/v1/workspace/{_segment(slug)}/vector-search", json=body, workspace=slug
        )
        return [SearchResult.from_wire(r) for r in objects(data.get("results"))]

    def upload(self, path: str | Path, slug: str) -> list[Document]:
        """Upload a file, embed it into the workspace, and check that it really got there.

        The server reports neither parse nor embedding failures, so the workspace's document list
        is the only proof.
        """
        file_path = Path(path)
        if not file_path.is_file():
            raise UploadError(f"There is no file at {file_path}.")
        self.workspace(slug)  # fail before uploading when the slug is wrong
        mime = mimetypes.guess_type(file_path.name)[0] or "application/octet-stream"
        with file_path.open("rb") as handle:
            locations = self._store_document(
                "/v1/document/upload",
                file_path.name,
                files={"file": (file_path.name, handle, mime)},
            )
        self._request(
            "POST",
            f"/v1/workspace/{_segment(slug)}/update-embeddings",
            json={"adds": locations, "deletes": []},
            workspace=slug,
            timeout=_timeouts(max(self.timeout, _EMBED_TIMEOUT)),
        )
        return self._embedded(slug, locations, file_path.name)

    # -- chat -------------------------------------------------------------------------------

    def stream_chat(
        self,
        slug: str,
        message: str,
        *,
        mode: str | None = None,
        session_id: str | None = None,
        thread: str | None = None,
        reset: bool = False,
        attachments: Sequence[Attachment | Mapping[str, str]] | None = None,
        timeout: float | None = None,
    ) -> ChatStream:
        """Ask a question and iterate its typed events as they arrive (workspace or thread route).

        ``attachments`` are :class:`~allm_jupyter.attachments.Attachment` objects (see
        :func:`~allm_jupyter.attachments.attachment`) or raw ``{name, mime, contentString}``
        dicts; documents are read only in chat and query turns, so pass ``mode`` with them
        (new workspaces default to ``automatic``). ``timeout`` overrides the client's idle
        timeout for this answer only.
        """
        message = message or ""
        if not message.strip() and not reset:
            raise ConfigurationError("The question is empty; write it in the cell body.")
        if reset and not (session_id or thread):
            # Without a session the server would hide every chat of the workspace (§6).
            raise ConfigurationError(
                "reset needs a session_id or a thread, to reset only that one."
            )
        body: dict[str, Any] = {"message": message}
        if mode:
            body["mode"] = mode
        if session_id:
            body["sessionId"] = session_id
        if reset:
            body["reset"] = True
        if attachments:
            body["attachments"] = _wire_attachments(attachments, message, mode)
        path = f"/v1/workspace/{_segment(slug)}"
        if thread:
            path += f"/thread/{_segment(thread)}"
        builder = ReplyBuilder(
            workspace=slug,
            thread=thread,
            session_id=session_id,
            reset_only=reset and not message.strip(),
        )
        return ChatStream(
            self, path + "/stream-chat", body, builder, slug, thread, timeout or self.timeout
        )

    def chat(
        self,
        slug: str,
        message: str,
        *,
        mode: str | None = None,
        session_id: str | None = None,
        thread: str | None = None,
        reset: bool = False,
        attachments: Sequence[Attachment | Mapping[str, str]] | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """Ask a question and return the whole :class:`Reply` (the stream, folded)."""
        stream = self.stream_chat(
            slug,
            message,
            mode=mode,
            session_id=session_id,
            thread=thread,
            reset=reset,
            attachments=attachments,
            timeout=timeout,
        )
        for _ in stream:
            pass
        return stream.reply

    # -- notebook data into a workspace -------------------------------------------------------

    def _store_document(self, path: str, what: str, **kwargs: Any) -> list[str]:
        """POST to a document route and return the new documents' locations.

        Parse and collector failures are a 500 (422 for missing fields) with
        ``{"success": false, "error"}``; they all mean the document was not made.
        """
        try:
            data = self._request(
                "POST", path, timeout=_timeouts(max(self.timeout, _EMBED_TIMEOUT)), **kwargs
            )
        except ServerError as exc:
            data = {"error": exc.detail}
        locations = [d["location"] for d in objects(data.get("documents")) if d.get("location")]
        if not data.get("success") or not locations:
            reason = data.get("error") or "no document was produced"
            raise UploadError(f"The server could not read {what}: {_sentence(str(reason))}")
        return locations

    def _embedded(self, slug: str, locations: Sequence[str], what: str) -> list[Document]:
        """The workspace's rows for ``locations``: the server reports no embedding failure, so
        its document list is the only proof."""
        embedded = {d.docpath: d for d in self.workspace(slug).documents}
        if any(location not in embedded for location in locations):
            raise UploadError(
                f"{what} was uploaded but not embedded into '{slug}' (check the server's "
                "embedder settings and logs)."
            )
        return [embedded[location] for location in locations]

    def upload_text(
        self,
        slug: str,
        content: str | Any,
        *,
        title: str,
        description: str | None = None,
        max_rows: int | None = None,
    ) -> Document:
        """Save text, or a pandas/polars DataFrame as CSV (all rows unless ``max_rows``), as a
        document titled ``title`` and embed it into the workspace (``raw-text``).

        The server names the document after the title, slugged, with ``.txt``.
        """
        if isinstance(content, str):
            text_content = content
        elif is_dataframe(content):
            text_content = table(content, max_rows=max_rows or len(content)).text
        else:
            raise UploadError(
                f"upload_text takes text or a pandas/polars DataFrame, not a {type(content).__name__}."
            )
        if not text_content.strip():
            raise UploadError(f"{title} is empty; there is nothing to upload.")
        if not title.strip():
            raise UploadError("The document needs a title.")
        self.workspace(slug)  # the server skips an unknown slug silently
        metadata = {"title": title} | ({"description": description} if description else {})
        locations = self._store_document(
            "/v1/document/raw-text",
            title,
            json={"textContent": text_content, "metadata": metadata, "addToWorkspaces": slug},
        )
        return self._embedded(slug, locations[:1], title)[0]

    def upload_link(self, slug: str, url: str) -> Document:
        """Have the server fetch a web page, save it as a document and embed it (``upload-link``)."""
        shown = redact_url(url)
        if not re.match(r"^https?://[^\s/]+", url):
            raise UploadError(f"'{shown}' is not an http(s) link.")
        self.workspace(slug)
        try:
            locations = self._store_document(
                "/v1/document/upload-link", shown, json={"link": url, "addToWorkspaces": slug}
            )
        except UploadError as exc:  # the server quotes the link it was given
            raise UploadError(exc.message.replace(url, shown)) from None
        return self._embedded(slug, locations[:1], shown)[0]

    def documents(self, slug: str) -> list[Document]:
        """The workspace's embedded documents, each with its ``pinned`` flag."""
        return list(self.workspace(slug).documents)

    def pin(self, slug: str, document: str, pinned: bool = True) -> Document:
        """Pin (or unpin, ``pinned=False``) a document, named by its docpath, file name or title.

        A pinned document is put into every prompt whole (``update-pin``).
        """
        found = _find_document(self.documents(slug), document, slug)
        try:
            self._request(
                "POST",
                f"/v1/workspace/{_segment(slug)}/update-pin",
                json={"docPath": found.docpath, "pinStatus": pinned},
                workspace=slug,
            )
        except ServerError as exc:
            if exc.status == 404:  # removed since it was listed
                raise DocumentNotFoundError(
                    f"Workspace '{slug}' has no document {found.docpath} any more."
                ) from None
            raise
        return dataclasses.replace(found, pinned=pinned)


def _wire_attachments(
    attachments: Sequence[Attachment | Mapping[str, str]], message: str, mode: str | None
) -> list[dict[str, str]]:
    wire = [a.to_wire() if isinstance(a, Attachment) else dict(a) for a in attachments]
    agent_turn = message.startswith("@agent") or mode == "automatic"
    if agent_turn and any(a.get("mime") == DOCUMENT_MIME for a in wire):
        # Agent turns skip the document parser: the document would be dropped without a word.
        raise ConfigurationError(
            "Document attachments are not read in agent turns (@agent or mode automatic); "
            "ask in chat or query mode."
        )
    return wire


def _find_document(documents: Sequence[Document], name: str, slug: str) -> Document:
    """A document by docpath, else by file name or title; an ambiguous name lists the choices."""
    for field in ("docpath", "filename", "title"):
        matches = [d for d in documents if getattr(d, field) == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            paths = ", ".join(d.docpath for d in matches)
            raise DocumentNotFoundError(
                f"Several documents of '{slug}' are called {name}; name one by its path: {paths}."
            )
    listed = ", ".join(d.title or d.filename for d in documents[:20]) or "it has none"
    raise DocumentNotFoundError(f"Workspace '{slug}' has no document {name} ({listed}).")


def _is_ping(response: httpx.Response) -> bool:
    """Whether ``response`` is AnythingLLM's ``{"online": true}``."""
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return False
    try:
        data = response.json()
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and "online" in data


def _one_match(
    wanted: str, rows: Sequence[_Row], keys: Callable[[_Row], tuple[str, str]]
) -> _Row | None:
    """The row whose slug is ``wanted``, else the only one whose slug or name equals it ignoring case."""
    exact = [row for row in rows if keys(row)[0] == wanted]
    folded = wanted.casefold()
    loose = [row for row in rows if folded in (key.casefold() for key in keys(row))]
    candidates = exact or loose
    return candidates[0] if len(candidates) == 1 else None


def _timeouts(seconds: float) -> httpx.Timeout:
    """``seconds`` without a byte before giving up; connecting should never take that long."""
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


def _segment(value: str) -> str:
    """A slug as one URL path segment (slugs are user-visible and could hold anything)."""
    return quote(value, safe="")


def _oldest_first(messages: list[HistoryMessage]) -> list[HistoryMessage]:
    """``orderBy=desc`` gives the newest exchanges first; show them as a conversation reads."""
    pairs: list[list[HistoryMessage]] = []
    for message in messages:
        if message.role == "user" or not pairs:
            pairs.append([message])
        else:
            pairs[-1].append(message)
    return [m for pair in reversed(pairs) for m in pair]
