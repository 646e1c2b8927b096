"""Two views of one run: the run log has every record; the console has what an operator reads.

``config/logging.conf`` names both handlers. The run log (``stderr``, which ``python -m
pipeline`` copies into ``logs/run-*.log`` and nowhere else) gets every record in full, luigi's
tracebacks included, each line tagged with the task that wrote it (``TaskFormatter``; tasks set
``current_task`` while they run). The console (``ConsoleHandler``) gets a line when a task starts
and ends, progress, warnings, and for each failure one line of cause and one of what to do; it
writes only while ``python -m pipeline`` has given it the terminal (``use_console``). Plain
``luigi --module pipeline`` has no run log, so there everything stays on stderr as luigi prints
it, the cause and what to do included.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO

current_task: ContextVar[str] = ContextVar("current_task", default="-")

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
