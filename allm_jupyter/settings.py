"""Where the server, key, workspace, mode and timeout come from, and who decided each.

Precedence, highest first: the cell's own option > the workspace chosen in this session (picker or
``%allm use``) > traitlets config (``%config AllmMagics.…``) > environment > built-in default.
:func:`resolve` is that rule, pure: each value remembers its source, so ``%allm config`` can explain
it and messages can name the place to fix (``%config AllmMagics.base_url``, not the env variable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .config import API_KEY_ENV as API_KEY_ENV  # the names live with the library's config
from .config import BASE_URL_ENV as BASE_URL_ENV
from .config import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from .config import Origin as Origin
from .config import env_value as env_value
from .options import CellOptions
from .secret import Secret
from .session import SessionState
from .urls import DEFAULT_BASE_URL, redact_url

WORKSPACE_ENV = "ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG"

T = TypeVar("T")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One resolved value and where it came from (``cell``, ``session``, ``config``, ``env``, ``default``)."""

    value: T
    source: str


@dataclass(frozen=True)
class Config:
    """The extension's traitlets (``%config AllmMagics.…``) as they are when a cell runs."""

    base_url: str | None = None
    default_workspace: str | None = None
    mode: str | None = None
    timeout: float | None = None


_URL_ORIGINS = {
    "config": "%config AllmMagics.base_url",
    "env": BASE_URL_ENV,
    "default": f"{BASE_URL_ENV} (unset, so the default {DEFAULT_BASE_URL})",
}
_KEY_ORIGINS = {"login": "%allm login", "env": API_KEY_ENV, "unset": API_KEY_ENV}


@dataclass(frozen=True)
class ResolvedSettings:
    """Everything one ``%%allm`` run needs, each value with its source."""

    base_url: Setting[str]
    workspace: Setting[str | None]
    mode: Setting[str | None]
    timeout: Setting[float]
    thread: Setting[str | None]
    api_key: Secret = field(repr=False)
    api_key_source: str = "unset"

    @property
    def origin(self) -> Origin:
        return Origin(_URL_ORIGINS[self.base_url.source], _KEY_ORIGINS[self.api_key_source])

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


def _first(*candidates: tuple[T | None, str]) -> Setting[T | None]:
    """The first candidate whose value is neither ``None`` nor empty."""
    for value, source in candidates:
        if value is not None and value != "":
            return Setting(value, source)
    return Setting(None, "unset")


def resolve(
    options: CellOptions,
    session: SessionState,
    config: Config,
    environ: Mapping[str, str],
    login_key: Secret | None = None,
) -> ResolvedSettings:
    """The settings one question runs with, by the precedence in this module's docstring."""
    env_key = Secret(environ.get(API_KEY_ENV))
    workspace = _first(
        (options.workspace, "cell"),
        (session.workspace, "session"),
        (config.default_workspace, "config"),
        (env_value(environ, WORKSPACE_ENV), "env"),
    )
    base_url = _first(
        (config.base_url, "config"),
        (env_value(environ, BASE_URL_ENV), "env"),
        (DEFAULT_BASE_URL, "default"),
    )
    timeout = _first(
        (options.timeout, "cell"), (config.timeout, "config"), (DEFAULT_TIMEOUT, "default")
    )
    return ResolvedSettings(
        base_url=Setting(str(base_url.value), base_url.source),
        workspace=workspace,
        thread=_first((options.thread, "cell"), (session.thread_in(workspace.value), "session")),
        mode=_first((options.mode, "cell"), (session.mode, "session"), (config.mode, "config")),
        timeout=Setting(float(timeout.value or DEFAULT_TIMEOUT), timeout.source),
        api_key=login_key if login_key else env_key,
        api_key_source="login" if login_key else ("env" if env_key else "unset"),
    )
