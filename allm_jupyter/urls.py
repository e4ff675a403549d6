"""The server's URL: from what users paste to the instance root, and fit to show in messages."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigurationError

DEFAULT_BASE_URL = "http://localhost:3001"
_API_SUFFIXES = ("/api/v1", "/api")


def normalize_base_url(url: str, *, origin: str = "ANYTHING_LLM_BASE_URL") -> str:
    """The instance root, e.g. ``https://host/anythingllm``, from what users paste.

    Accepts a trailing slash, a URL ending in ``/api`` or ``/api/v1`` (what the server's own docs
    show), a sub-path behind a reverse proxy, and a bare ``host:port``. ``origin`` names where the
    value came from, so the message says what to fix.
    """
    text = url.strip()
    if not text:
        raise ConfigurationError(f"The server URL is empty; set {origin}.")
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
            f"'{redact_url(url)}' is not an http(s) URL; set {origin} to e.g. {DEFAULT_BASE_URL}."
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
