"""The stand-in's document routes and attachment handling, status codes and bodies as the real
server's code produces them (server/endpoints/api/document, workspace update-pin,
utils/chats/apiChatHandler processDocumentAttachments)."""

from __future__ import annotations

import base64
import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pages import serving_page

from allm_jupyter.testing import StandInServer

DOCUMENT = "application/anythingllm-document"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def http(allm_server: StandInServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=allm_server.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {allm_server.api_key}"},
    ) as client:
        yield client


def events(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in response.text.split("\n") if line.startswith("data: ")]


def document_attachment(name: str, data: bytes, inner: str = "text/plain") -> dict[str, str]:
    encoded = base64.b64encode(data).decode()
    return {"name": name, "mime": DOCUMENT, "contentString": f"data:{inner};base64,{encoded}"}


def test_raw_text_is_saved_under_its_slugged_title(http: httpx.Client, allm_server) -> None:
    response = http.post(
        "/document/raw-text",
        json={
            "textContent": "Herons eat fish.",
            "metadata": {"title": "Bird Notes.v2.md"},
            "addToWorkspaces": "Scratchpad, nowhere",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["success"], body["error"]) == (True, None)
    [document] = body["documents"]
    assert list(document) == [
        "id",
        "url",
        "title",
        "docAuthor",
        "description",
        "docSource",
        "chunkSource",
        "published",
        "wordCount",
        "pageContent",
        "token_count_estimate",
        "location",
        "isDirectUpload",
    ]
    assert document["title"] == "bird-notes-v2.txt"
    assert document["url"] == "file://bird-notes-v2.txt"
    assert (document["docAuthor"], document["docSource"]) == (
        "no author specified",
        "no source set",
    )
    assert re.fullmatch(f"custom-documents/raw-bird-notes-v2-{UUID}\\.json", document["location"])
    # addToWorkspaces is lower-cased and trimmed; unknown slugs are skipped silently.
    workspace = http.get("/workspace/scratchpad").json()["workspace"][0]
    assert [d["docpath"] for d in workspace["documents"]] == [document["location"]]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"textContent": "x", "metadata": {}},
            "You are missing required metadata key:value pairs in your request. "
            "Required metadata key:values are 'title'",
        ),
        (
            {"textContent": "", "metadata": {"title": "t"}},
            "The 'textContent' key cannot have an empty value.",
        ),
        (
            {"textContent": "x", "metadata": {"title": "t"}, "addToWorkspaces": ["a"]},
            "addToWorkspaces must be a string of comma-separated workspace slugs. Got object",
        ),
    ],
)
def test_raw_text_refusals_are_422(http: httpx.Client, body: dict[str, Any], error: str) -> None:
    response = http.post("/document/raw-text", json=body)
    assert response.status_code == 422
    assert response.json() == {"success": False, "error": error}


def test_raw_text_metadata_may_be_a_json_string(http: httpx.Client) -> None:
    response = http.post(
        "/document/raw-text", json={"textContent": "x", "metadata": json.dumps({"title": "t"})}
    )
    assert response.json()["documents"][0]["title"] == "t.txt"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"link": "http://10.0.0.7/page"},
            {"success": False, "error": "Not a valid URL.", "documents": []},
        ),
        (
            {"link": "ftp://example.org"},
            {"success": False, "error": "Not a valid URL.", "documents": []},
        ),
        ({}, {"success": False}),
    ],
)
def test_upload_link_refusals_are_500_json(http: httpx.Client, body, expected) -> None:
    response = http.post("/document/upload-link", json=body)
    assert response.status_code == 500
    assert response.json() == expected


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/page/"


def test_upload_link_to_nothing_has_no_content(http: httpx.Client) -> None:
    link = closed_port_url()
    response = http.post("/document/upload-link", json={"link": link})
    assert response.status_code == 500
    assert response.json() == {
        "success": False,
        "error": f"No URL content found at {link[:-1]}.",  # the collector drops the last slash
        "documents": [],
    }


def test_an_error_page_is_still_a_page(http: httpx.Client) -> None:
    with serving_page(b"<p>the page</p>", "/page.html") as url:
        link = url.replace("/page.html", "/no-such-page")
        response = http.post("/document/upload-link", json={"link": link})
    assert response.status_code == 200
    [document] = response.json()["documents"]
    assert document["pageContent"] == "not found"
    assert document["title"] == "127.0.0.1_no-such-page.html"
    assert document["chunkSource"] == f"link://{link}"


