"""A long answer in parts: generated Markdown answers, streamed in random chunks into a real
:class:`~allm_jupyter.view.NotebookView`, must show exactly the one output a short answer would be,
with no cut inside a block (markdown-it with its math rules is the oracle) and no closed part ever
drawn again.

Parts are made small here (``MIN_PART`` drawn by hypothesis) so that short generated answers are
cut many times; the product's sizes only change how often.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

from displays import Display, FakeClock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from mdit_py_plugins.amsmath import amsmath_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin

from allm_jupyter import segments
from allm_jupyter.render import render_markdown, render_plain
from allm_jupyter.reply import Reply
from allm_jupyter.segments import MAX_PARTS, next_cut, part_size
from allm_jupyter.view import FrontEndBudget, NotebookView

_INLINE_ALPHABET = st.sampled_from(
    list("abcdefgh   XYZ0123") + list("*_`[]()<>&$\\#-+.!|~>:/\"'{}") + ["é", "😀", "\t"]
)
inline = st.text(_INLINE_ALPHABET, max_size=40)
words = st.text(st.sampled_from(list("abcdefgh ")), min_size=1, max_size=30).filter(str.strip)


@st.composite
def heading(draw: st.DrawFn) -> str:
    return "#" * draw(st.integers(1, 6)) + " " + draw(words)


@st.composite
def paragraph(draw: st.DrawFn) -> str:
    lines = draw(st.lists(inline, min_size=1, max_size=3))
    link = draw(st.sampled_from(["", " see [the guide](https://example.org/a)", " **bold** `x`"]))
    return "\n".join(lines) + link


@st.composite
def bullet_list(draw: st.DrawFn) -> str:
    marker = draw(st.sampled_from(["- ", "* ", "1. ", "2) "]))
    items = []
    for _ in range(draw(st.integers(1, 4))):
        item = marker + draw(inline)
        if draw(st.booleans()):
            item += "\n" + draw(st.sampled_from(["  ", "   ", "    ", "\t"])) + draw(words)
        if draw(st.booleans()):
            item += "\n\n  - nested " + draw(words)
        items.append(item)
    return draw(st.sampled_from(["\n", "\n\n"])).join(items)


@st.composite
def fence(draw: st.DrawFn) -> str:
    mark = draw(st.sampled_from(["```", "````", "~~~"]))
    indent = draw(st.sampled_from(["", "", " ", "   "]))
    body = draw(st.lists(st.one_of(inline, st.just(""), st.just("```"), st.just("$$")), max_size=6))
    closing = draw(st.sampled_from([indent + mark, mark + "`", ""]))
    return "\n".join([indent + mark + draw(st.sampled_from(["", "python", "md"])), *body, closing])


@st.composite
def table(draw: st.DrawFn) -> str:
    rows = draw(st.lists(st.tuples(words, inline), min_size=1, max_size=3))
    return "| a | b |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


@st.composite
def quote(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.one_of(inline, st.just("")), min_size=1, max_size=4))
    return "\n".join(f"> {line}" if line else draw(st.sampled_from([">", ""])) for line in lines)


@st.composite
def math(draw: st.DrawFn) -> str:
    body = "\n".join(draw(st.lists(st.one_of(words, st.just("")), max_size=4)))
    return draw(
        st.sampled_from(
            [
                f"$$\n{body}\n$$",
                f"$$ {body}",
                f"\\begin{{align}}\n{body}\n\\end{{align}}",
                f"$x$ and $${body}$$",
            ]
        )
    )


html = st.sampled_from(
    ["<div>\n\ntext\n\n</div>", "<!--\n\nhidden\n\n-->", "<pre>\n\nx\n\n</pre>", "<details>"]
)
indented_code = st.lists(words, min_size=1, max_size=3).map(lambda ls: "    " + "\n\n    ".join(ls))
free_text = st.text(st.sampled_from(list("ab *-#>`$|\n\r\t<")), max_size=60)
block = st.one_of(
    heading(), paragraph(), bullet_list(), fence(), table(), quote(), math(), html,
    indented_code, free_text, st.just("---"),
)  # fmt: skip
separator = st.sampled_from(["\n", "\n\n", "\n\n", "\n\n\n", "\r\n\r\n", "\n \n", "\n\t\n"])


@st.composite
def answers(draw: st.DrawFn) -> str:
    blocks = draw(st.lists(block, min_size=1, max_size=25))
    text = "".join(item + draw(separator) for item in blocks)
    if draw(st.booleans()):
        text = text.rstrip("\n")  # the last line still arriving
    thinking = draw(
        st.sampled_from(["", "<think>weighing it\n\n- a\n\n```\nx\n\ny\n```\n</think>"])
    )
    return thinking + text


@st.composite
def chunked(draw: st.DrawFn) -> tuple[str, list[int]]:
    text = draw(answers())
    ends, end = [], 0
    while end < len(text):
        end = min(len(text), end + draw(st.integers(1, 120)))
        ends.append(end)
    return text, ends


def oracle(*, math_over_blank_lines: bool) -> MarkdownIt:
    """markdown-it with tables and math. JupyterLab (and Notebook 7) end any math at a blank line;
    markdown-it's math rules, like VS Code's, let a top-level block hold blank lines."""
    md = MarkdownIt("commonmark").enable("table")
    dollarmath_plugin(md, allow_blank_lines=math_over_blank_lines)
    if math_over_blank_lines:
        amsmath_plugin(md)
    return md


ORACLE = oracle(math_over_blank_lines=False)


@dataclass
class Growing:
    """A reply's text arriving chunk by chunk."""

    text: str = ""

    @property
    def reply(self) -> Reply:
        return Reply(text=self.text)


