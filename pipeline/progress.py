"""Progress on the console: a line when a task starts and ends, and while it runs longer than
``[run] progress_seconds``, its latest status every that many seconds.

A short run prints two lines a task and nothing in between; an extract that pages for a minute
says every 10 s how far it is (records, pages, rate, time left), which the luigid visualiser
shows too (``PartitionTask.report``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pipeline.logs import to_console

log = logging.getLogger("pipeline.progress")


def extract_status(done: int, total: int, page: int, pages: int, seconds: float) -> str:
    """``4000/10000 records, page 4/10, 800 records/s, about 8 s left``."""
    text = f"{done}/{total} records, page {page}/{pages}"
    if seconds <= 0 or done <= 0:
        return text
    rate = done / seconds
    left = (total - done) / rate
    return f"{text}, {rate:.0f} records/s, about {left:.0f} s left"


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
    ``interval`` seconds; a block done sooner logs nothing. ``update`` sets the status."""

    def __init__(self, name: str, interval: float, clock: Callable[[], float] = time.monotonic):
        self.name, self.interval, self.clock = name, interval, clock
        self.status = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name=f"progress-{name}", daemon=True)

    def update(self, status: str) -> None:
        self.status = status

    def _tick(self) -> None:
        t0 = self.clock()
        while not self._stop.wait(self.interval):
            status = self.status or "working"
            to_console(log, logging.INFO, f"{self.name}: {status} ({self.clock() - t0:.0f} s)")

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
