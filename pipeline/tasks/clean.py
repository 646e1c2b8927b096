"""Clean: raw JSON Lines become tidy CSVs, after the quality gates."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import luigi

from pipeline import config
from pipeline.concurrency import ordered_map
from pipeline.storage.atomic import atomic_path, target
from pipeline.storage.fs import delete, local_copy
from pipeline.storage.layout import Partition
from pipeline.tasks.base import PartitionTask, log
from pipeline.tasks.extract import EXTRACTS

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.rules import quality
    from pipeline.storage import formats


class CleanUsers(PartitionTask):
    """cleaned_users.csv: one row per user, address flattened; and ``_exact/users.arrow``, a copy
    of the columns the later tasks read (``formats.write_copy``), so that they do not parse it."""

    def requires(self) -> luigi.Task:
        return EXTRACTS["users"](date_hour=self.date_hour)

    def output(self) -> dict[str, luigi.Target]:
        return {
            "users": target(self.partition.cleaned("users")),
            "copy": target(self.partition.exact("users")),
            "stats": self.stats_target(),
        }

    def produce(self) -> dict[str, Any]:
        from pipeline.rules import cleaning, insights, quality
        from pipeline.storage import formats

        with local_copy(self.input()["raw"]) as raw:
            users = cleaning.clean_users(formats.read_users(raw))
        findings = quality.id_findings(users, "user", "user_id")
        gate(self.partition, findings)
        rows = self.write_frame(users, self.partition.cleaned("users"))
        with atomic_path(self.partition.exact("users")) as tmp:
            formats.write_copy(users, tmp, insights.USER_COLUMNS_READ)
        self.report(f"cleaned_users.csv: {rows} rows", 100)
        return {"rows": {"cleaned_users.csv": rows}, "gates": gate_counts(findings)}


class CleanProducts(PartitionTask):
    """cleaned_products.csv (priced above the minimum) and the full product_catalogue.csv."""

    def requires(self) -> luigi.Task:
        return EXTRACTS["products"](date_hour=self.date_hour)

    def output(self) -> dict[str, luigi.Target]:
        return {
            "products": target(self.partition.cleaned("products")),
            "catalogue": target(self.partition.catalogue),
            "stats": self.stats_target(),
        }

    def produce(self) -> dict[str, Any]:
        from pipeline.rules import cleaning, quality
        from pipeline.storage import formats

        min_price = config.clean().min_product_price
        with local_copy(self.input()["raw"]) as raw:
            catalogue = cleaning.product_catalogue(formats.read_products(raw))
        findings = quality.id_findings(catalogue, "product", "product_id")
        gate(self.partition, findings)
        products = cleaning.clean_products(catalogue, min_price)
        rows = {
            "product_catalogue.csv": self.write_frame(
                catalogue, self.partition.catalogue, ("price",)
            ),
            "cleaned_products.csv": self.write_frame(
                products, self.partition.cleaned("products"), ("price",)
            ),
        }
        self.report(f"cleaned_products.csv: {rows['cleaned_products.csv']} rows", 100)
        return {"rows": rows, "min_product_price": min_price, "gates": gate_counts(findings)}


class CleanCarts(PartitionTask):
    """cleaned_carts.csv: one row per cart line, after the quality gates on carts.

    The carts are streamed in batches of whole carts, and each batch is checked and written as
    it comes: memory holds the users' and products' ids and a batch, never every cart line.
    """

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "carts": EXTRACTS["carts"](date_hour=self.date_hour),
            "users": CleanUsers(date_hour=self.date_hour),
            "products": CleanProducts(date_hour=self.date_hour),
        }

    def output(self) -> dict[str, luigi.Target]:
        return {
            "carts": target(self.partition.cleaned("carts")),
            "exact": target(self.partition.exact("cart_lines")),  # what the insights read
            "stats": self.stats_target(),
        }

    def produce(self) -> dict[str, Any]:
        from pipeline.storage import formats

        inputs = self.input()
        with local_copy(inputs["users"]["copy"]) as path:
            user_ids = formats.read_copy(path, ["user_id"])["user_id"]
        with local_copy(inputs["products"]["catalogue"]) as path:
            product_ids = formats.read_csv(path, ["product_id"])["product_id"]
        with local_copy(inputs["carts"]["raw"]) as path:
            try:
                return self.stream(path, user_ids, product_ids, in_order=True)
            except formats.CartsOutOfOrder:
                log.info("carts.jsonl is not in cart-id order: sorting it first")
                return self.stream(path, user_ids, product_ids, in_order=False)

    def stream(
        self, raw: Path, user_ids: pd.Series, product_ids: pd.Series, in_order: bool
    ) -> dict[str, Any]:
        """Check and clean the carts batch by batch, writing each batch's lines as it comes.

        Batches are checked on several threads (``concurrency.ordered_map``), and written, their
        findings tallied, in the order of the file.

        The lines go to cleaned_carts.csv (money at cents) and to ``_exact/cart_lines.arrow``
        (money as computed, for the insights). Neither is published unless every batch was read
        and the quality gates pass; the rejected rows are written either way.
        """
        from pipeline.rules import cleaning, quality
        from pipeline.storage import formats

        users, products = quality.id_index(user_ids), quality.id_index(product_ids)
        figures: list[dict[str, Any]] = []
        tallies: dict[str, quality.Tally] = {}
        csv_path, exact_path = self.partition.cleaned("carts"), self.partition.exact("cart_lines")
        with (
            Rejected(self.partition) as rejected,
            atomic_path(csv_path) as csv_tmp,
            atomic_path(exact_path) as exact_tmp,
        ):
            with (
                formats.CsvWriter(
                    csv_tmp, cleaning.CART_COLUMNS, cleaning.CART_MONEY_COLUMNS
                ) as out,
                formats.ExactWriter(exact_tmp, cleaning.empty_lines()) as exact,
            ):

                def check(batch: tuple[pd.DataFrame, pd.DataFrame]) -> quality.CheckedCarts:
                    return quality.check_carts(*batch, users, products)

                batches = formats.cart_batches(raw, in_order=in_order)
                for checked in ordered_map(check, batches):
                    for finding in checked.findings:
                        tally = quality.Tally(finding.check, finding.id_column)
                        tallies.setdefault(finding.check, tally).add(finding)
                        rejected.write(finding)
                    lines = formats.arrow(checked.lines)
                    out.write(lines)
                    exact.write(lines)
                    figures.append(checked.figures())
                    self.report(f"cleaned_carts.csv: {out.rows} rows")
            rejected.close()  # kept for the operator even when a gate fails below
            warnings = quality.enforce(list(tallies.values()), config.quality().max_bad_rows)
        self.report(f"cleaned_carts.csv: {out.rows} rows", 100)
        return {
            "rows": {"cleaned_carts.csv": out.rows},
            **quality.add_figures(figures),
            "quality_warnings": warnings,
            "gates": gate_counts(list(tallies.values())),
        }


def gate(partition: Partition, findings: list[quality.Finding]) -> list[str]:
    """The offending rows of each check to ``rejected/<check>.csv`` (what the failure message
    points the operator at), then the verdict: ``quality.enforce``."""
    from pipeline.rules import quality

    with Rejected(partition) as rejected:
        for finding in findings:
            rejected.write(finding)
        rejected.close()
    return quality.enforce(findings, config.quality().max_bad_rows)


def gate_counts(findings: list[Any]) -> dict[str, dict[str, int]]:
    """Rows found and tolerated per check, for the report's Checks section."""
    from pipeline.rules import quality

    return quality.gate_counts(findings, config.quality().max_bad_rows)


class Rejected:
    """rejected/<check>.csv of one partition, appended to batch by batch.

    A check's file is started at its first offending row and published by ``close``; a check
    that found nothing removes the file a previous run may have left. On an error nothing new
    is published.
    """

    def __init__(self, partition: Partition) -> None:
        self.partition = partition
        self._files = contextlib.ExitStack()
        self._writers: dict[str, formats.CsvWriter] = {}
        self._checks: list[str] = []

    def write(self, finding: quality.Finding) -> None:
        from pipeline.storage import formats

        if finding.check not in self._checks:
            self._checks.append(finding.check)
        if not finding.count:
            return
        out = self._writers.get(finding.check)
        if out is None:
            tmp = self._files.enter_context(atomic_path(self.partition.rejected(finding.check)))
            columns = [str(c) for c in finding.rows.columns]
            out = self._files.enter_context(formats.CsvWriter(tmp, columns))
            self._writers[finding.check] = out
        out.write(finding.rows)

    def close(self) -> None:
        """Publish the files with rows; delete stale ones of the checks that found none."""
        self._files.close()
        for check in self._checks:
            if check not in self._writers:
                delete(self.partition.rejected(check))

    def __enter__(self) -> Rejected:
        self._files.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            self._files.__exit__(*exc)
