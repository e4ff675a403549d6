"""Notebook objects as attachments, built from real pandas, polars, matplotlib, PIL and IPython
objects (no server involved)."""

from __future__ import annotations

import decimal
import io
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from allm_jupyter.attachments import (
    DOCUMENT_MIME,
    EXPLAIN_QUESTION,
    AttachmentLimits,
    attachment,
    check_total,
    explanation,
    file_stem,
    from_names,
    resolve,
    table,
    traceback_text,
)
from allm_jupyter.errors import AllmError, AttachmentError

pd = pytest.importorskip("pandas")
PIL_Image = pytest.importorskip("PIL.Image")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from IPython.display import Image as IPythonImage  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# What the server's processDocumentAttachments accepts as a data URL.
SERVER_DATA_URL = re.compile(r"^data:[^;]+;base64,(.+)$")


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    PIL_Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_dataframe_is_a_capped_csv_document_that_says_so() -> None:
    frame = pd.DataFrame({"a": range(12_000), "b": ["x"] * 12_000})
    built = attachment(frame, "df")
    assert (built.name, built.mime, built.kind) == ("df.csv", DOCUMENT_MIME, "document")
    assert built.note == "first 500 of 12,000 rows"
    assert (
        built.summary() == f"df.csv: document, {built.size / 1000:.1f} kB, first 500 of 12,000 rows"
    )
    assert SERVER_DATA_URL.match(built.content_string)
    assert built.content_string.startswith("data:text/csv;base64,")
    caption, csv = built.data.decode().split("\n\n", 1)
    assert caption == (
        "df: a pandas DataFrame with 12,000 rows and 2 columns; the first 500 rows follow as CSV."
    )
    assert csv.splitlines()[:2] == ["a,b", "0,x"]  # a RangeIndex is left out
    assert len(csv.splitlines()) == 501
    assert built.size == len(built.data)


def test_a_small_dataframe_is_sent_whole_with_a_meaningful_index() -> None:
    frame = pd.DataFrame({"t": [1.5]}, index=pd.Index(["mon"], name="day"))
    built = attachment(frame, "weekly")
    assert built.note is None
    assert built.data.decode().endswith("all rows follow as CSV.\n\nday,t\nmon,1.5\n")
    assert built.summary().startswith("weekly.csv: document, ")


def test_markdown_tables_escape_pipes_and_newlines() -> None:
    frame = pd.DataFrame({"a|b": ["one\ntwo", "x"]})
    built = attachment(frame, "Out[3]", AttachmentLimits(table_format="markdown", max_rows=1))
    assert built.name == "Out-3.md"
    assert built.note == "first 1 of 2 rows"
    assert built.data.decode().split("\n\n", 1)[1] == "| a\\|b |\n|---|\n| one two |\n"


def test_the_byte_cap_cuts_more_rows_and_states_it() -> None:
    frame = pd.DataFrame({"text": ["word " * 20] * 400})
    limits = AttachmentLimits(max_document_bytes=10_000)
    built = attachment(frame, "df", limits)
    assert built.size <= 10_000
    cut = re.fullmatch(r"first (\d+) of 400 rows", built.note or "")
    assert cut is not None and 50 < int(cut[1]) < 400
    wide = pd.DataFrame({"text": ["w" * 20_000]})
    with pytest.raises(AttachmentError, match="Even one row of this pandas DataFrame is larger"):
        attachment(wide, "wide", limits)


def test_a_series_is_a_one_column_table() -> None:
    built = attachment(pd.Series([1, 2], name="n"), "s")
    assert built.data.decode().endswith(
        "a pandas Series with 2 rows and 1 column; all rows follow as CSV.\n\nn\n1\n2\n"
    )


def test_polars_frames_without_importing_polars_here() -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y|z", "w"]})
    assert attachment(frame, "pf").data.decode().endswith("\n\na,b\n1,x\n2,y|z\n3,w\n")
    shown = table(frame, max_rows=2, table_format="markdown")
    assert (shown.text, shown.note) == (
        "| a | b |\n|---|---|\n| 1 | x |\n| 2 | y\\|z |\n",
        "first 2 of 3 rows",
    )
    with pytest.raises(AttachmentError, match=r"LazyFrame; attach lazy\.collect\(\) instead"):
        attachment(frame.lazy(), "lazy")


