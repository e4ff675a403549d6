"""``Client(base_url=…, api_key=…)``: its messages name the argument, not environment variables
the caller never used (issue 12, point 8), over loopback against the stand-in."""

from __future__ import annotations

import socket

import pytest

from allm_jupyter.errors import AuthenticationError, ConfigurationError, ServerUnreachableError
from allm_jupyter.testing import StandInServer


def nothing_listening() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_an_unreachable_url_names_the_argument(make_client) -> None:
    url = nothing_listening()
    with (
        make_client(base_url=url, api_key="k") as client,
        pytest.raises(ServerUnreachableError) as caught,
    ):
        client.workspaces()
    assert f"Cannot reach the AnythingLLM server at {url}" in caught.value.message
    assert "that the base_url argument points at it" in caught.value.message
    assert "ANYTHING_LLM" not in caught.value.message


def test_a_malformed_url_names_the_argument(make_client) -> None:
    with pytest.raises(ConfigurationError, match=r"set the base_url argument to e\.g\.") as caught:
        make_client(base_url="ftp://x", api_key="k")
    assert "ANYTHING_LLM" not in caught.value.message


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("wrong-key", "rejected the API key from the api_key argument"),
        ("", "No API key is set for {url} in the api_key argument"),
    ],
)
def test_key_problems_name_the_argument(
    make_client, allm_server: StandInServer, key: str, expected: str
) -> None:
    with (
        make_client(base_url=allm_server.base_url, api_key=key) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.workspaces()
    assert expected.format(url=allm_server.base_url) in caught.value.message
    assert "ANYTHING_LLM" not in caught.value.message


def test_without_arguments_the_environment_is_named(
    make_client, allm_server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYTHING_LLM_BASE_URL", allm_server.base_url)
    monkeypatch.delenv("ANYTHING_LLM_API_KEY", raising=False)
    with make_client() as client, pytest.raises(AuthenticationError) as caught:
        client.workspaces()
    assert "set ANYTHING_LLM_API_KEY or pass api_key" in caught.value.message
