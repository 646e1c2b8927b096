"""Batches produced on a thread ahead of their use, for the readers that stream a file."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Generator, Iterator
from queue import Empty, Full, Queue
from typing import Any, TypeVar

T = TypeVar("T")


def prefetch(batches: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """``batches`` produced on a thread, up to ``depth`` ahead: parsing overlaps their use
    (pyarrow releases the GIL while it parses)."""
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        queue.put(("batch", batch), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(("error", exc))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)
        thread.join()
