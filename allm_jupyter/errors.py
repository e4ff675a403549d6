"""One exception family, each with a one-sentence message a user can act on.

Every error raised once an answer has started carries what arrived so far as ``error.reply``, so a
failure never throws away text the server already sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .reply import Reply

API_KEY_ENV = "ANYTHING_LLM_API_KEY"
BASE_URL_ENV = "ANYTHING_LLM_BASE_URL"
WORKSPACE_ENV = "ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG"


class AllmError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str, *, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reply = reply

    def __str__(self) -> str:
        return self.message


class ConfigurationError(AllmError):
    """A setting is missing or malformed (no workspace chosen, bad URL, bad option)."""


class AuthenticationError(AllmError):
    """The server answered 403: the API key is missing or not valid."""

    def __init__(self, *, key_set: bool, base_url: str) -> None:
        if key_set:
            message = (
                f"The server at {base_url} rejected the API key; set {API_KEY_ENV} to a key from "
                "Settings > Developer API."
            )
        else:
            message = (
                f"No API key is set for {base_url}; set {API_KEY_ENV} to a key from "
                "Settings > Developer API."
            )
        super().__init__(message)


class ServerUnreachableError(AllmError):
    """No HTTP answer at all: wrong URL, server down, DNS or TLS failure."""

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(
            f"Cannot reach the AnythingLLM server at {base_url} ({reason}); check that it runs "
            f"and that {BASE_URL_ENV} points at it."
        )
        self.base_url = base_url


class WorkspaceNotFoundError(AllmError):
    """The slug names no workspace on the server."""

    def __init__(self, slug: str, available: Sequence[str]) -> None:
        if available:
            listed = ", ".join(available[:20]) + (", …" if len(available) > 20 else "")
            hint = f"available: {listed}"
        else:
            hint = "the server has no workspaces yet"
        super().__init__(f"There is no workspace '{slug}' on the server ({hint}).")
        self.slug = slug
        self.available = list(available)


class ThreadNotFoundError(AllmError):
    """The thread slug names no thread of the workspace."""

    def __init__(self, workspace: str, thread: str) -> None:
        super().__init__(
            f"Workspace '{workspace}' has no thread '{thread}'; list them with %allm threads."
        )
        self.workspace = workspace
        self.thread = thread


class ServerError(AllmError):
    """The server answered with an error status or an error body we could not map further."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str | None = None,
        reply: Reply | None = None,
    ) -> None:
        super().__init__(message, reply=reply)
        self.status = status
        self.detail = detail
        """The server's own words, when it gave any."""


class ChatAbortedError(AllmError):
    """The server aborted the answer (its LLM or vector database failed); carries its message."""


class StreamTimeoutError(AllmError):
    """No byte arrived for ``timeout`` seconds: the real server can hang forever mid-answer."""


class ConnectionLostError(AllmError):
    """The connection broke before the answer ended."""


class UploadError(AllmError):
    """A document could not be uploaded or embedded."""


class AttachmentError(AllmError):
    """A notebook object cannot be attached: unknown type, missing name, too large."""


class DocumentNotFoundError(AllmError):
    """The workspace has no such document (to pin or unpin)."""
