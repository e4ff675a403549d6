"""Server text made safe for a terminal or an error line: no control codes, no unsafe links."""

from __future__ import annotations

import re

_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_text(text: str) -> str:
    """Server text without control codes, so an answer cannot move the cursor or recolour a terminal."""
    return _TERMINAL_CONTROL.sub("", text)


_SCHEME_COLON = re.compile(r"([A-Za-z0-9+.-]+):(//)?(?=\S)")
"""A run of scheme characters, its colon and whether ``//`` follows (``localhost:3001`` is a run
too: it is kept because no ``//`` follows and ``localhost`` is no unsafe scheme)."""
_WEB_SCHEMES = frozenset({"http", "https"})
_UNSAFE_SCHEMES = ("javascript", "vbscript", "data", "file", "blob", "filesystem")
"""Schemes that run code or read local files, linked by some front end even without ``//``
(JupyterLab links ``data:`` anywhere; terminals and VS Code link ``file:``)."""
_WORD_JOINER = "\u2060"
"""Invisible and not a letter: ``data⁠:`` reads the same, but no linkifier sees a scheme in it."""


def unlinked(text: str) -> str:
    """Plain text for an error line or a printed line, in which a front end links only to http(s).

    JupyterLab links every ``scheme://`` and every ``data:`` in plain output, wherever the scheme's
    letters start (``1javascript://`` links ``javascript://``); server text is untrusted, so each
    such scheme but http(s), and the unsafe ones without ``//``, gets a word joiner before its
    colon (inside a URL too: ``https://x/?to=file://y`` is the rare web URL that loses its exact
    text). Everything else is left exactly as written, so a URL copied from a message works.
    """
    return _SCHEME_COLON.sub(_neutralised, text)


def _neutralised(match: re.Match[str]) -> str:
    run, slashes = match.group(1).lower(), match.group(2)
    scheme = run.lstrip("0123456789+.-")  # a linkifier's scheme starts at the first letter
    unsafe = scheme not in _WEB_SCHEMES if slashes else scheme.endswith(_UNSAFE_SCHEMES)
    if not unsafe:
        return match.group(0)
    return f"{match.group(1)}{_WORD_JOINER}:{slashes or ''}"
