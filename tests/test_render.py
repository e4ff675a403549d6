"""Rendering a reply: exact Markdown for real replies, and no way for server text to reach the DOM.

Safety is checked twice: on our Markdown itself (no ``<`` outside code and our own tags), and on the
HTML that real Markdown renderers make of it, with raw HTML allowed as JupyterLab allows it and
their own link filters switched off, so only our escaping stands between the text and the page.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any

import pytest
from captures import load
from hypothesis import given, settings
from hypothesis import strategies as st

from allm_jupyter.events import FileDownload, parse_event
from allm_jupyter.models import Metrics, Source
from allm_jupyter.render import (
    counted,
    escape_markdown_html,
    literal_markdown,
    render_markdown,
    render_plain,
    status_line,
)
from allm_jupyter.reply import Reply, ReplyBuilder, fold

# --- what "safe" means ------------------------------------------------------------------------

SAFE_HREF = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
SAFE_SRC = re.compile(r"https?:", re.IGNORECASE)
SAFE_CLASS = re.compile(
    r"language-[\w+#.-]+|task-list-item(?:-checkbox)?|tex2jax_ignore mathjax_ignore"
)
BLOCK_TAGS = {"p", "pre", "ul", "ol", "li", "blockquote", "hr", "details", "summary"}
INLINE_TAGS = {"em", "strong", "del", "s", "code", "a", "img", "br", "input", "span"}
TABLE_TAGS = {"table", "thead", "tbody", "tr", "th", "td"}
ALLOWED_TAGS = BLOCK_TAGS | INLINE_TAGS | TABLE_TAGS | {f"h{level}" for level in range(1, 7)}
ALLOWED_ATTRIBUTES = {"href", "src", "alt", "title", "class", "start", "style", "align", "type"}
ALLOWED_ATTRIBUTES |= {"checked", "disabled"}  # GFM task boxes
OUR_MARKUP = re.compile(
    r"<details><summary>[^<]*</summary>|</details>|<br>|<code>[^<]*</code>"
    r'|<span class="tex2jax_ignore mathjax_ignore">|</span>'
)
CANONICAL_FENCE = re.compile(r"^( *)(`{3,})[\w+#.-]*\n.*?^\1\2$", re.MULTILINE | re.DOTALL)


class Audit(HTMLParser):
    """Everything in rendered HTML that could run script or leave the allowed set."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name not in ALLOWED_ATTRIBUTES:
                self.problems.append(f"<{tag} {name}=…>")
            elif name == "href" and not SAFE_HREF.match(value or ""):
                self.problems.append(f"href={value!r}")
            elif name == "src" and not SAFE_SRC.match(value or ""):
                self.problems.append(f"src={value!r}")
            elif name == "class" and not SAFE_CLASS.fullmatch(value or ""):
                self.problems.append(f"class={value!r}")

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"<?{data}>")

    unknown_decl = handle_decl


def audit(html: str) -> list[str]:
    parser = Audit()
    parser.feed(html)
    parser.close()
    return parser.problems


def outside_code(markdown: str) -> str:
    """Our Markdown without its fenced code blocks and our own tags: no ``<`` may remain."""
    return OUR_MARKUP.sub("", CANONICAL_FENCE.sub("", markdown))


def markdown_it() -> Callable[[str], str]:
    module = pytest.importorskip("markdown_it")
    md = module.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # JupyterLab's marked has no link filter either
    return md.render


def mistune() -> Callable[[str], str]:
    module = pytest.importorskip("mistune")

    class Unfiltered(module.HTMLRenderer):  # type: ignore[name-defined,misc]
        def safe_url(self, url: str) -> str:
            return url

    plugins = ["table", "strikethrough", "task_lists"]
    return module.create_markdown(renderer=Unfiltered(escape=False), plugins=plugins)


@pytest.fixture(scope="module", params=[markdown_it, mistune], ids=["markdown-it", "mistune"])
def to_html(request: pytest.FixtureRequest) -> Callable[[str], str]:
    return request.param()


HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<svg onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "<!-- <img src=x onerror=alert(1)> -->",
    "<details open ontoggle=alert(1)>",
    "</details><img src=x onerror=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<?xml?><x onload=alert(1)>",
    "<![CDATA[<img src=x onerror=alert(1)>]]>",
    "<img\nsrc=x\nonerror=alert(1)>",
    "<div\nonmouseover=alert(1)>hover</div>",
    "&#60;img src=x onerror=alert(1)&#62;",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java&#115;cript:alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x]( javascript:alert(1) )",
    "[x](\\javascript:alert(1))",
    "[x](data:text/html,<script>alert(1)</script>)",
    "[x](vbscript:msgbox(1))",
    "[x](file:///etc/passwd)",
    "[x](//evil.example/x)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    "![x](mailto:a@b.c)",
    "[![x](javascript:alert(1))](javascript:alert(2))",
    '![x"onerror="alert(1)](https://example.com/i.png)',
    "[\\[x\\](javascript:alert(1))](https://example.com)",
    "<javascript:alert(1)>",
    "<vbscript:msgbox(1)>",
    "[x][1]\n\n[1]: javascript:alert(1)",
    "[x]\n\n[x]: <javascript:alert(1)> 'title'",
    "- [x]: javascript:alert(1)\n- [x]",
    '[x](https://example.com/"onmouseover="alert(1))',
    '<https://example.com/"onmouseover="alert(1)>',
    "\\<img src=x onerror=alert(1)>",
    "\\\\<img src=x onerror=alert(1)>",
    "\\`<img src=x onerror=alert(1)>\\`",
    "`x` <img src=x onerror=alert(1)> `",
    "`unclosed <img src=x onerror=alert(1)>",
    "`a\n<img src=x onerror=alert(1)>`",
    "*a ``<img src=x onerror=alert(1)>*`` c*",
    "[a ``](javascript:alert(1))`` b](https://example.com)",
    "| a | b |\n|---|---|\n| `x|<img src=x onerror=alert(1)>|y` | z |",
    "| a |\n|---|\n| `|` `<img src=x onerror=alert(1)>` |",
    "```\ncode\n```\n<img src=x onerror=alert(1)>",
    "```js\n</code></pre><img src=x onerror=alert(1)>\n```",
    "- item\n  ```\n  code\n<img src=x onerror=alert(1)>\n  ```",
    "> ```\n> <img src=x onerror=alert(1)>\n```",
    "- ~~~\n  ```\n~~~\n<img src=x onerror=alert(1)>\n  ```",
    "> ~~~\n> ```\n> ~~~\n> <img src=x onerror=alert(1)>\n```",
    "~~~\n```\n~~~\n<img src=x onerror=alert(1)>",
    "```\n````\n<img src=x onerror=alert(1)>",
    "```\n```~\n<img src=x onerror=alert(1)>\n```",
    '```x" onload="alert(1)\n<b>\n```',
    "<think><img src=x onerror=alert(1)></think><script>alert(1)</script>",
]


# --- exact output for real replies --------------------------------------------------------------


def fold_capture(name: str, **context: Any) -> Reply:
    return fold([parse_event(e) for e in load(name).events()], **context)


def cut_capture(name: str) -> Reply:
    """The reply so far when the connection broke: the stream never ended normally."""
    builder = ReplyBuilder()
    for event in load(name).events():
        builder.add(parse_event(event))
    return builder.reply


CAPTURE_ANSWER = 'Fake reply 0c3d2b20: you said "Where is the Wire Test facility?". The end.'
CAPTURE_SNIPPET = (
    "The Wire Test facility is located on Loopback Lane. Its mascot is a blue heron named Packet. "
    "Opening hours are nine to five on weekdays. The cafeteria serves soup every Tuesday."
)


def test_final_query_reply_shows_answer_sources_and_footer() -> None:
    reply = fold_capture("stream-chat-query-mode-with-doc.txt", workspace="wire-test")
    assert render_markdown(reply, final=True) == (
        f"{CAPTURE_ANSWER}\n\n"
        "<details><summary>Sources (1)</summary>\n\n"
        f"1. **wire-fact-sheet.txt** · 99%<br>{CAPTURE_SNIPPET}\n\n"
        "</details>\n\n"
        "*workspace wire-test · fake-model · 516 tokens · 6500 tok/s · 0.00 s*"
    )
    assert render_plain(reply, final=True) == (
        f"{CAPTURE_ANSWER}\n\n"
        "Sources:\n1. wire-fact-sheet.txt (99%)\n\n"
        "workspace wire-test · fake-model · 516 tokens · 6500 tok/s · 0.00 s"
    )


