"""The stand-in's batch features over loopback: many answers at once, a per-answer delay, rules
that fail, throttle or stall chosen questions, and the costs newer servers report."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allm_jupyter import Client, ConnectionLostError
from allm_jupyter.testing import Prices, StandInServer, scenarios


@pytest.fixture
def server() -> Iterator[StandInServer]:
    with StandInServer(speed=0) as standin:
        yield standin


def post_chat(server: StandInServer, message: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(server.host, server.port)
    connection.request(
        "POST",
        "/api/v1/workspace/research/chat",
        json.dumps({"message": message, "mode": "chat"}),
        {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"},
    )
    return connection.getresponse()


def test_answers_are_played_at_the_same_time(server: StandInServer) -> None:
    server.answer_when(lambda q: True, scenarios.stall())
    broken: list[ConnectionLostError] = []

    def read(question: str) -> None:
        with Client(server.base_url, server.api_key) as client:
            try:
                client.chat("research", question, mode="chat")
            except ConnectionLostError as error:
                broken.append(error)

    readers = [threading.Thread(target=read, args=(f"q{i}",), daemon=True) for i in range(3)]
    for reader in readers:
        reader.start()
    server.wait_for_answers(0, in_flight=3)  # all three stalled answers are open at once
    assert server.peak_in_flight == 3
    server.stop()  # ends the stalls: each client sees its connection break
    for reader in readers:
        reader.join()
    assert len(broken) == 3
    assert server.in_flight == 0 and server.answers_ended == 3


def test_throttling_answers_with_retry_after_and_a_rule_runs_out(server: StandInServer) -> None:
    server.answer_when(lambda q: "busy" in q, scenarios.throttled(429, "7"), times=2)
    for _ in range(2):
        busy = post_chat(server, "busy now")
        assert (busy.status, busy.getheader("Retry-After"), busy.read()) == (
            429,
            "7",
            b"Too Many Requests",
        )
    assert post_chat(server, "busy now").status == 200
    unavailable = scenarios.throttled(503, None)
    server.answer_when(lambda q: q == "down", unavailable)
    down = post_chat(server, "down")
    assert (down.status, down.getheader("Retry-After")) == (503, None)
    server.clear_rules()
    assert post_chat(server, "down").status == 200


@given(text=st.text(min_size=1, max_size=40).filter(str.strip))
@settings(max_examples=20)
def test_rules_see_the_question_as_sent(text: str) -> None:
    with StandInServer(speed=0) as server:
        server.answer_when(lambda q: q == text, scenarios.http_error(500, "no"))
        assert post_chat(server, text).status == 500
        assert post_chat(server, text + "!").status == 200


def test_a_delay_holds_each_answer_and_it_still_arrives_whole() -> None:
    with (
        StandInServer(speed=0, delay=0.05) as server,
        Client(server.base_url, server.api_key) as client,
    ):
        reply = client.chat("research", "hello", mode="chat")
        assert reply.text == server.expected_reply("research", "hello", "chat")


def test_prices_add_the_costs_to_streamed_and_saved_metrics() -> None:
    prices = Prices(input_per_token=0.001, output_per_token=0.002)
    with (
        StandInServer(speed=0, prices=prices) as server,
        Client(server.base_url, server.api_key) as client,
    ):
        reply = client.chat("research", "What does it cost?", mode="chat")
        metrics = reply.metrics
        assert metrics is not None and metrics.prompt_tokens and metrics.completion_tokens
        assert metrics.input_cost == pytest.approx(metrics.prompt_tokens * 0.001)
        assert metrics.output_cost == pytest.approx(metrics.completion_tokens * 0.002)
        assert metrics.total_cost == pytest.approx(metrics.input_cost + metrics.output_cost)
        (saved,) = client.history("research", limit=1)[-1:]
        assert saved.metrics is not None and saved.metrics.total_cost == metrics.total_cost
    with StandInServer(speed=0) as plain, Client(plain.base_url, plain.api_key) as client:
        unpriced = client.chat("research", "And here?", mode="chat").metrics
        assert unpriced is not None and unpriced.total_cost is None
