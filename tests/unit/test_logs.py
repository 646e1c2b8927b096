"""Log lines carry the running task; the console gets its own short view of the run."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from luigi.cmdline_parser import CmdlineParser

from pipeline import logs
from pipeline.logs import (
    RUN_LOG_ENV,
    ConsoleFormatter,
    ConsoleHandler,
    RunLogHandler,
    TaskFormatter,
    shown_on_console,
    start_run_log,
    task_context,
    use_console,
)
from pipeline.runlog import run_log


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


@pytest.fixture
def plain_luigi(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As in ``luigi --module pipeline``: luigi's command line parsed, no run log of the CLI's."""
    monkeypatch.delenv(RUN_LOG_ENV, raising=False)
    with CmdlineParser.global_instance(["--module", "pipeline", "Insights"]):
        yield
    monkeypatch.setattr(logs, "_console", None)
    monkeypatch.setattr(logs, "_plain", None)


def test_plain_luigi_holds_its_run_log_until_the_run_claims_its_hour(
    plain_luigi: None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    handler = RunLogHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.handle(record("luigi-interface", logging.INFO, "Informed scheduler"))
    ConsoleHandler().handle(record("pipeline", logging.ERROR, "shown", console=True))
    assert capfd.readouterr().err.endswith(" ERROR shown\n")  # the console: stderr, at once
    start_run_log(run_log(tmp_path))
    handler.handle(record("pipeline", logging.WARNING, "retrying"))
    (log,) = (tmp_path / "logs").glob("run-*.log")
    assert log.read_text().splitlines()[2:] == ["INFO Informed scheduler", "WARNING retrying"]
    assert capfd.readouterr().err == f"pipeline: log file: {log}\n"
    assert os.environ[RUN_LOG_ENV] == str(log)
    os.environ.pop(RUN_LOG_ENV)
    handler.close()
    assert capfd.readouterr().err == ""


def test_plain_luigi_that_claims_nothing_writes_no_file_and_gives_stderr_what_it_held(
    plain_luigi: None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    handler = RunLogHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.handle(record("luigi-interface", logging.INFO, "12 complete ones were encountered"))
    handler.handle(record("pipeline", logging.ERROR, "[api] page_size: bad", console=True))
    handler.close()  # at exit
    assert capfd.readouterr().err == "INFO 12 complete ones were encountered\n"  # not shown yet
    assert not (tmp_path / "logs").exists()


def test_outside_luigis_command_line_the_run_log_is_stderr(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(RUN_LOG_ENV, raising=False)
    handler = RunLogHandler()  # luigid, luigi.build: no command line of luigi's
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(record("luigi", logging.INFO, "as before"))
    assert capfd.readouterr().err == "as before\n"
