"""``Client`` against the real AnythingLLM: what tests/test_client.py checks on the stand-in,
where the real server (with the kit's fake LLM and its trigger words) can produce it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from allm_jupyter import (
    AuthenticationError,
    ChatAbortedError,
    Client,
    ServerError,
    StreamTimeoutError,
    ThreadNotFoundError,
    WorkspaceNotFoundError,
)
from allm_jupyter.events import TextResponseChunk
from allm_jupyter.testing import REFUSAL_TEXT, RESET_TEXT
from allm_jupyter.testing.data import fake_reply

from .servers import FACT_QUESTION, SEEDED, SEEDED_EMPTY, UNRELATED_QUESTION, RealServer, unique

FACT_SHEET = "wire-fact-sheet.txt"
HANG_SECONDS = 10.0
"""The idle timeout for a stream the server never ends: well above this server's pause before
its first chunk, however loaded the machine, so only the hang itself runs into it."""


@pytest.fixture
def client(real_server: RealServer, make_client: Callable[..., Any]) -> Iterator[Client]:
    """Each test here runs on both clients (the async one driven on a loop thread)."""
    with make_client(real_server.base_url, real_server.api_key, timeout=60) as opened:
        yield opened


def eventually(condition: Callable[[], object]) -> object:
    """Wait until ``condition()`` is truthy (the server records things after the stream ends and
    says so nowhere else); a server that never does is ended by the test's timeout."""
    while not (value := condition()):
        time.sleep(0.1)  # how often to look again, not a guess at how long it takes
    return value


def llm_requests(server: RealServer) -> list[dict]:
    """The chat requests the kit's fake LLM received, oldest first."""
    assert server.dest is not None
    log = server.dest / "run" / "fake-llm-requests.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r["body"] for r in rows if r["path"].endswith("/chat/completions") and r["body"]]


def llm_request_for(server: RealServer, message: str) -> dict:
    found = [r for r in llm_requests(server) if r["messages"][-1]["content"] == message]
    assert found, f"the fake LLM never saw {message!r}"
    return found[-1]


# --- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["chat", "query"])
def test_a_question_about_the_document_cites_it(client: Client, mode: str) -> None:
    reply = client.chat(SEEDED, FACT_QUESTION, mode=mode, session_id=unique("cite"))
    assert reply.complete and not reply.refusal and reply.error is None
    assert reply.text == fake_reply(FACT_QUESTION)
    assert [s.title for s in reply.sources] == [FACT_SHEET]
    assert "Loopback Lane" in reply.sources[0].snippet
    assert reply.chat_id is not None
    assert reply.metrics is not None and reply.metrics.total_tokens


def test_chunks_add_up_to_the_answer(client: Client) -> None:
    stream = client.stream_chat(SEEDED, "Hello there", mode="chat", session_id=unique("chunks"))
    chunks = [e.text for e in stream if isinstance(e, TextResponseChunk)]
    assert len(chunks) > 3
    assert "".join(chunks) == stream.reply.text == fake_reply("Hello there")


def test_metrics_name_the_model_in_new_releases_only(
    client: Client, real_server: RealServer
) -> None:
    metrics = client.chat(SEEDED, "Hello", mode="chat", session_id=unique("metrics")).metrics
    assert metrics is not None
    if real_server.at_least((1, 12)):
        assert (metrics.model, metrics.provider) == ("fake-model", "GenericOpenAiLLM")
    else:  # v1.9.1's metrics have counts and speed only
        assert (metrics.model, metrics.provider) == (None, None)


@pytest.mark.parametrize("slug", [SEEDED, SEEDED_EMPTY])
def test_query_mode_refuses_what_the_documents_do_not_cover(client: Client, slug: str) -> None:
    reply = client.chat(slug, UNRELATED_QUESTION, mode="query", session_id=unique("refuse"))
    assert reply.refusal and reply.complete
    assert reply.text == REFUSAL_TEXT
    assert reply.sources == () and reply.error is None


def test_automatic_mode_answers_once(client: Client) -> None:
    """1.16.0 answers as an agent (its deltas, then the whole text again: shown once); v1.9.1
    rejects the mode, and the client asks again in chat mode."""
    message = "Tell me about the mascot"
    reply = client.chat(SEEDED, message, mode="automatic", session_id=unique("auto"))
    assert reply.complete and reply.error is None
    assert reply.text == fake_reply(message)


@pytest.mark.since(1, 12)
def test_no_mode_uses_the_workspaces_chat_mode(client: Client) -> None:
    reply = client.chat(SEEDED_EMPTY, UNRELATED_QUESTION, session_id=unique("nomode"))
    assert not reply.refusal, "the workspace's chatMode is automatic: no refusal"
    assert reply.text == fake_reply(UNRELATED_QUESTION)


