"""Publish: reconcile, write manifest.json last, move ``latest``, apply retention."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import luigi

from pipeline import config
from pipeline.logs import task_context
from pipeline.ops import housekeeping
from pipeline.report.summary import print_summary
from pipeline.rules import manifest
from pipeline.schema import ENDPOINTS
from pipeline.storage.atomic import read_json, target, write_json
from pipeline.storage.latest import advance_latest, latest_partition
from pipeline.tasks.base import PartitionTask, log
from pipeline.tasks.clean import CleanCarts, CleanProducts, CleanUsers
from pipeline.tasks.extract import ExtractEndpoint
from pipeline.tasks.insights import INSIGHT_TASKS
from pipeline.tasks.report import HistoryHour, HourReport


class Insights(PartitionTask):
    """The whole snapshot: reconciles the figures, writes manifest.json, moves ``latest``."""

    def requires(self) -> dict[str, luigi.Task]:
        deps: dict[str, luigi.Task] = {
            f"extract_{e}": ExtractEndpoint(endpoint=e, date_hour=self.date_hour) for e in ENDPOINTS
        }
        deps.update(
            clean_users=CleanUsers(date_hour=self.date_hour),
            clean_products=CleanProducts(date_hour=self.date_hour),
            clean_carts=CleanCarts(date_hour=self.date_hour),
        )
        deps.update({name: cls(date_hour=self.date_hour) for name, cls in INSIGHT_TASKS.items()})
        deps.update(
            history=HistoryHour(date_hour=self.date_hour),
            report=HourReport(date_hour=self.date_hour),
        )
        return deps

    def output(self) -> luigi.LocalTarget:
        return target(self.partition.manifest)

    def complete(self) -> bool:
        # Complete once the manifest exists and `latest` is at this partition or a newer one;
        # a crash between the two leaves the task incomplete, and the rerun moves `latest`.
        self.claim()
        if not self.output().exists():
            return False
        current = latest_partition(self.partition.root)
        return current is not None and current >= self.partition.name

    def run(self) -> None:
        self.hold()
        with task_context("Insights"):
            self.publish()
        print_summary(self.partition.root, self.partition.name)

    def publish(self) -> None:
        """Manifest first, then ``latest``, then retention: a reader never sees less."""
        retention = housekeeping.housekeeping().retention_hours
        if retention < 1:  # checked before publishing, not after
            raise config.ConfigError(
                f"[housekeeping] retention_hours must be >= 1, got {retention}"
            )
        if not self.output().exists():
            stats = {key: read_json(Path(out["stats"].path)) for key, out in self.input().items()}
            write_json(self.partition.manifest, manifest.build(self.partition.name, stats))
        root, name = self.partition.root, self.partition.name
        if advance_latest(root, name):
            log.info("latest -> %s", name)
        housekeeping.prune_partitions(root, retention, datetime.now(UTC))
        housekeeping.prune_logs(root, retention, datetime.now(UTC))


@Insights.event_handler(luigi.Event.DEPENDENCY_PRESENT)
def _summarise_complete_hour(task: Insights) -> None:
    """A run that finds its hour already complete ends with the hour's summary too."""
    print_summary(task.partition.root, task.partition.name)
