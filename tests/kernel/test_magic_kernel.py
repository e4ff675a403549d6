"""``%%allm`` in a real IPython kernel, against the stand-in server over loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import datetime

from conftest import CellRun, KernelSession, kernel_env

from allm_jupyter.testing import StandInServer, scenarios

ASK = "%%allm workspace={slug} mode=chat {options}\n{question}"


def ask(
    kernel: KernelSession, server: StandInServer, question: str = "What is new?", options: str = ""
) -> CellRun:
    return kernel.run(ASK.format(slug=server.slugs[0], options=options, question=question))


def display_id_of(message: dict) -> str:
    return message["transient"]["display_id"]


def test_trickled_answer_updates_one_output_in_place(kernel, kernel_server) -> None:
    words = " ".join(f"word{i}" for i in range(40))
    scenario = scenarios.trickle(words, delay=0.02, sources=scenarios.SAMPLE_SOURCES)
    kernel_server.queue(scenario)
    run = ask(kernel, kernel_server)
    assert run.status == "ok", run.error_text
    displays = run.of_type("display_data")
    updates = [m for m in run.messages if m["msg_type"] == "update_display_data"]
    assert len(displays) == 1
    assert len(updates) >= 3
    assert {display_id_of(m["content"]) for m in updates} == {display_id_of(displays[0])}
    final = updates[-1]["content"]["data"]
    assert final["text/plain"].startswith(scenario.expected_text)
    assert scenario.expected_text in final["text/markdown"]
    assert "Sources (" in final["text/markdown"]
    assert "tok/s" in final["text/markdown"]
    stamps = [datetime.fromisoformat(str(m["header"]["date"])) for m in updates[:-1]]
    span = (stamps[-1] - stamps[0]).total_seconds()
    assert (len(stamps) - 1) / max(span, 1e-3) <= 22, "more than ~20 updates a second"
    meta = updates[-1]["content"]["metadata"]["allm_jupyter"]
    assert meta["workspace"] == kernel_server.slugs[0]
    assert meta["chat_id"] is not None and meta["session_id"].startswith("allm-jupyter-")
    assert not run.of_type("execute_result"), "the cell must return nothing"


def test_reply_is_kept_in_allm_and_out(kernel, kernel_server) -> None:
    scenario = scenarios.normal("Kept answer.")
    kernel_server.queue(scenario)
    assert ask(kernel, kernel_server, options="out=kept").status == "ok"
    check = kernel.run("print(repr(_allm.text), kept is _allm, _allm.complete)")
    assert check.text.strip() == f"{scenario.expected_text!r} True True"


def test_session_id_is_stable_and_overridable(kernel, kernel_server) -> None:
    ask(kernel, kernel_server)
    ask(kernel, kernel_server)
    ask(kernel, kernel_server, options="session=mine")
    sent = [r.json.get("sessionId") for r in kernel_server.chat_requests()[-3:]]
    assert sent[0] == sent[1] and sent[0].startswith("allm-jupyter-")
    assert sent[2] == "mine"


def test_interpolation_keeps_code_braces(kernel, kernel_server) -> None:
    kernel.run("topic = 'onboarding'\nitems = ['alpha', 'beta']")
    question = "About {topic} and {items[1]}: is {'a': 1} valid, or {missing}, f'{{x}}'?"
    ask(kernel, kernel_server, question=question)
    assert kernel_server.chat_requests()[-1].json["message"] == (
        "About onboarding and beta: is {'a': 1} valid, or {missing}, f'{{x}}'?"
    )
    ask(kernel, kernel_server, question="{topic}", options="raw")
    assert kernel_server.chat_requests()[-1].json["message"] == "{topic}"


def test_hostile_html_never_reaches_the_markdown_as_html(kernel, kernel_server) -> None:
    kernel_server.queue(
        scenarios.normal("Look <img src=x onerror=alert(1)> here <script>alert(2)</script> done.")
    )
    run = ask(kernel, kernel_server)
    assert run.status == "ok", run.error_text
    markdown = run.final_markdown
    assert "<img" not in markdown and "<script" not in markdown
    assert "onerror" not in markdown.replace("onerror=alert(1)&gt;", "")


def test_unknown_workspace_fails_the_cell_with_one_sentence(kernel, kernel_server) -> None:
    run = kernel.run("%%allm workspace=no-such-ws\nhello")
    assert run.status == "error"
    assert run.reply["ename"] == "WorkspaceNotFoundError"
    assert "There is no workspace 'no-such-ws' on the server (available:" in run.error_text
    assert "Traceback" not in run.error_text and "File " not in run.error_text


def test_unknown_option_lists_the_valid_ones(kernel) -> None:
    run = kernel.run("%%allm colour=blue\nhello")
    assert run.status == "error"
    assert "Unknown option 'colour=blue'; valid options: workspace= (-w)" in run.error_text
    run = kernel.run("%%allm api_key=abc\nhello")
    assert "never a magic option" in run.error_text


def test_stall_with_timeout_keeps_the_partial_text(kernel, kernel_server) -> None:
    kernel_server.queue(scenarios.stall("partial words "))
    run = ask(kernel, kernel_server, options="timeout=2")
    assert run.status == "error"
    assert "No data arrived from the server for 2 s" in run.error_text
    assert "partial words" in run.final_markdown
    assert "Partial answer" in run.final_markdown
    assert run.text.count("No data arrived from the server") == 1, "each thing is said once"


def test_abort_mid_stream_keeps_the_partial_text(kernel, kernel_server) -> None:
    kernel_server.queue(scenarios.midstream_abort("Half an answer ", "provider died"))
    run = ask(kernel, kernel_server)
    assert run.status == "error"
    assert "The server stopped the answer: provider died." in run.error_text
    assert "Half an answer" in run.final_markdown


DISPLAYS = ("display_data", "update_display_data")
"""The view's first draw makes the output; later ones update it."""


