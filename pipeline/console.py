"""The console of ``python -m pipeline``: its own lines, and a copy of what a run prints.

``say`` is the command line's voice (``pipeline: ...`` on stderr). ``tee_output`` sends what a
run writes on file descriptors 1 and 2 into its run log, and stdout onto the terminal too, in
whole lines; what the console shows of the log records comes through ``logs.ConsoleHandler``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import BinaryIO

from pipeline import logs


class CliError(Exception):
    """An expected failure of the command line itself: one message, exit code 2."""


def say(message: str) -> None:
    print(f"pipeline: {message}", file=sys.stderr, flush=True)


#: Longest part of a line held back waiting for its end (a line longer goes out in pieces).
LONGEST_LINE = 1 << 16


def _pump(read_end: int, log: BinaryIO, lock: threading.Lock, console: int | None) -> None:
    """Copy a pipe into ``log`` and, if given, onto the ``console`` file descriptor, in whole
    lines: a line's end may arrive in a later read than its start (``print(text)`` writes
    ``text``, then the newline), and another writer (the other pipe, ``logs.ConsoleHandler``)
    must not get in between. A last line without its end goes out when the pipe closes."""
    pending = b""
    while chunk := os.read(read_end, 65536):
        pending += chunk
        cut = pending.rfind(b"\n") + 1
        if not cut and len(pending) < LONGEST_LINE:
            continue
        whole, pending = (pending[:cut], pending[cut:]) if cut else (pending, b"")
        console = _copy(whole, log, lock, console)
    if pending:
        _copy(pending, log, lock, console)


def _copy(lines: bytes, log: BinaryIO, lock: threading.Lock, console: int | None) -> int | None:
    """Write ``lines`` to the log and the console; the console, or None once it went away."""
    with lock:
        log.write(lines)
        log.flush()
    if console is not None:
        try:
            with logs.CONSOLE_LOCK:
                view = memoryview(lines)
                while view:
                    view = view[os.write(console, view) :]
        except OSError:  # the console went away (a closed pipe): keep logging
            return None
    return console


@contextlib.contextmanager
def tee_output(log: BinaryIO) -> Iterator[int]:
    """Send stdout into ``log`` and onto the console, stderr into ``log`` only; yield a file
    descriptor of the console's stderr (for ``logs.use_console``).

    stderr carries every log record in full, luigi's tracebacks included: the run log's. What
    the console shows of them comes through ``logs.ConsoleHandler``. Done on file descriptors
    1 and 2, not ``sys.stdout``, so luigi's forked workers (``--workers N``) and anything else
    writing there are caught too (``sys.stdout`` is line-buffered meanwhile, as on a terminal).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    line_buffering = getattr(sys.stdout, "line_buffering", None)
    if line_buffering is False:
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # a TextIOWrapper
    console, saved_err = os.dup(1), os.dup(2)
    lock = threading.Lock()
    pumps = []
    for fd, to_console in ((1, console), (2, None)):
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        thread = threading.Thread(
            target=_pump, args=(read_end, log, lock, to_console), name=f"tee-{fd}", daemon=True
        )
        thread.start()
        pumps.append((thread, read_end))
    try:
        yield saved_err
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(console, 1)  # closes the pipes' last write ends: the pumps see the end
        os.dup2(saved_err, 2)
        for thread, read_end in pumps:
            thread.join(timeout=10)  # a process the run left behind may still hold a pipe
            if not thread.is_alive():
                os.close(read_end)
        for fd in (console, saved_err):
            os.close(fd)
        if line_buffering is False:
            sys.stdout.reconfigure(line_buffering=False)  # type: ignore[union-attr]  # as above
