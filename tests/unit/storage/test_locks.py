"""The partition lock: one process writes an hour; another is refused, naming the holder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipeline.storage.locks import PartitionBusy, hold_partition_lock


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
