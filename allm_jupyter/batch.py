"""Many questions at once: :class:`Batch` (the rows and their answers) and the one engine that asks.

The engine is asynchronous, on an :class:`~allm_jupyter.async_client.AsyncClient`:
``AsyncClient.ask_many`` awaits it, and ``Client.ask_many`` runs it on the process's private loop
thread (``_loop``) with an ``AsyncClient`` made from the same config. The caller makes the
``Batch`` and the engine fills it in place, so a stop (KeyboardInterrupt, a cancelled task) leaves
it as it stands: finished rows kept, the answers in flight hung up and pending again, ready for
``resume=``. At most ``concurrency`` answers are in flight; a 429 or 503 pauses the whole batch
through the client's shared backoff, so a busy server sees the batch slow down, not a storm.
"""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._loop import shared_loop
from ._progress import Counts, Progress, make_progress
from .config import DEFAULT_CONCURRENCY as DEFAULT_CONCURRENCY  # magics names it here
from .errors import ConfigurationError
from .question import interpolate
from .reply import Reply, with_error

if TYPE_CHECKING:
    import httpx

    from .async_client import AsyncChatStream, AsyncClient

__all__ = ["Batch", "BatchRow"]

SHOWN_ROWS = 10
"""Rows a batch shows in a notebook (``to_pandas()`` has them all)."""
TICK_SECONDS = 0.1
"""The progress display is redrawn at most this often (10 times a second)."""
_CELL_CHARS = 160
COLUMNS = (
    "question",
    "workspace",
    "mode",
    "status",
    "answer",
    "reasoning",
    "refusal",
    "sources",
    "best_score",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "duration",
    "chat_id",
    "error",
)
"""The columns of ``to_pandas()``/``to_polars()``, one row per answer, in this order."""


@dataclass(frozen=True)
class BatchRow:
    """One question to ask: its text, where, in which mode, and in which session."""

    question: str
    workspace: str
    mode: str | None
    session_id: str


