"""The real AnythingLLM servers a test run can use, as plain descriptors.

``scripts/realserver.sh`` starts the kit's servers (upstream AnythingLLM with a fake LLM, in a
network namespace) and exports ``ALLM_KIT_<VERSION>_URL``/``_DIR`` and ``ALLM_KIT_API_KEY``, or
``ALLM_KIT_SKIP`` with the reason it could not. A user's own server is named with
``ALLM_REAL_SERVER=1`` plus the usual ``ANYTHING_LLM_*`` variables; only the tests that need no
kit trigger words run against it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from allm_jupyter import Client

KIT_VERSIONS = {"1.16": "1.16.0", "1.9": "1.9.1"}
"""``ALLM_KIT_<key>_URL`` suffix -> the upstream release the kit builds for it."""
USER_REQUIRED = (
    "ANYTHING_LLM_BASE_URL",
    "ANYTHING_LLM_API_KEY",
    "ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG",
)
SEEDED = "wire-test"
"""The kit's workspace with one embedded document (the fact sheet)."""
SEEDED_EMPTY = "empty"
FACT_QUESTION = "Where is the Wire Test facility?"
"""Shares words with the fact sheet: query mode cites it."""
UNRELATED_QUESTION = "Which river flows through Paris?"
"""Shares no word with it: query mode refuses. The fake embedder hashes words into 4096 slots, and
a document uploaded during the tests has its upload time in its chunk header: none of these
words shares a slot with a time or date token (the kit's "capital" does with "44")."""


@dataclass(frozen=True)
class RealServer:
    """One running real server: where it is, its key (never shown), what it is."""

    name: str
    """Test id: ``1.16.0``, ``1.9.1`` or ``user``."""
    base_url: str
    api_key: str = field(repr=False)
    version: tuple[int, ...] | None
    """Upstream release; ``None`` for a user's server (its ``appVersion`` is often null)."""
    dest: Path | None = None
    """The kit's build directory (its logs are in ``dest/run``); ``None`` for a user's server."""
    workspace: str = SEEDED

    @property
    def kit(self) -> bool:
        return self.dest is not None

    @property
    def server_log(self) -> Path:
        assert self.dest is not None, "only the kit's servers have a log here"
        return self.dest / "run" / "server.log"

    def at_least(self, version: tuple[int, ...]) -> bool:
        return self.version is None or self.version >= version

    def client(self, timeout: float = 60) -> Client:
        return Client(self.base_url, self.api_key, timeout=timeout)

    def environ(self, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
        """``base`` (this process's environment) pointed at this server, like
        :meth:`StandInServer.environ`."""
        env = {
            name: value
            for name, value in (os.environ if base is None else base).items()
            if not name.startswith(("ANYTHING_LLM_", "ALLM_KIT_"))
        }
        env.update(
            ANYTHING_LLM_BASE_URL=self.base_url,
            ANYTHING_LLM_API_KEY=self.api_key,
            ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG=self.workspace,
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        return env | extra

    def http(self) -> httpx.Client:
        """A raw client for the wire-level checks, the key in its default header."""
        return httpx.Client(
            base_url=self.base_url + "/api",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=60,
        )

    def new_workspace(self, prefix: str) -> str:
        """A fresh workspace (no documents, no chats) for a test that changes one; its slug."""
        with self.http() as http:
            response = http.post("/v1/workspace/new", json={"name": unique(prefix)})
            response.raise_for_status()
            return str(response.json()["workspace"]["slug"])


def unique(prefix: str) -> str:
    """A session id or a name no earlier test (or run) used."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def kit_servers(environ: Mapping[str, str] = os.environ) -> list[RealServer]:
    """The kit's servers ``scripts/realserver.sh`` started, oldest release last."""
    key = environ.get("ALLM_KIT_API_KEY", "")
    found = []
    for suffix, release in KIT_VERSIONS.items():
        variable = f"ALLM_KIT_{suffix.replace('.', '_')}"
        url, dest = environ.get(f"{variable}_URL"), environ.get(f"{variable}_DIR")
        if url and dest and key:
            version = tuple(int(part) for part in release.split("."))
            found.append(RealServer(release, url, key, version, Path(dest)))
    return found


def user_server(environ: Mapping[str, str] = os.environ) -> RealServer | None:
    """The user's own server, when one is named for the tests."""
    if environ.get("ALLM_REAL_SERVER") != "1" or not all(environ.get(n) for n in USER_REQUIRED):
        return None
    return RealServer(
        "user",
        environ["ANYTHING_LLM_BASE_URL"],
        environ["ANYTHING_LLM_API_KEY"],
        None,
        workspace=environ["ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG"],
    )


def why_no_kit(environ: Mapping[str, str] = os.environ) -> str:
    """One line saying why the kit's servers are not running."""
    reason = environ.get("ALLM_KIT_SKIP")
    if reason:
        return f"no real AnythingLLM: {reason}"
    return "no real AnythingLLM running (bash scripts/test.sh starts the kit's servers)"
