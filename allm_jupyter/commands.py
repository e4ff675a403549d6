"""The ``%allm`` commands: plain functions over a :class:`~allm_jupyter.context.Context`.

Each returns what to show (a :class:`Table`, a :class:`Message`, :class:`Markdown` or a widget) and
displays nothing itself: the magic is the one place that shows results, so every command can be
called and tested on its own. Server text in table cells (names, snippets, history) is literal: it
reads exactly as written, never as markup or math, since a workspace name is as untrusted as a
document.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .attachments import is_dataframe, table
from .attachments import resolve as resolve_reference
from .config import HISTORY_LIMIT
from .context import Context
from .errors import AllmError, AttachmentError, ConfigurationError, UploadError
from .models import ServerInfo
from .options import help_rows
from .question import interpolate
from .render import counted, literal_markdown, markdown_table, plain_table
from .secret import Secret
from .settings import API_KEY_ENV

if TYPE_CHECKING:
    from .models import ServerInfo


@dataclass(frozen=True)
class Table:
    """Rows with a title; shown as a Markdown table, or aligned plain text in a terminal."""

    title: str
    headers: tuple[str, ...]
    rows: Sequence[Sequence[object]]

    def markdown(self) -> str:
        return f"**{literal_markdown(self.title)}**\n\n{markdown_table(self.headers, self.rows)}"

    def plain(self) -> str:
        return f"{self.title}\n{plain_table(self.headers, self.rows)}"


@dataclass(frozen=True)
class Message:
    """One line of plain text."""

    text: str


@dataclass(frozen=True)
class Markdown:
    """Markdown with its plain-text twin."""

    markdown: str
    plain: str


@dataclass(frozen=True)
class Ask:
    """A one-line question for the magic to stream, its options not yet parsed (``%allm explain``)."""

    line: str


Output = Table | Message | Markdown | Ask | Any
"""What a command returns; ``Any`` is a widget (``%allm pick``)."""


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    run: Callable[[Context, str], Output]
    expands: bool = True
    """Whether the magic expands ``{x}`` and ``$x`` in the argument as IPython does; free text
    (a question, a search) keeps them for the question's own rules."""

    @property
    def takes_argument(self) -> bool:
        """``%allm status of X`` is an error, not the status: words after a command that takes
        none are a question that happens to start with its name."""
        return len(self.usage.split()) > 1


COMMANDS: dict[str, Command] = {}


def command(
    usage: str, summary: str, *, expands: bool = True
) -> Callable[[Callable[[Context, str], Output]], Any]:
    """Register a function as ``%allm NAME``; ``usage`` and ``summary`` feed ``%allm help``."""

    def register(run: Callable[[Context, str], Output]) -> Callable[[Context, str], Output]:
        name = usage.split()[0]
        COMMANDS[name] = Command(name, usage, summary, run, expands)
        return run

    return register


UNREADABLE = "?"
"""A table cell whose server value is missing or does not convert (see ``models``)."""


def _unquoted(argument: str) -> str:
    """A name as typed, without one pair of quotes around it (``"My docs"``); a quote that is
    part of the name (``Students'``) stays."""
    text = argument.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


@command("help", "this help")
def help_(context: Context, _: str) -> Markdown:
    option_rows = [
        (f"`{usage}`", f"`{short}`" if short else "", meaning)
        for usage, short, meaning in help_rows()
    ]
    command_rows = [(f"`%allm {c.usage}`", c.summary) for c in COMMANDS.values()]
    markdown = "\n\n".join(
        [
            "**%%allm** `[options]` — the cell body is the question; the answer streams in below.",
            _raw_table(("option", "short", "meaning"), option_rows),
            "**%allm** commands, or `%allm [options] QUESTION` for a one-line question:",
            _raw_table(("command", "does"), command_rows),
        ]
    )
    plain = "\n\n".join(
        [
            "%%allm [options]: the cell body is the question; the answer streams in below.",
            plain_table(("option", "short", "meaning"), [_unticked(r) for r in help_rows()]),
            "%allm commands, or %allm [options] QUESTION for a one-line question:",
            plain_table(
                ("command", "does"), [(f"%allm {c.usage}", c.summary) for c in COMMANDS.values()]
            ),
        ]
    )
    return Markdown(markdown, plain)


