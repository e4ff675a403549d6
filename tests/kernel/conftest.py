"""A real IPython kernel talking to a real stand-in server over loopback.

``kernel.run(code)`` executes one cell like a notebook front end would and returns every iopub
message of that execution, so tests assert on exactly what a notebook would receive.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from allm_jupyter.testing import StandInServer


@dataclass
class CellRun:
    status: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """Contents of the output messages, each with its ``msg_type`` added."""
        kinds = ("display_data", "update_display_data", "stream", "error", "execute_result")
        return [
            {"msg_type": m["msg_type"], **m["content"]}
            for m in self.messages
            if m["msg_type"] in kinds
        ]

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [o for o in self.outputs if o["msg_type"] == msg_type]

    @property
    def text(self) -> str:
        """Everything a reader would see as text: streams, plain-text reprs, error lines."""
        parts: list[str] = []
        for out in self.outputs:
            if out["msg_type"] == "stream":
                parts.append(out["text"])
            elif out["msg_type"] == "error":
                parts.append("\n".join(out["traceback"]))
            elif "data" in out:
                parts.append(out["data"].get("text/plain", ""))
        return "\n".join(parts)

    @property
    def error_text(self) -> str:
        errors = self.of_type("error")
        return "\n".join("\n".join(e["traceback"]) for e in errors)

    @property
    def final_markdown(self) -> str:
        """The Markdown of the last display or update of the answer's output."""
        shown = [
            o for o in self.outputs if o["msg_type"] in ("display_data", "update_display_data")
        ]
        assert shown, f"no display in {self.outputs!r}"
        return shown[-1]["data"]["text/markdown"]


class KernelSession:
    """One kernel; every message it sends is checked for the API key as it is collected."""

    def __init__(self, env: dict[str, str]) -> None:
        self.secret = env.get("ANYTHING_LLM_API_KEY", "")
        self._early: dict[str, list[dict[str, Any]]] = {}
        self._seen: dict[str, list[dict[str, Any]]] = {}
        """Every iopub message read, by the cell it belongs to (for :meth:`outputs_until`)."""
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str) -> str:
        """Send a cell without waiting; pair with :meth:`collect`."""
        return self.client.execute(code, store_history=True, allow_stdin=False)

    def collect(self, msg_id: str, timeout: float = 60) -> CellRun:
        messages = self._early.pop(msg_id, [])
        while True:
            try:
                msg = self._read(timeout)
            except queue.Empty:
                raise AssertionError(f"kernel produced nothing for {timeout} s") from None
            parent = msg["parent_header"].get("msg_id")
            if parent != msg_id:  # a background answer's cell may still receive updates
                self._early.setdefault(parent, []).append(msg)
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            messages.append(msg)
        reply = self.client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=timeout)
        if self.secret:
            seen = json.dumps([messages, reply["content"]], default=str)
            assert self.secret not in seen, "the API key appeared in a kernel message"
        return CellRun(status=reply["content"]["status"], messages=messages, reply=reply["content"])

    def run(self, code: str, timeout: float = 60) -> CellRun:
        return self.collect(self.execute(code), timeout=timeout)

    def next_message(self, msg_id: str, timeout: float = 30) -> dict[str, Any]:
        """The next iopub message of this execution (to act while a cell is still running)."""
        while True:
            msg = self._read(timeout)
            if msg["parent_header"].get("msg_id") == msg_id:
                self._early.setdefault(msg_id, []).append(msg)
                return msg

    def outputs_until(
        self, msg_id: str, done: Callable[[CellRun], bool], timeout: float = 60
    ) -> CellRun:
        """What the cell ``msg_id`` received so far, reading on until ``done(run)``: a background
        answer draws into its cell after the cell has finished."""
        while True:
            messages = self._seen.get(msg_id, [])
            run = CellRun("ok", [m for m in messages if m["msg_type"] != "status"])
            if done(run):
                return run
            try:
                msg = self._read(timeout)
            except queue.Empty:
                raise AssertionError(f"the cell never got there in {timeout} s") from None
            self._early.setdefault(msg["parent_header"].get("msg_id"), []).append(msg)

    def _read(self, timeout: float) -> dict[str, Any]:
        msg: dict[str, Any] = self.client.get_iopub_msg(timeout=timeout)
        if self.secret:
            assert self.secret not in json.dumps(msg, default=str), "the API key in a message"
        self._seen.setdefault(msg["parent_header"].get("msg_id"), []).append(msg)
        return msg

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def kernel_env(server: StandInServer, **extra: str) -> dict[str, str]:
    env = server.environ() | {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    del env["ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG"]  # these tests choose workspaces themselves
    return env | extra


@pytest.fixture(scope="module")
def kernel_server() -> Iterator[StandInServer]:
    with StandInServer(speed=0) as server:
        yield server


@contextmanager
def loaded_kernel(env: dict[str, str], setup: str = "") -> Iterator[KernelSession]:
    """A kernel with the extension loaded (and ``setup`` run), shut down afterwards."""
    session = KernelSession(env)
    try:
        loaded = session.run(f"%load_ext allm_jupyter\n{setup}")
        assert loaded.status == "ok", loaded.error_text
        yield session
    finally:
        session.shutdown()


@pytest.fixture(scope="module")
def kernel(kernel_server: StandInServer) -> Iterator[KernelSession]:
    with loaded_kernel(kernel_env(kernel_server)) as session:
        yield session
