"""The ``%allm`` line magic's sub-commands: status, workspaces, use, config, threads, history, …

Each shows a Markdown table or line with a plain-text twin. Server text in table cells (names,
snippets, history) is literal: it reads exactly as written, never as markup or math, since a
workspace name is as untrusted as a document.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError
from .render import escape_markdown_html, literal_markdown, terminal_text
from .settings import Secret, session

if TYPE_CHECKING:
    from .magics import AllmMagics

HELP = """\
**%%allm** `[options]` — the cell body is the question; the answer streams in below.

| option | short | meaning |
|---|---|---|
| `workspace=SLUG` | `-w` | workspace to ask (else the picked one, config, env) |
| `mode=chat\\|query\\|automatic` | `-m` | chat: RAG + model knowledge; query: documents only; automatic: agent when the model calls tools |
| `thread=SLUG\\|new` | `-t` | ask inside a thread; `new` creates one and keeps using it |
| `session=ID` | `-s` | conversation id (default: one per kernel) |
| `out=NAME` | `-o` | also bind the reply to `NAME` (`_allm` always holds the last one) |
| `timeout=SECONDS` | | give up after this long without data (default 120) |
| `reset` | | forget this conversation's history before asking (`%allm reset` only resets) |
| `raw` | | do not replace `{name}` references |

**%allm** `status` · `workspaces` · `use SLUG` · `config` · `threads` · `history [N]` · `reset` ·
`search QUERY` · `upload PATH` · `pick` · `login` · `logout` · `help`, or
`%allm [options] "QUESTION"` (quote a question that ends in `?`: IPython reads a trailing `?` as a help request).
"""


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += [
        "| " + " | ".join(literal_markdown("" if v is None else str(v)) for v in row) + " |"
        for row in rows
    ]
    return "\n".join(lines)


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    texts = [
        [terminal_text(" ".join(str(v).split())) if v is not None else "" for v in row]
        for row in rows
    ]
    widths = [max([len(h)] + [len(r[i]) for r in texts]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*line).rstrip() for line in [headers, *texts])


def show(markdown: str, plain: str) -> None:
    from IPython.display import display

    display({"text/markdown": markdown, "text/plain": plain}, raw=True)


def show_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    show(
        f"**{escape_markdown_html(title)}**\n\n{markdown_table(headers, rows)}",
        f"{title}\n{plain_table(headers, rows)}",
    )


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def table(magics: AllmMagics) -> dict[str, Callable[[str], Any]]:
    """The sub-commands, bound to one magics instance."""

    def help_(_: str) -> None:
        show(HELP, HELP.replace("**", "").replace("`", "").replace("\\|", "|"))

    def status(_: str) -> None:
        settings = magics.resolve()
        client = magics.client(settings)
        info = client.server_info()
        if not info.reachable:
            key = "unknown"
        elif not client.has_api_key:
            key = "unset"
        else:
            key = "valid" if client.auth() else "rejected"
        rows = [
            ("server", info.base_url),
            ("reachable", "yes" if info.reachable else f"no — {info.reason}"),
            ("api key", key),
            ("version", info.version or "unknown"),
            ("workspace", settings.workspace.value or "none chosen"),
        ]
        show_table("AnythingLLM status", ("", "state"), rows)

    def workspaces(_: str) -> None:
        settings = magics.resolve()
        found = magics.client(settings).workspaces()
        current = settings.workspace.value
        rows = [
            ("▶" if w.slug == current else "", w.name, w.slug, w.chat_mode or "", len(w.threads))
            for w in found
        ]
        show_table(f"{len(found)} workspaces", ("", "name", "slug", "mode", "threads"), rows)

    def use(rest: str) -> None:
        slug = rest.strip()
        if not slug:
            raise ConfigurationError("Say which workspace: %allm use SLUG.")
        workspace = magics.client(magics.resolve()).workspace(slug)
        session.choose(workspace=workspace.slug, thread=None)
        print(terminal_text(f"Using workspace {workspace.name} ({workspace.slug})."))

    def config(_: str) -> None:
        rows = magics.resolve().rows()
        rows.append(("session_id", session.session_id, "kernel"))
        show_table(
            "allm settings (cell > session > config > env > default)",
            ("setting", "value", "from"),
            rows,
        )

    def threads(_: str) -> None:
        settings = magics.resolve()
        slug = magics.workspace_or_fail(settings)
        found = magics.client(settings).threads(slug)
        current = settings.thread.value
        rows = [("▶" if t.slug == current else "", t.name or "", t.slug) for t in found]
        show_table(f"Threads of {slug}", ("", "name", "slug"), rows)

    def history(rest: str) -> None:
        try:
            limit = int(rest.strip() or 10)
        except ValueError:
            raise ConfigurationError(
                f"history takes a number of exchanges, not '{rest}'."
            ) from None
        settings = magics.resolve()
        slug = magics.workspace_or_fail(settings)
        messages = magics.client(settings).history(
            slug, session_id=session.session_id, thread=settings.thread.value, limit=limit
        )
        rows = [
            (
                datetime.fromtimestamp(m.sent_at, timezone.utc).strftime("%Y-%m-%d %H:%M")
                if m.sent_at
                else "",
                m.role,
                _short(m.content),
            )
            for m in messages
        ]
        show_table(f"Last {limit} exchanges in {slug}", ("sent (UTC)", "role", "text"), rows)

    def reset(_: str) -> None:
        settings = magics.resolve()
        slug = magics.workspace_or_fail(settings)
        magics.client(settings).chat(
            slug, "", session_id=session.session_id, thread=settings.thread.value, reset=True
        )
        print(f"This notebook's conversation in {slug} was reset.")

    def search(rest: str) -> None:
        query = rest.strip()
        if not query:
            raise ConfigurationError("Say what to search for: %allm search QUERY.")
        settings = magics.resolve()
        slug = magics.workspace_or_fail(settings)
        results = magics.client(settings).vector_search(slug, query)
        rows = [
            (f"{r.score:.0%}" if r.score is not None else "", r.title, _short(r.text))
            for r in results
        ]
        show_table(f"{len(results)} matches in {slug}", ("score", "source", "text"), rows)

    def upload(rest: str) -> None:
        path = rest.strip().strip("\"'")
        if not path:
            raise ConfigurationError("Say which file: %allm upload PATH.")
        settings = magics.resolve()
        slug = magics.workspace_or_fail(settings)
        documents = magics.client(settings).upload(path, slug)
        rows = [(d.title or d.filename, d.docpath) for d in documents]
        show_table(f"Embedded into {slug}", ("document", "path"), rows)

    def pick(_: str) -> Any:
        from .widgets import WorkspacePicker

        return WorkspacePicker()

    def login(_: str) -> None:
        value = getpass.getpass("AnythingLLM API key (not saved in the notebook): ")
        magics.set_login_key(Secret(value))
        print("API key set for this kernel." if value.strip() else "No key entered.")

    def logout(_: str) -> None:
        magics.set_login_key(None)
        print("The API key typed with %allm login is forgotten.")

    return {
        "help": help_,
        "status": status,
        "workspaces": workspaces,
        "use": use,
        "config": config,
        "threads": threads,
        "history": history,
        "reset": reset,
        "search": search,
        "upload": upload,
        "pick": pick,
        "login": login,
        "logout": logout,
    }