def test_while_streaming_there_are_no_sources_and_no_footer() -> None:
    reply = fold_capture("stream-chat-query-mode-with-doc.txt")
    assert render_markdown(reply) == CAPTURE_ANSWER
    assert render_plain(reply) == CAPTURE_ANSWER


def test_sources_link_only_http_urls_and_shorten_snippets_on_a_word() -> None:
    body = "word " * 100
    sources = (
        Source(title="guide.pdf", text=f"<document_metadata>\nx\n</document_metadata>\n\n{body}"),
        Source(title="Paper (v2) *draft*", url="https://example.org/a b(c)?x=1&y=2", score=0.71),
        Source(title="notes", url="file:///srv/notes.txt", chunk_source="https://wiki.example/n"),
        Source(title="local", url="file:///srv/local.txt", score=0.0),
    )
    markdown = render_markdown(Reply(text="A.", sources=sources, complete=True), final=True)
    items = markdown.split("\n\n")[2].split("\n")
    assert items[0] == "1. **guide.pdf**<br>" + "word " * 59 + "word…"
    assert items[1] == (
        "2. **[Paper (v2) &#42;draft&#42;](https://example.org/a%20b%28c%29?x=1&amp;y=2)** · 71%"
    )
    assert items[2] == "3. **[notes](https://wiki.example/n)**"
    assert items[3] == "4. **local** · 0%"
    plain = render_plain(Reply(text="A.", sources=sources, complete=True), final=True)
    assert plain.split("\n\n")[1] == (
        "Sources:\n"
        "1. guide.pdf\n"
        "2. Paper (v2) *draft* (71%) https://example.org/a b(c)?x=1&y=2\n"
        "3. notes https://wiki.example/n\n"
        "4. local (0%)"
    )


def test_footer_shows_only_the_parts_present_and_none_without_metrics() -> None:
    reply = Reply(text="A.", complete=True, metrics=Metrics(output_tps=4.25))
    assert render_markdown(reply, final=True) == "A.\n\n*4.2 tok/s*"
    assert render_markdown(replace(reply, metrics=None), final=True) == "A."
    assert render_plain(replace(reply, metrics=Metrics()), final=True) == "A."


def test_the_footer_says_where_the_answer_was_asked_and_counts_agree() -> None:
    reply = Reply(text="A.", complete=True, workspace="research", thread="t-1")
    one = replace(reply, metrics=Metrics(total_tokens=1))
    assert render_markdown(one, final=True) == "A.\n\n*workspace research · thread t-1 · 1 token*"
    assert render_plain(one, final=True) == "A.\n\nworkspace research · thread t-1 · 1 token"
    assert render_plain(replace(reply, thread=None), final=True) == "A.\n\nworkspace research"
    assert render_markdown(reply) == "A.", "the footer comes with the end"
    assert [counted(n, "match", "matches") for n in (0, 1, 2, 1000)] == [
        "0 matches",
        "1 match",
        "2 matches",
        "1,000 matches",
    ]


def test_nothing_answered_is_not_called_a_partial_answer() -> None:
    failed = Reply(error="The workspace does not exist.")
    assert render_markdown(failed, final=True, error_below=True) == (
        "**⚠ No answer:** see the error below"
    )
    assert render_plain(replace(failed, text="Half"), final=True, error_below=True) == (
        "Half\n\n⚠ Partial answer: it stopped at the error below"
    )
    stopped = Reply(interrupted=True)
    assert render_markdown(stopped, final=True) == "**■ Stopped by the user:** no answer arrived"


