"""Retention must delete exactly the old partitions and never one in use (latest or locked)."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline.ops.housekeeping import housekeeping, main, prune_logs, prune_partitions
from pipeline.storage.fs import ObjectPath

NOW = datetime(2026, 11, 25, 17, 42, 10)  # naive = UTC


def make_partition(root: Path, name: str) -> Path:
    part = root / name
    (part / "insights").mkdir(parents=True)
    (part / "insights" / "user_summary.csv").write_text("user_id\n1\n")
    (part / "manifest.json").write_text("{}")
    return part


def hours_ago(n: int) -> str:
    return (NOW - timedelta(hours=n)).strftime("%Y-%m-%dT%H")


def names(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()}


def test_keeps_exactly_retention_hours_partitions(tmp_path: Path) -> None:
    for n in range(0, 10):
        make_partition(tmp_path, hours_ago(n))
    pruned = prune_partitions(tmp_path, 4, NOW)
    # 17 (current), 16, 15, 14 stay: their hour began less than 4 hours before 17:00.
    assert [p.name for p in pruned] == [hours_ago(n) for n in range(9, 3, -1)]
    assert names(tmp_path) == {hours_ago(n) for n in range(4)}


def test_default_week_boundary_and_timezone_aware_now(tmp_path: Path) -> None:
    make_partition(tmp_path, "2026-11-18T17")  # exactly 168 h before the current hour: goes
    make_partition(tmp_path, "2026-11-18T18")  # 167 h: stays
    make_partition(tmp_path, "2026-11-26T03")  # in the future (clock skew, backfill): stays
    aware = NOW.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=-5)))
    pruned = prune_partitions(tmp_path, 168, aware)
    assert pruned == [tmp_path / "2026-11-18T17"]
    assert names(tmp_path) == {"2026-11-18T18", "2026-11-26T03"}


def test_a_pruned_partition_leaves_its_name_whole_before_any_file_is_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On local disk a partition is renamed out of the namespace in one step, so a prune cut
    short never leaves, under the hour's name, a partition that looks complete (or half of one):
    the order of the file operations, recorded."""
    make_partition(tmp_path, "2026-11-25T10")
    done: list[tuple[str, ...]] = []
    replace, unlink, rmdir = os.replace, os.unlink, os.rmdir

    def record(op: str, real: Callable[..., None]) -> Callable[..., None]:
        def call(*paths: str | Path, **kwargs: int | None) -> None:
            done.append((op, *(os.path.basename(os.fsdecode(p)) for p in paths)))
            real(*paths, **kwargs)

        return call

    monkeypatch.setattr(os, "replace", record("replace", replace))
    monkeypatch.setattr(os, "unlink", record("unlink", unlink))
    monkeypatch.setattr(os, "rmdir", record("rmdir", rmdir))
    assert prune_partitions(tmp_path, 3, NOW) == [tmp_path / "2026-11-25T10"]
    monkeypatch.undo()
    assert done[0] == ("replace", "2026-11-25T10", ".2026-11-25T10.deleting")  # first
    assert sorted(done[1:]) == [
        ("rmdir", ".2026-11-25T10.deleting"), ("rmdir", "insights"),
        ("unlink", "manifest.json"), ("unlink", "user_summary.csv"),
    ]  # fmt: skip
    assert names(tmp_path) == set()


def test_never_prunes_latest_target(tmp_path: Path) -> None:
    old = make_partition(tmp_path, "2026-01-01T00")
    make_partition(tmp_path, "2026-01-01T01")
    (tmp_path / "latest").symlink_to(old.name)
    pruned = prune_partitions(tmp_path, 168, NOW)
    assert pruned == [tmp_path / "2026-01-01T01"]
    assert names(tmp_path) == {"2026-01-01T00", "latest"}
    assert (tmp_path / "latest" / "manifest.json").exists()


