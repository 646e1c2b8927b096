"""The base of every task: one hourly partition, atomic outputs, a stats file, the lock.

Every task writes a small stats file (timings, row counts, figures) last; ``Insights`` assembles
them into the manifest. A task is complete when all its outputs exist, so a rerun skips it.

A run claims its partition's lock while it schedules, so a second run of the same hour exits
with [retcode] already_running before doing anything.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import luigi
import luigi.interface
import pandas as pd

from pipeline import config
from pipeline.logs import task_context
from pipeline.storage import formats
from pipeline.storage.atomic import (
    atomic_path,
    remove_orphaned_links,
    remove_stale_temporaries,
    target,
    write_json,
)
from pipeline.storage.layout import Partition
from pipeline.storage.locks import PartitionBusy, hold_partition_lock

log = logging.getLogger("luigi-interface.pipeline")


def _current_hour() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)


class PartitionBusyExit(luigi.interface.PidLockAlreadyTakenExit):
    """Raised while scheduling: luigi then exits with [retcode] already_running (10)."""


class PartitionTask(luigi.Task):
    """Base: one hourly partition, atomic outputs, a stats file, the partition lock."""

    date_hour = luigi.DateHourParameter(
        default=_current_hour(),
        description="The UTC hour this snapshot belongs to (e.g. 2026-11-25T17); its folder name.",
    )
    stats_name: ClassVar[str] = ""

    @property
    def partition(self) -> Partition:
        return Partition(config.paths().root(), self.date_hour)

    def stats_path(self) -> Path:
        return self.partition.stats(self.stats_name or self.get_task_family())

    def stats_target(self) -> luigi.LocalTarget:
        return target(self.stats_path())

    def produce(self) -> dict[str, Any]:
        """Do the work and write the data outputs; return facts for the manifest."""
        raise NotImplementedError

    def claim(self) -> None:
        """Lock the partition for this process before anything is checked or written.

        ``complete()`` is the first thing luigi asks of each task while scheduling, so a second
        run of a partition being written stops there, schedules nothing and exits with
        [retcode] already_running, as luigi does for a duplicate command line or for a task
        that a central scheduler sees running elsewhere. The first claim also sweeps temporary
        files that a killed run left behind.
        """
        os.umask(0o027)  # data may hold personal fields: not world-readable
        try:
            fresh = hold_partition_lock(self.partition.lock)
        except PartitionBusy as exc:
            log.error("%s", exc)
            raise PartitionBusyExit(str(exc)) from None
        if fresh:
            stale = remove_stale_temporaries(self.partition.dir)
            for path in stale + remove_orphaned_links(self.partition.root):
                log.info("removed %s, left by an interrupted run", path)

    def complete(self) -> bool:
        self.claim()
        return super().complete()

    def hold(self) -> None:
        """Before writing: files not world-readable, and the partition ours (claimed while
        scheduling; this fails if another run took it since)."""
        os.umask(0o027)
        hold_partition_lock(self.partition.lock)

    def run(self) -> None:
        self.hold()
        started, t0 = datetime.now(UTC), time.perf_counter()
        with task_context(self.stats_path().stem):
            facts = self.produce()
        facts.update(
            task=self.task_id,
            started=started.isoformat(timespec="milliseconds"),
            finished=datetime.now(UTC).isoformat(timespec="milliseconds"),
            seconds=round(time.perf_counter() - t0, 3),
        )
        write_json(self.stats_path(), facts)  # last: its presence marks the task complete

    def report(self, message: str, percent: int | None = None) -> None:
        """Show progress in the luigid visualiser (a no-op without a scheduler)."""
        self.set_status_message(message)
        if percent is not None:
            self.set_progress_percentage(percent)

    def write_frame(self, frame: pd.DataFrame, path: Path, money: tuple[str, ...] = ()) -> int:
        with atomic_path(path) as tmp:
            formats.write_csv(frame, tmp, money)
        return len(frame)

    def write_exact(self, frame: pd.DataFrame, path: Path) -> None:
        with atomic_path(path) as tmp:
            formats.write_exact(frame, tmp)
