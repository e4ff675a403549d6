"""``%%allm`` (ask; the cell body is the question) and ``%allm`` (commands, or a one-line question).

The magic is the one place that shows things: it parses the options, resolves the settings through
its :class:`~allm_jupyter.context.Context`, hands the question to the client and the answer to the
view, and displays what commands return. An :class:`~allm_jupyter.errors.AllmError` fails the cell
as itself (its class is the error reply's ``ename``) and shows as its one sentence.
"""

from __future__ import annotations

import re
import shlex
import tokenize
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from IPython.core.inputtransformer2 import (
    TokenTransformBase,
    assemble_continued_line,
    find_end_of_continued_line,
)
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from traitlets import Bool, Bunch, CFloat, Enum, Int, TraitError, Unicode, validate

from . import options as option_table
from ._terminal import terminal_text, unlinked
from .config import DEFAULT_BACKGROUND_LIMIT
from .context import Context, in_notebook_words
from .errors import AllmError, ConfigurationError
from .options import (
    MODES,
    AttachmentLimits,
    CellOptions,
    parse_options,
    parse_timeout,
    split_question,
)
from .question import interpolate, notebook_name
from .settings import Config, ResolvedSettings

if TYPE_CHECKING:
    from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

    from .attachments import Attachment
    from .batch import Batch
    from .client import ChatStream, Client
    from .commands import Output, Table
    from .jobs import AskJob
    from .reply import Reply
    from .view import View

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
"""What the server's slugs look like; anything else (``Research``, ``My docs``) is looked up by name."""
_QUESTION_LINE = re.compile(r"%allm\s(?!\s*\?*\s*$)")
"""``%allm`` and a question: not ``%allm?`` (help on the magic), nor ``%allm`` alone."""
_STOPPED_BEFORE = "stopped before the question was sent."
_STOPPED_EMPTY = "stopped before any answer arrived."
_STOPPED_KEPT = "stopped; the partial answer is kept above."
_NO_BACKGROUND = (
    "Background answers need a notebook front end (JupyterLab, Notebook 7) to stream into; "
    "here, ask without background."
)
_NO_PICKER = (
    "The picker needs a notebook front end that draws widgets (JupyterLab, Notebook 7); here, "
    "%allm workspaces, %allm use SLUG and %allm threads do the same."
)


@dataclass(frozen=True)
class Failure:
    """The last cell that failed, as text (the exception itself would keep its frames alive)."""

    source: str
    traceback: str


