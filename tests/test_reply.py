"""The fold from events to a Reply, checked on the real server's captured streams."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from captures import load
from hypothesis import given
from hypothesis import strategies as st

from allm_jupyter.errors import AllmError
from allm_jupyter.events import (
    Abort,
    AgentThought,
    FileDownload,
    FinalizeResponseStream,
    TextResponse,
    TextResponseChunk,
    UnknownEvent,
    UsageMetrics,
    parse_event,
)
from allm_jupyter.reply import Reply, ReplyBuilder, fold, split_reasoning, with_error


def fold_capture(name: str, **context: Any):
    return fold([parse_event(e) for e in load(name).events()], **context)


def test_chat_mode_capture_gives_text_chat_id_and_metrics() -> None:
    reply = fold_capture("stream-chat-chat-mode.txt", workspace="wire-test")
    assert reply.text == 'Fake reply bd8e435e: you said "Stream hello". The end.'
    assert reply.chat_id == 2
    assert reply.metrics is not None
    assert (reply.metrics.model, reply.metrics.total_tokens) == ("fake-model", 113)
    assert reply.complete and not reply.refusal and reply.error is None
    assert reply.workspace == "wire-test"


def test_automatic_mode_capture_never_duplicates_the_agent_answer() -> None:
    reply = fold_capture("stream-chat-automatic-mode.txt")
    assert reply.text == 'Fake reply ca8a1963: you said "Auto hello". The end.'
    assert reply.text.count("Fake reply") == 1
    assert reply.chat_id is None
    assert reply.metrics is not None and reply.metrics.provider == "GenericOpenAiProvider"


def test_query_mode_sources_come_from_finalize() -> None:
    reply = fold_capture("stream-chat-query-mode-with-doc.txt")
    assert reply.text.endswith("The end.")
    assert [s.title for s in reply.sources] == ["wire-fact-sheet.txt"]
    source = reply.sources[0]
    assert source.snippet.startswith("The Wire Test facility is located on Loopback Lane.")
    assert "<document_metadata>" not in source.snippet
    assert source.score == pytest.approx(0.99326, abs=1e-4)
    assert source.link is None  # file:// on the server is no link for the reader
    assert reply.chat_id == 15


def test_query_refusal_is_a_marked_normal_reply() -> None:
    reply = fold_capture("stream-chat-query-mode-no-docs.txt")
    assert reply.refusal
    assert reply.text == "There is no relevant information in this workspace to answer your query."
    assert reply.error is None and reply.metrics is None and reply.complete


def test_reset_confirmation_is_not_a_refusal() -> None:
    events = [
        parse_event(
            {
                "id": "1",
                "type": "textResponse",
                "textResponse": "Chat history was reset!",
                "sources": [],
                "close": True,
                "error": None,
            }
        )
    ]
    assert not fold(events, reset_only=True).refusal
    assert fold(events).refusal


def test_upstream_failure_capture_records_the_abort() -> None:
    reply = fold_capture("stream-chat-upstream-http500.txt")
    assert reply.error == "500 fake upstream exploded"
    assert reply.text == ""


def test_midstream_drop_capture_keeps_the_partial_text() -> None:
    builder = ReplyBuilder()
    for data in load("stream-chat-upstream-midstream-drop.txt").events():
        builder.add(parse_event(data))
    reply = builder.reply
    assert reply.text == "partial " and not reply.complete


def test_thread_capture_folds_like_the_workspace_one() -> None:
    reply = fold_capture("thread-stream-chat-chat-mode.txt", thread="wire-thread-1")
    assert reply.text == 'Fake reply 63244547: you said "Thread stream hello". The end.'
    assert (reply.thread, reply.chat_id) == ("wire-thread-1", 7)


def test_abort_then_finalize_keeps_partial_text_sources_and_error() -> None:
    source = {"title": "a.pdf", "text": "x", "score": 0.5}
    events = [
        TextResponseChunk("u", "Half an "),
        TextResponseChunk("u", "answer"),
        Abort("u", "provider exploded"),
        FinalizeResponseStream("u", chat_id=9, metrics={"model": "m"}, sources=[source]),
    ]
    reply = fold(events)
    assert (reply.text, reply.error, reply.chat_id) == ("Half an answer", "provider exploded", 9)
    assert [s.title for s in reply.sources] == ["a.pdf"]


def test_ollama_error_chunk_is_an_error() -> None:
    events = [
        TextResponseChunk("u", "Par"),
        TextResponseChunk("u", "", close=True, error="Ollama:streaming - could not stream chat."),
    ]
    assert fold(events).error == "Ollama:streaming - could not stream chat."


def test_sources_come_from_the_last_non_empty_list() -> None:
    first = [{"title": "old.pdf"}]
    last = [{"title": "new.pdf"}]
    events = [
        TextResponseChunk("u", "a", sources=first),
        TextResponseChunk("u", "b", close=True, sources=last),
        FinalizeResponseStream("u", sources=[]),
    ]
    assert [s.title for s in fold(events).sources] == ["new.pdf"]


def test_agent_turn_thoughts_files_and_final_text() -> None:
    events = [
        AgentThought("a", "Searching documents"),
        TextResponseChunk("a", "Partial "),
        FileDownload("a", "report.txt", "report-123.txt", 42),
        UsageMetrics("a", {"model": "m", "total_tokens": 5}),
        TextResponse("a", "Partial and final."),
        FinalizeResponseStream("a", text="Partial and final.", thoughts=["Searching documents"]),
    ]
    reply = fold(events)
    assert reply.text == "Partial and final."
    assert reply.thoughts == ("Searching documents",)
    assert [f.filename for f in reply.files] == ["report.txt"]
    assert reply.metrics is not None and reply.metrics.total_tokens == 5
    assert not reply.refusal


def test_skill_payload_does_not_replace_the_text() -> None:
    events = [
        TextResponse("a", "Here is your chart."),
        TextResponse("a", None, payload={"type": "rechartVisualize"}),
    ]
    reply = fold(events)
    assert reply.text == "Here is your chart." and reply.outputs == ({"type": "rechartVisualize"},)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"type": "statusResponse", "x": 1}, UnknownEvent),
        ({"type": "abort", "id": "1", "error": None}, Abort),
        ({"type": "textResponseChunk", "textResponse": None}, TextResponseChunk),
        ({"type": "textResponse", "textResponse": {"chart": 1}}, TextResponse),
        ({}, UnknownEvent),
    ],
)
def test_parse_event_is_tolerant(data: dict[str, Any], expected: type) -> None:
    assert isinstance(parse_event(data), expected)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "id",
                "uuid",
                "textResponse",
                "error",
                "sources",
                "metrics",
                "chatId",
                "close",
                "thoughts",
            ]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(),
            st.lists(st.text()),
            st.dictionaries(st.text(), st.integers()),
        ),
    )
)
def test_parse_and_fold_never_crash_on_any_event_shape(data: dict[str, Any]) -> None:
    for kind in (
        "textResponseChunk",
        "textResponse",
        "finalizeResponseStream",
        "abort",
        "agentThought",
        "usageMetrics",
        "fileDownload",
    ):
        fold([parse_event({**data, "type": kind})])


def test_turn_id_from_uuid_or_id() -> None:
    assert parse_event({"type": "textResponseChunk", "uuid": "u1"}).turn_id == "u1"  # type: ignore[union-attr]
    assert parse_event({"type": "textResponseChunk", "id": "i1"}).turn_id == "i1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain answer", (None, "plain answer")),
        ("<think>hmm</think>answer", ("hmm", "answer")),
        ("<think>still thinking", ("still thinking", "")),
        ("<think>nearly</th", ("nearly", "")),
        ("<thi", ("", "")),
        ("<think>a</think>\n\nB", ("a", "B")),
    ],
)
def test_split_reasoning_handles_partial_tags(text: str, expected: tuple[str | None, str]) -> None:
    assert split_reasoning(text) == expected


def chunk(text: str, **fields: Any) -> TextResponseChunk:
    return parse_event({"type": "textResponseChunk", "uuid": "t", "textResponse": text, **fields})  # type: ignore[return-value]


def test_snapshots_between_chunks_see_each_prefix_and_the_exact_whole() -> None:
    builder = ReplyBuilder()
    expected = ""
    for index in range(300):
        piece = f"w{index} "
        builder.add(chunk(piece))
        expected += piece
        if index % 7 == 0:
            assert builder.reply.text == expected
    builder.add(chunk("", close=True, sources=[{"title": "doc"}]))
    reply = builder.finish()
    assert reply.text == expected and [s.title for s in reply.sources] == ["doc"]


def test_agent_text_replaces_chunks_joined_or_not() -> None:
    builder = ReplyBuilder()
    builder.add(chunk("Agent "))
    assert builder.reply.text == "Agent "
    builder.add(chunk("answer."))
    builder.add(TextResponse(turn_id="t", text="Agent answer."))
    assert builder.finish().text == "Agent answer."


def test_snapshots_from_another_thread_lose_no_chunk() -> None:
    """What a view's ticker does while the stream's thread adds: every snapshot is a prefix of
    the answer, and the answer ends exact, however the two threads interleave."""
    builder = ReplyBuilder()
    pieces = [f"{index} " for index in range(20_000)]
    seen: list[str] = []
    done = threading.Event()

    def snapshot() -> None:
        while not done.is_set():
            seen.append(builder.reply.text)

    reader = threading.Thread(target=snapshot)
    reader.start()
    for piece in pieces:
        builder.add(chunk(piece))
    done.set()
    reader.join()
    whole = "".join(pieces)
    assert builder.finish().text == whole
    assert seen and all(whole.startswith(text) for text in seen)


TEXTS = st.text(max_size=40)


@given(
    so_far=TEXTS,
    carried=st.one_of(st.none(), TEXTS),
    server_error=st.one_of(st.none(), TEXTS.filter(bool)),
    message=TEXTS.filter(bool),
)
def test_a_failed_answer_keeps_what_arrived_and_says_why(
    so_far: str, carried: str | None, server_error: str | None, message: str
) -> None:
    """The magic, a background job and a batch row all keep the same reply when an answer fails:
    the one the error carries, else what arrived; the server's own error before the library's."""
    arrived = Reply(text=so_far, workspace="ws")
    reply_carried = None if carried is None else Reply(text=carried, error=server_error)
    kept = with_error(arrived, AllmError(message, reply=reply_carried))
    expected = arrived if reply_carried is None else reply_carried
    assert kept.text == expected.text
    assert kept.error == (expected.error or message)
    bug = with_error(arrived, ValueError(message))
    assert (bug.text, bug.workspace, bug.error) == (so_far, "ws", f"ValueError: {message}")
