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

from .render import Fence

MIN_PART = 24_000
"""Characters of the answer a part holds at least: short answers stay one output."""
GROWTH = 12
"""A part holds at least 1/GROWTH of the answer before it, so the number of parts grows with the
logarithm of the answer's length: 13 for 300 KB, 28 for 1 MB, whose largest part is about 75 KB
(an update of the tail costs JupyterLab about as much as rendering it once)."""
MAX_PARTS = 30
"""Outputs of one answer at most, well under JupyterLab's 50 per cell (``maxNumberOutputs``):
past that the tail just grows."""

_NEWLINE = re.compile(r"\r\n?|\n")
_LIST_ITEM = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
_DOLLARS = re.compile(r" {0,3}\$\$")
_LABELLED = re.compile(r"\$\$[ \t]*\([^)$\r\n]+\)[ \t]*$")
_ENVIRONMENT = re.compile(
    r" {0,3}\\begin\{(equation|multline|gather|align|alignat|flalign|matrix|pmatrix|bmatrix"
    r"|Bmatrix|vmatrix|Vmatrix|eqnarray)(\*?)\}"
)
_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")
_BREAK = re.compile(r" {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
_UNDERLINE = re.compile(r" {0,3}(?:=+|-+)[ \t]*$")
_CONTAINERS = re.compile(r"(?: {0,3}(?:>|(?:[-*+]|\d{1,9}[.)])(?=[ \t]|$))[ \t]?)*")
"""Block quote markers and list markers at the start of a line."""


def part_size(covered: int) -> int:
    """How long the next part must be at least, once ``covered`` characters are in parts."""
    return max(MIN_PART, covered // GROWTH)


def next_cut(text: str, start: int, min_size: int) -> int | None:
    """The first offset at least ``min_size`` after ``start`` where ``text`` may be cut, or None.

    ``start`` must itself be a cut (or 0): the scan starts outside every block. Only complete
    lines count (the line after the cut too), so text still arriving never moves a cut.
    """
    fence = None  # as the escaper sees fences: each part must escape to its slice of the whole
    blocks = _Blocks()  # as a renderer with math sees them
    blank_before = False
    line_start = start
    for newline in _NEWLINE.finditer(text, start):
        line = text[line_start : newline.start()]
        if (
            blank_before
            and fence is None
            and blocks.closed
            and line_start - start >= min_size
            and _starts_a_block(line)
        ):
            return line_start
        if fence is None:
            fence = Fence.opened_by(line)
        elif fence.is_closed_by(line):
            fence = None
        blocks.read(line)
        blank_before = not line.strip()
        line_start = newline.end()
    return None


def _starts_a_block(line: str) -> bool:
    """A line after a blank line that cannot continue what came before (a list, indented code)."""
    return bool(line.strip()) and line[0] not in " \t" and not _LIST_ITEM.match(line)


class _Blocks:
    r"""Fences and display math open at the end of a line, as markdown-it reads them with its
    math rules. JupyterLab and Notebook 7 end any math at a blank line, so no cut (always after
    one) can fall in their math; this is for renderers whose top-level math blocks hold blank
    lines (markdown-it's, VS Code's). In math, a fence is text.

    A ``$$`` line opens math only where a block may start (it cannot continue a paragraph), an
    amsmath ``\begin{…}`` anywhere; a line ending with ``$$`` (or ``$$ (label)``), or with the
    matching ``\end{…}``, closes it.
    """

    def __init__(self) -> None:
        self.fence: Fence | None = None
        self.math: str | None = None
        r"""What closes the open math: ``$$`` or ``\end{…}``."""
        self.continues = False
        """The line before is paragraph text, which a next line would continue."""

    @property
    def closed(self) -> bool:
        return self.fence is None and self.math is None

    def read(self, line: str) -> None:
        stripped = line.strip()
        if self.fence is not None:
            if self.fence.is_closed_by(line):
                self.fence = None
        elif self.math is not None:
            if self.math == "$$":
                closed = stripped.endswith("$$") or _LABELLED.search(stripped) is not None
            else:
                closed = stripped.endswith(self.math)
            if closed:
                self.math = None
        elif not stripped:
            self.continues = False
            return
        elif (fence := Fence.opened_by(line)) is not None:
            self.fence = fence
        elif environment := _ENVIRONMENT.match(line):
            closing = f"\\end{{{environment[1]}{environment[2]}}}"
            self.math = None if stripped.endswith(closing) else closing
        elif not self.continues and _DOLLARS.match(line):
            one_line = len(stripped) > 3 and (
                stripped.endswith("$$") or _LABELLED.search(stripped) is not None
            )
            if one_line or len(stripped) <= 3 or "$$" not in stripped[2:]:
                self.math = None if one_line else "$$"
            else:  # not math to markdown-it: a paragraph
                self.continues = True
                return
        else:
            self.continues = self._paragraph(line)
            return
        self.continues = False

    def _paragraph(self, line: str) -> bool:
        """Whether a line after ``line`` would continue it (lazily, in a list or quote too)."""
        if _BREAK.match(line) or _HEADING.match(line):
            return False
        if self.continues and _UNDERLINE.match(line):
            return False  # a setext heading's underline
        inside = _CONTAINERS.match(line).end()  # type: ignore[union-attr]  # matches ""
        if inside:  # what the quote or list item holds: only paragraph text continues lazily
            content = line[inside:]
            return bool(content.strip()) and not (
                _HEADING.match(content) or _BREAK.match(content) or Fence.opened_by(content)
            )
        indented = len(line) - len(line.lstrip(" \t")) >= 4 or line.startswith("\t")
        return self.continues or not indented  # else indented code, which nothing continues
