"""The clients' HTTP conventions over loopback, on both clients: retries and the shared backoff,
the size caps, hanging up (also from another thread or task), ``headers=``, ``http_client=``,
``timeout=``, the diagnosis step, and what ``Client.ask_many`` carries over to its batch.

The hostile server answers with exact bytes and records every request and every hang-up, so each
test checks what the server saw, not the client's own account of it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile import (
    STREAM_HEAD,
    STREAM_ROUTE,
    STREAM_SLUG,
    Canned,
    HostileServer,
    canned,
    http_response,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hardening import corporate_ca  # noqa: F401 -- a fixture, used by name

from allm_jupyter import (
    AsyncClient,
    Client,
    ConfigurationError,
    ConnectionLostError,
    ServerError,
    ServerUnreachableError,
    WorkspaceNotFoundError,
)
from allm_jupyter.testing import StandInServer

KEY = "standin-00112233aabbccdd"
WORKSPACES = "/api/v1/workspaces"
LISTING = json.dumps({"workspaces": [{"slug": "ws", "name": "WS", "threads": []}]}).encode()


def chunk(text: str) -> bytes:
    event = {"type": "textResponseChunk", "uuid": "u", "textResponse": text}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


FINALIZE = b'data: {"type":"finalizeResponseStream","uuid":"u","chatId":1}\n\n'


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


def unavailable(status: int = 503, retry_after: str = "0") -> Canned:
    body = b"<html><title>Unavailable</title></html>"
    return canned(
        http_response(
            status, body, "text/html", reason="Unavailable", headers=[("Retry-After", retry_after)]
        )
    )


# -- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429, 502, 504])
def test_a_read_is_sent_again_after_a_refusal(
    make_client, server: HostileServer, status: int
) -> None:
    server.routes[WORKSPACES] = [unavailable(status), canned(http_response(200, LISTING))]
    with make_client(server.base_url, api_key=KEY) as client:
        assert [w.slug for w in client.workspaces()] == ["ws"]
    assert server.count(WORKSPACES) == 2


def test_retries_stop_at_max_retries(make_client, server: HostileServer) -> None:
    server.routes[WORKSPACES] = [unavailable(503)]
    with (
        make_client(server.base_url, api_key=KEY, max_retries=1) as client,
        pytest.raises(ServerError, match="503"),
    ):
        client.workspaces()
    assert server.count(WORKSPACES) == 2
    with (
        make_client(server.base_url, api_key=KEY, max_retries=0) as client,
        pytest.raises(ServerError, match="503"),
    ):
        client.workspaces()
    assert server.count(WORKSPACES) == 3


def test_a_chat_is_asked_again_only_before_its_answer(make_client, server: HostileServer) -> None:
    answer = Canned((STREAM_HEAD, chunk("Hello"), FINALIZE))
    server.routes[STREAM_ROUTE] = [unavailable(503), answer]
    with make_client(server.base_url, api_key=KEY) as client:
        assert client.chat(STREAM_SLUG, "q", mode="chat").text == "Hello"
    assert server.count(STREAM_ROUTE) == 2


def test_a_creation_is_not_repeated_after_a_gateway_error(
    make_client, server: HostileServer
) -> None:
    route = f"/api/v1/workspace/{STREAM_SLUG}/thread/new"
    server.routes[route] = [
        unavailable(502),
        canned(http_response(200, b'{"thread": {"slug": "t"}}')),
    ]
    server.routes[WORKSPACES] = canned(http_response(200, LISTING))
    with (
        make_client(server.base_url, api_key=KEY) as client,
        pytest.raises(ServerError, match="502"),
    ):
        client.new_thread(STREAM_SLUG)
    assert server.count(route) == 1


def test_a_long_retry_after_is_not_waited_for(make_client, server: HostileServer) -> None:
    server.routes[WORKSPACES] = [
        unavailable(429, retry_after="3600"),
        canned(http_response(200, LISTING)),
    ]
    with (
        make_client(server.base_url, api_key=KEY) as client,
        pytest.raises(ServerError, match="429"),
    ):
        client.workspaces()
    assert server.count(WORKSPACES) == 1


# -- diagnosis --------------------------------------------------------------------------------


def test_a_failed_diagnosis_keeps_the_original_error(make_client, server: HostileServer) -> None:
    route = f"/api/v1/workspace/{STREAM_SLUG}/thread/t/chats"
    server.routes[route] = canned(
        http_response(400, b"Bad Request", "text/plain", reason="Bad Request")
    )
    server.routes[WORKSPACES] = canned(http_response(500, b"{}", reason="Oops"))
    with make_client(server.base_url, api_key=KEY, max_retries=0) as client:
        with pytest.raises(ServerError, match=r"^The server answered 400 Bad Request"):
            client.history(STREAM_SLUG, thread="t")
        server.routes[WORKSPACES] = canned(
            http_response(200, json.dumps({"workspaces": []}).encode())
        )
        with pytest.raises(WorkspaceNotFoundError, match=f"no workspace '{STREAM_SLUG}'"):
            client.history(STREAM_SLUG, thread="t")


# -- caps -------------------------------------------------------------------------------------


def test_an_endless_event_line_is_cut_at_max_line_bytes(make_client, server: HostileServer) -> None:
    endless = Canned((STREAM_HEAD, chunk("kept "), b"data: " + b"x" * 50_000), keep_open=True)
    server.routes[STREAM_ROUTE] = endless
    with make_client(server.base_url, api_key=KEY, max_line_bytes=10_000) as client:
        with pytest.raises(
            ServerError, match=r"an event line longer than max_line_bytes \(10,000 bytes\)"
        ) as caught:
            client.chat(STREAM_SLUG, "q", mode="chat")
        assert caught.value.reply is not None and caught.value.reply.text == "kept "
    assert server.hangups.acquire(timeout=30)


def test_an_endless_body_is_cut_at_max_body_bytes(make_client, server: HostileServer) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    server.routes[WORKSPACES] = Canned((head, b"[" * 50_000), keep_open=True)
    with (
        make_client(server.base_url, api_key=KEY, max_body_bytes=10_000) as client,
        pytest.raises(ServerError, match=r"a response longer than max_body_bytes \(10,000 bytes\)"),
    ):
        client.workspaces()
    assert server.hangups.acquire(timeout=30)


def test_a_declared_length_over_the_cap_is_refused_unread(
    make_client, server: HostileServer
) -> None:
    server.routes[WORKSPACES] = canned(http_response(200, b" " * 20_000))
    with (
        make_client(server.base_url, api_key=KEY, max_body_bytes=10_000) as client,
        pytest.raises(ServerError, match="max_body_bytes"),
    ):
        client.workspaces()


# -- hanging up ---------------------------------------------------------------------------------


@pytest.fixture
def open_stream(server: HostileServer) -> HostileServer:
    """An answer that sends one chunk and then stays open until the client hangs up."""
    server.routes[STREAM_ROUTE] = Canned((STREAM_HEAD, chunk("first ")), keep_open=True)
    return server


def test_break_hangs_up(make_client, open_stream: HostileServer) -> None:
    with make_client(open_stream.base_url, api_key=KEY) as client:
        for _ in client.stream_chat(STREAM_SLUG, "q", mode="chat"):
            break
        assert open_stream.hangups.acquire(timeout=30)


def test_an_exception_in_the_loop_hangs_up(make_client, open_stream: HostileServer) -> None:
    with make_client(open_stream.base_url, api_key=KEY) as client:
        stream = client.stream_chat(STREAM_SLUG, "q", mode="chat")
        with pytest.raises(LookupError):
            for _ in stream:
                raise LookupError("the caller's own bug")
        assert open_stream.hangups.acquire(timeout=30)
        assert stream.reply.text == "first "


def test_leaving_with_hangs_up(make_client, open_stream: HostileServer) -> None:
    with make_client(open_stream.base_url, api_key=KEY) as client:
        with client.stream_chat(STREAM_SLUG, "q", mode="chat") as stream:
            next(iter(stream))
        assert open_stream.hangups.acquire(timeout=30)


def test_garbage_collection_hangs_up(open_stream: HostileServer) -> None:
    """The stream dropped mid-answer, iterator and all: nobody will read the rest."""
    with Client(open_stream.base_url, api_key=KEY) as client:
        iterator = iter(client.stream_chat(STREAM_SLUG, "q", mode="chat"))
        next(iterator)
        del iterator
        gc.collect()
        assert open_stream.hangups.acquire(timeout=30)

    async def dropped() -> None:
        async with AsyncClient(open_stream.base_url, api_key=KEY) as client:
            iterator = aiter(client.stream_chat(STREAM_SLUG, "q", mode="chat"))
            await anext(iterator)
            del iterator
            gc.collect()
            assert await asyncio.to_thread(open_stream.hangups.acquire, timeout=30)

    asyncio.run(dropped())


def read_in_a_thread(stream: Any) -> tuple[threading.Thread, threading.Event, list[object]]:
    """Iterate ``stream`` on a thread of its own: (the thread, set at the first event, how the
    loop ended: ``"ended"`` or the exception)."""
    first = threading.Event()
    outcome: list[object] = []

    def read() -> None:
        try:
            for _ in stream:
                first.set()
            outcome.append("ended")
        except BaseException as exc:  # the test asserts on it
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    return reader, first, outcome


@pytest.mark.parametrize("how", ["close", "stop"])
def test_hanging_up_while_another_thread_reads(
    make_client, open_stream: HostileServer, how: str
) -> None:
    """The sync stream from another thread, the async one from another task (the test's loop
    runs each step as a task): the server sees the hang-up, the reading loop ends quietly and
    keeps what arrived, and only stop() marks the reply interrupted."""
    with make_client(open_stream.base_url, api_key=KEY) as client:
        stream = client.stream_chat(STREAM_SLUG, "q", mode="chat")
        reader, first, outcome = read_in_a_thread(stream)
        assert first.wait(30)
        getattr(stream, how)()
        assert open_stream.hangups.acquire(timeout=30)
        reader.join(30)
        assert outcome == ["ended"]
        assert stream.reply.text == "first " and stream.reply.interrupted is (how == "stop")


def test_hanging_up_from_another_thread_over_tls(
    corporate_ca: tuple[Path, Path, Path],  # noqa: F811
) -> None:
    """An ``ssl.SSLSocket`` is shut down under its TLS layer, which the reader still uses."""
    import ssl

    ca, cert, key = corporate_ca
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    answer = Canned((STREAM_HEAD, chunk("first ")), keep_open=True)
    with (
        HostileServer({STREAM_ROUTE: answer}, tls=context) as server,
        Client(server.base_url, api_key=KEY, ca_bundle=ca) as client,
    ):
        stream = client.stream_chat(STREAM_SLUG, "q", mode="chat")
        reader, first, outcome = read_in_a_thread(stream)
        assert first.wait(30)
        reply = stream.stop()
        assert server.hangups.acquire(timeout=30)
        reader.join(30)
        assert outcome == ["ended"] and reply.interrupted and stream.reply.text == "first "


def test_hanging_up_from_another_thread_on_a_kept_alive_connection(
    allm_server: StandInServer,
) -> None:
    """The stand-in's chunked answer breaks off mid-body (not a clean end), and the client's
    pooled connections still serve the next request."""
    from allm_jupyter.testing import scenarios

    with Client(allm_server.base_url, api_key=allm_server.api_key) as client:
        allm_server.queue(scenarios.stall("first "))
        stream = client.stream_chat(allm_server.slugs[0], "q", mode="chat")
        reader, first, outcome = read_in_a_thread(stream)
        assert first.wait(30)
        stream.close()
        assert allm_server.streams[-1].disconnected.wait(30)
        reader.join(30)
        assert outcome == ["ended"] and stream.reply.text == "first "
        assert not stream.reply.interrupted and not stream.reply.complete
        assert [w.slug for w in client.workspaces()] == allm_server.slugs


# -- ask_many on a sync client ------------------------------------------------------------------


def test_ask_many_refuses_a_callers_http_client_or_transport(server: HostileServer) -> None:
    """Both are synchronous and the batch runs on asyncio: one sentence naming the way, and
    nothing sent around them."""
    seen: list[str] = []
    way = re.escape("AsyncClient(http_client=httpx.AsyncClient(...)).ask_many")
    with httpx.Client(event_hooks={"request": [lambda r: seen.append(r.url.path)]}) as own:
        for given in ({"http_client": own}, {"transport": httpx.HTTPTransport()}):
            with (
                Client(server.base_url, api_key=KEY, **given) as client,
                pytest.raises(ConfigurationError, match=way) as refused,
            ):
                client.ask_many(STREAM_SLUG, ["q?"], mode="chat", progress=False)
            assert refused.value.message.count(". ") == 0
    assert seen == [] and server.requests == []


def test_the_async_client_asks_many_through_the_callers_http_client(
    server: HostileServer,
) -> None:
    """The way the refusal names works: every chat goes through the caller's client."""
    server.routes[STREAM_ROUTE] = Canned((STREAM_HEAD, chunk("Hello"), FINALIZE))
    seen: list[str] = []

    async def hooked(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async def asynchronous() -> None:
        async with (
            httpx.AsyncClient(event_hooks={"request": [hooked]}) as own,
            AsyncClient(server.base_url, api_key=KEY, http_client=own) as client,
        ):
            batch = await client.ask_many(STREAM_SLUG, ["a?", "b?"], mode="chat", progress=False)
            assert batch.done == 2

    asyncio.run(asynchronous())
    assert seen == [STREAM_ROUTE, STREAM_ROUTE]


def test_a_pause_the_client_is_in_holds_back_its_batch(server: HostileServer) -> None:
    """A 429 on another thread's request pauses the client; its batch waits for that pause too
    (the batch's AsyncClient shares the backoff). The client sets the pause before it closes the
    429, so the hang-up says the pause holds; then the chat may arrive only ``Retry-After``
    after the refused request did (both times are the server's, from the backoff's clock)."""
    refusal = http_response(429, b"{}", reason="Too Many Requests", headers=[("Retry-After", "1")])
    server.routes[WORKSPACES] = [
        Canned((refusal,), keep_open=True),
        canned(http_response(200, LISTING)),
    ]
    server.routes[STREAM_ROUTE] = Canned((STREAM_HEAD, chunk("Hello"), FINALIZE))
    with Client(server.base_url, api_key=KEY, max_retries=1) as client:
        listing = threading.Thread(target=client.workspaces)
        listing.start()
        assert server.hangups.acquire(timeout=30)
        batch = client.ask_many(STREAM_SLUG, ["q?"], mode="chat", progress=False)
        listing.join(30)
    assert batch.done == 1 and batch.replies[0] is not None
    refused = server.requests[0]
    (chat,) = [r for r in server.requests if r.path == STREAM_ROUTE]
    assert refused.path == WORKSPACES and chat.arrived - refused.arrived >= 1


# -- headers, http_client, timeout ------------------------------------------------------------


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40
    )
)
def test_headers_go_with_every_request(make_client, server: HostileServer, value: str) -> None:
    server.routes[WORKSPACES] = canned(http_response(200, LISTING))
    with make_client(server.base_url, api_key=KEY, headers={"X-Team": value}) as client:
        client.workspaces()
    sent = server.requests[-1].headers
    assert sent["x-team"] == value and sent["authorization"] == f"Bearer {KEY}"


