"""Publish: reconcile, write manifest.json last, move ``latest``, apply retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import luigi
from luigi.task import flatten

from pipeline import config
from pipeline.logs import task_context
from pipeline.ops import housekeeping
from pipeline.storage.atomic import target, write_json
from pipeline.storage.fs import ObjectPath
from pipeline.storage.latest import advance_latest, latest_reached
from pipeline.tasks.base import PartitionTask, log
from pipeline.tasks.report import HourReport


def upstream(task: luigi.Task) -> list[luigi.Task]:
    """Every task ``task`` depends on, directly or not."""
    found: dict[str, luigi.Task] = {}
    todo = flatten(task.requires())
    while todo:
        dep = todo.pop()
        if dep.task_id not in found:
            found[dep.task_id] = dep
            todo.extend(flatten(dep.requires()))
    return list(found.values())


class Insights(PartitionTask):
    """The whole snapshot: reconciles the figures, writes manifest.json, moves ``latest``.

    It requires the hour's report, which is written from the insights and the history; the
    manifest reads every task's facts from its stats file in the partition folder.
    """

    def requires(self) -> dict[str, luigi.Task]:
        return {"report": HourReport(date_hour=self.date_hour)}

    def output(self) -> luigi.Target:
        return target(self.partition.manifest)

    def is_complete(self) -> bool:
        # Complete once the manifest exists and `latest` is at this partition or a newer one;
        # a crash between the two leaves the task incomplete, and the rerun moves `latest`.
        return self.output().exists() and latest_reached(self.partition.root, self.partition.name)

    def run(self) -> Iterator[list[luigi.Task]]:
        self.claim()
        if not self.output().exists():
            # An upstream task whose outputs or stats went missing after its dependents ran
            # (removed by hand) is redone first: luigi runs what is yielded, then this again.
            missing = [task for task in upstream(self) if not task.complete()]
            if missing:
                yield missing
        with task_context("Insights"):
            self.publish()
        _print_summary(self)

    def publish(self) -> None:
        """Manifest first, then ``latest``, then retention: a reader never sees less."""
        from pipeline.rules import manifest

        retention = housekeeping.housekeeping().retention_hours
        if retention < 1:  # checked before publishing, not after
            raise config.ConfigError(
                f"[housekeeping] retention_hours must be >= 1, got {retention}"
            )
        if not self.output().exists():
            write_json(self.partition.manifest, manifest.build(self.partition))
        root, name = self.partition.root, self.partition.name
        if advance_latest(root, name):
            log.info("latest -> %s", name)
        housekeeping.prune_partitions(root, retention, datetime.now(UTC))
        housekeeping.prune_logs(root, retention, datetime.now(UTC))
        if isinstance(self.partition.lock, ObjectPath):  # the hour is done: free its claim
            from pipeline.storage import lease

            lease.release(self.partition.lock)


@Insights.event_handler(luigi.Event.DEPENDENCY_PRESENT)
def _summarise_complete_hour(task: Insights) -> None:
    """A run that finds its hour already complete ends with the hour's summary too."""
    _print_summary(task)


def _print_summary(task: Insights) -> None:
    """The hour's result in a few lines on the console (pandas loads only now, not at import)."""
    from pipeline.report.summary import print_summary

    print_summary(task.partition.root, task.partition.name)
