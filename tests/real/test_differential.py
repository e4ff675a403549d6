"""The stand-in kept honest: the same requests to the stand-in and to the real AnythingLLM 1.16.0,
and the framing of their answers compared.

Framing is what a client relies on: the status, the headers (names in order; values where they
are not per-response), the SSE event sequence (each event's ``type``, keys in order, the keys of
nested objects, and the values of ``type``/``close``/``error``/``message``), and the structure of
JSON bodies. Texts and ids are not compared: the stand-in's LLM quotes its sources, the kit's fake
echoes. A run of identical events (the chunks of an answer) counts as one.

Both servers get the same state first, through their own API: a workspace with one uploaded
document, an empty one, and a thread. Where only the kit's fake LLM can produce a case (an upstream
500, a stream it never ends, ``<think>`` tags), the stand-in is given the matching scenario, which
checks the scenario builders against the real thing. Where the two differ, the real server wins.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from allm_jupyter import AllmError, Reply
from allm_jupyter.testing import StandInServer, scenarios
from allm_jupyter.testing.scenarios import Scenario

from .servers import FACT_QUESTION, UNRELATED_QUESTION, RealServer, unique

FACT_SHEET = (
    "The Wire Test facility is located on Loopback Lane. Its mascot is a blue heron named Packet. "
    "Opening hours are nine to five on weekdays. The cafeteria serves soup every Tuesday.\n"
)
HEADER_VALUES = {
    "x-powered-by",
    "vary",
    "cache-control",
    "content-type",
    "access-control-allow-origin",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-security-policy",
    "x-content-type-options",
}
"""Headers whose values are compared; the others (Date, ETag, Content-Length) by name only."""
VALUE_KEYS = {"type", "close", "error", "message", "success", "online", "authenticated"}
"""Keys whose values are framing (a client branches on them), not content."""
STALL_SECONDS = 10.0
"""How long a stream that never ends is read before the comparison (the read times out): well
above the real server's pause before its first chunk, however loaded the machine."""


@dataclass
class Target:
    """One server and the state the probes name: ``{doc}``, ``{nodoc}``, ``{thread}``."""

    name: str
    base_url: str
    api_key: str = field(repr=False)
    names: dict[str, str] = field(default_factory=dict)
    queue: Callable[[Scenario], None] | None = None
    """The stand-in's: plays a scenario where the real server's fake LLM reacts to a trigger."""

    def http(self, key: str | None = "valid", timeout: float = 60) -> httpx.Client:
        headers = {}
        if key is not None:
            headers["Authorization"] = "Bearer " + (self.api_key if key == "valid" else key)
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)


@dataclass(frozen=True)
class Probe:
    """One request, sent the same way to both servers."""

    name: str
    method: str
    path: str
    body: Any = None
    key: str | None = "valid"
    content: bytes | None = None
    """A raw body (with ``content_type``), instead of ``body`` as JSON."""
    content_type: str = "application/json"
    standin: Scenario | None = None
    stalls: bool = False
    """The response never ends: compare what arrived within ``STALL_SECONDS``."""
    select: Callable[[Any, Target], Any] | None = None
    """Picks the part of a JSON body that is about this test's state (lists hold others too)."""
    loose: frozenset[str] = frozenset()
    """Keys whose value types may differ (see ``KNOWN_VALUE_DIFFERENCES``)."""
    setup: tuple[Probe, ...] = ()
    """Sent first, not compared: what the probe reads back."""
    files: dict[str, tuple[str, bytes, str]] | None = None
    """A multipart body."""


KNOWN_VALUE_DIFFERENCES = {
    "appVersion": "the kit's server runs outside Docker, so it reports null; a Docker install (which "
    "the stand-in plays) reports its version",
    "outputTps": "tokens / duration: the kit's fake LLM can answer within a millisecond, and the "
    "resulting Infinity is sent as null",
}
ALWAYS_LOOSE = frozenset({"outputTps"})


