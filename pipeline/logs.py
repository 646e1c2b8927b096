"""Log lines say which task wrote them, so one run's interleaved output can be followed.

``config/logging.conf`` names ``TaskFormatter``; tasks set ``current_task`` while they run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

current_task: ContextVar[str] = ContextVar("current_task", default="-")


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
