"""The protocol core with plain data: no socket, no loop, no clock.

Operations are generators: these tests play the server by sending them dicts, and check the calls
they ask for and the results or errors they end in. Mapping, diagnosis, retry timing, the caps and
the config's validation are pure functions, tested with generated inputs.
"""

from __future__ import annotations

import itertools
import math
import pickle
from collections.abc import Generator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from allm_jupyter import _protocol as core
from allm_jupyter import errors
from allm_jupyter._sse import EventDecoder, LineTooLong
from allm_jupyter.config import ClientConfig
from allm_jupyter.errors import (
    AllmError,
    AuthenticationError,
    ConfigurationError,
    ServerError,
    ThreadNotFoundError,
    WorkspaceNotFoundError,
)
from allm_jupyter.models import Thread, Workspace
from allm_jupyter.reply import ReplyBuilder, fold
from allm_jupyter.secret import Secret
from allm_jupyter.testing.scenarios import sse_bytes

KEY = "standin-0123456789abcdef"
CONFIG = ClientConfig.create("http://127.0.0.1:1", KEY, 30)

texts = st.text(max_size=80)
slugs = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)


def answer(status: int, body: str = "", content_type: str = "application/json") -> core.Answer:
    return core.Answer(status, "Reason", content_type, body)


def play(op: Generator[core.Call, Any, Any], *replies: Any) -> tuple[list[core.Call], Any]:
    """Drive ``op`` as a shell would, answering its calls in turn (an exception is thrown in)."""
    calls = [next(op)]
    try:
        for reply in replies:
            if isinstance(reply, BaseException):
                calls.append(op.throw(reply))
            else:
                calls.append(op.send(reply))
    except StopIteration as stop:
        return calls, stop.value
    raise AssertionError(f"the operation wants more: {calls[-1]}")


# -- operations ------------------------------------------------------------------------------


@given(slug=slugs, others=st.lists(slugs, max_size=5))
def test_a_missing_workspace_lists_the_others(slug: str, others: list[str]) -> None:
    others = [o for o in others if o != slug]
    op = core.workspace(slug)
    assert next(op).path == f"/v1/workspace/{core.segment(slug)}"
    listing = op.send({"workspace": []})
    assert listing.path == "/v1/workspaces"
    with pytest.raises(WorkspaceNotFoundError) as caught:
        op.send({"workspaces": [{"slug": o, "name": o} for o in others]})
    assert caught.value.slug == slug and caught.value.available == others


def test_a_failed_listing_leaves_the_error_without_the_list() -> None:
    op = core.workspace("gone")
    next(op)
    op.send({"workspace": None})
    with pytest.raises(WorkspaceNotFoundError) as caught:
        op.throw(ServerError("The server answered 500."))
    assert caught.value.available == []


def test_auth_is_false_on_a_rejected_key_and_raises_otherwise() -> None:
    rejected = AuthenticationError(key_set=True, base_url="u", key_origin="k")
    assert play(core.auth(), rejected)[1] is False
    assert play(core.auth(), {"authenticated": True})[1] is True
    with pytest.raises(ServerError):
        play(core.auth(), ServerError("down"))


@given(limit=st.integers(1, 5), count=st.integers(0, 8))
def test_session_history_comes_oldest_first(limit: int, count: int) -> None:
    rows = []
    for n in reversed(range(count)):  # the server sends the newest first
        rows += [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}]
    calls, messages = play(core.history("ws", "s1", None, limit), {"history": rows})
    assert calls[0].params == {"limit": limit, "orderBy": "desc", "apiSessionId": "s1"}
    assert [m.content for m in messages] == [x for n in range(count) for x in (f"q{n}", f"a{n}")]


def test_a_document_not_in_the_workspace_after_upload_is_an_error() -> None:
    op = core.upload_text(CONFIG, "ws", "text", "notes", None)
    assert next(op).path == "/v1/workspace/ws"
    stored = op.send({"workspace": {"slug": "ws", "documents": []}})
    assert stored.json["textContent"] == "text" and stored.timeout is not None
    assert op.send({"success": True, "documents": [{"location": "custom/x.json"}]}).path == (
        "/v1/workspace/ws"
    )
    with pytest.raises(errors.UploadError, match="uploaded but not embedded"):
        op.send({"workspace": {"slug": "ws", "documents": []}})


@given(message=texts, mode=st.sampled_from([None, "chat", "query", "automatic"]))
def test_chat_calls_carry_what_was_asked(message: str, mode: str | None) -> None:
    if not message.strip():
        with pytest.raises(ConfigurationError, match="question is empty"):
            core.chat_call(
                CONFIG,
                "ws",
                message,
                mode=mode,
                session_id=None,
                thread=None,
                reset=False,
                attachments=None,
                timeout=None,
            )
        return
    call, turn = core.chat_call(
        CONFIG,
        "ws",
        message,
        mode=mode,
        session_id="s",
        thread="t",
        reset=False,
        attachments=None,
        timeout=None,
    )
    assert call.path == "/v1/workspace/ws/thread/t/stream-chat" and call.repeatable
    assert call.json == {"message": message, "sessionId": "s"} | ({"mode": mode} if mode else {})
    assert turn.builder.thread == "t" and call.timeout == CONFIG.timeout


