"""What a hostile server or a careless proxy sends: the key stays hidden, every failure is one
AllmError sentence, and a finished answer is never lost. Over real loopback sockets: the stand-in
where it can produce the case, else the raw-bytes server of ``hostile.py``."""

from __future__ import annotations

import json
import logging
import subprocess
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostile import HostileServer, canned, http_response

from allm_jupyter import (
    ChatAbortedError,
    Client,
    ConfigurationError,
    ServerError,
    ServerUnreachableError,
)
from allm_jupyter.client import PlainHttpWarning
from allm_jupyter.testing import StandInServer, scenarios

KEY = "hostile-test-key-0123456789abcdef"
DEEP = b"[" * 100_000 + b"]" * 100_000
METRICS = canned(http_response(200, b'{"online":true,"appVersion":"1.16.0"}'))


@pytest.fixture
def client(allm_server: StandInServer, make_client: Any) -> Iterator[Client]:
    with make_client(allm_server.base_url, api_key=allm_server.api_key, timeout=10) as c:
        yield c


def assert_hidden(key: str, *texts: str) -> None:
    """Fails without printing the texts: they would hold the key. Checked before any other assert
    on the same texts, which would print them."""
    leaked = any(key in text for text in texts)
    assert not leaked, "the API key is shown"


def everything_shown(error: BaseException) -> str:
    """What a user, a log or a saved notebook could get to see of an error."""
    reply = getattr(error, "reply", None)
    return "".join(
        [
            str(error),
            repr(error),
            repr(vars(error)),
            "".join(traceback.format_exception(error)),
            repr(reply),
            str(reply.error if reply else ""),
        ]
    )


# -- 1. the key, quoted back by the server -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"error":"proxy rejected Authorization: Bearer %s"}', "application/json"),
        ("upstream said: invalid header Authorization=Bearer %s", "text/plain"),
        ("<html><title>401 for key %s</title></html>", "text/html"),
    ],
)
def test_a_key_quoted_in_an_error_body_is_masked(
    client: Client, allm_server: StandInServer, caplog, body: str, content_type: str
) -> None:
    caplog.set_level(logging.DEBUG)
    key = allm_server.api_key
    allm_server.queue(scenarios.http_error(500, body % key, content_type))
    with pytest.raises(ServerError) as caught:
        client.chat(allm_server.slugs[0], "q", mode="chat")
    assert_hidden(key, everything_shown(caught.value), str(caught.value.detail), caplog.text)
    assert "********" in str(caught.value)


def test_a_key_in_stream_events_is_masked(client: Client, allm_server: StandInServer) -> None:
    key = allm_server.api_key
    allm_server.queue(
        scenarios.normal(f"Your header was Bearer {key}.", sources=[scenarios.source(key, key)])
    )
    reply = client.chat(allm_server.slugs[0], "q", mode="chat")
    assert_hidden(key, repr(reply), repr(reply.sources[0].raw))
    assert reply.text == "Your header was Bearer ********."
    allm_server.queue(scenarios.abort_before_tokens(f"401 from provider for key {key}"))
    with pytest.raises(ChatAbortedError) as caught:
        client.chat(allm_server.slugs[0], "q", mode="chat")
    assert_hidden(key, everything_shown(caught.value))
    assert caught.value.reply is not None and "key ********" in str(caught.value.reply.error)


def test_a_key_in_workspace_names_and_history_is_masked(
    client: Client, allm_server: StandInServer
) -> None:
    key = allm_server.api_key
    created = httpx.post(
        f"{allm_server.base_url}/api/v1/workspace/new",
        json={"name": f"Keys {key}"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert created.status_code == 200
    slug = created.json()["workspace"]["slug"]
    found = client.workspaces()
    assert_hidden(key, repr(found), repr([w.raw for w in found]))
    assert "Keys ********" in [w.name for w in found]
    client.chat(slug, f"is {key} my key?", mode="chat", session_id="masked")
    history = client.history(slug, session_id="masked")
    assert_hidden(key, repr(history))
    assert [m.content for m in history if m.role == "user"] == ["is ******** my key?"]


def test_a_key_in_the_status_line_is_masked(make_client) -> None:
    response = http_response(502, b"", "text/plain", reason=f"Bad Bearer {KEY}")
    with (
        HostileServer({"/api/v1/workspaces": canned(response)}) as server,
        make_client(server.base_url, api_key=KEY) as c,
        pytest.raises(ServerError) as caught,
    ):
        c.workspaces()
    assert_hidden(KEY, everything_shown(caught.value))
    assert str(caught.value) == "The server answered 502 Bad Bearer ********: Bad Bearer ********."


# -- 2. pathological JSON --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (DEEP, "JSON nested too deeply to read"),
        (b'{"workspaces":[{"slug":"a","id":' + b"9" * 5000 + b"}]}", "a number too long to read"),
        (b"<html>a login page</html>", "something that is not JSON"),
    ],
)
def test_a_body_that_cannot_be_read_is_one_sentence(make_client, body: bytes, problem: str) -> None:
    with (
        HostileServer({"/api/v1/workspaces": canned(http_response(200, body))}) as server,
        make_client(server.base_url, api_key=KEY) as c,
        pytest.raises(ServerError) as caught,
    ):
        c.workspaces()
    assert str(caught.value) == (
        f"The server at {server.base_url} answered GET /v1/workspaces with {problem}."
    )