def test_update_pin_statuses(http: httpx.Client) -> None:
    docpath = http.get("/workspace/research").json()["workspace"][0]["documents"][1]["docpath"]
    ok = http.post("/workspace/research/update-pin", json={"docPath": docpath, "pinStatus": True})
    assert (ok.status_code, ok.json()) == (200, {"message": "Pin status updated successfully"})
    rows = http.get("/workspace/research").json()["workspace"][0]["documents"]
    assert [row["pinned"] for row in rows] == [False, True, False]

    missing = http.post(
        "/workspace/research/update-pin", json={"docPath": "nope", "pinStatus": True}
    )
    assert (missing.status_code, missing.text) == (404, "Not Found")
    assert missing.headers["content-type"].startswith("text/plain")

    unknown = http.post("/workspace/no-such/update-pin", json={"docPath": docpath})
    assert (unknown.status_code, unknown.content) == (500, b"")
    assert [name for name, _ in unknown.headers.items()] == [
        "x-powered-by",
        "vary",
        "date",
        "connection",
        "keep-alive",
        "content-length",
    ]

    # A non-boolean status fails inside Document.update, which the route ignores: 200, no change.
    odd = http.post("/workspace/research/update-pin", json={"docPath": docpath, "pinStatus": "no"})
    assert odd.status_code == 200
    rows = http.get("/workspace/research").json()["workspace"][0]["documents"]
    assert rows[1]["pinned"] is True


def test_document_attachments_become_context_and_sources(http: httpx.Client, allm_server) -> None:
    table = b"city,herons\nLisbon,12\nPorto,30\n" + b"filler " * 200
    image = {
        "name": "p.png",
        "mime": "image/png",
        "contentString": "data:image/png;base64,iVBORw0KGgo=",
    }
    body = {
        "message": "How many herons live in Porto?",
        "mode": "chat",
        "attachments": [
            document_attachment("birds.csv", table, "text/csv"),
            document_attachment("blob.bin", b"\xff\xfe\x00"),  # unreadable: dropped silently
            image,
        ],
    }
    response = http.post("/workspace/research/stream-chat", json=body)
    final = events(response)[-1]
    assert final["type"] == "finalizeResponseStream"
    source = final["sources"][0]
    assert source["title"] == "birds.csv"
    assert source["text"] == table.decode()[:1000] + "...continued on in source document..."
    assert source["isDirectUpload"] is True
    assert re.fullmatch(f"direct-uploads/birds\\.csv-{UUID}\\.json", source["location"])
    assert all(s["title"] != "blob.bin" for s in final["sources"])
    # The recorded request shows what was sent; history keeps only the image.
    recorded = allm_server.chat_requests()[-1].attachments
    assert [(a.name, a.mime, a.data_type, a.data) for a in recorded[:1]] == [
        ("birds.csv", DOCUMENT, "text/csv", table)
    ]
    history = http.get("/workspace/research/chats", params={"orderBy": "desc", "limit": 1}).json()
    assert history["history"][0]["attachments"] == [image]


def test_document_attachments_are_ignored_where_the_server_ignores_them(http: httpx.Client) -> None:
    attachments = [document_attachment("facts.txt", b"Herons are patient hunters.")]
    # Query mode on an empty workspace refuses before attachments are parsed.
    refused = http.post(
        "/workspace/scratchpad/stream-chat",
        json={"message": "Are herons patient?", "mode": "query", "attachments": attachments},
    )
    assert [e["type"] for e in events(refused)] == ["textResponse"]
    # Query mode on a workspace with documents takes the attachment as context.
    answered = http.post(
        "/workspace/research/stream-chat",
        json={"message": "Are herons patient?", "mode": "query", "attachments": attachments},
    )
    final = events(answered)[-1]
    assert final["sources"][0]["title"] == "facts.txt"
    # Agent turns hand attachments to the model unparsed: no document source.
    agent = http.post(
        "/workspace/research/stream-chat",
        json={"message": "@agent are herons patient?", "attachments": attachments},
    )
    assert all(s.get("title") != "facts.txt" for e in events(agent) for s in e.get("sources") or [])


def test_recorded_attachments_decode_only_strict_data_urls(http: httpx.Client, allm_server) -> None:
    sent = [
        {"name": "a.txt", "mime": DOCUMENT, "contentString": "data:text/plain;base64,aGk="},
        {"name": "b.txt", "mime": DOCUMENT, "contentString": "not a data url"},
        {"name": "c.txt", "mime": DOCUMENT, "contentString": "data:text/plain;base64,@@"},
    ]
    http.post(
        "/workspace/research/chat", json={"message": "hi", "mode": "chat", "attachments": sent}
    )
    recorded = allm_server.chat_requests()[-1].attachments
    assert [(a.name, a.data_type, a.data) for a in recorded] == [
        ("a.txt", "text/plain", b"hi"),
        ("b.txt", None, None),
        ("c.txt", "text/plain", None),
    ]


@pytest.mark.parametrize(
    ("name", "title"),
    [("../../x/evil.csv", "xevil.csv"), ("weird.xyz", "weird.xyz"), ("noext", None)],
)
def test_attachment_names_as_the_real_collector_takes_them(
    http: httpx.Client, name: str, title: str | None
) -> None:
    """Checked against the kit's 1.16.0: path parts are stripped, an unknown extension is read
    as text, a name without an extension is dropped."""
    body = {
        "message": "Where does Packet live?",
        "mode": "chat",
        "attachments": [document_attachment(name, b"Packet lives at Wire Lake.")],
    }
    final = events(http.post("/workspace/scratchpad/stream-chat", json=body))[-1]
    titles = [s["title"] for s in final["sources"]]
    assert titles == ([title] if title else [])
