"""The option table: parsing, help, and the docs that list it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allm_jupyter.errors import ConfigurationError
from allm_jupyter.options import OPTIONS, CellOptions, docstring, help_rows, parse_options

DOCS = Path(__file__).resolve().parent.parent / "docs" / "magic.md"


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
    options = parse_options("-w 'my ws' What is it?", question=True)
    assert options.workspace == "my ws" and options.question == "What is it?"
    options = parse_options('workspace="My docs" -t "Bob\'s thread" What\'s  "new"?', question=True)
    assert (options.workspace, options.thread) == ("My docs", "Bob's thread")
    assert options.question == 'What\'s  "new"?'


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


def test_question_words_are_never_options() -> None:
    options = parse_options("-w research reset the router how", question=True)
    assert options.workspace == "research" and not options.reset
    assert options.question == "reset the router how"
    assert parse_options("--reset -w r what now", question=True).reset
    assert parse_options("-w r what is mode=query", question=True).question.endswith("mode=query")
    assert parse_options("-- -w is a flag?", question=True) == CellOptions(question="-w is a flag?")
    assert parse_options("-5 degrees?", question=True).question == "-5 degrees?"
    assert parse_options("reset raw", question=False) == CellOptions(reset=True, raw=True)


@pytest.mark.parametrize("value", ["inf", "1e300", "-5", "0", "nan"])
def test_timeouts_must_be_sane(value: str) -> None:
    with pytest.raises(ConfigurationError, match="timeout must be"):
        parse_options(f"timeout={value}")


def test_the_magic_docstring_lists_every_option() -> None:
    text = docstring()
    for option in OPTIONS:
        assert re.search(rf"^  {option.name}\b", text, re.MULTILINE), option.name
        if option.short:
            assert f"({option.short})" in text


def test_the_docs_option_table_matches_the_option_table() -> None:
    """The options table in the docs is the one the code declares, row for row."""
    lines = DOCS.read_text().splitlines()
    start = lines.index("| option | short | meaning |") + 2
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        table.append(tuple(cell.replace("\\|", "|") for cell in cells))
    expected = [
        (f"`{usage}`", f"`{short}`" if short else "", meaning)
        for usage, short, meaning in help_rows()
    ]
    assert table == expected


def test_attach_takes_comma_separated_names_and_repeats() -> None:
    assert parse_options("attach=df,fig").attach == ("df", "fig")
    assert parse_options("-a 'df, Out[3]' -a notes attach=").attach == ("df", "Out[3]", "notes")
    assert parse_options("explain -a df").explain
    one_line = parse_options("--explain -a df why is it empty?", question=True)
    assert (one_line.explain, one_line.attach, one_line.question) == (
        True,
        ("df",),
        "why is it empty?",
    )
    assert not parse_options("explain this error", question=True).explain


def starts_with_option(text: str) -> bool:
    """The test's own reading of "starts with an option": a dash and a letter, two dashes, or
    the name of an option (or of the key) and ``=``."""
    names = "|".join([option.name for option in OPTIONS] + ["api_key", "apikey", "key", "token"])
    return re.match(rf"\s*(-[^\W\d](\s|$)|--[\w-]*([=\s]|$)|(?i:{names})=)", text) is not None


QUESTIONS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",))).filter(
    lambda text: text.strip() and not starts_with_option(text)
)
"""Any text a person might ask, that does not start with an option."""
PREFIXES = st.lists(
    st.sampled_from(
        ["-w research", 'workspace="My docs"', "--reset", "--raw", '-t "Bob\'s thread"', "-m chat"]
    ),
    max_size=3,
).map(" ".join)


@given(PREFIXES, st.sampled_from([" ", "  ", "\t", " \t "]), QUESTIONS)
def test_the_question_is_the_rest_of_the_line_as_typed(
    prefix: str, gap: str, question: str
) -> None:
    line = f"{prefix}{gap}{question}" if prefix else question
    assert parse_options(line, question=True).question == question.lstrip()


def test_the_one_line_section_lists_every_flag_the_table_spells_with_dashes() -> None:
    """The leading flags a one-line question reads, as the page lists them, are the ones the
    option table says a one-line question spells ``--name``; each parses as its flag."""
    page = re.sub(r"\s+", " ", DOCS.read_text(encoding="utf-8"))
    (listed,) = re.findall(r"leading words that are options \((.*?)\);", page)
    flags = re.findall(r"`(--\w+)`", listed)
    spelled = {f for option in OPTIONS for f in re.findall(r"`(--\w+)`", option.help)}
    assert set(flags) == spelled and len(flags) == len(spelled)
    for flag in flags:
        assert getattr(parse_options(f"{flag} Why?", question=True), flag[2:]) is True


def test_the_background_section_says_a_batch_is_refused() -> None:
    page = re.sub(r"\s+", " ", DOCS.read_text(encoding="utf-8"))
    section = page.split("## `%%allm background`: ask without blocking", 1)[1].split(" ## ", 1)[0]
    assert "except `over=` and `resume=`, which it refuses in one sentence" in section
    for line in ("background over=qs", "-b resume=b"):
        with pytest.raises(ConfigurationError, match=r"^background does not go with over="):
            parse_options(line)
