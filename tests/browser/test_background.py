"""``%%allm background`` in real JupyterLab: two answers grow in their own cells at the same time
while a code cell runs, and each ends exact, with its sources."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from playwright.sync_api import expect

from allm_jupyter.testing import StandInServer, scenarios

from .lab import Notebook
from .test_lab import HANDBOOK, LOAD

OpenNotebook = Callable[[Sequence[str]], Notebook]
WAIT = 60.0
"""Seconds before a wait that should end at once is called a hang."""


def test_two_background_answers_grow_while_a_code_cell_runs(
    open_notebook: OpenNotebook, standin: StandInServer
) -> None:
    notebook = open_notebook(
        [
            LOAD,
            "%%allm background workspace=research session=one out=one\nFirst?",
            "%%allm background workspace=research session=two out=two\nSecond?",
            "print('both ended:', one.result().complete, two.result().complete)",
        ]
    )
    notebook.run(0)
    release = threading.Event()
    reached = [threading.Event(), threading.Event()]
    texts = ["Alpha answer streams in its own cell.", "Bravo answer streams beside it."]
    standin.queue(
        *(
            scenarios.held(scenarios.normal(text, sources=[HANDBOOK]), mark, release)
            for text, mark in zip(texts, reached, strict=True)
        )
    )
    try:
        notebook.run(1)  # each returns at once: its execution count shows while it streams
        notebook.run(2)
        assert all(mark.wait(WAIT) for mark in reached)
        by_question = {s.request.json["message"]: s.scenario.expected_text for s in standin.streams}
        first, second = (by_question[q] for q in ("First?", "Second?"))
        for index, text in ((1, first), (2, second)):  # both partial in the page at once
            expect(notebook.output(index)).to_contain_text(text.split()[0])
            expect(notebook.output(index)).not_to_contain_text("Sources")
        # a code cell runs meanwhile: it waits for both answers, which the server then finishes
        notebook.cell(3).locator(".jp-InputArea-editor").click()
        notebook.page.keyboard.press("Control+Enter")
        expect(notebook.cell(3).locator(".jp-InputPrompt")).to_contain_text("*")
        release.set()
        expect(notebook.output(3)).to_contain_text("both ended: True True")
        for index, text in ((1, first), (2, second)):
            expect(notebook.output(index)).to_contain_text(text)
            expect(notebook.output(index)).to_contain_text("Sources (1)")
    finally:
        release.set()
