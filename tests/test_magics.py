"""The magic's own pure parts: its traitlets and the one-line question transform."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets import TraitError

from allm_jupyter import load_ipython_extension, unload_ipython_extension
from allm_jupyter.magics import AllmMagics, _one_line_questions
from allm_jupyter.render import render_markdown
from allm_jupyter.reply import Reply


@pytest.mark.parametrize("value", ["inf", "1e300", "-5", "0", "nan"])
def test_configured_timeouts_must_be_sane(value: str) -> None:
    magics = AllmMagics(shell=None)
    with pytest.raises(TraitError, match="timeout must be"):
        magics.timeout = float(value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "%allm What is a workspace?",
            "get_ipython().run_line_magic('allm', 'What is a workspace?')",
        ),
        ("  %allm -w r Why?\n", "  get_ipython().run_line_magic('allm', '-w r Why?')\n"),
        ("%allm?", "%allm?"),
        ("%allm status", "%allm status"),
        ("%%allm -w r?", "%%allm -w r?"),
        ("x = 1?", "x = 1?"),
    ],
)
def test_one_line_questions_are_not_help_requests(line: str, expected: str) -> None:
    assert _one_line_questions([line]) == [expected]


def test_a_reply_shows_itself_as_the_magic_does() -> None:
    """The extension registers the reply's Markdown with IPython's formatter, and takes it away."""
    shell = InteractiveShell.instance()
    try:
        reply = Reply(text="Hi <b>there</b>", complete=True)
        load_ipython_extension(shell)
        shown, _ = shell.display_formatter.format(reply)
        assert shown["text/markdown"] == render_markdown(reply, final=True)
        assert "<b>" not in shown["text/markdown"]
        unload_ipython_extension(shell)
        assert "text/markdown" not in shell.display_formatter.format(reply)[0]
    finally:
        InteractiveShell.clear_instance()
