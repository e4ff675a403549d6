"""Notebook objects as chat attachments: DataFrames, figures, images, text and files.

The chat routes take ``attachments: [{name, mime, contentString}]`` with a base64 data URL.
Images go to the model as they are. ``mime: "application/anythingllm-document"`` makes the server
write the bytes to its collector's hot folder under ``name`` and parse them like an upload, so the
name's extension picks the parser (``.csv``/``.md``/``.txt`` are read as text) and the parsed text
is put into the prompt *without* the name. A document the collector cannot parse is dropped
without a word to the client, so everything is checked here, before sending.

Nothing here imports pandas, polars, matplotlib, PIL or IPython: objects are recognised by their
class's module and methods, so none of them is a dependency.
"""

from __future__ import annotations

import base64
import io
import keyword
import mimetypes
import os
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .config import DOCUMENT_MIME as DOCUMENT_MIME  # a wire value the client checks too
from .errors import AttachmentError
from .options import AttachmentLimits
from .render import counted

"""The ``mime`` that asks the server to parse an attachment as a document (v1.9.1+)."""

TEXT_EXTENSIONS = (".txt", ".md", ".org", ".adoc", ".rst", ".csv", ".json", ".html")
"""Extensions the collector reads as plain text."""

DOCUMENT_EXTENSIONS = (
    *TEXT_EXTENSIONS,
    *(".pdf", ".docx", ".pptx", ".xlsx", ".odt", ".odp", ".epub", ".mbox"),
)
"""Extensions the collector has a parser for (audio and video need a transcription provider
and are left out; pictures are sent as images)."""

IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
"""Magic numbers of the image formats every vision provider accepts."""

ACCEPTED = (
    "a pandas or polars DataFrame, a matplotlib Figure, a PIL or IPython image, PNG/JPEG bytes, "
    "text (str or bytes) or a pathlib.Path to a file"
)

_REFERENCE = re.compile(
    r"^(?P<var>In|Out)\[(?P<index>\d+)\]$|^(?P<name>[^\W\d]\w*(?:\.[^\W\d]\w*)*)$"
)


@dataclass(frozen=True)
class Attachment:
    """One attachment as the server takes it; ``size`` is in bytes before base64."""

    name: str
    mime: str
    content_string: str = field(repr=False)
    size: int
    note: str | None = None
    """What was cut, e.g. ``first 500 of 12,000 rows``; shown before the answer."""

    @property
    def kind(self) -> Literal["document", "image"]:
        return "document" if self.mime == DOCUMENT_MIME else "image"

    @property
    def data(self) -> bytes:
        """The decoded content (what the server's collector or the model gets)."""
        return base64.b64decode(self.content_string.partition(";base64,")[2])

    def to_wire(self) -> dict[str, str]:
        return {"name": self.name, "mime": self.mime, "contentString": self.content_string}

    def summary(self) -> str:
        """One line for the output, e.g. ``df.csv: document, 48.2 kB, first 500 of 12,000 rows``."""
        parts = [self.kind, human_size(self.size)]
        if self.note:
            parts.append(self.note)
        return f"{self.name}: " + ", ".join(parts)


@dataclass(frozen=True)
class Table:
    """A DataFrame's first rows as text, and what was left out."""

    text: str
    rows_shown: int
    rows_total: int
    columns: int
    library: str

    @property
    def note(self) -> str | None:
        if self.rows_shown == self.rows_total:
            return None
        return f"first {self.rows_shown:,} of {self.rows_total:,} rows"


def human_size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def data_url(mime: str, data: bytes) -> str:
    """``data:<mime>;base64,…``; the server's parser takes no parameters (``;charset=``)."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def file_stem(label: str) -> str:
    """A label (``df``, ``Out[3]``, ``results.table``) as a file name the server keeps intact:
    it strips ``<>:"/\\|?*`` and leading ``../`` from attachment names."""
    stem = re.sub(r"[^\w.-]+", "-", label).strip("-.")
    return stem or "attachment"


# --- recognising objects without importing their libraries -------------------------------------


def _library(obj: object) -> str:
    return type(obj).__module__.partition(".")[0]


def is_dataframe(obj: object) -> bool:
    return type(obj).__name__ in ("DataFrame", "Series") and _library(obj) in ("pandas", "polars")


def _is_figure(obj: object) -> bool:
    """A matplotlib Figure, or anything that saves like one (seaborn's grids)."""
    return not isinstance(obj, type) and callable(getattr(obj, "savefig", None))