def test_interrupt_stops_at_once_and_keeps_the_partial(kernel, kernel_server) -> None:
    kernel_server.queue(scenarios.stall("streaming so far "))
    msg_id = kernel.execute(ASK.format(slug=kernel_server.slugs[0], options="", question="q"))
    while True:
        msg = kernel.next_message(msg_id)
        data = msg["content"].get("data", {})
        if msg["msg_type"] in DISPLAYS and "streaming so far" in data.get("text/markdown", ""):
            break
    kernel.interrupt()
    run = kernel.collect(msg_id)  # a stall never ends by itself: only the interrupt ends it
    assert run.status == "error"
    assert "stopped; the partial answer is kept above" in run.error_text
    assert "streaming so far" in run.final_markdown
    assert kernel_server.streams[-1].disconnected.wait(5), "the server did not see the hang-up"
    assert kernel.run("print(_allm.interrupted, repr(_allm.text))").text.strip() == (
        "True 'streaming so far '"
    )


def test_thread_new_creates_a_thread_and_keeps_using_it(kernel, kernel_server) -> None:
    run = ask(kernel, kernel_server, options="thread=new")
    assert run.status == "ok", run.error_text
    first = kernel_server.chat_requests()[-1].path
    assert "/thread/" in first
    ask(kernel, kernel_server)
    assert kernel_server.chat_requests()[-1].path == first
    kernel.run(
        "from allm_jupyter.context import current_context; current_context().session.choose(thread=None)"
    )


def test_config_explains_where_values_come_from(kernel, kernel_server) -> None:
    kernel.run("%config AllmMagics.default_workspace = 'from-config'")
    run = kernel.run("%allm config")
    text = run.text
    assert "from-config" in text and "config" in text
    assert kernel_server.base_url in text
    assert "set" in text
    kernel.run("%config AllmMagics.default_workspace = None")


def test_line_commands(kernel, kernel_server) -> None:
    status = kernel.run("%allm status")
    assert status.status == "ok", status.error_text
    assert "1.16.0" in status.text and "valid" in status.text
    listing = kernel.run("%allm workspaces")
    for slug in kernel_server.slugs:
        assert slug in listing.text
    use = kernel.run(f"%allm use {kernel_server.slugs[0]}")
    assert use.status == "ok" and kernel_server.slugs[0] in use.text
    search = kernel.run("%allm search onboarding")
    assert search.status == "ok", search.error_text
    history = kernel.run("%allm history 2")
    assert history.status == "ok", history.error_text
    reset = kernel.run("%allm reset")
    assert reset.status == "ok", reset.error_text
    assert kernel_server.chat_requests()[-1].json.get("reset") is True
    assert kernel_server.chat_requests()[-1].json.get("sessionId")
    kernel.run(
        "from allm_jupyter.context import current_context; current_context().session.choose(workspace=None)"
    )


