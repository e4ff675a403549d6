"""Stream answers from an AnythingLLM server into Jupyter: ``%load_ext allm_jupyter``, then ``%%allm``.

Importing the package is cheap on purpose (``%load_ext`` must not cost a second): the HTTP client,
the widgets and the rest load on first use through the module ``__getattr__`` below.
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

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .client import ChatStream, Client
    from .reply import Metrics, Reply, Source
    from .widgets import WorkspacePicker

__version__ = "0.1.0"

_LAZY = {
    "Client": "client",
    "ChatStream": "client",
    "Reply": "reply",
    "Source": "reply",
    "Metrics": "reply",
    "WorkspacePicker": "widgets",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'allm_jupyter' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext allm_jupyter``: register ``%%allm`` and ``%allm``."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    from .magics import unload

    unload(ipython)


__all__ = [
    "AllmError",
    "AttachmentError",
    "AuthenticationError",
    "ChatAbortedError",
    "ChatStream",
    "Client",
    "ConfigurationError",
    "ConnectionLostError",
    "DocumentNotFoundError",
    "Metrics",
    "Reply",
    "ServerError",
    "ServerUnreachableError",
    "Source",
    "StreamTimeoutError",
    "ThreadNotFoundError",
    "UploadError",
    "WorkspaceNotFoundError",
    "WorkspacePicker",
    "load_ipython_extension",
    "unload_ipython_extension",
]