# -- mapping and diagnosis ----------------------------------------------------------------------


@given(
    status=st.integers(400, 599),
    body=texts,
    kind=st.sampled_from(["application/json", "text/html", "text/plain"]),
)
def test_every_error_answer_maps_to_one_sentence(status: int, body: str, kind: str) -> None:
    diagnosis = core.failure(
        core.Call("GET", "/v1/x", workspace="ws"), answer(status, body, kind), CONFIG
    )
    assert isinstance(diagnosis.error, AllmError)
    assert diagnosis.error.message.strip() and "\n" not in diagnosis.error.message
    if status == 403:
        assert isinstance(diagnosis.error, AuthenticationError) and diagnosis.workspace is None


def test_named_missing_workspace_and_thread() -> None:
    call = core.Call("GET", "/x", workspace="ws", thread="t1")
    missing_thread = core.failure(call, answer(400, '{"error": "Thread t1 not found"}'), CONFIG)
    assert (
        isinstance(missing_thread.error, ThreadNotFoundError) and missing_thread.workspace is None
    )
    missing_workspace = core.failure(
        call, answer(400, '{"error": "Workspace ws not found"}'), CONFIG
    )
    assert isinstance(missing_workspace.error, WorkspaceNotFoundError)
    assert missing_workspace.workspace == "ws"
    bare = core.failure(call, answer(400, "Bad Request", "text/plain"), CONFIG)
    assert isinstance(bare.error, ServerError) and (bare.workspace, bare.thread) == ("ws", "t1")


@given(slug=slugs, listed=st.lists(slugs, max_size=5, unique=True), thread=st.none() | slugs)
def test_diagnosis_only_sharpens_the_error(
    slug: str, listed: list[str], thread: str | None
) -> None:
    original = ServerError("The server answered 400 Bad Request: Bad Request.", status=400)
    rows = [Workspace(slug=s, name=s, threads=(Thread(slug="kept"),)) for s in listed]
    found = core.diagnose(core.Diagnosis(original, workspace=slug, thread=thread), rows)
    if slug not in listed:
        assert isinstance(found, WorkspaceNotFoundError) and found.available == listed
    elif thread and thread != "kept":
        assert isinstance(found, ThreadNotFoundError) and found.thread == thread
    else:
        assert found is original
    assert core.diagnose(core.Diagnosis(original), rows) is original


@given(prefix=texts, suffix=texts)
def test_the_key_is_masked_in_server_text(prefix: str, suffix: str) -> None:
    shown = core.masked(prefix + KEY + suffix, Secret(KEY))
    assert KEY not in shown


# -- retries ----------------------------------------------------------------------------------


@given(attempt=st.integers(1, 50))
def test_backoff_doubles_with_jitter_and_is_bounded(attempt: int) -> None:
    delay = core.retry_delay(attempt, None)
    assert delay is not None
    base = min(core.INITIAL_RETRY_DELAY * 2 ** (attempt - 1), core.MAX_RETRY_DELAY)
    assert 0.75 * base <= delay <= base <= core.MAX_RETRY_DELAY


@given(seconds=st.floats(0, 1e6, allow_nan=False))
def test_retry_after_is_honoured_up_to_a_minute(seconds: float) -> None:
    delay = core.retry_delay(1, repr(seconds))
    assert delay == (seconds if seconds <= core.MAX_RETRY_AFTER else None)


def test_retry_after_as_an_http_date() -> None:
    delay = core.retry_delay(1, "Thu, 01 Jan 1970 00:00:10 GMT", now=4.0)
    assert delay is not None and math.isclose(delay, 6.0)


@pytest.mark.parametrize(
    ("method", "status", "retried"),
    [
        ("GET", 503, True),
        ("GET", 502, True),
        ("POST", 429, True),
        ("POST", 503, True),
        ("POST", 502, False),
        ("POST", 504, False),
        ("GET", 500, False),
        ("GET", 404, False),
    ],
)
def test_which_answers_are_sent_again(method: str, status: int, retried: bool) -> None:
    call = core.Call(method, "/v1/workspace/ws/thread/new")
    response = httpx.Response(status, headers={"Retry-After": "0"})
    assert (core.retry_wait(call, 1, CONFIG, response=response) is not None) == retried
    assert core.retry_wait(call, CONFIG.max_retries + 1, CONFIG, response=response) is None


def test_the_backoff_is_shared_by_the_clients_requests() -> None:
    now = [100.0]
    backoff = core.Backoff(clock=lambda: now[0])
    backoff.pause(5)
    backoff.pause(2)  # a shorter pause does not cut a longer one
    now[0] = 101.0
    assert backoff.remaining() == 4.0