@pytest.mark.before(1, 12)
def test_no_mode_means_query_before_1_12(client: Client) -> None:
    reply = client.chat(SEEDED_EMPTY, UNRELATED_QUESTION, session_id=unique("nomode"))
    assert reply.refusal


def test_think_tags_become_the_reasoning(client: Client) -> None:
    message = "TRIGGER_THINK what is two and two"
    reply = client.chat(SEEDED, message, mode="chat", session_id=unique("think"))
    assert reply.reasoning == "pondering"
    assert reply.answer == fake_reply(message)
    assert reply.text.startswith("<think>pondering</think>")


# --- sessions, threads, history -----------------------------------------------------------------


def test_sessions_are_isolated_and_reset_is_scoped(client: Client, real_server: RealServer) -> None:
    alice, bob = unique("alice"), unique("bob")
    client.chat(SEEDED, "alice one", mode="chat", session_id=alice)
    client.chat(SEEDED, "bob one", mode="chat", session_id=bob)
    assert [m.content for m in client.history(SEEDED, session_id=alice)] == [
        "alice one",
        fake_reply("alice one"),
    ]
    assert client.history(SEEDED, session_id=bob)[0].content == "bob one"

    reset = client.chat(SEEDED, "", session_id=alice, reset=True)
    assert reset.text == RESET_TEXT and not reset.refusal

    client.chat(SEEDED, "alice two", mode="chat", session_id=alice)
    client.chat(SEEDED, "bob two", mode="chat", session_id=bob)
    # What the model was given as the conversation so far: only its own session, and nothing
    # from before the reset.
    prompts = [m["content"] for m in llm_request_for(real_server, "alice two")["messages"][1:]]
    assert prompts == ["alice two"]
    prompts = [m["content"] for m in llm_request_for(real_server, "bob two")["messages"][1:]]
    assert prompts == ["bob one", fake_reply("bob one"), "bob two"]


def test_a_new_thread_streams_and_keeps_its_history(client: Client) -> None:
    name = unique("thread")
    thread = client.new_thread(SEEDED, name)
    assert thread.slug and thread.name == name
    assert name in [t.name for t in client.threads(SEEDED)]
    stream = client.stream_chat(SEEDED, "In a thread", mode="chat", thread=thread.slug)
    assert [e for e in stream if isinstance(e, TextResponseChunk)]
    assert stream.reply.text == fake_reply("In a thread") and stream.reply.thread == thread.slug
    client.chat(SEEDED, "Again in it", mode="chat", thread=thread.slug)
    history = client.history(SEEDED, thread=thread.slug)
    assert [(m.role, m.content) for m in history] == [
        ("user", "In a thread"),
        ("assistant", fake_reply("In a thread")),
        ("user", "Again in it"),
        ("assistant", fake_reply("Again in it")),
    ]


def test_history_is_oldest_first_and_limited(client: Client) -> None:
    session = unique("history")
    for index in range(3):
        client.chat(SEEDED, f"question {index}", mode="chat", session_id=session)
    history = client.history(SEEDED, session_id=session, limit=2)
    assert [m.content for m in history if m.role == "user"] == ["question 1", "question 2"]
    assert history[-1].content == fake_reply("question 2")


# --- documents ----------------------------------------------------------------------------------


def test_vector_search_finds_the_fact_sheet(client: Client) -> None:
    results = client.vector_search(SEEDED, FACT_QUESTION)
    assert results and results[0].title == FACT_SHEET
    assert "Loopback Lane" in results[0].text
    assert 0.25 < results[0].score <= 1


def test_upload_goes_through_the_collector_and_is_embedded(
    client: Client, real_server: RealServer, tmp_path: Path
) -> None:
    slug = real_server.new_workspace("upload")
    path = tmp_path / "greenhouse-notes.txt"
    path.write_text("The greenhouse sensor Zephyr reads humidity every ten minutes.\n")
    documents = client.upload(slug, path)
    assert len(documents) == 1 and documents[0].docpath.startswith("custom-documents/")
    assert documents[0].docpath in [d.docpath for d in client.workspace(slug).documents]
    results = client.vector_search(slug, "greenhouse sensor Zephyr humidity")
    assert results and "Zephyr" in results[0].text
    reply = client.chat(slug, "What does the sensor Zephyr read?", mode="query")
    assert not reply.refusal and reply.sources


# --- errors -------------------------------------------------------------------------------------


