"""Any value the server sends: a table cell shows it or ``?``, never a traceback.

Generated JSON (huge and negative numbers, NaN and infinities, numbers as strings, wrong types,
nested junk) goes into every field of every row a ``%allm`` table shows, served over loopback by a
raw server, and through the commands the user runs: ``status``, ``workspaces``, ``threads``,
``history``, ``search``, ``documents``; and into the sources and metrics of a streamed answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hostile import (
    STREAM_HEAD,
    STREAM_ROUTE,
    STREAM_SLUG,
    HostileServer,
    canned,
    closed_port_url,
    http_response,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allm_jupyter import Client
from allm_jupyter import commands as allm
from allm_jupyter.context import Context
from allm_jupyter.errors import AllmError
from allm_jupyter.models import HistoryMessage, Metrics, SearchResult, Source, Workspace
from allm_jupyter.render import render_markdown, render_plain
from allm_jupyter.testing.scenarios import sse_bytes

SLUG = "ws"
PROPERTIES = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=2**53, max_value=10**40),
    st.integers(max_value=-1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**20, -1, 2**53, 2**63, 1e308, -0.0, 0.5, 1795607362]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12), numbers.map(str))
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def row(**plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A row whose every field is either plausible or any JSON value, or missing."""
    return st.fixed_dictionaries({}, optional={k: s | values for k, s in plausible.items()})


metrics = row(
    model=st.text(max_size=8),
    prompt_tokens=numbers,
    completion_tokens=numbers,
    total_tokens=numbers,
    outputTps=numbers,
    duration=numbers,
    totalCost=numbers,
    timestamp=st.text(max_size=8),
)
sources = st.lists(
    row(
        title=st.text(max_size=8),
        text=st.text(max_size=20),
        score=numbers,
        url=st.text(max_size=8),
        chunkSource=st.text(max_size=8),
    ),
    max_size=3,
)
documents = st.lists(
    row(
        docpath=st.text(max_size=8),
        filename=st.text(max_size=8),
        pinned=st.booleans(),
        metadata=st.one_of(
            st.dictionaries(st.just("title"), values).map(json.dumps),
            st.text(max_size=10),
        ),
    ),
    max_size=3,
)
threads = st.lists(row(slug=st.text(max_size=6), name=st.text(max_size=6)), max_size=3)
workspace = row(
    slug=st.just(SLUG),
    name=st.text(max_size=8),
    chatMode=st.sampled_from(["chat", "query"]),
    threads=threads,
    documents=documents,
)
history_row = row(
    role=st.sampled_from(["user", "assistant"]),
    content=st.text(max_size=20),
    sentAt=numbers,
    chatId=numbers,
    type=st.text(max_size=5),
    sources=sources,
    metrics=metrics,
)
hit = row(
    text=st.text(max_size=20),
    score=numbers,
    metadata=row(title=st.text(max_size=8), url=st.text(max_size=8)),
)
server_metrics = row(
    appVersion=st.text(max_size=8),
    version=st.text(max_size=8),
    mode=st.text(max_size=8),
    vectorDB=st.text(max_size=8),
)


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        hostile.routes["/api/ping"] = canned(http_response(200, b'{"online":true}'))
        hostile.routes["/api/v1/auth"] = canned(http_response(200, b'{"authenticated":true}'))
        yield hostile


@pytest.fixture
def context(server: HostileServer) -> Iterator[Context]:
    environ = {
        "ANYTHING_LLM_BASE_URL": server.base_url,
        "ANYTHING_LLM_API_KEY": "values-key",
        "ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG": SLUG,
    }
    context = Context(environ=environ)
    yield context
    context.close()


def serve(server: HostileServer, path: str, body: Any) -> None:
    server.routes[path] = canned(http_response(200, json.dumps(body).encode()))


def shown(table: allm.Table) -> str:
    """Both renderings (notebook and terminal), which must both succeed."""
    return table.markdown() + "\n" + table.plain()


@PROPERTIES
@given(data=st.data())
def test_every_table_shows_any_server_value(
    server: HostileServer, context: Context, data: st.DataObject
) -> None:
    found = data.draw(st.lists(workspace, max_size=3).map(lambda ws: [*ws, {"slug": SLUG}]))
    serve(server, "/api/v1/workspaces", {"workspaces": found})
    serve(server, f"/api/v1/workspace/{SLUG}", {"workspace": [data.draw(workspace)]})
    serve(
        server,
        f"/api/v1/workspace/{SLUG}/chats",
        {"history": data.draw(st.lists(history_row, max_size=4))},
    )
    serve(
        server,
        f"/api/v1/workspace/{SLUG}/vector-search",
        {"results": data.draw(st.lists(hit, max_size=4))},
    )
    serve(server, "/api/utils/metrics", data.draw(server_metrics))
    for command in (allm.status, allm.workspaces, allm.threads, allm.documents):
        shown(command(context, ""))
    history = allm.history(context, "")
    shown(history)
    assert all(re.fullmatch(r"\?|\d{4}-\d\d-\d\d \d\d:\d\d", str(r[0])) for r in history.rows)
    search = allm.search(context, "what")
    shown(search)
    assert all(re.fullmatch(r"\?|-?\d{1,3}%", str(r[0])) for r in search.rows)


