"""The stop button during an ``%allm`` command ends it in one line, on a server that never answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest


class SilentServer:
    """Accepts connections on 127.0.0.1, reads the request, and never answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.asked = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(connection)
            if connection.recv(65536):
                self.asked.set()

    def close(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        for connection in self._held:
            connection.close()
        self._thread.join()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.parametrize("command", ["workspaces", "status", "search onboarding"])
def test_stopping_a_command_is_one_line(kernel, silent: SilentServer, command: str) -> None:
    kernel.run(f"%config AllmMagics.base_url = '{silent.url}'")
    try:
        silent.asked.clear()
        msg_id = kernel.execute(f"%allm {command}")
        assert silent.asked.wait(30), "the command never reached the server"
        kernel.interrupt()
        run = kernel.collect(msg_id)
    finally:
        kernel.run("%config AllmMagics.base_url = None")
    assert run.status == "error"
    assert run.reply["ename"] == "Interrupted"
    name = command.split()[0]
    assert run.error_text.splitlines() == [
        f"\x1b[0;31mKeyboardInterrupt\x1b[0m: %allm {name} was stopped."
    ]