def test_a_wrong_key_is_an_authentication_error(
    real_server: RealServer, make_client: Callable[..., Any]
) -> None:
    with make_client(real_server.base_url, "WRONG-KEY-0000000", timeout=30) as wrong:
        assert wrong.auth() is False
        with pytest.raises(AuthenticationError, match="rejected the API key"):
            wrong.chat(SEEDED, "Hello", mode="chat")


def test_an_unknown_workspace_lists_the_real_ones(client: Client) -> None:
    missing = unique("no-such-workspace")
    with pytest.raises(WorkspaceNotFoundError) as raised:
        client.chat(missing, "Hello", mode="chat")
    assert {SEEDED, SEEDED_EMPTY} <= set(raised.value.available)
    with pytest.raises(WorkspaceNotFoundError):
        client.workspace(missing)


def test_an_unknown_thread_is_named(client: Client) -> None:
    missing = unique("no-such-thread")
    with pytest.raises(ThreadNotFoundError, match=missing):
        client.chat(SEEDED, "Hello", mode="chat", thread=missing)


def test_a_thread_of_an_unknown_workspace_names_the_workspace(client: Client) -> None:
    with pytest.raises(WorkspaceNotFoundError):
        client.chat(unique("no-such-workspace"), "Hello", mode="chat", thread="any")


def test_the_history_of_an_unknown_thread_is_named(client: Client) -> None:
    """Before v1.14.1 the route answers a bare 400 for it: the client checks the thread."""
    with pytest.raises(ThreadNotFoundError):
        client.history(SEEDED, thread=unique("no-such-thread"))


def test_the_thread_history_of_an_unknown_workspace_is_named(client: Client) -> None:
    """Before v1.14.1 the route answers a bare 500 for it: the client checks the workspace."""
    with pytest.raises(WorkspaceNotFoundError):
        client.history(unique("no-such-workspace"), thread="any")


def test_an_invalid_mode_is_the_servers_sentence(client: Client) -> None:
    with pytest.raises(ServerError, match="bogus is not a valid mode") as raised:
        client.chat(SEEDED, "Hello", mode="bogus")
    assert raised.value.status == 400


def test_an_upstream_500_aborts_the_answer(client: Client) -> None:
    with pytest.raises(ChatAbortedError, match="fake upstream exploded") as raised:
        client.chat(SEEDED, "TRIGGER_HTTP500 please", mode="chat", session_id=unique("500"))
    assert raised.value.reply is not None and raised.value.reply.text == ""


def test_a_stream_the_server_never_ends_times_out_keeping_the_text(client: Client) -> None:
    stream = client.stream_chat(
        SEEDED,
        "TRIGGER_MIDSTREAM_DROP now",
        mode="chat",
        session_id=unique("drop"),
        timeout=HANG_SECONDS,
    )
    with pytest.raises(StreamTimeoutError, match="No data arrived") as raised:
        for _ in stream:
            pass
    assert raised.value.reply is not None
    assert raised.value.reply.text == "partial " and not raised.value.reply.complete


def test_stopping_a_slow_answer_aborts_it_on_the_server(
    client: Client, real_server: RealServer
) -> None:
    session, message = unique("stop"), "TRIGGER_SLOW take your time"
    log_before = real_server.server_log.read_text(errors="replace").count("[STREAM ABORTED]")
    stream = client.stream_chat(SEEDED, message, mode="chat", session_id=session)
    received = 0
    for event in stream:
        received += isinstance(event, TextResponseChunk) and bool(event.text)
        if received == 3:
            break
    reply = stream.stop()
    assert reply.interrupted and not reply.complete
    full = fake_reply(message)
    assert full.startswith(reply.text) and reply.text != full

    eventually(  # the server logs the abort
        lambda: (
            real_server.server_log.read_text(errors="replace").count("[STREAM ABORTED]")
            > log_before
        )
    )
    saved = eventually(lambda: client.history(SEEDED, session_id=session))  # the partial is saved
    assert isinstance(saved, list)
    assert saved[0].content == message
    assert full.startswith(saved[1].content) and saved[1].content != full
    assert saved[1].content.startswith(reply.text)


def test_break_alone_aborts_the_answer_on_the_server(
    client: Client, real_server: RealServer
) -> None:
    """No close, no stop: leaving the loop is enough for the server to stop generating."""
    log_before = real_server.server_log.read_text(errors="replace").count("[STREAM ABORTED]")
    for event in client.stream_chat(
        SEEDED, "TRIGGER_SLOW take your time", mode="chat", session_id=unique("break")
    ):
        if isinstance(event, TextResponseChunk) and event.text:
            break
    eventually(
        lambda: (
            real_server.server_log.read_text(errors="replace").count("[STREAM ABORTED]")
            > log_before
        )
    )
