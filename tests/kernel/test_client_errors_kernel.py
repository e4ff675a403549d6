"""In a real kernel: an error the magic raised is one line in the magic's words; the same error
from the caller's own code calling a client is the ordinary traceback ending in the same sentence,
in the library's words."""

from __future__ import annotations

import re

from allm_jupyter.testing import StandInServer

_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


def plain(text: str) -> str:
    return _COLOURS.sub("", text)


def test_the_magic_is_one_line_and_user_code_keeps_its_stack(
    kernel, kernel_server: StandInServer
) -> None:
    magic = kernel.run("%%allm workspace=no-such-ws thread=nope\nhello")
    assert magic.status == "error" and magic.reply["ename"] == "WorkspaceNotFoundError"
    magic_lines = [line for line in plain(magic.error_text).splitlines() if line.strip()]
    assert len(magic_lines) == 1

    own = kernel.run(
        "from allm_jupyter import Client\n"
        "def look_up():\n"
        f"    with Client({kernel_server.base_url!r}) as client:\n"
        "        return client.workspace('no-such-ws')\n"
        "look_up()"
    )
    assert own.status == "error" and own.reply["ename"] == "WorkspaceNotFoundError"
    shown = plain(own.error_text)
    assert ("look_up()" in shown and "Traceback" in shown) or "---->" in shown
    sentence = magic_lines[0].partition(": ")[2]
    assert shown.rstrip().endswith(sentence)


def test_the_magic_adds_its_own_hints(kernel) -> None:
    run = kernel.run("%%allm workspace=research thread=no-such-thread\nhello")
    assert run.status == "error" and run.reply["ename"] == "ThreadNotFoundError"
    assert "list them with %allm threads." in plain(run.error_text)
    own = kernel.run(
        "from allm_jupyter import ThreadNotFoundError\n"
        "print(ThreadNotFoundError('research', 'no-such-thread'))"
    )
    assert "list them with threads('research')" in own.text and "%allm" not in own.text
