"""The one table of ``%%allm`` options: it drives parsing, ``%%allm?``, ``%allm help`` and the docs.

The grammar is hand-written on purpose: ``workspace=research`` is how notebook users write options
(argparse has no ``key=value`` form), and in the one-line form the question's own words must never
be read as options, which argparse's interspersed parsing cannot promise.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Literal

from .errors import AttachmentError, ConfigurationError

MODES = ("chat", "query", "automatic")
MAX_TIMEOUT = 86_400.0
"""A day: longer than any model takes, shorter than what the clock functions can represent."""


@dataclass(frozen=True)
class Option:
    """One ``%%allm`` option; ``value`` is its metavar, or ``None`` for a flag."""

    name: str
    short: str | None
    value: str | None
    help: str

    @property
    def is_flag(self) -> bool:
        return self.value is None


OPTIONS = (
    Option(
        "workspace",
        "-w",
        "SLUG",
        "the workspace to ask, by slug or name (else the picked one, config, env)",
    ),
    Option(
        "mode",
        "-m",
        "chat|query|automatic",
        "`chat`: documents and the model's own knowledge; `query`: documents only (a question they "
        "do not cover gets a refusal, a normal reply); `automatic`: agent mode when the model calls "
        "tools",
    ),
    Option(
        "thread",
        "-t",
        "SLUG|new",
        "ask inside a thread (by slug or name); `new` creates one (named after the notebook and the "
        "time) and keeps using it",
    ),
    Option(
        "session",
        "-s",
        "ID",
        "the conversation id (default: one per kernel, `allm-jupyter-…`, which keeps notebook chats "
        "apart from the web UI's)",
    ),
    Option(
        "out",
        "-o",
        "NAME",
        "also bind the reply to the variable `NAME`; `_allm` always holds the last reply",
    ),
    Option(
        "attach",
        "-a",
        "NAME[,NAME…]",
        "send notebook objects with the question: variables, `In[n]` or `Out[n]` (DataFrames, "
        "figures, images, text, `pathlib.Path` files); the output lists what was attached and "
        "what was cut",
    ),
    Option("timeout", None, "SECONDS", "give up after this long without data (default 120)"),
    Option(
        "reset",
        None,
        None,
        "forget this session's history before asking (in a one-line question: `--reset`)",
    ),
    Option("raw", None, None, "do not replace `{name}` references (one-line: `--raw`)"),
    Option(
        "explain",
        None,
        None,
        "ask about the last cell that failed: its source and traceback go with the question "
        "(the cell body, if any, is your own question; one-line: `%allm explain`)",
    ),
    Option(
        "over",
        None,
        "NAME",
        "ask many questions: the variable `NAME` is a list or Series of questions, or a DataFrame "
        "whose `{column}` fields the cell body fills per row (`{item}` is a list's element); "
        "`workspace=a,b` and `mode=chat,query` ask each question in each; shows a progress bar, "
        "then the table; `out=` and `_allm` hold the `Batch`",
    ),
    Option(
        "concurrency",
        None,
        "N",
        "with `over=`: answers in flight at once (default 4)",
    ),
    Option(
        "resume",
        None,
        "NAME",
        "ask the pending and failed questions of the `Batch` in `NAME` (after a stop or errors)",
    ),
    Option(
        "background",
        "-b",
        None,
        "the cell returns at once and the answer streams into its output while other cells run; "
        "`out=NAME` and `_allm` hold its job (see `%allm jobs`; one-line: `--background`)",
    ),
)
_BY_NAME = {option.name: option for option in OPTIONS}
_BY_SHORT = {option.short: option for option in OPTIONS if option.short}
_SECRET_WORDS = ("api_key", "apikey", "key", "token", "api-key")
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")


def _spelling(option: Option) -> str:
    short = f" ({option.short})" if option.short else ""
    return f"{option.name}{'' if option.is_flag else '='}{short}"


VALID = ", ".join(_spelling(option) for option in OPTIONS)
"""The options as an error message lists them."""


@dataclass
class CellOptions:
    """What one ``%%allm`` line (or the options of a one-line ``%allm``) asked for."""

    workspace: str | None = None
    mode: str | None = None
    thread: str | None = None
    session: str | None = None
    out: str | None = None
    attach: tuple[str, ...] = ()
    """Notebook references to send as attachments (``attach=df,fig``)."""
    timeout: float | None = None
    reset: bool = False
    raw: bool = False
    explain: bool = False
    background: bool = False
    """Stream the answer while other cells run (:mod:`~allm_jupyter.jobs`)."""
    question: str = ""
    """What follows the options, exactly as typed: a one-line question (``%allm -w ws What's X?``)."""
    over: str | None = None
    """The variable holding many questions (``over=NAME``)."""
    concurrency: int | None = None
    resume: str | None = None
    """The variable holding a ``Batch`` to finish."""
    workspaces: tuple[str, ...] = ()
    """``workspace=a,b`` with ``over=``: each question is asked in each (``workspace`` is ``a``)."""
    modes: tuple[str, ...] = ()
    """``mode=chat,query`` with ``over=``: each question is asked in each."""


@dataclass(frozen=True)
class AttachmentLimits:
    """Caps applied before sending: the server takes 3 GB bodies, the model's context does not."""

    max_rows: int = 500
    """DataFrame rows sent; the rest are cut and the cut is stated."""
    table_format: Literal["csv", "markdown"] = "csv"
    """CSV costs fewer tokens; Markdown tables read better for some models."""
    max_document_bytes: int = 1_000_000
    """Text sent to the prompt (about 250,000 tokens; most models take far less)."""
    max_image_bytes: int = 5_000_000
    """The smallest per-image limit among the big vision providers."""
    max_total_bytes: int = 20_000_000
    """All attachments of one question together."""

    def __post_init__(self) -> None:
        if self.table_format not in ("csv", "markdown"):
            raise AttachmentError(
                f"The table format must be csv or markdown, not {self.table_format!r}."
            )
        for name in ("max_rows", "max_document_bytes", "max_image_bytes", "max_total_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AttachmentError(f"{name} must be a positive whole number, not {value!r}.")


def parse_timeout(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigurationError(f"timeout must be a number of seconds, not '{value}'.") from None
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ConfigurationError(
            f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds, not '{value}'."
        )
    return seconds


def check_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {', '.join(MODES)}, not '{value}'.")
    return mode


def parse_options(line: str, *, question: bool = False) -> CellOptions:
    """Parse the options at the start of ``line``; anything unknown is an error listing the valid ones.

    With ``question=True`` (the one-line ``%allm`` form) the first token that is not an option
    starts the question, which is kept exactly as typed (``--`` ends the options early), and a
    bare ``reset``/``raw`` is a word of it (``--reset`` is the flag).
    """
    tokens, rest = _leading_options(line, question=question)
    flags, values = _read(tokens)
    options = CellOptions()
    for flag in flags:
        setattr(options, flag, True)
    options.question = rest
    if values.get("mode") and "," not in values["mode"]:
        options.mode = check_mode(values["mode"])
    if values.get("timeout"):
        options.timeout = parse_timeout(values["timeout"])
    if "out" in values and not _IDENTIFIER.match(values["out"]):
        raise ConfigurationError(f"out= needs a Python variable name, not '{values['out']}'.")
    for name in ("workspace", "thread", "session", "out"):
        setattr(options, name, values.get(name) or None)
    options.attach = tuple(
        name.strip() for name in values.get("attach", "").split(",") if name.strip()
    )
    _many_questions(options, values)
    return options


def _many_questions(options: CellOptions, values: dict[str, str]) -> None:
    """``over=``, ``resume=``, ``concurrency=`` and the grid's lists (which need one of the two)."""
    for name in ("over", "resume"):
        if name in values and not _IDENTIFIER.match(values[name]):
            raise ConfigurationError(f"{name}= needs a Python variable name, not '{values[name]}'.")
        setattr(options, name, values.get(name) or None)
    many = options.over is not None or options.resume is not None
    if many and options.background:
        raise ConfigurationError(
            "background does not go with over= or resume=: a batch runs in its cell, with its "
            "progress bar; a stop keeps the finished answers, and resume= asks the rest."
        )
    alone = [name for name in ("thread", "attach") if values.get(name)]
    alone += [name for name in ("reset", "explain") if getattr(options, name)]
    if many and alone:
        raise ConfigurationError(
            f"{alone[0]} does not go with over= or resume=: each question of a batch is asked "
            "alone, in its own session (or the one session= names)."
        )
    if "concurrency" in values:
        text = values["concurrency"].strip()
        if not text.isdecimal() or int(text) < 1:
            raise ConfigurationError(
                f"concurrency must be a whole number of at least 1, not {values['concurrency']!r}."
            )
        options.concurrency = int(text)
    workspaces = tuple(w.strip() for w in (options.workspace or "").split(",") if w.strip())
    modes = tuple(check_mode(m) for m in values.get("mode", "").split(",") if m.strip())
    for name, listed in (("workspace", workspaces), ("mode", modes)):
        if len(listed) > 1 and not many:
            raise ConfigurationError(
                f"{name}={values[name]} asks each question in each {name}: it needs over=NAME "
                "(a list, Series or DataFrame of questions)."
            )
    if options.concurrency is not None and not many:
        raise ConfigurationError("concurrency= is for many questions: it needs over=NAME.")
    if len(workspaces) > 1:
        options.workspaces, options.workspace = workspaces, workspaces[0]
    if modes:
        options.mode = modes[0]
        options.modes = modes if len(modes) > 1 else ()


def split_question(line: str) -> tuple[list[str], str]:
    """The one-line form's option tokens (unquoted, their values not checked yet: they may hold
    ``{name}`` references still to expand) and its question, exactly as typed."""
    return _leading_options(line, question=True)


_RAW_TOKEN = re.compile(r"""(?:[^\s'"\\]+|\\.|'[^']*'|"(?:[^"\\]|\\.)*")+""", re.DOTALL)
"""One shell word as typed, its quotes included (``workspace="My docs"``)."""
_OPTION_LIKE = re.compile(r"-[^\W\d](?=\s|$)|--[\w-]*(?=[=\s]|$)|(?P<name>\w+)=")
"""How a token that means to be an option starts: ``-w``, ``--reset``, ``name=``. In a
one-line question anything else (``What's``, ``-5``, ``x=1``) starts the question."""
_END_OF_OPTIONS = "--"


def _leading_options(line: str, *, question: bool) -> tuple[list[str], str]:
    """The tokens of the options that lead ``line`` (values included, quotes removed), and the
    rest of the line from its first non-blank character, untouched."""
    tokens: list[str] = []
    position = _skip_space(line, 0)
    expects_value = False
    while position < len(line):
        if not expects_value and question and not _is_option_like(line, position):
            break
        token, end = _word(line, position)
        if token == _END_OF_OPTIONS and not expects_value:
            position = _skip_space(line, end)
            break
        if not expects_value:
            option, value = _option_token(token, question=question)
            if option is None:
                break
            expects_value = not option.is_flag and value is None
        else:
            expects_value = False
        tokens.append(token)
        position = _skip_space(line, end)
    if expects_value:
        raise ConfigurationError(f"The option {tokens[-1]} needs a value.")
    return tokens, line[position:]


def _skip_space(line: str, position: int) -> int:
    while position < len(line) and line[position].isspace():
        position += 1
    return position


def _is_option_like(line: str, position: int) -> bool:
    match = _OPTION_LIKE.match(line, position)
    if match is None:
        return False
    name = match.group("name")
    return name is None or name in _BY_NAME or name.lower() in _SECRET_WORDS


def _word(line: str, position: int) -> tuple[str, int]:
    """The shell word at ``position``, unquoted, and where it ends."""
    match = _RAW_TOKEN.match(line, position)
    end = match.end() if match else position
    if end < len(line) and not line[end].isspace():
        problem = "no closing quotation" if line[end] in "'\"" else "a backslash at the end"
        raise ConfigurationError(f"Cannot read the options ({problem}); check the quotes.")
    return shlex.split(line[position:end], posix=True)[0] if end > position else "", end


def _read(tokens: list[str]) -> tuple[list[str], dict[str, str]]:
    """The flags and ``name: value`` options of option ``tokens`` (as :func:`_leading_options`
    found them: each value-taking flag is followed by its value)."""
    flags: list[str] = []
    values: dict[str, str] = {}
    position = 0
    while position < len(tokens):
        token = tokens[position]
        option, value = _option_token(token, question=False)
        assert option is not None  # _leading_options kept only options
        if option.is_flag:
            flags.append(option.name)
        else:
            if value is None:
                position += 1
                value = tokens[position]
            if option.name == "attach" and values.get("attach"):
                value = f"{values['attach']},{value}"  # -a df -a fig attaches both
            values[option.name] = value
        position += 1
    return flags, values


def _option_token(token: str, *, question: bool) -> tuple[Option | None, str | None]:
    """``(option, value)`` of one token; the value is ``None`` when it is the next token."""
    if token in _BY_SHORT:
        return _BY_SHORT[token], None
    if token.startswith("--") and token[2:] in _BY_NAME:
        return _BY_NAME[token[2:]], None
    if not question and token in _BY_NAME and _BY_NAME[token].is_flag:
        return _BY_NAME[token], None
    key, sep, value = token.partition("=")
    if sep and key in _BY_NAME and not _BY_NAME[key].is_flag:
        return _BY_NAME[key], value
    if (sep and _IDENTIFIER.match(key)) or token.startswith("-"):
        if key.lower().lstrip("-") in _SECRET_WORDS:
            raise ConfigurationError(
                "The API key is never a magic option (it would be saved in the notebook); set "
                "ANYTHING_LLM_API_KEY in the environment or use %allm login."
            )
        hint = f" To ask a question that starts with {token}, put -- before it." if question else ""
        raise ConfigurationError(f"Unknown option '{token}'; valid options: {VALID}.{hint}")
    return None, None


def _usage(option: Option) -> str:
    return option.name if option.is_flag else f"{option.name}={option.value}"


def help_rows() -> list[tuple[str, str, str]]:
    """(option, short, meaning) for every option, as help and the docs list them."""
    return [(_usage(option), option.short or "", option.help) for option in OPTIONS]


def docstring() -> str:
    """The cell magic's docstring, which ``%%allm?`` shows."""
    lines = ["Ask the cell body; the answer streams in below.", "", "Options:"]
    width = max(len(usage) + len(short) for usage, short, _ in help_rows()) + 4
    for usage, short, meaning in help_rows():
        spelled = f"{usage} ({short})" if short else usage
        lines.append(f"  {spelled:<{width}}{meaning.replace('`', '')}")
    lines += ["", "See %allm help for the %allm commands."]
    return "\n".join(lines)
