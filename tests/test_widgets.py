"""The WorkspacePicker in-process, against the stand-in server over loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ipywidgets as widgets
import pytest
from hostile import HostileServer, canned, http_response
from IPython.core.interactiveshell import InteractiveShell

from allm_jupyter import ConfigurationError, WorkspacePicker, load_ipython_extension
from allm_jupyter.context import current_context
from allm_jupyter.session import SessionState
from allm_jupyter.testing import StandInServer


@pytest.fixture(autouse=True)
def session() -> Iterator[SessionState]:
    """A fresh IPython with the extension loaded, so pickers find its session as in a notebook.

    Each test gets its own (nothing chosen); its pickers are closed so they stop listening.
    """
    shell = InteractiveShell.instance()
    load_ipython_extension(shell)
    context = current_context()
    assert context is not None
    yield context.session
    widgets.Widget.close_all()
    InteractiveShell.clear_instance()


@pytest.fixture
def server(allm_server: StandInServer, monkeypatch: pytest.MonkeyPatch) -> StandInServer:
    """The stand-in as the server that the extension (hence every picker) talks to."""
    use_server(monkeypatch, allm_server.base_url, allm_server.api_key)
    return allm_server


def use_server(monkeypatch: pytest.MonkeyPatch, base_url: str, api_key: str) -> None:
    monkeypatch.setenv("ANYTHING_LLM_BASE_URL", base_url)
    monkeypatch.setenv("ANYTHING_LLM_API_KEY", api_key)
    monkeypatch.delenv("ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG", raising=False)


def listings(server: StandInServer) -> int:
    return sum(r.method == "GET" and r.path == "/api/v1/workspaces" for r in server.requests)


def tree(widget: widgets.Widget) -> Iterator[widgets.Widget]:
    """The widget and every widget its synced state refers to (children, layout, style)."""
    yield widget
    for name in widget.keys:
        value = getattr(widget, name)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, widgets.Widget):
                yield from tree(item)


def control(picker: WorkspacePicker, kind: type[widgets.Widget], description: str) -> Any:
    """The picker's control as the front end sees it, found by its label."""
    return next(w for w in tree(picker) if isinstance(w, kind) and w.description == description)


def status(picker: WorkspacePicker) -> str:
    return next(w for w in tree(picker) if isinstance(w, widgets.HTML)).value


def test_offers_the_servers_workspaces_and_selects_nothing_yet(server: StandInServer) -> None:
    picker = WorkspacePicker()
    assert picker.slugs == server.slugs
    assert picker.value is None and picker.thread is None and picker.mode is None
    assert [v for _, v in control(picker, widgets.Dropdown, "Workspace").options] == server.slugs
    assert "connected" in status(picker)
    assert server.base_url in status(picker)


def test_choosing_sets_the_session_at_once(session: SessionState, server: StandInServer) -> None:
    picker = WorkspacePicker()
    picker.value = server.slugs[1]
    assert (session.workspace, session.thread, session.mode) == (server.slugs[1], None, None)
    picker.mode = "query"
    picker.thread = "new"
    assert (session.workspace, session.thread, session.mode) == (server.slugs[1], "new", "query")
    picker.value = server.slugs[0]
    assert (session.workspace, session.thread, session.mode) == (server.slugs[0], None, "query")


def test_the_controls_set_the_session_as_the_traits_do(
    session: SessionState, server: StandInServer
) -> None:
    picker = WorkspacePicker()
    control(picker, widgets.Dropdown, "Workspace").value = "research"
    threads = control(picker, widgets.Dropdown, "Thread")
    assert [label for label, _ in threads.options] == [
        "default chat",
        "Onboarding questions",
        "new thread…",
    ]
    threads.value = "onboarding-questions"
    control(picker, widgets.ToggleButtons, "Mode").value = "automatic"
    assert (picker.value, picker.thread, picker.mode) == (
        "research",
        "onboarding-questions",
        "automatic",
    )
    assert (session.workspace, session.thread, session.mode) == (
        "research",
        "onboarding-questions",
        "automatic",
    )


def test_unknown_choices_are_refused_with_the_offered_ones(
    session: SessionState, server: StandInServer
) -> None:
    picker = WorkspacePicker()
    with pytest.raises(ConfigurationError, match="no-such-space") as caught:
        picker.value = "no-such-space"
    assert all(slug in str(caught.value) for slug in server.slugs)
    assert picker.value is None and session.workspace is None
    picker.value = "research"
    with pytest.raises(ConfigurationError, match="onboarding-questions"):
        picker.thread = "no-such-thread"
    assert session.thread is None


