"""Retention: delete hourly partitions (and run logs) that are older than the retention window.

Runs at the end of every successful pipeline run and as ``python -m pipeline prune`` for manual
use; the window is ``[housekeeping] retention_hours`` (``pipeline.config.housekeeping``). It never
deletes what a reader or writer may be using: the partition ``latest`` points to, and any
partition whose ``.lock`` is held by a running pipeline.

On an object-store data root the same rules hold: a partition's objects are deleted (its
manifest first, so a prune cut short never leaves one that looks complete) unless ``latest``
names it or its claim object is live. Run logs stay on each host (``layout.logs_dir``): each
host prunes its own.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline import clock
from pipeline.config import housekeeping, paths
from pipeline.storage.fs import Location, ObjectPath, StoreError, parse_root
from pipeline.storage.latest import latest_partition
from pipeline.storage.layout import LOCK, PARTITION_FORMAT, PARTITION_RE, logs_dir

log = logging.getLogger(__name__)

_DELETING = ".deleting"

__all__ = ["housekeeping", "main", "prune_logs", "prune_partitions"]


def _utc_hour(now: datetime) -> datetime:
    """`now` as a naive UTC datetime truncated to the hour (naive input is taken as UTC)."""
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)
    return now.replace(minute=0, second=0, microsecond=0)


def _cutoff(retention_hours: int, now: datetime) -> datetime:
    if retention_hours < 1:
        raise ValueError(f"retention_hours must be >= 1, got {retention_hours}")
    return _utc_hour(now) - timedelta(hours=retention_hours)


def _partition_hour(path: Path) -> datetime | None:
    if not PARTITION_RE.match(path.name) or path.is_symlink() or not path.is_dir():
        return None
    try:
        return datetime.strptime(path.name, PARTITION_FORMAT)
    except ValueError:  # matches the pattern but is no real hour, e.g. 2026-13-01T25
        return None


@contextlib.contextmanager
def _unless_locked(partition: Path) -> Iterator[bool]:
    """Yield True while holding `<partition>/.lock` ourselves, False if another process holds it.

    Holding the lock during deletion closes the race with a run that starts on the partition
    between the probe and the delete: that run blocks (or fails) on the lock instead.
    """
    try:
        fd = os.open(partition / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Rename out of the partition namespace first, so a crash never leaves half a partition."""
    doomed = path.with_name(f".{path.name}{_DELETING}")
    shutil.rmtree(doomed, ignore_errors=True)  # left over from a crash in an earlier prune
    os.replace(path, doomed)
    shutil.rmtree(doomed)


def prune_partitions(
    data_root: Location, retention_hours: int, now: datetime, *, dry_run: bool = False
) -> list[Location]:
    """Delete partitions whose hour began `retention_hours` or more before `now`'s hour.

    So exactly `retention_hours` partitions are kept (the current hour and the ones before it),
    plus `latest`'s target and locked ones whatever their age. Names that are not partitions
    are left alone. Returns the pruned (or, with `dry_run`, prunable) folders, oldest first.
    """
    if isinstance(data_root, ObjectPath):
        return _prune_objects(data_root, retention_hours, now, dry_run)
    data_root = Path(data_root)
    cutoff = _cutoff(retention_hours, now)
    keep = latest_partition(data_root)
    pruned: list[Location] = []
    if not data_root.is_dir():
        return pruned
    for leftover in data_root.glob(f".*{_DELETING}"):  # from a crash in an earlier prune
        shutil.rmtree(leftover, ignore_errors=True)
    for path in sorted(data_root.iterdir()):
        hour = _partition_hour(path)
        if hour is None or hour > cutoff:
            continue
        if path.name == keep:
            log.info("keeping old partition %s: `latest` points to it", path)
            continue
        with _unless_locked(path) as free:
            if not free:
                log.info("keeping old partition %s: a run holds its lock", path)
                continue
            if dry_run:
                log.info("would prune partition %s", path)
            else:
                try:
                    _remove(path)
                except OSError:
                    log.exception("could not prune partition %s", path)
                    continue
                log.info("pruned partition %s (older than %d hours)", path, retention_hours)
            pruned.append(path)
    return pruned


def _prune_objects(root: ObjectPath, hours: int, now: datetime, dry_run: bool) -> list[Location]:
    """``prune_partitions`` on an object store: the claim object stands in for the lock."""
    from pipeline.storage import lease, s3

    cutoff = _cutoff(hours, now)
    keep = latest_partition(root)
    pruned: list[Location] = []
    for name in s3.partition_names(root):
        try:
            hour = datetime.strptime(name, PARTITION_FORMAT)
        except ValueError:
            continue
        part = root / name
        if hour > cutoff:
            continue
        if name == keep:
            log.info("keeping old partition %s: `latest` points to it", part)
            continue
        claim = lease.read(part / LOCK)
        if claim is not None and lease.live(claim[0]):
            log.info("keeping old partition %s: a run holds its claim", part)
            continue
        if dry_run:
            log.info("would prune partition %s", part)
        else:
            count = s3.delete_tree(part, first="manifest.json")
            log.info("pruned partition %s (%d objects, older than %d hours)", part, count, hours)
        pruned.append(part)
    return pruned


def prune_logs(
    data_root: Location, retention_hours: int, now: datetime, *, dry_run: bool = False
) -> list[Path]:
    """Delete `logs/run-*.log` files last written before the same cutoff as partitions: this
    host's, with an object-store root (``layout.logs_dir``)."""
    cutoff = _cutoff(retention_hours, now).replace(tzinfo=UTC).timestamp()
    pruned = []
    for path in sorted(logs_dir(data_root).glob("run-*.log")):
        if path.is_file() and path.stat().st_mtime <= cutoff:
            if not dry_run:
                path.unlink(missing_ok=True)
            log.info("%s run log %s", "would prune" if dry_run else "pruned", path)
            pruned.append(path)
    return pruned


class _Voice(logging.Formatter):
    """The command line's voice: ``pipeline: …``, ``pipeline: warning: …``."""

    def format(self, record: logging.LogRecord) -> str:
        level = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        return f"pipeline: {level}{super().format(record)}"


def main(argv: list[str] | None = None) -> int:
    """Manual pruning, e.g. after lowering the retention (``--dry-run`` first)."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline prune",
        description="Delete the hourly partitions, and this host's run logs, older than the "
        "retention window ([housekeeping] retention_hours; every successful run does it too). "
        "Never the hour `latest` names, nor one a run is writing (its lock held, or on s3:// "
        "its claim live); a partition's manifest goes first, so one cut short never looks "
        "complete.",
    )
    parser.add_argument(
        "--data-dir", help="data root, a path or s3://bucket/prefix (default: as the pipeline's)"
    )
    parser.add_argument(
        "--retention-hours",
        type=int,
        help=f"default: [housekeeping] retention_hours ({housekeeping().retention_hours})",
    )
    parser.add_argument("-n", "--dry-run", action="store_true", help="only list what would go")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_Voice())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials in ...": noise

    hours = housekeeping().retention_hours if args.retention_hours is None else args.retention_hours
    now = clock.now()
    try:
        root = parse_root(args.data_dir) if args.data_dir else paths().root()
        gone = prune_partitions(root, hours, now, dry_run=args.dry_run)
        gone += prune_logs(root, hours, now, dry_run=args.dry_run)
    except ValueError as exc:
        parser.error(str(exc))
    except StoreError as exc:
        log.error("%s", exc)
        return 1
    print(f"{'would prune' if args.dry_run else 'pruned'} {len(gone)} item(s) under {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
