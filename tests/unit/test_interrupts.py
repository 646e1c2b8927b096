"""SIGINT and SIGTERM stop a run at once, or just after publishing; a swallowed one is kept.

Signals are sent to this process (pytest runs tests in the main thread, where Python runs the
handlers); tests/e2e/test_interrupts.py sends them to real runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from pipeline import cli, interrupts, runlog, runner, suggested
from pipeline.config import CHECKOUT
from pipeline.failures import RERUN_ENV
from pipeline.ops import rerun_command
from pipeline.storage.layout import Partition
from pipeline.storage.locks import PartitionBusy
from tests.support.locks import hold, locked


@pytest.fixture(autouse=True)
def signals_as_at_a_terminal() -> Iterator[None]:
    """SIGINT and SIGTERM as a terminal gives them, whatever this process inherited: a shell
    that starts the suite in the background (or a CI runner) may pass SIGINT ignored, and a run
    rightly keeps an ignored signal ignored."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


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
        runlog.run_logged(["Insights"], log, "local", swallowing)
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
    assert suggested.resume_command(extra, "2026-11-25T17", "http://127.0.0.1:8082") == (
        "PIPELINE_DATA_DIR='/srv/data dir' ./run_pipeline.sh --workers 2 --scheduler-url "
        "http://127.0.0.1:8082 --date-hour 2026-11-25T17"
    )
    monkeypatch.delenv("PIPELINE_DATA_DIR")
    assert (
        suggested.resume_command([], "2026-11-25T17")
        == "./run_pipeline.sh --date-hour 2026-11-25T17"
    )
    monkeypatch.chdir(CHECKOUT.parent)
    assert suggested.resume_command([], "2026-11-25T17") == (
        f"./{CHECKOUT.name}/run_pipeline.sh --date-hour 2026-11-25T17"
    )
    monkeypatch.setenv(RERUN_ENV, "./run_pipeline.sh demo out")  # the demo's own
    assert suggested.resume_command([], "2026-11-25T17") == "./run_pipeline.sh demo out"


