"""The Client against the stand-in server over real loopback sockets."""

from __future__ import annotations

import logging
import socket
import traceback
from pathlib import Path

import pytest

from allm_jupyter import (
    AuthenticationError,
    ChatAbortedError,
    Client,
    ConfigurationError,
    ConnectionLostError,
    ServerError,
    ServerUnreachableError,
    StreamTimeoutError,
    ThreadNotFoundError,
    UploadError,
    WorkspaceNotFoundError,
)
from allm_jupyter.events import TextResponseChunk
from allm_jupyter.testing import RESET_TEXT, StandInServer, scenarios


@pytest.fixture
def client(allm_server: StandInServer, make_client):
    with make_client(allm_server.base_url, api_key=allm_server.api_key, timeout=10) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_workspaces_are_the_servers(client: Client, allm_server: StandInServer) -> None:
    assert [w.slug for w in client.workspaces()] == allm_server.slugs


def test_settings_come_from_the_environment(
    make_client, allm_server: StandInServer, monkeypatch
) -> None:
    monkeypatch.setenv("ANYTHING_LLM_BASE_URL", allm_server.base_url + "/api/v1/")
    monkeypatch.setenv("ANYTHING_LLM_API_KEY", allm_server.api_key)
    with make_client() as c:
        assert c.base_url == allm_server.base_url
        assert [w.slug for w in c.workspaces()] == allm_server.slugs


@pytest.mark.parametrize("suffix", ["", "/", "/api", "/api/", "/api/v1", "/api/v1/"])
def test_base_url_forms_users_paste(make_client, allm_server: StandInServer, suffix: str) -> None:
    with make_client(allm_server.base_url + suffix, api_key=allm_server.api_key) as c:
        assert c.auth() is True


def test_sub_path_is_kept() -> None:
    assert Client("https://host.example/anythingllm/api/v1/").base_url == (
        "https://host.example/anythingllm"
    )
    with pytest.raises(ConfigurationError, match=r"'ftp://x' is not an http\(s\) URL"):
        Client("ftp://x")


def test_unknown_workspace_lists_the_available_ones(client: Client, allm_server) -> None:
    with pytest.raises(WorkspaceNotFoundError) as caught:
        client.workspace("no-such-ws")
    assert "no-such-ws" in str(caught.value)
    for slug in allm_server.slugs:
        assert slug in str(caught.value)
    with pytest.raises(WorkspaceNotFoundError, match="no-such-ws"):
        client.chat("no-such-ws", "hello", mode="chat")


