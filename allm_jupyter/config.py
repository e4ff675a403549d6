"""``ClientConfig``: everything a client is built from, checked once, shared by both clients.

One frozen value, so the sync :class:`~allm_jupyter.client.Client` and the
:class:`~allm_jupyter.async_client.AsyncClient` can be made from the same settings
(``AsyncClient.from_config(client.config)``). It lives on the library side with the environment
names and defaults, so the notebook layer imports them from here and never the other way round.
Loading it loads no HTTP stack (``%load_ext`` stays light): ``httpx`` is imported only when a
config is made.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigurationError
from .secret import Secret
from .urls import DEFAULT_BASE_URL, normalize_base_url, redact_url

if TYPE_CHECKING:
    import httpx

API_KEY_ENV = "ANYTHING_LLM_API_KEY"
BASE_URL_ENV = "ANYTHING_LLM_BASE_URL"
DEFAULT_TIMEOUT = 120.0
"""Seconds without a byte before a request or an answer is given up."""
DEFAULT_MAX_RETRIES = 2
"""Repeats of a request that is safe to repeat (as openai-python)."""
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
"""Longest line of an answer's event stream: a finalize event carries every source's text."""
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest plain (not streamed) response body: a workspace list with all its documents."""
DOCUMENT_MIME = "application/anythingllm-document"
"""The attachment type the server parses as a document (others are images)."""
HISTORY_LIMIT = 10
"""Exchanges ``history`` returns by default, in the clients and in ``%allm history``."""
CONNECT_TIMEOUT = 10.0
"""Connecting should never take as long as waiting for a slow model."""
DEFAULT_CONCURRENCY = 4
"""A batch's answers in flight at once: the server is usually one machine running one model."""
DEFAULT_BACKGROUND_LIMIT = 4
"""Background answers streaming at once; more wait in line (each holds a connection and a model).
Here, not in ``jobs``, so ``%load_ext`` reads it without loading the job runner."""


@dataclass(frozen=True)
class Origin:
    """Where the URL and the key came from, as a message names them so the caller knows what to fix."""

    base_url: str = BASE_URL_ENV
    api_key: str = API_KEY_ENV


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """An environment variable, ``None`` when unset or blank."""
    return environ.get(name, "").strip() or None


@dataclass(frozen=True)
class ClientConfig:
    """A client's settings, validated: build one with :meth:`create` (the clients do)."""

    root: str = field(repr=False)
    """The instance root, e.g. ``https://host/anythingllm`` (may hold a password: see ``base_url``)."""
    api_key: Secret = field(repr=False)
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT
    headers: tuple[tuple[str, str], ...] = ()
    max_retries: int = DEFAULT_MAX_RETRIES
    ca_bundle: str | None = None
    origin: Origin = Origin()
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @property
    def base_url(self) -> str:
        """The server, as shown in messages (a password in the URL is masked)."""
        return redact_url(self.root)

    def __repr__(self) -> str:
        """No password of the URL, no key, and header names only (a header may carry a token)."""
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown["headers"] = [name for name, _ in self.headers]
        listed = ", ".join(f"{name}={value!r}" for name, value in shown.items())
        return f"ClientConfig(base_url={self.base_url!r}, {listed})"

    @classmethod
    def create(
        cls,
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        *,
        headers: Mapping[str, str] | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        ca_bundle: str | Path | None = None,
        origin: Origin | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> ClientConfig:
        """The config for these arguments; unset ones come from ``ANYTHING_LLM_BASE_URL`` and
        ``ANYTHING_LLM_API_KEY``. A bad value is a :class:`ConfigurationError` naming the argument."""
        origin = origin or Origin(
            base_url="the base_url argument" if base_url else BASE_URL_ENV,
            api_key="the api_key argument" if api_key is not None else API_KEY_ENV,
        )
        root = normalize_base_url(
            base_url or env_value(os.environ, BASE_URL_ENV) or DEFAULT_BASE_URL,
            origin=origin.base_url,
        )
        secret = (
            api_key
            if isinstance(api_key, Secret)
            else Secret(api_key if api_key is not None else os.environ.get(API_KEY_ENV))
        )
        return cls(
            root=root,
            api_key=secret,
            timeout=checked_timeout(timeout, "timeout"),
            headers=_checked_headers(headers),
            max_retries=_count(max_retries, "max_retries", minimum=0),
            ca_bundle=str(ca_bundle) if ca_bundle else None,
            origin=origin,
            max_line_bytes=_count(max_line_bytes, "max_line_bytes", minimum=1),
            max_body_bytes=_count(max_body_bytes, "max_body_bytes", minimum=1),
        )


def checked_timeout(value: object, argument: str) -> float | httpx.Timeout:
    """A positive number of seconds or an ``httpx.Timeout``; anything else names ``argument``."""
    import httpx  # the HTTP stack loads with the first client, not with the extension

    if isinstance(value, httpx.Timeout):
        return value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and math.isfinite(value) and value > 0:  # type: ignore[arg-type,operator]
        return float(value)  # type: ignore[arg-type]
    raise ConfigurationError(
        f"{argument} must be a positive number of seconds or an httpx.Timeout, not {value!r}."
    )


def _count(value: object, argument: str, *, minimum: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    raise ConfigurationError(
        f"{argument} must be a whole number of at least {minimum}, not {value!r}."
    )


def _checked_headers(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    pairs = tuple((headers or {}).items())
    for name, value in pairs:
        if not (isinstance(name, str) and isinstance(value, str)):
            raise ConfigurationError("headers must map header names to text values.")
        if name.lower() == "authorization":
            raise ConfigurationError(
                "headers must not set Authorization; pass the key as api_key, so no message shows it."
            )
    return pairs
