"""``%%allm`` in a real Jupyter Notebook 7: one output, no script from answers, the picker.

Notebook 7 renders notebooks with JupyterLab's widgets in its own shell and pages (one notebook per
page at ``/notebooks/…``, no status bar, no tabs), so the Lab tests' answers and selectors are
reused; what differs is how the server starts and how the page tells the kernel is idle
(``lab.NOTEBOOK7``).
"""

from __future__ import annotations

import re
from itertools import dropwhile

import pytest
from playwright.sync_api import expect

from allm_jupyter.testing import StandInServer, scenarios
from allm_jupyter.testing.data import SEED_WORKSPACES

from .lab import NOTEBOOK7, Frontend
from .test_lab import (
    ANSWER,
    CONTROL,
    DANGEROUS,
    EVENT_HANDLERS,
    HANDBOOK,
    HOSTILE_SOURCE,
    LOAD,
    PAYLOADS,
    RECORD_OUTPUTS,
    OpenNotebook,
    rendered_answer,
)

FOOTER = re.compile(rf"^{re.escape(scenarios.MODEL)} · \d+ tokens · ")


@pytest.fixture(scope="module")
def frontend() -> Frontend:
    return NOTEBOOK7


def test_answer_streams_into_one_output(
    open_notebook: OpenNotebook, standin: StandInServer
) -> None:
    notebook = open_notebook([LOAD, "%%allm workspace=research\nHow does onboarding work?"])
    notebook.run(0)
    output = notebook.output(1)
    output.evaluate(RECORD_OUTPUTS)
    standin.queue(scenarios.trickle(ANSWER, delay=0.05, sources=[HANDBOOK]))

    notebook.run(1)

    record = output.evaluate("area => area.allmRecord")
    shown = list(dropwhile(lambda count: count == 0, record["counts"]))
    assert shown and set(shown) == {1}, f"not exactly one output at all times: {shown}"
    growing = [text.strip() for text in record["texts"] if text.startswith(ANSWER.split()[0])]
    assert len(growing) >= 3, f"the answer did not grow in place: {record['texts']}"
    assert all(ANSWER.startswith(text) for text in growing[:-1]), growing

    expect(output.locator(".jp-OutputArea-child")).to_have_count(1)
    answer = rendered_answer(output)
    expect(answer).to_have_count(1)
    expect(answer.locator("p").first).to_have_text(ANSWER)
    sources = answer.locator("details")
    expect(sources.locator("summary")).to_have_text("Sources (1)")
    expect(sources.locator("a")).to_have_attribute("href", HANDBOOK["url"])
    expect(answer.locator("p > em").last).to_have_text(FOOTER)
    assert standin.chat_requests()[-1].path == "/api/v1/workspace/research/stream-chat"


def test_picker_choice_is_what_the_next_cell_asks(
    open_notebook: OpenNotebook, standin: StandInServer
) -> None:
    notebook = open_notebook([LOAD, "%allm pick", "%%allm\nWho is the mascot?"])
    notebook.run(0)
    notebook.run(1)
    picker = notebook.output(1)
    workspaces = picker.locator(".widget-dropdown", has_text="Workspace").locator("select")
    threads = picker.locator(".widget-dropdown", has_text="Thread").locator("select")
    expect(workspaces.locator("option")).to_have_text([w.name for w in SEED_WORKSPACES])
    expect(workspaces).to_have_value("Research")  # the environment's default workspace

    workspaces.select_option(label="Scratchpad")
    # The kernel took the pick when the picker redraws the threads for the new workspace.
    expect(threads.locator("option")).to_have_text(["default chat", "new thread…"])
    standin.queue(scenarios.normal("Packet, a blue heron."))
    notebook.run(2)

    assert standin.chat_requests()[-1].path == "/api/v1/workspace/scratchpad/stream-chat"
    expect(rendered_answer(notebook.output(2)).locator("p").first).to_have_text(
        "Packet, a blue heron."
    )


def test_answer_markup_never_runs_script(
    open_notebook: OpenNotebook, standin: StandInServer
) -> None:
    notebook = open_notebook([LOAD, "%%allm workspace=research\nSummarise the page.", CONTROL])
    notebook.run(0)
    standin.queue(scenarios.normal(" ".join(PAYLOADS), sources=[HOSTILE_SOURCE]))
    notebook.run(1)
    answer = rendered_answer(notebook.output(1))
    expect(answer.locator("details summary")).to_have_text("Sources (1)")

    # The control: Notebook 7 does not sanitize session output either (the same <img onerror>
    # displayed as Markdown by plain Python code runs), and its failed load is the wait.
    notebook.run(2)
    notebook.page.wait_for_function("window.__allm_control === 1")

    assert notebook.page.evaluate("typeof window.__allm_pwned") == "undefined"
    expect(notebook.output(1).locator(DANGEROUS)).to_have_count(0)
    assert notebook.output(1).evaluate(EVENT_HANDLERS) == []
    for markup in (*PAYLOADS[:3], PAYLOADS[4], HOSTILE_SOURCE["title"]):
        expect(answer).to_contain_text(markup)  # shown as text, not dropped
