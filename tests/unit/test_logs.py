"""Log lines carry the running task."""

from __future__ import annotations

import logging

from pipeline.logs import TaskFormatter, task_context


def line(message: str) -> str:
    record = logging.LogRecord("pipeline.extract", logging.WARNING, __file__, 1, message, (), None)
    return TaskFormatter("%(levelname)s [%(task)s] %(name)s: %(message)s").format(record)


def test_records_made_inside_a_task_name_it() -> None:
    assert line("between tasks") == "WARNING [-] pipeline.extract: between tasks"
    with task_context("Extract-carts"):
        assert line("retrying") == "WARNING [Extract-carts] pipeline.extract: retrying"
    assert line("after") == "WARNING [-] pipeline.extract: after"
