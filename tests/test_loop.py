"""The private loop thread: results come back, and a stop while waiting ends the work first."""

from __future__ import annotations

import os
import signal
import threading

import anyio
import pytest

from allm_jupyter._loop import LoopThread


def test_call_returns_the_result_and_close_stops_the_thread() -> None:
    loop = LoopThread()

    async def answer() -> int:
        await anyio.sleep(0)
        return 42

    before = set(threading.enumerate())  # the shared loop may run already (other tests' batches)
    assert loop.call(answer) == 42
    started = set(threading.enumerate()) - before
    assert [t.name for t in started] == ["allm-jupyter-loop"]
    loop.close()
    assert not any(t.is_alive() for t in started)
    assert loop.call(answer) == 42  # a later call starts it again
    loop.close()


def test_an_interrupt_while_waiting_cancels_the_work_and_waits_for_its_cleanup() -> None:
    loop = LoopThread()
    started = threading.Event()
    cleaned_up = threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cleaned_up.set()

    def interrupt_when_started() -> None:
        started.wait()
        os.kill(os.getpid(), signal.SIGINT)  # a real signal, as the stop button sends

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        loop.call(forever)
    assert cleaned_up.is_set()
    loop.close()


def test_close_cancels_submitted_work() -> None:
    loop = LoopThread()
    cleaned_up = threading.Event()
    started = threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cleaned_up.set()

    work = loop.submit(forever)
    started.wait()
    loop.close()
    assert cleaned_up.is_set()
    assert work.ended.is_set()
    assert work.future.cancelled()


def test_cancel_ends_work_that_started_and_work_that_did_not() -> None:
    loop = LoopThread()
    started = threading.Event()

    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    running = loop.submit(forever)
    started.wait()
    loop.cancel(running)
    running.ended.wait()
    assert running.future.cancelled()
    loop.close()