def test_never_prunes_partition_whose_lock_is_held(tmp_path: Path) -> None:
    locked = make_partition(tmp_path, "2026-01-01T00")
    unlocked = make_partition(tmp_path, "2026-01-01T01")
    (unlocked / ".lock").touch()  # a finished run leaves its lock file behind, unlocked
    (locked / ".lock").touch()
    holder = subprocess.Popen(  # another process, as a concurrent pipeline run would be
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, sys
            fh = open({str(locked / ".lock")!r}, "a")
            fcntl.flock(fh, fcntl.LOCK_EX)
            print("locked", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        assert prune_partitions(tmp_path, 168, NOW) == [unlocked]
        assert names(tmp_path) == {"2026-01-01T00"}
    finally:
        holder.communicate("")
    assert prune_partitions(tmp_path, 168, NOW) == [locked]  # released: now it goes
    assert names(tmp_path) == set()


def test_lock_held_by_this_process_on_another_fd_counts(tmp_path: Path) -> None:
    """The lead's run calls prune while holding its own partition's lock in-process."""
    part = make_partition(tmp_path, "2026-01-01T00")
    with open(part / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert prune_partitions(tmp_path, 168, NOW) == []
    assert part.exists()


def test_ignores_everything_that_is_not_a_partition(tmp_path: Path) -> None:
    for name in ("logs", "2026-01-01", "2026-01-01T00-old", "2026-13-01T25", "README.md"):
        (tmp_path / name).mkdir()
    (tmp_path / "2026-01-01T03").write_text("a file, not a folder")
    target = make_partition(tmp_path / "elsewhere", "2026-01-01T04")
    (tmp_path / "2026-01-01T04").symlink_to(target)
    before = names(tmp_path)
    assert prune_partitions(tmp_path, 1, NOW) == []
    assert names(tmp_path) == before
    assert target.exists()


def test_dry_run_and_logging(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_partition(tmp_path, "2026-01-01T00")
    with caplog.at_level(logging.INFO, logger="pipeline.ops.housekeeping"):
        assert prune_partitions(tmp_path, 168, NOW, dry_run=True) == [tmp_path / "2026-01-01T00"]
        assert (tmp_path / "2026-01-01T00").exists()
        prune_partitions(tmp_path, 168, NOW)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert messages == [
        f"would prune partition {tmp_path / '2026-01-01T00'}",
        f"pruned partition {tmp_path / '2026-01-01T00'} (older than 168 hours)",
    ]


def test_crash_leftovers_are_cleaned_and_missing_root_is_fine(tmp_path: Path) -> None:
    leftover = tmp_path / ".2026-01-01T00.deleting"
    (leftover / "insights").mkdir(parents=True)
    assert prune_partitions(tmp_path, 168, NOW) == []
    assert not leftover.exists()
    assert prune_partitions(tmp_path / "missing", 168, NOW) == []


def test_rejects_nonsense_retention(tmp_path: Path) -> None:
    make_partition(tmp_path, "2026-11-25T17")
    with pytest.raises(ValueError, match="retention_hours"):
        prune_partitions(tmp_path, 0, NOW)
    assert names(tmp_path) == {"2026-11-25T17"}


def test_prune_logs_by_mtime(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old, new, other = logs / "run-old.log", logs / "run-new.log", logs / "notes.txt"
    for path in (old, new, other):
        path.write_text("x")
    stamp = NOW.replace(tzinfo=UTC).timestamp()
    os.utime(old, (stamp - 5 * 3600, stamp - 5 * 3600))
    os.utime(new, (stamp - 3600, stamp - 3600))
    os.utime(other, (0, 0))
    assert prune_logs(tmp_path, 3, NOW) == [old]
    assert names(logs) == {"run-new.log", "notes.txt"}


def test_with_an_object_store_root_this_hosts_run_logs_are_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_LOG_DIR", str(tmp_path))
    old, new = tmp_path / "run-old.log", tmp_path / "run-new.log"
    cutoff = datetime(2026, 11, 25, 14, tzinfo=UTC).timestamp()  # NOW's hour, 3 hours back
    for path, mtime in ((old, cutoff), (new, cutoff + 1)):  # the cutoff, and just after it
        path.write_text("x")
        os.utime(path, (mtime, mtime))
    assert prune_logs(ObjectPath("shop-data", "etl"), 3, NOW) == [old]
    assert names(tmp_path) == {"run-new.log"}


def test_config_default_is_a_week() -> None:
    assert housekeeping().retention_hours == 168


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_partition(tmp_path, "2020-01-01T00")
    assert main(["--data-dir", str(tmp_path), "--dry-run"]) == 0
    assert "would prune 1 item(s)" in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path), "--retention-hours", "24"]) == 0
    assert names(tmp_path) == set()
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tmp_path), "--retention-hours", "0"])


@pytest.mark.slow  # a process of its own: the fast suite stays under 30 s
def test_the_command_line_says_each_item_in_its_voice_then_the_count(tmp_path: Path) -> None:
    """As a user runs it: one line per partition, as the rest of the command line speaks,
    then the count on stdout."""
    old = make_partition(tmp_path, "2020-01-01T00")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "prune", "--data-dir", str(tmp_path), "--dry-run"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, f"would prune 1 item(s) under {tmp_path}\n")
    assert result.stderr == f"pipeline: would prune partition {old}\n"