def test_a_deep_error_body_is_an_error_like_any_other(make_client) -> None:
    response = http_response(500, DEEP, reason="Internal Server Error")
    with (
        HostileServer({"/api/v1/workspaces": canned(response)}) as server,
        make_client(server.base_url, api_key=KEY) as c,
        pytest.raises(ServerError, match=r"^The server answered 500 Internal Server Error: \[\[\["),
    ):
        c.workspaces()


def test_bytes_that_are_not_utf8_and_bad_metadata_still_list(make_client) -> None:
    metadata = json.dumps("[" * 5000 + "]" * 5000)  # a metadata *string* nested too deeply
    workspace = b'{"workspace":[{"slug":"ws","name":"Caf\xe9","documents":[{"docpath":"d.json",'
    workspace += b'"filename":"d.json","metadata":' + metadata.encode() + b"}]}]}"
    routes = {
        "/api/v1/workspaces": canned(http_response(200, b'{"workspaces":[{"slug":"\xff"}]}')),
        "/api/v1/workspace/ws": canned(http_response(200, workspace)),
    }
    with HostileServer(routes) as server, make_client(server.base_url, api_key=KEY) as c:
        assert [w.slug for w in c.workspaces()] == ["\ufffd"]
        found = c.workspace("ws")
    assert found.name == "Caf\ufffd"
    assert [(d.docpath, d.title) for d in found.documents] == [("d.json", None)]


# -- 4. finalize, then the body stays open ---------------------------------------------------------


def test_the_turn_ends_at_finalize_even_if_the_body_stays_open(
    make_client, allm_server: StandInServer
) -> None:
    answer = scenarios.normal("Complete, then silence.", sources=scenarios.SAMPLE_SOURCES)
    allm_server.queue(replace(answer, stream=(*answer.stream, scenarios.Stall())))
    # A short idle timeout: without the fix the answer ends as a StreamTimeoutError after it.
    with make_client(allm_server.base_url, api_key=allm_server.api_key, timeout=3) as c:
        reply = c.chat(allm_server.slugs[0], "q", mode="chat")
    assert reply.complete and reply.error is None and reply.text == answer.expected_text
    assert len(reply.sources) == len(scenarios.SAMPLE_SOURCES)
    assert allm_server.streams[-1].disconnected.wait(10)  # and we hung up


# -- 5. framing variants ---------------------------------------------------------------------------


def test_a_byte_order_mark_does_not_cost_the_first_event(
    client: Client, allm_server: StandInServer
) -> None:
    answer = scenarios.normal("First word survives.")
    allm_server.queue(replace(answer, stream=(scenarios.SendRaw(b"\xef\xbb\xbf"), *answer.stream)))
    assert client.chat(allm_server.slugs[0], "q", mode="chat").text == answer.expected_text


def test_the_content_type_is_compared_case_insensitively(
    client: Client, allm_server: StandInServer
) -> None:
    events = scenarios.sse_bytes(
        {"uuid": "t1", "type": "textResponseChunk", "textResponse": "Hi.", "close": False}
    ) + scenarios.sse_bytes({"uuid": "t1", "type": "finalizeResponseStream", "close": True})
    respond = scenarios.Respond(200, events, "Text/Event-Stream; Charset=UTF-8")
    allm_server.queue(scenarios.Scenario("mixed_case", (respond,), (respond,)))
    reply = client.chat(allm_server.slugs[0], "q", mode="chat")
    assert reply.text == "Hi." and reply.complete


# -- 10. transport -----------------------------------------------------------------------------------


