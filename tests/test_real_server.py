"""The notebooks and the document commands against a real AnythingLLM server, when one is named for the tests.

The rest of the suite uses the stand-in; this is the check that the notebooks also run against a
real server. Opt in with ``ALLM_REAL_SERVER=1`` plus the usual ``ANYTHING_LLM_BASE_URL``,
``ANYTHING_LLM_API_KEY`` and ``ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG`` (rag-workflow and the document commands upload into that
workspace, and ask-about-data attaches documents, which needs the server's document collector):

    ALLM_REAL_SERVER=1 ANYTHING_LLM_BASE_URL=… ANYTHING_LLM_API_KEY=… \\
        ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG=… bash scripts/test.sh tests/test_real_server.py
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
REQUIRED = ("ANYTHING_LLM_BASE_URL", "ANYTHING_LLM_API_KEY", "ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG")

pytestmark = pytest.mark.skipif(
    os.environ.get("ALLM_REAL_SERVER") != "1" or not all(os.environ.get(n) for n in REQUIRED),
    reason="no real AnythingLLM server named (ALLM_REAL_SERVER=1 and " + ", ".join(REQUIRED) + ")",
)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", ["quickstart.ipynb", "rag-workflow.ipynb", "ask-about-data.ipynb"])
def test_notebook_runs_against_the_real_server(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3").execute(cwd=str(NOTEBOOKS))
    answers = [
        output
        for cell in nb.cells
        if cell.cell_type == "code" and cell.source.startswith("%%allm")
        for output in cell.outputs
        if output.get("metadata", {}).get("allm_jupyter", {}).get("complete")
    ]
    assert answers, "no %%allm cell produced a complete answer"
    assert os.environ["ANYTHING_LLM_API_KEY"] not in json.dumps(nb)


@pytest.mark.timeout(900)
def test_document_commands_against_the_real_server() -> None:
    """``%allm upload`` of a variable, ``documents``, ``pin`` and ``unpin``, in a real kernel."""
    from kernel.conftest import KernelSession  # the kernel tests' session, which checks for the key

    variable = f"allm_check_{uuid.uuid4().hex[:8]}"
    document = f"{variable}.txt"  # the server names raw text after its slugged title
    session = KernelSession(dict(os.environ))
    try:
        assert session.run("%load_ext allm_jupyter").status == "ok"
        session.run(f"{variable} = 'The check document says herons are patient.'")
        upload = session.run(f"%allm upload {variable}", timeout=600)
        assert upload.status == "ok", upload.error_text
        assert document in upload.text
        for verb, pinned in (("pin", True), ("unpin", False)):
            changed = session.run(f"%allm {verb} {document}")
            assert changed.status == "ok", changed.error_text
            listing = session.run("%allm documents").text
            row = next(line for line in listing.splitlines() if document in line)
            assert row.startswith("📌") is pinned, listing
    finally:
        session.shutdown()
