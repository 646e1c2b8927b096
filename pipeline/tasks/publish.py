"""Publish: reconcile, write manifest.json last, move ``latest``, apply retention.

A complete hour is never rebuilt silently: run with options that differ from those its manifest
records, it says that nothing ran and how to rebuild it (``python -m pipeline rerun``).
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import luigi
from luigi.task import flatten

from pipeline import clock, config, interrupts
from pipeline.logs import task_context, to_console
from pipeline.ops import housekeeping
from pipeline.storage.atomic import read_json, target, write_json
from pipeline.storage.fs import ObjectPath, exists, partition_names
from pipeline.storage.latest import advance_latest, latest_partition, latest_reached
from pipeline.storage.layout import Partition, partition_name
from pipeline.suggested import command
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


def last_partition() -> str:
    """The latest partition ``latest`` may point at: the current UTC hour, give or take
    ``[run] clock_skew_minutes`` (the plain current hour while that setting is unusable: the
    run then stops at its settings check)."""
    try:
        return partition_name(config.run().last_hour())
    except ValueError:
        return partition_name(clock.current_hour())


#: What a manifest records of the options that shape a partition: key -> (section, option).
RECORDED = {"min_product_price": ("clean", "min_product_price"), "source": ("api", "base_url")}


def _current(section: str, option: str) -> Any:
    return config.api().url() if (section, option) == ("api", "base_url") else (
        getattr(getattr(config, section)(), option)
    )  # fmt: skip


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Insights(PartitionTask):
    """The whole snapshot: reconciles the figures, writes manifest.json, moves ``latest``.

    It requires the hour's report, which is written from the insights and the history; the
    manifest reads every task's facts from its stats file in the partition folder.
    """

    def requires(self) -> dict[str, luigi.Task]:
        return {"report": HourReport(date_hour=self.date_hour)}

    def output(self) -> luigi.Target:
        return target(self.partition.manifest)

    @classmethod
    def bulk_complete(cls, parameter_tuples: Iterable[datetime]) -> list[datetime]:
        """The complete hours among ``parameter_tuples``: one listing of the data root, one read
        of ``latest``, then the manifest of each listed hour (a HEAD request each on s3://; hours
        not listed cost nothing). What luigi's range tools (``InsightsRange``) ask instead of
        ``complete()`` hour by hour, so a backfill finds its gaps in bulk."""
        root = config.paths().root()
        present = set(partition_names(root))
        current, last = latest_partition(root), last_partition()
        if current is None or current > last:  # nothing published yet, or `latest` is ahead
            return []
        return [
            hour
            for hour in parameter_tuples
            if (name := partition_name(hour)) in present
            and name <= current
            and exists(Partition(root, hour).manifest)
        ]

    def is_complete(self) -> bool:
        # Complete once the manifest exists and `latest` is at this partition or a newer one
        # (not a future one); a crash between the two leaves the task incomplete, and the rerun
        # moves `latest`.
        root, name = self.partition.root, self.partition.name
        return self.output().exists() and latest_reached(root, name, last_partition())

    def differences(self) -> list[tuple[str, Any, Any]]:
        """(section and option, value in the manifest, value this run would use) for each option
        that this complete partition was built with otherwise."""
        try:
            manifest = read_json(self.partition.manifest)
        except (OSError, ValueError):
            return []
        found = []
        for key, (section, option) in RECORDED.items():
            if key in manifest and manifest[key] != (now := _current(section, option)):
                found.append((f"[{section}] {option}", manifest[key], now))
        return found

    def rerun_command(self, differences: list[tuple[str, Any, Any]]) -> str:
        """The command that rebuilds this hour with this run's options."""
        words, env = ["rerun", "--date-hour", self.partition.name], []
        for setting, _, now in differences:
            if setting == "[api] base_url" and os.environ.get("PIPELINE_API_URL"):
                env.append(f"PIPELINE_API_URL={shlex.quote(str(now))} ")
            else:
                flag = setting.replace("[", "--").replace("] ", "-").replace("_", "-")
                words += [flag, _shown(now)]
        return "".join(env) + command(*words, in_checkout=True)

    # luigi runs what a generator run() yields as dynamic dependencies; PartitionTask's does not.
    def run(self) -> Iterator[list[luigi.Task]]:  # type: ignore[override]
        interrupts.check()
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
        """Manifest first, then ``latest``, then retention: a reader never sees less. Between the
        manifest and ``latest``, this hour's report and the next complete hour's are brought up
        to date (``report.hour.refresh_around``): they may have compared with an older hour."""
        from pipeline.ops.rerun import HalfSwapped
        from pipeline.report import hour
        from pipeline.rules import manifest

        if exists(self.partition.swapping):  # plain luigi too: only the rerun may finish it
            raise HalfSwapped(
                f"{self.partition.name}: a rerun's swap of it was cut short "
                f"({self.partition.swapping} is there); it is part old, part rebuilt"
            )
        retention = housekeeping.housekeeping().retention_hours
        if retention < 1:  # checked before publishing, not after
            raise config.ConfigError(
                f"[housekeeping] retention_hours must be >= 1, got {retention}"
            )
        facts = None if self.output().exists() else manifest.build(self.partition)
        root, name, last = self.partition.root, self.partition.name, last_partition()
        # The manifest, the reports brought up to date and `latest`: a signal waits for them.
        with interrupts.deferred():
            if facts is not None:
                write_json(self.partition.manifest, facts)
            for line in hour.refresh_around(root, name):
                to_console(log, logging.INFO, line)
            if (current := latest_partition(root)) is not None and current > last:
                log.warning("latest pointed at %s, later than the current hour; moving it", current)
            if advance_latest(root, name, last):
                log.info("latest -> %s", name)
        now = clock.now()
        housekeeping.prune_partitions(root, retention, now)
        housekeeping.prune_logs(root, retention, now)
        if isinstance(self.partition.lock, ObjectPath):  # the hour is done: free its claim
            from pipeline.storage import lease

            lease.release(self.partition.lock)


@Insights.event_handler(luigi.Event.DEPENDENCY_PRESENT)
def _already_complete(task: Insights) -> None:
    """A complete hour ends with its summary; asked for with other options, the run also says
    that nothing ran, and how to rebuild the hour."""
    _print_summary(task)
    found = task.differences()
    if not found:
        return
    built = "; ".join(
        f"{setting} = {_shown(was)} (this run: {_shown(now)})" for setting, was, now in found
    )
    to_console(
        log,
        logging.WARNING,
        f"{task.partition.name} is already complete, built with {built}: nothing ran.\n"
        f"To rebuild it with this run's options: {task.rerun_command(found)}",
    )


def _print_summary(task: Insights) -> None:
    """The hour's result in a few lines on the console (pandas loads only now, not at import).
    Not in a rerun's staging root: its paths go away, and the rerun prints it once swapped in."""
    from pipeline.ops.rerun import is_staging
    from pipeline.report.summary import print_summary

    if not is_staging(task.partition.root):
        print_summary(task.partition.root, task.partition.name)
