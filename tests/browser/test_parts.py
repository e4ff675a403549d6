"""A long answer in parts, in real JupyterLab and Notebook 7: the outputs read as the one output
the same final Markdown makes when a plain cell displays it (the same DOM, math typeset and code
kept alike), the seams take no more room than a paragraph break, and nothing is typeset or
linked that should not be. Screenshots of a seam land in the test's temporary directory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from long_answers import structured_answer
from playwright.sync_api import expect

from allm_jupyter.segments import MAX_PARTS
from allm_jupyter.testing import StandInServer, scenarios

from .lab import Notebook
from .test_lab import BOTH, HANDBOOK, LOAD

OpenNotebook = Callable[[Sequence[str]], Notebook]
LONG = structured_answer(100_000, seed=18)
CONTROL = """from IPython.display import Markdown, display
from allm_jupyter.render import render_markdown
display(Markdown(render_markdown(_allm, final=True)))"""

# The rendered Markdown of some outputs as one HTML string, each typeset formula replaced by its
# TeX source where MathJax keeps it, else by its text: what the reader sees, block by block. What
# JupyterLab adds on its own time goes: a heading's anchor gets rel="noopener" when an output is
# displayed but not when it is updated in place (every streamed output is), and the table of
# contents numbers headings (an empty span, an id) a moment after they render.
RENDERED_HTML = """outputs => outputs.map(markdown => {
    const copy = markdown.cloneNode(true);
    for (const link of copy.querySelectorAll('[rel]')) link.removeAttribute('rel');
    for (const number of copy.querySelectorAll('.numbering-entry')) number.remove();
    for (const heading of copy.querySelectorAll('[data-jupyter-id]')) {
        heading.removeAttribute('data-jupyter-id');
    }
    for (const math of copy.querySelectorAll('mjx-container')) {
        const tex = math.querySelector('annotation, [data-tex]');
        math.replaceWith('[math ' + (math.getAttribute('display') || 'inline') + ': '
            + (tex ? tex.textContent : math.textContent) + ']');
    }
    return copy.innerHTML.trim();
}).join('\\n')"""
PARAGRAPH_GAP = """markdown => {
    const second = markdown.querySelector(':scope > p + p');
    const first = second.previousElementSibling;
    return second.getBoundingClientRect().top - first.getBoundingClientRect().bottom;
}"""
# The room the outputs take, whether or not the area scrolls them.
HEIGHT = """area => [...area.querySelectorAll(':scope > .jp-OutputArea-child')]
    .reduce((sum, output) => sum + output.getBoundingClientRect().height, 0)"""


@BOTH
def test_a_long_answer_in_parts_reads_as_one(
    open_notebook: OpenNotebook, standin: StandInServer, tmp_path: Path
) -> None:
    notebook = open_notebook([LOAD, "%%allm workspace=research\nTell me everything.", CONTROL])
    notebook.run(0)
    standin.queue(scenarios.normal(LONG, sources=[HANDBOOK]))
    notebook.run(1)
    notebook.run(2)

    parts = notebook.output(1).locator(".jp-RenderedMarkdown")
    control = notebook.output(2).locator(".jp-RenderedMarkdown")
    expect(control).to_have_count(1)
    count = parts.count()
    assert 2 <= count <= MAX_PARTS, count
    expect(control.locator("mjx-container").first).to_be_attached()  # MathJax ran on both
    expect(parts.last.locator("details summary")).to_have_text("Sources (1)")

    shown = parts.evaluate_all(RENDERED_HTML)
    assert shown == control.evaluate_all(RENDERED_HTML), "the parts do not read as the whole"

    # What must stay as it is: code keeps its dollars, links only go to the web.
    code = notebook.output(1).locator("pre")
    assert code.count() == LONG.count("```python")
    expect(code.locator("mjx-container")).to_have_count(0)
    expect(code.first).to_contain_text("price = '$5 and $10'")
    hrefs = notebook.output(1).locator("a[href]").evaluate_all("as => as.map(a => a.href)")
    assert all(href.startswith(("https://", "http://")) or "#" in href for href in hrefs)
    links = [href for href in hrefs if href.startswith("https://example.org/")]
    assert len(links) == LONG.count("](https://example.org/") + 1  # and the source's
    formulas = notebook.output(1).locator("mjx-container")
    assert formulas.count() == LONG.count("The area is $x^") * 2  # inline and display, no more

    # A seam takes no more room than a paragraph break.
    for output in (notebook.output(1), notebook.output(2)):
        output.scroll_into_view_if_needed()
    extra = notebook.output(1).evaluate(HEIGHT) - notebook.output(2).evaluate(HEIGHT)
    paragraph = control.evaluate(PARAGRAPH_GAP)
    assert abs(extra) / (count - 1) <= paragraph + 1, (extra, count, paragraph)

    parts.nth(1).evaluate("part => part.firstElementChild.scrollIntoView({block: 'center'})")
    notebook.page.screenshot(path=tmp_path / "seam.png")  # part 0's end above part 1's start
