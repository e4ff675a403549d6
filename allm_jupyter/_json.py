"""The one guarded JSON parser, and tolerant readers for the server's JSON values.

Every JSON text from the server is parsed by :func:`read_json`, so no body, however hostile (nested
a million deep, a 10,000-digit number, not JSON at all), escapes as anything but an
:class:`~allm_jupyter.errors.AllmError` sentence.

The real server sends ``null``, a wrong type, or nothing at all for fields that are documented as
present (reference §10), so every model reads its fields through these instead of trusting them.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from .errors import ServerError

_DECODER = json.JSONDecoder(parse_constant=lambda _: None)
"""Made once: ``json.loads`` with a ``parse_constant`` builds a new decoder per call (~1 µs, per
stream event)."""


def read_json(text: str, source: str) -> Any:
    """``text`` parsed, or a :class:`ServerError` "``source`` with <what is wrong>." if it cannot be.

    ``source`` says who sent it ("The server at X answered GET /v1/workspaces"). A leading byte
    order mark is accepted; NaN and Infinity literals become ``None``.
    """
    try:
        return _DECODER.decode(text.removeprefix("\ufeff"))
    except RecursionError:
        problem = "JSON nested too deeply to read"
    except ValueError as exc:  # JSONDecodeError, and int() refusing a number of 4,300+ digits
        problem = (
            "a number too long to read" if "digits" in str(exc) else "something that is not JSON"
        )
    raise ServerError(f"{source} with {problem}.", detail=problem)


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


MAX_SAFE_INTEGER = 2**53 - 1
"""The server is JavaScript: a number beyond ``Number.MAX_SAFE_INTEGER`` is not one it meant (a
hostile server's 10^20, which would also fill a table cell with digits)."""


def count(value: Any) -> int | None:
    """A whole number from 0 to :data:`MAX_SAFE_INTEGER` (token counts, ids); a whole float is one
    (some providers send ``12.0``), a negative, a fraction or a string is not."""
    amount = number(value)
    if amount is None or not amount.is_integer() or not 0 <= amount <= MAX_SAFE_INTEGER:
        return None
    return int(value) if isinstance(value, int) else int(amount)


def measure(value: Any) -> float | None:
    """A finite number from 0 to :data:`MAX_SAFE_INTEGER` (a speed, a duration, a cost)."""
    amount = number(value)
    return amount if amount is not None and 0 <= amount <= MAX_SAFE_INTEGER else None


def similarity(value: Any) -> float | None:
    """A score from -1 to 1 (the vector databases' cosine similarity), else ``None``."""
    amount = number(value)
    return amount if amount is not None and -1 <= amount <= 1 else None


def epoch_seconds(value: Any) -> int | None:
    """Seconds since 1970 that name a real UTC moment (``sentAt``), else ``None``: 10^20 is no
    year a ``datetime`` can hold."""
    seconds = count(value)
    if seconds is None:
        return None
    try:
        datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return seconds
