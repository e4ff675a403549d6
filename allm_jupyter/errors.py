"""One exception family, each with a one-sentence message a caller can act on.

Every error raised once an answer has started carries what arrived so far as ``error.reply``, so a
failure never throws away text the server already sent. The messages speak the library's language
(arguments, environment variables); the magic adds its own hints (``%allm login``, ``timeout=``)
where it catches an error, and marks it so IPython shows it as one line. Every error pickles (same
class, message and fields), for joblib, multiprocessing and ipyparallel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._terminal import terminal_text, unlinked

if TYPE_CHECKING:
    from .reply import Reply


class AllmError(Exception):
    """Base of every error this package raises on purpose."""

    one_line = False
    """Set by the magic for an error it raises: IPython then shows only the sentence."""

    def __init__(self, message: str, *, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reply = reply

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by state, not by ``__init__`` arguments (the subclasses take different ones)."""
        return (_rebuild, (type(self), self.message, dict(vars(self))))

    def reword(self, message: str) -> None:
        """Change the sentence (the magic adds its hints), keeping the class and the fields."""
        self.message = message
        self.args = (message,)

    @property
    def _render_traceback_(self) -> Callable[[], list[str]]:
        """How IPython shows an error the magic raised: its one sentence, without our stack.

        Only there: an error from the caller's own code calling a client has no such attribute
        (``hasattr`` is false), so IPython shows the ordinary traceback, ending in the same
        sentence. The error reply keeps the real class as ``ename``, so nbclient and papermill
        can tell a missing workspace from a timeout; ``%tb`` still prints the whole traceback.
        """
        if not self.one_line:
            raise AttributeError("_render_traceback_")
        return self._one_line

    def _one_line(self) -> list[str]:
        message = unlinked(terminal_text(self.message))
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {message}"]


def _rebuild(kind: type[AllmError], message: str, state: dict[str, Any]) -> AllmError:
    error = kind.__new__(kind)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigurationError(AllmError):
    """A setting is missing or malformed (no workspace chosen, bad URL, bad option)."""


class AuthenticationError(AllmError):
    """The server answered 403: the API key is missing or not valid."""

    def __init__(self, *, key_set: bool, base_url: str, key_origin: str) -> None:
        if key_set:
            message = (
                f"The server at {base_url} rejected the API key from {key_origin}; use a key "
                "from Settings > Developer API."
            )
        elif key_origin == "ANYTHING_LLM_API_KEY":  # nothing given anywhere: say how to give one
            message = (
                f"No API key is set for {base_url}; set ANYTHING_LLM_API_KEY or pass api_key, "
                "with a key from Settings > Developer API."
            )
        else:  # an empty key given in code: that is the place to fix
            message = (
                f"No API key is set for {base_url} in {key_origin}; use a key from "
                "Settings > Developer API."
            )
        super().__init__(message)
        self.key_set = key_set
        self.base_url = base_url
        self.key_origin = key_origin


class ServerUnreachableError(AllmError):
    """No HTTP answer at all: wrong URL, server down, DNS or TLS failure."""

    def __init__(self, base_url: str, reason: str, *, url_origin: str) -> None:
        super().__init__(
            f"Cannot reach the AnythingLLM server at {base_url} ({reason}); check that it runs "
            f"and that {url_origin} points at it."
        )
        self.base_url = base_url
        self.reason = reason
        self.url_origin = url_origin


class WorkspaceNotFoundError(AllmError):
    """The slug names no workspace on the server."""

    def __init__(self, slug: str, available: Sequence[str]) -> None:
        import difflib  # only on this error: off the extension's load path

        close = difflib.get_close_matches(slug.lower(), available, n=1)
        if close:
            hint = f"did you mean '{close[0]}'?"
        elif available:
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
            f"Workspace '{workspace}' has no thread '{thread}'; list them with threads('{workspace}')."
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
