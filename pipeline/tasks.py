"""Luigi tasks: wire inputs to one pure function and write the result atomically.

Graph, per hourly partition::

    ExtractEndpoint(carts|products|users) -> CleanUsers, CleanProducts, CleanCarts
        -> UserSummary, CategorySummary, CartDetails -> Insights (manifest.json, `latest`)

Every task also writes a small stats file (timings, row counts, figures); ``Insights`` assembles
them into the manifest. A task is complete when all its outputs exist, so a rerun skips it.

Failure handling (README, "Failure behaviour"): a run claims its partition's lock while it
schedules, so a second run of the same hour exits with [retcode] already_running before doing
anything; extracts re-read an endpoint after a paging anomaly; and a circuit breaker fails the
remaining extracts at once when the API has stopped answering.
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

from pipeline import cleaning, config, housekeeping, insights, manifest, quality, storage
from pipeline.client import ApiClient
from pipeline.extract import snapshot_endpoint
from pipeline.logs import task_context
from pipeline.paths import INSIGHTS, Partition, latest_partition
from pipeline.targets import (
    PartitionBusy,
    advance_latest,
    atomic_path,
    hold_partition_lock,
    read_json,
    remove_orphaned_links,
    remove_stale_temporaries,
    target,
    write_json,
)

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
            storage.write_csv(frame, tmp, money)
        return len(frame)


class ExtractEndpoint(PartitionTask):
    """Raw records of one endpoint as JSON Lines, secrets removed."""

    endpoint = luigi.ChoiceParameter(
        choices=config.ENDPOINTS, description="Which API collection to snapshot."
    )

    def stats_path(self) -> Path:
        return self.partition.stats(f"Extract-{self.endpoint}")

    def output(self) -> dict[str, luigi.LocalTarget]:
        return {"raw": target(self.partition.raw(self.endpoint)), "stats": self.stats_target()}

    def produce(self) -> dict[str, Any]:
        cfg, ext = config.api(), config.extract()

        def progress(done: int, total: int, page: int, pages: int) -> None:
            percent = 100 if total == 0 else int(100 * done / total)
            self.report(f"{self.endpoint}: {done}/{total} records, page {page}/{pages}", percent)

        with ApiClient(cfg.url(), cfg.client_settings()) as client:
            stats = snapshot_endpoint(
                client,
                self.endpoint,
                self.partition.raw(self.endpoint),
                page_size=cfg.page_size,
                concurrency=cfg.concurrency,
                max_pages=cfg.max_pages,
                drop_fields=ext.secrets() if self.endpoint == "users" else frozenset(),
                rereads=ext.rereads,
                progress=progress,
            )
            return {
                "endpoint": self.endpoint,
                "source": client.base_url,
                "url": f"{client.base_url}/{self.endpoint}",
                "api_total": stats.total,
                "records": stats.records,
                "pages": stats.pages,
                "page_length": stats.page_length,
                "requests": client.request_count,
                "bytes": stats.bytes,
                "dropped_fields": stats.dropped_fields,
            }


class CleanUsers(PartitionTask):
    """cleaned_users.csv: one row per user, address flattened."""

    def requires(self) -> ExtractEndpoint:
        return ExtractEndpoint(endpoint="users", date_hour=self.date_hour)

    def output(self) -> dict[str, luigi.LocalTarget]:
        return {"users": target(self.partition.cleaned("users")), "stats": self.stats_target()}

    def produce(self) -> dict[str, Any]:
        users = cleaning.clean_users(storage.read_users(Path(self.input()["raw"].path)))
        quality.enforce(
            quality.id_findings(users, "user", "user_id"), config.quality().max_bad_rows
        )
        rows = self.write_frame(users, self.partition.cleaned("users"))
        self.report(f"cleaned_users.csv: {rows} rows", 100)
        return {"rows": {"cleaned_users.csv": rows}}


class CleanProducts(PartitionTask):
    """cleaned_products.csv (priced above the minimum) and the full product_catalogue.csv."""

    def requires(self) -> ExtractEndpoint:
        return ExtractEndpoint(endpoint="products", date_hour=self.date_hour)

    def output(self) -> dict[str, luigi.LocalTarget]:
        return {
            "products": target(self.partition.cleaned("products")),
            "catalogue": target(self.partition.catalogue),
            "stats": self.stats_target(),
        }

    def produce(self) -> dict[str, Any]:
        min_price = config.clean().min_product_price
        catalogue = cleaning.product_catalogue(
            storage.read_products(Path(self.input()["raw"].path))
        )
        quality.enforce(
            quality.id_findings(catalogue, "product", "product_id"), config.quality().max_bad_rows
        )
        products = cleaning.clean_products(catalogue, min_price)
        out = self.output()
        rows = {
            "product_catalogue.csv": self.write_frame(
                catalogue, Path(out["catalogue"].path), ("price",)
            ),
            "cleaned_products.csv": self.write_frame(
                products, Path(out["products"].path), ("price",)
            ),
        }
        self.report(f"cleaned_products.csv: {rows['cleaned_products.csv']} rows", 100)
        return {"rows": rows, "min_product_price": min_price}


class CleanCarts(PartitionTask):
    """cleaned_carts.csv: one row per cart line, after the quality gates on carts."""

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "carts": ExtractEndpoint(endpoint="carts", date_hour=self.date_hour),
            "users": CleanUsers(date_hour=self.date_hour),
            "products": CleanProducts(date_hour=self.date_hour),
        }

    def output(self) -> dict[str, luigi.LocalTarget]:
        return {"carts": target(self.partition.cleaned("carts")), "stats": self.stats_target()}

    def produce(self) -> dict[str, Any]:
        inputs = self.input()
        users = storage.read_csv(Path(inputs["users"]["users"].path))
        catalogue = storage.read_csv(Path(inputs["products"]["catalogue"].path))
        checked = quality.check_carts(
            *storage.read_carts(Path(inputs["carts"]["raw"].path)),
            users["user_id"],
            catalogue["product_id"],
        )
        self.write_rejected(checked.findings)
        warnings = quality.enforce(checked.findings, config.quality().max_bad_rows)
        rows = self.write_frame(
            checked.lines, self.partition.cleaned("carts"), cleaning.CART_MONEY_COLUMNS
        )
        self.report(f"cleaned_carts.csv: {rows} rows", 100)
        return {
            "rows": {"cleaned_carts.csv": rows},
            **checked.figures(),
            "quality_warnings": warnings,
        }

    def write_rejected(self, findings: list[quality.Finding]) -> None:
        """Offending rows go to rejected/<check>.csv; a passing check removes a stale file."""
        for finding in findings:
            path = self.partition.rejected(finding.check)
            if finding.count:
                self.write_frame(finding.rows, path)
            else:
                path.unlink(missing_ok=True)


class InsightTask(PartitionTask):
    """Base of the three insight files: read cleaned inputs, compute, check, write."""

    name: ClassVar[str]
    money: ClassVar[tuple[str, ...]] = ()  # columns rounded to cents when written
    line_columns: ClassVar[tuple[str, ...] | None] = None  # of cleaned_carts.csv; None: all
    #: (money column, units column) that must add up to the cart lines; None: no total
    totals: ClassVar[tuple[str, str] | None] = None

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "carts": CleanCarts(date_hour=self.date_hour),
            "users": CleanUsers(date_hour=self.date_hour),
            "products": CleanProducts(date_hour=self.date_hour),
        }

    def output(self) -> dict[str, luigi.LocalTarget]:
        return {"insight": target(self.partition.insight(self.name)), "stats": self.stats_target()}

    def lines(self) -> pd.DataFrame:
        return storage.read_csv(Path(self.input()["carts"]["carts"].path), self.line_columns)

    def users(self) -> pd.DataFrame:
        return storage.read_csv(Path(self.input()["users"]["users"].path))

    def catalogue(self) -> pd.DataFrame:
        return storage.read_csv(Path(self.input()["products"]["catalogue"].path))

    def compute(self) -> pd.DataFrame:
        """Call the insight's pure function on the inputs it needs."""
        raise NotImplementedError

    def produce(self) -> dict[str, Any]:
        frame = self.compute()
        facts: dict[str, Any] = {}
        if self.totals:
            lines = read_json(Path(self.input()["carts"]["stats"].path))
            facts = insights.check_against_lines(
                frame, self.name, *self.totals, lines["line_total"], lines["units"]
            )
        rows = self.write_frame(frame, self.partition.insight(self.name), self.money)
        self.report(f"{self.name}.csv: {rows} rows", 100)
        return {"rows": {f"{self.name}.csv": rows}, **facts}


