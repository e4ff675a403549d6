"""Server text made safe for a terminal or an error line: no control codes."""

from __future__ import annotations

import re

_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_text(text: str) -> str:
    """Server text without control codes, so an answer cannot move the cursor or recolour a terminal."""
    return _TERMINAL_CONTROL.sub("", text)