class Interrupted(KeyboardInterrupt):
    """The stop button: the cell ends interrupted in one line, whatever was running."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31mKeyboardInterrupt\x1b[0m: {self.what}"]


@magics_class
class AllmMagics(Magics):
    """Ask an AnythingLLM workspace from a notebook. Settable in ``ipython_config.py``."""

    default_workspace = Unicode(
        None, allow_none=True, help="Workspace slug to ask when a cell names none."
    ).tag(config=True)
    base_url = Unicode(None, allow_none=True, help="Server URL (instance root).").tag(config=True)
    timeout = CFloat(
        None, allow_none=True, help="Seconds without data before an answer is given up."
    ).tag(config=True)
    mode = Enum(list(MODES), None, allow_none=True, help="chat, query or automatic.").tag(
        config=True
    )
    show_images = Bool(
        False,
        help="Show images in answers. Off: they are links, since an image loads as soon as it "
        "renders and a prompt-injected one can carry data to any server.",
    ).tag(config=True)
    attachment_rows = Int(
        AttachmentLimits.max_rows,
        min=1,
        help="DataFrame rows sent with attach= (the rest are cut, and the output says so).",
    ).tag(config=True)
    attachment_table_format = Enum(
        ["csv", "markdown"],
        AttachmentLimits.table_format,
        help="How attach= sends a DataFrame: csv (fewer tokens) or markdown (a table).",
    ).tag(config=True)
    attachment_max_document_bytes = Int(
        AttachmentLimits.max_document_bytes,
        min=1,
        help="Largest text, table or file attach= sends as a document (bytes).",
    ).tag(config=True)
    attachment_max_image_bytes = Int(
        AttachmentLimits.max_image_bytes,
        min=1,
        help="Largest image attach= sends (bytes).",
    ).tag(config=True)
    attachment_max_total_bytes = Int(
        AttachmentLimits.max_total_bytes,
        min=1,
        help="Largest total of all attachments of one question (bytes).",
    ).tag(config=True)

    background_limit = Int(
        DEFAULT_BACKGROUND_LIMIT,
        min=1,
        help="Background answers (%%allm background) streaming at once; the others wait in line, "
        "shown as queued.",
    ).tag(config=True)

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
        namespace = shell.user_ns if shell is not None else {}
        self.context = Context(
            config=self.config_values,
            namespace=namespace,
            job_limit=lambda: self.background_limit,
        )
        self._thread_names: set[str] = set()
        self._last_failure: Failure | None = None
        self._explaining = False

    def config_values(self) -> Config:
        """The traitlets as they are now (``%config`` may change them between cells)."""
        return Config(
            base_url=self.base_url,
            default_workspace=self.default_workspace,
            mode=self.mode,
            timeout=self.timeout,
        )

    def attachment_limits(self) -> AttachmentLimits:
        return AttachmentLimits(
            max_rows=self.attachment_rows,
            table_format="markdown" if self.attachment_table_format == "markdown" else "csv",
            max_document_bytes=self.attachment_max_document_bytes,
            max_image_bytes=self.attachment_max_image_bytes,
            max_total_bytes=self.attachment_max_total_bytes,
        )

    def remember_failure(self, result: ExecutionResult) -> None:
        """``post_run_cell``: keep the last failing cell for ``explain``. A cell that ran
        ``explain`` keeps the failure it was about, so a failed explain can be retried; a stop
        (interrupt) is not a failure to explain."""
        explaining, self._explaining = self._explaining, False
        error = result.error_in_exec or result.error_before_exec
        if error is None or explaining or isinstance(error, KeyboardInterrupt):
            return
        from .attachments import traceback_text  # only after a failure: load speed

        self._last_failure = Failure(
            result.info.raw_cell if result.info else "", traceback_text(error)
        )

    @property
    def _rich(self) -> bool:
        """Whether the front end renders Markdown (a notebook) or only text (terminal IPython)."""
        formatter = self.shell.display_formatter if self.shell is not None else None
        return formatter is None or "text/markdown" in formatter.active_types

    # -- asking -----------------------------------------------------------------------------

    @cell_magic
    def allm(self, line: str, cell: str) -> None:
        with for_the_cell():
            self._allm_cell(line, cell)

    def _allm_cell(self, line: str, cell: str) -> None:
        options = parse_options(line)
        if options.question.strip():
            raise ConfigurationError(
                f"Unexpected '{options.question.split()[0]}' on the %%allm line: options are name=value "
                f"or short flags ({option_table.VALID}); the question goes in the cell body."
            )
        if options.over or options.resume:
            self._ask_many(options, cell)
        else:
            self._ask(options, cell)

    allm.__doc__ = option_table.docstring()

    def _ask(self, options: CellOptions, question: str) -> None:
        """Ask, and keep the reply in ``_allm`` however the cell ends: an error or a stop
        (interrupt) before the answer leaves an empty reply saying so, never the previous one."""
        from .reply import Reply  # the fold loads with the first question: load speed

        self._explaining = self._explaining or options.explain
        try:
            if options.background and not self._rich:  # it would print into the prompt
                raise ConfigurationError(_NO_BACKGROUND)
            stream, slug, shown = self._start(options, question)
            for table in shown:
                self._display(table)
            if options.background:  # a stop while handing it over ends the job (jobs.submit)
                self._background(stream, question, options)
                return
        except AllmError as exc:
            self._keep(Reply(error=exc.message, workspace=options.workspace), options)
            raise
        except KeyboardInterrupt:  # a lookup, thread=new, attachments, anything before sending
            self._keep(Reply(interrupted=True, workspace=options.workspace), options)
            raise Interrupted(_STOPPED_BEFORE) from None
        self._show(stream, slug, options)

    def _start(self, options: CellOptions, question: str) -> tuple[ChatStream, str, list[Table]]:
        """Resolve the settings and prepare the question's stream (nothing is sent yet), with
        the tables of what goes with it (attachments, the failure ``explain`` sends)."""
        settings = self.context.resolve(options)
        attachments = self._attachments(options)  # before any request: a refusal sends nothing
        if not options.raw:
            question = interpolate(question, self.context.namespace)
        shown: list[Table] = []
        if options.explain:
            question, sent = self._explain(question)
            shown.append(sent)
        client = self.context.client(settings)
        slug = self._workspace(settings, client)
        mode, mode_note = self._mode(settings, attachments, client, slug)
        thread = settings.thread.value
        if thread == "new":
            made = client.new_thread(slug, name=self._new_thread_name())
            self.context.session.choose(
                thread=made.slug, thread_workspace=slug, thread_name=made.name
            )
            thread = made.slug
        elif thread and not _SLUG.match(thread):
            thread = client.find_thread(slug, thread).slug
        stream = client.stream_chat(
            slug,
            question.strip(),
            mode=mode,
            session_id=options.session or self.context.session.session_id,
            thread=thread,
            reset=options.reset,
            attachments=attachments or None,
            timeout=settings.timeout.value,
        )
        if attachments:
            shown.insert(0, _attached(attachments, mode_note))
        return stream, slug, shown

    def _attachments(self, options: CellOptions) -> list[Attachment]:
        if not options.attach:
            return []
        from .attachments import from_names  # only for attach=: load speed

        return from_names(options.attach, self.context.namespace, self.attachment_limits())

    def _explain(self, question: str) -> tuple[str, Table]:
        """The last failure's cell and traceback, with the user's question or the default one;
        and the table that shows what of it is sent."""
        if self._last_failure is None:
            raise ConfigurationError(
                "No cell has failed in this kernel yet; run %allm explain after one fails."
            )
        failure = self._last_failure
        from .attachments import explanation  # only for explain: load speed
        from .commands import Table  # commands load on their first use: load speed

        sent = explanation(failure.source, failure.traceback, question.strip() or None)
        return sent.message, Table("Sent with the question", ("", "what"), sent.rows())

    @staticmethod
    def _mode(
        settings: ResolvedSettings, attachments: list[Attachment], client: Client, slug: str
    ) -> tuple[str | None, str | None]:
        """The mode to ask in, and why it is not the one set.

        Agent turns do not read document attachments, and the server drops them without a word:
        an automatic mode (the workspace's own too) becomes chat, and the output says so. A
        cell's own ``mode=automatic`` is kept, and the client refuses it in one sentence.
        """
        mode = settings.mode.value
        if (
            not any(a.kind == "document" for a in attachments)
            or settings.mode.source == "cell"
            or mode in ("chat", "query")
        ):
            return mode, None
        if mode is None and client.workspace(slug).chat_mode in ("chat", "query"):
            return None, None
        return "chat", "asked in chat mode: agent turns do not read attached documents"

    def _workspace(self, settings: ResolvedSettings, client: Client) -> str:
        """The slug to ask: a name (``Research``) is looked up, a slug is used as it is."""
        wanted = self.context.workspace_or_fail(settings)
        return wanted if _SLUG.match(wanted) else client.find_workspace(wanted).slug

    def _new_thread_name(self) -> str:
        """The notebook's name and the time, made distinct from the others this kernel made."""
        base = f"{notebook_name(self.context.namespace)} {datetime.now():%Y-%m-%d %H:%M:%S}"
        name, count = base, 1
        while name in self._thread_names:
            count += 1
            name = f"{base} ({count})"
        self._thread_names.add(name)
        return name

    def _show(self, stream: ChatStream, slug: str, options: CellOptions) -> None:
        """Stream the answer into the view; keep the reply, whole or partial, in ``_allm``."""
        from .reply import with_error  # the fold loads with the first question: load speed
        from .view import make_view  # display code loads with the first question: load speed

        view = None
        reply = stream.reply
        failed = False
        try:
            view = make_view(slug, rich=self._rich, show_images=self.show_images)
            view.follow(stream)
            reply = stream.reply
        except KeyboardInterrupt:
            reply = stream.stop()  # the stop may land while drawing, outside the stream's code
            raise Interrupted(_STOPPED_KEPT if reply.text else _STOPPED_EMPTY) from None
        except Exception as exc:  # a bug or an unmapped failure too: still keep what arrived
            failed = isinstance(exc, AllmError)
            reply = with_error(stream.reply, exc)
            raise
        finally:
            self._keep(reply, options)
            stream.close()
            if view is not None:
                view.close(reply, error_below=failed)

    def _ask_many(self, options: CellOptions, body: str) -> None:
        """``over=``/``resume=``: every question through the batch engine, a progress bar, then
        the table; ``_allm`` (and ``out=``) hold the ``Batch``, also after a stop. An error or a
        stop before the batch exists leaves an empty reply saying so, never the previous value."""
        from . import batch as batches  # the batch engine loads with the first over=: load speed
        from .reply import Reply  # the fold loads with the first question: load speed

        namespace = self.context.namespace
        batch: Batch | None = None
        try:
            settings = self.context.resolve(options)
            client = self.context.client(settings)
            questions = self._variable(options.over, "over") if options.over else None
            resume = self._variable(options.resume, "resume") if options.resume else None
            workspaces: list[str] = []
            if questions is not None:
                wanted = options.workspaces or (self.context.workspace_or_fail(settings),)
                workspaces = [
                    w if _SLUG.match(w) else client.find_workspace(w).slug for w in wanted
                ]
            batch = batches.prepared(
                workspaces or None,
                questions,
                mode=list(options.modes) or settings.mode.value,
                template=body.strip() or None,
                session=options.session,
                resume=resume,
                namespace={} if options.raw else namespace,
            )
            namespace["_allm"] = batch
            if options.out:
                namespace[options.out] = batch
            from .async_client import AsyncClient  # the batch engine is asynchronous: load speed

            batches.ask_many_blocking(
                lambda: AsyncClient._twin_of(client),  # shares the pooled client's backoff
                batch,
                concurrency=options.concurrency or batches.DEFAULT_CONCURRENCY,
                progress=None,
                timeout=settings.timeout.value,
            )
            if self._rich:
                from IPython.display import display  # only with a front end: load speed

                display(batch)  # type: ignore[no-untyped-call]
            else:
                print(batch.summary())
        except AllmError as exc:
            if batch is None:
                self._keep(Reply(error=exc.message, workspace=options.workspace), options)
            raise
        except KeyboardInterrupt:  # preparing (a lookup), or outside the batch's own wait
            if batch is None:
                self._keep(Reply(interrupted=True, workspace=options.workspace), options)
                raise Interrupted(_STOPPED_BEFORE) from None
            batch.stopped = True
        if batch.stopped:
            kept = "_allm" + (f" and {options.out}" if options.out else "")
            raise Interrupted(
                f"stopped; {batch.done} done, {batch.failed} failed, {batch.pending} pending, in "
                f"{kept}; run the cell again with resume={options.out or '_allm'} to ask the rest."
            )

    def _variable(self, name: str, option: str) -> Any:
        if name not in self.context.namespace:
            raise ConfigurationError(
                f"{option}={name}: there is no variable {name} in the notebook."
            )
        return self.context.namespace[name]

    def _background(self, stream: ChatStream, question: str, options: CellOptions) -> None:
        """Hand the prepared question to the kernel's job runner and return at once; ``_allm``
        holds its job."""
        from .view import make_view  # display code loads with the first question: load speed

        def view(job: AskJob) -> View:
            self._keep(job, options)  # before it can run: from here a stop ends it (submit)
            return make_view(
                job.workspace,
                rich=self._rich,
                show_images=self.show_images,
                waiting_line=job.waiting_line,
            )

        self.context.jobs.submit(stream, question, view)

    def _keep(self, reply: Reply | AskJob, options: CellOptions) -> None:
        """``_allm`` always holds the last reply (partial ones too) or background job;
        ``out=NAME`` binds it too."""
        self.context.namespace["_allm"] = reply
        if options.out:
            self.context.namespace[options.out] = reply

    # -- %allm ------------------------------------------------------------------------------

    @line_magic("allm")  # type: ignore[arg-type]  # IPython types its decorators loosely
    @no_var_expand  # "{x}" and "$price" in a question follow our rules (and ``raw``), not IPython's
    def allm_line(self, line: str) -> Any:
        """%allm COMMAND [ARGUMENT] (see %allm help), or %allm [options] QUESTION."""
        with for_the_cell():
            return self._allm_line(line)

    def _allm_line(self, line: str) -> Any:
        from .commands import COMMANDS  # commands load on their first use: load speed

        words = line.strip().split(maxsplit=1)
        name = words[0] if words else "help"
        found = COMMANDS.get(name)
        if found is not None:
            argument = words[1] if len(words) > 1 else ""
            if argument and not found.takes_argument:
                raise ConfigurationError(
                    f"%allm {name} takes nothing after it; to ask a question that starts with "
                    f"'{name}', write %allm -- {name} …"
                )
            if found.expands:  # a command's argument expands {x} and $x as IPython would
                argument = self._expand(argument)
            with _interruptible(f"%allm {name} was stopped."):
                result = found.run(self.context, argument)
            return self._display(result)
        if len(words) == 1 and not (words[0].startswith("-") or split_question(line)[0]):
            # one bare word is a mistyped command far more often than a question
            import difflib  # only for this message: off the load path

            close = difflib.get_close_matches(name, list(COMMANDS), n=1)
            hint = f"did you mean %allm {close[0]}? " if close else ""
            raise ConfigurationError(
                f"'{name}' is not an %allm command; {hint}See %allm help, or ask with %%allm."
            )
        self._ask_line(line)
        return None

    def _ask_line(self, line: str) -> None:
        options = self._one_line_options(line)
        if options.over or options.resume:  # the question, if any, is the batch's template
            self._ask_many(options, options.question)
            return
        if not options.question.strip() and not options.explain:
            raise ConfigurationError(
                "Write the question after the options (%allm -w SLUG What is RAG?), or use %%allm."
            )
        self._ask(options, options.question)

    def _one_line_options(self, line: str) -> CellOptions:
        """The one-line form's options, with ``{name}`` in them expanded as on the ``%%allm``
        line, and its question exactly as typed."""
        prefix, question = split_question(line)
        expanded = [self._expand(token) for token in prefix]  # a value may hold a quote: Bob's
        options = parse_options(shlex.join(expanded)) if prefix else CellOptions()
        options.question = question
        return options

    def _expand(self, text: str) -> str:
        return self.shell.var_expand(text) if self.shell is not None else text  # type: ignore[no-untyped-call]

    def _display(self, result: Output) -> Any:
        """Show what a command returned (or ask what it made a question of): the one place
        ``%allm`` output is drawn."""
        from IPython.display import display

        from .commands import Ask, Markdown, Message, Table  # loaded by the command that ran

        if isinstance(result, Ask):  # %allm explain: a question after all
            self._explaining = True  # even if its options fail to parse
            self._ask_line(result.line)
        elif isinstance(result, Message):
            print(unlinked(terminal_text(result.text)))
        elif isinstance(result, Table | Markdown):
            markdown = result.markdown() if isinstance(result, Table) else result.markdown
            plain = result.plain() if isinstance(result, Table) else result.plain
            if self._rich:
                display({"text/markdown": markdown, "text/plain": plain}, raw=True)  # type: ignore[no-untyped-call]
            else:
                print(plain)
        elif result is not None:  # a widget: the cell's result, where a front end can draw it
            if self._rich:
                return result
            result.close()
            print(_NO_PICKER)
        return None


@contextmanager
def for_the_cell() -> Iterator[None]:
    """An error a magic raises speaks the notebook's language (``%allm login``, ``timeout=``)
    and is shown by IPython as its one sentence; the library's own errors keep their stack."""
    try:
        yield
    except AllmError as exc:
        exc.reword(in_notebook_words(exc))
        exc.one_line = True
        raise


@contextmanager
def _interruptible(what: str) -> Iterator[None]:
    """The stop button during a command ends it in one line, not an httpx traceback."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(what) from None


class OneLineQuestion(TokenTransformBase):
    """``%allm What is X?`` asks, instead of IPython reading the trailing ``?`` as a help request.

    A token transformer, like IPython's own ``%magic`` and ``obj?`` ones, so it sees only the
    lines IPython would run as a line magic: never a line inside a string or a comment, and never
    a cell magic's body (``%%allm``, ``%%writefile``: IPython hands those to their magic first).
    It runs before IPython's help transform at the same place; ``%allm?`` (help on the magic) is
    left to it.
    """

    priority = 4  # IPython's help transform is 5, its %magic transform 10

    @classmethod
    def find(cls, tokens_by_line: list[list[tokenize.TokenInfo]]) -> OneLineQuestion | None:
        for line in tokens_by_line:
            tokens = [t for t in line if t.type not in (tokenize.INDENT, tokenize.DEDENT)]
            if len(tokens) < 2:
                continue
            escape, name = tokens[:2]
            row, column = escape.start
            if (
                escape.string == "%"
                and name.string == "allm"
                and name.start == (row, column + 1)
                and _QUESTION_LINE.match(escape.line, column)
            ):
                return cls(escape.start)
        return None

    def transform(self, lines: list[str]) -> list[str]:
        start, column = self.start_line, self.start_col
        end = find_end_of_continued_line(lines, start)
        line = assemble_continued_line(lines, (start, column), end)
        question = line[len("%allm") + 1 :]
        call = f"get_ipython().run_line_magic('allm', {question!r})"
        return [*lines[:start], lines[start][:column] + call + "\n", *lines[end + 1 :]]


def _attached(attachments: list[Attachment], mode_note: str | None) -> Table:
    """What goes with the question, shown before the answer (names come from the user: the
    table escapes them)."""
    from .attachments import human_size  # loaded by the attach= that made the list
    from .commands import Table  # commands load on their first use: load speed

    title = "Attached" + (f" ({mode_note})" if mode_note else "")
    rows = [(a.name, a.kind, human_size(a.size), a.note or "") for a in attachments]
    return Table(title, ("attachment", "kind", "size", "note"), rows)


def _reply_markdown(reply: Reply) -> str:
    """``_allm`` on its own in a cell shows the reply as the magic did, escaped."""
    from .render import render_markdown  # only when a reply is shown: load speed

    return render_markdown(reply, final=True)


def _iter_magics(shell: InteractiveShell) -> Iterator[AllmMagics]:
    for configurable in shell.configurables:
        if isinstance(configurable, AllmMagics):
            yield configurable


def load(shell: InteractiveShell) -> None:
    if any(_iter_magics(shell)):
        return
    magics = AllmMagics(shell=shell)  # Magics.__init__ adds it to configurables
    shell.register_magics(magics)
    shell.events.register("post_run_cell", magics.remember_failure)
    shell.input_transformer_manager.token_transformers.append(OneLineQuestion)
    assert shell.display_formatter is not None
    markdown = shell.display_formatter.formatters["text/markdown"]
    markdown.for_type_by_name("allm_jupyter.reply", "Reply", _reply_markdown)


def unload(shell: InteractiveShell) -> None:
    for magics in list(_iter_magics(shell)):
        magics.context.close()
        if magics.remember_failure in shell.events.callbacks["post_run_cell"]:
            shell.events.unregister("post_run_cell", magics.remember_failure)
        shell.configurables.remove(magics)  # type: ignore[arg-type]
    for kind in ("line", "cell"):
        shell.magics_manager.magics[kind].pop("allm", None)
    if OneLineQuestion in shell.input_transformer_manager.token_transformers:
        shell.input_transformer_manager.token_transformers.remove(OneLineQuestion)
    assert shell.display_formatter is not None
    markdown = shell.display_formatter.formatters["text/markdown"]
    markdown.deferred_printers.pop(("allm_jupyter.reply", "Reply"), None)
    markdown.type_printers = {
        cls: fn for cls, fn in markdown.type_printers.items() if fn is not _reply_markdown
    }
