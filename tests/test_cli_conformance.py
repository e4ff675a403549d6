"""AnythingLLM's own CLI (``any``, npm ``@mintplex-labs/anything-llm-cli``) against the stand-in.

If the official client reads our streams correctly, the stand-in speaks the real protocol. The
CLI pings ``/api/ping`` and ``/api/v1/auth`` on every start, then posts
``{"message", "mode": "chat"}`` to ``stream-chat`` (``-S``: to ``chat``) on the workspace or
thread route, creating the thread (``--nt``) or its default workspace when asked. It prints a
blank line, the streamed text, and a newline.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from allm_jupyter.testing import StandInServer, answer_for, expected_reply, scenarios

REPO = Path(__file__).resolve().parents[1]
INSTALL = "npm install --prefix .ci @mintplex-labs/anything-llm-cli@0.0.13"


def _official_cli() -> str:
    """The ``any`` binary: on PATH if it is AnythingLLM's, else the one CI installs in .ci."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    local = REPO / ".ci" / "node_modules" / ".bin" / "any"
    for candidate in (shutil.which("any"), str(local)):
        if candidate and Path(candidate).exists():
            probe = subprocess.run(
                [candidate, "--help"],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=30,
            )
            if "AnythingLLM" in probe.stdout:
                return candidate
    pytest.fail(f"AnythingLLM's CLI is not installed; from the repository root run: {INSTALL}")


@pytest.fixture(scope="module")
def cli() -> str:
    return _official_cli()


def run(cli: str, server: StandInServer, *args: str) -> str:
    """Run ``any`` against the server; returns stdout after checking that the key never shows."""
    env = {k: v for k, v in server.environ().items() if not k.startswith("ANYTHINGLLM_")}
    del env["ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG"]  # the tests name the workspace with -w
    done = subprocess.run(
        [cli, *args],
        env=env,
        stdin=subprocess.DEVNULL,  # the CLI reads a non-TTY stdin as extra context
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert server.api_key not in done.stdout + done.stderr
    return done.stdout


def last_chat(server: StandInServer) -> tuple[str, object]:
    request = server.chat_requests()[-1]
    assert request.authorized and request.headers["content-type"] == "application/json"
    return request.path, request.json


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (["-w", "research"], "/api/v1/workspace/research/stream-chat"),
        (
            ["-w", "research", "-t", "onboarding-questions"],
            "/api/v1/workspace/research/thread/onboarding-questions/stream-chat",
        ),
    ],
    ids=["workspace", "thread"],
)
def test_streamed_prompt(cli: str, allm_server: StandInServer, args: list[str], path: str) -> None:
    message = "Where is the Research facility?"
    stdout = run(cli, allm_server, "prompt", message, *args)
    assert stdout == f"\n{expected_reply('research', message)}\n"
    assert last_chat(allm_server) == (path, {"message": message, "mode": "chat"})
    assert [r.path for r in allm_server.requests[:2]] == ["/api/ping", "/api/v1/auth"]


def test_blocking_prompt(cli: str, allm_server: StandInServer) -> None:
    stdout = run(cli, allm_server, "prompt", "Hello there", "-w", "assistant", "-S")
    assert stdout == f"{expected_reply('assistant', 'Hello there', mode='chat')}\n"
    assert last_chat(allm_server) == (
        "/api/v1/workspace/assistant/chat",
        {"message": "Hello there", "mode": "chat"},
    )


def test_new_thread_and_default_workspace(cli: str, allm_server: StandInServer) -> None:
    run(cli, allm_server, "prompt", "Hi", "-w", "research", "--nt")
    assert allm_server.requests[-2].path == "/api/v1/workspace/research/thread/new"
    thread = allm_server.store.workspace("research").threads[-1].slug  # type: ignore[union-attr]
    assert last_chat(allm_server)[0] == f"/api/v1/workspace/research/thread/{thread}/stream-chat"

    stdout = run(cli, allm_server, "prompt", "Hi")  # no -w: the CLI makes its own workspace
    assert stdout == f"\n{answer_for('Hi')}\n"
    assert "anythingllm-cli-default-workspace" in allm_server.slugs


@pytest.mark.parametrize(
    "scenario",
    [scenarios.split_reads(), scenarios.line_separator(), scenarios.unknown_event()],
    ids=lambda scenario: scenario.name,
)
def test_the_cli_reads_tricky_streams(
    cli: str, allm_server: StandInServer, scenario: scenarios.Scenario
) -> None:
    allm_server.queue(scenario)
    assert (
        run(cli, allm_server, "prompt", "tricky", "-w", "research")
        == f"\n{scenario.expected_text}\n"
    )


def test_the_cli_splits_reasoning(cli: str, allm_server: StandInServer) -> None:
    allm_server.queue(scenarios.reasoning("Pondering.", "The answer."))
    stdout = run(cli, allm_server, "prompt", "think", "-w", "research")
    assert "Thinking...\nPondering." in stdout and stdout.endswith("The answer.\n")