@given(cost=st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_footer_shows_the_cost_when_the_server_reports_it(cost: float) -> None:
    priced = Reply(text="A.", complete=True, metrics=Metrics.from_wire({"totalCost": cost}))
    shown = f"${cost:.4f}" if cost < 1 else f"${cost:,.2f}"
    assert render_plain(priced, final=True) == f"A.\n\n{shown}"
    assert shown.lstrip("$") in render_markdown(priced, final=True)
    unpriced = Reply(text="A.", complete=True, metrics=Metrics.from_wire({"totalCost": None}))
    assert render_plain(unpriced, final=True) == "A."


def test_refusal_is_marked_as_the_canned_answer() -> None:
    reply = fold_capture("stream-chat-query-mode-no-docs.txt")
    assert reply.refusal
    refusal = "There is no relevant information in this workspace to answer your query."
    assert render_markdown(reply, final=True) == (
        f"> ℹ️ **No relevant information in the workspace:**\n>\n> {refusal}"
    )
    assert render_plain(reply, final=True) == (
        f"{refusal}\n\nℹ️ No relevant information in the workspace "
        "(query mode answers only from its documents)"
    )
    streamed = render_plain(replace(reply, refusal=False))
    assert render_plain(reply, final=True).startswith(streamed), "plain text only grows"


def test_partial_answer_with_error_keeps_the_text_and_marks_the_end() -> None:
    reply = cut_capture("stream-chat-upstream-midstream-drop.txt")
    reply = replace(reply, error="Connection lost <b>mid</b>-stream")
    assert render_markdown(reply, final=True) == (
        "partial \n\n**⚠ Error:** Connection lost &lt;b&gt;mid&lt;/b&gt;-stream"
    )
    assert (
        render_plain(reply, final=True) == "partial \n\n⚠ Error: Connection lost <b>mid</b>-stream"
    )


def test_server_abort_is_shown_as_an_error() -> None:
    reply = fold_capture("stream-chat-upstream-http500.txt")
    assert render_markdown(reply, final=True) == "**⚠ Error:** 500 fake upstream exploded"
    assert render_markdown(reply) == "**⚠ Error:** 500 fake upstream exploded"


def test_a_stream_that_ended_early_is_marked_stopped() -> None:
    reply = cut_capture("stream-chat-upstream-midstream-drop.txt")
    expected = "**⚠ Stopped:** the answer ended before the server finished it"
    assert render_markdown(reply, final=True) == f"partial \n\n{expected}"
    assert render_markdown(reply) == "partial "  # still streaming: nothing is wrong yet


def test_interrupted_reply_is_marked_stopped_by_the_user() -> None:
    reply = Reply(text="Half an answer", interrupted=True)
    marker = "**■ Stopped by the user:** partial answer"
    assert render_markdown(reply, final=True) == f"Half an answer\n\n{marker}"
    assert (
        render_plain(reply, final=True) == "Half an answer\n\n■ Stopped by the user: partial answer"
    )


def test_plain_text_has_no_markup_and_no_terminal_control_codes() -> None:
    reply = Reply(text="<think>hm</think>a <b> & \x1b[2Jb\r\x07\tc\nd", error="bad\x1b]0;x\x07")
    assert render_plain(reply) == "a <b> & [2Jb\tc\nd\n\n⚠ Error: bad]0;x"


def test_empty_final_answer_says_so() -> None:
    assert render_markdown(Reply(complete=True), final=True) == "*(no answer)*"
    assert render_plain(Reply(complete=True), final=True) == ""


def test_agent_files_are_listed_by_name() -> None:
    files = (FileDownload("t", "report <1>.pdf", "abc.pdf"), FileDownload("t", "", "nameless"))
    reply = Reply(text="Done.", complete=True, files=files)
    assert render_markdown(reply, final=True) == "Done.\n\n📎 **Files:** report &lt;1&gt;.pdf"
    assert render_plain(reply, final=True) == "Done.\n\nFiles: report <1>.pdf"


# --- before the first token -----------------------------------------------------------------


def test_status_line_names_the_workspace_or_the_latest_thought() -> None:
    assert status_line("research", 3.7) == "⏳ Asking *research*… 3 s"
    assert status_line(None, 0) == "⏳ Asking AnythingLLM… 0 s"
    assert status_line("my_ws", 1, ["Thinking", "Searching *docs*…", "  "]) == (
        "⏳ Searching &#42;docs&#42;… · 1 s"
    )


def test_status_shows_until_text_arrives() -> None:
    waiting = Reply(workspace="research", thoughts=("Reading `x`",))
    assert render_markdown(waiting, status="⏳ custom") == "⏳ custom"
    assert render_markdown(waiting) == "⏳ Reading &#96;x&#96; · 0 s"
    assert render_markdown(replace(waiting, text="Hi"), status="⏳ custom") == "Hi"
    assert render_plain(waiting) == ""


# --- reasoning ---------------------------------------------------------------------------------


def test_reasoning_is_collapsed_and_escaped() -> None:
    reply = Reply(text="<think>Is 1 < 2? *Yes*.</think>\n\nIt is.", complete=True)
    assert render_markdown(reply, final=True) == (
        "<details><summary>Reasoning</summary>\n\nIs 1 &lt; 2? *Yes*.\n\n</details>\n\nIt is."
    )
    assert render_plain(reply, final=True) == "It is."


def test_streamed_reasoning_never_shows_raw_think_tags() -> None:
    text = "<think>Compare <b> and <i>.\nThen decide.</think>The answer: <b>bold</b>."
    for end in range(len(text) + 1):
        reply = Reply(text=text[:end])
        for markdown in (render_markdown(reply), render_markdown(reply, final=True)):
            assert "<think" not in markdown and "</think" not in markdown, text[:end]
            assert "<b>" not in markdown
    assert render_markdown(Reply(text="<think>Compare")) == (
        "<details><summary>Reasoning</summary>\n\nCompare\n\n</details>\n\n⏳ Thinking…"
    )


# --- escaping: exact forms ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "shown"),
    [
        ("**bold** _em_ # not a heading\n# Heading", "**bold** _em_ # not a heading\n# Heading"),
        ("- a\n- [ ] todo\n1. b\n> quote", "- a\n- [ ] todo\n1. b\n> quote"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "| a | b |\n|---|---|\n| 1 | 2 |"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("&#60;img&#62;", "&amp;#60;img&amp;#62;"),
        ("use `x < y` and `f(a)`", "use <code>x &lt; y</code> and `f(a)`"),
        ("`a[0]`", "<code>a&#91;0&#93;</code>"),
        ("| `a || b` |", "| <code>a &#124;&#124; b</code> |"),
        ("stray ` tick", "stray &#96; tick"),
        ("~~struck~~ and - ~~~", "~~struck~~ and - &#126;&#126;&#126;"),
        ("\\<b\\> \\* \\[x\\]", "&lt;b&gt; &#42; &#91;x&#93;"),
        ("[doc](https://ex.org/a_(b))", "[doc](https://ex.org/a_%28b%29)"),
        ("[doc](<https://ex.org/a b> 'title')", "[doc](https://ex.org/a%20b)"),
        ("[**doc**](mailto:me@ex.org)", "[**doc**](mailto:me@ex.org)"),
        ("[x](javascript:alert(1))", "x"),
        ("[x](data:text/html,hi)", "x"),
        ("![pic](https://ex.org/p.png)", "[🖼 pic](https://ex.org/p.png)"),
        ("![](https://ex.org/?q=secret)", "[🖼 image](https://ex.org/?q=secret)"),
        ("![pic *1*](javascript:x)", "pic &#42;1&#42;"),
        ("[![b](https://i.ex/b.svg)](https://ex.org)", "[b](https://ex.org)"),
        (
            "[a [b](https://x.org) c](https://y.org)",
            "[a &#91;b&#93;(https://x.org) c](https://y.org)",
        ),
        (
            "<https://ex.org/x_y> <me@ex.org>",
            "[https://ex.org/x&#95;y](https://ex.org/x_y) [me@ex.org](mailto:me@ex.org)",
        ),
        ("<javascript:alert(1)>", "&lt;javascript:alert(1)&gt;"),
        ("[x][1]\n\n[1]: https://ex.org", "&#91;x&#93;&#91;1&#93;\n\n&#91;1&#93;: https://ex.org"),
        ("```python\nif a < b:\n```\nafter", "```python\nif a < b:\n```\nafter"),
        ("~~~\n```\n~~~", "````\n```\n````"),
        ("```py\nopen <b>", "```py\nopen <b>\n```"),
        ("```\ncode\n", "```\ncode\n```"),
        ('```x" onload="y\n1\n```', "```x\n1\n```"),
        ("1. step\n   ```sh\n  a && b\n   ```", "1. step\n   ```sh\n   a && b\n   ```"),
        ("a\r\nb\rc", "a\nb\nc"),
    ],
)
def test_escaping_keeps_markdown_and_defuses_html(server: str, shown: str) -> None:
    assert escape_markdown_html(server) == shown


@pytest.mark.parametrize(
    ("server", "shown"),
    [
        ("![pic](https://ex.org/p.png)", "![pic](https://ex.org/p.png)"),
        ('![say "hi"](https://ex.org/p.png)', "![say &#34;hi&#34;](https://ex.org/p.png)"),
        ("![pic *1*](javascript:x)", "pic &#42;1&#42;"),
        (
            "[![b](https://i.ex/b.svg)](https://ex.org)",
            "[![b](https://i.ex/b.svg)](https://ex.org)",
        ),
    ],
)
def test_images_only_when_asked_for(server: str, shown: str) -> None:
    assert escape_markdown_html(server, images=True) == shown
    reply = Reply(text=server, complete=True)
    assert render_markdown(reply, final=True, show_images=True) == shown
    assert "![" not in render_markdown(reply, final=True)


@pytest.mark.parametrize(
    "name", ["Budget $5 to $10", "$x$", "a \\(b\\) c", "\\begin{x}", "$$", "a|b $c$ *d*"]
)
def test_literal_text_is_kept_from_math(name: str, to_html: Callable[[str], str]) -> None:
    shown = literal_markdown(name)
    assert shown.startswith('<span class="tex2jax_ignore mathjax_ignore">')
    assert "$" not in shown and "\\" not in shown and "|" not in shown
    html = to_html(f"| a |\n|---|\n| {shown} |")
    assert html.count("<td>") == 1 and audit(html) == []
    assert literal_markdown("plain name") == "plain name"  # no span where no math can start


# --- escaping: hostile input, on our Markdown and on rendered HTML ------------------------------


@pytest.mark.parametrize("attack", HOSTILE)
def test_hostile_text_leaves_no_html_outside_code(attack: str) -> None:
    markdown = escape_markdown_html(attack)
    assert "<" not in outside_code(markdown), markdown
    assert not re.search(r"\]\((?!https?:|mailto:)", outside_code(markdown)), markdown


@pytest.mark.parametrize("attack", HOSTILE)
def test_hostile_text_renders_to_inert_html(attack: str, to_html: Callable[[str], str]) -> None:
    reply = Reply(
        text=attack,
        error=attack,
        sources=(Source(title=attack, text=attack, url=f"https://x.org/{attack}", score=0.5),),
        metrics=Metrics(model=attack),
        files=(FileDownload(None, attack, "f"),),
        complete=True,
    )
    for markdown in (
        escape_markdown_html(attack),
        render_markdown(reply, final=True),
        render_markdown(replace(reply, refusal=True, error=None), final=True),
        render_markdown(Reply(workspace=attack), status=status_line(attack, 1, [attack])),
    ):
        assert audit(to_html(markdown)) == [], markdown


def test_the_audit_catches_the_raw_attacks(to_html: Callable[[str], str]) -> None:
    """Without our escaping, the same renderers do produce script: the check above has teeth."""
    caught = [attack for attack in HOSTILE if audit(to_html(attack))]
    assert len(caught) > len(HOSTILE) // 2
    for attack in ("<img src=x onerror=alert(1)>", "[x](javascript:alert(1))"):
        assert attack in caught


def test_code_shows_exactly_what_the_server_sent(to_html: Callable[[str], str]) -> None:
    code = 'if a < b && c > d:\n    print("<b>&amp;</b>", x[0])'
    html = to_html(escape_markdown_html(f"```python\n{code}\n```"))
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in html
    assert code_texts(html) == [code + "\n"]
    html = to_html(escape_markdown_html("Call `f(a[0], b < c)` then `g()`."))
    assert code_texts(html) == ["f(a[0], b < c)", "g()"]


class CodeText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "code":
            self.depth += 1
            self.texts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "code":
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.texts[-1] += data


def code_texts(html: str) -> list[str]:
    parser = CodeText()
    parser.feed(html)
    parser.close()
    return parser.texts


# --- properties ----------------------------------------------------------------------------------

FRAGMENTS = [
    *"<>&[]()!`\\*_|:~$\n\t\r ",
    *["``", "```", "~~~", "    ", "- ", "1. ", "> ", "](", "[x]: ", "|---|", "<!--", "&#60;"],
    *["javascript:alert(1)", "https://x.org/", "mailto:a@b.c", "<img src=x onerror=alert(1)>"],
    *["<script>", "</details>", "<think>", "</think>", "www.x.org", "a@b.c"],
]
MARKDOWNISH = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(HOSTILE), st.text(max_size=4)),
    max_size=40,
).map("".join)


