"""Settings precedence: one pure function, cell > session > config > env > default."""

from __future__ import annotations

import pytest

from allm_jupyter.options import parse_options
from allm_jupyter.secret import Secret
from allm_jupyter.session import SessionState
from allm_jupyter.settings import Config, resolve

ENV = {
    "ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG": "from-env",
    "ANYTHING_LLM_BASE_URL": "http://env:1",
}


@pytest.fixture
def session() -> SessionState:
    return SessionState()


def test_precedence_cell_session_config_env_default(session: SessionState) -> None:
    nothing = resolve(parse_options(""), session, Config(), {})
    assert nothing.workspace.source == "unset"
    assert (nothing.base_url.value, nothing.base_url.source) == ("http://localhost:3001", "default")
    from_env = resolve(parse_options(""), session, Config(), ENV)
    assert (from_env.workspace.value, from_env.workspace.source) == ("from-env", "env")
    config = Config(default_workspace="from-config", base_url="http://config:2")
    from_config = resolve(parse_options(""), session, config, ENV)
    assert from_config.workspace.source == "config"
    assert from_config.base_url.value == "http://config:2"
    session.choose(workspace="from-picker", mode="query")
    resolved = resolve(parse_options(""), session, config, ENV)
    assert (resolved.workspace.value, resolved.workspace.source) == ("from-picker", "session")
    assert (resolved.mode.value, resolved.mode.source) == ("query", "session")
    resolved = resolve(parse_options("-w from-cell -m chat timeout=3"), session, config, ENV)
    assert (resolved.workspace.value, resolved.workspace.source) == ("from-cell", "cell")
    assert (resolved.mode.value, resolved.timeout.value) == ("chat", 3.0)


def test_messages_name_where_the_url_and_key_came_from(session: SessionState) -> None:
    env = {"ANYTHING_LLM_API_KEY": "k"}
    from_env = resolve(parse_options(""), session, Config(), {**env, **ENV})
    assert (from_env.origin.base_url, from_env.origin.api_key) == (
        "ANYTHING_LLM_BASE_URL",
        "ANYTHING_LLM_API_KEY",
    )
    typed = resolve(parse_options(""), session, Config(base_url="http://c:1"), env, Secret("x"))
    assert (typed.origin.base_url, typed.origin.api_key) == (
        "%config AllmMagics.base_url",
        "%allm login",
    )
    assert typed.api_key == Secret("x") and typed.api_key_source == "login"


def test_config_rows_show_the_key_only_as_set(session: SessionState) -> None:
    resolved = resolve(parse_options(""), session, Config(), {"ANYTHING_LLM_API_KEY": "sekrit-123"})
    rows = resolved.rows()
    assert ("api_key", "set", "env") in rows
    assert "sekrit-123" not in repr(resolved) + str(rows)


def test_config_rows_mask_a_scheme_less_url_password(session: SessionState) -> None:
    env = {"ANYTHING_LLM_BASE_URL": "admin:hunter2@127.0.0.1:3001"}
    assert "hunter2" not in str(resolve(parse_options(""), session, Config(), env).rows())


def test_a_thread_is_used_only_in_its_workspace(session: SessionState) -> None:
    def thread(line: str = "") -> str | None:
        return resolve(parse_options(line), session, Config(), {}).thread.value

    session.choose(workspace="research")
    session.choose(thread="t-research")
    assert thread() == "t-research"
    assert thread("-w scratchpad") is None
    session.choose(thread="t-cell", thread_workspace="scratchpad")
    assert thread("-w scratchpad") == "t-cell"
    assert thread() is None
    session.choose(workspace="other", thread=None)
    assert session.thread_workspace is None
