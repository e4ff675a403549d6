"""``%%allm`` (ask; the cell body is the question) and ``%allm`` (status, workspaces, use, …).

The magic parses options, interpolates ``{name}`` references, resolves settings, and hands the
question to the client; the view shows the answer. Errors fail the cell with their one sentence:
:class:`CellFailure` renders without an internal traceback, so Run All and papermill stop too.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from traitlets import Bunch, CFloat, Enum, TraitError, Unicode, validate

from .errors import AllmError, ConfigurationError
from .render import terminal_text
from .settings import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    MODES,
    ResolvedSettings,
    Secret,
    check_mode,
    env_api_key,
    env_base_url,
    env_workspace,
    first_of,
    parse_timeout,
    session,
)

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .client import ChatStream, Client
    from .reply import Reply

_OPTIONS: dict[str, str | None] = {
    "workspace": "-w",
    "mode": "-m",
    "thread": "-t",
    "session": "-s",
    "out": "-o",
    "timeout": None,
}
_FLAGS = ("reset", "raw")
_SHORT = {flag: name for name, flag in _OPTIONS.items() if flag}
_VALID = ", ".join([f"{n}= ({f})" if f else f"{n}=" for n, f in _OPTIONS.items()] + list(_FLAGS))
_SECRET_WORDS = ("api_key", "apikey", "key", "token", "api-key")
_REFERENCE = re.compile(
    r"\{(?P<ref>[A-Za-z_]\w*(?:\.[A-Za-z]\w*|\[(?:-?\d+|'[^'{}]*'|\"[^\"{}]*\")\])*)\}"
)
_STEP = re.compile(
    r"\.(?P<attr>[A-Za-z]\w*)|\[(?P<index>-?\d+)\]|\[(?P<q>['\"])(?P<key>.*?)(?P=q)\]"
)
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")


class CellFailure(Exception):
    """An :class:`AllmError` as the cell's failure: its sentence, without our stack."""

    def __init__(self, error: AllmError) -> None:
        super().__init__(error.message)
        self.error = error

    def _render_traceback_(self) -> list[str]:
        message = terminal_text(self.error.message)  # it may quote the server
        return [f"\x1b[0;31m{type(self.error).__name__}\x1b[0m: {message}"]


class AnswerInterrupted(KeyboardInterrupt):
    """The stop button: the cell ends interrupted, the partial answer stays on screen."""

    def _render_traceback_(self) -> list[str]:
        return ["\x1b[0;31mKeyboardInterrupt\x1b[0m: stopped; the partial answer is kept above."]


@dataclass
class CellOptions:
    workspace: str | None = None
    mode: str | None = None
    thread: str | None = None
    session: str | None = None
    out: str | None = None
    timeout: float | None = None
    reset: bool = False
    raw: bool = False
    words: list[str] = field(default_factory=list)
    """Tokens after the options: a one-line question (``%allm -w ws What is X?``)."""


def parse_options(line: str) -> CellOptions:
    """Parse ``key=value`` / short-flag options; anything unknown is an error listing the valid ones."""
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise ConfigurationError(f"Cannot read the options ({exc}); check the quotes.") from None
    options = CellOptions()
    values: dict[str, str] = {}
    position = 0
    while position < len(tokens):
        token = tokens[position]
        name, value = _option_token(token)
        if name is None:
            break
        if value is None:
            if position + 1 >= len(tokens):
                raise ConfigurationError(f"The option {token} needs a value.")
            position += 1
            value = tokens[position]
        if name in _FLAGS:
            setattr(options, name, True)
        else:
            values[name] = value
        position += 1
    options.words = tokens[position:]
    if values.get("mode"):
        options.mode = check_mode(values["mode"])
    if values.get("timeout"):
        options.timeout = parse_timeout(values["timeout"])
    if "out" in values and not _IDENTIFIER.match(values["out"]):
        raise ConfigurationError(f"out= needs a Python variable name, not '{values['out']}'.")
    for name in ("workspace", "thread", "session", "out"):
        setattr(options, name, values.get(name) or None)
    return options


