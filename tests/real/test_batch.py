"""``ask_many`` against the real AnythingLLM 1.16.0: a batch of 8 questions in two modes, on both
clients, each question in its own session (the server's history shows one exchange per row)."""

from __future__ import annotations

import asyncio

import pytest

from allm_jupyter import AsyncClient, Batch, Client
from allm_jupyter.testing.data import fake_reply

from .servers import FACT_QUESTION, SEEDED, UNRELATED_QUESTION, RealServer

FACT_SHEET = "wire-fact-sheet.txt"
QUESTIONS = [
    FACT_QUESTION,
    UNRELATED_QUESTION,
    "Hello there",
    "What is retrieval-augmented generation?",
    "Name three colours.",
    "Where is the Wire Test facility located, exactly?",
    "Count to five.",
    "What does {braces} mean here?",
]


def asked(kind: str, server: RealServer) -> Batch:
    if kind == "sync":
        with Client(server.base_url, server.api_key, timeout=60) as client:
            return client.ask_many(SEEDED, QUESTIONS, mode=["chat", "query"], progress=False)

    async def run() -> Batch:
        async with AsyncClient(server.base_url, server.api_key, timeout=60) as client:
            return await client.ask_many(SEEDED, QUESTIONS, mode=["chat", "query"], progress=False)

    return asyncio.run(run())


@pytest.mark.since(1, 16)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_batch_of_eight_questions_in_two_modes(real_server: RealServer, kind: str) -> None:
    batch = asked(kind, real_server)
    assert (batch.done, batch.failed, batch.pending) == (16, 0, 0)
    by_row = dict(zip([(r.question, r.mode) for r in batch.rows], batch.replies, strict=True))
    for question in QUESTIONS:
        chat = by_row[(question, "chat")]
        assert chat is not None and chat.complete and chat.text == fake_reply(question)
    cited = by_row[(FACT_QUESTION, "query")]
    assert cited is not None and [s.title for s in cited.sources] == [FACT_SHEET]
    refused = by_row[(UNRELATED_QUESTION, "query")]
    assert refused is not None and refused.refusal
    frame = batch.to_pandas()
    assert len(frame) == 16 and frame["error"].isna().all()
    assert frame.loc[frame["mode"] == "chat", "prompt_tokens"].gt(0).all()
    with Client(real_server.base_url, real_server.api_key, timeout=60) as client:
        for row in [r for r in batch.rows if r.mode == "chat"][:4]:
            history = client.history(SEEDED, session_id=row.session_id)
            assert [m.content for m in history if m.role == "user"] == [row.question]
