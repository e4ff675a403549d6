"""``Context``: what commands and pickers need from the loaded extension, handed to them explicitly.

It owns the kernel's :class:`~allm_jupyter.session.SessionState`, the key typed with ``%allm login``
and one pooled :class:`~allm_jupyter.client.Client` per server and key, and resolves the settings a
question runs with. The magic makes one per kernel; a picker made outside IPython makes its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .config import DEFAULT_BACKGROUND_LIMIT
from .errors import AllmError, ConfigurationError, ThreadNotFoundError
from .options import CellOptions
from .secret import Secret
from .session import SessionState
from .settings import DEFAULT_TIMEOUT, WORKSPACE_ENV, Config, ResolvedSettings, resolve

if TYPE_CHECKING:
    from .client import Client
    from .jobs import JobRunner


class Context:
    """The extension's state: session choices, login key, clients, and how to resolve settings."""

    def __init__(
        self,
        session: SessionState | None = None,
        *,
        config: Callable[[], Config] = Config,
        environ: Mapping[str, str] = os.environ,
        namespace: dict[str, Any] | None = None,
        job_limit: Callable[[], int] = lambda: DEFAULT_BACKGROUND_LIMIT,
    ) -> None:
        self.session = session or SessionState()
        self._job_limit = job_limit
        self._jobs: JobRunner | None = None
        self._config = config
        self._environ = environ
        self.namespace: dict[str, Any] = namespace if namespace is not None else {}
        """The notebook's variables (``{name}`` references, ``attach=``)."""
        self._login_key: Secret | None = None
        self._clients: dict[tuple[str, float, Secret], Client] = {}

    def __repr__(self) -> str:
        return f"Context(session_id={self.session.session_id!r})"

    @property
    def jobs(self) -> JobRunner:
        """This kernel's background answers, made with the first use; :meth:`close` hangs them
        up."""
        if self._jobs is None:
            from .jobs import JobRunner  # with the first background answer: load speed

            self._jobs = JobRunner(self._job_limit, words=in_notebook_words)
        return self._jobs

    def resolve(self, options: CellOptions | None = None) -> ResolvedSettings:
        return resolve(
            options or CellOptions(),
            self.session,
            self._config(),
            self._environ,
            login_key=self._login_key,
        )

    def client(self, settings: ResolvedSettings | None = None) -> Client:
        """One HTTP client per server and key, reused across cells (keeps the connection).

        Its timeout is the configured one; a cell's ``timeout=`` applies to that answer only.
        """
        from .client import Client  # httpx is not imported until the first request: load speed

        settings = settings or self.resolve()
        timeout = self._config().timeout or DEFAULT_TIMEOUT
        key = (settings.base_url.value, timeout, settings.api_key)
        client = self._clients.get(key)
        if client is None:
            client = Client(
                settings.base_url.value,
                api_key=settings.api_key,
                timeout=timeout,
                origin=settings.origin,
            )
            self._clients[key] = client
        return client

    def set_login_key(self, key: Secret | None) -> None:
        """Use a key typed with ``%allm login`` (kept in memory only) instead of the env's."""
        self._login_key = key if key else None
        self._close_clients()  # background answers keep the client they started with

    def close(self) -> None:
        """Hang up every background answer and close the connections (unload, shutdown)."""
        if self._jobs is not None:
            self._jobs.close()
        self._close_clients()

    def _close_clients(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def workspace_or_fail(self, settings: ResolvedSettings) -> str:
        if settings.workspace.value:
            return settings.workspace.value
        try:
            slugs = [w.slug for w in self.client(settings).workspaces()]
        except AllmError:
            slugs = []
        listed = f" (available: {', '.join(slugs[:20])})" if slugs else ""
        raise ConfigurationError(
            "No workspace is chosen; add workspace=SLUG to the cell, run %allm use SLUG or "
            f"%allm pick, or set {WORKSPACE_ENV}{listed}."
        )


def current_context() -> Context | None:
    """The context of the extension loaded in the running IPython, if any.

    Found among the shell's configurables by what they hold, so this module never imports the
    magic (which imports it).
    """
    from IPython import get_ipython  # only pickers made by hand need it, after IPython is up

    shell = get_ipython()
    for configurable in getattr(shell, "configurables", ()):
        context = getattr(configurable, "context", None)
        if isinstance(context, Context):
            return context
    return None


_NOTEBOOK_WORDS = (
    ("or pass api_key, with a key", "or run %allm login with a key"),
    ("pass a larger timeout", "raise the timeout (timeout=SECONDS)"),
    ("pass the message to ask", "write it in the cell body"),
    (
        "pass that CA's PEM file as ca_bundle or point SSL_CERT_FILE at it",
        "point SSL_CERT_FILE at that CA's PEM file",
    ),
)
"""The library's advice (arguments) and what a notebook user does instead."""


def in_notebook_words(error: AllmError) -> str:
    """``error``'s sentence with the notebook's own hints (``%allm login``, ``timeout=``) where the
    library names an argument, for the magic's and the picker's messages."""
    if isinstance(error, ThreadNotFoundError):
        return (
            f"Workspace '{error.workspace}' has no thread '{error.thread}'; list them with "
            "%allm threads."
        )
    message = error.message
    for library, notebook in _NOTEBOOK_WORDS:
        message = message.replace(library, notebook)
    return message
