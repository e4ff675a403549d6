"""The AsyncClient against the stand-in server over loopback: the asyncio shell of the same core."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from allm_jupyter import (
    AsyncChatStream,
    AsyncClient,
    ChatAbortedError,
    Client,
    ClientConfig,
    WorkspaceNotFoundError,
)
from allm_jupyter.events import TextResponseChunk
from allm_jupyter.testing import StandInServer, scenarios


@pytest.fixture
def config(allm_server: StandInServer) -> Iterator[ClientConfig]:
    with Client(allm_server.base_url, api_key=allm_server.api_key, timeout=10) as client:
        yield client.config


def run(coroutine_function):  # type: ignore[no-untyped-def]
    """Run an ``async def`` test body on a fresh event loop."""
    return asyncio.run(coroutine_function())


def test_from_config_asks_the_same_server(config: ClientConfig, allm_server) -> None:
    async def body() -> None:
        async with AsyncClient.from_config(config) as client:
            assert client.config is config
            assert [w.slug for w in await client.workspaces()] == allm_server.slugs
            assert (await client.workspace(allm_server.slugs[0])).slug == allm_server.slugs[0]
            with pytest.raises(WorkspaceNotFoundError, match="no-such-ws"):
                await client.workspace("no-such-ws")

    run(body)


def test_chat_and_stream_chat_fold_the_same_reply(config: ClientConfig, allm_server) -> None:
    scenario = scenarios.normal("An async answer.", sources=scenarios.SAMPLE_SOURCES)

    async def body() -> None:
        async with AsyncClient.from_config(config) as client:
            allm_server.queue(scenario)
            reply = await client.chat(allm_server.slugs[0], "q", mode="chat")
            assert reply.text == scenario.expected_text and reply.complete
            allm_server.queue(scenario)
            stream = client.stream_chat(allm_server.slugs[0], "q", mode="chat")
            assert isinstance(stream, AsyncChatStream)
            assert allm_server.chat_requests()[-1:] != [] and len(allm_server.chat_requests()) == 1
            async with stream:
                events = [event async for event in stream]
            assert events and stream.reply.text == scenario.expected_text
            assert len(allm_server.chat_requests()) == 2

    run(body)


def test_stream_chat_sends_nothing_before_iteration(config: ClientConfig, allm_server) -> None:
    async def body() -> None:
        async with AsyncClient.from_config(config) as client:
            client.stream_chat(allm_server.slugs[0], "never sent", mode="chat")
            await client.workspaces()
        assert allm_server.chat_requests() == []

    run(body)


def test_errors_keep_the_partial_reply(config: ClientConfig, allm_server) -> None:
    scenario = scenarios.midstream_abort("Half an ", "provider died")

    async def body() -> None:
        async with AsyncClient.from_config(config) as client:
            allm_server.queue(scenario)
            with pytest.raises(ChatAbortedError, match="provider died") as caught:
                await client.chat(allm_server.slugs[0], "q", mode="chat")
            assert caught.value.reply is not None
            assert caught.value.reply.text == scenario.expected_text

    run(body)


async def _first_chunk(stream: AsyncChatStream) -> None:
    async for event in stream:
        assert isinstance(event, TextResponseChunk)
        break


def test_break_hangs_up_and_the_server_sees_it(config: ClientConfig, allm_server) -> None:
    async def body() -> None:
        async with AsyncClient.from_config(config) as client:
            allm_server.queue(scenarios.stall("first "))
            stream = client.stream_chat(allm_server.slugs[0], "q", mode="chat")
            await _first_chunk(stream)
            disconnected = allm_server.streams[-1].disconnected
            assert await asyncio.to_thread(disconnected.wait, 30)
            assert stream.reply.text == "first "

    run(body)


def test_stop_and_leaving_async_with_hang_up(config: ClientConfig, allm_server) -> None:
    async def body() -> None:
        async with AsyncClient.from_config(config) as client:
            allm_server.queue(scenarios.stall("first "))
            stream = client.stream_chat(allm_server.slugs[0], "q", mode="chat")
            iterator: AsyncIterator[object] = stream.__aiter__()
            await iterator.__anext__()
            reply = await stream.stop()
            assert reply.interrupted and reply.text == "first "
            assert await asyncio.to_thread(allm_server.streams[-1].disconnected.wait, 30)
            allm_server.queue(scenarios.stall("second "))
            async with client.stream_chat(allm_server.slugs[0], "q", mode="chat") as again:
                async for _ in again:
                    break
            assert await asyncio.to_thread(allm_server.streams[-1].disconnected.wait, 30)

    run(body)


@pytest.mark.parametrize("how", ["cancel", "aclose", "stop"])
def test_hanging_up_while_another_task_reads(config: ClientConfig, allm_server, how: str) -> None:
    """The reading task is awaiting the next bytes. Cancelling it hangs up at once and marks the
    reply interrupted; aclose() or stop() from another task hang up at once too, and the reading
    loop ends without an error (only stop() marks the reply). What arrived is kept, and the
    client's pooled connections still serve."""

    async def body() -> None:
        async with AsyncClient.from_config(config) as client:
            allm_server.queue(scenarios.stall("first "))
            stream = client.stream_chat(allm_server.slugs[0], "q", mode="chat")
            first = asyncio.Event()

            async def read_all() -> None:
                async for _ in stream:
                    first.set()

            task = asyncio.create_task(read_all())
            await first.wait()
            if how == "cancel":
                task.cancel()
            else:
                await getattr(stream, how)()
            assert await asyncio.to_thread(allm_server.streams[-1].disconnected.wait, 30)
            if how == "cancel":
                with pytest.raises(asyncio.CancelledError):
                    await task
            else:
                await asyncio.wait_for(task, 60)  # ends quietly: no exception to re-raise
            assert stream.reply.text == "first " and stream.reply.interrupted is (how != "aclose")
            assert [w.slug for w in await client.workspaces()] == allm_server.slugs

    run(body)