# -- caps and the stream --------------------------------------------------------------------------


@given(
    cap=st.integers(1, 64),
    line=st.binary(min_size=1, max_size=200).filter(lambda b: b"\n" not in b and b"\r" not in b),
)
def test_a_line_longer_than_the_cap_raises(cap: int, line: bytes) -> None:
    decoder = EventDecoder(cap)
    if len(line) > cap:
        with pytest.raises(LineTooLong):
            decoder.feed(line)
    else:
        assert decoder.feed(line) == []


@given(cap=st.integers(1, 100), reads=st.lists(st.binary(max_size=40), max_size=10))
def test_a_body_longer_than_the_cap_raises(cap: int, reads: list[bytes]) -> None:
    config = ClientConfig.create("http://h", KEY, max_body_bytes=cap)
    reader = core.BodyReader(config, None)
    if sum(map(len, reads)) > cap:
        with pytest.raises(ServerError, match=f"longer than max_body_bytes \\({cap:,} bytes\\)"):
            for read in reads:
                reader.add(read)
    else:
        for read in reads:
            reader.add(read)
        assert reader.body() == b"".join(reads)


@given(
    words=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
)
def test_a_turn_folds_any_cut_of_its_bytes(words: list[str], cuts: list[int]) -> None:
    chunks = [{"type": "textResponseChunk", "uuid": "u", "textResponse": w} for w in words]
    data = b"".join(
        sse_bytes(e)
        for e in [*chunks, {"type": "finalizeResponseStream", "uuid": "u", "chatId": 1}]
    )
    turn = core.ChatTurn(ReplyBuilder(), CONFIG, 30.0)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    got = [e for a, b in itertools.pairwise(points) for e in turn.feed(data[a:b])]
    assert turn.finished and turn.end().text == "".join(words)
    assert fold(got).text == "".join(words)


# -- config and errors --------------------------------------------------------------------------


@given(
    timeout=st.one_of(
        st.none(), st.booleans(), st.text(max_size=5), st.floats(), st.integers(-5, 5)
    )
)
def test_a_bad_timeout_names_the_argument(timeout: Any) -> None:
    valid = (
        isinstance(timeout, int | float)
        and not isinstance(timeout, bool)
        and math.isfinite(timeout)
        and timeout > 0
    )
    if valid:
        assert ClientConfig.create("http://h", timeout=timeout).timeout == float(timeout)
    else:
        with pytest.raises(ConfigurationError, match=r"^timeout must be a positive number"):
            ClientConfig.create("http://h", timeout=timeout)


def test_an_httpx_timeout_is_kept_and_other_arguments_are_checked() -> None:
    limits = httpx.Timeout(5, read=60)
    assert ClientConfig.create("http://h", timeout=limits).timeout is limits
    with pytest.raises(ConfigurationError, match=r"^max_retries must be"):
        ClientConfig.create("http://h", max_retries=-1)
    with pytest.raises(ConfigurationError, match=r"^max_line_bytes must be"):
        ClientConfig.create("http://h", max_line_bytes=0)
    with pytest.raises(ConfigurationError, match="headers must not set Authorization"):
        ClientConfig.create("http://h", headers={"Authorization": "Bearer x"})


def error_instances(message: str) -> list[AllmError]:
    """One of every error class, with generated text where they take text."""
    return [
        AllmError(message),
        ConfigurationError(message),
        AuthenticationError(key_set=True, base_url=message, key_origin="the api_key argument"),
        errors.ServerUnreachableError(message, "connection refused", url_origin="base_url"),
        WorkspaceNotFoundError(message, ["a", "b"]),
        ThreadNotFoundError("ws", message),
        ServerError(message, status=502, detail=message, reply=fold([])),
        errors.ChatAbortedError(message, reply=fold([])),
        errors.StreamTimeoutError(message),
        errors.ConnectionLostError(message),
        errors.UploadError(message),
        errors.AttachmentError(message),
        errors.DocumentNotFoundError(message),
    ]


def test_every_error_class_is_covered() -> None:
    classes = {type(e) for e in error_instances("x")}
    family = {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, AllmError)}
    assert family == classes


@given(message=texts)
def test_errors_pickle_with_class_message_and_fields(message: str) -> None:
    for error in error_instances(message):
        error.one_line = True
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert (copy.message, str(copy), copy.args) == (error.message, str(error), error.args)
        assert vars(copy) == vars(error)


@given(password=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=30))
def test_a_configs_repr_shows_no_secret(password: str) -> None:
    config = ClientConfig.create(
        f"http://ada:{password}@host:1",
        KEY + password,
        headers={"Proxy-Authorization": "Basic " + password},
    )
    shown = repr(config)
    assert password not in shown and KEY not in shown
    assert "Proxy-Authorization" in shown and "ada:***@host" in shown
