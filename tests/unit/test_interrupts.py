"""SIGINT and SIGTERM stop a run at once, or just after publishing; a swallowed one is kept.

Signals are sent to this process (pytest runs tests in the main thread, where Python runs the
handlers); tests/e2e/test_interrupts.py sends them to real runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline import cli, interrupts
from pipeline.config import CHECKOUT
from pipeline.failures import RERUN_ENV


def send(signum: int) -> None:
    os.kill(os.getpid(), signum)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_naming_the_task_that_ran(signum: int, code: int) -> None:
    with interrupts.handling():
        interrupts.running = "ExtractCarts"
        with pytest.raises(interrupts.Interrupted) as caught:
            send(signum)
    stop = caught.value
    assert isinstance(stop, KeyboardInterrupt)  # luigi's worker lets it through
    assert (stop.exit_code, str(stop)) == (code, f"{stop.name} during ExtractCarts")


def test_between_tasks_it_names_the_last_one_finished() -> None:
    with interrupts.handling():
        assert str(interrupts.Interrupted(signal.SIGINT, None)) == "SIGINT before any task ran"
        interrupts.finished = "CleanUsers"
        assert str(interrupts.Interrupted(signal.SIGINT, None)) == "SIGINT after CleanUsers"
        if (pid := os.fork()) == 0:  # as luigi starts a worker process (--workers N)
            os._exit(0)
        os.waitpid(pid, 0)
        assert str(interrupts.Interrupted(signal.SIGINT, None)) == (
            "SIGINT while worker processes ran its tasks"
        )


def test_a_signal_that_luigi_swallowed_still_stops_the_run() -> None:
    with interrupts.handling():
        assert interrupts.received() is None
        interrupts.check()  # no signal: nothing
        with contextlib.suppress(KeyboardInterrupt):  # as luigi's Task.trigger_event does
            send(signal.SIGTERM)
        with pytest.raises(interrupts.Interrupted) as caught:
            interrupts.check()
    assert caught.value.signum == signal.SIGTERM


def test_a_signal_while_publishing_waits_for_the_end_of_it() -> None:
    done = []
    with interrupts.handling(), pytest.raises(interrupts.Interrupted) as caught:
        with interrupts.deferred():
            send(signal.SIGINT)
            done.append("manifest")
            send(signal.SIGTERM)  # a second signal changes nothing
            done.append("latest")
        done.append("retention")
    assert done == ["manifest", "latest"]
    assert caught.value.signum == signal.SIGINT  # the first signal's exit code


def test_handlers_are_the_runs_only_and_an_ignored_signal_stays_ignored() -> None:
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with interrupts.handling():
            assert signal.getsignal(signal.SIGINT) is interrupts.handle
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            send(signal.SIGTERM)  # ignored: the run goes on
            assert interrupts.received() is None
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert signal.getsignal(signal.SIGINT) is before


def test_the_log_of_a_stopped_run_ends_saying_where_and_with_its_exit_code(
    tmp_path: Path,
) -> None:
    def swallowing(args: Sequence[str]) -> int:
        interrupts.running = "HourReport"
        with contextlib.suppress(KeyboardInterrupt):
            send(signal.SIGINT)
        interrupts.running = None
        return 0  # luigi went on and ended well

    log = tmp_path / "run.log"
    with interrupts.handling(), pytest.raises(interrupts.Interrupted):
        cli.run_logged(["Insights"], log, "local", swallowing)
    assert log.read_text().splitlines()[-2:] == [
        "# interrupted by SIGINT during HourReport",
        "# exit code: 130",
    ]


def test_the_resume_command_names_the_hour_and_keeps_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(CHECKOUT)  # the script as typed from here
    monkeypatch.delenv("PIPELINE_API_URL", raising=False)
    monkeypatch.delenv(RERUN_ENV, raising=False)
    monkeypatch.setenv("PIPELINE_DATA_DIR", "/srv/data dir")
    extra = ["--date-hour", "2026-11-25T16", "--workers", "2", "--date-hour=2026-11-25T17"]
    assert cli.resume_command(extra, "2026-11-25T17", "http://127.0.0.1:8082") == (
        "PIPELINE_DATA_DIR='/srv/data dir' ./run_pipeline.sh --workers 2 --scheduler-url "
        "http://127.0.0.1:8082 --date-hour 2026-11-25T17"
    )
    monkeypatch.delenv("PIPELINE_DATA_DIR")
    assert cli.resume_command([], "2026-11-25T17") == "./run_pipeline.sh --date-hour 2026-11-25T17"
    monkeypatch.chdir(CHECKOUT.parent)
    assert cli.resume_command([], "2026-11-25T17") == (
        f"./{CHECKOUT.name}/run_pipeline.sh --date-hour 2026-11-25T17"
    )
    monkeypatch.setenv(RERUN_ENV, "./run_pipeline.sh demo out")  # the demo's own
    assert cli.resume_command([], "2026-11-25T17") == "./run_pipeline.sh demo out"


def test_the_last_line_says_whether_the_hour_was_published(tmp_path: Path) -> None:
    stop = interrupts.Interrupted(signal.SIGTERM, "Insights")
    hour = "2026-11-25T17"
    assert cli.stopped(stop, hour, tmp_path, "RESUME") == (
        f"interrupted (exit 143): SIGTERM stopped the run of {hour} during Insights; nothing "
        "was published. To resume (finished tasks are kept): RESUME"
    )
    (tmp_path / hour).mkdir()
    (tmp_path / hour / "manifest.json").write_text("{}")
    assert "nothing was published" in cli.stopped(stop, hour, tmp_path, "RESUME")  # no latest
    (tmp_path / "latest").symlink_to(hour)
    assert cli.stopped(stop, hour, tmp_path, "RESUME") == (
        f"interrupted (exit 143): SIGTERM stopped the run of {hour} during Insights, once {hour} "
        f"was published (latest -> {hour})"
    )


def test_python_m_pipeline_stopped_outside_a_run_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def main(argv: Sequence[str] | None = None) -> int:
        send(signal.SIGTERM)
        return 0

    monkeypatch.setattr(cli, "main", main)
    assert cli.stoppable_main(["prune"]) == 143
    assert capsys.readouterr().err == (
        "pipeline: interrupted (exit 143) by SIGTERM; run it again to finish\n"
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # given back
