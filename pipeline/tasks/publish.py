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
from pipeline.storage.latest import advance_latest, latest_partition, latest_reached
from pipeline.storage.layout import partition_name
from pipeline.tasks.base import PartitionTask, log
from pipeline.tasks.insights import INSIGHT_TASKS


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


def last_partition() -> str:
    """The latest partition ``latest`` may point at: the current UTC hour, give or take
    ``[run] clock_skew_minutes`` (the plain current hour while that setting is unusable: the
    run then stops at its settings check)."""
    try:
        return partition_name(config.run().last_hour())
    except ValueError:
        return partition_name(datetime.now(UTC))


class Insights(PartitionTask):
    """The whole snapshot: reconciles the figures, writes manifest.json, moves ``latest``.

    It requires what it reads, the three insights; the manifest reads the other tasks' facts
    from their stats files in the partition folder.
    """

    def requires(self) -> dict[str, luigi.Task]:
        return {name: cls(date_hour=self.date_hour) for name, cls in INSIGHT_TASKS.items()}

    def output(self) -> luigi.LocalTarget:
        return target(self.partition.manifest)

    def complete(self) -> bool:
        # Complete once the manifest exists and `latest` is at this partition or a newer one
        # (not a future one); a crash between the two leaves the task incomplete, and the rerun
        # moves `latest`.
        root, name = self.partition.root, self.partition.name
        return self.output().exists() and latest_reached(root, name, last_partition())

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
        root, name, last = self.partition.root, self.partition.name, last_partition()
        if (current := latest_partition(root)) is not None and current > last:
            log.warning("latest pointed at %s, later than the current hour; moving it", current)
        if advance_latest(root, name, last):
            log.info("latest -> %s", name)
        housekeeping.prune_partitions(root, retention, datetime.now(UTC))
        housekeeping.prune_logs(root, retention, datetime.now(UTC))