def _is_pil_image(obj: object) -> bool:
    return _library(obj) == "PIL" and callable(getattr(obj, "save", None)) and hasattr(obj, "mode")


def _is_ipython_image(obj: object) -> bool:
    return _library(obj) == "IPython" and type(obj).__name__ == "Image"


def _type_name(obj: object) -> str:
    module = type(obj).__module__
    name = type(obj).__qualname__
    return name if module == "builtins" else f"{module}.{name}"


def image_mime(data: bytes) -> str | None:
    return next((mime for magic, mime in IMAGE_TYPES.items() if data.startswith(magic)), None)


# --- tables ------------------------------------------------------------------------------------


def _table_text(frame: Any, library: str, rows: int, table_format: str) -> str:
    head = frame.head(rows)
    if library == "pandas":
        keep_index = type(head.index).__name__ != "RangeIndex"
        if table_format == "csv":
            return str(head.to_csv(index=keep_index))
        headers = ([str(head.index.name or "")] if keep_index else []) + [
            str(c) for c in head.columns
        ]
        values: Iterable[Sequence[Any]] = head.itertuples(index=keep_index, name=None)
    else:
        if table_format == "csv":
            return str(head.write_csv())
        headers = [str(c) for c in head.columns]
        values = head.iter_rows()
    return _markdown(headers, values)


