"""``Client``: AnythingLLM's developer API over one ``httpx.Client``, a thin shell over ``_protocol``.

The operations, the error mapping and the stream's fold are the protocol core's; this module only
sends (with retries and the client's shared backoff), reads (with the size caps) and drives the
core's generators. :class:`~allm_jupyter.async_client.AsyncClient` is its twin over
``httpx.AsyncClient``. The API key lives in a :class:`~allm_jupyter.secret.Secret` inside the
:class:`~allm_jupyter.config.ClientConfig` and is added per request by an ``httpx.Auth``, so it is
in no attribute, default header or traceback local.
"""

from __future__ import annotations

import ssl
import threading
import time
import weakref
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from . import _protocol as core
from ._hangup import hang_up
from ._protocol import Call, Op, PlainHttpWarning, ToWire, upload_arguments
from .config import DEFAULT_CONCURRENCY, HISTORY_LIMIT
from .errors import AllmError, ConfigurationError
from .events import Event
from .models import Document, HistoryMessage, SearchResult, ServerInfo, Thread, Workspace
from .reply import Reply

if TYPE_CHECKING:
    from .batch import Batch

__all__ = ["ChatStream", "Client", "PlainHttpWarning"]

T = TypeVar("T")


class ChatStream:
    """The events of one streamed answer; iterate once. ``.reply`` is the fold so far.

    The HTTP request starts on iteration; the connection is closed when iteration ends (an error,
    the end of the answer, ``break``: the loop drops the only reference to the iterator) or on
    :meth:`close`/:meth:`stop`, which makes the real server stop generating. Those two work from
    any thread: from another one while a thread reads, they hang up at once and the reading loop
    ends quietly, the reply as it stands. Errors raised after the answer started carry the
    partial reply as ``error.reply``.
    """

    def __init__(self, client: Client, call: Call, turn: core.ChatTurn) -> None:
        self._client = client
        self._call = call
        self._turn = turn
        self._iterator: weakref.ref[Generator[Event, None, None]] | None = None
        self._reader: int | None = None
        """The thread that reads: only it may close the generator (others would race it)."""
        self._response: httpx.Response | None = None
        """The answer being read, for a hang-up from another thread (set and cleared under
        ``_lock``, so a finished answer's connection, back in the pool, is never shut)."""
        self._lock = threading.Lock()
        self._hung_up = False

    @property
    def reply(self) -> Reply:
        return self._turn.builder.reply

    def __iter__(self) -> Iterator[Event]:
        if self._iterator is not None:
            raise RuntimeError("a ChatStream can be iterated only once")
        iterator = self._events()
        # Only a weak reference: once the caller's loop lets go (break, an exception), the
        # generator is collected at once and its ``finally`` hangs up.
        self._iterator = weakref.ref(iterator)
        return iterator

    def _events(self) -> Generator[Event, None, None]:
        turn = self._turn
        self._reader = threading.get_ident()
        try:
            while not self._hung_up:  # again only if the answer broke off before its first byte
                response = self._client._open(self._call)
                self._reading(response)
                try:
                    if self._hung_up:  # while it connected: nothing was there to shut down
                        break
                    for read in response.iter_bytes():
                        yield from turn.feed(read)
                        if turn.finished or self._hung_up:
                            break
                    break
                except httpx.TransportError as exc:
                    if self._hung_up or not self._client._resending(turn, exc):
                        raise
                finally:
                    self._reading(None)
                    response.close()
        except httpx.HTTPError as exc:
            if self._hung_up:  # our own hang-up broke the read off: end as the caller asked
                return
            raise turn.broken(exc) from None
        except KeyboardInterrupt:
            turn.builder.interrupt()
            raise
        if not self._hung_up:
            turn.end()

    def _reading(self, response: httpx.Response | None) -> None:
        with self._lock:
            self._response = response

    def close(self) -> None:
        """Hang up now, e.g. after ``break`` or from another thread; the server stops generating."""
        self._hung_up = True
        with self._lock:
            if self._response is not None:
                hang_up(self._response)  # wakes a read blocked in another thread
        iterator = self._iterator() if self._iterator is not None else None
        if iterator is not None and self._reader == threading.get_ident():
            iterator.close()

    def stop(self) -> Reply:
        """Hang up because the user asked to stop; the reply is marked interrupted."""
        self.close()
        return self._turn.builder.interrupt()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Client(core.ClientBase[httpx.Client, httpx.BaseTransport]):
    """A synchronous AnythingLLM client.

    ``base_url`` (instance root; ``…/api`` and ``…/api/v1`` are accepted too) and ``api_key``
    default to ``ANYTHING_LLM_BASE_URL`` and ``ANYTHING_LLM_API_KEY``. ``timeout`` is seconds
    without any byte before a request or an answer is given up (connecting gets at most 10 s of
    it), or an ``httpx.Timeout``. ``headers`` go with every request. ``max_retries`` repeats a
    request that failed to connect, met a 429 or 503 (waiting as ``Retry-After`` says), or for
    reads and chats a 502 or 504, and a chat whose answer broke off before its first byte, with
    exponential backoff and jitter (never a chat once a byte of its answer arrived); a pause the
    server asks for holds back all of this client's requests. ``max_line_bytes`` and
    ``max_body_bytes`` cap one line of an answer's event stream and one plain response body.
    TLS certificates are always verified: against ``ca_bundle`` (a PEM file) if given, else
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``, else certifi's bundle. ``http_client`` is an
    ``httpx.Client`` you own (proxies, certificates, transports): every request goes through it
    (``ask_many``, which runs on asyncio, refuses it) and it is not closed. Redirects are never
    followed (the key would go along); the error names where the server points instead.
    """

    def _new_http(
        self, *, verify: ssl.SSLContext | bool, transport: httpx.BaseTransport | None
    ) -> httpx.Client:
        return httpx.Client(verify=verify, transport=transport)

    def close(self) -> None:
        """Close the connections (not those of an ``http_client`` you passed: you own it)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing: the only I/O -----------------------------------------------------------------

    def _send(self, call: Call) -> httpx.Response:
        """Send ``call`` (the response not read yet), retrying what may be retried."""
        config = self._config
        request = core.build_request(self._http, config, call)
        core.logger.debug("%s %s", call.method, call.path)
        attempt = 0
        while True:
            time.sleep(self._backoff.remaining())
            attempt += 1
            try:
                response = self._http.send(
                    request, stream=True, auth=self._auth, follow_redirects=False
                )
            except httpx.TransportError as exc:
                wait = core.retry_wait(call, attempt, config, error=exc)
                if wait is None:
                    raise core.transport_failure(exc, config) from None
                self._backoff.pause(wait)
                continue
            wait = core.retry_wait(call, attempt, config, response=response)
            if wait is not None:
                self._backoff.pause(wait)  # first: once this answer is closed, the pause holds
                response.close()
                continue
            if response.has_redirect_location:
                response.close()
                raise core.redirect_error(config, call, response)
            return response

    def _read(self, response: httpx.Response) -> core.Answer:
        """The whole body, up to ``max_body_bytes``; the response is closed after."""
        try:
            reader = core.BodyReader(self._config, response.headers.get("content-length"))
            for read in response.iter_bytes():
                reader.add(read)
        except httpx.HTTPError as exc:
            raise core.read_failure(exc, self._config) from None
        finally:
            response.close()
        return core.answer_of(response, reader.body(), self._config.api_key)

    def _perform(self, call: Call) -> Any:
        answer = self._read(self._send(call))
        if call.raw:
            return answer
        if answer.status >= 400:
            raise self._diagnosed(core.failure(call, answer, self._config))
        return core.json_object(call, answer, self._config)

    def _diagnosed(self, diagnosis: core.Diagnosis) -> AllmError:
        """The mapped error, made precise by the workspace list when that is worth asking for;
        a failure to list never replaces it."""
        if diagnosis.workspace is None:
            return diagnosis.error
        try:
            found = self._run(core.workspaces())
        except AllmError:
            return diagnosis.error
        return core.diagnose(diagnosis, found)

    def _run(self, op: Op[T]) -> T:
        """Drive an operation of the core: send each call it yields, give back the result."""
        try:
            call = next(op)
            while True:
                try:
                    result = self._perform(call)
                except AllmError as exc:
                    call = op.throw(exc)
                else:
                    call = op.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value

    def _open(self, call: Call) -> httpx.Response:
        """A chat's response, checked to be an event stream (else its error is raised)."""
        response = self._send(call)
        while not core.is_event_stream(response):
            refused = core.stream_refused(call, self._read(response), self._config)
            if isinstance(refused, core.Diagnosis):
                raise self._diagnosed(refused)
            call = refused
            response = self._send(call)
        return response

    # -- information ----------------------------------------------------------------------------

    def server_info(self) -> ServerInfo:
        """Reachability, whether it is AnythingLLM, and its version; never raises."""
        return self._run(core.server_info(self._config))

    def auth(self) -> bool:
        """Whether the server accepts the API key (``False`` on 403; raises if unreachable)."""
        return self._run(core.auth())

    def workspaces(self) -> list[Workspace]:
        """Every workspace of the server, with its threads."""
        return self._run(core.workspaces())

    def workspace(self, slug: str) -> Workspace:
        """One workspace with its documents; an unknown slug raises with the available ones."""
        return self._run(core.workspace(slug))

    def find_workspace(self, wanted: str) -> Workspace:
        """The workspace whose slug is ``wanted``, else the one whose name or slug matches it
        case-insensitively (the web UI shows names); otherwise the error suggests the closest slug.
        """
        return self._run(core.find_workspace(wanted))

    def threads(self, slug: str) -> list[Thread]:
        """The workspace's threads with their names (the single-workspace route omits names)."""
        return self._run(core.threads(slug))

    def find_thread(self, slug: str, wanted: str) -> Thread:
        """The thread of ``slug`` whose slug is ``wanted``, else the one named so (case-insensitively)."""
        return self._run(core.find_thread(slug, wanted))

    def new_thread(self, slug: str, name: str | None = None) -> Thread:
        """A new thread in the workspace, named ``name`` if given."""
        return self._run(core.new_thread(slug, name))

    def history(
        self,
        slug: str,
        session_id: str | None = None,
        thread: str | None = None,
        limit: int = HISTORY_LIMIT,
    ) -> list[HistoryMessage]:
        """The latest ``limit`` exchanges, oldest first (a session's hidden ones included)."""
        return self._run(core.history(slug, session_id, thread, limit))

    def vector_search(
        self, slug: str, query: str, top_n: int = 4, score_threshold: float | None = None
    ) -> list[SearchResult]:
        """The workspace's passages closest to ``query``, best first."""
        return self._run(core.vector_search(slug, query, top_n, score_threshold))

    def documents(self, slug: str) -> list[Document]:
        """The workspace's embedded documents, each with its ``pinned`` flag."""
        return self._run(core.documents(slug))

    # -- documents --------------------------------------------------------------------------------

    def upload(self, slug: str, path: str | Path) -> list[Document]:
        """Upload a file, embed it into the workspace, and check that it really got there.

        The server reports neither parse nor embedding failures, so the workspace's document list
        is the only proof. (The old order ``upload(path, slug)`` still works, with a
        ``DeprecationWarning``.)
        """
        slug, file_path = upload_arguments(slug, path)
        return self._run(core.upload(self._config, slug, file_path, file_path.read_bytes()))

    def upload_text(
        self, slug: str, content: str, *, title: str, description: str | None = None
    ) -> Document:
        """Save ``content`` as a document titled ``title`` and embed it into the workspace
        (``raw-text``); the server names it after the title, slugged, with ``.txt``."""
        return self._run(core.upload_text(self._config, slug, content, title, description))

    def upload_link(self, slug: str, url: str) -> Document:
        """Have the server fetch a web page, save it as a document and embed it (``upload-link``)."""
        return self._run(core.upload_link(self._config, slug, url))

    def pin(self, slug: str, document: str) -> Document:
        """Pin a document, named by its docpath, file name or title: it goes into every prompt whole."""
        return self._run(core.set_pin(slug, document, True))

    def unpin(self, slug: str, document: str) -> Document:
        """Undo :meth:`pin`: the document is searched like the others again."""
        return self._run(core.set_pin(slug, document, False))

    # -- chat -------------------------------------------------------------------------------------

    def stream_chat(
        self,
        slug: str,
        message: str,
        *,
        mode: str | None = None,
        session_id: str | None = None,
        thread: str | None = None,
        reset: bool = False,
        attachments: Sequence[ToWire | Mapping[str, str]] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> ChatStream:
        """Ask a question and iterate its typed events as they arrive (workspace or thread route).

        Nothing is sent until iteration starts. ``attachments`` are
        :class:`~allm_jupyter.attachments.Attachment` objects or raw ``{name, mime,
        contentString}`` dicts; documents are read only in chat and query turns, so pass
        ``mode`` with them (new workspaces default to ``automatic``). ``timeout`` overrides the
        client's for this answer only.
        """
        call, turn = core.chat_call(
            self._config,
            slug,
            message,
            mode=mode,
            session_id=session_id,
            thread=thread,
            reset=reset,
            attachments=attachments,
            timeout=timeout,
        )
        return ChatStream(self, call, turn)

    def chat(
        self,
        slug: str,
        message: str,
        *,
        mode: str | None = None,
        session_id: str | None = None,
        thread: str | None = None,
        reset: bool = False,
        attachments: Sequence[ToWire | Mapping[str, str]] | None = None,
        timeout: float | httpx.Timeout | None = None,
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

    def ask_many(
        self,
        workspace: str | Sequence[str] | None = None,
        questions: Any = None,
        *,
        mode: str | Sequence[str | None] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: bool | None = None,
        resume: Batch | None = None,
        template: str | None = None,
        session: str | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Batch:
        """Ask many questions, at most ``concurrency`` answers in flight, and return a :class:`Batch`.

        ``questions``: a list of strings, a pandas/polars Series, or a DataFrame with a
        ``template`` whose ``{column}`` fields are filled per row. ``workspace`` and ``mode`` may
        each be a list: one answer per (question, workspace, mode). Each question is asked in
        its own fresh session unless ``session`` names one. A failing question records its
        error and the rest go on; ``resume=batch`` asks only what is pending or failed.
        ``progress``: a bar in a notebook, a line on a terminal (``None``: where one shows;
        ``False``: none).
        A stop (KeyboardInterrupt) hangs up the answers in flight and returns the batch as it
        stands: finished rows kept, the rest pending.

        The batch runs on an ``AsyncClient`` with this client's settings and backoff (a pause the
        server asked for holds back both), so a client made with ``http_client=`` or
        ``transport=`` (synchronous, they cannot carry over) refuses: use ``AsyncClient`` with an
        ``httpx.AsyncClient``.
        """
        if self._sends_as_given:
            raise ConfigurationError(
                "Client.ask_many cannot send through the http_client= or transport= this Client "
                "was given (the batch runs on asyncio); use "
                "AsyncClient(http_client=httpx.AsyncClient(...)).ask_many instead."
            )
        from . import batch as batches  # the batch engine loads with the first batch

        planned = batches.prepared(
            workspace, questions, mode=mode, template=template, session=session, resume=resume
        )
        from .async_client import AsyncClient  # the batch engine is asynchronous

        return batches.ask_many_blocking(
            lambda: AsyncClient._twin_of(self),
            planned,
            concurrency=concurrency,
            progress=progress,
            timeout=timeout,
        )
