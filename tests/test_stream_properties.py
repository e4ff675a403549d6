"""Properties of the stream path, over a real loopback socket (``hostile.py``) for every example.

However the network cuts a valid stream into reads, the reply is the same; whatever bytes arrive,
nothing but an :class:`AllmError` comes out. A socket per example costs a few milliseconds, so no
in-memory transport is needed; there is no deadline (the machine is shared).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hostile import STREAM_HEAD, STREAM_ROUTE, STREAM_SLUG, Canned, HostileServer
from hypothesis import given, settings
from hypothesis import strategies as st

from allm_jupyter import AllmError, Client
from allm_jupyter.events import parse_event
from allm_jupyter.reply import fold
from allm_jupyter.testing.scenarios import sse_bytes

PROPERTIES = settings(deadline=None, max_examples=60)


def chunk(delta: str) -> dict[str, Any]:
    return {"uuid": "turn", "type": "textResponseChunk", "textResponse": delta, "close": False}


source = st.fixed_dictionaries(
    {"title": st.text(min_size=1), "text": st.text(), "score": st.floats(0, 1)}
)
turns = st.tuples(
    st.lists(st.text(), max_size=8).map(lambda rest: ["first ", *rest]),
    st.lists(source, max_size=3),
    st.booleans(),  # a byte order mark first
    st.sampled_from([b"\n", b"\r\n"]),  # line ends
)


def stream_of(turn: tuple[list[str], list[dict[str, Any]], bool, bytes]) -> tuple[bytes, list]:
    """The body of one turn as the server would send it, and the events in it."""
    deltas, sources, bom, newline = turn
    events = [chunk(d) for d in deltas] + [
        {**chunk(""), "close": True},
        {
            "uuid": "turn",
            "type": "finalizeResponseStream",
            "close": True,
            "chatId": 7,
            "sources": sources,
            "metrics": {"model": "m", "outputTps": 12.5},
        },
    ]
    body = b"".join(sse_bytes(e).replace(b"\n", newline) for e in events)
    return (b"\xef\xbb\xbf" if bom else b"") + body, events


def splits(data: bytes) -> st.SearchStrategy[tuple[bytes, ...]]:
    """``data`` cut at any set of places, each piece written by itself."""
    return st.sets(st.integers(1, max(1, len(data) - 1)), max_size=40).map(
        lambda cuts: tuple(
            data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)
        )
    )


@PROPERTIES
@given(turn=turns, data=st.data())
def test_any_split_into_reads_gives_the_same_reply(
    stream_server: HostileServer, stream_client: Client, turn: Any, data: st.DataObject
) -> None:
    body, events = stream_of(turn)
    writes = data.draw(splits(STREAM_HEAD + body), label="writes")
    stream_server.routes[STREAM_ROUTE] = Canned(writes)
    reply = stream_client.chat(STREAM_SLUG, "q", mode="chat")
    expected = fold([parse_event(json.loads(json.dumps(e))) for e in events], workspace=STREAM_SLUG)
    assert reply == expected
    assert reply.text == "".join(turn[0]) and reply.complete


@PROPERTIES
@given(body=st.binary(max_size=3000), data=st.data())
def test_any_bytes_after_a_stream_head_end_in_a_reply_or_an_allm_error(
    stream_server: HostileServer, stream_client: Client, body: bytes, data: st.DataObject
) -> None:
    stream_server.routes[STREAM_ROUTE] = Canned(
        data.draw(splits(STREAM_HEAD + body), label="writes")
    )
    with contextlib.suppress(AllmError):
        stream_client.chat(STREAM_SLUG, "q", mode="chat")


@PROPERTIES
@given(
    response=st.one_of(
        st.binary(max_size=2000),
        st.binary(max_size=2000).map(lambda tail: b"HTTP/1.1 " + tail),
        st.binary(max_size=2000).map(lambda tail: STREAM_HEAD[:-2] + tail),
    ),
    data=st.data(),
)
def test_any_response_bytes_end_in_a_reply_or_an_allm_error(
    stream_server: HostileServer, stream_client: Client, response: bytes, data: st.DataObject
) -> None:
    stream_server.routes[STREAM_ROUTE] = Canned(data.draw(splits(response), label="writes"))
    with contextlib.suppress(AllmError):
        stream_client.chat(STREAM_SLUG, "q", mode="chat")
