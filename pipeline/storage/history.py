"""The history dataset on disk, and the earlier snapshots the report compares an hour with.

``<data root>/history/date_hour=YYYY-MM-DDTHH/part-0.parquet``: one Parquet file per hour in
Hive-style folders, so ``pd.read_parquet(root / "history")``, ``pyarrow.dataset`` or DuckDB's
``read_parquet('history/*/*.parquet', hive_partitioning = true)`` read all hours as one table.

An hour's file is written to a hidden temporary name and renamed onto ``part-0.parquet``, so a
rerun of the hour replaces its rows (never adds to them), and readers, which skip names starting
with ``.``, see the old file or the new one. Hours older than ``[history] retention_days`` are
deleted after each run, independently of the partitions' retention.
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


def write_hour(root: Path, name: str, rows: pd.DataFrame) -> Path:
    """Write (or replace) hour ``name``'s rows atomically; only call holding the hour's lock."""
    path = hour_file(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temporaries(path.parent):  # left by a killed run of this hour
        log.info("removed %s, left by an interrupted run", stale)
    table = pa.Table.from_pandas(rows, schema=SCHEMA, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def read_history(
    root: Path,
    first: str | None = None,
    last: str | None = None,
    levels: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Rows of hours ``first`` to ``last`` (names, both included; None: unbounded) of the given
    ``levels``, with their ``date_hour``; empty (with every column) when there is no history.

    Filters on the partition key skip other hours' files unread.
    """
    columns = [*COLUMNS, PARTITION_KEY]
    base = history_dir(root)
    if not base.is_dir():
        return pd.DataFrame({c: pd.Series(dtype=COLUMNS.get(c, "string")) for c in columns})
    dataset = ds.dataset(base, format="parquet", partitioning=PARTITIONING, schema=_with_key())
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
    return frame.astype({PARTITION_KEY: "string", "level": "string", "category": "string"})


def _with_key() -> pa.Schema:
    return SCHEMA.append(pa.field(PARTITION_KEY, pa.string()))


def _hour_of(path: Path) -> datetime | None:
    name = path.name.removeprefix(_PREFIX)
    if not path.name.startswith(_PREFIX) or not PARTITION_RE.match(name) or not path.is_dir():
        return None
    try:
        return datetime.strptime(name, HOUR_FORMAT)
    except ValueError:
        return None


def prune_history(root: Path, retention_days: int, now: datetime, keep: str) -> list[Path]:
    """Delete the hours that began ``retention_days`` days or more before ``now``'s hour, but
    never hour ``keep`` (the one this run wrote). Returns the deleted folders, oldest first.

    A folder is renamed out of the dataset before it is deleted, so a crash never leaves half
    an hour in it; a folder another run deletes at the same moment is skipped.
    """
    if retention_days < 1:
        raise ValueError(f"[history] retention_days must be >= 1, got {retention_days}")
    base = history_dir(root)
    if not base.is_dir():
        return []
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)
    cutoff = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=retention_days)
    for leftover in base.glob(f".*{_DELETING}"):  # from a crash in an earlier prune
        shutil.rmtree(leftover, ignore_errors=True)
    pruned = []
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


def previous_complete(root: Path, name: str) -> str | None:
    """The newest partition before ``name`` with a manifest (complete), or None."""
    earlier = [
        p.name
        for p in Path(root).iterdir()
        if PARTITION_RE.match(p.name) and p.name < name and not p.is_symlink()
    ]
    for candidate in sorted(earlier, reverse=True):
        if Partition(root, datetime.strptime(candidate, PARTITION_FORMAT)).manifest.is_file():
            return candidate
    return None