class UserSummary(InsightTask):
    """user_summary.csv: carts, units and spend per user who has a cart."""

    name = "user_summary"
    money = insights.USER_SUMMARY_MONEY
    line_columns = insights.USER_SUMMARY_LINE_COLUMNS
    totals = ("total_spent", "total_items")

    def compute(self) -> pd.DataFrame:
        return insights.user_summary(self.lines(), self.users())


class CategorySummary(InsightTask):
    """category_summary.csv: sales and units per category over every cart line."""

    name = "category_summary"
    money = insights.CATEGORY_SUMMARY_MONEY
    line_columns = insights.CATEGORY_SUMMARY_LINE_COLUMNS
    totals = ("total_sales", "total_items_sold")

    def compute(self) -> pd.DataFrame:
        return insights.category_summary(self.lines(), self.catalogue())


class CartDetails(InsightTask):
    """cart_details.csv: every cart line with buyer and product attributes."""

    name = "cart_details"
    money = insights.CART_DETAIL_MONEY

    def compute(self) -> pd.DataFrame:
        return insights.cart_details(self.lines(), self.users(), self.catalogue())


INSIGHT_TASKS: dict[str, type[InsightTask]] = {
    t.name: t for t in (UserSummary, CategorySummary, CartDetails)
}
assert tuple(INSIGHT_TASKS) == INSIGHTS


class Insights(PartitionTask):
    """The whole snapshot: reconciles the figures, writes manifest.json, moves ``latest``."""

    def requires(self) -> dict[str, luigi.Task]:
        deps: dict[str, luigi.Task] = {
            f"extract_{e}": ExtractEndpoint(endpoint=e, date_hour=self.date_hour)
            for e in config.ENDPOINTS
        }
        deps.update(
            clean_users=CleanUsers(date_hour=self.date_hour),
            clean_products=CleanProducts(date_hour=self.date_hour),
            clean_carts=CleanCarts(date_hour=self.date_hour),
        )
        deps.update({name: cls(date_hour=self.date_hour) for name, cls in INSIGHT_TASKS.items()})
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