@contextmanager
def small_parts(size: int) -> Iterator[None]:
    with patch.object(segments, "MIN_PART", size):
        yield


def stream(text: str, ends: list[int], final: Reply) -> Display:
    clock = FakeClock()
    display = Display(clock)
    source = Growing()
    view = NotebookView(
        "research", clock=clock, display=display, ticker=False, budget=FrontEndBudget(1e12)
    )
    view.attach(source)
    for end in ends:
        source.text = text[:end]
        clock.now += 1.0  # every chunk is drawn
        view.arrived()
        view.draw_due()
    view.close(final)
    return display


def top_level_ranges(markdown: str, md: MarkdownIt = ORACLE) -> list[tuple[int, int]]:
    """The line ranges of the top-level blocks markdown-it sees."""
    return [
        (token.map[0], token.map[1])
        for token in md.parse(markdown)
        if token.level == 0 and token.map is not None
    ]


def cuts_inside(display: Display, whole: str, md: MarkdownIt) -> list[tuple[int, int]]:
    """The top-level blocks a cut between two outputs falls in (none, if all is well)."""
    outputs = [display.last(index).bundle["text/markdown"] for index in range(len(display.outputs))]
    offset, ranges, inside = 0, top_level_ranges(whole, md), []
    for part in outputs[:-1]:
        offset += len(part)
        assert whole[offset - 1] == "\n", "a part ends with its line"
        line = whole.count("\n", 0, offset)
        inside += [(start, stop) for start, stop in ranges if start < line < stop]
    return inside


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked(), st.integers(0, 200))
def test_parts_join_to_the_one_output_and_cut_no_block(
    case: tuple[str, list[int]], min_part: int
) -> None:
    text, ends = case
    final = Reply(text=text, complete=True)
    with small_parts(min_part):
        display = stream(text, ends, final)
    whole = render_markdown(final, final=True)
    assert display.shown() == whole
    assert display.shown("text/plain") == render_plain(final, final=True)
    outputs = [display.last(index).bundle["text/markdown"] for index in range(len(display.outputs))]
    assert len(outputs) <= MAX_PARTS
    for index in range(len(outputs) - 1):  # a closed part is never drawn again
        opened_next = next(n for n, u in enumerate(display.updates) if u.output == index + 1)
        assert all(u.output != index for u in display.updates[opened_next:])
    assert cuts_inside(display, whole, ORACLE) == [], whole


MATH_OVER_BLANK_LINES = oracle(math_over_blank_lines=True)
top_level = st.one_of(heading(), paragraph(), math(), table(), free_text.map(str.strip))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(top_level, separator), min_size=1, max_size=25), st.integers(0, 100))
def test_no_cut_falls_in_top_level_math_that_holds_blank_lines(
    blocks: list[tuple[str, str]], min_part: int
) -> None:
    """For renderers whose display math may hold blank lines (markdown-it's, VS Code's)."""
    text = "".join(block + separator for block, separator in blocks)
    final = Reply(text=text, complete=True)
    with small_parts(min_part):
        display = stream(text, [*range(1, len(text) + 1, 17), len(text)], final)
    whole = render_markdown(final, final=True)
    assert cuts_inside(display, whole, MATH_OVER_BLANK_LINES) == [], whole


@settings(max_examples=200, deadline=None)
@given(answers(), st.integers(0, 100))
def test_a_cut_does_not_move_as_the_text_grows(text: str, min_part: int) -> None:
    """Cuts are found on complete lines only: a cut in a prefix is a cut in the whole."""
    with small_parts(min_part):
        for end in range(0, len(text), 7):
            cut = next_cut(text[:end], 0, part_size(0))
            if cut is not None:
                assert next_cut(text, 0, part_size(0)) == cut


def test_parts_stay_few_whatever_the_length() -> None:
    section = "## Heading\n\nA paragraph with **bold**, `code` and a [link](https://x.org).\n\n"
    text = section * (3_000_000 // len(section))
    cuts, start = [], 0
    while (cut := next_cut(text, start, part_size(start))) is not None:
        cuts.append(cut)
        start = cut
    assert MAX_PARTS <= len(cuts) + 1 < 50  # past the cap the view stops cutting
    one_megabyte = sum(cut <= 1_000_000 for cut in cuts) + 1
    assert one_megabyte < MAX_PARTS


def test_the_docs_give_the_part_sizes_of_the_code() -> None:
    magic = (Path(__file__).resolve().parent.parent / "docs" / "magic.md").read_text()
    text = " ".join(magic.split())
    assert f"long enough ({segments.MIN_PART:,} characters, then a twelfth" in text
    assert segments.GROWTH == 12
    assert f"An answer has at most {MAX_PARTS} outputs" in text
