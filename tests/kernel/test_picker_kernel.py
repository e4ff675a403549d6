"""The WorkspacePicker in a real kernel: what it picks is what ``%%allm`` asks."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from conftest import KernelSession, kernel_env
from nbclient import NotebookClient

from allm_jupyter.testing import RecordedRequest, StandInServer

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
NEW_PICKER = "from allm_jupyter import WorkspacePicker\npicker = WorkspacePicker()\n"


def ok(kernel: KernelSession, code: str) -> str:
    """Run a cell that must succeed; its text output."""
    run = kernel.run(code)
    assert run.status == "ok", run.error_text
    return run.text


def shown(kernel: KernelSession, expression: str) -> object:
    return json.loads(ok(kernel, f"import json; print(json.dumps({expression}))"))


def last_chat(server: StandInServer) -> RecordedRequest:
    return server.chat_requests()[-1]


def test_picker_offers_the_servers_slugs(kernel: KernelSession, kernel_server) -> None:
    ok(kernel, NEW_PICKER)
    assert shown(kernel, "picker.slugs") == kernel_server.slugs


def test_the_pick_is_what_the_magic_asks(kernel: KernelSession, kernel_server) -> None:
    ok(kernel, NEW_PICKER + "picker.value = 'scratchpad'\npicker.mode = 'chat'")
    ok(kernel, "%%allm\nWhat is new?")
    request = last_chat(kernel_server)
    assert request.path == "/api/v1/workspace/scratchpad/stream-chat"
    assert request.json["mode"] == "chat"

    ok(kernel, "picker.value = 'research'\npicker.thread = 'onboarding-questions'")
    ok(kernel, "picker.mode = 'query'")
    ok(kernel, "%%allm\nWhere is the facility?")
    request = last_chat(kernel_server)
    assert request.path == "/api/v1/workspace/research/thread/onboarding-questions/stream-chat"
    assert request.json["mode"] == "query"


def test_new_thread_is_created_then_shown_everywhere(kernel: KernelSession, kernel_server) -> None:
    ok(kernel, NEW_PICKER + "picker.value = 'research'\npicker.thread = 'new'")
    ok(kernel, "%%allm\nFirst question in a fresh thread")
    created = last_chat(kernel_server).path.split("/thread/")[1].split("/")[0]
    assert created not in ("", "new", "onboarding-questions")
    assert shown(kernel, "[picker.thread, WorkspacePicker().thread]") == [created, created]
    ok(kernel, "%%allm\nSecond question")
    assert f"/thread/{created}/" in last_chat(kernel_server).path


def test_allm_use_and_allm_pick_agree(kernel: KernelSession, kernel_server) -> None:
    ok(kernel, NEW_PICKER)
    assert "Using workspace" in ok(kernel, "%allm use assistant")
    assert shown(kernel, "[picker.value, picker.thread]") == ["assistant", None]
    run = kernel.run("%allm pick")
    assert run.status == "ok", run.error_text
    assert [o for o in run.of_type("execute_result") if WIDGET_VIEW in o["data"]]


def test_saved_notebook_holds_no_key(kernel_server: StandInServer, tmp_path: Path) -> None:
    cells = [
        "%load_ext allm_jupyter",
        "from allm_jupyter import WorkspacePicker\n"
        "picker = WorkspacePicker()\npicker.value = picker.slugs[0]\npicker",
        "%allm pick",
        "%%allm\nWhat is the mascot of the facility?",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=60, kernel_name="python3", store_widget_state=True).execute(
        env=kernel_env(kernel_server)
    )
    path = tmp_path / "picked.ipynb"
    nbformat.write(notebook, path)
    saved = path.read_text(encoding="utf-8")
    state = notebook.metadata["widgets"][WIDGET_STATE]["state"]
    assert any(m["state"].get("description") == "Workspace" for m in state.values())
    assert "Packet" in saved, "the answer should be in the notebook"
    assert kernel_server.api_key not in saved
