"""Atomic writes, the partition lock and moving ``latest``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipeline.storage import atomic
from pipeline.storage.atomic import atomic_path, exchange, remove_stale_temporaries
from pipeline.storage.latest import advance_latest, latest_reached, point_latest_to
from pipeline.storage.locks import PartitionBusy, hold_partition_lock


def test_atomic_path_replaces_the_target_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.csv"
    with atomic_path(target) as tmp:
        Path(tmp).write_text("first")
        assert not target.exists()
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        Path(tmp).write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "first"  # nothing already written is lost
    with atomic_path(target) as tmp:
        Path(tmp).write_text("second")  # a complete file may be replaced
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]


def test_stale_temporaries_are_swept(tmp_path: Path) -> None:
    (tmp_path / "jsons").mkdir()
    stale = tmp_path / "jsons" / ".carts.jsonl.123.tmp"
    stale.write_text("half")
    keep = tmp_path / "jsons" / "carts.jsonl"
    keep.write_text("whole")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert list((tmp_path / "jsons").iterdir()) == [keep]


def test_a_second_process_cannot_take_the_partition_lock(tmp_path: Path) -> None:
    lock = tmp_path / "2026-11-25T07" / ".lock"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the other run
        os.close(read)
        hold_partition_lock(lock)
        os.write(write, b"x")
        time.sleep(30)  # killed by the parent long before
        os._exit(0)
    try:
        os.close(write)
        assert os.read(read, 1) == b"x"  # the child holds the lock now
        with pytest.raises(PartitionBusy) as err:
            hold_partition_lock(lock)
        assert str(err.value) == (
            f"partition 2026-11-25T07 is being written by another run (pid {pid}); "
            "this run leaves it alone"
        )
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert hold_partition_lock(lock) is True  # released when its holder died
    assert hold_partition_lock(lock) is False  # already ours


def test_latest_only_moves_forward(tmp_path: Path) -> None:
    assert advance_latest(tmp_path, "2026-11-25T07") is True
    assert advance_latest(tmp_path, "2026-11-25T05") is False
    assert os.readlink(tmp_path / "latest") == "2026-11-25T07"
    assert advance_latest(tmp_path, "2026-11-25T08") is True
    assert os.readlink(tmp_path / "latest") == "2026-11-25T08"


def test_latest_never_moves_past_the_current_hour_and_leaves_a_future_one(tmp_path: Path) -> None:
    now = "2026-11-25T08"
    assert advance_latest(tmp_path, "2030-01-01T00", not_after=now) is False
    assert not (tmp_path / "latest").exists()
    point_latest_to(tmp_path, "2030-01-01T00")  # published before hours were checked
    assert latest_reached(tmp_path, "2026-11-25T07") is True  # unbounded, as before
    assert latest_reached(tmp_path, "2026-11-25T07", not_after=now) is False
    assert advance_latest(tmp_path, "2026-11-25T07", not_after=now) is True
    assert os.readlink(tmp_path / "latest") == "2026-11-25T07"
    assert latest_reached(tmp_path, "2026-11-25T07", not_after=now) is True
    assert advance_latest(tmp_path, "2026-11-25T06", not_after=now) is False  # still forwards


def test_exchange_swaps_two_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for path in (a, b):
        path.mkdir()
        (path / "name").write_text(path.name)
    assert exchange(a, b) is True
    assert ((a / "name").read_text(), (b / "name").read_text()) == ("b", "a")

    class NoRenameat2:  # an old C library: two renames instead
        pass

    monkeypatch.setattr(atomic.ctypes, "CDLL", lambda *args, **kwargs: NoRenameat2())
    assert exchange(a, b) is False
    assert ((a / "name").read_text(), (b / "name").read_text()) == ("a", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
