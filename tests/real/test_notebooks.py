"""The notebooks, top to bottom through nbclient, against each real server.

The kit's servers get a fresh workspace per notebook (rag-workflow expects a refusal before its
upload, and adds a document). A user's own server is used as it is named: ``ALLM_REAL_SERVER=1``
plus ``ANYTHING_LLM_BASE_URL``, ``ANYTHING_LLM_API_KEY`` and ``ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG``
(rag-workflow uploads a document into that workspace, which needs the server's collector):

    ALLM_REAL_SERVER=1 ANYTHING_LLM_BASE_URL=… ANYTHING_LLM_API_KEY=… \\
        ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG=… bash scripts/test.sh tests/real/test_notebooks.py
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .servers import RealServer

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

pytestmark = pytest.mark.user_server


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", ["quickstart.ipynb", "rag-workflow.ipynb", "ask-about-data.ipynb"])
def test_notebook_runs_against_the_real_server(real_server: RealServer, name: str) -> None:
    env = real_server.environ()
    if real_server.kit:
        env["ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG"] = real_server.new_workspace("notebook")
    slug = env["ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG"]
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3").execute(cwd=str(NOTEBOOKS), env=env)
    answers = [
        output
        for cell in nb.cells
        if cell.cell_type == "code" and cell.source.startswith("%%allm")
        for output in cell.outputs
        if output.get("metadata", {}).get("allm_jupyter", {}).get("complete")
    ]
    assert answers, "no %%allm cell produced a complete answer"
    leaked = real_server.api_key in json.dumps(nb)
    assert not leaked, "the API key is in the executed notebook"
    if real_server.kit and name == "rag-workflow.ipynb":
        with real_server.client() as client:
            titles = [d.title for d in client.workspace(slug).documents]
        assert titles == ["greenhouse-sensors.md"], "the notebook's upload is not embedded"