def test_the_last_line_says_whether_the_hour_was_published(tmp_path: Path) -> None:
    stop = interrupts.Interrupted(signal.SIGTERM, "Insights")
    hour = "2026-11-25T17"
    assert runner.stopped(stop, hour, tmp_path, "RESUME") == (
        f"interrupted (exit 143): SIGTERM stopped the run of {hour} during Insights; nothing "
        "was published. To resume (finished tasks are kept): RESUME"
    )
    (tmp_path / hour).mkdir()
    (tmp_path / hour / "manifest.json").write_text("{}")
    assert "nothing was published" in runner.stopped(stop, hour, tmp_path, "RESUME")  # no latest
    (tmp_path / "latest").symlink_to(hour)
    assert runner.stopped(stop, hour, tmp_path, "RESUME") == (
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


# -- rerun: the rebuild may be stopped, the swap is one step ------------------------------------

HOUR = "2026-11-25T17"


@pytest.fixture
def old_hour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root holding a complete hour (old manifest, history rows, ``latest``), and a
    "luigi" that rebuilds it in the rerun's staging root."""
    monkeypatch.setattr(runner, "configured_scheduler_url", lambda: "")
    monkeypatch.chdir(CHECKOUT)
    for name in ("PIPELINE_API_URL", "LUIGI_SCHEDULER_URL", RERUN_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    rows = f"history/date_hour={HOUR}/part-0.parquet"
    for where, what in ((tmp_path, "old"), (tmp_path / ".rebuilt", "new")):
        (where / HOUR).mkdir(parents=True)
        (where / HOUR / "manifest.json").write_text(what)
        (where / rows).parent.mkdir(parents=True)
        (where / rows).write_text(f"{what} rows")
    (tmp_path / "latest").symlink_to(HOUR)

    def rebuild(args: Sequence[str]) -> int:
        os.rename(tmp_path / ".rebuilt", os.environ["PIPELINE_DATA_DIR"])
        return 0

    monkeypatch.setattr(runner, "run_luigi", rebuild)
    return tmp_path


def failed_run(root: Path) -> list[str]:
    return (root / "logs" / runlog.FAILED_RUN).read_text().splitlines()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_swap_of_a_rerun_is_held_until_the_whole_swap_is_done(
    signum: int,
    code: int,
    old_hour: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pipeline.ops import rerun

    done: list[str] = []
    swap_in = rerun.swap_in

    def swap_then_signal(root: Path, staging: Path, name: str) -> bool:
        atomic = swap_in(root, staging, name)
        send(signum)  # the partition is in; its history rows, latest, the report must follow
        done.append("swapped")
        return atomic

    monkeypatch.setattr(rerun, "swap_in", swap_then_signal)
    monkeypatch.setattr(rerun_command, "_after_rebuild", lambda root, name: done.append("report"))
    with interrupts.handling():
        assert rerun_command.rerun_pipeline(["--date-hour", HOUR]) == code
    assert done == ["swapped", "report"]
    assert (old_hour / "latest" / "manifest.json").read_text() == "new"
    assert (old_hour / f"history/date_hour={HOUR}/part-0.parquet").read_text() == "new rows"
    assert [p.name for p in (old_hour / HOUR).iterdir()] == ["manifest.json"]  # no .swapping
    assert not list(old_hour.glob(".*.rerun-*"))  # the staging root is gone
    name = signal.Signals(signum).name
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"pipeline: interrupted (exit {code}): {name} came during the swap of {HOUR} and was "
        f"held until it was done: {HOUR} is rebuilt and swapped in, latest -> {HOUR}; nothing "
        "to resume"
    )
    assert failed_run(old_hour)[1] == f"PIPELINE_EXIT_CODE={code}"  # not "under way" for good


def test_a_rerun_waits_for_a_run_re_rendering_the_hours_report_before_it_swaps(
    old_hour: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run refreshing the hour's report has read the old figures: swapped meanwhile, it
    would write them over the rebuilt report. The rerun holds the report's lock from before the
    swap until its own refresh is done."""
    from pipeline.report import hour

    monkeypatch.setattr(hour, "REPORT_LOCK_POLL", 0.01)
    other, seen = hold(old_hour / HOUR), []
    old_folder = os.open(old_hour / HOUR, os.O_RDONLY | os.O_DIRECTORY)  # where it is swapped to
    take = hour._flock

    def busy_once(fd: int, part: Partition) -> None:
        try:
            take(fd, part)
        except PartitionBusy:
            seen.append((old_hour / "latest" / "manifest.json").read_text())  # not swapped yet
            os.close(other)  # the other run is done
            raise

    def after_rebuild(root: Path, name: str) -> None:  # the refresh, as the rerun does it
        with hour.report_lock(hour.partition(root, name)):
            seen.append(f"report, old folder locked: {locked(old_folder)}")  # still held

    monkeypatch.setattr(hour, "_flock", busy_once)
    monkeypatch.setattr(rerun_command, "_after_rebuild", after_rebuild)
    with interrupts.handling():
        assert rerun_command.rerun_pipeline(["--date-hour", HOUR]) == 0
    os.close(old_folder)
    assert seen == ["old", "report, old folder locked: True"]
    assert (old_hour / "latest" / "manifest.json").read_text() == "new"


@pytest.mark.parametrize(("signum", "code"), [(None, 10), (signal.SIGTERM, 143)])
def test_a_rerun_whose_hours_report_stays_locked_leaves_the_hour_as_it_was(
    signum: int | None,
    code: int,
    old_hour: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It gives up after the wait (exit 10, as for a busy hour), or at once when told to stop,
    before the swap begins: the old hour is whole, the rebuild stays for a look."""
    from pipeline.report import hour

    monkeypatch.setattr(hour, "REPORT_LOCK_WAIT", 0.1 if signum is None else 60.0)
    monkeypatch.setattr(hour, "REPORT_LOCK_POLL", 0.05)
    take = hour._flock

    def busy(fd: int, part: Partition) -> None:
        if signum is not None:
            send(signum)  # held back: the rerun is publishing
        take(fd, part)

    monkeypatch.setattr(hour, "_flock", busy)
    other = hold(old_hour / HOUR)
    try:
        with interrupts.handling():
            assert rerun_command.rerun_pipeline(["--date-hour", HOUR]) == code
    finally:
        os.close(other)
    staging = old_hour / f".{HOUR}.rerun-{os.getpid()}"
    assert (old_hour / "latest" / "manifest.json").read_text() == "old"
    assert not (old_hour / HOUR / ".swapping").exists()  # the swap never began
    assert (staging / HOUR / "manifest.json").read_text() == "new"
    assert (old_hour / f"history/date_hour={HOUR}/part-0.parquet").read_text() == "old rows"
    resume = f"PIPELINE_DATA_DIR={old_hour} ./run_pipeline.sh rerun --date-hour {HOUR}"
    holder = f"the report of {HOUR} is being re-rendered by another run (pid {os.getpid()})"
    unswapped = (
        f"{HOUR} is unchanged: its swap did not begin (the rebuild is left in {staging}; a rerun "
        f"starts afresh); to rebuild it: {resume}"
    )
    err = capsys.readouterr().err.splitlines()
    if signum is None:
        assert err[-3:] == [
            f"pipeline: waiting up to 0.1 s: {holder}",
            f"pipeline: error: {holder}; waited too long",
            f"pipeline: {unswapped}",
        ]
    else:
        assert err[-1] == (
            f"pipeline: interrupted (exit 143): SIGTERM stopped the rerun of {HOUR} before its "
            f"swap began; {unswapped}"
        )
    assert failed_run(old_hour)[1] == f"PIPELINE_EXIT_CODE={code}"


def test_a_store_failing_as_the_reports_lock_is_taken_leaves_the_hour_as_it_was(
    old_hour: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not "the swap was cut short": it never began, so no plain run of the hour is refused."""
    from pipeline.report import hour
    from pipeline.storage.fs import StoreError

    def store_gone(fd: int, part: Partition) -> None:
        raise StoreError("the store did not answer (as on s3://, where the lock is an object)")

    monkeypatch.setattr(hour, "_flock", store_gone)
    with interrupts.handling():
        assert rerun_command.rerun_pipeline(["--date-hour", HOUR]) == 35  # scheduling_error
    staging = old_hour / f".{HOUR}.rerun-{os.getpid()}"
    assert (old_hour / "latest" / "manifest.json").read_text() == "old"
    assert not (old_hour / HOUR / ".swapping").exists()
    assert capsys.readouterr().err.splitlines()[-2:] == [
        "pipeline: error: the store did not answer (as on s3://, where the lock is an object)",
        f"pipeline: {HOUR} is unchanged: its swap did not begin (the rebuild is left in "
        f"{staging}; a rerun starts afresh); to rebuild it: PIPELINE_DATA_DIR={old_hour} "
        f"./run_pipeline.sh rerun --date-hour {HOUR}",
    ]
    assert failed_run(old_hour)[1] == "PIPELINE_EXIT_CODE=35"


def test_a_rebuild_the_scheduler_did_not_let_run_is_not_called_failed(
    old_hour: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A demo repeated through luigid within its done-cooldown: exit 25, what to do, and the
    untouched staging folder is no "failed rebuild"."""
    monkeypatch.setattr(runner, "run_luigi", lambda args: 25)
    with interrupts.handling():
        assert rerun_command.rerun_pipeline(["--date-hour", HOUR]) == 25
    staging = old_hour / f".{HOUR}.rerun-{os.getpid()}"
    err = capsys.readouterr().err.splitlines()
    assert err[-2].startswith(
        "pipeline: not run (exit 25): the scheduler did not let this run work (a luigid holds"
    )
    assert err[-1] == f"pipeline: {HOUR} is unchanged; the rebuild stays in {staging} for a look"
    assert (old_hour / "latest" / "manifest.json").read_text() == "old"


@pytest.mark.parametrize("demo", [False, True])
def test_a_rerun_stopped_while_rebuilding_leaves_the_old_hour_and_says_how_to_resume(
    demo: bool, old_hour: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def stopped_rebuild(args: Sequence[str]) -> int:
        interrupts.running = "CleanCarts"
        send(signal.SIGINT)
        return 0

    monkeypatch.setattr(runner, "run_luigi", stopped_rebuild)
    if demo:
        monkeypatch.setenv(RERUN_ENV, "./run_pipeline.sh demo out")
    with interrupts.handling():
        assert rerun_command.rerun_pipeline(["--date-hour", HOUR, "--workers", "1"]) == 130
    assert (old_hour / "latest" / "manifest.json").read_text() == "old"
    assert (old_hour / f"history/date_hour={HOUR}/part-0.parquet").read_text() == "old rows"
    staging = old_hour / f".{HOUR}.rerun-{os.getpid()}"
    resume = (
        "./run_pipeline.sh demo out"
        if demo
        else f"PIPELINE_DATA_DIR={old_hour} ./run_pipeline.sh rerun --workers 1 --date-hour {HOUR}"
    )
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"pipeline: interrupted (exit 130): SIGINT stopped the rebuild of {HOUR} during "
        f"CleanCarts; {HOUR} is unchanged (the rebuild so far stays in {staging}). To rebuild "
        f"it: {resume}"
    )
    assert failed_run(old_hour)[1] == "PIPELINE_EXIT_CODE=130"


def test_a_plain_run_of_an_hour_left_half_swapped_is_refused_and_the_rerun_redoes_it(
    old_hour: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (old_hour / HOUR / ".swapping").touch()  # a swap cut short (the rows not yet replaced)
    ran: list[Sequence[str]] = []
    rebuild = runner.run_luigi
    monkeypatch.setattr(runner, "run_luigi", lambda args: ran.append(args) or rebuild(args))
    monkeypatch.setattr(rerun_command, "_after_rebuild", lambda root, name: None)
    with interrupts.handling():
        assert runner.run_pipeline(["--date-hour", HOUR, "--workers", "1"]) == 10  # already_running
    assert ran == []  # nothing ran, nothing written: no run log either
    assert not (old_hour / "logs").exists()
    assert capsys.readouterr().err.splitlines() == [
        f"pipeline: refused (exit 10): a rerun's swap of {HOUR} was cut short, so it is part old,"
        f" part rebuilt ({old_hour / HOUR / '.swapping'} is there); to finish it: "
        f"PIPELINE_DATA_DIR={old_hour} ./run_pipeline.sh rerun --workers 1 --date-hour {HOUR}"
    ]
    with interrupts.handling():
        assert rerun_command.rerun_pipeline(["--date-hour", HOUR]) == 0
    err = capsys.readouterr().err
    assert (
        f"pipeline: {HOUR} was left half swapped by an earlier rerun: this one redoes it\n" in err
    )
    assert (old_hour / "latest" / "manifest.json").read_text() == "new"
    assert (old_hour / f"history/date_hour={HOUR}/part-0.parquet").read_text() == "new rows"
    assert not (old_hour / HOUR / ".swapping").exists()
