"""Ctrl-C (SIGINT) and ``systemctl stop`` (SIGTERM): the run stops where it is and says so.

While ``python -m pipeline`` runs, both signals raise ``Interrupted`` in the main thread, where
luigi runs the tasks (``[core] workers = 1``; forked workers inherit the handler). It is a
``KeyboardInterrupt``, which luigi's worker lets through, so every atomic write under way drops
its temporary file, nothing later runs, and the CLI prints one line and exits 128 + the signal's
number (130, 143). luigi swallows a ``KeyboardInterrupt`` raised inside an event handler
(``Task.trigger_event``), so the signal is also remembered: a task checks it before it starts
and before it marks itself complete (``check``), and the CLI after the run. Publishing (the
manifest, the reports brought up to date, ``latest``) is one step as far as signals go
(``deferred``): a signal that comes meanwhile is acted on just after, so a stopped run has
published its hour whole or not at all.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: int | None = None  # the first signal of the run
_where: str | None = None  # the task running when it came
_deferring = 0
_pending = False

#: The task running in this process, and the last one finished (luigi's events set them).
running: str | None = None
finished: str | None = None
#: Whether this process forked (luigi's --workers N): its tasks' events happen elsewhere then.
forked = False


def _note_fork() -> None:
    global forked
    forked = True


os.register_at_fork(after_in_parent=_note_fork)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by ``signum`` (while ``where`` ran: a task, or None between tasks)."""

    def __init__(self, signum: int, where: str | None) -> None:
        self.signum, self.where, self.after, self.forked = signum, where, finished, forked
        super().__init__(f"{self.name} {self.during}")

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def during(self) -> str:
        if self.where:
            return f"during {self.where}"
        if self.forked:
            return "while worker processes ran its tasks"
        return f"after {self.after}" if self.after else "before any task ran"


def handle(signum: int, frame: FrameType | None) -> None:
    """The signal handler: remember the first signal, and stop the run unless ``deferred``."""
    global _received, _where, _pending
    if _received is None:
        _received, _where = signum, running
    if _deferring:
        _pending = True
        return
    raise Interrupted(_received, _where)


def received() -> Interrupted | None:
    """The interruption of this run, if a signal came (even one luigi swallowed)."""
    return None if _received is None else Interrupted(_received, _where)


def check() -> None:
    """Raise ``Interrupted`` if a signal came: a swallowed one must not let the run go on."""
    if (stopped := received()) is not None:
        raise stopped


@contextmanager
def handling() -> Iterator[None]:
    """Stop the run on SIGINT and SIGTERM inside the block (main thread only); a fresh start.
    A signal ignored by whoever started the process (``nohup``, ``cmd &`` in a script) stays
    ignored, as Python leaves it."""
    _forget()
    previous = {
        sig: signal.signal(sig, handle)
        for sig in SIGNALS
        if signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _forget()  # outside the block, ``check`` has nothing to raise


def _forget() -> None:
    global _received, _where, _deferring, _pending, running, finished, forked
    _received = _where = running = finished = None
    forked = False
    _deferring, _pending = 0, False


@contextmanager
def deferred() -> Iterator[None]:
    """A signal inside the block stops the run only once the block is done."""
    global _deferring, _pending
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending:
            _pending = False
            check()