@given(MARKDOWNISH)
def test_no_tag_outside_code_for_any_text(text: str) -> None:
    markdown = escape_markdown_html(text)
    assert "<" not in outside_code(markdown)
    assert not re.search(r"\]\((?!https?:|mailto:)", outside_code(markdown))


@settings(max_examples=200, deadline=None)
@given(MARKDOWNISH)
def test_any_text_renders_to_inert_html(to_html: Callable[[str], str], text: str) -> None:
    reply = Reply(
        text=text,
        error=text or None,
        sources=(Source(title=text or "t", text=text, url=f"https://x.org/{text}", score=0.1),),
        metrics=Metrics(model=text or None),
        complete=True,
    )
    assert audit(to_html(escape_markdown_html(text))) == []
    assert audit(to_html(render_markdown(reply, final=True))) == []
    assert audit(to_html(render_markdown(replace(reply, refusal=True), final=True))) == []


PLAIN = st.text(st.characters(blacklist_characters="\\`[]<>&~\r", blacklist_categories=["Cs"]))


@given(PLAIN)
def test_text_without_special_characters_passes_unchanged(text: str) -> None:
    assert escape_markdown_html(text) == text


CODE_LINE = st.text(st.characters(blacklist_characters="\r\n\x00`~", blacklist_categories=["Cs"]))


