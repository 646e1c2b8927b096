"""Two runs of one partition at once (the hourly timer and a manual run), and runs that only check.

The first to schedule a task of the partition to run claims its lock; the other exits at once
with [retcode] already_running (10) and a message naming the partition and the pid writing it.
No task runs twice, nothing is corrupted, and a killed holder never leaves the partition locked.
A run that finds the hour complete, or schedules it without running it, writes nothing at all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.devtools.fakeapi import DummyJSONServer
from pipeline.storage.locks import PartitionBusy, hold_partition_lock, lock_holder
from tests.support import PARTITION, REPO, luigi_command, pipeline_env, run_luigi
from tests.support.expected import CART_DETAILS, CATEGORY_SUMMARY, USER_SUMMARY

pytestmark = pytest.mark.slow

ALREADY_RUNNING = 10
NOT_RUN = 25
#: 10 pages at 0.5 s each, 2-3 in a row per endpoint: a run writes for ~3 s, long enough for
#: a second run to start while it does, even on a busy machine.
SLOW = ("--api-page-size", "2")
LATENCY = 0.5


def start(api_url: str, data: Path, pid_dir: Path, *args: str) -> subprocess.Popen[str]:
    """A run as the timer or a person starts it; distinct pid dirs, so luigi's own
    command-line lock does not decide (a timer and a manual run differ in their arguments)."""
    return subprocess.Popen(
        luigi_command(PARTITION, pid_dir, *SLOW, *args),
        cwd=REPO,
        env=pipeline_env(api_url, data),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, float]:
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out, time.monotonic()


def test_two_runs_started_at_once_one_writes_the_other_exits_10(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    api.latency = LATENCY
    data = tmp_path / "data"
    runs = [start(api.url, data, tmp_path / f"pids-{i}") for i in range(2)]
    results = [finish(p) for p in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, ALREADY_RUNNING], [out for _, out, _ in results]
    winner, loser = (0, 1) if results[0][0] == 0 else (1, 0)
    message = (
        f"partition {PARTITION} is being written by another run (pid {runs[winner].pid}); "
        "this run leaves it alone"
    )
    assert message in results[loser][1]
    assert "Informed scheduler" not in results[loser][1]  # it scheduled and ran nothing

    # Every page was fetched exactly once: no task ran in both processes.
    pages = [(path, query["skip"]) for path, query in api.requests]
    assert len(pages) == len(set(pages)) == 3 + 4 + 3
    latest = data / "latest"
    assert os.readlink(latest) == PARTITION
    assert (latest / "insights/user_summary.csv").read_text() == USER_SUMMARY
    assert (latest / "insights/category_summary.csv").read_text() == CATEGORY_SUMMARY
    assert (latest / "insights/cart_details.csv").read_text() == CART_DETAILS


def test_a_run_started_while_another_writes_exits_at_once_without_waiting(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    api.latency = LATENCY
    data = tmp_path / "data"
    first = start(api.url, data, tmp_path / "pids-timer")
    deadline = time.monotonic() + 30
    while api.request_count == 0:  # the first run holds the lock once it is fetching
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    second = start(api.url, data, tmp_path / "pids-manual", "--workers", "1")
    code, out, second_done = finish(second)
    first_code, first_out, first_done = finish(first)
    assert code == ALREADY_RUNNING, out
    assert f"being written by another run (pid {first.pid})" in out
    assert second_done < first_done  # it did not queue behind the first run
    assert first_code == 0, first_out

    api.reset_log()
    again = start(api.url, data, tmp_path / "pids-manual")
    code, out, _ = finish(again)
    assert code == 0, out
    assert api.request_count == 0  # complete: nothing to do, and no longer locked


def test_the_same_command_line_twice_is_refused_by_luigi_with_the_same_code(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    api.latency = LATENCY
    data, pids = tmp_path / "data", tmp_path / "pids"
    first = start(api.url, data, pids)
    while api.request_count == 0:
        assert first.poll() is None
        time.sleep(0.05)
    code, out, _ = finish(start(api.url, data, pids))
    assert code == ALREADY_RUNNING, out
    assert f"Pid(s) {{{first.pid}}} already running" in out
    assert finish(first)[0] == 0


def test_a_killed_holder_leaves_the_partition_free(api: DummyJSONServer, tmp_path: Path) -> None:
    api.latency = LATENCY
    data = tmp_path / "data"
    first = start(api.url, data, tmp_path / "pids-1")
    while api.request_count == 0:
        assert first.poll() is None
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    api.latency = 0.0
    code, out, _ = finish(start(api.url, data, tmp_path / "pids-2"))
    assert code == 0, out
    assert os.readlink(data / "latest") == PARTITION


def tree(root: Path) -> dict[str, int]:
    """Every path under ``root`` (folders too) with its mtime: a new file changes its folder's."""
    return {str(p.relative_to(root)): p.lstat().st_mtime_ns for p in [root, *root.rglob("*")]}


def test_a_run_that_finds_the_hour_complete_writes_nothing(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert run_luigi(api.url, data).returncode == 0
    (data / PARTITION / ".lock").unlink()  # e.g. a partition restored from a backup
    before = tree(data)
    api.reset_log()
    again = run_luigi(api.url, data)
    assert again.returncode == 0, again.output
    assert tree(data) == before  # no lock file, no folder touched
    assert api.request_count == 0


def test_a_run_with_no_workers_schedules_the_hour_without_creating_it(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    result = run_luigi(api.url, data, "--workers", "0")
    assert result.returncode == NOT_RUN, result.output
    assert "Scheduled 12 tasks of which:\n* 12 were left pending" in result.output
    assert not data.exists()
    assert api.request_count == 0


HOLD = """
import sys, time
from pathlib import Path
from pipeline.storage.locks import hold_partition_lock
hold_partition_lock(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(60)
"""


def test_the_lock_names_its_holder_and_its_file_stays_empty(tmp_path: Path) -> None:
    lock = tmp_path / "2026-11-25T17" / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert lock_holder(lock) == holder.pid
        with pytest.raises(PartitionBusy) as err:
            hold_partition_lock(lock)
        assert str(err.value) == (
            f"partition 2026-11-25T17 is being written by another run (pid {holder.pid}); "
            "this run leaves it alone"
        )
        assert lock.read_bytes() == b""  # the kernel knows the holder; nothing is written
    finally:
        holder.kill()
        holder.wait()
    assert lock_holder(lock) is None
