"""Every path the pipeline reads or writes, built in one place from the data root and partition.

A partition is one hourly snapshot, named ``YYYY-MM-DDTHH`` (UTC) so that names sort in time
order and the command line's ``--date-hour`` value is the folder name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from pipeline.checkout import CHECKOUT
from pipeline.schema import ENDPOINTS, INSIGHTS
from pipeline.storage.location import Location, ObjectPath

PARTITION_FORMAT = "%Y-%m-%dT%H"
PARTITION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}$")
LATEST = "latest"
LOCK = ".lock"  # held by the run writing a partition
REPORT = "report"  # a partition's report folder
SWAPPING = ".swapping"  # a rerun is swapping its rebuild in: the partition is part old, part new
LOGS = "logs"  # per-run log files of `python -m pipeline run` and failed-run.env: per host
LOG_DIR_ENV = "PIPELINE_LOG_DIR"  # where they go on this host when the data root is a bucket
#: Under ``logs_dir``: the run under way or the last one that failed (its hour, exit code, log).
FAILED_RUN = "failed-run.env"
HISTORY = "history"  # the Parquet dataset across hours, beside the partitions
CLEANED = ("users", "products", "carts")  # the cleaned tables, in the order they are built


def camel(name: str) -> str:
    """``user_summary`` -> ``UserSummary``: the task family that writes a table."""
    return "".join(part.capitalize() for part in name.split("_"))


#: The stats file under ``_stats/`` of every task that writes data, keyed as the manifest lists
#: the task (its family in snake case). Each is named after its task's family, except the
#: extracts': they keep ``Extract-<endpoint>``, the name partitions already written carry.
STATS: dict[str, str] = {
    **{f"extract_{e}": f"Extract-{e}" for e in ENDPOINTS},
    **{f"clean_{t}": f"Clean{camel(t)}" for t in CLEANED},
    **{name: camel(name) for name in INSIGHTS},
    # the hour's report and its history rows (pipeline/tasks/report.py)
    "history_hour": "HistoryHour",
    "hour_report": "HourReport",
}


def partition_name(date_hour: datetime) -> str:
    return date_hour.strftime(PARTITION_FORMAT)


#: A folder of the data root, of whichever kind: what is under a ``Path`` is a ``Path``, under an
#: ``ObjectPath`` an ``ObjectPath``, under either (``Location``) either.
L = TypeVar("L", Path, ObjectPath, Location)


@dataclass(frozen=True)
class Partition(Generic[L]):
    """The folder of one hourly snapshot and the files inside it."""

    root: L
    date_hour: datetime

    @property
    def name(self) -> str:
        return partition_name(self.date_hour)

    @property
    def dir(self) -> L:
        return self.root / self.name

    def raw(self, endpoint: str) -> L:
        return self.dir / "jsons" / f"{endpoint}.jsonl"

    def cleaned(self, name: str) -> L:
        return self.dir / "cleaned" / f"cleaned_{name}.csv"

    @property
    def catalogue(self) -> L:
        """Every product whatever its price: the source of names and categories."""
        return self.dir / "cleaned" / "product_catalogue.csv"

    def exact(self, name: str) -> L:
        """A cleaned table in Arrow's format for later tasks, not an output: the cart lines with
        money unrounded (for the sums), the users' columns the insights read (not a parse)."""
        return self.dir / "_exact" / f"{name}.arrow"

    def insight(self, name: str) -> L:
        return self.dir / "insights" / f"{name}.csv"

    def stats(self, key: str) -> L:
        """Facts (timings, row counts, checks) of the task ``key`` of ``STATS``: the manifest is
        assembled from them."""
        return self.dir / "_stats" / f"{STATS[key]}.json"

    def rejected(self, check: str) -> L:
        return self.dir / "rejected" / f"{check}.csv"

    @property
    def report_dir(self) -> L:
        """The hour's report: ``index.html`` and ``findings.md``."""
        return self.dir / REPORT

    @property
    def manifest(self) -> L:
        return self.dir / "manifest.json"

    @property
    def lock(self) -> L:
        return self.dir / LOCK

    @property
    def report_lock(self) -> L:
        """Held while the report is re-rendered (``report.hour.report_lock``), on object stores:
        a lease object as ``lock``; local roots lock the partition's folder instead."""
        return self.report_dir / LOCK

    @property
    def swapping(self) -> L:
        """There while a rerun swaps its rebuild in (and after, if the swap was cut short): a
        plain run of the hour must not publish it, the same rerun finishes it."""
        return self.dir / SWAPPING


def logs_dir(root: Path | ObjectPath) -> Path:
    """Run logs and ``failed-run.env``: what belongs to this host. Beside the partitions on a
    local root; with an object-store root, on this host (``$PIPELINE_LOG_DIR``, default
    ``logs/`` in the checkout), where the systemd failure unit and an operator read them."""
    if isinstance(root, Path):
        return root / LOGS
    return Path(os.environ.get(LOG_DIR_ENV) or CHECKOUT / LOGS).absolute()


def history_dir(root: L) -> L:
    return root / HISTORY


def history_hour_dir(root: L, name: str) -> L:
    """One hour of the history dataset, a Hive-style partition folder (``date_hour=<name>``)."""
    return history_dir(root) / f"date_hour={name}"


HISTORY_FILE = "part-0.parquet"


def history_file(root: L, name: str) -> L:
    """The one Parquet file of hour ``name``'s history rows."""
    return history_hour_dir(root, name) / HISTORY_FILE
