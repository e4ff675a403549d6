"""``AsyncClient``: the asyncio twin of :class:`~allm_jupyter.client.Client`, over ``httpx.AsyncClient``.

Every public method of ``Client`` is here with the same name, parameters and result, as ``async
def`` (``tests/test_client_parity.py`` fails if they drift); ``stream_chat`` stays a plain ``def``
that sends nothing until iteration and returns an :class:`AsyncChatStream`. Both are shells over
the same protocol core (``_protocol``), so they map every answer to the same result or error.
Use it in FastAPI, Streamlit or any asyncio app, or in a notebook cell with top-level ``await``.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from . import _protocol as core
from ._hangup import hang_up
from ._protocol import Call, Op, ToWire, upload_arguments
from .config import DEFAULT_CONCURRENCY, HISTORY_LIMIT, ClientConfig
from .errors import AllmError
from .events import Event
from .models import Document, HistoryMessage, SearchResult, ServerInfo, Thread, Workspace
from .reply import Reply

if TYPE_CHECKING:
    from .batch import Batch
    from .client import ChatStream

__all__ = ["AsyncChatStream", "AsyncClient"]

T = TypeVar("T")


class AsyncChatStream:
    """The events of one streamed answer, for ``async for``; iterate once. ``.reply`` is the
    fold so far.

    The request starts on iteration. The connection is closed when the answer ends, on an error
    or a cancellation (``asyncio.CancelledError`` closes it at once), on :meth:`aclose` or
    :meth:`stop`, on leaving ``async with``, and after ``break`` when the loop lets go of the
    iterator (asyncio then closes it on its next step). :meth:`aclose` and :meth:`stop` from
    another task while one reads hang up at once and the reading loop ends quietly, the reply as
    it stands. Errors raised after the answer started carry the partial reply as
    ``error.reply``.
    """

    def __init__(self, client: AsyncClient, call: Call, turn: core.ChatTurn) -> None:
        self._client = client
        self._call = call
        self._turn = turn
        self._iterator: weakref.ref[AsyncGenerator[Event, None]] | None = None
        self._reader: asyncio.Task[Any] | None = None
        """The task that reads: only it may close the generator (another would race it)."""
        self._response: httpx.Response | None = None
        """The answer being read, for a hang-up from another task."""
        self._hung_up = False

    @property
    def reply(self) -> Reply:
        return self._turn.builder.reply

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._iterator is not None:
            raise RuntimeError("an AsyncChatStream can be iterated only once")
        iterator = self._events()
        # Only a weak reference: once the caller's loop lets go (break, an exception), asyncio
        # finalizes the generator on its next step, and its ``finally`` hangs up.
        self._iterator = weakref.ref(iterator)
        return iterator

    async def _events(self) -> AsyncGenerator[Event, None]:
        turn = self._turn
        self._reader = asyncio.current_task()
        try:
            while not self._hung_up:  # again only if the answer broke off before its first byte
                response = await self._client._open(self._call)
                self._response = response
                try:
                    if self._hung_up:  # while it connected: nothing was there to shut down
                        break
                    async for read in response.aiter_bytes():
                        for event in turn.feed(read):
                            yield event
                        if turn.finished or self._hung_up:
                            break
                    break
                except httpx.TransportError as exc:
                    if self._hung_up or not self._client._resending(turn, exc):
                        raise
                finally:
                    self._response = None
                    await response.aclose()
        except httpx.HTTPError as exc:
            if self._hung_up:  # our own hang-up broke the read off: end as the caller asked
                return
            raise turn.broken(exc) from None
        except (KeyboardInterrupt, asyncio.CancelledError):
            turn.builder.interrupt()
            raise
        if not self._hung_up:
            turn.end()

    async def aclose(self) -> None:
        """Hang up now, e.g. after ``break`` or from another task; the server stops generating."""
        self._hung_up = True
        if self._response is not None:
            hang_up(self._response)  # wakes a read awaited in another task
        iterator = self._iterator() if self._iterator is not None else None
        if iterator is not None and self._reader is asyncio.current_task():
            await iterator.aclose()

    async def stop(self) -> Reply:
        """Hang up because the user asked to stop; the reply is marked interrupted."""
        await self.aclose()
        return self._turn.builder.interrupt()

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncClient(core.ClientBase[httpx.AsyncClient, httpx.AsyncBaseTransport]):
    """An asyncio AnythingLLM client: :class:`~allm_jupyter.client.Client`'s arguments, methods
    and results, awaited (its docstring says what each argument does). ``http_client`` is an
    ``httpx.AsyncClient`` you own; make the client inside the event loop that uses it.
    """

    def _new_http(
        self, *, verify: ssl.SSLContext | bool, transport: httpx.AsyncBaseTransport | None
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=verify, transport=transport)

    async def aclose(self) -> None:
        """Close the connections (not those of an ``http_client`` you passed: you own it)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- plumbing: the only I/O -----------------------------------------------------------------

    async def _send(self, call: Call) -> httpx.Response:
        """Send ``call`` (the response not read yet), retrying what may be retried."""
        config = self._config
        request = core.build_request(self._http, config, call)
        core.logger.debug("%s %s", call.method, call.path)
        attempt = 0
        while True:
            await asyncio.sleep(self._backoff.remaining())
            attempt += 1
            try:
                response = await self._http.send(
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
                await response.aclose()
                continue
            if response.has_redirect_location:
                await response.aclose()
                raise core.redirect_error(config, call, response)
            return response

    async def _read(self, response: httpx.Response) -> core.Answer:
        """The whole body, up to ``max_body_bytes``; the response is closed after."""
        try:
            reader = core.BodyReader(self._config, response.headers.get("content-length"))
            async for read in response.aiter_bytes():
                reader.add(read)
        except httpx.HTTPError as exc:
            raise core.read_failure(exc, self._config) from None
        finally:
            await response.aclose()
        return core.answer_of(response, reader.body(), self._config.api_key)

    async def _perform(self, call: Call) -> Any:
        answer = await self._read(await self._send(call))
        if call.raw:
            return answer
        if answer.status >= 400:
            raise await self._diagnosed(core.failure(call, answer, self._config))
        return core.json_object(call, answer, self._config)

    async def _diagnosed(self, diagnosis: core.Diagnosis) -> AllmError:
        """The mapped error, made precise by the workspace list when that is worth asking for;
        a failure to list never replaces it."""
        if diagnosis.workspace is None:
            return diagnosis.error
        try:
            found = await self._run(core.workspaces())
        except AllmError:
            return diagnosis.error
        return core.diagnose(diagnosis, found)

    async def _run(self, op: Op[T]) -> T:
        """Drive an operation of the core: send each call it yields, give back the result."""
        try:
            call = next(op)
            while True:
                try:
                    result = await self._perform(call)
                except AllmError as exc:
                    call = op.throw(exc)
                else:
                    call = op.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value

    async def _open(self, call: Call) -> httpx.Response:
        """A chat's response, checked to be an event stream (else its error is raised)."""
        response = await self._send(call)
        while not core.is_event_stream(response):
            refused = core.stream_refused(call, await self._read(response), self._config)
            if isinstance(refused, core.Diagnosis):
                raise await self._diagnosed(refused)
            call = refused
            response = await self._send(call)
        return response

    # -- information ----------------------------------------------------------------------------

    async def server_info(self) -> ServerInfo:
        """Reachability, whether it is AnythingLLM, and its version; never raises."""
        return await self._run(core.server_info(self._config))

    async def auth(self) -> bool:
        """Whether the server accepts the API key (``False`` on 403; raises if unreachable)."""
        return await self._run(core.auth())

    async def workspaces(self) -> list[Workspace]:
        """Every workspace of the server, with its threads."""
        return await self._run(core.workspaces())

    async def workspace(self, slug: str) -> Workspace:
        """One workspace with its documents; an unknown slug raises with the available ones."""
        return await self._run(core.workspace(slug))

    async def find_workspace(self, wanted: str) -> Workspace:
        """The workspace whose slug is ``wanted``, else the one whose name or slug matches it
        case-insensitively (the web UI shows names); otherwise the error suggests the closest slug.
        """
        return await self._run(core.find_workspace(wanted))

    async def threads(self, slug: str) -> list[Thread]:
        """The workspace's threads with their names (the single-workspace route omits names)."""
        return await self._run(core.threads(slug))

    async def find_thread(self, slug: str, wanted: str) -> Thread:
        """The thread of ``slug`` whose slug is ``wanted``, else the one named so (case-insensitively)."""
        return await self._run(core.find_thread(slug, wanted))

    async def new_thread(self, slug: str, name: str | None = None) -> Thread:
        """A new thread in the workspace, named ``name`` if given."""
        return await self._run(core.new_thread(slug, name))

    async def history(
        self,
        slug: str,
        session_id: str | None = None,
        thread: str | None = None,
        limit: int = HISTORY_LIMIT,
    ) -> list[HistoryMessage]:
        """The latest ``limit`` exchanges, oldest first (a session's hidden ones included)."""
        return await self._run(core.history(slug, session_id, thread, limit))

    async def vector_search(
        self, slug: str, query: str, top_n: int = 4, score_threshold: float | None = None
    ) -> list[SearchResult]:
        """The workspace's passages closest to ``query``, best first."""
        return await self._run(core.vector_search(slug, query, top_n, score_threshold))

    async def documents(self, slug: str) -> list[Document]:
        """The workspace's embedded documents, each with its ``pinned`` flag."""
        return await self._run(core.documents(slug))

    # -- documents --------------------------------------------------------------------------------

    async def upload(self, slug: str, path: str | Path) -> list[Document]:
        """Upload a file, embed it into the workspace, and check that it really got there.

        The server reports neither parse nor embedding failures, so the workspace's document list
        is the only proof. (The old order ``upload(path, slug)`` still works, with a
        ``DeprecationWarning``.)
        """
        slug, file_path = upload_arguments(slug, path)
        content = await asyncio.to_thread(
            file_path.read_bytes
        )  # a large file must not block the loop
        return await self._run(core.upload(self._config, slug, file_path, content))

    async def upload_text(
        self, slug: str, content: str, *, title: str, description: str | None = None
    ) -> Document:
        """Save ``content`` as a document titled ``title`` and embed it into the workspace
        (``raw-text``); the server names it after the title, slugged, with ``.txt``."""
        return await self._run(core.upload_text(self._config, slug, content, title, description))

    async def upload_link(self, slug: str, url: str) -> Document:
        """Have the server fetch a web page, save it as a document and embed it (``upload-link``)."""
        return await self._run(core.upload_link(self._config, slug, url))

    async def pin(self, slug: str, document: str) -> Document:
        """Pin a document, named by its docpath, file name or title: it goes into every prompt whole."""
        return await self._run(core.set_pin(slug, document, True))

    async def unpin(self, slug: str, document: str) -> Document:
        """Undo :meth:`pin`: the document is searched like the others again."""
        return await self._run(core.set_pin(slug, document, False))

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
    ) -> AsyncChatStream:
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
        return AsyncChatStream(self, call, turn)

    async def chat(
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
        async with stream:
            async for _ in stream:
                pass
        return stream.reply

    async def ask_many(
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
        """:meth:`Client.ask_many <allm_jupyter.client.Client.ask_many>` on this loop: the same
        arguments and :class:`Batch`. Cancelling the task hangs up the answers in flight and
        re-raises; to keep the batch whatever happens, make it first (``Batch.plan(...)``) and
        pass it as ``resume=``.
        """
        from . import batch as batches  # the batch engine loads with the first batch

        planned = batches.prepared(
            workspace, questions, mode=mode, template=template, session=session, resume=resume
        )
        return await batches.ask_many_async(
            self, planned, concurrency=concurrency, progress=progress, timeout=timeout
        )


def async_twin(
    prepared: ChatStream, client_for: Callable[[ClientConfig], AsyncClient]
) -> AsyncChatStream:
    """The question a sync stream holds (nothing sent yet), asked instead by the async client
    ``client_for`` gives for its settings: a caller prepares synchronously (lookups,
    attachments) and streams on a loop thread (``%%allm background``)."""
    return AsyncChatStream(client_for(prepared._client.config), prepared._call, prepared._turn)
