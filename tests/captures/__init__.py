"""Read the real server's captured responses: status, headers and body as sent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Capture:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def events(self) -> list[dict[str, Any]]:
        """The JSON objects of an SSE body, split on blank lines exactly as sent."""
        text = self.body.decode("utf-8")
        return [json.loads(block[len("data: ") :]) for block in text.split("\n\n") if block]


def load(name: str) -> Capture:
    raw = (HERE / name).read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in header_lines]
    return Capture(int(status_line.split()[1]), headers, body)  # type: ignore[arg-type]
