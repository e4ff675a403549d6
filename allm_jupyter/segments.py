"""Where a long answer may be cut into parts that each render on their own exactly as in the whole.

JupyterLab re-parses and re-renders an output's whole Markdown on every update, so the cost of an
update grows with the answer. The live view therefore shows a long answer as several outputs: a
part, once long enough and closed, is drawn for the last time; only the open tail is updated.

A cut must change nothing a reader sees. It falls only at the start of a line that begins a new
top-level block after a blank line: never inside a fenced code block (tracked exactly as
:func:`~allm_jupyter.render.escape_markdown_html` tracks them, so each part escapes to the slice of
the whole), a display math block (``$$`` or ``\\begin``/``\\end``), a list (the next line is not
indented and not a list item) or a paragraph. Block quotes, tables and HTML blocks end at a blank
line, and ``<think>`` reasoning is never cut (the view keeps it in the first part). The escaper
turns every server ``<`` into text, so no HTML block can span a blank line either.

Pure: no I/O, no clock; tested with hypothesis against markdown-it (``tests/test_segments.py``).
"""

from __future__ import annotations

import re

from .render import fence_opened_by

MIN_PART = 16_000
"""Characters of the answer a part holds at least: short answers stay one output."""
GROWTH = 8
"""A part holds at least 1/GROWTH of the answer before it, so the number of parts grows with the
logarithm of the answer's length (about 25 for 1 MB)."""
MAX_PARTS = 30
"""Outputs of one answer at most, well under JupyterLab's 50 per cell (``maxNumberOutputs``):
past that the tail just grows."""

_NEWLINE = re.compile(r"\r\n?|\n")
_LIST_ITEM = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
_ENVIRONMENT = re.compile(r"\\(begin|end)\{")


def part_size(covered: int) -> int:
    """How long the next part must be at least, once ``covered`` characters are in parts."""
    return max(MIN_PART, covered // GROWTH)


def next_cut(text: str, start: int, min_size: int) -> int | None:
    """The first offset at least ``min_size`` after ``start`` where ``text`` may be cut, or None.

    ``start`` must itself be a cut (or 0): the scan starts outside every block. Only complete
    lines count (the line after the cut too), so text still arriving never moves a cut.
    """
    fence = None
    math = (False, 0)
    blank_before = False
    line_start = start
    for newline in _NEWLINE.finditer(text, start):
        line = text[line_start : newline.start()]
        if (
            blank_before
            and fence is None
            and math == (False, 0)
            and line_start - start >= min_size
            and _starts_a_block(line)
        ):
            return line_start
        if fence is not None:
            if fence.is_closed_by(line):
                fence = None
        else:
            fence = fence_opened_by(line)
            if fence is None:
                math = _math_after(line, math)
        blank_before = not line.strip()
        line_start = newline.end()
    return None


def _starts_a_block(line: str) -> bool:
    """A line after a blank line that cannot continue what came before (a list, indented code)."""
    return bool(line.strip()) and line[0] not in " \t" and not _LIST_ITEM.match(line)


def _math_after(line: str, math: tuple[bool, int]) -> tuple[bool, int]:
    """Display math still open after ``line``, for renderers whose math blocks span blank lines
    (VS Code's, markdown-it's; JupyterLab ends math at a blank line): a line starting with ``$$``
    opens a block that a line ending with ``$$`` closes, and ``\\begin{``/``\\end{`` nest."""
    dollars, environments = math
    stripped = line.strip()
    if dollars:
        dollars = not stripped.endswith("$$")
    else:
        dollars = stripped.startswith("$$") and not (len(stripped) >= 4 and stripped.endswith("$$"))
    for match in _ENVIRONMENT.finditer(line):
        environments = environments + 1 if match[1] == "begin" else max(0, environments - 1)
    return dollars, environments