def test_figures_and_images_become_png_or_jpeg_attachments() -> None:
    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([1, 2])
    built = attachment(figure, "fig")
    assert (built.name, built.mime, built.kind) == ("fig.png", "image/png", "image")
    assert built.content_string.startswith("data:image/png;base64,")
    assert PIL_Image.open(io.BytesIO(built.data)).format == "PNG"

    cmyk = attachment(PIL_Image.new("CMYK", (3, 3)), "photo")
    assert PIL_Image.open(io.BytesIO(cmyk.data)).mode == "RGB"

    jpeg = io.BytesIO()
    PIL_Image.new("RGB", (3, 3)).save(jpeg, format="JPEG")
    from_bytes = attachment(jpeg.getvalue(), "raw")
    assert (from_bytes.name, from_bytes.mime) == ("raw.jpg", "image/jpeg")

    shown = attachment(IPythonImage(data=png_bytes()), "_")
    assert (shown.name, shown.data) == ("_.png", png_bytes())
    with pytest.raises(AttachmentError, match="IPython Image without its bytes"):
        attachment(IPythonImage(url="http://example.org/a.png"), "remote")


def test_anything_that_saves_like_a_figure_is_one() -> None:
    class Grid:  # seaborn's FacetGrid saves through its figure the same way
        def savefig(self, target: io.BytesIO, **options: object) -> None:
            assert options == {"format": "png", "bbox_inches": "tight"}
            target.write(png_bytes())

    assert attachment(Grid(), "grid").data == png_bytes()


def test_text_and_bytes_are_text_documents() -> None:
    built = attachment("Héllo {braces} stay", "note")
    assert (built.name, built.mime, built.data) == (
        "note.txt",
        DOCUMENT_MIME,
        "Héllo {braces} stay".encode(),
    )
    assert built.content_string.startswith("data:text/plain;base64,")
    assert attachment(b"plain bytes", "b").data == b"plain bytes"
    with pytest.raises(AttachmentError, match="empty"):
        attachment("  \n", "blank")
    with pytest.raises(AttachmentError, match="neither UTF-8 text nor a PNG/JPEG image"):
        attachment(b"\xff\x00\xfe", "blob")


def test_files_keep_their_name_so_the_collector_picks_the_parser(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Title\n")
    assert (attachment(notes, "notes").name, attachment(notes, "notes").mime) == (
        "notes.md",
        DOCUMENT_MIME,
    )
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.4 not really")
    assert attachment(pdf, "p").content_string.startswith("data:application/pdf;base64,")
    script = tmp_path / "model.py"
    script.write_text("print('hi')\n")
    as_text = attachment(script, "script")
    assert (as_text.name, as_text.note) == ("model.py.txt", "sent as text")
    picture = tmp_path / "plot.png"
    picture.write_bytes(png_bytes())
    assert (attachment(picture, "pic").name, attachment(picture, "pic").kind) == (
        "plot.png",
        "image",
    )


def test_file_refusals(tmp_path: Path) -> None:
    with pytest.raises(AttachmentError, match="there is no file at"):
        attachment(tmp_path / "missing.csv", "missing")
    binary = tmp_path / "data.bin"
    binary.write_bytes(b"\x00\xff\x10")
    with pytest.raises(AttachmentError, match=r"data\.bin is neither text nor a file type"):
        attachment(binary, "binary")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(AttachmentError, match="empty"):
        attachment(empty, "empty")
    big = tmp_path / "big.txt"
    big.write_text("x" * 2_000)
    with pytest.raises(
        AttachmentError,
        match=r"big\.txt is 2\.0 kB, more than the 1\.0 kB allowed for an attached document",
    ):
        attachment(big, "big", AttachmentLimits(max_document_bytes=1_000))


def test_anything_else_is_refused_naming_its_type_and_what_is_accepted() -> None:
    with pytest.raises(AttachmentError) as caught:
        attachment({"a": 1}, "config")
    assert str(caught.value) == (
        "Cannot attach config: it is a dict; attach a pandas or polars DataFrame, a matplotlib "
        "Figure, a PIL or IPython image, PNG/JPEG bytes, text (str or bytes) or a pathlib.Path "
        "to a file."
    )
    assert isinstance(caught.value, AllmError)
    with pytest.raises(AttachmentError, match=r"it is a decimal\.Decimal;"):
        attachment(decimal.Decimal(1), "d")


def test_size_limits_are_checked_before_sending() -> None:
    limits = AttachmentLimits(max_image_bytes=10, max_total_bytes=30)
    with pytest.raises(AttachmentError, match="allowed for an attached image"):
        attachment(png_bytes(), "pic", limits)
    parts = [attachment("x" * 20, "a", limits), attachment("y" * 20, "b", limits)]
    with pytest.raises(AttachmentError, match="The attachments add up to 40 B, more than the 30 B"):
        check_total(parts, limits)
    with pytest.raises(AttachmentError, match="max_rows must be a positive whole number"):
        AttachmentLimits(max_rows=0)
    with pytest.raises(AttachmentError, match="csv or markdown"):
        AttachmentLimits(table_format="html")  # type: ignore[arg-type]


NAMESPACE = {
    "In": ["", "df = load()", "df.describe()"],
    "Out": {2: "described"},
    "_": "last value",
    "df": pd.DataFrame({"a": [1]}),
    "report": type("Report", (), {"table": "inner"})(),
}


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("In[1]", "df = load()"),
        ("Out[2]", "described"),
        ("_", "last value"),
        (" report.table ", "inner"),
    ],
)
def test_references_name_notebook_objects(reference: str, expected: str) -> None:
    assert resolve(reference, NAMESPACE) == expected


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("nope", "There is no variable 'nope' in the notebook."),
        ("Out[1]", "Out[1] does not exist: cell 1 has not run or showed no value."),
        ("In[9]", "In[9] does not exist: no cell 9 has run."),
        ("In[0]", "In[0] does not exist: no cell 0 has run."),
        ("df[0]", "'df[0]' is not a variable name, In[n] or Out[n]."),
        ("import", "'import' is not a variable name, In[n] or Out[n]."),
        ("report._secret", "'report._secret' does not exist."),
        ("report.missing", "'report.missing' does not exist."),
    ],
)
def test_bad_references_say_what_is_wrong(reference: str, message: str) -> None:
    with pytest.raises(AttachmentError) as caught:
        resolve(reference, NAMESPACE)
    assert str(caught.value) == message


