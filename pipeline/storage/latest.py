"""``latest``: a relative symlink to the newest complete partition, switched atomically.

It only moves forwards, under a lock on the data root, so two runs of different hours that
finish together cannot move it backwards; and never past ``not_after``, the current hour, so a
future hour cannot hide every later run behind it (one that already does is moved back).

On an object-store data root ``latest`` is a small object holding the partition's name, moved
forwards with conditional writes instead of the lock (``storage.s3``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from pipeline.storage.fs import Location, ObjectPath
from pipeline.storage.layout import LATEST, PARTITION_RE, L


def latest_link(root: L) -> L:
    return root / LATEST


def latest_lock(root: Path) -> Path:
    return root / f".{LATEST}.lock"


def latest_partition(root: Location) -> str | None:
    """Name of the partition ``latest`` points to, or None when there is none yet."""
    if isinstance(root, ObjectPath):
        from pipeline.storage import s3

        return s3.latest_object(root)[0]
    try:
        target = os.readlink(latest_link(root))
    except OSError:
        return None
    name = Path(target).name
    return name if PARTITION_RE.match(name) else None


def latest_reached(root: Location, name: str, not_after: str | None = None) -> bool:
    """True once ``latest`` points at partition ``name`` or a newer one, but not later than
    ``not_after``: ``name`` is published (or superseded). Only reads a link, so checking an hour
    writes nothing."""
    current = latest_partition(root)
    future = not_after is not None and current is not None and current > not_after
    return current is not None and current >= name and not future


def point_latest_to(root: Path, name: str) -> None:
    """Switch ``latest`` atomically: readers see the old or the new partition, never neither."""
    tmp = root / f".{LATEST}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(name, tmp)  # relative, so the data root can be moved or mounted elsewhere
    os.replace(tmp, latest_link(root))


def advance_latest(root: Location, name: str, not_after: str | None = None) -> bool:
    """Point ``latest`` at partition ``name`` unless it already points at a newer one.

    The read-compare-switch runs under a lock on the data root, so two runs of different hours
    finishing together cannot move ``latest`` backwards. With ``not_after`` (the current hour),
    a ``name`` later than it is never published, and a ``latest`` later than it counts as none.
    Returns True if it moved.
    """
    if not_after is not None and name > not_after:
        return False
    if isinstance(root, ObjectPath):
        from pipeline.storage import s3

        return s3.advance_latest(root, name, not_after)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(latest_lock(root), os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for microseconds: waiting is fine
        current = latest_partition(root)
        if not_after is not None and current is not None and current > not_after:
            current = None  # a future hour, published before hours were checked
        if current is not None and current >= name:
            return False
        point_latest_to(root, name)
        return True
    finally:
        os.close(fd)
