"""One private event loop on its own thread, for synchronous callers of asynchronous work.

A notebook's cells already run inside an event loop, so ``asyncio.run`` is not available there;
batches (``ask_many`` on the sync ``Client``) and background answers run their coroutines on this
loop instead. It is started on first use, shared by the whole process and stopped at exit,
cancelling what still runs.

Hand-written on asyncio rather than anyio's blocking portal: the portal's ``start_task_soon``
waits for the loop thread, and a stop (KeyboardInterrupt) landing in that wait would leave work
running with no handle to cancel it. Here every step that touches the work runs on the loop, in
order, so a stop at any moment cancels exactly what was started.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

_T = TypeVar("_T")


class Work(Generic[_T]):
    """One coroutine on the loop: ``future`` has its outcome, ``ended`` is set once it has
    finished (its ``finally`` blocks run), whether it ran, failed or was cancelled."""

    def __init__(self, function: Callable[[], Awaitable[_T]]) -> None:
        self._function = function
        self._task: asyncio.Task[_T] | None = None
        self._cancelled = False
        self.future: Future[_T] = Future()
        self.ended = threading.Event()

    def _start(self) -> None:  # on the loop
        if self._cancelled:
            self.future.cancel()
            self.ended.set()
            return

        async def run() -> _T:
            return await self._function()

        self._task = asyncio.get_running_loop().create_task(run())
        self._task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[_T]) -> None:  # on the loop
        if task.cancelled():
            self.future.cancel()
        elif (error := task.exception()) is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(task.result())
        self.ended.set()

    def _cancel(self) -> None:  # on the loop, after ``_start`` if that was scheduled at all
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()
        else:  # never started (a stop landed before it was scheduled): nothing will end it
            self.future.cancel()
            self.ended.set()


class LoopThread:
    """A lazily started event-loop thread: ``submit`` work to it, or ``call`` and wait."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="allm-jupyter-loop", daemon=True
                )
                self._thread.start()
            return self._loop

    def submit(self, function: Callable[[], Awaitable[_T]]) -> Work[_T]:
        """Start ``function()`` on the loop; :meth:`cancel` stops it there."""
        work = Work(function)
        self.start(work)
        return work

    def start(self, work: Work[_T]) -> None:
        """Start ``work`` made beforehand: its owner can hold it before it may run, so a stop
        landing anywhere in this call still has it to :meth:`cancel`."""
        self._running().call_soon_threadsafe(work._start)

    def cancel(self, work: Work[_T]) -> None:
        """Cancel ``work`` (before or after it started); wait on ``work.ended`` to see it end."""
        self._running().call_soon_threadsafe(work._cancel)

    def call(self, function: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``function()`` on the loop and wait for its result.

        A stop (KeyboardInterrupt) while waiting cancels it and waits until it has really ended,
        so its ``finally`` blocks (hanging up streams) have run before the interrupt goes on.
        """
        work = Work(function)
        try:
            self.start(work)
            return work.future.result()
        except KeyboardInterrupt:
            self.cancel(work)
            work.ended.wait()
            raise

    def close(self) -> None:
        """Cancel what still runs, stop the thread; a later ``submit`` starts a new one."""
        with self._guard:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(cancel_all(), loop)
        thread.join()
        loop.close()


_shared = LoopThread()
atexit.register(_shared.close)


def shared_loop() -> LoopThread:
    """The process's loop thread (one is enough: it only waits on sockets)."""
    return _shared