def _raw_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of our own Markdown (help text is ours, not the server's, so it is not escaped)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _unticked(row: Sequence[str]) -> tuple[str, ...]:
    return tuple(cell.replace("`", "") for cell in row)


@command("status", "the server, whether it answers, the key, the version, the workspace")
def status(context: Context, _: str) -> Table:
    settings = context.resolve()
    rows: list[tuple[str, str]] = [("server", settings.base_url.value)]
    try:
        client = context.client(settings)
    except AllmError as exc:  # a malformed URL: the table still says what is wrong
        rows.append(("reachable", f"no — {exc.message}"))
        return Table("AnythingLLM status", ("", "state"), rows)
    info = client.server_info()
    if not info.reachable:
        key = "unknown (the server cannot be reached)"
    elif not info.anythingllm:
        key = "unknown"
    elif not client.has_api_key:
        key = f"unset — set {API_KEY_ENV} or run %allm login"
    else:
        key = "valid" if client.auth() else f"rejected (from {settings.origin.api_key})"
    reachable = "yes" if info.reachable and info.anythingllm else f"no — {info.reason}"
    rows += [
        ("reachable", reachable),
        ("api key", key),
        ("version", info.version or _unknown_version(info)),
    ]
    if info.mode:
        rows.append(("server mode", info.mode))
    if info.vector_db:
        rows.append(("vector database", info.vector_db))
    rows.append(("workspace", settings.workspace.value or "none chosen"))
    return Table("AnythingLLM status", ("", "state"), rows)


def _unknown_version(info: ServerInfo) -> str:
    """The server reports no version outside Docker; its git commit, where it has one, helps."""
    if not info.reachable:
        return "unknown (the server cannot be reached)"
    if not info.anythingllm:
        return "unknown (not an AnythingLLM server)"
    return (
        f"unknown (build {info.build[:12]})" if info.build else "unknown (the server does not say)"
    )


@command("workspaces", "the server's workspaces")
def workspaces(context: Context, _: str) -> Table:
    settings = context.resolve()
    found = context.client(settings).workspaces()
    current = settings.workspace.value
    rows = [
        ("▶" if w.slug == current else "", w.name, w.slug, w.chat_mode or "", len(w.threads))
        for w in found
    ]
    return Table(counted(len(found), "workspace"), ("", "name", "slug", "mode", "threads"), rows)


@command("use SLUG", "ask this workspace from now on (its slug or its name)")
def use(context: Context, argument: str) -> Message:
    wanted = _unquoted(argument)
    if not wanted:
        raise ConfigurationError("Say which workspace: %allm use SLUG.")
    workspace = context.client().find_workspace(wanted)
    context.session.choose(workspace=workspace.slug, thread=None)
    return Message(f"Using workspace {workspace.name} ({workspace.slug}).")


@command("config", "every setting and where it came from")
def config(context: Context, _: str) -> Table:
    rows = context.resolve().rows()
    rows.append(("session_id", context.session.session_id, "kernel"))
    return Table(
        "allm settings (cell > session > config > env > default)",
        ("setting", "value", "from"),
        rows,
    )


@command("threads", "the threads of the current workspace")
def threads(context: Context, _: str) -> Table:
    settings = context.resolve()
    slug = context.workspace_or_fail(settings)
    found = context.client(settings).threads(slug)
    current = settings.thread.value
    rows = [("▶" if t.slug == current else "", t.name or "", t.slug) for t in found]
    return Table(f"Threads of {slug}", ("", "name", "slug"), rows)


@command("history [N]", "the last N exchanges of this notebook's conversation")
def history(context: Context, argument: str) -> Table:
    try:
        limit = int(argument.strip() or HISTORY_LIMIT)
        if limit < 1:
            raise ValueError(limit)
    except ValueError:
        raise ConfigurationError(
            f"history takes a number of exchanges, not '{argument}'."
        ) from None
    settings = context.resolve()
    slug = context.workspace_or_fail(settings)
    messages = context.client(settings).history(
        slug, session_id=context.session.session_id, thread=settings.thread.value, limit=limit
    )
    rows = [
        (
            datetime.fromtimestamp(m.sent_at, timezone.utc).strftime("%Y-%m-%d %H:%M")
            if m.sent_at is not None
            else UNREADABLE,
            m.role,
            _short(m.content),
        )
        for m in messages
    ]
    return Table(
        f"Last {counted(limit, 'exchange')} in {slug}", ("sent (UTC)", "role", "text"), rows
    )


@command("reset", "forget this notebook's conversation (only this one)")
def reset(context: Context, _: str) -> Message:
    settings = context.resolve()
    slug = context.workspace_or_fail(settings)
    context.client(settings).chat(
        slug, "", session_id=context.session.session_id, thread=settings.thread.value, reset=True
    )
    return Message(f"This notebook's conversation in {slug} was reset.")


@command("search QUERY", "the workspace's chunks closest to QUERY", expands=False)
def search(context: Context, argument: str) -> Table:
    query = interpolate(argument.strip(), context.namespace)  # free text: a question's rules
    if not query:
        raise ConfigurationError("Say what to search for: %allm search QUERY.")
    settings = context.resolve()
    slug = context.workspace_or_fail(settings)
    results = context.client(settings).vector_search(slug, query)
    rows = [
        (f"{r.score:.0%}" if r.score is not None else UNREADABLE, r.title, _short(r.text))
        for r in results
    ]
    return Table(
        f"{counted(len(results), 'match', 'matches')} in {slug}", ("score", "source", "text"), rows
    )


@command(
    "upload PATH|NAME|URL",
    "embed a file, a variable (text or a DataFrame) or a web page into the workspace",
)
def upload(context: Context, argument: str) -> Table:
    wanted = _unquoted(argument)
    if not wanted:
        raise ConfigurationError("Say what to upload: %allm upload PATH, NAME or URL.")
    settings = context.resolve()
    slug = context.workspace_or_fail(settings)
    client = context.client(settings)
    if re.match(r"^https?://", wanted, re.IGNORECASE):
        documents = [client.upload_link(slug, wanted)]
    else:
        value = _variable(context, wanted)
        if isinstance(value, str) or is_dataframe(value):
            # The client takes text only: a DataFrame becomes CSV here, all its rows.
            content = value if isinstance(value, str) else table(value, max_rows=len(value)).text
            documents = [client.upload_text(slug, content, title=wanted)]
        elif value is None or isinstance(value, Path):
            documents = client.upload(slug, value or Path(wanted).expanduser())
        else:
            raise UploadError(
                f"Cannot upload {wanted}: it holds a {type(value).__name__}; upload text, a pandas "
                "or polars DataFrame, a file path or an http(s) link."
            )
    rows = [(d.title or d.filename, d.docpath) for d in documents]
    return Table(f"Embedded into {slug}", ("document", "path"), rows)


def _variable(context: Context, reference: str) -> Any:
    """The notebook object ``reference`` names, or ``None`` when it names none (then it is a
    path: ``notes.md`` reads as the attribute ``md`` of a variable ``notes``)."""
    try:
        return resolve_reference(reference, context.namespace)
    except AttachmentError:
        return None


@command("documents", "the workspace's documents; 📌 marks the pinned ones")
def documents(context: Context, _: str) -> Table:
    settings = context.resolve()
    slug = context.workspace_or_fail(settings)
    found = context.client(settings).documents(slug)
    rows = [("📌" if d.pinned else "", d.title or d.filename, d.docpath) for d in found]
    return Table(f"{counted(len(found), 'document')} in {slug}", ("", "document", "path"), rows)


@command("pin DOC", "put a document (title, file name or path) whole into every prompt")
def pin(context: Context, argument: str) -> Message:
    return _set_pin(context, argument, pinned=True)


@command("unpin DOC", "stop putting a pinned document into every prompt")
def unpin(context: Context, argument: str) -> Message:
    return _set_pin(context, argument, pinned=False)


def _set_pin(context: Context, argument: str, *, pinned: bool) -> Message:
    wanted = _unquoted(argument)
    verb = "pin" if pinned else "unpin"
    if not wanted:
        raise ConfigurationError(f"Say which document: %allm {verb} DOC (see %allm documents).")
    settings = context.resolve()
    slug = context.workspace_or_fail(settings)
    client = context.client(settings)
    document = client.pin(slug, wanted) if pinned else client.unpin(slug, wanted)
    return Message(f"{verb.capitalize()}ned {document.title or document.filename} in {slug}.")


@command(
    "explain [QUESTION]",
    "ask the workspace about the last cell that failed (its source and traceback)",
    expands=False,
)
def explain(context: Context, argument: str) -> Ask:
    return Ask(f"--explain {argument}")


@command("pick", "a widget to choose workspace, thread and mode")
def pick(context: Context, _: str) -> Any:
    from .widgets import WorkspacePicker  # ipywidgets only when a picker is asked for

    return WorkspacePicker(context=context)


@command("login", "type the API key (kept in this kernel's memory only)")
def login(context: Context, _: str) -> Message:
    value = getpass.getpass("AnythingLLM API key (not saved in the notebook): ")
    if not value.strip():
        return Message("No key entered.")
    context.set_login_key(Secret(value))
    client = context.client()
    try:
        accepted = client.auth()
    except AllmError:
        return Message(
            f"API key kept for this kernel; the server at {client.base_url} could not be reached "
            "to check it."
        )
    if accepted:
        return Message(f"API key accepted by {client.base_url}; kept for this kernel.")
    context.set_login_key(None)
    return Message(f"API key rejected by {client.base_url}; it was not kept.")


@command("logout", "forget the key typed with %allm login")
def logout(context: Context, _: str) -> Message:
    context.set_login_key(None)
    return Message("The API key typed with %allm login is forgotten.")


@command("jobs", "this kernel's background answers (%%allm background) and their state")
def jobs(context: Context, _: str) -> Table | Message:
    found = context.jobs.jobs
    if not found:
        return Message("No background answers in this kernel yet; ask with %%allm background.")
    rows = [
        (
            job.number,
            job.workspace,
            _short(job.question, 60) or "(explain)",
            job.state,
            f"{job.elapsed:.0f} s",
        )
        for job in found
    ]
    return Table(
        f"{counted(len(found), 'background answer')} (%allm stop N hangs one up)",
        ("#", "workspace", "question", "state", "elapsed"),
        rows,
    )


@command("stop [N|all]", "hang up background answer N, or all of them (the stop button does not)")
def stop(context: Context, argument: str) -> Message:
    wanted = argument.strip().lstrip("#")
    running = [job for job in context.jobs.jobs if not job.done()]
    if wanted in ("", "all"):
        chosen = running
    else:
        try:
            number = int(wanted)
        except ValueError:
            raise ConfigurationError(
                f"Say which background answer to stop: %allm stop N (see %allm jobs) or "
                f"%allm stop all, not {argument.strip()!r}; to ask a question that starts with "
                "'stop', write %allm -- stop …"
            ) from None
        job = context.jobs.job(number)
        if job is None:
            raise ConfigurationError(
                f"There is no background answer {number}; %allm jobs lists them."
            )
        if job.done():
            return Message(f"Background answer {number} has already ended ({job.state}).")
        chosen = [job]
    for job in chosen:
        job.cancel()
    if not chosen:
        return Message("No background answer is running.")
    numbers = ", ".join(str(job.number) for job in chosen)
    return Message(f"Stopped background answer{'s' if len(chosen) > 1 else ''} {numbers}.")
