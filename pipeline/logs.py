"""Two views of one run: the run log has every record; the console has what an operator reads.

``config/logging.conf`` names both handlers. The run log (``stderr``, which ``python -m
pipeline`` copies into ``logs/run-*.log`` and nowhere else) gets every record in full, luigi's
tracebacks included, each line tagged with the task that wrote it (``TaskFormatter``; tasks set
``current_task`` while they run). The console (``ConsoleHandler``) gets a line when a task starts
and ends, progress, warnings, and for each failure one line of cause and one of what to do; it
writes only where it was given the terminal (``use_console``).

Plain ``luigi --module pipeline`` gets the same two views (``RunLogHandler``): the console
handler gets stderr, and once the run claims its hour the run log goes to its own file, named
as ``python -m pipeline`` names it; the console's first line says where. Elsewhere (luigid,
``luigi.build``) the run log stays on stderr.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TextIO

current_task: ContextVar[str] = ContextVar("current_task", default="-")

#: Set to the run log's path while a run writes one (its tasks' failure e-mails name it; forked
#: workers inherit it). ``python -m pipeline`` sets it before luigi starts.
RUN_LOG_ENV = "PIPELINE_RUN_LOG"

#: Longest console line kept from a record that was not written for the console (the rest is in
#: the run log); requests' own messages run to 500 characters.
CONSOLE_WIDTH = 300

_console: TextIO | None = None

#: Held while a whole line (or a record's lines) goes onto the console, by ``ConsoleHandler``
#: and by ``python -m pipeline``'s copy of stdout: with stdout and stderr in one file, no line
#: is cut by another.
CONSOLE_LOCK = threading.Lock()


def _fresh_lock_after_fork() -> None:
    """A forked worker starts with the lock free (a thread of its parent may have held it)."""
    global CONSOLE_LOCK
    CONSOLE_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock_after_fork)


@contextmanager
def task_context(name: str) -> Iterator[None]:
    """Tag every log record made inside the block with ``name``."""
    token = current_task.set(name)
    try:
        yield
    finally:
        current_task.reset(token)


class TaskFormatter(logging.Formatter):
    """A formatter that offers ``%(task)s``: the running task, or ``-`` between tasks."""

    def format(self, record: logging.LogRecord) -> str:
        record.task = current_task.get()
        return super().format(record)


def to_console(logger: logging.Logger, level: int, text: str, console: str = "") -> None:
    """Log ``text`` (run log) and show ``console`` (or ``text``) on the console, whole."""
    logger.log(level, "%s", text, extra={"console": True, "console_text": console or text})


@contextmanager
def use_console(fd: int) -> Iterator[None]:
    """Let ``ConsoleHandler`` write to file descriptor ``fd`` (the terminal) inside the block."""
    global _console
    stream = os.fdopen(os.dup(fd), "w", buffering=1, errors="replace")
    _console = stream
    try:
        yield
    finally:
        _console = None
        stream.close()


def console_active() -> bool:
    """Is a console handler showing records now (a run under way, or plain luigi)?"""
    return _console is not None


def shown_on_console(record: logging.LogRecord) -> bool:
    """What an operator needs live: records meant for the console, and warnings and errors,
    except luigi's tracebacks (each failure has its own one-line cause)."""
    chosen = getattr(record, "console", None)
    if chosen is not None:
        return bool(chosen)
    if record.levelno < logging.WARNING:
        return False
    return not (record.exc_info and record.name.startswith("luigi"))


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS [LEVEL ]message``: a record not written for the console keeps only its first
    line, cut at ``CONSOLE_WIDTH``; continuation lines are indented under the message."""

    def format(self, record: logging.LogRecord) -> str:
        text = getattr(record, "console_text", None)
        if text is None:
            first = record.getMessage().strip().splitlines()[:1] or [""]
            text = first[0] if len(first[0]) <= CONSOLE_WIDTH else first[0][:CONSOLE_WIDTH] + "…"
        level = f"{record.levelname} " if record.levelno >= logging.WARNING else ""
        prefix = f"{self.formatTime(record, self.datefmt or '%H:%M:%S')} "
        lines = text.splitlines() or [""]
        return "\n".join([prefix + level + lines[0], *(" " * len(prefix) + x for x in lines[1:])])


class ConsoleHandler(logging.Handler):
    """Writes what ``shown_on_console`` lets through to the terminal ``use_console`` gave it;
    does nothing without one (plain luigi, tests)."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.addFilter(shown_on_console)
        self.setFormatter(ConsoleFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        stream = _console
        if stream is None:
            return
        try:
            text = self.format(record) + "\n"
            with CONSOLE_LOCK:
                stream.write(text)
                stream.flush()
        except Exception:  # a closed terminal must not fail the run
            self.handleError(record)


def _plain_luigi_run() -> bool:
    """Is this process running luigi's command line itself (not ``python -m pipeline``, which
    copies stderr into its log; not luigid or ``luigi.build``)?"""
    from luigi.cmdline_parser import CmdlineParser

    return not os.environ.get(RUN_LOG_ENV) and CmdlineParser._instance is not None


class RunLogHandler(logging.StreamHandler[TextIO]):
    """The run log: every record in full, on stderr; for plain luigi, in its own file.

    There the records are held until the run claims its hour (``start_run_log``: the data
    root is then known to be usable and the run writes), so that a run refused for its
    settings, or finding its hour complete, writes nothing; and the console handler gets
    stderr. Held records that the console did not show go to stderr if no file was opened.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.held: list[tuple[str, bool]] | None = None  # (text, shown on the console)
        self.path: Path | None = None  # the file it writes to, once the run claimed its hour
        if _plain_luigi_run():
            global _console, _plain
            self.held, _plain = [], self
            _console = os.fdopen(os.dup(2), "w", buffering=1, errors="replace")

    def emit(self, record: logging.LogRecord) -> None:
        if self.held is None:
            super().emit(record)
            return
        try:
            self.held.append((self.format(record), shown_on_console(record)))
        except Exception:
            self.handleError(record)

    def write_to(self, path: Path) -> bool:
        """Write the held records and all later ones to a new file at ``path``."""
        try:
            path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        except OSError:  # they go to stderr at the end; the run says what is wrong
            return False
        # Kept open for the rest of the run (and its forked workers), as luigi keeps handlers.
        stream = open(fd, "w", buffering=1, errors="backslashreplace")  # noqa: SIM115
        stream.write(f"# {shlex.join(['luigi', *sys.argv[1:]])}\n# cwd: {os.getcwd()}\n")
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            for text, _ in self.held or []:
                stream.write(text + self.terminator)
            self.held = None
            self.setStream(stream)
        self.path = path
        return True

    def close(self) -> None:
        if self.held:  # no file was opened: what the console did not show goes to stderr
            sys.stderr.write("".join(t + self.terminator for t, shown in self.held if not shown))
            sys.stderr.flush()
        self.held = None
        super().close()


_plain: RunLogHandler | None = None


def plain_run_log() -> Path | None:
    """The file plain luigi's run log went to (``start_run_log``), or None: not a plain run, or
    one that has claimed no hour (yet)."""
    return None if _plain is None else _plain.path


def start_run_log(path: Path) -> None:
    """The run claimed its hour: plain luigi's run log goes to ``path`` from now on (named as
    ``python -m pipeline`` names it: ``runlog.run_log``), the console says where."""
    handler = _plain
    if handler is None or handler.held is None:
        return
    if handler.write_to(path):
        os.environ[RUN_LOG_ENV] = str(path)  # the tasks' failure e-mails name it
        if (console := _console) is not None:
            with CONSOLE_LOCK:
                console.write(f"pipeline: log file: {path}\n")