def test_a_callers_http_client_is_used_and_left_open(server: HostileServer) -> None:
    server.routes[WORKSPACES] = canned(http_response(200, LISTING))
    seen: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda r: seen.append(r.url.path)]}) as own:
        with Client(server.base_url, api_key=KEY, http_client=own) as client:
            client.workspaces()
        assert not own.is_closed and seen == [WORKSPACES]

    async def hooked(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async def asynchronous() -> None:
        async with httpx.AsyncClient(event_hooks={"request": [hooked]}) as own:
            async with AsyncClient(server.base_url, api_key=KEY, http_client=own) as client:
                await client.workspaces()
            assert not own.is_closed

    asyncio.run(asynchronous())
    assert seen == [WORKSPACES, WORKSPACES]


def test_an_httpx_timeout_is_obeyed(make_client, open_stream: HostileServer) -> None:
    limits = httpx.Timeout(10, read=0.5)
    with make_client(open_stream.base_url, api_key=KEY, timeout=limits) as client:
        assert client.timeout is limits
        with pytest.raises(Exception, match=r"No data arrived from the server for 0\.5 s"):
            client.chat(STREAM_SLUG, "q", mode="chat")


def test_an_unreachable_server_is_tried_max_retries_times(
    make_client, server: HostileServer
) -> None:
    url = server.base_url.rsplit(":", 1)[0] + ":9"  # discard: nothing listens
    with (
        make_client(url, api_key=KEY, max_retries=0) as client,
        pytest.raises(ServerUnreachableError),
    ):
        client.workspaces()


# -- one shape ----------------------------------------------------------------------------------


def test_upload_takes_the_slug_first_and_the_old_order_warns(
    make_client: Callable[..., Any], allm_server: StandInServer, tmp_path: Path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Slug first, like every other method.\n")
    slug = allm_server.slugs[0]
    with make_client(allm_server.base_url, api_key=allm_server.api_key) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            assert client.upload(slug, path)[0].title
        with pytest.warns(DeprecationWarning, match=r"call upload\(slug, path\)"):
            assert client.upload(path, slug)[0].title


@given(garbage=st.binary(min_size=1, max_size=200))
@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_body_that_cannot_be_decoded_is_a_server_error(
    make_client: Callable[..., Any], server: HostileServer, garbage: bytes
) -> None:
    bad = http_response(200, b"\x00not gzip" + garbage, headers=[("Content-Encoding", "gzip")])
    server.routes[WORKSPACES] = canned(bad)
    with (
        make_client(server.base_url, api_key=KEY) as client,
        pytest.raises(ServerError, match=r"sent a body that cannot be read \(DecodingError\)"),
    ):
        client.workspaces()


CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\n"
)
"""An event stream whose body is chunked: a close before the last chunk breaks it off."""


def http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_a_chat_broken_off_before_its_first_byte_is_asked_again(
    make_client, server: HostileServer
) -> None:
    whole = Canned((CHUNKED_HEAD, http_chunk(chunk("Hello") + FINALIZE), b"0\r\n\r\n"))
    server.routes[STREAM_ROUTE] = [Canned((CHUNKED_HEAD,)), whole]
    with make_client(server.base_url, api_key=KEY) as client:
        assert client.chat(STREAM_SLUG, "q", mode="chat").text == "Hello"
    assert server.count(STREAM_ROUTE) == 2


def test_a_chat_broken_off_after_a_byte_is_not_asked_again(
    make_client, server: HostileServer
) -> None:
    broken = Canned((CHUNKED_HEAD, http_chunk(chunk("Half "))))
    server.routes[STREAM_ROUTE] = [broken, Canned((STREAM_HEAD, chunk("Again"), FINALIZE))]
    with make_client(server.base_url, api_key=KEY) as client:
        with pytest.raises(ConnectionLostError, match="broke before the answer ended") as caught:
            client.chat(STREAM_SLUG, "q", mode="chat")
        assert caught.value.reply is not None and caught.value.reply.text == "Half "
    assert server.count(STREAM_ROUTE) == 1
