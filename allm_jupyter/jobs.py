"""Background answers (``%%allm background``): the cell returns at once, the answer streams on.

Each answer is an :class:`AskJob` that runs on the process's private loop thread
(:mod:`~allm_jupyter._loop`) over an :class:`~allm_jupyter.async_client.AsyncClient`, so a stop
cancels its task and that closes the response at any moment (the server stops generating). It
draws into its own live view, made in the cell that asked: the view's ticker thread keeps that
cell's context, so its updates land there even after the cell has finished.

The kernel's :class:`JobRunner` (owned by the :class:`~allm_jupyter.context.Context`, so unloading
the extension or shutting the kernel down hangs every answer up) numbers the jobs, keeps at most
``limit()`` answers streaming and the rest queued, and asks the answers of one session or thread
one after the other: the server keeps one history per session, and two answers at once would
each miss the other's turn.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from ._loop import LoopThread, Work, shared_loop
from .config import DEFAULT_BACKGROUND_LIMIT
from .errors import AllmError
from .render import literal_markdown, render_markdown, status_line
from .reply import Reply, with_error

if TYPE_CHECKING:
    from .async_client import AsyncChatStream, AsyncClient
    from .client import ChatStream
    from .config import ClientConfig
    from .view import View

JobState = Literal["queued", "streaming", "done", "failed", "stopped"]
TurnKey = tuple[str, ...]
"""What the server keeps one history for: the workspace and the thread or session."""


def turn_key(reply: Reply) -> TurnKey:
    """Answers with the same key (from their empty reply: workspace, thread, session) are asked
    one after the other (thread routes ignore sessions). Two servers with a workspace of the same
    name would wait for each other too: rare, and only slower."""
    workspace = reply.workspace or ""
    if reply.thread:
        return (workspace, "thread", reply.thread)
    return (workspace, "session", reply.session_id or "")


def stop_hint(number: int) -> str:
    """What the output's status line says about stopping a background answer."""
    return f"the stop button does not stop it, `%allm stop {number}` does"


