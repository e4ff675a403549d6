"""Both notebooks against a real AnythingLLM server, when one is named for the tests.

The rest of the suite uses the stand-in; this is the check that the notebooks also run against a
real server. Opt in with ``ALLM_REAL_SERVER=1`` plus the usual ``ANYTHING_LLM_BASE_URL``,
``ANYTHING_LLM_API_KEY`` and ``ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG`` (rag-workflow uploads a
document into that workspace, which needs the server's document collector running):

    ALLM_REAL_SERVER=1 ANYTHING_LLM_BASE_URL=… ANYTHING_LLM_API_KEY=… \\
        ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG=… bash scripts/test.sh tests/test_real_server.py
"""

from __future__ import annotations

import json
import os
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
@pytest.mark.parametrize("name", ["quickstart.ipynb", "rag-workflow.ipynb"])
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
