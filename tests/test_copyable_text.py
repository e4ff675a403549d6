"""Error lines and printed lines: a URL in them is exactly the URL, only unsafe links are broken.

The oracle for "what a front end links" is JupyterLab's own linkifier (``webLinkRegex`` in
``@jupyterlab/rendermime``, copied below), plus the schemes that run code or read local files,
which other front ends (VS Code, terminals) link even without ``//``.
"""

from __future__ import annotations

import re
import string

from hostile import closed_port_url
from hypothesis import assume, given
from hypothesis import strategies as st

from allm_jupyter import Client
from allm_jupyter._terminal import terminal_text, unlinked
from allm_jupyter.errors import (
    AllmError,
    AuthenticationError,
    ServerError,
    ServerUnreachableError,
)

JOINER = "\u2060"
_STOP = "\\s\\x00-\\x20\\x7f-\\x9f"
JUPYTERLAB_LINK = re.compile(
    rf"(?:[a-zA-Z][a-zA-Z0-9+.-]{{2,40}}://|data:|www\.)[^{_STOP}\"]{{2,}}[^{_STOP}\"'(){{}}\[\],:;.!?]"
)
"""JupyterLab 4's ``webLinkRegex`` (what it turns into ``<a href>`` in plain output)."""
UNSAFE_ANYWHERE = re.compile(r"(?i)(javascript|vbscript|data|file|blob|filesystem):\S")


def web_links(text: str) -> list[str]:
    return JUPYTERLAB_LINK.findall(text)


hosts = st.one_of(
    st.just("localhost"),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
    st.lists(
        st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12),
        min_size=1,
        max_size=4,
    ).map(".".join),
)
URL_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/?#%"
web_urls = st.builds(
    lambda scheme, userinfo, host, port, rest: f"{scheme}://{userinfo}{host}{port}{rest}",
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    st.sampled_from(["", "user@", "user:***@"]),
    hosts,
    st.one_of(st.just(""), st.integers(0, 65535).map(lambda p: f":{p}")),
    st.one_of(st.just(""), st.text(URL_CHARS, max_size=40).map(lambda t: "/" + t)),
)
prose = st.text(string.ascii_letters + " .,;()'\"", max_size=30)


@given(web_urls, prose, prose)
def test_a_web_url_in_a_line_is_kept_exactly(url: str, before: str, after: str) -> None:
    assume(not UNSAFE_ANYWHERE.search(url) and "://" not in url.partition("://")[2])
    line = f"{before} {url} {after}"
    assert unlinked(line) == line


@given(web_urls)
def test_every_error_that_names_the_server_names_it_exactly(url: str) -> None:
    assume(not UNSAFE_ANYWHERE.search(url) and "://" not in url.partition("://")[2])
    errors: list[AllmError] = [
        ServerUnreachableError(url, "connection refused or host not found", url_origin="X"),
        AuthenticationError(key_set=True, base_url=url, key_origin="ANYTHING_LLM_API_KEY"),
        ServerError(f"The server at {url} answered GET /api/ping with something that is not JSON."),
    ]
    for error in errors:
        error.one_line = True  # as the magic marks what it raises
        (line,) = error._render_traceback_()
        assert f" {url} " in line or f" {url};" in line
        assert JOINER not in line


SCHEMEY = st.lists(
    st.sampled_from(
        [
            *"ajdfhtpsvbielmox.+-:/ 1\"'(<",
            *("javascript", "data", "file", "vbscript", "http", "https", "://", "JavaScript"),
        ]
    ),
    max_size=40,
).map("".join)


@given(st.one_of(SCHEMEY, st.text(max_size=60)))
def test_front_ends_link_nothing_but_http_in_any_text(text: str) -> None:
    shown = unlinked(terminal_text(text))
    for link in web_links(shown):
        assert link.lower().startswith(("http://", "https://", "www.")), (text, link)
    assert not UNSAFE_ANYWHERE.search(shown), text


@given(st.one_of(SCHEMEY, st.text(max_size=60)))
def test_only_invisible_joiners_are_added_and_twice_is_once(text: str) -> None:
    assume(JOINER not in text)
    shown = unlinked(text)
    assert shown.replace(JOINER, "") == text
    assert unlinked(shown) == shown


def test_the_known_hostile_line_is_neutralised_and_its_https_link_kept() -> None:
    hostile = (
        "see data:text/html,<b>hi</b> and file:///etc/passwd and ftp://host/f and "
        "javascript:alert(1) and 1javascript://%0aalert(1), or https://example.org/help"
    )
    shown = unlinked(hostile)
    assert web_links(shown) == ["https://example.org/help"]
    assert "https://example.org/help" in shown


def test_a_server_that_is_down_is_named_by_a_url_that_works_when_copied() -> None:
    url = closed_port_url()
    with Client(url, api_key="k", timeout=5) as client:
        info = client.server_info()
    assert not info.reachable
    error = ServerUnreachableError(url, "x", url_origin="Y")
    error.one_line = True  # as the magic marks what it raises
    (line,) = error._render_traceback_()
    assert f"at {url} (" in line
    assert f"at {url} (" in (info.reason or "")
