"""``%%allm`` and the WorkspacePicker in a real IPython kernel, against each real server.

The kernel harness is tests/kernel's (``KernelSession`` checks every message for the API key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kernel.conftest import CellRun, KernelSession, loaded_kernel

from allm_jupyter.testing import REFUSAL_TEXT
from allm_jupyter.testing.data import fake_reply

from .servers import FACT_QUESTION, SEEDED, SEEDED_EMPTY, UNRELATED_QUESTION, RealServer, unique


@pytest.fixture(scope="module")
def kernel(real_server: RealServer) -> Iterator[KernelSession]:
    env = real_server.environ()
    del env["ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG"]  # these tests choose workspaces themselves
    with loaded_kernel(env) as session:
        yield session


def ok(kernel: KernelSession, code: str) -> CellRun:
    run = kernel.run(code)
    assert run.status == "ok", run.error_text
    return run


def shown(kernel: KernelSession, expression: str) -> object:
    return json.loads(ok(kernel, f"import json; print(json.dumps({expression}))").text)


def test_the_answer_streams_into_one_output(kernel: KernelSession) -> None:
    run = ok(
        kernel, f"%%allm workspace={SEEDED} mode=chat session={unique('kernel')}\n{FACT_QUESTION}"
    )
    displays = run.of_type("display_data")
    updates = run.of_type("update_display_data")
    assert len(displays) == 1 and updates
    ids = {m["transient"]["display_id"] for m in displays + updates}
    assert len(ids) == 1, "every update goes to the one output"
    final = run.final_markdown
    assert fake_reply(FACT_QUESTION) in final
    assert "Sources (1)" in final and "wire-fact-sheet.txt" in final
    assert updates[-1]["metadata"]["allm_jupyter"]["complete"] is True
    assert not run.of_type("execute_result")


def test_reasoning_and_answer_are_kept_apart(kernel: KernelSession) -> None:
    ok(kernel, f"%%allm workspace={SEEDED} mode=chat out=thought\nTRIGGER_THINK hello")
    assert shown(kernel, "[thought.reasoning, thought.answer]") == [
        "pondering",
        fake_reply("TRIGGER_THINK hello"),
    ]


def test_an_unknown_workspace_fails_the_cell_in_one_sentence(kernel: KernelSession) -> None:
    run = kernel.run("%%allm workspace=no-such-workspace\nIs anybody there?")
    assert run.status == "error"
    assert "There is no workspace 'no-such-workspace'" in run.error_text
    assert SEEDED in run.error_text, "the message lists the real workspaces"


def test_an_upstream_failure_fails_the_cell_with_the_servers_words(kernel: KernelSession) -> None:
    run = kernel.run(f"%%allm workspace={SEEDED} mode=chat\nTRIGGER_HTTP500")
    assert run.status == "error"
    assert "fake upstream exploded" in run.error_text


def test_the_picker_offers_the_servers_workspaces_and_its_pick_is_asked(
    kernel: KernelSession,
) -> None:
    ok(kernel, "from allm_jupyter import WorkspacePicker\npicker = WorkspacePicker()")
    slugs = shown(kernel, "picker.slugs")
    assert isinstance(slugs, list) and {SEEDED, SEEDED_EMPTY} <= set(slugs)
    ok(kernel, f"picker.value = {SEEDED_EMPTY!r}\npicker.mode = 'query'")
    ok(kernel, f"%%allm\n{UNRELATED_QUESTION}")
    assert shown(kernel, "[_allm.workspace, _allm.refusal, _allm.text]") == [
        SEEDED_EMPTY,
        True,
        REFUSAL_TEXT,
    ]

    ok(kernel, f"picker.value = {SEEDED!r}\npicker.mode = 'chat'\npicker.thread = 'new'")
    ok(kernel, "%%allm\nFirst question in a fresh thread")
    thread = shown(kernel, "picker.thread")
    assert isinstance(thread, str) and thread not in ("", "new")
    assert shown(kernel, "_allm.thread") == thread
    assert shown(kernel, "_allm.text") == fake_reply("First question in a fresh thread")


def test_document_commands(kernel: KernelSession, real_server: RealServer) -> None:
    """``%allm upload`` of a variable, ``documents``, ``pin`` and ``unpin``, in a fresh workspace."""
    slug = real_server.new_workspace("documents")
    variable = unique("allm_check").replace("-", "_")
    document = f"{variable}.txt"  # the server names raw text after its slugged title
    ok(kernel, f"%allm use {slug}")
    ok(kernel, f"{variable} = 'The check document says herons are patient.'")
    upload = kernel.run(f"%allm upload {variable}", timeout=600)
    assert upload.status == "ok", upload.error_text
    assert document in upload.text
    for verb, pinned in (("pin", True), ("unpin", False)):
        ok(kernel, f"%allm {verb} {document}")
        listing = ok(kernel, "%allm documents").text
        row = next(line for line in listing.splitlines() if document in line)
        assert row.startswith("📌") is pinned, listing
