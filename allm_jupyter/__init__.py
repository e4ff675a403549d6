"""Stream answers from an AnythingLLM server into Jupyter: ``%load_ext allm_jupyter``, then ``%%allm``.

The public surface is this module: private modules behind it, each name listed in ``__all__``,
plus the public modules ``events`` and ``attachments``. Importing
it is cheap on purpose (``%load_ext`` must not cost a second): the HTTP client, the fold, the
renderer and the widgets load on first use through the module ``__getattr__`` below.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    AllmError,
    AttachmentError,
    AuthenticationError,
    ChatAbortedError,
    ConfigurationError,
    ConnectionLostError,
    DocumentNotFoundError,
    ServerError,
    ServerUnreachableError,
    StreamTimeoutError,
    ThreadNotFoundError,
    UploadError,
    WorkspaceNotFoundError,
)
from .secret import Secret

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from . import attachments, events
    from .async_client import AsyncChatStream, AsyncClient
    from .batch import Batch
    from .client import ChatStream, Client
    from .config import ClientConfig
    from .events import Event
    from .models import (
        Document,
        HistoryMessage,
        Metrics,
        SearchResult,
        ServerInfo,
        Source,
        Thread,
        Workspace,
    )
    from .reply import Reply
    from .widgets import WorkspacePicker

__version__ = "0.1.0"

_LAZY = {
    "AsyncClient": "async_client",
    "AsyncChatStream": "async_client",
    "Batch": "batch",
    "Client": "client",
    "ChatStream": "client",
    "ClientConfig": "config",
    "Event": "events",
    "Reply": "reply",
    "Document": "models",
    "HistoryMessage": "models",
    "Metrics": "models",
    "SearchResult": "models",
    "ServerInfo": "models",
    "Source": "models",
    "Thread": "models",
    "Workspace": "models",
    "WorkspacePicker": "widgets",
}


_MODULES = ("attachments", "events")
"""Public modules users are sent to (attachment builders, event types), loaded on first use."""


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'allm_jupyter' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    """The public surface, lazy names included (``dir()`` would miss what is not loaded yet)."""
    return sorted(set(__all__) | {"__version__"})


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext allm_jupyter``: register ``%%allm`` and ``%allm``."""
    from .magics import load  # traitlets and IPython's magic machinery only when loaded

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    from .magics import unload  # as in load: the magic loads with the extension only

    unload(ipython)


__all__ = [
    "AllmError",
    "AsyncChatStream",
    "AsyncClient",
    "AttachmentError",
    "AuthenticationError",
    "Batch",
    "ChatAbortedError",
    "ChatStream",
    "Client",
    "ClientConfig",
    "ConfigurationError",
    "ConnectionLostError",
    "Document",
    "DocumentNotFoundError",
    "Event",
    "HistoryMessage",
    "Metrics",
    "Reply",
    "SearchResult",
    "Secret",
    "ServerError",
    "ServerInfo",
    "ServerUnreachableError",
    "Source",
    "StreamTimeoutError",
    "Thread",
    "ThreadNotFoundError",
    "UploadError",
    "Workspace",
    "WorkspaceNotFoundError",
    "WorkspacePicker",
    "attachments",
    "events",
    "load_ipython_extension",
    "unload_ipython_extension",
]
