"""``./run_pipeline.sh backfill``: only the missing hours of the window run, in the order and
number asked, each page fetched once; `status` agrees afterwards."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pipeline.devtools.fakeapi import DummyJSONServer
from tests.support import REPO, pipeline_env

pytestmark = pytest.mark.slow

CURRENT = datetime(2026, 11, 25, 19)  # the suite's pinned hour
OLDER, NEWER = "2026-11-25T03", "2026-11-25T11"  # the two gaps


def backfill(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REPO / "run_pipeline.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_a_day_with_two_gaps_is_filled_newest_first_one_at_a_time(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = pipeline_env(api.url, data)
    assert backfill(env, "--date-hour", f"{CURRENT:%Y-%m-%dT%H}").returncode == 0
    for i in range(1, 24):  # the rest of the day: copies of the real hour, but the two gaps
        name = f"{CURRENT - timedelta(hours=i):%Y-%m-%dT%H}"
        if name not in (OLDER, NEWER):
            shutil.copytree(data / f"{CURRENT:%Y-%m-%dT%H}", data / name, symlinks=True)
    api.reset_log()

    first = backfill(env, "backfill", "--days", "1", "--newest-first", "--task-limit", "1")
    said = first.stderr.splitlines()
    assert first.returncode == 0, first.stderr[-3000:]
    assert said[0] == (
        f"pipeline: backfill 2026-11-24T20..2026-11-25T19: 2 hour(s) missing ({OLDER}, {NEWER}); "
        "1 in this run, newest first"
    )
    assert said[-1] == f"pipeline: done (exit 0): 1 hour(s) built; 1 still missing ({OLDER})"
    assert (data / NEWER / "manifest.json").is_file() and not (data / OLDER).exists()
    assert sorted(api.requests, key=str) == sorted(
        [(f"/{e}", {"limit": "1000", "skip": "0"}) for e in ("carts", "products", "users")], key=str
    )  # one page per endpoint: the one hour, nothing else

    second = backfill(env, "backfill", "--days", "1")
    assert second.returncode == 0 and second.stderr.splitlines()[-1] == (
        "pipeline: done (exit 0): 1 hour(s) built; none missing"
    )
    assert api.request_count == 6
    third = backfill(env, "backfill", "--days", "1")
    assert third.stderr.splitlines()[-1] == (
        "pipeline: nothing to do (exit 0): every hour of 2026-11-24T20..2026-11-25T19 is complete"
    )
    assert api.request_count == 6
    status = backfill(env, "status", "--days", "1")
    assert (status.returncode, status.stdout.splitlines()[0]) == (0, (
        "OK: newest complete hour 2026-11-25T19 (0 h old); 0 hour(s) missing and 0 failed in "
        "the last 1 day(s)"
    ))  # fmt: skip


@pytest.mark.parametrize("newest_first", [False, True])
def test_the_missing_hours_run_in_the_order_asked_each_compared_with_the_one_before(
    newest_first: bool, api: DummyJSONServer, tmp_path: Path
) -> None:
    """luigi promises no order within a batch (it ran the newest first): the hours carry it as
    priorities. Oldest first, each hour's summary compares with the hour before it at once;
    only the hour after the gap (a report made before them) is brought up to date each time."""
    data = tmp_path / "data"
    env = pipeline_env(api.url, data)
    assert backfill(env, "--date-hour", f"{CURRENT:%Y-%m-%dT%H}").returncode == 0
    gaps = [f"{CURRENT - timedelta(hours=i):%Y-%m-%dT%H}" for i in (23, 22, 21)]  # the oldest
    after = f"{CURRENT - timedelta(hours=20):%Y-%m-%dT%H}"
    for i in range(1, 21):
        name = f"{CURRENT - timedelta(hours=i):%Y-%m-%dT%H}"
        shutil.copytree(data / f"{CURRENT:%Y-%m-%dT%H}", data / name, symlinks=True)

    args = ["backfill", "--days", "1", *(["--newest-first"] if newest_first else [])]
    result = backfill(env, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    built = [line.split()[1].rstrip(":") for line in lines if line.startswith("Snapshot ")]
    assert built == (gaps[::-1] if newest_first else gaps)
    refreshed = [line.split(" ", 1)[1] for line in result.stderr.splitlines()
                 if line.endswith(tuple(gaps)) and "brought up to date" in line]  # fmt: skip
    if newest_first:  # each hour's report is redone once the hour before it is built
        pairs = [(after, gaps[2]), (gaps[2], gaps[1]), (gaps[1], gaps[0])]
    else:
        assert [line for line in lines if line.startswith("Change")] == [
            "Change: no earlier complete snapshot to compare with",
            f"Change since {gaps[0]}: carts +0, revenue +$0.00 (+0.0%)",
            f"Change since {gaps[1]}: carts +0, revenue +$0.00 (+0.0%)",
        ]
        pairs = [(after, gap) for gap in gaps]
    assert refreshed == [
        f"report of {hour} brought up to date: it now compares with {before}"
        for hour, before in pairs
    ]
