"""``python -m pipeline backfill``: the window, luigi's arguments, and what is refused."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline import cli, runner
from pipeline.ops import backfill

NOW = datetime(2026, 11, 25, 19, 30, tzinfo=UTC)  # the suite's pinned time (tests/support.NOW)


def test_the_window_is_whole_days_ending_with_the_current_hour() -> None:
    assert backfill.window(NOW, 1) == (datetime(2026, 11, 24, 20), datetime(2026, 11, 25, 20))
    start, stop = backfill.window(NOW, 3)
    assert (stop - start) / timedelta(hours=1) == 72 and start == datetime(2026, 11, 22, 20)


def test_the_range_task_is_asked_for_the_window() -> None:
    start, stop = backfill.window(NOW, 1)
    args = backfill.range_args(start, stop, newest_first=False, task_limit=5)
    assert args == [
        "InsightsRange", "--start", "2026-11-24T20", "--stop", "2026-11-25T20", "--task-limit", "5",
    ]  # fmt: skip
    assert backfill.range_args(start, stop, newest_first=True, task_limit=5)[-1] == "--reverse"


def complete_week(root: Path) -> None:
    """Every hour of the 7 days up to the pinned one with a manifest; `latest` at the newest."""
    for i in range(7 * 24):
        folder = root / f"{datetime(2026, 11, 25, 19) - timedelta(hours=i):%Y-%m-%dT%H}"
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text("{}")
    os.symlink("2026-11-25T19", root / "latest")


def test_days_up_to_the_retention_and_not_one_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """7 days is [housekeeping] retention_hours (168): the last good value; 8 the first bad one.
    A complete window runs nothing."""
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(runner, "configured_scheduler_url", lambda: "")
    complete_week(tmp_path)
    assert cli.main(["backfill", "--days", "7"]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == (
        "pipeline: nothing to do (exit 0): every hour of 2026-11-18T20..2026-11-25T19 is complete"
    )
    assert cli.main(["backfill", "--days", "8"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "pipeline: error: --days 8 reaches past [housekeeping] retention_hours (168): those "
        "hours would be pruned as soon as they were built; at most --days 7"
    )
    assert cli.main(["backfill", "--days", "7", "--housekeeping-retention-hours", "167"]) == 2
    for bad in (["--days", "0"], ["--task-limit", "0"], ["--date-hour", "2026-11-25T17"]):
        assert cli.main(["backfill", *bad]) == 2, bad
    assert not (tmp_path / "logs").exists()  # nothing ran
