"""``WorkspacePicker``: choose with the mouse the workspace, thread and mode that ``%%allm`` asks.

The extension's :class:`~allm_jupyter.session.SessionState`, handed over in its
:class:`~allm_jupyter.context.Context`, is the one source of truth: a picker writes every choice
there and redraws itself from it on every change, so any number of pickers, ``%allm use`` and
``thread=new`` always agree. Problems (bad key, server down, no workspaces) show
in the status line, never as a traceback; nothing synced to the front end holds the API key.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import Bunch, Enum, Unicode, observe, validate

from .context import Context, current_context, in_notebook_words
from .errors import AllmError, AuthenticationError, ConfigurationError
from .models import Workspace
from .options import MODES
from .render import counted

if TYPE_CHECKING:
    from .client import Client

DEFAULT_CHAT = ""
"""The thread list's value for the workspace's default chat (a Dropdown reads ``None`` as no pick)."""
NEW_THREAD = "new"
"""The session thread that makes the next ``%%allm`` create a thread and keep using it."""
WORKSPACE_DEFAULT = ""
"""The mode toggle's value for "use the workspace's own chat mode" (the session's ``None``)."""

Options = tuple[tuple[str, str], ...]

_MODE_OPTIONS: Options = (("workspace default", WORKSPACE_DEFAULT), *((m, m) for m in MODES))
_MODE_TOOLTIPS = (
    "the chat mode set in the workspace's settings",
    "documents plus the model's own knowledge",
    "answers from the documents only",
    "agent mode when the model calls tools",
)
_OK, _WARN, _BAD = "#1a7f37", "#9a6700", "#cf222e"