class AskJob:
    """One background answer: ``.reply`` so far, ``.done()``, ``.result()``, ``.cancel()``,
    ``await job``. Shown in a notebook as the reply once done, as a status line before.

    A stopped job's result is its partial reply, marked interrupted (the user asked for it); a
    failed one raises the answer's :class:`~allm_jupyter.errors.AllmError`, which carries the
    partial reply too.
    """

    def __init__(
        self,
        number: int,
        prepared: ChatStream,
        question: str,
        runner: JobRunner,
        clock: Callable[[], float],
    ) -> None:
        self.number = number
        self.workspace = prepared.reply.workspace or ""
        self.question = question
        """As the user wrote it, for ``%allm jobs``."""
        self.key = turn_key(prepared.reply)
        self._prepared: ChatStream | None = prepared
        """The question to send (attachments too: up to 20 MB), until the job ends."""
        self._runner = runner
        self._clock = clock
        self._submitted = clock()
        self._ended: float | None = None
        self._state: JobState = "queued"
        self._stream: AsyncChatStream | None = None
        self._reply = prepared.reply
        self._outcome: Future[Reply] = Future()
        self._work: Work[None] | None = None
        self._view: View | None = None
        self._cell: contextvars.Context | None = None
        """The asking cell's context, where the final update is drawn."""

    def __repr__(self) -> str:
        return f"<AskJob {self.number} {self.workspace} {self.state} {self.elapsed:.0f} s>"

    @property
    def state(self) -> JobState:
        """queued, streaming, done, failed or stopped."""
        return self._state

    @property
    def elapsed(self) -> float:
        """Seconds since it was asked, until it ended."""
        return (self._ended if self._ended is not None else self._clock()) - self._submitted

    @property
    def reply(self) -> Reply:
        """The reply so far (whole once done; partial, with its error, if it failed or stopped)."""
        stream = self._stream
        return stream.reply if stream is not None and self._ended is None else self._reply

    def done(self) -> bool:
        return self._outcome.done()

    def result(self, timeout: float | None = None) -> Reply:
        """Wait for the answer (``timeout`` seconds at most, else ``TimeoutError``) and return
        it; raises its :class:`~allm_jupyter.errors.AllmError` if it failed."""
        try:
            return self._outcome.result(timeout)
        except concurrent.futures.TimeoutError:  # not the builtin one on Python 3.10
            raise TimeoutError(
                f"Background answer {self.number} has not ended yet; it goes on "
                "(job.cancel() hangs it up)."
            ) from None

    def cancel(self) -> None:
        """Hang up (the server stops generating) or leave the line; waits until it has ended."""
        self._runner.stop(self)

    def __await__(self) -> Generator[Any, None, Reply]:
        """``await job`` in a notebook cell (IPython's autoawait) or any asyncio code."""
        return asyncio.wrap_future(self._outcome).__await__()

    def status(self) -> str:
        """One line: number, workspace, state, elapsed."""
        return (
            f"Background answer {self.number} ({self.workspace}): {self.state}, "
            f"{int(self.elapsed)} s"
        )

    def _repr_markdown_(self) -> str:
        if self.done():
            return render_markdown(self.reply, final=True)
        return f"⏳ {literal_markdown(self.status())} · {stop_hint(self.number)}"

    def waiting_line(self, elapsed: float, thoughts: Sequence[str]) -> str:
        """The output's line before the first words: queued, or asking; and how to stop it."""
        if self._state == "queued":
            line = f"⏳ Background answer {self.number} is queued… {int(elapsed)} s"
        else:
            line = f"{status_line(self.workspace, elapsed, thoughts)} (background answer {self.number})"
        return f"{line} · {stop_hint(self.number)}"

    # -- on the loop thread -------------------------------------------------------------------

    def _streaming(self, stream: AsyncChatStream) -> None:
        self._stream = stream
        self._state = "streaming"

    def _end(self, state: JobState, reply: Reply, error: BaseException | None = None) -> None:
        """The final update, in the asking cell's context (no failing cell shows an error, so
        the output says it), then the outcome."""
        try:
            if self._view is not None and self._cell is not None:
                self._cell.run(self._view.close, reply)
        finally:
            self._settle(state, reply, error)

    def _settle(self, state: JobState, reply: Reply, error: BaseException | None) -> None:
        """Record the outcome; let go of what was sent and drawn (the kernel keeps its jobs
        for ``%allm jobs``, not their attachments): the reply first, for ``.reply`` meanwhile."""
        self._reply = reply
        self._ended = self._clock()
        self._state = state
        self._prepared = self._stream = self._view = self._cell = None
        if error is None:
            self._outcome.set_result(reply)
        else:
            self._outcome.set_exception(error)


