"""Tolerant readers for the server's JSON values.

The real server sends ``null``, a wrong type, or nothing at all for fields that are documented as
present (reference §10), so every model reads its fields through these instead of trusting them.
"""

from __future__ import annotations

import math
from typing import Any


def text(value: Any) -> str | None:
    """The value if it is a string (possibly empty), else ``None``."""
    return value if isinstance(value, str) else None


def nonempty(value: Any) -> str | None:
    """The value if it is a non-empty string, else ``None``."""
    return value if isinstance(value, str) and value else None


def items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of a list the server may also send as ``null`` (a failed DB query)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def number(value: Any) -> float | None:
    """A finite JSON number as a float; booleans, strings, ``null`` and 1e400 are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def integer(value: Any) -> int | None:
    """A JSON integer (ids, counts); a bool or a float is not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
