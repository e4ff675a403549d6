"""Server text made safe for a terminal or an error line: no control codes."""

from __future__ import annotations

import re

_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_text(text: str) -> str:
    """Server text without control codes, so an answer cannot move the cursor or recolour a terminal."""
    return _TERMINAL_CONTROL.sub("", text)


_NON_WEB_SCHEME = re.compile(r"(?i)\b(?!https?:)([a-z][a-z0-9+.-]{0,31})(:)(?=[^\s:])")
_WORD_JOINER = "\u2060"
"""Invisible and not a letter: ``data⁠:`` reads the same, but no linkifier sees a scheme in it."""


def unlinked(text: str) -> str:
    """Plain text that a front end linkifies (error lines, printed lines) with only http(s) links.

    JupyterLab turns ``data:``, ``file:`` and ``ftp:`` URLs in plain output into clickable links;
    server text is untrusted, so every scheme but http(s) gets a word joiner before its colon.
    """
    return _NON_WEB_SCHEME.sub(rf"\1{_WORD_JOINER}\2", text)
