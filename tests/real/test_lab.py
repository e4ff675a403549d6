"""One answer streaming from the real AnythingLLM into JupyterLab in Chromium (tests/browser's
front end and helpers), slowed down by the kit's TRIGGER_SLOW so the page sees it grow."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import dropwhile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser.lab import CHROMIUM, VIEWPORT, Jupyter, Notebook, chromium, running_lab
from browser.test_lab import LOAD, RECORD_OUTPUTS, rendered_answer
from playwright.sync_api import Request, expect

from allm_jupyter.testing.data import fake_reply

from .servers import SEEDED, RealServer, unique

pytestmark = [
    pytest.mark.since(1, 16),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing"),
]
QUESTION = "TRIGGER_SLOW Where is the Wire Test facility?"


@pytest.fixture(scope="module")
def lab(real_server: RealServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jupyter]:
    with running_lab(tmp_path_factory.mktemp("real-lab"), real_server.environ()) as running:
        yield running


def test_a_real_answer_streams_into_one_output(lab: Jupyter, tmp_path: Path) -> None:
    remote: list[str] = []

    def check(request: Request) -> None:
        url = urlsplit(request.url)
        if url.scheme not in ("data", "blob", "about") and url.hostname != "127.0.0.1":
            remote.append(request.url)

    cell = f"%%allm workspace={SEEDED} mode=chat session={unique('lab')}\n{QUESTION}"
    with chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        context.on("request", check)
        notebook = Notebook(context.new_page(), lab, "real-streaming", [LOAD, cell])
        notebook.run(0)
        output = notebook.output(1)
        output.evaluate(RECORD_OUTPUTS)
        notebook.run(1)

        record = output.evaluate("area => area.allmRecord")
        shown = list(dropwhile(lambda count: count == 0, record["counts"]))
        assert shown and set(shown) == {1}, f"not exactly one output at all times: {shown}"
        full = fake_reply(QUESTION)
        growing = [t.strip() for t in record["texts"][:-1] if t.startswith("Fake")]
        assert len(growing) >= 3, f"the answer did not grow in place: {record['texts']}"
        assert all(full.startswith(text) for text in growing), growing
        answer = rendered_answer(output)
        expect(answer.locator("p").first).to_have_text(full)
        expect(answer.locator("details summary")).to_have_text("Sources (1)")
        context.close()
    assert not remote, f"the page reached beyond loopback: {remote}"