def _markdown(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def table(
    frame: Any, *, max_rows: int = 500, table_format: str = "csv", max_bytes: int | None = None
) -> Table:
    """The first ``max_rows`` rows of a pandas or polars DataFrame (or Series) as CSV or a
    Markdown table; fewer rows when ``max_bytes`` (UTF-8) would be exceeded."""
    if not is_dataframe(frame):
        raise AttachmentError(f"A {type(frame).__name__} is not a pandas or polars DataFrame.")
    library = _library(frame)
    if type(frame).__name__ == "Series":
        frame = frame.to_frame()
    total = len(frame)
    rows = min(max_rows, total)
    text = _table_text(frame, library, rows, table_format)
    while max_bytes is not None and len(text.encode()) > max_bytes:
        if rows <= 1:
            raise AttachmentError(
                f"Even one row of this {library} DataFrame is larger than {human_size(max_bytes)}; "
                "select fewer or narrower columns."
            )
        # Shrink in proportion, with a margin, so wide rows take few rounds.
        rows = max(1, min(rows - 1, int(rows * max_bytes / len(text.encode()) * 0.95)))
        text = _table_text(frame, library, rows, table_format)
    return Table(text, rows, total, len(frame.columns), library)


# --- builders ----------------------------------------------------------------------------------


def document(name: str, data: bytes, *, mime: str, note: str | None = None) -> Attachment:
    """A document attachment; ``name`` must end in an extension the collector parses."""
    return Attachment(name, DOCUMENT_MIME, data_url(mime, data), len(data), note)


def image(name: str, data: bytes, *, note: str | None = None) -> Attachment:
    mime = image_mime(data)
    if mime is None:
        raise AttachmentError(f"{name} is not a PNG or JPEG image.")
    extension = ".png" if mime == "image/png" else ".jpg"
    stem = name if name.lower().endswith((extension, ".jpeg")) else name + extension
    return Attachment(stem, mime, data_url(mime, data), len(data), note)


def from_dataframe(frame: Any, label: str, limits: AttachmentLimits) -> Attachment:
    """A table document, led by a line naming it: the server puts the text into the prompt
    without the attachment's name."""
    shown = table(
        frame,
        max_rows=limits.max_rows,
        table_format=limits.table_format,
        max_bytes=limits.max_document_bytes - 200 - len(label.encode()),  # room for the caption
    )
    kind = f"{shown.library} {'Series' if type(frame).__name__ == 'Series' else 'DataFrame'}"
    cut = f"; the first {shown.rows_shown:,} rows follow" if shown.note else "; all rows follow"
    fmt, extension, mime = (
        ("CSV", ".csv", "text/csv")
        if limits.table_format == "csv"
        else ("a Markdown table", ".md", "text/markdown")
    )
    caption = (
        f"{label}: a {kind} with {counted(shown.rows_total, 'row')} and "
        f"{counted(shown.columns, 'column')}{cut} "
        f"as {fmt}.\n\n"
    )
    return document(
        file_stem(label) + extension, (caption + shown.text).encode(), mime=mime, note=shown.note
    )


def from_text(text: str | bytes, label: str) -> Attachment:
    data = text.encode() if isinstance(text, str) else bytes(text)
    if not data.strip():
        # The collector drops empty documents without telling anyone.
        raise AttachmentError(f"{label} is empty; there is nothing to attach.")
    return document(file_stem(label) + ".txt", data, mime="text/plain")


def _figure_png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _pil_png(picture: Any) -> bytes:
    if picture.mode not in ("1", "L", "LA", "I", "P", "RGB", "RGBA"):
        picture = picture.convert("RGBA" if "A" in picture.mode else "RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _ipython_image(picture: Any, label: str) -> bytes:
    data = getattr(picture, "data", None)
    if not isinstance(data, bytes):
        raise AttachmentError(
            f"{label} is an IPython Image without its bytes (one made from a URL); "
            "use Image(url=..., embed=True) or Image(filename=...)."
        )
    return data


def from_path(path: Path, label: str, limits: AttachmentLimits) -> Attachment:
    """A file: pictures as images, files the collector parses as documents, other text files
    as ``.txt`` (the collector would drop a type it does not know)."""
    if not path.is_file():
        raise AttachmentError(f"{label}: there is no file at {path}.")
    suffix = path.suffix.lower()
    size = path.stat().st_size
    is_picture = suffix in (".png", ".jpg", ".jpeg")
    _check_size(path.name, size, limits, "image" if is_picture else "document")
    data = path.read_bytes()
    if is_picture:
        return image(path.name, data)
    if suffix in TEXT_EXTENSIONS and not data.strip():
        raise AttachmentError(f"{path.name} is empty; there is nothing to attach.")
    if suffix in DOCUMENT_EXTENSIONS:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return document(path.name, data, mime=mime)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise AttachmentError(
            f"{path.name} is neither text nor a file type the server's document reader knows "
            f"({', '.join(DOCUMENT_EXTENSIONS)}, or a PNG/JPEG picture)."
        ) from None
    if not data.strip():
        raise AttachmentError(f"{path.name} is empty; there is nothing to attach.")
    return document(path.name + ".txt", data, mime="text/plain", note="sent as text")


def attachment(obj: object, label: str, limits: AttachmentLimits | None = None) -> Attachment:
    """``obj`` as the attachment it should be, named after ``label``; checked against the limits."""
    limits = limits or AttachmentLimits()
    if is_dataframe(obj):
        built = from_dataframe(obj, label, limits)
    elif _library(obj) == "polars" and type(obj).__name__ == "LazyFrame":
        raise AttachmentError(f"{label} is a polars LazyFrame; attach {label}.collect() instead.")
    elif isinstance(obj, Path):
        built = from_path(obj, label, limits)
    elif _is_figure(obj):
        built = image(file_stem(label), _figure_png(obj))
    elif _is_pil_image(obj):
        built = image(file_stem(label), _pil_png(obj))
    elif _is_ipython_image(obj):
        built = image(file_stem(label), _ipython_image(obj, label))
    elif isinstance(obj, bytes | bytearray | memoryview):
        data = bytes(obj)
        if image_mime(data):
            built = image(file_stem(label), data)
        else:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise AttachmentError(
                    f"{label} holds bytes that are neither UTF-8 text nor a PNG/JPEG image."
                ) from None
            built = from_text(data, label)
    elif isinstance(obj, str):
        built = from_text(obj, label)
    else:
        raise AttachmentError(
            f"Cannot attach {label}: it is a {_type_name(obj)}; attach {ACCEPTED}."
        )
    _check_size(built.name, built.size, limits, built.kind)
    return built


def _check_size(name: str, size: int, limits: AttachmentLimits, kind: str) -> None:
    cap = limits.max_image_bytes if kind == "image" else limits.max_document_bytes
    if size > cap:
        raise AttachmentError(
            f"{name} is {human_size(size)}, more than the {human_size(cap)} allowed for an "
            f"attached {kind}; attach less (or raise the limit)."
        )


def check_total(attachments: Sequence[Attachment], limits: AttachmentLimits) -> None:
    total = sum(a.size for a in attachments)
    if total > limits.max_total_bytes:
        raise AttachmentError(
            f"The attachments add up to {human_size(total)}, more than the "
            f"{human_size(limits.max_total_bytes)} allowed for one question; attach fewer."
        )


# --- names in the notebook ---------------------------------------------------------------------


def resolve(reference: str, namespace: Mapping[str, Any]) -> Any:
    """The object a notebook reference names: a variable (``df``, ``_``, ``results.table``),
    ``In[n]`` (a cell's source) or ``Out[n]`` (a cell's shown value). Nothing is evaluated."""
    reference = reference.strip()
    match = _REFERENCE.match(reference)
    if match is None or (match["name"] and keyword.iskeyword(match["name"].split(".")[0])):
        raise AttachmentError(f"'{reference}' is not a variable name, In[n] or Out[n].")
    if match["var"]:
        index = int(match["index"])
        if match["var"] == "In":
            cells = namespace.get("In")
            if not isinstance(cells, Sequence) or not 0 < index < len(cells):
                raise AttachmentError(f"In[{index}] does not exist: no cell {index} has run.")
            return cells[index]
        outputs = namespace.get("Out")
        if not isinstance(outputs, Mapping) or index not in outputs:
            raise AttachmentError(
                f"Out[{index}] does not exist: cell {index} has not run or showed no value."
            )
        return outputs[index]
    head, *attributes = match["name"].split(".")
    if head not in namespace:
        raise AttachmentError(f"There is no variable '{head}' in the notebook.")
    value = namespace[head]
    for position, attribute in enumerate(attributes, start=1):
        if attribute.startswith("_") or not hasattr(value, attribute):
            path = ".".join([head, *attributes[:position]])
            raise AttachmentError(f"'{path}' does not exist.")
        value = getattr(value, attribute)
    return value


def from_names(
    references: Sequence[str], namespace: Mapping[str, Any], limits: AttachmentLimits | None = None
) -> list[Attachment]:
    """What ``attach=df,fig`` sends: each reference resolved and built, the total checked."""
    limits = limits or AttachmentLimits()
    built = [attachment(resolve(r, namespace), r.strip(), limits) for r in references]
    names = [a.name for a in built]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise AttachmentError(f"Two attachments would both be named {twice}; attach each once.")
    check_total(built, limits)
    return built


EXPLAIN_QUESTION = "Why does this notebook cell fail, and how do I fix it?"


def traceback_text(error: BaseException) -> str:
    """The error as Python prints it, without the frames of IPython that ran the cell."""
    frames = error.__traceback__
    while frames is not None and str(frames.tb_frame.f_globals.get("__name__", "")).startswith(
        "IPython."
    ):
        frames = frames.tb_next
    return "".join(traceback.format_exception(type(error), error, frames))


EXPLAIN_MAX_CHARS = 8_000
"""The traceback characters ``%allm explain`` sends at most (its end, where the error is)."""


@dataclass(frozen=True)
class Explanation:
    """What ``%allm explain`` sends, and what the output shows of it before the answer."""

    message: str
    cell: str
    """The failing cell as sent (the home folder shortened to ``~``)."""
    traceback_lines: int
    cut: int
    """Traceback characters left out (its start)."""

    def rows(self) -> list[tuple[str, str]]:
        first = next((line for line in self.cell.splitlines() if line.strip()), "")
        cell = counted(len(self.cell.splitlines()), "line") + (
            f": {first.strip()}" if first else ""
        )
        cut = f" (its first {counted(self.cut, 'character')} cut)" if self.cut else ""
        return [
            ("cell", cell),
            ("traceback", counted(self.traceback_lines, "line") + cut),
            ("size", human_size(len(self.message.encode()))),
        ]


def explanation(
    source: str, error_text: str, question: str | None = None, *, max_chars: int = EXPLAIN_MAX_CHARS
) -> Explanation:
    """The question for ``%allm explain``: the failing cell and its traceback go in the message
    itself, not as a document, so it works on every server version and in every mode. ANSI
    colours are removed; a long traceback keeps its end, where the error is; the home folder
    is ``~`` (it names the user)."""
    cell = home_shortened(source.strip())
    plain = home_shortened(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", error_text).strip())
    cut = max(0, len(plain) - max_chars)
    if cut:
        plain = f"[{cut:,} earlier characters cut]\n" + plain[-max_chars:]
    fence = "~~~~"  # a cell rarely holds four tildes; backticks are common in docstrings
    message = (
        f"{(question or EXPLAIN_QUESTION).strip()}\n\n"
        f"The cell:\n\n{fence}python\n{cell}\n{fence}\n\n"
        f"Its traceback:\n\n{fence}\n{plain}\n{fence}"
    )
    return Explanation(message, cell, len(plain.splitlines()) - (1 if cut else 0), cut)


def home_shortened(text: str) -> str:
    """``text`` with the home folder written ``~``, as a shell would show it."""
    homes = {str(Path.home()), os.path.realpath(Path.home())} - {"", "/"}
    for home in sorted(homes, key=len, reverse=True):
        text = re.sub(re.escape(home) + r"(?![\w.-])", "~", text)
    return text
