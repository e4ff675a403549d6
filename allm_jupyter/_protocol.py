"""The protocol core both clients share: no sockets, no sleeping, no files opened.

Each operation (``workspaces``, ``history``, ``upload``…) is written once, here, as a generator
that *yields* the :class:`Call` it needs and receives the answer's JSON object (or has the mapped
:class:`~allm_jupyter.errors.AllmError` thrown into it, to catch or let pass). The sync
:class:`~allm_jupyter.client.Client` and the :class:`~allm_jupyter.async_client.AsyncClient` only
drive these generators over ``httpx``: that is their whole difference. A response becomes a result
or an error by pure functions (:func:`failure`, :func:`json_object`); where a better message needs
more facts (which workspaces exist), the mapping returns a :class:`Diagnosis`, and the shell asks
for those facts as a separate, explicit step whose own failure never replaces the error.
An answer's bytes become events and a reply in :class:`ChatTurn`, a small state machine.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import mimetypes
import random
import re
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

import httpx

from ._json import objects, read_json, text
from ._sse import EventDecoder, LineTooLong
from .config import (
    CONNECT_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    DOCUMENT_MIME,
    ClientConfig,
    Origin,
    checked_timeout,
)
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
from .urls import redact_url

logger = logging.getLogger("allm_jupyter")

T = TypeVar("T")
_Row = TypeVar("_Row")

_MASK = "********"
_LEGACY_MODE_ERROR = "automatic is not a valid mode."
_MISSING_WORKSPACE = re.compile(
    r"^Workspace (?P<slug>\S+) (is not a valid workspace|not found)\.?$|^Workspace not found$"
)
_MISSING_THREAD = re.compile(
    r"^Thread (?P<thread>\S+) not found\.?$|^Workspace \S+ or thread (?P<either>\S+) is not valid\.?$"
    r"|^Thread not found$"
)
EMBED_TIMEOUT = 600.0
"""Seconds an upload or an embedding may take at least: the server parses and embeds first."""
RETRY_STATUSES = frozenset({429, 502, 503, 504})
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
"""A ``Retry-After`` longer than this is not waited for: the request fails instead."""


# -- requests and answers as plain data -------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request an operation needs, with what its error mapping must know."""

    method: str
    path: str
    """Below ``/api``, e.g. ``/v1/workspaces``."""
    params: Mapping[str, Any] | None = None
    json: Any = None
    upload: tuple[str, bytes, str] | None = None
    """A file to send as multipart ``file``: (name, content, mime)."""
    timeout: float | httpx.Timeout | None = None
    """This request's own timeout, else the client's."""
    workspace: str | None = None
    thread: str | None = None
    raw: bool = False
    """Give the operation the :class:`Answer` as it is: no error mapping, no JSON."""

    @property
    def repeatable(self) -> bool:
        """Whether a failure after the server may have acted (502, 504) may be retried: reads,
        and a chat (retried only before any byte of the answer arrived)."""
        return self.method == "GET" or self.path.endswith("/stream-chat")


@dataclass(frozen=True)
class Answer:
    """A response, read: status, the headers that matter, and the body as text with the key masked."""

    status: int
    reason: str
    content_type: str
    body: str


def answer_of(response: httpx.Response, body: bytes, key: Secret) -> Answer:
    return Answer(
        response.status_code,
        masked(response.reason_phrase, key),
        response.headers.get("content-type", "").lower(),
        masked(body.decode("utf-8", "replace"), key),
    )


class ToWire(Protocol):
    """An attachment object (:class:`~allm_jupyter.attachments.Attachment`): its wire dict."""

    def to_wire(self) -> dict[str, str]: ...


Op = Generator[Call, Any, T]
"""An operation: yields calls, receives each call's JSON object (or :class:`Answer` if raw)."""


def masked(text: str, key: Secret) -> str:
    """Server text with the API key masked: a proxy or server may quote the request back.

    Every string from the server passes through here first (bodies, events, reasons, headers we
    show), so no error, reply, log line or output can carry the key on its behalf.
    """
    revealed = key.reveal()
    if not revealed:
        return text
    if (
        revealed.isascii()
        and revealed.isprintable()
        and '"' not in revealed
        and "\\" not in revealed
    ):
        # JSON writes such a key (most keys) as it is: one form, no encoding per stream event.
        return text.replace(revealed, _MASK)
    forms = {revealed, json.dumps(revealed)[1:-1], json.dumps(revealed, ensure_ascii=False)[1:-1]}
    for form in forms:
        text = text.replace(form, _MASK)
    return text