def test_no_workspace_anywhere_says_how_to_choose(kernel, kernel_server) -> None:
    run = kernel.run("%%allm\nhello")
    assert run.status == "error"
    assert "No workspace is chosen; add workspace=SLUG" in run.error_text
    assert kernel_server.slugs[0] in run.error_text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_and_bad_key_fail_with_their_sentences(kernel_server) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    session = KernelSession(kernel_env(kernel_server, ANYTHING_LLM_API_KEY="wrong-key"))
    try:
        session.run("%load_ext allm_jupyter")
        bad_key = session.run(f"%%allm workspace={kernel_server.slugs[0]}\nhello")
        assert bad_key.status == "error"
        assert "rejected the API key from ANYTHING_LLM_API_KEY" in bad_key.error_text
        session.run(f"%config AllmMagics.base_url = '{url}'")
        down = session.run(f"%%allm workspace={kernel_server.slugs[0]}\nhello")
        assert down.status == "error"
        assert f"Cannot reach the AnythingLLM server at {url}" in down.error_text
    finally:
        session.shutdown()


def test_loading_the_extension_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'allm_jupyter')\n"
        "heavy = [m for m in ('httpx', 'ipywidgets', 'httpx_sse') if m in sys.modules]\n"
        "answering = ('jobs', '_loop', 'render', 'reply', 'models', 'view', 'client')\n"
        "heavy += [m for m in answering if f'allm_jupyter.{m}' in sys.modules]\n"
        "assert 'allm' in ip.magics_manager.magics['cell'], 'not registered'\n"
        "ip.run_line_magic('unload_ext', 'allm_jupyter')\n"
        "assert 'allm' not in ip.magics_manager.magics['cell'], 'not unregistered'\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_ipython_config_file_sets_the_defaults(kernel_server, tmp_path) -> None:
    profile = tmp_path / "profile_default"
    profile.mkdir()
    (profile / "ipython_config.py").write_text(
        f"c.AllmMagics.default_workspace = {kernel_server.slugs[0]!r}\n"
        "c.AllmMagics.mode = 'query'\n"
        "c.AllmMagics.timeout = 7\n"
    )
    session = KernelSession(kernel_env(kernel_server, IPYTHONDIR=str(tmp_path)))
    try:
        session.run("%load_ext allm_jupyter")
        run = session.run("%%allm\nWhat does the handbook say about onboarding?")
        assert run.status == "ok", run.error_text
        request = kernel_server.chat_requests()[-1]
        assert request.path == f"/api/v1/workspace/{kernel_server.slugs[0]}/stream-chat"
        assert request.json["mode"] == "query"
        config = session.run("%allm config").text
        assert "7.0" in config and "query" in config
    finally:
        session.shutdown()


def test_line_magic_typos_and_one_line_questions(kernel, kernel_server) -> None:
    typo = kernel.run("%allm worksapces")
    assert typo.status == "error"
    assert "'worksapces' is not an %allm command; did you mean %allm workspaces?" in typo.error_text
    assert not [r for r in kernel_server.chat_requests() if r.json.get("message") == "worksapces"]
    bare = kernel.run(f"%allm -w {kernel_server.slugs[0]}")
    assert "Write the question after the options" in bare.error_text
    for question in [
        "What's the capital of France",
        "What's new?",
        'Is "this"  one\tline? \\ $HOME',
        "status of the build?",
    ]:
        asked = kernel.run(f"%allm -w {kernel_server.slugs[0]} -m chat {question}")
        assert asked.status == "ok", asked.error_text
        assert kernel_server.chat_requests()[-1].json["message"] == question
    wordy = kernel.run("%allm status of the build?")
    assert "%allm status takes nothing after it" in wordy.error_text