@given(st.lists(st.one_of(CODE_LINE, st.sampled_from(["```", "``` x", "  ````", "~~~"]))))
def test_fenced_code_keeps_its_exact_text(to_html: Callable[[str], str], lines: list[str]) -> None:
    code = "\n".join(lines)  # backtick fences and shorter tilde fences are text in a ~~~~ fence
    html = to_html(escape_markdown_html(f"~~~~\n{code}\n~~~~\nafter <b>"))
    assert code_texts(html) == [code + "\n"]
    assert "&lt;b&gt;" in html


SPAN_BODY = st.text(
    st.characters(blacklist_characters="`\r\n\x00", blacklist_categories=["Cs"]), min_size=1
)


@given(SPAN_BODY)
def test_code_spans_keep_their_exact_text(to_html: Callable[[str], str], body: str) -> None:
    shown = body[1:-1] if body[0] == body[-1] == " " and body.strip(" ") else body
    html = to_html(escape_markdown_html(f"x `{body}` y"))
    assert code_texts(html) == [shown]


# --- long answers ---------------------------------------------------------------------------------


def test_a_long_answer_renders_whole_and_escaped() -> None:
    """200 KB of dense Markdown, every line new (its speed is measured in benchmarks/)."""
    paragraph = (
        "Some **bold** text with `code <x>`, a [link](https://example.org/a_(b)) and a < b & c. "
        "Then [x][1] and ![img](https://example.org/i.png) and `a[0]` and stray ` ticks."
    )
    block = "```python\nfor i in range(10):\n    print(i < 3, '<b>')\n```"
    salt = uuid.uuid4().hex
    lines = [f"{paragraph} {salt} {n}" for n in range(1800)]
    lines[::40] = [block] * len(lines[::40])
    answer = "\n".join(lines)[:200_000]
    markdown = render_markdown(Reply(text=answer))
    assert len(answer) == 200_000 and "a &lt; b &amp; c" in markdown and "'<b>'" in markdown
    assert render_markdown(Reply(text=answer + " and one more chunk")).startswith(markdown[:1000])
