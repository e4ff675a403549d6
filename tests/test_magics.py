"""Option parsing, interpolation and settings precedence (pure parts of the magic)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from traitlets import TraitError

from allm_jupyter.errors import ConfigurationError
from allm_jupyter.magics import AllmMagics, CellOptions, interpolate, parse_options
from allm_jupyter.settings import Secret, normalize_base_url, redact_url, session


def test_key_value_and_short_flags_are_equivalent() -> None:
    long = parse_options(
        "workspace=research mode=query thread=t1 session=s out=ans timeout=5 reset raw"
    )
    short = parse_options("-w research -m query -t t1 -s s -o ans --timeout 5 --reset raw")
    assert (
        long
        == short
        == CellOptions(
            workspace="research",
            mode="query",
            thread="t1",
            session="s",
            out="ans",
            timeout=5.0,
            reset=True,
            raw=True,
        )
    )


def test_quoted_values_and_trailing_question_words() -> None:
    options = parse_options("-w 'my ws' What is it?")
    assert options.workspace == "my ws" and options.words == ["What", "is", "it?"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("colour=blue", "Unknown option 'colour=blue'; valid options: workspace= (-w), mode= (-m)"),
        ("--verbose", "Unknown option '--verbose'"),
        ("mode=fast", "mode must be one of chat, query, automatic, not 'fast'."),
        ("timeout=soon", "timeout must be a number of seconds, not 'soon'."),
        ("timeout=0", "timeout must be more than 0 and at most 86400 seconds, not .0."),
        ("-w", "The option -w needs a value."),
        ("out=not-a-name", "out= needs a Python variable name"),
        ("api_key=abc", "The API key is never a magic option"),
        ("--key abc", "The API key is never a magic option"),
        ("workspace='unclosed", "Cannot read the options"),
    ],
)
def test_bad_options_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_options(line)


NAMESPACE = {
    "topic": "onboarding",
    "items": ["a", "b"],
    "cfg": {"region": "eu"},
    "obj": SimpleNamespace(name="Ada", _hidden="x"),
    "In": ["", "first cell", "second cell"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("About {topic}.", "About onboarding."),
        ("{items[1]} {items[-1]} {cfg['region']} {obj.name}", "b b eu Ada"),
        ("{In[2]}", "second cell"),
        ("{missing} {items[9]} {obj.nope}", "{missing} {items[9]} {obj.nope}"),
        ("d = {'a': 1, \"b\": {topic}}", "d = {'a': 1, \"b\": onboarding}"),
        ('f"{{topic}}" and {{topic}}', 'f"{{topic}}" and {{topic}}'),
        ('json: {"k": [1, 2]}', 'json: {"k": [1, 2]}'),
        ("{topic.__class__}", "{topic.__class__}"),
        ("{obj._hidden}", "{obj._hidden}"),
        ("{topic!r} {topic:>10}", "{topic!r} {topic:>10}"),
    ],
)
def test_interpolation_replaces_only_what_resolves(text: str, expected: str) -> None:
    assert interpolate(text, NAMESPACE) == expected


@pytest.fixture
def clean(monkeypatch):
    for name in (
        "ANYTHING_LLM_BASE_URL",
        "ANYTHING_LLM_API_KEY",
        "ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG",
    ):
        monkeypatch.delenv(name, raising=False)
    session.choose(workspace=None, thread=None, mode=None)
    yield monkeypatch
    session.choose(workspace=None, thread=None, mode=None)


def test_precedence_cell_session_config_env_default(clean) -> None:
    magics = AllmMagics(shell=None)
    assert magics.resolve().workspace.source == "unset"
    assert magics.resolve().base_url.value == "http://localhost:3001"
    clean.setenv("ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG", "from-env")
    clean.setenv("ANYTHING_LLM_BASE_URL", "http://env:1")
    assert (magics.resolve().workspace.value, magics.resolve().workspace.source) == (
        "from-env",
        "env",
    )
    magics.default_workspace = "from-config"
    magics.base_url = "http://config:2"
    assert magics.resolve().workspace.source == "config"
    assert magics.resolve().base_url.value == "http://config:2"
    session.choose(workspace="from-picker", mode="query")
    resolved = magics.resolve()
    assert (resolved.workspace.value, resolved.workspace.source) == ("from-picker", "session")
    assert (resolved.mode.value, resolved.mode.source) == ("query", "session")
    resolved = magics.resolve(parse_options("-w from-cell -m chat timeout=3"))
    assert (resolved.workspace.value, resolved.workspace.source) == ("from-cell", "cell")
    assert (resolved.mode.value, resolved.timeout.value) == ("chat", 3.0)


def test_config_rows_show_the_key_only_as_set(clean) -> None:
    clean.setenv("ANYTHING_LLM_API_KEY", "sekrit-123")
    resolved = AllmMagics(shell=None).resolve()
    rows = resolved.rows()
    assert ("api_key", "set", "env") in rows
    assert "sekrit-123" not in repr(resolved) + str(rows)


def test_secret_never_shows() -> None:
    secret = Secret("sekrit-123")
    assert "sekrit-123" not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    assert secret.reveal() == "sekrit-123"
    with pytest.raises(TypeError):
        vars(secret)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


def test_a_thread_is_used_only_in_its_workspace(clean) -> None:
    magics = AllmMagics(shell=None)
    session.choose(workspace="research")
    session.choose(thread="t-research")
    assert magics.resolve().thread.value == "t-research"
    assert magics.resolve(parse_options("-w scratchpad")).thread.value is None
    session.choose(thread="t-cell", thread_workspace="scratchpad")
    assert magics.resolve(parse_options("-w scratchpad")).thread.value == "t-cell"
    assert magics.resolve().thread.value is None
    session.choose(workspace="other", thread=None)
    assert session.thread_workspace is None


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


def test_config_rows_mask_a_scheme_less_url_password(clean) -> None:
    clean.setenv("ANYTHING_LLM_BASE_URL", "admin:hunter2@127.0.0.1:3001")
    assert "hunter2" not in str(AllmMagics(shell=None).resolve().rows())
    with pytest.raises(ConfigurationError) as caught:
        normalize_base_url("admin:hunter2@127.0.0.1:notaport")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://a..b:1", "http://[::1:3001", "http://h:99999", "ftp://h"])
def test_malformed_urls_are_one_sentence(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"is not an http\(s\) URL"):
        normalize_base_url(url)


@pytest.mark.parametrize("value", ["inf", "1e300", "-5", "0", "nan"])
def test_timeouts_must_be_sane(value: str) -> None:
    with pytest.raises(ConfigurationError, match="timeout must be"):
        parse_options(f"timeout={value}")
    magics = AllmMagics(shell=None)
    with pytest.raises(TraitError, match="timeout must be"):
        magics.timeout = float(value)
