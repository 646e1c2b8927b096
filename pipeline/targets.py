"""Atomic targets and the partition lock.

Every file is written to a temporary path next to its target and renamed into place, so a crash
at any moment leaves either the complete old state or the complete new one, never half a file.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import luigi
import orjson


class PartitionBusy(RuntimeError):
    """Another process is writing this partition."""


def target(path: Path) -> luigi.LocalTarget:
    return luigi.LocalTarget(str(path))


@contextmanager
def atomic_path(path: Path) -> Iterator[str]:
    """A temporary path beside ``path``, renamed onto it only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with target(path).temporary_path() as tmp:
        yield tmp


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as pretty JSON atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def read_json(path: Path) -> Any:
    return orjson.loads(Path(path).read_bytes())


_held: dict[str, int] = {}


def hold_partition_lock(lock_path: Path) -> None:
    """Hold an exclusive lock on the partition until this process exits.

    Two runs of one partition (the timer and a manual run) must not write it at once: the second
    fails at its first task with a clear message and touches nothing. Housekeeping probes the
    same lock so it never prunes a partition being written.
    """
    key = str(lock_path)
    if key in _held:
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise PartitionBusy(
                f"partition {lock_path.parent.name} is being written by another run "
                f"(pid {holder}); this run leaves it alone"
            ) from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _held[key] = fd  # closed, and so released, when the process exits
