"""Where the server, key, workspace, mode and timeout come from, and who decided each.

Precedence, highest first: the cell's own option > the workspace chosen in this session (picker or
``%allm use``) > traitlets config (``%config AllmMagics.…``) > environment > built-in default.
Each resolved value remembers its source so ``%allm config`` can explain it. The API key only ever
travels inside :class:`Secret`, whose ``repr``/``str`` are redacted.
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import API_KEY_ENV, BASE_URL_ENV, WORKSPACE_ENV, ConfigurationError

DEFAULT_BASE_URL = "http://localhost:3001"
DEFAULT_TIMEOUT = 120.0
MODES = ("chat", "query", "automatic")
_API_SUFFIXES = ("/api/v1", "/api")


class Secret:
    """Holds the API key so that no repr, str, log line, ``vars()`` or debugger shows it."""

    __slots__ = ("__value",)

    def __init__(self, value: str | None) -> None:
        self.__value = (value or "").strip()

    def reveal(self) -> str:
        return self.__value

    @property
    def well_formed(self) -> bool:
        """Whether an HTTP header can carry it (httpx's error for one that cannot quotes it)."""
        return self.__value.isprintable() and " " not in self.__value

    def __bool__(self) -> bool:
        return bool(self.__value)

    def __repr__(self) -> str:
        return "Secret('********')" if self.__value else "Secret(unset)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.__value == self.__value

    def __hash__(self) -> int:
        return hash(self.__value)

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not to be pickled")


def normalize_base_url(url: str) -> str:
    """The instance root, e.g. ``https://host/anythingllm``, from what users paste.

    Accepts a trailing slash, a URL ending in ``/api`` or ``/api/v1`` (what the server's own docs
    show), a sub-path behind a reverse proxy, and a bare ``host:port``.
    """
    text = url.strip()
    if not text:
        raise ConfigurationError(f"The server URL is empty; set {BASE_URL_ENV}.")
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
        (parts.hostname or "").encode("idna")  # raises UnicodeError for "a..b"
    except (ValueError, UnicodeError):
        valid = False
    if not valid:
        raise ConfigurationError(
            f"'{redact_url(url)}' is not an http(s) URL; set {BASE_URL_ENV} to e.g. "
            f"{DEFAULT_BASE_URL}."
        )
    path = parts.path.rstrip("/")
    for suffix in _API_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def redact_url(url: str) -> str:
    """``url`` fit to show: a password in it (``https://user:pass@host``) becomes ``***``.

    Errs on the side of hiding: everything from the first ``:`` of the authority to the last ``@``
    is masked, so a password holding ``/`` or ``@`` is hidden too (and the URL of a server whose
    path holds ``@`` is shown shortened, which is harmless).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, _ = rest.partition("?")[0].partition("#")[0].rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    tail = rest[len(userinfo) + 1 :]
    return f"{scheme}{sep}{user}:***@{tail}"


def env_base_url(environ: Mapping[str, str] | None = None) -> str | None:
    value = (environ if environ is not None else os.environ).get(BASE_URL_ENV, "").strip()
    return value or None


def env_api_key(environ: Mapping[str, str] | None = None) -> Secret:
    return Secret((environ if environ is not None else os.environ).get(API_KEY_ENV))


def env_workspace(environ: Mapping[str, str] | None = None) -> str | None:
    value = (environ if environ is not None else os.environ).get(WORKSPACE_ENV, "").strip()
    return value or None


@dataclass(frozen=True)
class Setting:
    """One resolved value and where it came from (``cell``, ``session``, ``config``, ``env``, ``default``)."""

    value: Any
    source: str


@dataclass(frozen=True)
class ResolvedSettings:
    """Everything one ``%%allm`` run needs, each value with its source."""

    base_url: Setting
    workspace: Setting
    mode: Setting
    timeout: Setting
    thread: Setting
    api_key: Secret = field(repr=False)
    api_key_source: str = "unset"

    def rows(self) -> list[tuple[str, str, str]]:
        """(name, shown value, source) rows for ``%allm config``; the key only as set/unset."""
        rows = [
            (name, "" if s.value is None else redact_url(str(s.value)), s.source)
            for name, s in (
                ("base_url", self.base_url),
                ("workspace", self.workspace),
                ("thread", self.thread),
                ("mode", self.mode),
                ("timeout", self.timeout),
            )
        ]
        rows.append(("api_key", "set" if self.api_key else "unset", self.api_key_source))
        return rows


def first_of(*candidates: tuple[Any, str]) -> Setting:
    """The first candidate whose value is not ``None``/empty, as a :class:`Setting`."""
    for value, source in candidates:
        if value is not None and value != "":
            return Setting(value, source)
    return Setting(None, "unset")


MAX_TIMEOUT = 86_400.0
"""A day: longer than any model takes, shorter than what the clock functions can represent."""


def parse_timeout(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"timeout must be a number of seconds, not '{value}'.") from None
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ConfigurationError(
            f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds, not '{value}'."
        )
    return seconds


def check_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {', '.join(MODES)}, not '{value}'.")
    return mode


class SessionState:
    """What this kernel chose: the workspace/thread/mode the picker or ``%allm use`` set.

    One instance per kernel (:data:`session`), shared by the magic and every picker so they stay in
    sync; listeners are called on each change. The ``session_id`` keeps notebook chats apart from the
    web UI's default chat and lives as long as the kernel.
    """

    def __init__(self) -> None:
        self.workspace: str | None = None
        self.thread: str | None = None
        self.thread_workspace: str | None = None
        """The workspace ``thread`` belongs to: a thread is only used there."""
        self.mode: str | None = None
        self.session_id = f"allm-jupyter-{uuid.uuid4().hex[:12]}"
        self._listeners: list[weakref.WeakMethod[Callable[[], None]]] = []

    def choose(self, *, thread_workspace: str | None = None, **changes: str | None) -> None:
        """Set any of ``workspace``, ``thread``, ``mode`` and tell every listener.

        A chosen thread belongs to ``thread_workspace`` (by default the chosen workspace).
        """
        for name, value in changes.items():
            if name not in ("workspace", "thread", "mode"):
                raise TypeError(f"unknown session setting {name!r}")
            setattr(self, name, value or None)
        if "thread" in changes:
            self.thread_workspace = (thread_workspace or self.workspace) if self.thread else None
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


session = SessionState()
