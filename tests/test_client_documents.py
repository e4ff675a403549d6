"""The Client's attachments and document calls against the stand-in, over loopback sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pages import serving_page

from allm_jupyter import Client, ConfigurationError, UploadError, WorkspaceNotFoundError
from allm_jupyter.attachments import DOCUMENT_MIME, AttachmentLimits, attachment, from_names, table
from allm_jupyter.errors import DocumentNotFoundError
from allm_jupyter.testing import StandInServer

pd = pytest.importorskip("pandas")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

PAGE = (
    "<html><head><title>Heron</title><style>p {color: red}</style></head>"
    "<body><h1>Packet the heron</h1><p>Packet fishes in the Loopback pond at dawn.</p></body></html>"
)


@pytest.fixture
def client(allm_server: StandInServer, make_client: Any) -> Iterator[Client]:
    with make_client(allm_server.base_url, api_key=allm_server.api_key, timeout=10) as c:
        yield c


@pytest.fixture
def page_url() -> Iterator[str]:
    """A web page on a loopback port, for the stand-in to fetch as ``upload-link`` does."""
    with serving_page(PAGE.encode(), "/heron") as url:
        yield url


def _figure() -> Figure:
    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([1, 3, 2])
    return figure


def test_a_dataframe_a_figure_and_a_file_are_sent_as_attachments(
    client: Client, allm_server: StandInServer, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"city": ["Lisbon", "Porto"] * 600, "visitors": range(1200)})
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nThe heron visits at dawn.\n")
    namespace = {"df": frame, "fig": _figure(), "notes": notes}
    attached = from_names(["df", "fig", "notes"], namespace, AttachmentLimits(max_rows=100))
    reply = client.chat("research", "Which city has more visitors?", attachments=attached)

    sent = allm_server.chat_requests()[-1].attachments
    assert [(a.name, a.mime, a.data_type) for a in sent] == [
        ("df.csv", DOCUMENT_MIME, "text/csv"),
        ("fig.png", "image/png", "image/png"),
        ("notes.md", DOCUMENT_MIME, "text/markdown"),
    ]
    assert sent[0].data is not None
    table = sent[0].data.decode()
    assert table.startswith("df: a pandas DataFrame with 1,200 rows and 2 columns")
    assert table.count("\nLisbon,") + table.count("\nPorto,") == 100
    assert sent[1].data is not None and sent[1].data.startswith(b"\x89PNG")
    assert sent[2].data == notes.read_bytes()
    # The stand-in parses document attachments into context, like the real server.
    titles = [s.title for s in reply.sources]
    assert titles[:2] == ["df.csv", "notes.md"]
    assert reply.text.startswith("According to df.csv:")


def test_raw_attachment_dicts_still_pass_through(client: Client, allm_server) -> None:
    raw = {"name": "x.png", "mime": "image/png", "contentString": "data:image/png;base64,AAAA"}
    client.chat("research", "What is this?", attachments=[raw])
    assert allm_server.chat_requests()[-1].json["attachments"] == [raw]


def test_documents_are_refused_in_agent_turns(client: Client, allm_server) -> None:
    doc = attachment("some text", "note")
    before = len(allm_server.requests)
    with pytest.raises(ConfigurationError, match=r"not read in agent turns \(@agent or mode"):
        client.chat("research", "@agent summarise", attachments=[doc])
    with pytest.raises(ConfigurationError, match="ask in chat or query mode"):
        client.chat("research", "summarise", mode="automatic", attachments=[doc])
    assert len(allm_server.requests) == before
    picture = attachment(b"\x89PNG\r\n\x1a\n....", "pic")
    client.chat("research", "@agent describe", attachments=[picture])  # images are fine


def test_upload_text_embeds_a_titled_document(client: Client, allm_server) -> None:
    document = client.upload_text("scratchpad", "Packet the heron likes soup.", title="Heron Facts")
    assert document.title == "heron-facts.txt"
    assert document.docpath.startswith("custom-documents/raw-heron-facts-")
    assert document in client.documents("scratchpad")
    sent = next(r for r in allm_server.requests if r.path.endswith("/raw-text")).json
    assert sent["addToWorkspaces"] == "scratchpad"
    assert sent["metadata"] == {"title": "Heron Facts"}


def test_upload_text_sends_a_dataframe_the_notebook_layer_turned_into_csv(
    client: Client, allm_server
) -> None:
    frame = pd.DataFrame({"n": range(1500)})
    csv = table(frame, max_rows=len(frame)).text  # what %allm upload does before the client
    client.upload_text("scratchpad", csv, title="numbers", description="1500 numbers")
    sent = next(r for r in allm_server.requests if r.path.endswith("/raw-text")).json
    assert sent["textContent"].splitlines() == ["n", *map(str, range(1500))]
    assert sent["metadata"]["description"] == "1500 numbers"


def test_upload_text_refusals_send_nothing(client: Client, allm_server) -> None:
    with pytest.raises(UploadError, match="empty"):
        client.upload_text("scratchpad", "  ", title="blank")
    with pytest.raises(UploadError, match="takes text, not a DataFrame"):
        client.upload_text("scratchpad", pd.DataFrame({"n": [1]}), title="frame")  # type: ignore[arg-type]
    with pytest.raises(WorkspaceNotFoundError, match="no-such"):
        client.upload_text("no-such", "text", title="t")
    assert not [r for r in allm_server.requests if r.path.endswith("/raw-text")]


def test_a_document_that_is_not_embedded_is_an_error(
    client: Client, allm_server: StandInServer, monkeypatch
) -> None:
    # A server whose embedder fails: addToWorkspaces is best effort and says nothing.
    monkeypatch.setattr(allm_server.store, "embed_into", lambda slugs, location: None)
    with pytest.raises(
        UploadError, match=r"^notes was uploaded but not embedded into 'scratchpad'"
    ):
        client.upload_text("scratchpad", "text", title="notes")


def test_upload_link_fetches_and_embeds_the_page(client: Client, allm_server, page_url) -> None:
    document = client.upload_link("scratchpad", page_url)
    assert document.metadata["chunkSource"] == f"link://{page_url}"
    stored = allm_server.store.library[document.docpath].page_content
    assert "Packet fishes in the Loopback pond at dawn." in stored
    assert "color: red" not in stored
    reply = client.chat("scratchpad", "Which pond does Packet fish in at dawn?", mode="query")
    assert (
        reply.text
        == "According to 127.0.0.1_heron.html: Packet fishes in the Loopback pond at dawn."
    )


def test_upload_link_failures(client: Client) -> None:
    with pytest.raises(UploadError, match="is not an http"):
        client.upload_link("scratchpad", "ftp://example.org/file")
    with pytest.raises(
        UploadError, match=r"could not read http://10\.1\.2\.3/x: Not a valid URL\."
    ):
        client.upload_link("scratchpad", "http://10.1.2.3/x")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}/page"
    with pytest.raises(UploadError, match="No URL content found at"):
        client.upload_link("scratchpad", nowhere)
    with pytest.raises(UploadError) as caught:
        client.upload_link("scratchpad", nowhere.replace("://", "://ada:hunter2@"))
    assert "hunter2" not in str(caught.value) and "ada:***@" in str(caught.value)
    assert client.documents("scratchpad") == []


def test_pin_and_unpin_by_file_name_or_path(client: Client) -> None:
    documents = client.documents("research")
    assert documents and not any(d.pinned for d in documents)
    first = documents[0]
    pinned = client.pin("research", first.filename)
    assert pinned.pinned and pinned.docpath == first.docpath
    assert [d.pinned for d in client.documents("research")] == [True] + [False] * (
        len(documents) - 1
    )
    assert not client.unpin("research", first.docpath).pinned
    assert not any(d.pinned for d in client.documents("research"))


def test_pin_names_what_is_missing(client: Client) -> None:
    with pytest.raises(DocumentNotFoundError, match=r"has no document nope\.txt") as caught:
        client.pin("research", "nope.txt")
    assert "team-handbook-onboarding.md" in str(caught.value)
    with pytest.raises(WorkspaceNotFoundError):
        client.pin("no-such", "x")
    with pytest.raises(WorkspaceNotFoundError):
        client.documents("no-such")
