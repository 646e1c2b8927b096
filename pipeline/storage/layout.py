"""Every path the pipeline reads or writes, built in one place from the data root and partition.

A partition is one hourly snapshot, named ``YYYY-MM-DDTHH`` (UTC) so that names sort in time
order and the command line's ``--date-hour`` value is the folder name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PARTITION_FORMAT = "%Y-%m-%dT%H"
PARTITION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}$")
LATEST = "latest"
LOCK = ".lock"  # held by the run writing a partition
LOGS = "logs"  # run_pipeline.sh's per-run log files, beside the partitions
HISTORY = "history"  # the Parquet dataset across hours, beside the partitions


def partition_name(date_hour: datetime) -> str:
    return date_hour.strftime(PARTITION_FORMAT)


@dataclass(frozen=True)
class Partition:
    """The folder of one hourly snapshot and the files inside it."""

    root: Path
    date_hour: datetime

    @property
    def name(self) -> str:
        return partition_name(self.date_hour)

    @property
    def dir(self) -> Path:
        return self.root / self.name

    def raw(self, endpoint: str) -> Path:
        return self.dir / "jsons" / f"{endpoint}.jsonl"

    def cleaned(self, name: str) -> Path:
        return self.dir / "cleaned" / f"cleaned_{name}.csv"

    @property
    def catalogue(self) -> Path:
        """Every product whatever its price: the source of names and categories."""
        return self.dir / "cleaned" / "product_catalogue.csv"

    def insight(self, name: str) -> Path:
        return self.dir / "insights" / f"{name}.csv"

    def stats(self, task_id: str) -> Path:
        """Per-task facts (timings, row counts, checks) that the manifest is assembled from."""
        return self.dir / "_stats" / f"{task_id}.json"

    def rejected(self, check: str) -> Path:
        return self.dir / "rejected" / f"{check}.csv"

    @property
    def report_dir(self) -> Path:
        """The hour's report: ``index.html`` and ``findings.md``."""
        return self.dir / "report"

    @property
    def manifest(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def lock(self) -> Path:
        return self.dir / LOCK


def logs_dir(root: Path) -> Path:
    return root / LOGS


def history_dir(root: Path) -> Path:
    return root / HISTORY


def history_hour_dir(root: Path, name: str) -> Path:
    """One hour of the history dataset, a Hive-style partition folder (``date_hour=<name>``)."""
    return history_dir(root) / f"date_hour={name}"