def timeouts(value: float | httpx.Timeout) -> httpx.Timeout:
    """A number is seconds without a byte; connecting gets at most :data:`CONNECT_TIMEOUT` of it."""
    if isinstance(value, httpx.Timeout):
        return value
    return httpx.Timeout(value, connect=min(value, CONNECT_TIMEOUT))


def at_least(value: float | httpx.Timeout, seconds: float) -> httpx.Timeout:
    """``value`` with its read and write limits raised to ``seconds`` (an upload, an embedding)."""
    limits = timeouts(value)
    return httpx.Timeout(
        connect=limits.connect,
        read=None if limits.read is None else max(limits.read, seconds),
        write=None if limits.write is None else max(limits.write, seconds),
        pool=limits.pool,
    )


def read_seconds(value: float | httpx.Timeout) -> float | None:
    seconds: float | None = timeouts(value).read
    return seconds


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` per request, reading the key from its wrapper only then."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._warned_hosts: set[str] = set()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        secret = self._config.api_key
        if secret:
            if not secret.well_formed:
                raise ConfigurationError(
                    f"The API key from {self._config.origin.api_key} contains spaces or control "
                    "characters; copy it again from Settings > Developer API."
                )
            self._warn_if_plain_http(request.url)
            request.headers["Authorization"] = "Bearer " + secret.reveal()
        yield request

    def _warn_if_plain_http(self, url: httpx.URL) -> None:
        """Once per host: anyone on the network path can read a key sent over http."""
        if url.scheme != "http" or _is_loopback(url.host) or url.host in self._warned_hosts:
            return
        self._warned_hosts.add(url.host)
        warnings.warn(
            f"The API key goes to {url.host} over plain http, readable by anyone on the way; "
            f"use an https:// address in {self._config.origin.base_url} if the server offers one.",
            PlainHttpWarning,
            stacklevel=2,
        )


class PlainHttpWarning(UserWarning):
    """The API key is about to travel unencrypted to a host that is not this machine."""


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_request(
    http: httpx.Client | httpx.AsyncClient, config: ClientConfig, call: Call
) -> httpx.Request:
    """The ``httpx.Request`` for ``call``: absolute URL, our headers and timeout, so a client the
    caller owns (``http_client=``) needs no settings of ours."""
    files = None
    if call.upload is not None:
        name, content, mime = call.upload
        files = {"file": (name, content, mime)}
    return http.build_request(
        call.method,
        config.root + "/api" + call.path,
        params=call.params,
        json=call.json,
        files=files,
        headers={"User-Agent": "allm-jupyter", **dict(config.headers)},
        timeout=timeouts(call.timeout if call.timeout is not None else config.timeout),
    )


# -- failures -----------------------------------------------------------------------------------


def transport_failure(exc: httpx.TransportError, config: ClientConfig) -> AllmError:
    """No HTTP answer: an unreachable server, or one that went silent for the read timeout."""
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        seconds = (
            exc.request.extensions.get("timeout", {}).get("read") if _has_request(exc) else None
        )
        waited = f"for {seconds:g} s" if seconds else "in time"
        return StreamTimeoutError(
            f"The server at {config.base_url} sent no answer {waited}; pass a larger timeout "
            "if it is slow."
        )
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        reason = (
            "its TLS certificate is not trusted; if a corporate CA signed it, pass that CA's "
            "PEM file as ca_bundle or point SSL_CERT_FILE at it"
        )
    else:
        reason = {
            httpx.ConnectError: "connection refused or host not found",
            httpx.ConnectTimeout: "connection timed out",
        }.get(type(exc), type(exc).__name__)
    return ServerUnreachableError(config.base_url, reason, url_origin=config.origin.base_url)


def read_failure(exc: httpx.HTTPError, config: ClientConfig) -> AllmError:
    """A body that broke off or cannot be decoded (a bad ``Content-Encoding``)."""
    if isinstance(exc, httpx.TransportError):
        return transport_failure(exc, config)
    return ServerError(
        f"The server at {config.base_url} sent a body that cannot be read ({type(exc).__name__})."
    )


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 -- raises RuntimeError when httpx did not attach one
    except RuntimeError:
        return False
    return True


def never_sent(exc: httpx.TransportError) -> bool:
    """Whether the request surely never reached the server (safe to repeat any request)."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def retry_wait(
    call: Call,
    attempt: int,
    config: ClientConfig,
    *,
    error: httpx.TransportError | None = None,
    response: httpx.Response | None = None,
) -> float | None:
    """Seconds to wait before sending ``call`` again after try number ``attempt`` ended in
    ``error`` or ``response``; ``None``: do not send it again.

    Any request is repeated when it never reached the server (no connection) or the server
    refused it unseen (429, 503); reads and chats also after a proxy's 502 or 504, where the
    server may have acted. A chat is only repeated before any byte of its answer arrived.
    """
    if attempt > config.max_retries:
        return None
    if error is not None:
        return retry_delay(attempt, None) if never_sent(error) else None
    if response is None or response.status_code not in RETRY_STATUSES:
        return None
    if response.status_code in (502, 504) and not call.repeatable:
        return None
    return retry_delay(attempt, response.headers.get("retry-after"))


def redirect_error(
    config: ClientConfig, call: Call, response: httpx.Response
) -> ConfigurationError:
    return redirected(config, call.path, masked(response.headers["location"], config.api_key))


def redirected(config: ClientConfig, request_path: str, location: str) -> ConfigurationError:
    """Where the server sends us, as scheme, host and path (no credentials, no query)."""
    setting = config.origin.base_url
    try:
        target = httpx.URL(config.root + "/api" + request_path).join(location)
        shown = target.copy_with(username=None, password=None, query=None, fragment=None)
    except (httpx.InvalidURL, ValueError):
        return ConfigurationError(
            f"The server at {config.base_url} redirects to an address that is not a URL; set "
            f"{setting} to the server's own address."
        )
    below_root = "/api" + request_path.partition("?")[0]
    if shown.path.endswith(below_root) and shown.scheme in ("http", "https"):
        suggested = str(shown.copy_with(path=shown.path[: -len(below_root)] or "/"))
        advice = f"set {setting} to {suggested.rstrip('/')}"
    else:
        advice = f"set {setting} to the server's own address"
    return ConfigurationError(
        f"The server at {config.base_url} redirects to {shown}; {advice} (redirects are not "
        "followed, so the API key goes nowhere else)."
    )


def too_large(
    config: ClientConfig, what: str, argument: str, cap: int, reply: Reply | None = None
) -> ServerError:
    return ServerError(
        f"The server at {config.base_url} sent {what} longer than {argument} ({cap:,} bytes); "
        f"pass a larger {argument} if it really sends that much.",
        reply=reply,
    )


class BodyReader:
    """Collects a plain body's reads up to ``max_body_bytes`` (a hostile server may never stop)."""

    def __init__(self, config: ClientConfig, declared: str | None) -> None:
        self._config = config
        self._parts: list[bytes] = []
        self._size = 0
        if declared and declared.isdigit() and int(declared) > config.max_body_bytes:
            raise self._too_large()

    def add(self, read: bytes) -> None:
        self._size += len(read)
        if self._size > self._config.max_body_bytes:
            raise self._too_large()
        self._parts.append(read)

    def body(self) -> bytes:
        return b"".join(self._parts)

    def _too_large(self) -> ServerError:
        return too_large(self._config, "a response", "max_body_bytes", self._config.max_body_bytes)


def retry_delay(attempt: int, retry_after: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait before retry number ``attempt`` (1, 2, …); ``None``: do not retry.

    The server's ``Retry-After`` (seconds or an HTTP date) wins when it is at most a minute;
    otherwise the wait doubles from 0.5 s up to 8 s, less up to a quarter at random, so clients
    that failed together do not come back together.
    """
    if retry_after is not None:
        seconds = _retry_after_seconds(retry_after, now)
        if seconds is not None:
            return seconds if seconds <= MAX_RETRY_AFTER else None
    delay: float = min(INITIAL_RETRY_DELAY * 2.0 ** (attempt - 1), MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())


def _retry_after_seconds(value: str, now: float | None) -> float | None:
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = when - (time.time() if now is None else now)
    return max(seconds, 0.0) if seconds == seconds else None  # NaN is no answer


class Backoff:
    """A client's shared pause: a 429 or 503 on one request holds back all of its requests, so a
    batch of concurrent questions slows down together instead of storming the server."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0
        self._lock = threading.Lock()
        """A sync client and the batch's AsyncClient (on the loop thread) share one backoff: a
        pause is read, compared and written as one step, so a shorter one never undoes a longer."""

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def remaining(self) -> float:
        return max(0.0, self._until - self._clock())


@dataclass(frozen=True)
class Diagnosis:
    """A mapped error, and the facts that could make it say more (the shell may fetch them)."""

    error: AllmError
    workspace: str | None = None
    """Check that this workspace exists (the error may mean it does not)."""
    thread: str | None = None
    """And that it has this thread."""


def diagnose(diagnosis: Diagnosis, workspaces: Sequence[Workspace]) -> AllmError:
    """The more precise error that the server's workspace list shows, else the original one."""
    slug = diagnosis.workspace
    if slug is None:
        return diagnosis.error
    found = next((w for w in workspaces if w.slug == slug), None)
    if found is None:
        return WorkspaceNotFoundError(slug, [w.slug for w in workspaces])
    thread = diagnosis.thread
    if thread and all(t.slug != thread for t in found.threads):
        return ThreadNotFoundError(slug, thread)
    return diagnosis.error


def failure(call: Call, answer: Answer, config: ClientConfig) -> Diagnosis:
    """What an error answer (status 400 and up) means."""
    status = answer.status
    if status == 403:
        return Diagnosis(
            AuthenticationError(
                key_set=bool(config.api_key),
                base_url=config.base_url,
                key_origin=config.origin.api_key,
            )
        )
    detail = _error_detail(answer.body, answer.content_type, answer.reason)
    workspace, thread = call.workspace, call.thread
    if thread and _MISSING_THREAD.match(detail):
        return Diagnosis(ThreadNotFoundError(workspace or "", thread))
    if workspace and _MISSING_WORKSPACE.match(detail):
        return Diagnosis(WorkspaceNotFoundError(workspace, []), workspace=workspace)
    error = ServerError(
        f"The server answered {status} {answer.reason}: {_sentence(detail)}",
        status=status,
        detail=detail,
    )
    if workspace and status in (400, 404, 500) and "json" not in answer.content_type:
        # Many workspace routes answer a bare "Bad Request" for an unknown slug, and before
        # v1.14.1 the thread routes a bare 400 (unknown thread) or 500 (unknown workspace).
        return Diagnosis(error, workspace=workspace, thread=thread)
    return Diagnosis(error)


def json_object(call: Call, answer: Answer, config: ClientConfig) -> dict[str, Any]:
    """A success answer's JSON object, or the error that says it is none."""
    answered = f"The server at {config.base_url} answered {call.method} {call.path}"
    data = read_json(answer.body, answered)
    if not isinstance(data, dict):
        raise ServerError(
            f"{answered} with something that is not a JSON object; is this an AnythingLLM server?",
            status=answer.status,
        )
    return data


def is_event_stream(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "").partition(";")[0].strip()
    return response.status_code == 200 and content_type.lower() == "text/event-stream"


def stream_refused(call: Call, answer: Answer, config: ClientConfig) -> Call | Diagnosis:
    """A chat answered without an event stream: the call to send again, or the error.

    Servers before v1.12 know no ``automatic`` mode: the call comes back in chat mode, once. The
    thread route crashes on an unknown workspace and answers 200 without SSE: the workspace is
    worth checking then.
    """
    body = call.json if isinstance(call.json, dict) else {}
    if (
        answer.status == 400
        and body.get("mode") == "automatic"
        and _LEGACY_MODE_ERROR in answer.body
    ):
        logger.info("server rejected mode 'automatic'; retrying in 'chat' mode")
        return dataclasses.replace(call, json=body | {"mode": "chat"})
    if answer.status == 200:
        error = ServerError(
            f"The server answered 200 {answer.reason}: "
            f"{_sentence(_error_detail(answer.body, answer.content_type, answer.reason))}",
            status=200,
        )
        return Diagnosis(error, workspace=call.workspace, thread=call.thread)
    return failure(call, answer, config)


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


def _sentence(words: str) -> str:
    words = words.strip()
    return words if words.endswith((".", "!", "?")) else words + "."


# -- what both shells share that is not I/O ------------------------------------------------------


HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)
_Shell = TypeVar("_Shell", bound="ClientBase[Any, Any]")


class ClientBase(Generic[HttpT, TransportT]):
    """What both clients share that is not I/O: making them, their settings, key and backoff.

    ``HttpT`` is the httpx client a shell sends with (``httpx.Client`` or ``httpx.AsyncClient``),
    ``TransportT`` the transport its own httpx client may be given.
    """

    _http: HttpT

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        *,
        headers: Mapping[str, str] | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        ca_bundle: str | Path | None = None,
        http_client: HttpT | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        origin: Origin | None = None,
        transport: TransportT | None = None,
    ) -> None:
        config = ClientConfig.create(
            base_url,
            api_key,
            timeout,
            headers=headers,
            max_retries=max_retries,
            ca_bundle=ca_bundle,
            origin=origin,
            max_line_bytes=max_line_bytes,
            max_body_bytes=max_body_bytes,
        )
        self._setup(config, http_client, transport)

    @classmethod
    def from_config(cls: type[_Shell], config: ClientConfig, *, http_client: Any = None) -> _Shell:
        """A client with the settings of ``config`` (e.g. another client's ``.config``);
        ``http_client`` as in the constructor."""
        client = cls.__new__(cls)
        client._setup(config, http_client, None)
        return client

    @classmethod
    def _twin_of(cls: type[_Shell], other: ClientBase[Any, Any]) -> _Shell:
        """A client with ``other``'s settings and its backoff, so a pause the server asked of
        either holds back both (``Client.ask_many`` runs on an ``AsyncClient`` twin)."""
        client = cls.from_config(other._config)
        client._backoff = other._backoff
        return client

    def _setup(
        self, config: ClientConfig, http_client: HttpT | None, transport: TransportT | None
    ) -> None:
        self._config = config
        self._auth = BearerAuth(config)
        self._backoff = Backoff()
        self._owns_http = http_client is None
        self._sends_as_given = http_client is not None or transport is not None
        """The caller chose how requests go (their httpx client or transport)."""
        self._http = http_client or self._new_http(verify=http_verify(config), transport=transport)

    def _new_http(self, *, verify: ssl.SSLContext | bool, transport: TransportT | None) -> HttpT:
        """The shell's own httpx client (closed with the shell)."""
        raise NotImplementedError

    @property
    def config(self) -> ClientConfig:
        """The settings this client was made with (read-only; the key stays a ``Secret``)."""
        return self._config

    @property
    def base_url(self) -> str:
        """The server, as shown in messages (a password in the URL is masked)."""
        return self._config.base_url

    @property
    def timeout(self) -> float | httpx.Timeout:
        """Seconds without a byte before giving up, or the ``httpx.Timeout`` given."""
        return self._config.timeout

    @property
    def has_api_key(self) -> bool:
        return bool(self._config.api_key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, timeout={self.timeout!r})"

    def _resending(self, turn: ChatTurn, exc: httpx.TransportError) -> bool:
        """Whether to ask again after ``exc`` broke the answer off; the wait joins the backoff."""
        wait = turn.resend_wait(exc)
        if wait is not None:
            self._backoff.pause(wait)
        return wait is not None


def http_verify(config: ClientConfig) -> ssl.SSLContext | bool:
    """Certificates are always checked: against ``ca_bundle`` if given, else the defaults."""
    return ssl.create_default_context(cafile=config.ca_bundle) if config.ca_bundle else True


# -- an answer's stream ---------------------------------------------------------------------------


class ChatTurn:
    """One answer's bytes to typed events and a reply: feed reads, get events; then :meth:`end`."""

    def __init__(
        self, builder: ReplyBuilder, config: ClientConfig, timeout: float | httpx.Timeout
    ) -> None:
        self.builder = builder
        self._config = config
        self._key = config.api_key
        self._decoder = EventDecoder(config.max_line_bytes)
        self.timeout = timeout
        self.finished = False
        """A finalize arrived: the end of the turn, even if the server keeps the body open."""
        self.started = False
        """Some byte of the answer arrived (after which a chat is never sent again)."""
        self._resends = 0

    def feed(self, read: bytes) -> list[Event]:
        """The events ``read`` completes, each folded into the reply already."""
        self.started = True
        try:
            messages = self._decoder.feed(read)
        except LineTooLong as exc:
            self._events(exc.completed)  # kept in the reply the error carries
            raise too_large(
                self._config, "an event line", "max_line_bytes", exc.cap, self.builder.reply
            ) from None
        return self._events(messages)

    def _events(self, messages: list[str]) -> list[Event]:
        events: list[Event] = []
        for message in messages:
            try:
                data = read_json(masked(message, self._key), "An event")
            except ServerError as exc:
                logger.warning("ignored an event line from the server: %s", exc)
                continue
            if not isinstance(data, dict):
                continue
            event = parse_event(data)
            self.builder.add(event)
            events.append(event)
            if isinstance(event, FinalizeResponseStream):
                self.finished = True
                break
        return events

    def resend_wait(self, exc: httpx.TransportError) -> float | None:
        """Seconds to wait before asking again after the answer broke off before its first byte
        (a proxy dropped it); ``None``: not again (a byte arrived, it went silent, or the
        ``max_retries`` are spent)."""
        if self.started or isinstance(exc, httpx.TimeoutException):
            return None
        if self._resends >= self._config.max_retries:
            return None
        self._resends += 1
        return retry_delay(self._resends, None)

    def broken(self, exc: httpx.HTTPError) -> AllmError:
        """The error for a transport failure mid-answer, carrying the partial reply."""
        if isinstance(exc, httpx.TimeoutException):
            seconds = read_seconds(self.timeout)
            return StreamTimeoutError(
                f"No data arrived from the server for {seconds:g} s, so the answer was cut off; "
                "pass a larger timeout if the model is slow.",
                reply=self.builder.reply,
            )
        return ConnectionLostError(
            f"The connection to {self._config.base_url} broke before the answer ended "
            f"({type(exc).__name__}).",
            reply=self.builder.reply,
        )

    def end(self) -> Reply:
        """The finished reply, or the error that an aborted or empty answer is."""
        reply = self.builder.finish()
        if reply.error:
            raise ChatAbortedError(
                f"The server stopped the answer: {_sentence(reply.error)}", reply=reply
            )
        if not (reply.text or reply.thoughts or reply.outputs or reply.files):
            raise ServerError("The server ended the answer without sending any text.", reply=reply)
        return reply


def chat_call(
    config: ClientConfig,
    slug: str,
    message: str,
    *,
    mode: str | None,
    session_id: str | None,
    thread: str | None,
    reset: bool,
    attachments: Sequence[ToWire | Mapping[str, str]] | None,
    timeout: float | httpx.Timeout | None,
) -> tuple[Call, ChatTurn]:
    """The ``stream-chat`` request of one question (workspace or thread route) and its fold."""
    message = message or ""
    if not message.strip() and not reset:
        raise ConfigurationError("The question is empty; pass the message to ask.")
    if reset and not (session_id or thread):
        # Without a session the server would hide every chat of the workspace (§6).
        raise ConfigurationError("reset needs a session_id or a thread, to reset only that one.")
    body: dict[str, Any] = {"message": message}
    if mode:
        body["mode"] = mode
    if session_id:
        body["sessionId"] = session_id
    if reset:
        body["reset"] = True
    if attachments:
        body["attachments"] = _wire_attachments(attachments, message, mode)
    path = f"/v1/workspace/{segment(slug)}"
    if thread:
        path += f"/thread/{segment(thread)}"
    builder = ReplyBuilder(
        workspace=slug,
        thread=thread,
        session_id=session_id,
        reset_only=reset and not message.strip(),
    )
    limits = config.timeout if timeout is None else checked_timeout(timeout, "timeout")
    call = Call(
        "POST", path + "/stream-chat", json=body, timeout=limits, workspace=slug, thread=thread
    )
    return call, ChatTurn(builder, config, limits)


def _wire_attachments(
    attachments: Sequence[ToWire | Mapping[str, str]], message: str, mode: str | None
) -> list[dict[str, str]]:
    wire = [dict(a) if isinstance(a, Mapping) else a.to_wire() for a in attachments]
    agent_turn = message.startswith("@agent") or mode == "automatic"
    if agent_turn and any(a.get("mime") == DOCUMENT_MIME for a in wire):
        # Agent turns skip the document parser: the document would be dropped without a word.
        raise ConfigurationError(
            "Document attachments are not read in agent turns (@agent or mode automatic); "
            "ask in chat or query mode."
        )
    return wire


# -- the operations, written once -----------------------------------------------------------------


def server_info(config: ClientConfig) -> Op[ServerInfo]:
    """Reachability, whether it is AnythingLLM, and its version; never raises."""
    try:
        ping = yield Call("GET", "/ping", raw=True)
    except AllmError as exc:
        return ServerInfo(config.base_url, reachable=False, reason=exc.message)
    if not _is_ping(ping):
        kind = ping.content_type.partition(";")[0] or "no content type"
        answered = f"{ping.status} {ping.reason}"
        answered += f", {kind}" if ping.status == 200 else ""
        reason = f"not an AnythingLLM server (GET /api/ping answered {answered})"
        return ServerInfo(config.base_url, reachable=True, anythingllm=False, reason=reason)
    try:
        data = yield Call("GET", "/utils/metrics")
    except AllmError:
        data = {}
    build = text(data.get("version"))
    return ServerInfo(
        config.base_url,
        reachable=True,
        version=text(data.get("appVersion")),
        build=build if build and build.strip("-") else None,
        mode=text(data.get("mode")),
        vector_db=text(data.get("vectorDB")),
    )


def _is_ping(answer: Answer) -> bool:
    """Whether ``answer`` is AnythingLLM's ``{"online": true}``."""
    if answer.status != 200 or "json" not in answer.content_type:
        return False
    try:
        data = read_json(answer.body, "The ping")
    except ServerError:
        return False
    return isinstance(data, dict) and "online" in data


def auth() -> Op[bool]:
    try:
        data = yield Call("GET", "/v1/auth")
    except AuthenticationError:
        return False
    return bool(data.get("authenticated"))


def workspaces() -> Op[list[Workspace]]:
    data = yield Call("GET", "/v1/workspaces")
    return [Workspace.from_wire(r) for r in objects(data.get("workspaces"))]


def workspace(slug: str) -> Op[Workspace]:
    data = yield Call("GET", f"/v1/workspace/{segment(slug)}")
    found = data.get("workspace")
    if isinstance(found, list):  # v1.1.0+: a list of 0 or 1 rows
        found = found[0] if found else None
    if not isinstance(found, dict):
        raise WorkspaceNotFoundError(slug, (yield from available_slugs()))
    return Workspace.from_wire(found)


def available_slugs() -> Op[list[str]]:
    """The server's workspace slugs, for a message: ``[]`` when they cannot be listed."""
    try:
        found = yield from workspaces()
    except AllmError:
        return []
    return [w.slug for w in found]


def find_workspace(wanted: str) -> Op[Workspace]:
    found = yield from workspaces()
    match = _one_match(wanted, found, lambda w: (w.slug, w.name))
    if match is None:
        raise WorkspaceNotFoundError(wanted, [w.slug for w in found])
    return match


def threads(slug: str) -> Op[list[Thread]]:
    found = yield from workspaces()
    for row in found:
        if row.slug == slug:
            return list(row.threads)
    raise WorkspaceNotFoundError(slug, [w.slug for w in found])


def find_thread(slug: str, wanted: str) -> Op[Thread]:
    match = _one_match(wanted, (yield from threads(slug)), lambda t: (t.slug, t.name or ""))
    if match is None:
        raise ThreadNotFoundError(slug, wanted)
    return match


def new_thread(slug: str, name: str | None) -> Op[Thread]:
    body = {"name": name} if name else {}
    data = yield Call(
        "POST", f"/v1/workspace/{segment(slug)}/thread/new", json=body, workspace=slug
    )
    row = data.get("thread")
    if not isinstance(row, dict) or not row.get("slug"):
        message = data.get("message")
        raise ServerError(f"The server did not create the thread: {_sentence(str(message))}")
    return Thread(slug=str(row["slug"]), name=row.get("name") or name)


def history(
    slug: str, session_id: str | None, thread: str | None, limit: int
) -> Op[list[HistoryMessage]]:
    if thread:
        data = yield Call(
            "GET",
            f"/v1/workspace/{segment(slug)}/thread/{segment(thread)}/chats",
            workspace=slug,
            thread=thread,
        )
        messages = [HistoryMessage.from_wire(r) for r in objects(data.get("history"))]
        return messages[-2 * limit :] if limit else messages
    params: dict[str, Any] = {"limit": limit, "orderBy": "desc"}
    if session_id:
        params["apiSessionId"] = session_id
    data = yield Call("GET", f"/v1/workspace/{segment(slug)}/chats", params=params, workspace=slug)
    return _oldest_first([HistoryMessage.from_wire(r) for r in objects(data.get("history"))])


def vector_search(
    slug: str, query: str, top_n: int, score_threshold: float | None
) -> Op[list[SearchResult]]:
    body: dict[str, Any] = {"query": query, "topN": top_n}
    if score_threshold is not None:
        body["scoreThreshold"] = score_threshold
    data = yield Call(
        "POST", f"/v1/workspace/{segment(slug)}/vector-search", json=body, workspace=slug
    )
    return [SearchResult.from_wire(r) for r in objects(data.get("results"))]


def upload(config: ClientConfig, slug: str, path: Path, content: bytes) -> Op[list[Document]]:
    """Upload a file's ``content``, embed it, and check that it really got there."""
    yield from workspace(slug)  # fail before uploading when the slug is wrong
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    locations = yield from _store_document(
        config,
        Call("POST", "/v1/document/upload", upload=(path.name, content, mime)),
        path.name,
    )
    yield Call(
        "POST",
        f"/v1/workspace/{segment(slug)}/update-embeddings",
        json={"adds": locations, "deletes": []},
        workspace=slug,
        timeout=at_least(config.timeout, EMBED_TIMEOUT),
    )
    return (yield from _embedded(slug, locations, path.name))


def upload_text(
    config: ClientConfig, slug: str, content: str, title: str, description: str | None
) -> Op[Document]:
    if not isinstance(content, str):
        raise UploadError(
            f"upload_text takes text, not a {type(content).__name__}; turn it into text first."
        )
    if not content.strip():
        raise UploadError(f"{title} is empty; there is nothing to upload.")
    if not title.strip():
        raise UploadError("The document needs a title.")
    yield from workspace(slug)  # the server skips an unknown slug silently
    metadata = {"title": title} | ({"description": description} if description else {})
    locations = yield from _store_document(
        config,
        Call(
            "POST",
            "/v1/document/raw-text",
            json={"textContent": content, "metadata": metadata, "addToWorkspaces": slug},
        ),
        title,
    )
    return (yield from _embedded(slug, locations[:1], title))[0]


def upload_link(config: ClientConfig, slug: str, url: str) -> Op[Document]:
    shown = redact_url(url)
    if not re.match(r"^https?://[^\s/]+", url):
        raise UploadError(f"'{shown}' is not an http(s) link.")
    yield from workspace(slug)
    try:
        locations = yield from _store_document(
            config,
            Call("POST", "/v1/document/upload-link", json={"link": url, "addToWorkspaces": slug}),
            shown,
        )
    except UploadError as exc:  # the server quotes the link it was given
        raise UploadError(exc.message.replace(url, shown)) from None
    return (yield from _embedded(slug, locations[:1], shown))[0]


def _store_document(config: ClientConfig, call: Call, what: str) -> Op[list[str]]:
    """POST to a document route and return the new documents' locations.

    Parse and collector failures are a 500 (422 for missing fields) with
    ``{"success": false, "error"}``; they all mean the document was not made.
    """
    call = dataclasses.replace(call, timeout=at_least(config.timeout, EMBED_TIMEOUT))
    try:
        data = yield call
    except ServerError as exc:
        data = {"error": exc.detail}
    locations = [d["location"] for d in objects(data.get("documents")) if d.get("location")]
    if not data.get("success") or not locations:
        reason = data.get("error") or "no document was produced"
        raise UploadError(f"The server could not read {what}: {_sentence(str(reason))}")
    return locations


def _embedded(slug: str, locations: Sequence[str], what: str) -> Op[list[Document]]:
    """The workspace's rows for ``locations``: the server reports no embedding failure, so its
    document list is the only proof."""
    embedded = {d.docpath: d for d in (yield from workspace(slug)).documents}
    if any(location not in embedded for location in locations):
        raise UploadError(
            f"{what} was uploaded but not embedded into '{slug}' (check the server's "
            "embedder settings and logs)."
        )
    return [embedded[location] for location in locations]


def documents(slug: str) -> Op[list[Document]]:
    return list((yield from workspace(slug)).documents)


def set_pin(slug: str, document: str, pinned: bool) -> Op[Document]:
    found = _find_document((yield from documents(slug)), document, slug)
    try:
        yield Call(
            "POST",
            f"/v1/workspace/{segment(slug)}/update-pin",
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


def _find_document(rows: Sequence[Document], name: str, slug: str) -> Document:
    """A document by docpath, else by file name or title; an ambiguous name lists the choices."""
    for attribute in ("docpath", "filename", "title"):
        matches = [d for d in rows if getattr(d, attribute) == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            paths = ", ".join(d.docpath for d in matches)
            raise DocumentNotFoundError(
                f"Several documents of '{slug}' are called {name}; name one by its path: {paths}."
            )
    listed = ", ".join(d.title or d.filename for d in rows[:20]) or "it has none"
    raise DocumentNotFoundError(f"Workspace '{slug}' has no document {name} ({listed}).")


def _one_match(
    wanted: str, rows: Sequence[_Row], keys: Callable[[_Row], tuple[str, str]]
) -> _Row | None:
    """The row whose slug is ``wanted``, else the only one whose slug or name equals it ignoring case."""
    exact = [row for row in rows if keys(row)[0] == wanted]
    folded = wanted.casefold()
    loose = [row for row in rows if folded in (key.casefold() for key in keys(row))]
    candidates = exact or loose
    return candidates[0] if len(candidates) == 1 else None


def segment(value: str) -> str:
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


def upload_arguments(slug: str | Path, path: str | Path) -> tuple[str, Path]:
    """``(slug, path)`` from ``upload(slug, path)``, or from the old ``upload(path, slug)`` with a
    ``DeprecationWarning`` (a slug is never a ``Path`` nor an existing file; a path to upload is)."""
    if isinstance(slug, Path) or (Path(slug).is_file() and not Path(path).is_file()):
        warnings.warn(
            "upload(path, slug) is deprecated; call upload(slug, path), slug first as in every "
            "other method.",
            DeprecationWarning,
            stacklevel=3,
        )
        slug, path = path, slug
    file_path = Path(path)
    if not file_path.is_file():
        raise UploadError(f"There is no file at {file_path}.")
    return str(slug), file_path
