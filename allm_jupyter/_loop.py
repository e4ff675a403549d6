"""One private event loop on its own thread, for synchronous callers of asynchronous work.

A notebook's cells already run inside an event loop, so ``asyncio.run`` is not available there;
batches (``ask_many`` on the sync ``Client``) and background answers run their coroutines on this
loop instead. It is anyio's blocking portal (the library's own tool for exactly this), started on
first use, shared by the whole process, and stopped at exit, cancelling what still runs.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

_T = TypeVar("_T")


class LoopThread:
    """A lazily started event-loop thread: ``submit`` work to it, or ``call`` and wait."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._manager: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None

    def _started(self) -> BlockingPortal:
        with self._guard:
            if self._portal is None:
                self._manager = start_blocking_portal(name="allm-jupyter-loop")
                self._portal = self._manager.__enter__()
            return self._portal

    def submit(self, function: Callable[[], Awaitable[_T]]) -> Future[_T]:
        """Start ``function()`` on the loop; cancelling the future cancels it there."""
        return self._started().start_task_soon(function)

    def call(self, function: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``function()`` on the loop and wait for its result.

        A stop (KeyboardInterrupt) while waiting cancels it and waits until it has really ended,
        so its ``finally`` blocks (hanging up streams) have run before the interrupt goes on.
        """
        ended = threading.Event()

        async def run() -> _T:
            try:
                return await function()
            finally:
                ended.set()

        future = self.submit(run)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            ended.wait()
            raise

    def close(self) -> None:
        """Cancel what still runs and stop the thread; a later ``submit`` starts a new one."""
        with self._guard:
            manager, portal = self._manager, self._portal
            self._manager = self._portal = None
        if manager is None or portal is None:
            return
        portal.call(portal.stop, True)
        manager.__exit__(None, None, None)


_shared = LoopThread()
atexit.register(_shared.close)


def shared_loop() -> LoopThread:
    """The process's loop thread (one is enough: it only waits on sockets)."""
    return _shared
