"""Progress on the console: a line when a task starts and ends, and while it runs longer than
``[run] progress_seconds``, its latest status every that many seconds.

A short run prints two lines a task and nothing in between; an extract that pages for a minute
says every 10 s how far it is (records, pages, rate, time left), which the luigid visualiser
shows too (``PartitionTask.report``). Its rate is of the records received over the whole time
so far, reckoned when the line is shown; while the client waits (the rate limit, a server's
Retry-After, a backoff) the line says so and for how long, rather than a rate.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from pipeline.logs import to_console

log = logging.getLogger("pipeline.progress")


class Waiting(Protocol):
    """A wait under way (``pipeline.api.client.Wait``): until when, on the same clock, and why."""

    @property
    def until(self) -> float: ...

    @property
    def reason(self) -> str: ...


def extract_status(
    done: int,
    total: int,
    page: int,
    pages: int,
    seconds: float,
    waiting: tuple[float, str] = (0.0, ""),
) -> str:
    """``4000/10000 records, page 4/10, 800 records/s, about 8 s left`` (``seconds`` since the
    extract started), or while the client waits, ``waiting`` being (seconds left, why):
    ``4/208 records, page 2/104, waiting 9 s for the API's rate limit``."""
    text = f"{done}/{total} records, page {page}/{pages}" if pages else "no page yet"
    left, why = waiting
    if left > 0:
        return f"{text}, waiting {math.ceil(left)} s {why}"
    if seconds <= 0 or done <= 0:
        return text
    rate = done / seconds
    left = (total - done) / rate
    shown = f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"  # a slow API is not "0 records/s"
    return f"{text}, {shown} records/s, about {left:.0f} s left"


class ExtractProgress:
    """How far an extract is: ``update`` after each page, ``status`` when a line is shown (its
    rate reckoned then, so time spent waiting since the last page counts)."""

    def __init__(
        self, waiting: Callable[[], Waiting | None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.waiting, self.clock = waiting, clock
        self.started = clock()
        self.done = self.total = self.page = self.pages = 0

    def update(self, done: int, total: int, page: int, pages: int) -> None:
        self.done, self.total, self.page, self.pages = done, total, page, pages

    def status(self) -> str:
        now, wait = self.clock(), self.waiting()
        waiting = (0.0, "") if wait is None else (wait.until - now, wait.reason)
        return extract_status(
            self.done, self.total, self.page, self.pages, now - self.started, waiting
        )


def summary(facts: dict[str, Any]) -> str:
    """What a finished task produced, in a few words: records read, or rows written."""
    if "records" in facts:
        pages = facts.get("pages", 0)
        return f"{facts['records']} records, {pages} page{'s' if pages != 1 else ''}"
    rows = facts.get("rows", {})
    return ", ".join(f"{name} {n} rows" for name, n in rows.items())


def started(name: str) -> None:
    to_console(log, logging.INFO, f"{name} started")


def finished(name: str, seconds: float, facts: dict[str, Any] | None = None) -> None:
    what = summary(facts or {})
    to_console(log, logging.INFO, f"{name} done in {seconds:.1f} s" + (f": {what}" if what else ""))


class Ticker:
    """While its block runs, logs ``<name>: <status> (<n> s)`` for the console every
    ``interval`` seconds; a block done sooner logs nothing. ``update`` sets the status: a text,
    or a function that gives it when a line is due."""

    def __init__(self, name: str, interval: float, clock: Callable[[], float] = time.monotonic):
        self.name, self.interval, self.clock = name, interval, clock
        self.status: str | Callable[[], str] = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name=f"progress-{name}", daemon=True)

    def update(self, status: str | Callable[[], str]) -> None:
        self.status = status

    def _tick(self) -> None:
        t0 = self.clock()
        while not self._stop.wait(self.interval):
            status = (self.status() if callable(self.status) else self.status) or "working"
            to_console(log, logging.INFO, f"{self.name}: {status} ({self.clock() - t0:.0f} s)")

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
