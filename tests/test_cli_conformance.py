"""AnythingLLM's own CLI (``any``, npm ``@mintplex-labs/anything-llm-cli``) against the stand-in,
and its prompts against the real servers of tests/real too.

If the official client reads our streams correctly, the stand-in speaks the real protocol. The
CLI pings ``/api/ping`` and ``/api/v1/auth`` on every start, then posts
``{"message", "mode": "chat"}`` to ``stream-chat`` (``-S``: to ``chat``) on the workspace or
thread route, creating the thread (``--nt``) or its default workspace when asked. It prints a
blank line, the streamed text, and a newline.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from real.servers import SEEDED, RealServer, kit_servers, unique

from allm_jupyter.testing import StandInServer, answer_for, scenarios
from allm_jupyter.testing.data import fake_reply

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


@dataclass(frozen=True)
class Target:
    """The server a prompt test talks to: the stand-in (its requests are checked too) or a real
    one (the kit's fake LLM answers every chat-mode prompt with ``fake_reply``)."""

    server: StandInServer | RealServer
    workspace: str
    thread: str
    agent_workspace: str
    """A workspace whose own chatMode is ``automatic`` (the CLI asks in ``chat`` mode anyway)."""

    @property
    def standin(self) -> StandInServer | None:
        return self.server if isinstance(self.server, StandInServer) else None

    def reply(self, workspace: str, message: str) -> str:
        if self.standin is None:
            return fake_reply(message)
        return self.standin.expected_reply(workspace, message, mode="chat")


REAL = [pytest.param(server, id=server.name) for server in kit_servers()]


@pytest.fixture(params=[pytest.param(None, id="stand-in"), *REAL])
def target(request: pytest.FixtureRequest, allm_server: StandInServer) -> Target:
    real: RealServer | None = request.param
    if real is None:
        return Target(allm_server, "research", "onboarding-questions", "assistant")
    with real.client() as client:
        thread = client.new_thread(SEEDED, unique("cli")).slug
    return Target(real, SEEDED, thread, SEEDED)


def run(cli: str, server: StandInServer | RealServer, *args: str) -> str:
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


@pytest.mark.parametrize("route", ["workspace", "thread"])
def test_streamed_prompt(cli: str, target: Target, route: str) -> None:
    message = f"Where is the {target.workspace} facility?"
    args = ["-w", target.workspace] + (["-t", target.thread] if route == "thread" else [])
    stdout = run(cli, target.server, "prompt", message, *args)
    assert stdout == f"\n{target.reply(target.workspace, message)}\n"
    if target.standin is not None:
        path = f"/api/v1/workspace/{target.workspace}"
        path += f"/thread/{target.thread}" if route == "thread" else ""
        assert last_chat(target.standin) == (
            f"{path}/stream-chat",
            {"message": message, "mode": "chat"},
        )
        assert [r.path for r in target.standin.requests[:2]] == ["/api/ping", "/api/v1/auth"]


def test_blocking_prompt(cli: str, target: Target) -> None:
    stdout = run(cli, target.server, "prompt", "Hello there", "-w", target.agent_workspace, "-S")
    assert stdout == f"{target.reply(target.agent_workspace, 'Hello there')}\n"
    if target.standin is not None:
        assert last_chat(target.standin) == (
            f"/api/v1/workspace/{target.agent_workspace}/chat",
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