def _chat(message: str, mode: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if mode is not None:
        body["mode"] = mode
    return body | extra


def _session(prefix: str) -> str:
    return unique(f"diff-{prefix}")


def _our_workspace(data: Any, target: Target) -> Any:
    return {"workspaces": [w for w in data["workspaces"] if w["slug"] == target.names["doc"]]}


def _probes() -> list[Probe]:
    ws, nodoc = "/api/v1/workspace/{doc}", "/api/v1/workspace/{nodoc}"
    thread = ws + "/thread/{thread}"
    probes = [
        Probe("ping", "GET", "/api/ping", key=None),
        Probe("metrics", "GET", "/api/utils/metrics", key=None, loose=frozenset({"appVersion"})),
        Probe("auth", "GET", "/api/v1/auth"),
        Probe("auth-wrong-key", "GET", "/api/v1/auth", key="WRONG-KEY"),
        Probe("auth-no-key", "GET", "/api/v1/auth", key=None),
        Probe("workspaces", "GET", "/api/v1/workspaces", select=_our_workspace),
        Probe("workspace-get", "GET", ws),
        Probe("workspace-get-unknown", "GET", "/api/v1/workspace/{missing}"),
        Probe("unknown-path", "GET", "/api/v1/nothing-here"),
        Probe("unknown-path-post", "POST", "/api/v1/nothing-here", body={}),
        Probe("malformed-json", "POST", ws + "/stream-chat", content=b"{bad"),
        Probe("vector-search", "POST", ws + "/vector-search", body={"query": FACT_QUESTION}),
        Probe("vector-search-no-docs", "POST", nodoc + "/vector-search", body={"query": "x"}),
        Probe("vector-search-no-query", "POST", ws + "/vector-search", body={}),
        Probe("update-embeddings-none", "POST", ws + "/update-embeddings", body={"adds": []}),
        Probe("thread-history", "GET", thread + "/chats"),
        Probe("thread-history-unknown", "GET", ws + "/thread/{missing}/chats"),
        Probe(
            "thread-history-unknown-workspace",
            "GET",
            "/api/v1/workspace/{missing}/thread/{thread}/chats",
        ),
        Probe("workspace-history", "GET", ws + "/chats"),
        Probe("workspace-history-unknown", "GET", "/api/v1/workspace/{missing}/chats"),
        Probe("workspace-new", "POST", "/api/v1/workspace/new", {"name": unique("Diff New")}),
        Probe("workspace-new-no-name", "POST", "/api/v1/workspace/new", {}),
        Probe("thread-new", "POST", ws + "/thread/new", {"name": "Diff thread"}),
        Probe("thread-new-unknown-workspace", "POST", "/api/v1/workspace/{missing}/thread/new", {}),
        Probe(
            "upload",
            "POST",
            "/api/v1/document/upload",
            files={"file": ("diff-notes.txt", b"Greenhouse sensors log humidity.\n", "text/plain")},
        ),
        Probe(
            "upload-empty-file",
            "POST",
            "/api/v1/document/upload",
            files={"file": ("diff-empty.txt", b"", "text/plain")},
        ),
        Probe(
            "workspace-history-session",
            "GET",
            ws + "/chats?apiSessionId=diff-history-{doc}",
            setup=(
                Probe(
                    "",
                    "POST",
                    ws + "/stream-chat",
                    _chat("Remember this", "chat", sessionId="diff-history-{doc}"),
                ),
            ),
        ),
        Probe(
            "workspace-history-hidden-refusal",
            "GET",
            ws + "/chats?apiSessionId=diff-refusal-{doc}",
            setup=(
                Probe(
                    "",
                    "POST",
                    ws + "/stream-chat",
                    _chat(UNRELATED_QUESTION, "query", sessionId="diff-refusal-{doc}"),
                ),
            ),
        ),
        Probe(
            "thread-history-after-chat",
            "GET",
            thread + "/chats",
            setup=(Probe("", "POST", thread + "/stream-chat", _chat("Hi", "chat")),),
        ),
    ]
    for route in ("stream-chat", "chat"):
        probes += [
            Probe(
                f"{route}-chat-doc",
                "POST",
                f"{ws}/{route}",
                _chat(FACT_QUESTION, "chat", sessionId=_session("chat")),
            ),
            Probe(
                f"{route}-chat-nodoc",
                "POST",
                f"{nodoc}/{route}",
                _chat("Stream hello", "chat", sessionId=_session("chat")),
            ),
            Probe(
                f"{route}-query-doc",
                "POST",
                f"{ws}/{route}",
                _chat(FACT_QUESTION, "query", sessionId=_session("query")),
            ),
            Probe(
                f"{route}-query-unrelated",
                "POST",
                f"{ws}/{route}",
                _chat(UNRELATED_QUESTION, "query", sessionId=_session("query")),
            ),
            Probe(
                f"{route}-query-nodoc",
                "POST",
                f"{nodoc}/{route}",
                _chat(UNRELATED_QUESTION, "query", sessionId=_session("query")),
            ),
            Probe(
                f"{route}-automatic",
                "POST",
                f"{nodoc}/{route}",
                _chat("Auto hello", "automatic", sessionId=_session("auto")),
            ),
            Probe(
                f"{route}-no-mode",
                "POST",
                f"{nodoc}/{route}",
                _chat("Auto hello", None, sessionId=_session("auto")),
            ),
            Probe(
                f"{route}-reset",
                "POST",
                f"{ws}/{route}",
                _chat("", None, reset=True, sessionId=_session("reset")),
            ),
            Probe(f"{route}-empty-message", "POST", f"{ws}/{route}", _chat("", "chat")),
            Probe(f"{route}-invalid-mode", "POST", f"{ws}/{route}", _chat("Hi", "bogus")),
            Probe(
                f"{route}-wrong-key", "POST", f"{ws}/{route}", _chat("Hi", "chat"), key="WRONG-KEY"
            ),
            Probe(
                f"{route}-unknown-workspace",
                "POST",
                f"/api/v1/workspace/{{missing}}/{route}",
                _chat("Hi", "chat"),
            ),
            Probe(f"thread-{route}", "POST", f"{thread}/{route}", _chat("Hi", "chat")),
            Probe(
                f"thread-{route}-unknown-thread",
                "POST",
                f"{ws}/thread/{{missing}}/{route}",
                _chat("Hi", "chat"),
            ),
            Probe(
                f"thread-{route}-unknown-workspace",
                "POST",
                f"/api/v1/workspace/{{missing}}/thread/{{thread}}/{route}",
                _chat("Hi", "chat"),
            ),
            Probe(
                f"{route}-upstream-500",
                "POST",
                f"{ws}/{route}",
                _chat("TRIGGER_HTTP500", "chat", sessionId=_session("500")),
                standin=scenarios.abort_before_tokens("500 fake upstream exploded"),
            ),
            Probe(
                f"{route}-think",
                "POST",
                f"{nodoc}/{route}",
                _chat("TRIGGER_THINK hello", "chat", sessionId=_session("think")),
                standin=scenarios.reasoning("pondering", "Fake reply: the end."),
            ),
        ]
    probes.append(
        Probe(
            "stream-chat-midstream-drop",
            "POST",
            ws + "/stream-chat",
            _chat("TRIGGER_MIDSTREAM_DROP", "chat", sessionId=_session("drop")),
            standin=scenarios.stall("partial "),
            stalls=True,
        )
    )
    return probes  # fmt: skip


PROBES = _probes()


# --- describing a response ----------------------------------------------------------------------


def describe(value: Any, loose: frozenset[str] = frozenset(), key: str = "") -> str:
    """The structure of a JSON value: keys in order, leaf types, the values of VALUE_KEYS."""
    if key in loose:
        return "any"
    if isinstance(value, dict):
        inner = ",".join(f"{k}:{describe(v, loose, k)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        kinds = list(dict.fromkeys(describe(item, loose) for item in value))
        return "[" + "|".join(kinds) + "]"
    if key in VALUE_KEYS:
        return json.dumps(value)
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    return "null" if value is None else "str"


def shape(status: int, headers: list[tuple[str, str]], body: bytes, probe: Probe) -> list[str]:
    lines = [f"status {status}"]
    loose = probe.loose | ALWAYS_LOOSE
    for name, value in headers:
        name = name.lower()
        lines.append(f"header {name}: {value}" if name in HEADER_VALUES else f"header {name}")
    text = body.decode("utf-8", "replace")
    if text.startswith("data: "):
        for block in text.split("\n\n"):
            if not block:
                continue
            if not block.startswith("data: "):
                lines.append(f"frame {block[:60]!r}")
                continue
            line = "event " + describe(json.loads(block[len("data: ") :]), loose)
            if line != lines[-1].removesuffix(" (repeated)"):
                lines.append(line)
            elif not lines[-1].endswith(" (repeated)"):
                lines[-1] += " (repeated)"
        if not text.endswith("\n\n"):
            lines.append("unterminated event")
        return lines
    try:
        data = json.loads(text)
    except ValueError:
        return [*lines, f"text {' '.join(text.split())[:200]!r}"]
    return [*lines, "json " + describe(data, loose)]


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    shape: list[str]
    body: bytes

    def head(self) -> str:
        return self.body[:1500].decode("utf-8", "replace")


def send(target: Target, probe: Probe) -> Answer:
    for first in probe.setup:
        send(target, first)
    path = probe.path.format(**target.names)
    if probe.standin is not None and target.queue is not None:
        target.queue(probe.standin)
    timeout = STALL_SECONDS if probe.stalls else 60
    kwargs: dict[str, Any] = {}
    if probe.content is not None:
        kwargs = {"content": probe.content, "headers": {"Content-Type": probe.content_type}}
    elif probe.files is not None:
        kwargs = {"files": probe.files}
    elif probe.body is not None:
        kwargs = {"json": _filled(probe.body, target.names)}
    with (
        target.http(probe.key, timeout) as http,
        http.stream(probe.method, path, **kwargs) as response,
    ):
        body = b""
        try:
            for piece in response.iter_bytes():
                body += piece
        except httpx.ReadTimeout:
            assert probe.stalls, f"{target.name}: {probe.name} stalled"
        else:
            assert not probe.stalls, f"{target.name}: {probe.name} ended, but should hang"
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
        if probe.select is not None:
            data = probe.select(json.loads(body), target)
            body = json.dumps(data).encode()
            headers = [(k, v) for k, v in headers if k.lower() not in ("content-length", "etag")]
        return Answer(shape(response.status_code, headers, body, probe), body)


def _filled(body: Any, names: dict[str, str]) -> Any:
    """The body with ``{doc}`` and the like in its string values replaced."""
    if isinstance(body, dict):
        return {key: _filled(value, names) for key, value in body.items()}
    return body.format(**names) if isinstance(body, str) else body


def prepare(target: Target) -> None:
    """The state every probe names, made through the server's own API on both servers."""
    with target.http() as http:
        for role in ("doc", "nodoc"):
            made = http.post("/api/v1/workspace/new", json={"name": target.names[role]})
            made.raise_for_status()
            target.names[role] = made.json()["workspace"]["slug"]
        uploaded = http.post(
            "/api/v1/document/upload",
            files={"file": ("wire-fact-sheet.txt", FACT_SHEET.encode(), "text/plain")},
        )
        uploaded.raise_for_status()
        location = uploaded.json()["documents"][0]["location"]
        http.post(
            f"/api/v1/workspace/{target.names['doc']}/update-embeddings",
            json={"adds": [location], "deletes": []},
        ).raise_for_status()
        made = http.post(f"/api/v1/workspace/{target.names['doc']}/thread/new", json={})
        made.raise_for_status()
        target.names["thread"] = made.json()["thread"]["slug"]


@pytest.fixture(scope="module")
def targets(real_server: RealServer) -> Iterator[tuple[Target, Target]]:
    names = {"doc": unique("Diff Doc"), "nodoc": unique("Diff Empty"), "missing": unique("nope")}
    legacy = not real_server.at_least((1, 12))
    with StandInServer(seed=False, legacy_modes=legacy) as standin:
        pair = (
            Target("stand-in", standin.base_url, standin.api_key, dict(names), standin.queue),
            Target(f"real {real_server.name}", real_server.base_url, real_server.api_key,
                   dict(names)),
        )  # fmt: skip
        for target in pair:
            prepare(target)
        yield pair


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_same_framing(targets: tuple[Target, Target], probe: Probe) -> None:
    standin, real = targets
    expected, got = send(real, probe), send(standin, probe)
    diff = "\n".join(
        difflib.unified_diff(expected.shape, got.shape, real.name, standin.name, lineterm="")
    )
    assert expected.shape == got.shape, (
        f"the stand-in frames {probe.name} differently:\n{diff}\n"
        f"{real.name} sent:\n{expected.head()}\nthe stand-in sent:\n{got.head()}"
    )


# --- the clients on both servers -----------------------------------------------------------------


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a client call comes to, in the terms a caller branches on: the error's class, or the
    result's type with the facts about it that do not depend on texts or ids."""
    try:
        result = call()
    except AllmError as error:
        return ("raises", type(error).__name__, getattr(error, "status", None))
    if isinstance(result, Reply):
        return ("reply", result.complete, result.refusal, bool(result.sources), bool(result.text))
    if isinstance(result, list):
        return ("list", type(result[0]).__name__ if result else None)
    return ("returns", type(result).__name__)


def client_outcomes(target: Target, make_client: Callable[..., Any]) -> list[tuple[str, Any]]:
    doc, nodoc, thread, missing = (target.names[k] for k in ("doc", "nodoc", "thread", "missing"))
    with make_client(target.base_url, target.api_key, timeout=60) as client:
        calls: list[Callable[[], Any]] = [
            client.workspaces,
            lambda: client.workspace(doc),
            lambda: client.workspace(missing),
            lambda: client.threads(doc),
            lambda: client.history(doc, thread=thread),
            lambda: client.history(doc, thread=missing),
            lambda: client.history(missing, thread="any"),
            lambda: client.vector_search(doc, FACT_QUESTION),
            lambda: client.documents(doc),
            lambda: client.chat(nodoc, UNRELATED_QUESTION, mode="query"),
            lambda: client.chat(doc, FACT_QUESTION, mode="query", session_id=_session("cq")),
            lambda: client.chat(missing, "Hello", mode="chat"),
            lambda: client.chat(doc, "Hello", mode="chat", thread=missing),
            lambda: client.chat(doc, "Hello", mode="bogus"),
        ]
        found = [outcome(call) for call in calls]
    with make_client(target.base_url, "WRONG-KEY-0000000", timeout=60) as wrong:
        found += [outcome(wrong.auth), outcome(wrong.workspaces)]
    return found


def test_the_clients_come_to_the_same_on_both(
    targets: tuple[Target, Target], make_client: Callable[..., Any]
) -> None:
    """Both clients, over the same calls: the stand-in leads them where the real server does."""
    standin, real = targets
    assert client_outcomes(standin, make_client) == client_outcomes(real, make_client)