def _option_token(token: str) -> tuple[str | None, str | None]:
    """``(name, value)`` of one token; ``(name, None)`` when the value is the next token."""
    if token in _SHORT:
        return _SHORT[token], None
    if token in _FLAGS:
        return token, ""
    if token.startswith("--") and token[2:] in _OPTIONS:
        return token[2:], None
    if token.startswith("--") and token[2:] in _FLAGS:
        return token[2:], ""
    key, sep, value = token.partition("=")
    if sep and key in _OPTIONS:
        return key, value
    if (sep and _IDENTIFIER.match(key)) or token.startswith("-"):
        if key.lower().lstrip("-") in _SECRET_WORDS:
            raise ConfigurationError(
                "The API key is never a magic option (it would be saved in the notebook); set "
                "ANYTHING_LLM_API_KEY in the environment or use %allm login."
            )
        raise ConfigurationError(f"Unknown option '{token}'; valid options: {_VALID}.")
    return None, None


def interpolate(text: str, namespace: dict[str, Any]) -> str:
    """Replace ``{name}``, ``{name.attr}``, ``{name[0]}``, ``{In[3]}`` that resolve; keep other braces.

    Code pasted into a question is full of braces (dict literals, JSON, f-strings), so anything that
    is not a plain reference to an existing value stays exactly as written.
    """

    def substitute(match: re.Match[str]) -> str:
        before, after = text[match.start() - 1 : match.start()], text[match.end() : match.end() + 1]
        if before == "{" and after == "}":  # ``{{name}}``: an f-string's escaped braces
            return match.group()
        ref = match.group("ref")
        head = re.match(r"[A-Za-z_]\w*", ref)
        assert head is not None
        if head.group() not in namespace:
            return match.group()
        value = namespace[head.group()]
        for step in _STEP.finditer(ref, head.end()):
            try:
                if step.group("attr"):
                    value = getattr(value, step.group("attr"))
                elif step.group("index") is not None:
                    value = value[int(step.group("index"))]
                else:
                    value = value[step.group("key")]
            except Exception:
                return match.group()
        return str(value)

    return _REFERENCE.sub(substitute, text)


def _notebook_name(namespace: dict[str, Any]) -> str:
    """The notebook's file name, where the front end tells the kernel (JupyterLab, VS Code)."""
    path = namespace.get("__vsc_ipynb_file__") or os.environ.get("JPY_SESSION_NAME") or ""
    return Path(str(path)).stem or "Notebook"