def test_a_redirect_is_not_followed_and_says_where_it_points(make_client) -> None:
    location = f"https://ada:hunter2@allm.example/api/v1/workspaces?token={KEY}#x"
    response = http_response(
        301, b"", "text/plain", reason="Moved Permanently", headers=[("Location", location)]
    )
    with (
        HostileServer({"/api/v1/workspaces": canned(response)}) as server,
        make_client(server.base_url, api_key=KEY) as c,
        pytest.raises(ConfigurationError) as caught,
    ):
        c.workspaces()
    assert str(caught.value) == (
        f"The server at {server.base_url} redirects to https://allm.example/api/v1/workspaces; "
        "set the base_url argument to https://allm.example (redirects are not followed, so the "
        "API key goes nowhere else)."
    )
    assert len(server.requests) == 1  # nothing was sent to the target
    assert_hidden("hunter2", everything_shown(caught.value))
    assert_hidden(KEY, everything_shown(caught.value))


def test_a_redirected_stream_names_the_target(make_client) -> None:
    route = "/sub/api/v1/workspace/ws/stream-chat"
    response = http_response(
        307,
        b"",
        reason="Temporary Redirect",
        headers=[("Location", "/other/api/v1/workspace/ws/stream-chat")],
    )
    with (
        HostileServer({route: canned(response)}) as server,
        make_client(server.base_url + "/sub", api_key=KEY) as c,
        pytest.raises(
            ConfigurationError, match=f"set the base_url argument to {server.base_url}/other "
        ),
    ):
        c.chat("ws", "q", mode="chat")


def test_plain_http_to_another_host_warns_once(make_client, allm_server: StandInServer) -> None:
    port = allm_server.base_url.rsplit(":", 1)[1]
    # 0.0.0.0 is no loopback name, yet Linux connects it to this machine: a real request.
    with (
        make_client(f"http://0.0.0.0:{port}", api_key=allm_server.api_key) as c,
        pytest.warns(PlainHttpWarning, match=r"goes to 0\.0\.0\.0 over plain http") as caught,
    ):
        c.workspaces()
        c.workspaces()
    assert len(caught) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_plain_http_to_this_machine_does_not_warn(
    make_client, allm_server: StandInServer, host: str
) -> None:
    port = allm_server.base_url.rsplit(":", 1)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlainHttpWarning)
        with make_client(f"http://{host}:{port}", api_key=allm_server.api_key) as c:
            c.workspaces()


@pytest.fixture(scope="module")
def corporate_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A private CA and a certificate it signed for 127.0.0.1: (ca.pem, server.pem, server.key)."""
    folder = tmp_path_factory.mktemp("ca")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        try:
            subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)
        except FileNotFoundError:
            pytest.skip("the openssl command is missing")

    openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=allm-jupyter test CA",
    )
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


@pytest.fixture
def tls_server(corporate_ca: tuple[Path, Path, Path]) -> Iterator[HostileServer]:
    import ssl

    _, cert, key = corporate_ca
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    body = b'{"workspaces":[{"slug":"tls","name":"Over TLS"}]}'
    with HostileServer({"/api/v1/workspaces": canned(http_response(200, body))}, tls=context) as s:
        yield s


def test_tls_is_verified(
    make_client, tls_server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with (
        make_client(tls_server.base_url, api_key=KEY) as c,
        pytest.raises(
            ServerUnreachableError, match=r"TLS certificate is not trusted; .*SSL_CERT_FILE"
        ),
    ):
        c.workspaces()


def test_a_corporate_ca_from_ssl_cert_file_or_the_argument(
    make_client, tls_server: HostileServer, corporate_ca: tuple[Path, Path, Path], monkeypatch
) -> None:
    ca = corporate_ca[0]
    with make_client(tls_server.base_url, api_key=KEY, ca_bundle=ca) as c:
        assert [w.slug for w in c.workspaces()] == ["tls"]
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    with make_client(tls_server.base_url, api_key=KEY) as c:
        assert [w.slug for w in c.workspaces()] == ["tls"]
    assert all(r.headers.get("authorization") == f"Bearer {KEY}" for r in tls_server.requests)


def test_an_error_body_is_read_whatever_the_case_of_its_content_type(
    client: Client, allm_server: StandInServer
) -> None:
    body = '{"error":"The model is not loaded."}'
    allm_server.queue(scenarios.http_error(500, body, "Application/JSON; Charset=UTF-8"))
    with pytest.raises(ServerError, match=r": The model is not loaded\.$"):
        client.chat(allm_server.slugs[0], "q", mode="chat")