class Listener:
    def __init__(self) -> None:
        self.calls = 0

    def heard(self) -> None:
        self.calls += 1


def test_pickers_and_the_session_stay_in_step_without_echo(
    session: SessionState, server: StandInServer
) -> None:
    first, second = WorkspacePicker(), WorkspacePicker()
    seen: list[str | None] = []
    second.observe(lambda change: seen.append(change["new"]), names="value")
    listener = Listener()
    session.subscribe(listener.heard)
    first.value = server.slugs[2]
    assert listener.calls == 1, "one choice must change the session exactly once"
    assert seen == [server.slugs[2]]
    assert control(second, widgets.Dropdown, "Workspace").value == server.slugs[2]
    second.mode = "chat"
    assert first.mode == "chat"
    session.choose(workspace="research", thread=None)  # what %allm use research does
    assert first.value == second.value == "research"
    first.thread = "new"
    session.choose(thread="made-by-the-magic")  # what thread=new does once the thread exists
    for picker in (first, second):
        assert picker.thread == "made-by-the-magic"
        assert control(picker, widgets.Dropdown, "Thread").value == "made-by-the-magic"
    third = WorkspacePicker()
    assert (third.value, third.thread, third.mode) == ("research", "made-by-the-magic", "chat")


def test_the_env_default_is_shown_but_not_pinned(
    session: SessionState, server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG", "scratchpad")
    picker = WorkspacePicker()
    assert picker.value == "scratchpad" and session.workspace is None
    monkeypatch.setenv("ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG", "gone-elsewhere")
    picker.refresh()
    shown = control(picker, widgets.Dropdown, "Workspace")
    assert shown.value == "gone-elsewhere" and shown.label == "gone-elsewhere (not listed yet)"
    assert picker.slugs == server.slugs


def test_repeated_and_unicode_names_get_distinct_labels(server: StandInServer) -> None:
    names = ["Équipe 研究 🚀", "Twin", "Twin", "<b>bold</b> & co"]
    for name in names:
        server.store.new_workspace(name, {})
    picker = WorkspacePicker()
    labels = [label for label, _ in control(picker, widgets.Dropdown, "Workspace").options]
    assert len(set(labels)) == len(labels)
    assert "Équipe 研究 🚀" in labels and "<b>bold</b> & co" in labels
    twins = [label for label in labels if label.startswith("Twin")]
    assert len(twins) == 2 and all("(" in label for label in twins)


def test_bad_key_shows_in_the_status(
    allm_server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_server(monkeypatch, allm_server.base_url, "not-the-key")
    picker = WorkspacePicker()
    assert "rejected" in status(picker) and "ANYTHING_LLM_API_KEY" in status(picker)
    assert picker.slugs == []
    assert_no_secret(picker, "not-the-key")


def test_server_down_then_back(monkeypatch: pytest.MonkeyPatch) -> None:
    server = StandInServer(speed=0).start()
    server.stop()  # the port is known and nothing listens on it
    use_server(monkeypatch, server.base_url, server.api_key)
    picker = WorkspacePicker()
    assert "unreachable" in status(picker) and str(server.port) in status(picker)
    assert picker.slugs == []
    with server:
        picker.refresh()
        assert picker.slugs == server.slugs
        assert "connected" in status(picker)


def test_a_thousand_workspaces_take_one_request(server: StandInServer) -> None:
    for number in range(1000 - len(server.slugs)):
        server.store.new_workspace(f"Workspace {number:04d}", {})
    before = listings(server)
    picker = WorkspacePicker()
    assert listings(server) - before == 1
    assert len(control(picker, widgets.Dropdown, "Workspace").options) == 1000
    assert picker.slugs == server.slugs
    picker.value = server.slugs[-1]


def assert_no_secret(picker: WorkspacePicker, secret: str) -> None:
    states = [widget.get_state() for widget in tree(picker)]
    assert len(states) > 5
    assert secret not in json.dumps(states, default=str)


def test_no_widget_state_holds_the_key(server: StandInServer) -> None:
    picker = WorkspacePicker()
    picker.value = "research"
    picker.thread = "new"
    assert_no_secret(picker, server.api_key)


def test_a_body_nested_too_deeply_is_a_status_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    routes = {
        "/api/utils/metrics": canned(http_response(200, b'{"online":true}')),
        "/api/v1/workspaces": canned(http_response(200, b"[" * 100_000 + b"]" * 100_000)),
    }
    with HostileServer(routes) as hostile:
        use_server(monkeypatch, hostile.base_url, "some-key")
        picker = WorkspacePicker()
    assert "server error" in status(picker) and "nested too deeply" in status(picker)
    assert picker.slugs == []
