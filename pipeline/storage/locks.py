"""The partition lock: one run writes an hour; a second run of it is refused, naming the holder.

An ``flock`` is released by the kernel when its holder exits, however it dies, so a crashed run
never leaves a partition locked.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import os
from pathlib import Path


class PartitionBusy(RuntimeError):
    """Another process is writing this partition."""


def alive(pid: int) -> bool:
    """Is process ``pid`` still there (someone else's counts)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


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


#: The locks this process took: path -> (file descriptor, pid of the process that took it).
_held: dict[str, tuple[int, int]] = {}


def hold_partition_lock(lock_path: Path) -> bool:
    """Hold an exclusive lock on the partition until this process exits; True if newly taken.

    Two runs of one partition (the timer and a manual run) must not write it at once: the second
    is refused with PartitionBusy naming the holder's pid and touches nothing. The lock is
    released by the kernel when the holder exits, however it dies. Forked luigi workers inherit
    it. Housekeeping probes the same lock so it never prunes a partition being written.

    A run that wrote nothing removes its lock file on the way out (``remove_unused``): the lock
    is taken again if the file this process locked is no longer the one at ``lock_path``.
    """
    key = str(lock_path)
    if key in _held:
        return False
    while True:
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
        if _is_at(fd, lock_path):
            break
        os.close(fd)  # locked a file a finished run had just removed: lock the one there now
    _held[key] = (fd, os.getpid())  # closed, and so released, when the process exits
    return True


def _is_at(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def remove_unused() -> list[Path]:
    """Remove each partition this process locked but wrote nothing in (a run that failed
    before its first output), lock file and empty folders included, so that no hour folder
    holding only ``.lock`` stays behind. Done while still holding the lock; a run that opened
    the old lock file meanwhile sees it gone and locks anew (``hold_partition_lock``), and a
    folder that has gained a file is left as it is. Returns the folders removed."""
    removed = []
    for key, (fd, pid) in list(_held.items()):
        lock = Path(key)
        if pid != os.getpid() or not _is_at(fd, lock):
            continue
        folder = lock.parent
        inside = sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True)
        if any(p != lock and not p.is_dir() for p in inside):
            continue
        try:
            lock.unlink()
            for path in [*(p for p in inside if p != lock), folder]:
                path.rmdir()  # deepest first; fails if anything appeared meanwhile
        except OSError:
            continue
        del _held[key]  # the descriptor stays open (and locked) until the process exits
        removed.append(folder)
    return removed


atexit.register(remove_unused)
