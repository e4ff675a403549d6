"""Server URLs: normalising what users paste, and masking passwords in them."""

from __future__ import annotations

import pytest

from allm_jupyter.errors import ConfigurationError
from allm_jupyter.urls import normalize_base_url, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://admin:hunter2@h:1", "http://admin:***@h:1"),
        ("admin:hunter2@h:1", "admin:***@h:1"),
        ("http://admin:hun/ter2@h:1", "http://admin:***@h:1"),
        ("http://[::1]:3001", "http://[::1]:3001"),
        ("http://user@h", "http://user@h"),
        ("http://h:1/x?y=a:b@c", "http://h:1/x?y=a:b@c"),
    ],
)
def test_url_passwords_are_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_scheme_less_url_password_never_shows_in_its_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        normalize_base_url("admin:hunter2@127.0.0.1:notaport")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://a..b:1", "http://[::1:3001", "http://h:99999", "ftp://h"])
def test_malformed_urls_are_one_sentence(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"is not an http\(s\) URL"):
        normalize_base_url(url)
