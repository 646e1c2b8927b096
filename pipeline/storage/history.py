"""The history dataset on disk, and the earlier snapshots the report compares an hour with.

``<data root>/history/date_hour=YYYY-MM-DDTHH/part-0.parquet``: one Parquet file per hour in
Hive-style folders, so ``pd.read_parquet(root / "history")``, ``pyarrow.dataset`` or DuckDB's
``read_parquet('history/*/*.parquet', hive_partitioning = true)`` read all hours as one table.

An hour's file is written to a hidden temporary name and renamed onto ``part-0.parquet``, so a
rerun of the hour replaces its rows (never adds to them), and readers, which skip names starting
with ``.``, see the old file or the new one. Hours older than ``[history] retention_days`` are
deleted after each run, independently of the partitions' retention.

On an object-store data root (``fs.ObjectPath``) the same keys hold the same files: an hour's
object is uploaded whole (``atomic.atomic_path``), hours are found by listing the ``history/``
prefix, and an expired hour's objects are deleted (``storage.s3``).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.rules.history import COLUMNS, HOUR_FORMAT, PARTITION_KEY
from pipeline.storage.atomic import atomic_path, remove_stale_temporaries
from pipeline.storage.fs import Location, ObjectPath, exists, local_copy, partition_names
from pipeline.storage.layout import (
    HISTORY_FILE,
    PARTITION_FORMAT,
    PARTITION_RE,
    Partition,
    history_dir,
)
from pipeline.storage.layout import history_file as hour_file

log = logging.getLogger(__name__)

FILE = HISTORY_FILE
_ARROW = {"string": pa.string(), "Int64": pa.int64(), "float64": pa.float64()}
SCHEMA = pa.schema([(name, _ARROW[kind]) for name, kind in COLUMNS.items()])
PARTITIONING = ds.partitioning(pa.schema([(PARTITION_KEY, pa.string())]), flavor="hive")
_PREFIX = f"{PARTITION_KEY}="
_DELETING = ".deleting"


def write_hour(root: Location, name: str, rows: pd.DataFrame) -> Location:
    """Write (or replace) hour ``name``'s rows atomically; only call holding the hour's lock."""
    path = hour_file(root, name)
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in remove_stale_temporaries(path.parent):  # left by a killed run of this hour
            log.info("removed %s, left by an interrupted run", stale)
    table = pa.Table.from_pandas(rows, schema=SCHEMA, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def read_history(
    root: Location,
    first: str | None = None,
    last: str | None = None,
    levels: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Rows of hours ``first`` to ``last`` (names, both included; None: unbounded) of the given
    ``levels``, with their ``date_hour``; empty (with every column) when there is no history.

    Filters on the partition key skip other hours' files unread. On an object store the hours
    in the window are found by listing ``history/``, and their (small) files downloaded one by
    one and read as one in-memory dataset: the trend window is a few days of hours, so this
    costs a few hundred small GETs at most, and no S3 filesystem is needed in pyarrow.
    """
    columns = [*COLUMNS, PARTITION_KEY]
    base = history_dir(root)
    if isinstance(base, ObjectPath):
        dataset = _downloaded(base, first, last)
    elif base.is_dir():
        dataset = ds.dataset(base, format="parquet", partitioning=PARTITIONING, schema=_with_key())
    else:
        dataset = None
    if dataset is None:
        return pd.DataFrame({c: pd.Series(dtype=COLUMNS.get(c, "string")) for c in columns})
    condition = None
    for term in (
        ds.field(PARTITION_KEY) >= first if first else None,
        ds.field(PARTITION_KEY) <= last if last else None,
        ds.field("level").isin(list(levels)) if levels is not None else None,
    ):
        if term is not None:
            condition = term if condition is None else condition & term
    table = dataset.to_table(filter=condition)
    frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    texts = [c for c, kind in COLUMNS.items() if kind == "string"]
    return frame.astype(dict.fromkeys([PARTITION_KEY, *texts], "string"))


def _with_key() -> pa.Schema:
    return SCHEMA.append(pa.field(PARTITION_KEY, pa.string()))


def _hour_names(base: ObjectPath) -> list[str]:
    """The hours under an object-store ``history/`` prefix, oldest first."""
    from pipeline.storage import s3

    names = [n.removeprefix(_PREFIX) for n in s3.children(base) if n.startswith(_PREFIX)]
    return [n for n in names if _hour(n) is not None]


