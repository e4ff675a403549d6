"""What this kernel chose: the workspace, thread and mode that the picker or ``%allm use`` set.

Owned by the loaded extension and handed to every picker it makes, so the magic and the pickers
stay in sync without a module global; listeners are called on each change.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable

SESSION_SETTINGS = ("workspace", "thread", "mode")


class SessionState:
    """The kernel's choices; the ``session_id`` keeps notebook chats apart from the web UI's."""

    def __init__(self) -> None:
        self.workspace: str | None = None
        self.thread: str | None = None
        self.thread_workspace: str | None = None
        """The workspace ``thread`` belongs to: a thread is only used there."""
        self.thread_name: str | None = None
        """The chosen thread's name, when the one who chose it knew it (``thread=new`` does)."""
        self.mode: str | None = None
        self.session_id = f"allm-jupyter-{os.urandom(6).hex()}"
        self._listeners: list[weakref.WeakMethod[Callable[[], None]]] = []

    def choose(
        self,
        *,
        thread_workspace: str | None = None,
        thread_name: str | None = None,
        **changes: str | None,
    ) -> None:
        """Set any of ``workspace``, ``thread``, ``mode`` and tell every listener.

        A chosen thread belongs to ``thread_workspace`` (by default the chosen workspace) and is
        called ``thread_name`` where that is known.
        """
        for name, value in changes.items():
            if name not in SESSION_SETTINGS:
                raise TypeError(f"unknown session setting {name!r}")
            setattr(self, name, value or None)
        if "thread" in changes:
            self.thread_workspace = (thread_workspace or self.workspace) if self.thread else None
            self.thread_name = thread_name if self.thread else None
        for ref in list(self._listeners):
            listener = ref()
            if listener is None:
                self._listeners.remove(ref)
            else:
                listener()

    def thread_in(self, workspace: str | None) -> str | None:
        """The chosen thread, if it belongs to ``workspace`` (a cell may ask another one)."""
        if self.thread and self.thread_workspace in (None, workspace):
            return self.thread
        return None

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call the bound method ``listener`` after every change (held weakly)."""
        self._listeners.append(weakref.WeakMethod(listener))
