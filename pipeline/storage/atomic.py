"""Atomic targets: whole files at their final paths, or nothing.

Every file is written to a hidden temporary path next to its target, flushed to disk and renamed
into place, so a crash (SIGKILL, power loss) at any moment leaves either the complete old state
or the complete new one at the target path, never half a file. A failed write removes its
temporary file; one orphaned by a killed process is swept by the next run that locks the
partition.

On an object-store data root (``fs.ObjectPath``) the same calls upload a whole object from a
local temporary file instead (``storage.s3``): a key appears complete or not at all.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import luigi
import orjson

from pipeline.storage.fs import Location, ObjectPath, read_bytes
from pipeline.storage.locks import alive

#: Temporary files are ``.<name>.<pid>.tmp`` beside their target; luigi's own use ``-luigi-tmp-``.
_TMP_GLOBS = (".*.tmp", "*-luigi-tmp-*")


def target(path: Location) -> luigi.Target:
    """The luigi target of a file: a LocalTarget, or an object on an object-store root."""
    if isinstance(path, ObjectPath):
        from pipeline.storage import s3

        return s3.ObjectTarget(path)
    return luigi.LocalTarget(str(path))


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """The C library's ``sync_file_range``, or None where there is none (not Linux)."""
    try:
        call = ctypes.CDLL(None).sync_file_range
    except (OSError, AttributeError, TypeError):  # TypeError: Windows has no CDLL(None)
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    return call


_start_writeback = _sync_file_range()


def start_writeback(fd: int) -> None:
    """Have the disk start taking what was written to ``fd`` so far, without waiting for it.

    Writers of large files call it as they go, so that the write to disk overlaps their work
    and the fsync before the rename (``atomic_path``) finds little left: that fsync otherwise
    waited about 0.1 s for each 300 MB file, the whole file sitting in memory until then.
    Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``, which waits only when the disk's queue is
    full; elsewhere it does nothing. It is a hint: a failure is ignored (the fsync still runs).
    """
    if _start_writeback is not None:
        _start_writeback(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


@contextmanager
def atomic_path(path: Location) -> Iterator[str]:
    """A temporary path beside ``path``, renamed onto it only if the block succeeds.

    For an object, a local temporary file uploaded to it only if the block succeeds.

    Unlike ``LocalTarget.temporary_path`` this replaces an existing target (a rerun after a
    crash between two outputs of one task must not fail on the one already written), fsyncs
    before the rename (so a power loss cannot leave an empty file at the target path) and
    deletes the temporary file when the block fails.
    """
    if isinstance(path, ObjectPath):
        from pipeline.storage import lease, s3

        with s3.upload_on_success(path, check=lease.check) as tmp:
            yield tmp
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield str(temporary)
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
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
        if pid.isdigit() and not alive(int(pid)):
            path.unlink(missing_ok=True)
            orphans.append(path)
    return orphans


def write_json(path: Location, obj: Any) -> None:
    """Write ``obj`` as pretty JSON atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def read_json(path: Location) -> Any:
    return orjson.loads(read_bytes(path))


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap two directories (or files) of one filesystem in one step: a reader sees either the
    old pair or the new, never a missing path. Linux ``renameat2(RENAME_EXCHANGE)``; where the C
    library or the filesystem lacks it, two renames, between which ``b`` is briefly missing.
    Returns whether the swap was atomic."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        flags = ctypes.c_uint(_RENAME_EXCHANGE)
        if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), flags) == 0:
            _fsync(a.parent, os.O_RDONLY | os.O_DIRECTORY)
            _fsync(b.parent, os.O_RDONLY | os.O_DIRECTORY)
            return True
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(a), None, str(b))
    aside = a.with_name(a.name + ".swap")
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)
    _fsync(b.parent, os.O_RDONLY | os.O_DIRECTORY)
    return False