def test_interrupt_wherever_it_lands_hangs_up_and_marks_the_reply(kernel, kernel_server) -> None:
    """Long answers spend much of their time drawing: the stop must work there too."""
    text = " ".join(f"word{i}" for i in range(3000))
    kernel_server.queue(scenarios.trickle(text, delay=0.002))
    msg_id = kernel.execute(ASK.format(slug=kernel_server.slugs[0], options="", question="q"))
    while True:
        msg = kernel.next_message(msg_id)
        data = msg["content"].get("data", {})
        if msg["msg_type"] in DISPLAYS and "word0" in data.get("text/markdown", ""):
            break
    kernel.interrupt()
    run = kernel.collect(msg_id)
    assert run.status == "error"
    assert "stopped; the partial answer is kept above" in run.error_text
    assert kernel_server.streams[-1].disconnected.wait(5), "the server did not see the hang-up"
    check = kernel.run(f"print(_allm.interrupted, _allm.complete, len(_allm.text) < {len(text)})")
    assert check.text.strip() == "True False True"
    assert "Stopped by the user" in run.final_markdown


def test_stray_words_on_the_cell_line_are_an_error(kernel, kernel_server) -> None:
    run = kernel.run("%%allm workspace scratchpad mode query\nhello")
    assert run.status == "error"
    assert "Unexpected 'workspace' on the %%allm line: options are name=value" in run.error_text


def test_line_magic_question_follows_our_interpolation_and_raw(kernel, kernel_server) -> None:
    kernel.run("price = 'P'; x = 'X'")
    slug = kernel_server.slugs[0]
    kernel.run(f"%allm -w {slug} -m chat --raw keep {{x}}, costs $price")
    assert kernel_server.chat_requests()[-1].json["message"] == "keep {x}, costs $price"
    kernel.run(f"%allm -w {slug} -m chat about {{x}} and {{'a': 1}}")
    assert kernel_server.chat_requests()[-1].json["message"] == "about X and {'a': 1}"
    kernel.run(f"%allm -w {slug} -m chat search for {{x}} and {{{{x}}}} costs $price")
    assert (
        kernel_server.chat_requests()[-1].json["message"] == "search for X and {{x}} costs $price"
    )
    kernel.run('sid = "Bob\'s session"')
    kernel.run(f"%allm -w {slug} -m chat -s {{sid}} Who's there?")
    asked = kernel_server.chat_requests()[-1].json
    assert (asked["sessionId"], asked["message"]) == ("Bob's session", "Who's there?")


def test_command_arguments_expand_variables(kernel, kernel_server) -> None:
    kernel.run(f"ws = {kernel_server.slugs[1]!r}")
    used = kernel.run("%allm use $ws")
    assert used.status == "ok", used.error_text
    assert kernel_server.slugs[1] in used.text
    kernel.run(
        "from allm_jupyter.context import current_context; current_context().session.choose(workspace=None)"
    )


def test_a_failure_before_the_answer_still_updates_allm(kernel, kernel_server) -> None:
    kernel_server.queue(scenarios.normal("An earlier answer."))
    assert ask(kernel, kernel_server).status == "ok"
    failed = kernel.run("%%allm\nwhich workspace?")  # none chosen anywhere in this kernel
    assert failed.status == "error"
    check = kernel.run("print(repr(_allm.text), _allm.error[:24])")
    assert check.text.strip() == "'' No workspace is chosen;"


def test_cell_magic_bodies_and_strings_keep_their_allm_lines(
    kernel, kernel_server, tmp_path
) -> None:
    body = "%allm What is RAG?\n  %allm -w x Why? \\\nWhat's {this}?"
    target = tmp_path / "notes.md"
    written = kernel.run(f"%%writefile {target}\n{body}\n")
    assert written.status == "ok", written.error_text
    assert target.read_text() == body + "\n"
    asked = kernel.run(f"%%allm -w {kernel_server.slugs[0]} -m chat --raw\n{body}")
    assert asked.status == "ok", asked.error_text
    assert kernel_server.chat_requests()[-1].json["message"] == body
    kept = kernel.run(f'notes = r"""\n{body}\n"""\nprint(repr(notes))')
    assert kept.text.strip() == repr(f"\n{body}\n")
