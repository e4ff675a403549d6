"""``%%allm over=`` and both clients' ``ask_many`` in a real kernel against the stand-in: a list, a
DataFrame template, the grid, a failing row, a stop half-way and its resume, the progress bar's
final state and the table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kernel.conftest import CellRun, KernelSession, kernel_env, loaded_kernel

from allm_jupyter.testing import Prices, StandInServer, scenarios


@pytest.fixture(scope="module")
def batch_server() -> Iterator[StandInServer]:
    with StandInServer(speed=0, prices=Prices()) as server:
        yield server


@pytest.fixture(scope="module")
def batch_kernel(batch_server: StandInServer) -> Iterator[KernelSession]:
    with loaded_kernel(kernel_env(batch_server), "import pandas as pd") as session:
        yield session


@pytest.fixture
def server(batch_server: StandInServer) -> Iterator[StandInServer]:
    yield batch_server
    batch_server.clear_rules()


def ok(run: CellRun) -> CellRun:
    assert run.status == "ok", run.error_text
    return run


def value(kernel: KernelSession, expression: str) -> Any:
    """An expression's value in the kernel, through JSON."""
    return json.loads(ok(kernel.run(f"import json; print(json.dumps({expression}))")).text)


def asked_since(server: StandInServer, before: int) -> list[str]:
    return [r.json["message"] for r in server.chat_requests()[before:]]


def bar_state(run: CellRun) -> dict[str, Any]:
    """The progress widgets' last state as the front end would have it: the bar's value, max
    and style, and the label's text."""
    state: dict[str, Any] = {}
    models: dict[str, str] = {}
    for message in run.messages:
        content = message["content"]
        if message["msg_type"] == "comm_open":
            models[content["comm_id"]] = content["data"]["state"]["_model_name"]
            update = content["data"]["state"]
        elif message["msg_type"] == "comm_msg" and content["data"].get("method") == "update":
            update = content["data"]["state"]
        else:
            continue
        model = models.get(content["comm_id"])
        if model == "IntProgressModel":
            state |= {k: update[k] for k in ("value", "max", "bar_style") if k in update}
        elif model == "LabelModel" and "value" in update:
            state["text"] = update["value"]
    return state


def table_html(run: CellRun) -> str:
    (shown,) = [o["data"]["text/html"] for o in run.outputs if "text/html" in o.get("data", {})]
    return str(shown)


def test_over_a_list_shows_the_bar_then_the_table(batch_kernel, server) -> None:
    before = len(server.chat_requests())
    ok(batch_kernel.run("qs = ['What is RAG?', 'Who <b>wrote</b> it?', 'Why {x}?']"))
    run = ok(batch_kernel.run("%%allm over=qs workspace=research mode=chat out=b\n{item}"))
    assert sorted(asked_since(server, before)) == sorted(
        ["What is RAG?", "Who <b>wrote</b> it?", "Why {x}?"]
    )
    assert bar_state(run) == {
        "value": 3,
        "max": 3,
        "bar_style": "success",
        "text": bar_state(run)["text"],
    }
    assert bar_state(run)["text"].startswith("3/3 done · ")
    shown = table_html(run)
    assert "3 questions: 3 done, 0 failed, 0 pending" in shown
    assert "Who &lt;b&gt;wrote&lt;/b&gt; it?" in shown and "<b>" not in shown
    assert value(batch_kernel, "[b.done, b.failed, b.pending, _allm is b]") == [3, 0, 0, True]
    assert value(batch_kernel, "b.to_pandas()['cost'].gt(0).all().item()") is True


def test_a_dataframe_template_is_filled_per_row(batch_kernel, server) -> None:
    before = len(server.chat_requests())
    ok(batch_kernel.run("df = pd.DataFrame({'city': ['Oslo', 'Lima'], 'rank': [1, 2]})"))
    ok(batch_kernel.run("%%allm over=df workspace=research\nWhy is {city} #{rank}? {'json': 1}"))
    assert sorted(asked_since(server, before)) == [
        "Why is Lima #2? {'json': 1}",
        "Why is Oslo #1? {'json': 1}",
    ]


