"""Log lines carry the running task; the console gets its own short view of the run."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from pipeline.logs import (
    ConsoleFormatter,
    ConsoleHandler,
    TaskFormatter,
    shown_on_console,
    task_context,
    use_console,
)


def line(message: str) -> str:
    record = logging.LogRecord("pipeline.extract", logging.WARNING, __file__, 1, message, (), None)
    return TaskFormatter("%(levelname)s [%(task)s] %(name)s: %(message)s").format(record)


def test_records_made_inside_a_task_name_it() -> None:
    assert line("between tasks") == "WARNING [-] pipeline.extract: between tasks"
    with task_context("Extract-carts"):
        assert line("retrying") == "WARNING [Extract-carts] pipeline.extract: retrying"
    assert line("after") == "WARNING [-] pipeline.extract: after"


def record(name: str, level: int, message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, message, (), None)
    made.__dict__.update(extra)
    return made


def test_the_console_shows_warnings_errors_and_its_own_lines_not_luigis_tracebacks() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        traceback = sys.exc_info()
    failed = record("luigi-interface", logging.ERROR, "[pid 1] Worker failed ExtractCarts")
    failed.exc_info = traceback
    assert not shown_on_console(failed)  # the task's own one-line cause is shown instead
    assert shown_on_console(record("pipeline.api.client", logging.WARNING, "retrying in 1s"))
    assert shown_on_console(record("luigi-interface", logging.WARNING, "Failed pinging"))
    assert not shown_on_console(record("luigi-interface", logging.INFO, "Informed scheduler"))
    assert shown_on_console(record("pipeline.progress", logging.INFO, "started", console=True))
    assert not shown_on_console(record("pipeline.x", logging.ERROR, "run log only", console=False))


def test_console_lines_are_short_and_a_message_for_it_is_kept_whole() -> None:
    formatter = ConsoleFormatter()
    long = record("pipeline.api.client", logging.WARNING, "x" * 400 + "\nsecond line")
    line = formatter.format(long)
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING x{300}…", line)
    mine = record("pipeline", logging.ERROR, "run log", console_text="cause\nwhat to do: fix")
    assert formatter.format(mine).splitlines()[1:] == ["         what to do: fix"]
    assert formatter.format(mine).endswith(" ERROR cause\n         what to do: fix")
    info = record("pipeline.progress", logging.INFO, "CleanUsers started", console=True)
    assert re.fullmatch(r"\d\d:\d\d:\d\d CleanUsers started", formatter.format(info))


def test_the_console_handler_writes_only_where_it_was_given_a_terminal(tmp_path: Path) -> None:
    handler = ConsoleHandler()
    handler.handle(record("pipeline", logging.ERROR, "nowhere to go"))  # no terminal: nothing
    with open(tmp_path / "console", "w") as fh:
        with use_console(fh.fileno()):
            handler.handle(record("pipeline", logging.ERROR, "shown"))
            handler.handle(record("pipeline", logging.INFO, "hidden"))
        handler.handle(record("pipeline", logging.ERROR, "after"))
    assert re.fullmatch(r"\d\d:\d\d:\d\d ERROR shown\n", (tmp_path / "console").read_text())
