"""Hanging an answer up from any thread or task, which closing its response cannot do.

Both streams keep the response they read; ``close()``/``stop()`` from elsewhere shut its socket
down, so the read blocked on it ends at once and the server sees the hang-up, and the reader
then closes the response itself (httpx's objects are touched by one thread only). Kept out of
``_protocol``, which has no sockets.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

import httpx


def hang_up(response: httpx.Response) -> None:
    """Shut an answer's connection down, from any thread or task: a read blocked on it ends at
    once (closing the response from another thread does not wake it) and the server sees the
    hang-up; the reader then closes the response itself. Over HTTP/2 (other answers share the
    connection) or a transport without a socket nothing happens: the reader stops at its next
    read."""
    stream = response.extensions.get("network_stream")
    if response.http_version == "HTTP/2" or stream is None:
        return
    sock = stream.get_extra_info("socket")
    with contextlib.suppress(OSError):  # already closed: nothing left to hang up
        if isinstance(sock, ssl.SSLSocket):  # its own shutdown would unwrap TLS under the reader
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        elif sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
