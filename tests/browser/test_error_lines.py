"""The red error line of a failing cell: server text in it links only to http(s)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from playwright.sync_api import expect

from allm_jupyter.testing import StandInServer, scenarios

from .lab import Notebook
from .test_lab import BOTH, LOAD

OpenNotebook = Callable[[Sequence[str]], Notebook]
HOSTILE = (
    "see data:text/html,<b>hi</b> and file:///etc/passwd and ftp://host/f and "
    "javascript:alert(1), or https://example.org/help and www.example.org; the server is at "
    "http://localhost:3001/api (copy it)"
)
COPYABLE = "http://localhost:3001/api"
LINKS = "area => [...area.querySelectorAll('a')].map(a => a.getAttribute('href') || a.textContent)"


@BOTH
def test_server_text_in_the_error_line_links_only_to_http(
    open_notebook: OpenNotebook, standin: StandInServer
) -> None:
    notebook = open_notebook([LOAD, "%%allm workspace=research\nWhy?"])
    notebook.run(0)
    standin.queue(scenarios.abort_before_tokens(HOSTILE))
    notebook.run(1)
    error = notebook.output(1).locator(
        ".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']"
    )
    expect(error).to_contain_text("ChatAbortedError")
    expect(error).to_contain_text("https://example.org/help")
    hrefs = error.evaluate(LINKS)
    # JupyterLab also links path-like words ("/html") to its own file browser: no scheme, no harm.
    schemes = {urlsplit(href).scheme for href in hrefs}
    assert "https" in schemes and schemes <= {"", "http", "https"}, hrefs
    assert COPYABLE in hrefs and COPYABLE in error.inner_text(), "a URL must copy exactly"
    shown = error.inner_text().replace("\u2060", "")
    assert "data:text/html,<b>hi</b>" in shown and "file:///etc/passwd" in shown
