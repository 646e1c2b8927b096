"""Atomic targets and the partition lock.

Every file is written to a hidden temporary path next to its target, flushed to disk and renamed
into place, so a crash (SIGKILL, power loss) at any moment leaves either the complete old state
or the complete new one at the target path, never half a file. A failed write removes its
temporary file; one orphaned by a killed process is swept by the next run that locks the
partition.
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

from pipeline.paths import latest_lock, latest_partition, point_latest_to

#: Temporary files are ``.<name>.<pid>.tmp`` beside their target; luigi's own use ``-luigi-tmp-``.
_TMP_GLOBS = (".*.tmp", "*-luigi-tmp-*")


class PartitionBusy(RuntimeError):
    """Another process is writing this partition."""


def target(path: Path) -> luigi.LocalTarget:
    return luigi.LocalTarget(str(path))


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[str]:
    """A temporary path beside ``path``, renamed onto it only if the block succeeds.

    Unlike ``LocalTarget.temporary_path`` this replaces an existing target (a rerun after a
    crash between two outputs of one task must not fail on the one already written), fsyncs
    before the rename (so a power loss cannot leave an empty file at the target path) and
    deletes the temporary file when the block fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield str(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY)  # make the rename itself durable


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete temporary files left by killed runs; only call while holding the partition lock."""
    stale = [p for glob in _TMP_GLOBS for p in directory.rglob(glob) if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def remove_orphaned_links(root: Path) -> list[Path]:
    """Delete ``.latest.<pid>.tmp`` links whose writer died between creating and renaming them."""
    orphans = []
    for path in root.glob(".latest.*.tmp"):
        pid = path.name.split(".")[2]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            orphans.append(path)
    return orphans


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as pretty JSON atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def read_json(path: Path) -> Any:
    return orjson.loads(Path(path).read_bytes())


def lock_holder(lock_path: Path) -> int | None:
    """Pid holding a ``flock`` on ``lock_path``, from ``/proc/locks`` (Linux); None if unknown.

    Asking the kernel rather than writing our pid into the file keeps the lock file unchanged, so
    a run that only finds the partition complete writes nothing at all.
    """
    try:
        st = os.stat(lock_path)
        with open("/proc/locks") as fh:
            entries = fh.read().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for entry in entries:
        fields = entry.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; waiters read "1: -> FLOCK ..."
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].lower() == wanted:
            return int(fields[4]) if fields[4].isdigit() else None
    return None


_held: dict[str, int] = {}


def hold_partition_lock(lock_path: Path) -> bool:
    """Hold an exclusive lock on the partition until this process exits; True if newly taken.

    Two runs of one partition (the timer and a manual run) must not write it at once: the second
    is refused with PartitionBusy naming the holder's pid and touches nothing. The lock is
    released by the kernel when the holder exits, however it dies. Forked luigi workers inherit
    it. Housekeeping probes the same lock so it never prunes a partition being written.
    """
    key = str(lock_path)
    if key in _held:
        return False
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            holder = lock_holder(lock_path)
            raise PartitionBusy(
                f"partition {lock_path.parent.name} is being written by another run "
                f"(pid {holder or 'unknown'}); this run leaves it alone"
            ) from None
        raise
    _held[key] = fd  # closed, and so released, when the process exits
    return True


def advance_latest(root: Path, name: str) -> bool:
    """Point ``latest`` at partition ``name`` unless it already points at a newer one.

    The read-compare-switch runs under a lock on the data root, so two runs of different hours
    finishing together cannot move ``latest`` backwards. Returns True if it moved.
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(latest_lock(root), os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for microseconds: waiting is fine
        current = latest_partition(root)
        if current is not None and current >= name:
            return False
        point_latest_to(root, name)
        return True
    finally:
        os.close(fd)