@PROPERTIES
@given(metrics=metrics, sources=sources)
def test_an_answer_with_any_sources_and_metrics_renders(
    stream_server: HostileServer, stream_client: Client, metrics: dict[str, Any], sources: list[Any]
) -> None:
    events = [
        {"uuid": "t", "type": "textResponseChunk", "textResponse": "Hi.", "close": False},
        {
            "uuid": "t",
            "type": "finalizeResponseStream",
            "close": True,
            "chatId": 1,
            "sources": sources,
            "metrics": metrics,
        },
    ]
    stream_server.routes[STREAM_ROUTE] = canned(
        STREAM_HEAD + b"".join(sse_bytes(e) for e in events)
    )
    reply = stream_client.chat(STREAM_SLUG, "q", mode="chat")
    assert reply.text == "Hi."
    render_markdown(reply, final=True)
    render_plain(reply, final=True)


@given(values)
def test_the_models_read_any_value_in_any_field(value: Any) -> None:
    """Each model's every field, given the value: no exception, and the field is typed or None."""
    for field in ("role", "content", "sentAt", "chatId", "type", "sources", "metrics"):
        message = HistoryMessage.from_wire({field: value})
        assert message.sent_at is None or 0 <= message.sent_at <= 2**53
    for field in ("title", "text", "score", "url", "chunkSource", "docSource", "published"):
        source = Source.from_wire({field: value})
        assert source.score is None or -1 <= source.score <= 1
    for field in ("model", "prompt_tokens", "total_tokens", "outputTps", "duration", "totalCost"):
        read = Metrics.from_wire({field: value})
        if read is not None:
            assert read.total_tokens is None or 0 <= read.total_tokens <= 2**53
            assert read.duration is None or 0 <= read.duration <= 2**53
    for field in ("slug", "name", "chatMode", "threads", "documents"):
        Workspace.from_wire({field: value})
    for field in ("text", "score", "metadata"):
        SearchResult.from_wire({field: value})


@pytest.mark.parametrize(
    ("sent_at", "cell"),
    [
        (10**20, "?"),
        (-5, "?"),
        (1e400, "?"),  # json.dumps writes Infinity; the reader makes it null
        ("1795607362", "?"),
        (253402300800, "?"),  # the first second of the year 10000
        (1795607362, "2026-11-25 11:49"),
        (1795607362.0, "2026-11-25 11:49"),
    ],
)
def test_history_shows_a_time_that_does_not_convert_as_a_question_mark(
    server: HostileServer, context: Context, sent_at: Any, cell: str
) -> None:
    serve(
        server,
        f"/api/v1/workspace/{SLUG}/chats",
        {"history": [{"role": "user", "content": "hi", "sentAt": sent_at}]},
    )
    table = allm.history(context, "")
    assert table.rows == [(cell, "user", "hi")]


@pytest.mark.parametrize("score", [float("nan"), 7, -3, "0.9", None, True])
def test_search_shows_a_score_that_is_no_similarity_as_a_question_mark(
    server: HostileServer, context: Context, score: Any
) -> None:
    serve(
        server,
        f"/api/v1/workspace/{SLUG}/vector-search",
        {"results": [{"text": "t", "score": score, "metadata": {"title": "Doc"}}]},
    )
    assert allm.search(context, "q").rows == [("?", "Doc", "t")]


def test_status_with_the_server_down_says_it_cannot_be_reached() -> None:
    free_url = closed_port_url()
    context = Context(environ={"ANYTHING_LLM_BASE_URL": free_url, "ANYTHING_LLM_API_KEY": "k"})
    rows = dict(allm.status(context, "").rows)
    context.close()
    assert rows["version"] == "unknown (the server cannot be reached)"
    assert rows["reachable"].startswith(f"no — Cannot reach the AnythingLLM server at {free_url} (")


def test_any_table_cell_is_one_line_or_an_allm_error() -> None:
    """A command on a server that answers junk ends in one sentence (an AllmError), not a traceback."""
    with HostileServer() as hostile:
        hostile.routes["/api/v1/workspaces"] = canned(http_response(200, b"[1, 2]"))
        context = Context(
            environ={"ANYTHING_LLM_BASE_URL": hostile.base_url, "ANYTHING_LLM_API_KEY": "k"}
        )
        with pytest.raises(AllmError) as raised:
            allm.workspaces(context, "")
        context.close()
    assert "\n" not in raised.value.message
