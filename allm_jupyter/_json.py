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
