"""The partition lock: one process writes an hour; another is refused, naming the holder."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest

from pipeline.storage import locks
from pipeline.storage.locks import PartitionBusy, hold_partition_lock, remove_unused


@pytest.fixture(autouse=True)
def own_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the locks it took (they are the process's, for its lifetime)."""
    monkeypatch.setattr(locks, "_held", {})


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


def test_a_partition_its_run_wrote_nothing_in_is_removed_lock_and_all(tmp_path: Path) -> None:
    empty, written = tmp_path / "2026-11-25T16", tmp_path / "2026-11-25T17"
    for part in (empty, written):
        hold_partition_lock(part / ".lock")
        (part / "jsons").mkdir()  # made for an output that never came
    (written / "jsons" / "users.jsonl").write_text("{}\n")
    assert remove_unused() == [empty]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-25T17"]
    assert sorted(str(p.relative_to(written)) for p in written.rglob("*")) == [
        ".lock", "jsons", "jsons/users.jsonl",
    ]  # fmt: skip
    assert remove_unused() == []  # and nothing else on the way out


def test_a_run_that_locked_a_lock_file_just_removed_locks_the_one_there_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between this run opening the lock file and locking it, the run that held it finished
    having written nothing, and removed it: this run must not hold a lock on a deleted file
    (a third run would then lock a new file and both would write the hour)."""
    lock = tmp_path / "2026-11-25T17" / ".lock"
    lock.parent.mkdir()
    lock.touch()
    flock, calls = fcntl.flock, []

    def finished_meanwhile(fd: int, op: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            lock.unlink()  # what remove_unused of the finishing run does
        flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", finished_meanwhile)
    assert hold_partition_lock(lock) is True
    assert len(calls) == 2  # the first file was let go, the new one locked
    assert os.path.sameopenfile(locks._held[str(lock)][0], os.open(lock, os.O_RDONLY))