def test_the_grid_and_a_failing_row(batch_kernel, server) -> None:
    server.answer_when(lambda q: "explode" in q, scenarios.abort_before_tokens("model crashed"))
    ok(batch_kernel.run("pair = ['fine', 'please explode']"))
    run = ok(
        batch_kernel.run(
            "%%allm over=pair workspace=research,scratchpad mode=chat,query out=grid\n{item}"
        )
    )
    assert bar_state(run)["bar_style"] == "danger"
    assert "8 questions: 4 done, 4 failed, 0 pending" in table_html(run)
    rows = value(batch_kernel, "[[r.question, r.workspace, r.mode] for r in grid.rows]")
    assert rows == [
        [q, w, m]
        for q in ("fine", "please explode")
        for w in ("research", "scratchpad")
        for m in ("chat", "query")
    ]
    errors = value(batch_kernel, "[r.error for r in grid.replies]")
    assert errors[:4] == [None] * 4 and all("model crashed" in e for e in errors[4:])


def test_a_stop_half_way_keeps_the_finished_rows_and_resume_finishes(batch_kernel, server) -> None:
    server.answer_when(lambda q: q.startswith("slow"), scenarios.stall())
    ok(batch_kernel.run("four = ['quick 1', 'quick 2', 'slow 1', 'slow 2']"))
    before = len(server.chat_requests())
    cell = "%%allm over=four workspace=research concurrency=2 out=half\n{item}"
    msg_id = batch_kernel.execute(cell)
    # With two answers in flight at most, both stalled ones are asked only once the quick ones
    # have been answered and kept by the kernel.
    server.wait_for_answers(server.answers_ended + 2, in_flight=2)
    batch_kernel.interrupt()
    run = batch_kernel.collect(msg_id)
    assert run.status == "error" and run.reply["ename"] == "Interrupted"
    assert run.error_text.splitlines() == [
        "\x1b[0;31mKeyboardInterrupt\x1b[0m: stopped; 2 done, 0 failed, 2 pending, in _allm and "
        "half; run the cell again with resume=half to ask the rest."
    ]
    assert bar_state(run)["bar_style"] == "warning"
    assert value(batch_kernel, "[half.done, half.pending, half.stopped]") == [2, 2, True]
    slow = [s for s in server.streams if s.request.json["message"].startswith("slow")]
    assert all(s.disconnected.wait(30) for s in slow), "the answers in flight were hung up"

    server.clear_rules()
    resumed = ok(batch_kernel.run(cell.replace("out=half", "out=half resume=half")))
    assert bar_state(resumed)["value"] == 4 and bar_state(resumed)["bar_style"] == "success"
    assert value(batch_kernel, "[half.done, half.pending, half.stopped]") == [4, 0, False]
    assert sorted(asked_since(server, before)) == sorted(
        ["quick 1", "quick 2", "slow 1", "slow 2", "slow 1", "slow 2"]
    )


def test_both_clients_ask_many_in_the_kernel(batch_kernel, server) -> None:
    ok(batch_kernel.run("from allm_jupyter import AsyncClient, Client\nthree = ['a', 'b', 'c']"))
    ok(batch_kernel.run("b1 = Client().ask_many('research', three, mode='chat', progress=False)"))
    run = ok(
        batch_kernel.run(
            "async with AsyncClient() as c:\n"
            "    b2 = await c.ask_many('research', three, mode=['chat', 'query'])"
        )
    )
    assert bar_state(run)["value"] == 6
    answers = value(batch_kernel, "[[r.answer for r in b1.replies], b2.done, b2.failed]")
    assert answers == [[server.expected_reply("research", q, "chat") for q in "abc"], 6, 0]


def test_over_needs_a_variable_and_the_grid_needs_over(batch_kernel) -> None:
    missing = batch_kernel.run("%%allm over=nothing_here\n{item}")
    assert missing.reply["ename"] == "ConfigurationError"
    assert "there is no variable nothing_here" in missing.error_text
    grid = batch_kernel.run("%%allm workspace=research,scratchpad\nhello")
    assert "it needs over=NAME" in grid.error_text
