"""The byte-level SSE framing (``allm_jupyter._sse``) gives exactly what httpx-sse gives.

httpx-sse is the oracle: its ``EventSource`` reads the same reads from an ``httpx.Response`` (as the
client read streams before, with ``utf-8-sig`` decoding for the byte order mark). The first
properties feed the reads in directly, since only then are the cut points exactly the ones drawn
(a socket may merge writes); the last one goes through a real loopback socket to the client.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hostile import STREAM_HEAD, STREAM_ROUTE, STREAM_SLUG, Canned, HostileServer
from httpx_sse import EventSource
from hypothesis import example, given, settings
from hypothesis import strategies as st

from allm_jupyter import Client
from allm_jupyter._sse import event_data
from allm_jupyter.events import parse_event
from allm_jupyter.reply import fold

PROPERTIES = settings(deadline=None, max_examples=300)
BOM = "\ufeff".encode()


def oracle(reads: list[bytes]) -> list[str]:
    """The data of each event as httpx-sse frames it."""
    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=iter(reads)
    )
    response.encoding = "utf-8-sig"
    return [event.data for event in EventSource(response).iter_sse()]


def cut(data: bytes, cuts: set[int]) -> list[bytes]:
    points = sorted(c for c in cuts if 0 < c < len(data))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


# Text with what could wrongly end a line: U+2028/U+2029, NEL, VT, FF, the file separators that
# str.splitlines splits on, lone CR/LF, NUL, a BOM, and characters of 2 to 4 bytes to cut apart.
tricky = st.text(
    st.one_of(
        st.sampled_from("\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e\r\n\x00\ufeff é€😀: "),
        st.characters(codec="utf-8"),
    ),
    max_size=12,
)
value = tricky.map(lambda text: text.replace("\r", "").replace("\n", ""))
line = st.one_of(
    st.builds(lambda v, space: f"data:{' ' if space else ''}{v}", value, st.booleans()),
    st.just("data"),
    st.just("data: "),
    st.builds(lambda v: f":{v}", value),  # a comment
    st.builds(lambda f, v: f"{f}:{v}", st.sampled_from(["event", "id", "retry"]), value),
    st.builds(lambda v: f"retry: {v}", st.sampled_from(["10", " 3", "+1", "x", "1_0", "٣"])),
    st.sampled_from(["event", "id", "retry", "id:\x00", "Data: x", " data: x", "data :x"]),
    st.builds(lambda f, v: f"{f}:{v}", value, value),  # unknown fields
    st.just(""),  # a blank line: dispatch
)
streams = st.tuples(
    st.booleans(),  # a byte order mark first
    st.lists(st.tuples(line, st.sampled_from(["\n", "\r", "\r\n"])), max_size=25),
    st.booleans(),  # an unterminated last line
    value,
)


def encoded(stream: tuple[bool, list[tuple[str, str]], bool, str]) -> bytes:
    bom, lines, unterminated, last = stream
    text = "".join(line + end for line, end in lines) + (last if unterminated else "")
    return (BOM if bom else b"") + text.encode()


@PROPERTIES
@given(stream=streams, cuts=st.sets(st.integers(1, 400), max_size=30))
@example(stream=(False, [("data: 1", "\r"), ("", "\n")], False, ""), cuts={8})
@example(stream=(False, [("data: 1", "\r\n"), ("", "\r\n")], False, ""), cuts={8, 9})
@example(stream=(True, [("data: é", "\n"), ("", "\n")], False, ""), cuts={1, 2, 9})
@example(
    stream=(False, [("data: a\u2028b", "\n"), ("data", "\n"), ("", "\n")], True, "x"), cuts={9}
)
@example(stream=(False, [("id: 1", "\n"), ("", "\n"), ("", "\n")], False, ""), cuts=set())
@example(stream=(False, [("id:\x00", "\n"), ("", "\n")], False, ""), cuts=set())
def test_any_event_stream_in_any_reads_frames_as_httpx_sse_does(
    stream: tuple[bool, list[tuple[str, str]], bool, str], cuts: set[int]
) -> None:
    reads = cut(encoded(stream), cuts)
    assert list(event_data(reads)) == oracle(reads)


@PROPERTIES
@given(
    body=st.lists(
        st.one_of(st.sampled_from([b"\r", b"\n", b"\r\n", b"data:", b"data: ", BOM]), st.binary()),
        max_size=30,
    ).map(b"".join),
    cuts=st.sets(st.integers(1, 400), max_size=30),
)
@example(body=b"data: \xe2\x82\n\n\xff\n\n", cuts={7})
def test_any_bytes_in_any_reads_frame_as_httpx_sse_does(body: bytes, cuts: set[int]) -> None:
    """Invalid UTF-8 included: both decode it to the same U+FFFD."""
    reads = cut(body, cuts)
    assert list(event_data(reads)) == oracle(reads)


# -- through a real socket, to the reply ------------------------------------------------------------


def framed(event: dict[str, Any], end: str, spread: bool, comment: bool) -> str:
    """One event as some server could frame it: its JSON over one or several data lines.

    One line end per event: a CR line end before the blank line's LF would make one CRLF.
    """
    payload = json.dumps(event, ensure_ascii=False, indent=1 if spread else None)
    lines = [":keep-alive"] if comment else []
    lines += [f"data: {part}" for part in payload.split("\n")] + [""]
    return end.join(lines) + end


@settings(deadline=None, max_examples=60)
@given(
    deltas=st.lists(tricky, max_size=6).map(lambda rest: ["first ", *rest]),  # some text
    ends=st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=1, max_size=4),
    spread=st.booleans(),
    comment=st.booleans(),
    bom=st.booleans(),
    cuts=st.sets(st.integers(1, 1500), max_size=30),
)
def test_a_reply_over_a_socket_is_what_httpx_sse_framing_gives(
    stream_server: HostileServer,
    stream_client: Client,
    deltas: list[str],
    ends: list[str],
    spread: bool,
    comment: bool,
    bom: bool,
    cuts: set[int],
) -> None:
    events: list[dict[str, Any]] = [
        {"uuid": "t", "type": "textResponseChunk", "textResponse": d, "close": False}
        for d in deltas
    ] + [{"uuid": "t", "type": "finalizeResponseStream", "close": True, "chatId": 3}]
    body = (BOM if bom else b"") + "".join(
        framed(e, ends[i % len(ends)], spread, comment) for i, e in enumerate(events)
    ).encode()
    stream_server.routes[STREAM_ROUTE] = Canned(tuple(cut(STREAM_HEAD + body, cuts)))
    reply = stream_client.chat(STREAM_SLUG, "q", mode="chat")
    expected = fold([parse_event(json.loads(d)) for d in oracle([body])], workspace=STREAM_SLUG)
    assert reply == expected
    assert reply.text == "".join(deltas)