class WorkspacePicker(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types
    """Workspace, thread and mode for ``%%allm`` cells without ``workspace=``; also ``%allm pick``.

    ``value`` (workspace slug), ``thread`` (slug, ``"new"`` or ``None`` for the default chat) and
    ``mode`` (``None`` for the workspace's own) are observable traits; setting one changes the
    session at once. A new picker shows what the next ``%%allm`` would use: the session's choice,
    else the configured or environment default workspace (shown, but not written to the session
    until the user picks). One ``workspaces()`` request per :meth:`refresh` fetches every thread too.

    ``context`` is the loaded extension's (``%allm pick`` hands it over; by default the one loaded
    in this IPython, else a context of its own, from the environment).
    """

    value = Unicode(None, allow_none=True, help="Slug of the chosen workspace.")
    thread = Unicode(None, allow_none=True, help="Thread slug, 'new', or None: the default chat.")
    mode = Enum(MODES, None, allow_none=True, help="Chat mode; None: the workspace's own.")

    def __init__(self, context: Context | None = None, **kwargs: Any) -> None:
        self._context = context or current_context() or Context()
        self._syncing = False
        self._workspaces: dict[str, Workspace] = {}
        self._workspace_options: Options = ()
        self._status_line = widgets.HTML()
        self._workspace_list = widgets.Dropdown(
            description="Workspace",
            options=(),
            value=None,
            style={"description_width": "6em"},
            layout=widgets.Layout(min_width="24em"),
        )
        self._refresh_button = widgets.Button(
            description="Refresh",
            icon="refresh",
            tooltip="Fetch the workspaces and threads again",
            layout=widgets.Layout(width="auto"),
        )
        self._thread_list = widgets.Dropdown(
            description="Thread",
            options=(),
            value=None,
            style={"description_width": "6em"},
            layout=widgets.Layout(min_width="24em"),
        )
        self._mode_buttons = widgets.ToggleButtons(
            description="Mode",
            options=_MODE_OPTIONS,
            value=WORKSPACE_DEFAULT,
            tooltips=_MODE_TOOLTIPS,
            style={"description_width": "6em", "button_width": "auto"},
        )
        super().__init__(
            children=[
                self._status_line,
                widgets.HBox([self._workspace_list, self._refresh_button]),
                self._thread_list,
                self._mode_buttons,
            ],
            **kwargs,
        )
        self._workspace_list.observe(partial(self._picked, "value"), names="value")
        self._thread_list.observe(partial(self._picked, "thread"), names="value")
        self._mode_buttons.observe(partial(self._picked, "mode"), names="value")
        self._refresh_button.on_click(lambda _: self.refresh())
        self._context.session.subscribe(self._on_session)
        self.refresh()

    @property
    def slugs(self) -> list[str]:
        """The slugs of the server's workspaces as of the last successful refresh."""
        return list(self._workspaces)

    def refresh(self) -> None:
        """Fetch the server's state and workspaces again; any problem ends up in the status line."""
        self._status_line.value = _status(_WARN, "refreshing…")
        try:
            status = self._load(self._context.client())
        except AllmError as exc:  # e.g. a malformed server URL in the environment
            status = _status(_BAD, "not configured", in_notebook_words(exc))
        self._status_line.value = status
        self._show()

    def _load(self, client: Client) -> str:
        """Ask the server (keeping the last good list if that fails); return the status line."""
        info = client.server_info()
        where = f"{client.base_url} · AnythingLLM {info.version or 'version unknown'}"
        if not info.reachable:
            return _status(_BAD, "unreachable", info.reason or "", client.base_url)
        try:
            found = client.workspaces()
        except AuthenticationError as exc:
            headline = "API key rejected" if client.has_api_key else "no API key"
            return _status(_BAD, headline, in_notebook_words(exc) + " Then press Refresh.", where)
        except AllmError as exc:
            return _status(_BAD, "server error", in_notebook_words(exc), where)
        self._workspaces = {w.slug: w for w in found if w.slug}
        self._workspace_options = _labelled((w.name, w.slug) for w in self._workspaces.values())
        if not self._workspaces:
            detail = "there are no workspaces yet; create one in AnythingLLM, then press Refresh."
            return _status(_WARN, "connected", detail, where)
        return _status(_OK, "connected", counted(len(self._workspaces), "workspace"), where)

    # -- keeping the session and the controls in step ----------------------------------------

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        """Changes made here come from the session, so they must not be written back to it."""
        previous, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = previous

    def _picked(self, name: str, change: Bunch) -> None:
        """A control changed in the front end: set the matching trait (which tells the session)."""
        if not self._syncing:
            setattr(self, name, change["new"] or None)

    @observe("value", "thread", "mode")
    def _publish(self, change: Bunch) -> None:
        """A choice made here becomes the session's; the session then redraws every picker."""
        if self._syncing:
            return
        thread = None if change["name"] == "value" else self.thread
        self._context.session.choose(workspace=self.value, thread=thread, mode=self.mode)

    def _on_session(self) -> None:
        if self.comm is not None:  # a closed picker stays subscribed until it is collected
            self._show()

    def _show(self) -> None:
        """Draw what the next ``%%allm`` would use, listing a slug even if the server did not."""
        settings = self._context.resolve()
        workspace, thread, mode = (
            settings.workspace.value,
            settings.thread.value,
            settings.mode.value,
        )
        found = self._workspaces.get(workspace) if workspace else None
        threads = _labelled((t.name or t.slug, t.slug) for t in found.threads) if found else ()
        thread_options = (("default chat", DEFAULT_CHAT), *threads, ("new thread…", NEW_THREAD))
        thread_label = self._context.session.thread_name
        with self._quietly():
            self.value, self.thread, self.mode = workspace, thread, mode
            self._workspace_list.options = _with_unlisted(self._workspace_options, workspace)
            self._workspace_list.value = workspace
            self._thread_list.options = (
                _with_unlisted(thread_options, thread, thread_label) if workspace else ()
            )
            self._thread_list.value = (thread or DEFAULT_CHAT) if workspace else None
            self._thread_list.disabled = workspace is None
            self._mode_buttons.value = mode or WORKSPACE_DEFAULT

    @validate("value")
    def _check_value(self, proposal: Bunch) -> str | None:
        return self._offered("workspace", proposal["value"], self._workspace_list.options)

    @validate("thread")
    def _check_thread(self, proposal: Bunch) -> str | None:
        return self._offered("thread", proposal["value"], self._thread_list.options)

    def _offered(self, kind: str, value: str | None, options: Options) -> str | None:
        """``value`` if the control offers it; the session's own choices always pass."""
        offered = [v for _, v in options if v]
        if self._syncing or value is None or value in offered:
            return value
        listed = ", ".join(offered[:20]) + (", …" if len(offered) > 20 else "") or "none"
        raise ConfigurationError(
            f"'{value}' is not a {kind} this picker offers (offered: {listed}); if it is new, "
            "call refresh() first."
        )


def _labelled(pairs: Iterable[tuple[str, str]]) -> Options:
    """``(label, value)`` options in one pass; a name that repeats gets its slug appended."""
    rows = [(" ".join(name.split()) or value, value) for name, value in pairs]
    counts = Counter(name for name, _ in rows)
    return tuple(
        (name if counts[name] == 1 else f"{name} ({value})", value) for name, value in rows
    )


def _with_unlisted(options: Options, value: str | None, label: str | None = None) -> Options:
    """``options``, led by ``value`` when the session chose something the server did not list.

    ``label`` is its name where the session knows it (a thread ``thread=new`` just made).
    """
    if value is None or any(v == value for _, v in options):
        return options
    return ((label or f"{value} (not listed yet)", value), *options)


def _status(colour: str, headline: str, detail: str = "", where: str = "") -> str:
    """The status line's HTML; every piece of server text is escaped."""
    parts = [f'<span style="color:{colour}">●</span> <b>{html.escape(headline)}</b>']
    parts += [html.escape(text) for text in (where, detail) if text]
    return " · ".join(parts)
