"""Terminal IPython, run for real in a pseudo-terminal against the stand-in: the one-line form asks,
``%allm help`` is aligned plain text and ``%allm pick`` says in one line what to use instead."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from allm_jupyter.testing import StandInServer, expected_reply, scenarios

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>]|\r")
"""Cursor moves, colours and title changes of prompt_toolkit: what a terminal does, not shows."""
NO_PICKER = (
    "The picker needs a notebook front end that draws widgets (JupyterLab, Notebook 7); here, "
    "%allm workspaces, %allm use SLUG and %allm threads do the same."
)


class Terminal:
    """``ipython`` on a pseudo-terminal, typed into line by line like a person would."""

    def __init__(self, env: dict[str, str]) -> None:
        self._master, slave = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self._seen = b""
        self.prompts = 1
        self.wait_for(r"In \[1\]:")

    @property
    def screen(self) -> str:
        """Everything shown so far, without the terminal's control sequences."""
        return _CONTROL.sub("", self._seen.decode(errors="replace"))

    def wait_for(self, pattern: str) -> str:
        """Read until ``pattern`` shows up; a hung IPython fails the test by pytest's timeout."""
        while not re.search(pattern, self.screen):
            readable, _, _ = select.select([self._master], [], [], 5)
            if readable:
                self._seen += os.read(self._master, 65536)
            assert self.process.poll() is None, f"IPython exited:\n{self.screen}"
        return self.screen

    def run(self, line: str) -> str:
        """Type ``line`` and Enter; what it printed before the next prompt."""
        start = len(self.screen)
        os.write(self._master, line.encode() + b"\r")
        self.prompts += 1
        self.wait_for(rf"In \[{self.prompts}\]:")
        printed = self.screen[start:]
        printed = printed[printed.index(line) + len(line) :]  # after the echo of what was typed
        return printed[: printed.rindex(f"In [{self.prompts}]:")].strip("\n")

    def close(self) -> None:
        os.write(self._master, b"exit\r")
        try:
            self.process.wait(timeout=30)
        finally:
            self.process.kill()
            os.close(self._master)


@pytest.fixture
def terminal(allm_server: StandInServer, tmp_path: Path) -> Iterator[Terminal]:
    env = allm_server.environ() | {
        "IPYTHONDIR": str(tmp_path),  # a fresh profile: no config or history of the user's
        "TERM": "xterm",
        "COLUMNS": "200",
        "PROMPT_TOOLKIT_NO_CPR": "1",  # a pty answers no cursor-position request
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    session = Terminal(env)
    try:
        session.run("%load_ext allm_jupyter")
        yield session
    finally:
        session.close()
    assert allm_server.api_key not in session.screen


def test_a_one_line_question_with_a_question_mark_asks(
    terminal: Terminal, allm_server: StandInServer
) -> None:
    printed = terminal.run("%allm What is a workspace?")
    assert [r.json.get("message") for r in allm_server.chat_requests()] == ["What is a workspace?"]
    assert expected_reply("research", "What is a workspace?") in printed
    assert "not found" not in printed
    terminal.run('%allm What\'s a thread, "really"?')
    assert allm_server.chat_requests()[-1].json["message"] == 'What\'s a thread, "really"?'


def test_help_is_aligned_plain_text(terminal: Terminal) -> None:
    printed = terminal.run("%allm help")
    lines = printed.splitlines()
    assert not [line for line in lines if line.startswith("|") or "---|" in line], printed
    assert "`" not in printed and "**" not in printed, "Markdown markup in a terminal"
    start = next(n for n, line in enumerate(lines) if line.startswith("command "))
    column = lines[start].index("does")
    rows = lines[start + 1 :]
    assert len(rows) >= 10
    for row in rows:
        assert row[column - 2 : column] == "  " and row[column] != " ", row


def test_pick_prints_one_line(terminal: Terminal) -> None:
    assert terminal.run("%allm pick") == NO_PICKER


def test_a_failing_answer_says_its_error_once(
    terminal: Terminal, allm_server: StandInServer
) -> None:
    allm_server.queue(scenarios.midstream_abort("Half an answer ", "provider died"))
    printed = terminal.run("%allm -w research -m chat What is new?")
    assert "Half an answer" in printed and "Partial answer" in printed
    assert "ChatAbortedError: The server stopped the answer: provider died." in printed
    assert printed.count("provider died") == 1, printed


def test_a_background_answer_is_refused_in_one_line(
    terminal: Terminal, allm_server: StandInServer
) -> None:
    """A terminal has no output to stream into while the prompt takes the next line: the
    answer would be printed into whatever is being typed."""
    line = "%allm --background -w research What is new?"
    printed = terminal.run(line)
    said = [shown for shown in printed.strip().splitlines() if line not in shown]  # redrawn echo
    assert said == [
        "ConfigurationError: Background answers need a notebook front end (JupyterLab, "
        "Notebook 7) to stream into; here, ask without background."
    ], printed
    assert not allm_server.chat_requests()
    assert expected_reply("research", "Why?") in terminal.run("%allm -w research Why?")