@dataclass(eq=False)
class Batch:
    """The questions of one ``ask_many`` and their answers, filled in as they arrive.

    ``replies`` is in input order: a :class:`Reply` (with ``error`` set where it failed) or
    ``None`` for a question not asked yet (or hung up by a stop). Make one with :meth:`plan` to
    keep hold of it whatever happens, then ask it with ``ask_many(resume=batch)``.
    """

    rows: tuple[BatchRow, ...]
    replies: list[Reply | None] = field(repr=False)
    durations: list[float | None] = field(repr=False)
    """Seconds each answer took, from sending the question to the answer's end."""
    stopped: bool = False
    """True when the last run was stopped before every question was asked."""
    _in_flight: set[int] = field(default_factory=set, repr=False)
    _answered_now: int = 0
    _started_at: float = 0.0
    _version: int = 0

    @classmethod
    def plan(
        cls,
        workspace: str | Sequence[str],
        questions: Any,
        *,
        mode: str | Sequence[str | None] | None = None,
        template: str | None = None,
        session: str | None = None,
        namespace: Mapping[str, Any] | None = None,
    ) -> Batch:
        """The rows for these questions: one per (question, workspace, mode), questions first.

        ``questions`` is a list of strings, a pandas/polars Series, or a DataFrame with a
        ``template`` whose ``{column}`` fields are filled per row (braces that are not a field
        stay as written); with a list or Series, ``{item}`` in a template is the element (a
        template without it is a question about each element, which follows it on its own line).
        ``namespace`` gives a template's other ``{name}`` references (the magic's notebook).
        Each row gets its own fresh session unless ``session`` names one to share.
        """
        texts = question_texts(questions, template, namespace or {})
        workspaces = _choices(workspace, "workspace")
        modes = [mode] if mode is None or isinstance(mode, str) else list(mode)
        if not modes:
            raise ConfigurationError("mode is an empty list; name at least one mode, or None.")
        rows = tuple(
            BatchRow(text, slug, each_mode, session or f"allm-batch-{uuid.uuid4().hex}")
            for text in texts
            for slug in workspaces
            for each_mode in modes
        )
        return cls(rows, [None] * len(rows), [None] * len(rows))

    # -- counts ---------------------------------------------------------------------------------

    @property
    def done(self) -> int:
        """Questions answered without an error."""
        return sum(1 for reply in self.replies if reply is not None and reply.error is None)

    @property
    def failed(self) -> int:
        return sum(1 for reply in self.replies if reply is not None and reply.error is not None)

    @property
    def pending(self) -> int:
        """Questions not answered yet: never asked, or hung up by a stop."""
        return sum(1 for reply in self.replies if reply is None)

    def counts(self) -> Counts:
        return Counts(
            total=len(self.rows),
            done=self.done,
            failed=self.failed,
            in_flight=len(self._in_flight),
            answered_now=self._answered_now,
            elapsed=time.monotonic() - self._started_at if self._started_at else 0.0,
            stopped=self.stopped,
        )

    def unfinished(self) -> list[int]:
        """The rows ``resume=`` asks again: pending or failed."""
        return [i for i, reply in enumerate(self.replies) if reply is None or reply.error]

    # -- the engine fills these in (on the loop) ------------------------------------------------

    def _begin(self) -> None:
        self.stopped = False
        self._answered_now = 0
        self._started_at = time.monotonic()
        self._version += 1

    def _asking(self, index: int) -> None:
        self.replies[index] = None  # a failed row asked again is pending until its new answer
        self._in_flight.add(index)
        self._version += 1

    def _answered(self, index: int, reply: Reply, seconds: float) -> None:
        self._in_flight.discard(index)
        self.replies[index] = reply
        self.durations[index] = seconds
        self._answered_now += 1
        self._version += 1

    def _hung_up(self, index: int) -> None:
        self._in_flight.discard(index)
        self._version += 1

    # -- tables ---------------------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """One dict per answer with :data:`COLUMNS` (``None`` where there is nothing)."""
        return [
            _record(row, reply, seconds)
            for row, reply, seconds in zip(self.rows, self.replies, self.durations, strict=True)
        ]

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame``, one row per answer (see :data:`COLUMNS`)."""
        try:
            import pandas  # optional: only for this table
        except ImportError:
            raise ImportError("Batch.to_pandas needs pandas: pip install pandas") from None
        return pandas.DataFrame(self.records(), columns=list(COLUMNS))

    def to_polars(self) -> Any:
        """A ``polars.DataFrame``, one row per answer (see :data:`COLUMNS`)."""
        try:
            import polars  # optional: only for this table
        except ImportError:
            raise ImportError("Batch.to_polars needs polars: pip install polars") from None
        return polars.DataFrame(self.records(), schema=list(COLUMNS), strict=False)

    def summary(self) -> str:
        """``8 questions: 6 done, 1 failed, 1 pending``, and ``stopped`` after a stop."""
        total = len(self.rows)
        text = (
            f"{total} question{'s' * (total != 1)}: {self.done} done, {self.failed} failed, "
            f"{self.pending} pending"
        )
        return text + (" (stopped; ask the rest with resume=)" if self.stopped else "")

    def __repr__(self) -> str:
        return f"<Batch {self.summary()}>"

    def _repr_html_(self) -> str:
        """The counts and the first rows; every server text escaped (no markup reaches the page)."""
        headers = ["#", "question", "workspace", "mode", "answer", "error"]
        body = []
        for number, record in enumerate(self.records()[:SHOWN_ROWS]):
            cells = [
                str(number),
                record["question"],
                record["workspace"],
                record["mode"] or "",
                record["answer"] if record["answer"] is not None else record["status"],
                record["error"] or "",
            ]
            body.append("<tr>" + "".join(f"<td>{_cell(cell)}</td>" for cell in cells) + "</tr>")
        more = len(self.rows) - SHOWN_ROWS
        caption = html.escape(self.summary()) + (
            f"; the first {SHOWN_ROWS} rows (to_pandas() has all)" if more > 0 else ""
        )
        head = "".join(f"<th>{name}</th>" for name in headers)
        return (
            f"<p>{caption}</p><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )


def _cell(text: str) -> str:
    flat = " ".join(text.split())
    shown = flat if len(flat) <= _CELL_CHARS else flat[:_CELL_CHARS].rstrip() + "…"
    return html.escape(shown, quote=True)


def _record(row: BatchRow, reply: Reply | None, seconds: float | None) -> dict[str, Any]:
    metrics = reply.metrics if reply else None
    scores = [s.score for s in reply.sources if s.score is not None] if reply else []
    status = "pending" if reply is None else "failed" if reply.error else "done"
    return {
        "question": row.question,
        "workspace": row.workspace,
        "mode": row.mode,
        "status": status,
        "answer": reply.answer if reply else None,
        "reasoning": reply.reasoning if reply else None,
        "refusal": reply.refusal if reply else None,
        "sources": [s.title for s in reply.sources] if reply else None,
        "best_score": max(scores) if scores else None,
        "prompt_tokens": metrics.prompt_tokens if metrics else None,
        "completion_tokens": metrics.completion_tokens if metrics else None,
        "cost": metrics.total_cost if metrics else None,
        "duration": seconds,
        "chat_id": reply.chat_id if reply else None,
        "error": reply.error if reply else None,
    }


# -- the questions ----------------------------------------------------------------------------


def _library(value: object) -> str:
    return type(value).__module__.split(".")[0]


def _is_frame(value: object, kind: str) -> bool:
    return type(value).__name__ == kind and _library(value) in ("pandas", "polars")


def question_texts(questions: Any, template: str | None, namespace: Mapping[str, Any]) -> list[str]:
    """The question of every row: the items as they are, or the template filled per row."""
    if isinstance(questions, str):
        raise ConfigurationError(
            "questions is one string; pass a list of questions (client.chat asks one)."
        )
    if _is_frame(questions, "DataFrame"):
        if template is None:
            raise ConfigurationError(
                "A DataFrame needs a template: a question with {column} fields filled per row."
            )
        rows: list[Mapping[str, Any]] = (
            questions.to_dict("records")
            if _library(questions) == "pandas"
            else questions.to_dicts()
        )
        texts = [interpolate(template, {**namespace, **_fields(row)}) for row in rows]
    else:
        if not isinstance(questions, Iterable):
            raise ConfigurationError(
                f"questions is a {type(questions).__name__}; pass a list of strings, a Series, "
                "or a DataFrame with a template."
            )
        items = list(questions)
        name = getattr(questions, "name", None) if _is_frame(questions, "Series") else None
        if template is not None:
            texts = [_about(template, item, name, namespace) for item in items]
        else:
            wrong = next(((i, q) for i, q in enumerate(items) if not isinstance(q, str)), None)
            if wrong is not None:
                raise ConfigurationError(
                    f"Question {wrong[0]} is a {type(wrong[1]).__name__}, not text; pass strings, "
                    "or a template with {item} for other values."
                )
            texts = items
    if not texts:
        raise ConfigurationError("There are no questions to ask.")
    return [text.strip() for text in texts]


def _fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(column): value for column, value in row.items()}


def _about(template: str, item: object, name: object, namespace: Mapping[str, Any]) -> str:
    """The template for one element: ``{item}`` (or ``{<the Series' name>}``) is the element;
    a template naming neither is a question about it, and the element follows on its own line."""
    marker = f"\0{uuid.uuid4().hex}\0"
    names = ["item", *([name] if isinstance(name, str) and name else [])]
    marked = interpolate(template, {**namespace, **dict.fromkeys(names, marker)})
    if marker not in marked:
        return f"{interpolate(template, dict(namespace)).rstrip()}\n\n{item}"
    return interpolate(template, {**namespace, **dict.fromkeys(names, item)})


def _choices(value: str | Sequence[str], what: str) -> list[str]:
    choices = [value] if isinstance(value, str) else list(value)
    if not choices or not all(isinstance(c, str) and c.strip() for c in choices):
        raise ConfigurationError(f"{what} must name at least one workspace: a slug or a list.")
    return choices


# -- the engine ---------------------------------------------------------------------------------


def checked_concurrency(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"concurrency must be a whole number of at least 1, not {value!r}."
        )
    return value


def prepared(
    workspace: str | Sequence[str] | None,
    questions: Any,
    *,
    mode: str | Sequence[str | None] | None,
    template: str | None,
    session: str | None,
    resume: Batch | None,
    namespace: Mapping[str, Any] | None = None,
) -> Batch:
    """The batch to fill: ``resume`` itself (its unfinished rows are asked), or a new plan.

    Passing the questions again with ``resume=`` is allowed (re-running the same call): they
    must be the same questions, workspaces and modes.
    """
    if resume is None:
        if workspace is None or questions is None:
            raise ConfigurationError("ask_many needs a workspace and questions (or resume=batch).")
        return Batch.plan(
            workspace, questions, mode=mode, template=template, session=session, namespace=namespace
        )
    if not isinstance(resume, Batch):
        raise ConfigurationError(f"resume= takes a Batch, not a {type(resume).__name__}.")
    if questions is not None and workspace is not None:
        again = Batch.plan(workspace, questions, mode=mode, template=template, namespace=namespace)
        if [_asked(r) for r in again.rows] != [_asked(r) for r in resume.rows]:
            raise ConfigurationError(
                "resume= is a batch of other questions; pass the same questions, workspaces and "
                "modes, or only resume=batch."
            )
    return resume


def _asked(row: BatchRow) -> tuple[str, str, str | None]:
    return row.question, row.workspace, row.mode


async def fill(
    batch: Batch,
    client: AsyncClient,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Progress | None = None,
    timeout: float | httpx.Timeout | None = None,
) -> Batch:
    """Ask the batch's unfinished rows, at most ``concurrency`` at once, filling it in place.

    A failing question records its error and the batch goes on. A cancel hangs up every answer
    in flight (they are pending again), then goes on as the cancel it is.
    """
    todo = deque(batch.unfinished())
    batch._begin()

    async def worker() -> None:
        while todo:
            await _ask(batch, client, todo.popleft(), timeout)

    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(todo)))]
    ticker = asyncio.ensure_future(_tick(batch, progress)) if progress is not None else None
    try:
        await asyncio.gather(*workers)
    except BaseException:
        batch.stopped = True
        raise
    finally:
        for task in [*workers, *([ticker] if ticker else [])]:
            task.cancel()
        await asyncio.gather(*workers, *([ticker] if ticker else []), return_exceptions=True)
        if progress is not None:
            progress.close(batch.counts())
    return batch


async def _ask(
    batch: Batch, client: AsyncClient, index: int, timeout: float | httpx.Timeout | None
) -> None:
    row = batch.rows[index]
    batch._asking(index)
    started = time.monotonic()
    stream: AsyncChatStream | None = None
    try:
        # in the try: a question the client refuses (an empty one) fails its row, not the batch
        stream = client.stream_chat(
            row.workspace, row.question, mode=row.mode, session_id=row.session_id, timeout=timeout
        )
        async with stream:
            async for _ in stream:
                pass
        reply = stream.reply
    except asyncio.CancelledError:
        batch._hung_up(index)
        raise
    except Exception as error:  # a bug or an unmapped failure costs this row, not the batch
        so_far = stream.reply if stream is not None else Reply(workspace=row.workspace)
        reply = with_error(so_far, error)
    batch._answered(index, reply, time.monotonic() - started)


async def _tick(batch: Batch, progress: Progress) -> None:
    """Redraw when something changed, at most every :data:`TICK_SECONDS`."""
    drawn = -1
    while True:
        if batch._version != drawn:
            drawn = batch._version
            progress.show(batch.counts())
        await asyncio.sleep(TICK_SECONDS)


# -- the two entry points -------------------------------------------------------------------------


def progress_for(setting: bool | None, total: int) -> Progress | None:
    """The display for ``progress=``: a bar in a notebook, a line in a terminal, or none."""
    if setting is False:
        return None
    return make_progress(total, forced=setting is True)


async def ask_many_async(
    client: AsyncClient,
    batch: Batch,
    *,
    concurrency: int,
    progress: bool | None,
    timeout: float | httpx.Timeout | None,
) -> Batch:
    """``AsyncClient.ask_many``: fill ``batch`` on this loop with ``client``."""
    shown = progress_for(progress, len(batch.rows))
    return await fill(
        batch, client, concurrency=checked_concurrency(concurrency), progress=shown, timeout=timeout
    )


def ask_many_blocking(
    connect: Callable[[], AsyncClient],
    batch: Batch,
    *,
    concurrency: int,
    progress: bool | None,
    timeout: float | httpx.Timeout | None,
) -> Batch:
    """``Client.ask_many``: fill ``batch`` on the private loop thread with the ``AsyncClient``
    ``connect`` makes there (one of the same settings), closed after. A stop
    (KeyboardInterrupt) returns the batch as it stands."""
    workers = checked_concurrency(concurrency)
    shown = progress_for(progress, len(batch.rows))

    async def run() -> Batch:
        async with connect() as client:
            return await fill(batch, client, concurrency=workers, progress=shown, timeout=timeout)

    try:
        return shared_loop().call(run)
    except KeyboardInterrupt:
        batch.stopped = True
        return batch