def test_from_names_builds_each_and_refuses_twins() -> None:
    built = from_names(["df", "In[2]"], NAMESPACE)
    assert [a.name for a in built] == ["df.csv", "In-2.txt"]
    with pytest.raises(AttachmentError, match=r"both be named df\.csv"):
        from_names(["df", "df"], NAMESPACE)


def test_file_stems_survive_the_servers_name_sanitising() -> None:
    assert file_stem("Out[12]") == "Out-12"
    assert file_stem("../../etc/passwd") == "etc-passwd"
    assert file_stem("a:b*c?") == "a-b-c"
    assert file_stem("???") == "attachment"


def test_explain_message_holds_source_and_plain_traceback() -> None:
    coloured = "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"
    sent = explanation("1 / 0\n", coloured)
    assert sent.message == (
        f"{EXPLAIN_QUESTION}\n\nThe cell:\n\n~~~~python\n1 / 0\n~~~~\n\n"
        "Its traceback:\n\n~~~~\nZeroDivisionError: division by zero\n~~~~"
    )
    assert sent.rows() == [
        ("cell", "1 line: 1 / 0"),
        ("traceback", "1 line"),
        ("size", f"{len(sent.message.encode())} B"),
    ]
    own = explanation("x", "E" * 50 + "End", "Why?", max_chars=10)
    assert own.message.startswith("Why?\n\n")
    assert "[43 earlier characters cut]\nEEEEEEEEnd\n~~~~" in own.message
    assert own.rows()[1] == ("traceback", "1 line (its first 43 characters cut)")


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_explain_sends_the_home_folder_as_a_tilde(name: str) -> None:
    home = str(Path.home())
    assume(home not in name)
    source = f"open('{home}/{name}')"
    error = f'File "{home}/{name}", line 1\nFileNotFoundError: {home}'
    sent = explanation(source, error)
    assert home not in sent.message
    assert sent.cell == f"open('~/{name}')"
    assert f'File "~/{name}", line 1' in sent.message


def test_traceback_text_skips_the_frames_of_ipython() -> None:
    runner: dict[str, object] = {"__name__": "IPython.core.fake_shell"}
    exec(  # a stand-in for IPython's run_code: it catches what the cell raised
        "def run(cell):\n    try:\n        cell()\n    except Exception as error:\n        return error\n",
        runner,
    )

    def cell() -> None:
        {}["missing"]

    error = runner["run"](cell)  # type: ignore[operator]
    text = traceback_text(error)
    assert text.startswith("Traceback (most recent call last):\n")
    assert 'File "<string>"' not in text and "in cell" in text  # the runner's frame is gone
    assert text.endswith("KeyError: 'missing'\n")


@settings(deadline=None, max_examples=50)
@given(st.text(min_size=1).filter(str.strip))
def test_any_text_round_trips_through_the_data_url(text: str) -> None:
    built = attachment(text, "t")
    match = SERVER_DATA_URL.match(built.content_string)
    assert match is not None
    assert built.data == text.encode()