class JobRunner:
    """This kernel's background answers: numbered, at most ``limit()`` streaming, one at a time
    per session or thread; :meth:`close` hangs them all up (also at interpreter exit)."""

    def __init__(
        self,
        limit: Callable[[], int] = lambda: DEFAULT_BACKGROUND_LIMIT,
        *,
        words: Callable[[AllmError], str] = lambda error: error.message,
        clock: Callable[[], float] = time.monotonic,
        loop: LoopThread | None = None,
    ) -> None:
        self._limit = limit
        self._loop = loop or shared_loop()
        """Where the answers run: the process's loop thread."""
        self._words = words
        """An error's sentence as the output says it (the notebook's hints)."""
        self._clock = clock
        self._numbers = itertools.count(1)
        self._jobs: dict[int, AskJob] = {}
        self._guard = threading.Lock()
        # loop-side state, made and used on the loop thread only
        self._streaming = 0
        self._room: asyncio.Condition | None = None
        self._turns: dict[TurnKey, asyncio.Lock] = {}
        self._clients: dict[ClientConfig, AsyncClient] = {}
        """The async twins of the sync clients that prepared the questions, by their settings."""
        self._hooked = False
        """Whether :meth:`close` runs at interpreter exit (from the first job on)."""

    @property
    def jobs(self) -> list[AskJob]:
        """Every job of this kernel, oldest first."""
        with self._guard:
            return list(self._jobs.values())

    def job(self, number: int) -> AskJob | None:
        with self._guard:
            return self._jobs.get(number)

    def submit(
        self, prepared: ChatStream, question: str, make_view: Callable[[AskJob], View]
    ) -> AskJob:
        """Ask the question ``prepared`` holds (a sync stream, nothing sent yet) on the loop
        thread, drawn into the view ``make_view(job)`` makes (in the asking cell, whose context
        the final update runs in); ``question`` is what the user wrote.

        A stop (KeyboardInterrupt) landing in here ends the job as stopped, its output too, and
        goes on: no job is left queued with nothing to run it. The work is held before it is
        started, so a stop just after starting it hangs it up."""
        job = AskJob(next(self._numbers), prepared, question, self, self._clock)
        try:
            with self._guard:
                self._jobs[job.number] = job
                if not self._hooked:  # kernel shutdown or restart hangs up what still streams
                    atexit.register(self.close)
                    self._hooked = True
            job._cell = contextvars.copy_context()
            view = job._view = make_view(job)
            view.attach(job)
            view.draw_due()  # the output exists before the cell returns: it belongs to this cell
            job._work = Work(lambda: self._run(job, view))
            self._loop.start(job._work)
        except BaseException:
            self.stop(job)
            raise
        return job

    def stop(self, job: AskJob) -> None:
        """Hang ``job`` up (or take it out of the line) and wait until it has ended."""
        if job.done():
            return
        work = job._work
        if work is not None:  # None: stopped in :meth:`submit` before its work was made
            self._loop.cancel(work)
            work.ended.wait()
        if not job.done():  # cancelled before its first step, or never started: its code never ran
            job._end("stopped", replace(job.reply, interrupted=True))

    def close(self) -> None:
        """Hang up every answer, wait for each to end, close the connections."""
        if self._hooked:
            atexit.unregister(self.close)
            self._hooked = False
        for job in self.jobs:
            self.stop(job)
        if self._clients:
            clients, self._clients = list(self._clients.values()), {}
            self._loop.call(lambda: _close_all(clients))

    # -- on the loop thread -------------------------------------------------------------------

    async def _run(self, job: AskJob, view: View) -> None:
        state: JobState = "stopped"
        error: BaseException | None = None
        try:
            async with self._turn(job.key), self._slot():
                assert job._prepared is not None  # let go of only once the job has ended
                stream = self._async_stream(job._prepared)
                job._streaming(stream)
                view.arrived()  # redraw the waiting line: no longer queued
                async for _ in stream:
                    view.arrived()
            state, reply = "done", stream.reply
        except asyncio.CancelledError:
            reply = replace(job.reply, interrupted=True)
        except AllmError as exc:
            exc.reword(self._words(exc))
            exc.one_line = True
            state, error = "failed", exc
            reply = with_error(job.reply, exc)
        except Exception as exc:  # a bug or an unmapped failure: still keep what arrived
            state, error = "failed", exc
            reply = with_error(job.reply, exc)
        job._end(state, reply, error)

    @asynccontextmanager
    async def _turn(self, key: TurnKey) -> AsyncIterator[None]:
        """One answer at a time per session or thread, in the order they were asked."""
        lock = self._turns.setdefault(key, asyncio.Lock())
        async with lock:
            yield

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """At most ``limit()`` answers streaming (read each time: ``%config`` may change it)."""
        if self._room is None:
            self._room = asyncio.Condition()
        room = self._room
        async with room:
            await room.wait_for(lambda: self._streaming < max(1, self._limit()))
            self._streaming += 1
        try:
            yield
        finally:
            self._streaming -= 1
            async with room:
                room.notify_all()

    def _async_stream(self, prepared: ChatStream) -> AsyncChatStream:
        from .async_client import AsyncClient, async_twin  # with the first one: load speed

        def pooled(config: ClientConfig) -> AsyncClient:
            client = self._clients.get(config)
            if client is None:
                client = self._clients[config] = AsyncClient.from_config(config)
            return client

        return async_twin(prepared, pooled)


async def _close_all(clients: list[AsyncClient]) -> None:
    for client in clients:
        await client.aclose()