def _downloaded(base: ObjectPath, first: str | None, last: str | None) -> ds.Dataset | None:
    """Hours ``first`` to ``last`` of an object-store history, read into one dataset with their
    ``date_hour``; None when there is no history at all. An hour pruned meanwhile is skipped."""
    names = _hour_names(base)
    if not names:
        return None
    tables = []
    for name in names:
        if (first and name < first) or (last and name > last):
            continue
        try:
            with local_copy(base / f"{_PREFIX}{name}" / FILE) as path:
                table = pq.read_table(path, schema=SCHEMA)
        except FileNotFoundError:
            continue
        key = pa.array([name] * table.num_rows, pa.string())
        tables.append(table.append_column(pa.field(PARTITION_KEY, pa.string()), key))
    return ds.dataset(pa.concat_tables(tables) if tables else _with_key().empty_table())


def _hour(name: str) -> datetime | None:
    """The hour named ``name`` (``YYYY-MM-DDTHH``), or None for any other name."""
    if not PARTITION_RE.match(name):
        return None
    try:
        return datetime.strptime(name, HOUR_FORMAT)
    except ValueError:
        return None


def _hour_of(path: Path) -> datetime | None:
    if not path.name.startswith(_PREFIX) or not path.is_dir():
        return None
    return _hour(path.name.removeprefix(_PREFIX))


def prune_history(root: Location, retention_days: int, now: datetime, keep: str) -> list[Location]:
    """Delete the hours that began ``retention_days`` days or more before ``now``'s hour, but
    never hour ``keep`` (the one this run wrote). Returns the deleted folders, oldest first.

    A folder is renamed out of the dataset before it is deleted, so a crash never leaves half
    an hour in it; a folder another run deletes at the same moment is skipped. On an object
    store an hour is its one object, deleted in one request: there is no half an hour.
    """
    if retention_days < 1:
        raise ValueError(f"[history] retention_days must be >= 1, got {retention_days}")
    base = history_dir(root)
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)
    cutoff = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=retention_days)
    if isinstance(base, ObjectPath):
        return _prune_objects(base, retention_days, cutoff, keep)
    if not base.is_dir():
        return []
    for leftover in base.glob(f".*{_DELETING}"):  # from a crash in an earlier prune
        shutil.rmtree(leftover, ignore_errors=True)
    pruned: list[Location] = []
    for path in sorted(base.iterdir()):
        hour = _hour_of(path)
        if hour is None or hour > cutoff or path.name == f"{_PREFIX}{keep}":
            continue
        doomed = path.with_name(f".{path.name}{_DELETING}")
        try:
            os.replace(path, doomed)
        except FileNotFoundError:
            continue  # another run pruned it first
        shutil.rmtree(doomed, ignore_errors=True)
        log.info("pruned history %s (older than %d days)", path.name, retention_days)
        pruned.append(path)
    return pruned


def _prune_objects(
    base: ObjectPath, retention_days: int, cutoff: datetime, keep: str
) -> list[Location]:
    from pipeline.storage import s3

    pruned: list[Location] = []
    for name in _hour_names(base):
        hour = _hour(name)  # never None: _hour_names keeps hours only
        if name == keep or (hour is not None and hour > cutoff):
            continue
        folder = base / f"{_PREFIX}{name}"
        if s3.delete_tree(folder, first=FILE):  # 0: another run pruned it first
            log.info("pruned history %s (older than %d days)", folder.name, retention_days)
            pruned.append(folder)
    return pruned


def trailing(root: Location, name: str, hours: int) -> pd.DataFrame:
    """History rows (levels hour and category) of the ``hours`` clock hours before hour
    ``name``, less those of hours that are not complete: a partition folder without a manifest
    (a run failed or is under way there). Hours whose partition was pruned count: their rows
    were written just before their manifest."""
    from pipeline.rules.anomalies import window_hours

    first, last = window_hours(name, hours)
    rows = read_history(root, first, last, ("hour", "category"))
    listed = [n for n in partition_names(root) if first <= n <= last]
    incomplete = [
        n
        for n in listed
        if not exists(Partition(root, datetime.strptime(n, PARTITION_FORMAT)).manifest)
    ]
    return rows[~rows[PARTITION_KEY].isin(incomplete)]


def previous_complete(root: Location, name: str) -> str | None:
    """The newest partition before ``name`` with a manifest (complete), or None."""
    for candidate in reversed([n for n in partition_names(root) if n < name]):
        if exists(Partition(root, datetime.strptime(candidate, PARTITION_FORMAT)).manifest):
            return candidate
    return None