def test_bad_and_missing_key_name_where_the_key_came_from(
    make_client, allm_server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_client(allm_server.base_url, api_key="wrong-key") as c:
        assert c.auth() is False
        with pytest.raises(
            AuthenticationError, match="rejected the API key from the api_key argument"
        ):
            c.workspaces()
        with pytest.raises(AuthenticationError):
            c.chat(allm_server.slugs[0], "hello")
    monkeypatch.setenv("ANYTHING_LLM_API_KEY", "wrong-key")
    with (
        make_client(allm_server.base_url) as c,
        pytest.raises(AuthenticationError, match="rejected the API key from ANYTHING_LLM_API_KEY"),
    ):
        c.workspaces()
    with (
        make_client(allm_server.base_url, api_key="") as c,
        pytest.raises(AuthenticationError, match="No API key is set"),
    ):
        c.workspaces()


def test_unreachable_server_names_the_url(make_client) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with make_client(url, api_key="k") as c:
        with pytest.raises(
            ServerUnreachableError, match=f"Cannot reach the AnythingLLM server at {url}"
        ):
            c.workspaces()
        info = c.server_info()
        assert not info.reachable and url in (info.reason or "")


def test_server_info_reads_the_version(client: Client) -> None:
    info = client.server_info()
    assert info.reachable and info.version == "1.16.0"


CONTENT_SCENARIOS = [
    scenarios.normal("A normal answer with sources.", sources=scenarios.SAMPLE_SOURCES),
    scenarios.reasoning("Let me think.", "The answer."),
    scenarios.non_streaming("All at once."),
    scenarios.agent(thoughts=["Looking"], deltas=["Agent ", "answer."], final_text="Agent answer."),
    scenarios.agent_failure(),
    scenarios.trickle("slow and steady wins", delay=0.01),
    scenarios.split_reads(),
    scenarios.line_separator(),
    scenarios.malformed_line(),
    scenarios.malformed_line(line=b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n"),
    scenarios.unknown_event(),
    scenarios.huge(200_000),
]


@pytest.mark.parametrize("scenario", CONTENT_SCENARIOS, ids=lambda s: s.name)
def test_chat_folds_every_scripted_sequence_exactly(client, allm_server, scenario) -> None:
    allm_server.queue(scenario)
    reply = client.chat(allm_server.slugs[0], "question", mode="chat", session_id="s1")
    assert reply.text == scenario.expected_text
    assert reply.complete and reply.error is None and not reply.refusal


def test_sources_survive_the_fold(client, allm_server) -> None:
    allm_server.queue(scenarios.normal("With sources.", sources=scenarios.SAMPLE_SOURCES))
    reply = client.chat(allm_server.slugs[0], "q", mode="chat")
    assert [s.title for s in reply.sources] == [s["title"] for s in scenarios.SAMPLE_SOURCES]
    assert reply.chat_id is not None and reply.metrics is not None


def test_refusal_is_marked(client, allm_server) -> None:
    allm_server.queue(scenarios.refusal())
    reply = client.chat(allm_server.slugs[0], "anything?", mode="query")
    assert reply.refusal and reply.text == scenarios.refusal().expected_text


def test_abort_before_tokens_carries_the_server_message(client, allm_server) -> None:
    allm_server.queue(scenarios.abort_before_tokens("500 fake upstream exploded"))
    with pytest.raises(ChatAbortedError, match="500 fake upstream exploded"):
        client.chat(allm_server.slugs[0], "q", mode="chat")


def test_midstream_abort_keeps_partial_text(client, allm_server) -> None:
    scenario = scenarios.midstream_abort("Half an ", "provider died")
    allm_server.queue(scenario)
    with pytest.raises(ChatAbortedError, match="provider died") as caught:
        client.chat(allm_server.slugs[0], "q", mode="chat")
    assert caught.value.reply is not None
    assert caught.value.reply.text == scenario.expected_text


def test_ollama_error_chunk_fails_with_partial(client, allm_server) -> None:
    scenario = scenarios.ollama_error()
    allm_server.queue(scenario)
    with pytest.raises(ChatAbortedError, match="Ollama") as caught:
        client.chat(allm_server.slugs[0], "q", mode="chat")
    assert caught.value.reply is not None and caught.value.reply.text == scenario.expected_text


def test_stall_is_a_timeout_that_keeps_the_partial_reply(make_client, allm_server) -> None:
    scenario = scenarios.stall("partial ")
    allm_server.queue(scenario)
    with (
        make_client(allm_server.base_url, api_key=allm_server.api_key, timeout=1) as c,
        pytest.raises(
            StreamTimeoutError, match="No data arrived from the server for 1 s"
        ) as caught,
    ):
        c.chat(allm_server.slugs[0], "q", mode="chat")
    assert caught.value.reply is not None and caught.value.reply.text == "partial "
    assert allm_server.streams[-1].disconnected.wait(5)


def test_dropped_connection_keeps_the_partial_reply(client, allm_server) -> None:
    scenario = scenarios.drop("cut off ")
    allm_server.queue(scenario)
    with pytest.raises(ConnectionLostError, match="broke before the answer ended") as caught:
        client.chat(allm_server.slugs[0], "q", mode="chat")
    assert caught.value.reply is not None and caught.value.reply.text == scenario.expected_text


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (
            502,
            "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>",
            "text/html",
            "502 Bad Gateway: 502 Bad Gateway.",
        ),
        (400, "Bad Request", "text/plain; charset=utf-8", "400 Bad Request: Bad Request."),
        (
            500,
            "Internal Server Error",
            "text/plain; charset=utf-8",
            "500 Internal Server Error: Internal Server Error.",
        ),
    ],
)
def test_non_json_error_bodies(
    make_client, allm_server, status, body, content_type, expected
) -> None:
    allm_server.queue(scenarios.http_error(status, body, content_type))
    with (
        make_client(allm_server.base_url, api_key=allm_server.api_key, max_retries=0) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.chat(allm_server.slugs[0], "q", mode="chat")
    assert str(caught.value) == f"The server answered {expected}"


def test_old_server_gets_chat_mode_after_automatic_is_refused(make_client) -> None:
    with (
        StandInServer(legacy_modes=True, speed=0) as server,
        make_client(server.base_url, api_key=server.api_key) as c,
    ):
        reply = c.chat(server.slugs[0], "hello", mode="automatic")
        assert reply.text and reply.complete
        assert [r.json["mode"] for r in server.chat_requests()] == ["automatic", "chat"]


def test_session_and_reset_are_sent(client, allm_server) -> None:
    slug = allm_server.slugs[0]
    client.chat(slug, "first", mode="chat", session_id="nb-1")
    confirmation = client.chat(slug, "", session_id="nb-1", reset=True)
    assert confirmation.text == RESET_TEXT and not confirmation.refusal and confirmation.complete
    sent = [r.json for r in allm_server.chat_requests()]
    assert sent[0] == {"message": "first", "mode": "chat", "sessionId": "nb-1"}
    assert sent[1] == {"message": "", "sessionId": "nb-1", "reset": True}


def test_reset_without_session_is_refused_before_sending(client, allm_server) -> None:
    with pytest.raises(ConfigurationError, match="reset needs a session_id"):
        client.chat(allm_server.slugs[0], "", reset=True)
    assert allm_server.chat_requests() == []


def test_threads_history_and_thread_chat(client, allm_server) -> None:
    slug = allm_server.slugs[0]
    thread = client.new_thread(slug, name="Notebook thread")
    assert thread.name == "Notebook thread"
    assert thread.slug in [t.slug for t in client.threads(slug)]
    reply = client.chat(slug, "Thread question", mode="chat", thread=thread.slug)
    assert reply.thread == thread.slug and reply.complete
    history = client.history(slug, thread=thread.slug)
    assert [(m.role, m.content) for m in history] == [
        ("user", "Thread question"),
        ("assistant", reply.text),
    ]
    with pytest.raises(ThreadNotFoundError, match="no-such-thread"):
        client.chat(slug, "q", mode="chat", thread="no-such-thread")


def test_history_of_a_session_is_oldest_first(client, allm_server) -> None:
    slug = allm_server.slugs[0]
    for question in ("one", "two", "three"):
        client.chat(slug, question, mode="chat", session_id="hist")
    history = client.history(slug, session_id="hist", limit=2)
    assert [m.content for m in history if m.role == "user"] == ["two", "three"]
    assert allm_server.requests[-1].query.get("orderBy") == "desc"


def test_vector_search(client, allm_server) -> None:
    slug = allm_server.slugs[0]
    results = client.vector_search(slug, "onboarding", top_n=2)
    assert 0 < len(results) <= 2
    assert all("<document_metadata>" not in r.text for r in results)


def test_upload_embeds_and_checks(client, allm_server, tmp_path: Path) -> None:
    slug = allm_server.slugs[0]
    path = tmp_path / "notes.txt"
    path.write_text("The quarterly review happens every March in Lisbon.\n")
    documents = client.upload(slug, path)
    assert len(documents) == 1
    assert documents[0].docpath in [d.docpath for d in client.workspace(slug).documents]


def test_break_hangs_up_and_the_server_sees_it(client, allm_server) -> None:
    allm_server.queue(scenarios.stall("first "))
    stream = client.stream_chat(allm_server.slugs[0], "q", mode="chat")
    for event in stream:
        assert isinstance(event, TextResponseChunk)
        break
    stream.close()
    assert allm_server.streams[-1].disconnected.wait(5)
    assert stream.reply.text == "first "


def test_the_key_is_nowhere(make_client, allm_server: StandInServer, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    allm_server.queue(scenarios.stall("x "))
    with make_client(allm_server.base_url, api_key=allm_server.api_key, timeout=0.5) as c:
        with pytest.raises(StreamTimeoutError) as caught:
            c.chat(allm_server.slugs[0], "q", mode="chat")
        c.chat(allm_server.slugs[0], "q", mode="chat")
        shown = "".join(
            [
                repr(c),
                str(vars(c)),
                repr(c._http.headers),
                repr(caught.value),
                repr(caught.value.reply),
                "".join(traceback.format_exception(caught.value)),
            ]
        )
    assert allm_server.api_key not in shown
    assert allm_server.api_key not in caplog.text


def test_upload_parse_failure_is_an_upload_error(client, allm_server, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(UploadError, match=r"^The server could not read empty\.txt: "):
        client.upload(allm_server.slugs[0], empty)
    with pytest.raises(UploadError, match="There is no file at"):
        client.upload(allm_server.slugs[0], tmp_path / "missing.txt")


def test_a_malformed_key_is_refused_without_showing_it(
    make_client, allm_server: StandInServer
) -> None:
    with (
        make_client(allm_server.base_url, api_key="good-part\nsecret-tail") as c,
        pytest.raises(ConfigurationError, match="contains spaces or control characters") as caught,
    ):
        c.workspaces()
    shown = str(caught.value) + "".join(traceback.format_exception(caught.value))
    assert "secret-tail" not in shown


def test_bad_urls_and_url_passwords(make_client, allm_server: StandInServer) -> None:
    with pytest.raises(ConfigurationError, match=r"is not an http\(s\) URL"):
        make_client("http://[::1:3001")
    with pytest.raises(ConfigurationError, match=r"is not an http\(s\) URL"):
        make_client("http://localhost:99999")
    host = allm_server.base_url.partition("://")[2]
    with make_client(f"http://ada:hunter2@{host}", api_key=allm_server.api_key) as c:
        assert c.base_url == f"http://ada:***@{host}"
        assert [w.slug for w in c.workspaces()] == allm_server.slugs
        assert "hunter2" not in repr(c) + repr(c.config) + str(c.server_info())


def test_a_timeout_for_one_answer_only(client: Client, allm_server: StandInServer) -> None:
    allm_server.queue(scenarios.stall("slow "))
    with pytest.raises(StreamTimeoutError, match=r"for 0\.5 s") as caught:
        client.chat(allm_server.slugs[0], "q", mode="chat", timeout=0.5)
    assert caught.value.reply is not None and caught.value.reply.text == "slow "
    assert client.timeout == 10
    assert client.chat(allm_server.slugs[0], "q", mode="chat").complete


def test_old_servers_bare_thread_errors_are_named(make_client) -> None:
    """Before v1.14.1 thread history answers a bare 400 (unknown thread) or 500 (workspace)."""
    with (
        StandInServer(legacy_modes=True, speed=0) as old,
        make_client(old.base_url, api_key=old.api_key) as client,
    ):
        with pytest.raises(ThreadNotFoundError):
            client.history(old.slugs[0], thread="no-such-thread")
        with pytest.raises(WorkspaceNotFoundError):
            client.history("no-such-workspace", thread="any")