@magics_class
class AllmMagics(Magics):
    """Ask an AnythingLLM workspace from a notebook. Settable in ``ipython_config.py``."""

    default_workspace = Unicode(None, allow_none=True, help="Workspace slug to ask.").tag(
        config=True
    )
    base_url = Unicode(None, allow_none=True, help="Server URL (instance root).").tag(config=True)
    timeout = CFloat(None, allow_none=True, help="Seconds without data before giving up.").tag(
        config=True
    )
    mode = Enum(list(MODES), None, allow_none=True, help="chat, query or automatic.").tag(
        config=True
    )

    @validate("timeout")
    def _check_timeout(self, proposal: Bunch) -> float | None:
        if proposal["value"] is None:
            return None
        try:
            return parse_timeout(proposal["value"])
        except ConfigurationError as exc:
            raise TraitError(exc.message) from None

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._clients: dict[tuple[str, float, Secret], Client] = {}
        self._login_key: Secret | None = None

    # -- settings ---------------------------------------------------------------------------

    def resolve(self, options: CellOptions | None = None) -> ResolvedSettings:
        options = options or CellOptions()
        env_key = env_api_key()
        key = self._login_key if self._login_key else env_key
        workspace = first_of(
            (options.workspace, "cell"),
            (session.workspace, "session"),
            (self.default_workspace, "config"),
            (env_workspace(), "env"),
        )
        return ResolvedSettings(
            base_url=first_of(
                (self.base_url, "config"), (env_base_url(), "env"), (DEFAULT_BASE_URL, "default")
            ),
            workspace=workspace,
            thread=first_of(
                (options.thread, "cell"), (session.thread_in(workspace.value), "session")
            ),
            mode=first_of((options.mode, "cell"), (session.mode, "session"), (self.mode, "config")),
            timeout=first_of(
                (options.timeout, "cell"), (self.timeout, "config"), (DEFAULT_TIMEOUT, "default")
            ),
            api_key=key,
            api_key_source="login" if self._login_key else ("env" if env_key else "unset"),
        )

    def client(self, settings: ResolvedSettings) -> Client:
        """One HTTP client per server and key, reused across cells (keeps the connection).

        Its timeout is the configured one; a cell's ``timeout=`` applies to that answer only.
        """
        from .client import Client

        url = str(settings.base_url.value)
        timeout = float(self.timeout or DEFAULT_TIMEOUT)
        key = (url, timeout, settings.api_key)
        client = self._clients.get(key)
        if client is None:
            client = Client(url, api_key=settings.api_key, timeout=timeout)
            self._clients[key] = client
        return client

    def set_login_key(self, key: Secret | None) -> None:
        """Use a key typed with ``%allm login`` (kept in memory only) instead of the env's."""
        self._login_key = key if key else None
        self.close_clients()

    def close_clients(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def workspace_or_fail(self, settings: ResolvedSettings) -> str:
        if settings.workspace.value:
            return str(settings.workspace.value)
        try:
            slugs = [w.slug for w in self.client(settings).workspaces()]
        except AllmError:
            slugs = []
        listed = f" (available: {', '.join(slugs[:20])})" if slugs else ""
        raise ConfigurationError(
            "No workspace is chosen; add workspace=SLUG to the cell, run %allm use SLUG or "
            f"%allm pick, or set ANYTHING_LLM_DEFAULT_WORKSPACE_SLUG{listed}."
        )

    # -- asking -----------------------------------------------------------------------------

    @cell_magic
    def allm(self, line: str, cell: str) -> None:
        """Ask the cell body. Options: workspace=/-w, mode=/-m, thread=/-t, session=/-s, out=/-o,
        timeout=, reset, raw. See ``%allm help``."""
        with _failing_cell():
            options = parse_options(line)
            if options.words:
                raise ConfigurationError(
                    f"Unexpected '{options.words[0]}' on the %%allm line: options are name=value "
                    f"or short flags ({_VALID}); the question goes in the cell body."
                )
            self._ask(options, cell)

    def _ask(self, options: CellOptions, question: str) -> None:
        try:
            stream, slug = self._start(options, question)
        except AllmError as exc:  # _allm must not keep the previous cell's reply
            from .reply import Reply

            self._keep(Reply(error=exc.message, workspace=options.workspace), options)
            raise
        self._show(stream, slug, options)

    def _start(self, options: CellOptions, question: str) -> tuple[ChatStream, str]:
        """Resolve the settings and prepare the question's stream (nothing is sent yet)."""
        settings = self.resolve(options)
        slug = self.workspace_or_fail(settings)
        client = self.client(settings)
        namespace = self.shell.user_ns if self.shell else {}
        if not options.raw:
            question = interpolate(question, namespace)
        thread = settings.thread.value
        if thread == "new":
            name = f"{_notebook_name(namespace)} {datetime.now():%Y-%m-%d %H:%M}"
            thread = client.new_thread(slug, name=name).slug
            session.choose(thread=thread, thread_workspace=slug)
        stream = client.stream_chat(
            slug,
            question.strip(),
            mode=settings.mode.value,
            session_id=options.session or session.session_id,
            thread=thread,
            reset=options.reset,
            timeout=settings.timeout.value,
        )
        return stream, slug

    def _show(self, stream: ChatStream, slug: str, options: CellOptions) -> None:
        """Stream the answer into the view; keep the reply, whole or partial, in ``_allm``."""
        rich = self.shell is None or "text/markdown" in self.shell.display_formatter.active_types
        from .view import make_view

        view = make_view(slug, rich=rich)
        reply = stream.reply
        try:
            view.follow(stream)
            reply = stream.reply
        except KeyboardInterrupt:
            reply = stream.stop()  # the stop may land while drawing, outside the stream's code
            raise AnswerInterrupted() from None
        except AllmError as exc:
            reply = exc.reply or stream.reply
            reply = reply if reply.error else replace(reply, error=exc.message)
            raise
        except Exception as exc:  # a bug or an unmapped failure: still keep what arrived
            reply = replace(stream.reply, error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self._keep(reply, options)
            stream.close()
            view.close(reply)

    def _keep(self, reply: Reply, options: CellOptions) -> None:
        """``_allm`` always holds the last reply (partial ones too); ``out=NAME`` binds it too."""
        if self.shell is None:
            return
        self.shell.user_ns["_allm"] = reply
        if options.out:
            self.shell.user_ns[options.out] = reply

    # -- %allm ------------------------------------------------------------------------------

    @line_magic("allm")
    @no_var_expand  # "{x}" and "$price" in a question follow our rules (and ``raw``), not IPython's
    def allm_line(self, line: str) -> Any:
        """%allm help | status | workspaces | use SLUG | config | threads | history [N] | reset
        | search QUERY | upload PATH | pick | login | logout, or %allm [options] QUESTION."""
        with _failing_cell():
            words = line.strip().split(maxsplit=1)
            command = words[0] if words else "help"
            rest = words[1] if len(words) > 1 else ""
            commands = self._commands()
            handler = commands.get(command)
            if handler is not None:  # a command's argument expands {x} and $x as IPython would
                return handler(self.shell.var_expand(rest) if self.shell else rest)
            options = parse_options(line)
            if not options.words:
                raise ConfigurationError(
                    'Write the question after the options (%allm -w SLUG "question"), or use %%allm.'
                )
            if (
                len(words) == 1
            ):  # one bare word is a mistyped command far more often than a question
                close = difflib.get_close_matches(command, list(commands), n=1)
                hint = f"did you mean %allm {close[0]}? " if close else ""
                raise ConfigurationError(
                    f"'{command}' is not an %allm command; {hint}See %allm help, or ask with %%allm."
                )
            self._ask(options, " ".join(options.words))
            return None

    def _commands(self) -> dict[str, Callable[[str], Any]]:
        from . import commands

        return commands.table(self)


@contextmanager
def _failing_cell() -> Iterator[None]:
    """Turns an :class:`AllmError` escaping a magic into a :class:`CellFailure`."""
    try:
        yield
    except AllmError as exc:
        raise CellFailure(exc) from None


def _iter_magics(shell: InteractiveShell) -> Iterator[AllmMagics]:
    for configurable in shell.configurables:
        if isinstance(configurable, AllmMagics):
            yield configurable


def load(shell: InteractiveShell) -> None:
    if any(_iter_magics(shell)):
        return
    shell.register_magics(AllmMagics(shell=shell))  # Magics.__init__ adds it to configurables


def unload(shell: InteractiveShell) -> None:
    for magics in list(_iter_magics(shell)):
        magics.close_clients()
        shell.configurables.remove(magics)
    for kind in ("line", "cell"):
        shell.magics_manager.magics[kind].pop("allm", None)


def current_magics() -> AllmMagics | None:
    """The ``AllmMagics`` of the running IPython, if the extension is loaded there."""
    from IPython import get_ipython

    shell = get_ipython()
    return next(_iter_magics(shell), None) if shell is not None else None


def session_client() -> Client:
    """The client the magic would use now (its config and login key); env-based outside IPython."""
    magics = current_magics()
    if magics is None:
        from .client import Client

        return Client()
    return magics.client(magics.resolve())
