"""Clean: raw JSON Lines become tidy CSVs, after the quality gates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import luigi

from pipeline import config
from pipeline.storage.atomic import target
from pipeline.storage.fs import delete, local_copy
from pipeline.tasks.base import PartitionTask
from pipeline.tasks.extract import EXTRACTS

if TYPE_CHECKING:
    from pipeline.rules import quality


class CleanUsers(PartitionTask):
    """cleaned_users.csv: one row per user, address flattened."""

    def requires(self) -> luigi.Task:
        return EXTRACTS["users"](date_hour=self.date_hour)

    def output(self) -> dict[str, luigi.Target]:
        return {"users": target(self.partition.cleaned("users")), "stats": self.stats_target()}

    def produce(self) -> dict[str, Any]:
        from pipeline.rules import cleaning, quality
        from pipeline.storage import formats

        with local_copy(self.input()["raw"]) as raw:
            users = cleaning.clean_users(formats.read_users(raw))
        quality.enforce(
            quality.id_findings(users, "user", "user_id"), config.quality().max_bad_rows
        )
        rows = self.write_frame(users, self.partition.cleaned("users"))
        self.report(f"cleaned_users.csv: {rows} rows", 100)
        return {"rows": {"cleaned_users.csv": rows}}


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
        quality.enforce(
            quality.id_findings(catalogue, "product", "product_id"), config.quality().max_bad_rows
        )
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
        return {"rows": rows, "min_product_price": min_price}


class CleanCarts(PartitionTask):
    """cleaned_carts.csv: one row per cart line, after the quality gates on carts."""

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "carts": EXTRACTS["carts"](date_hour=self.date_hour),
            "users": CleanUsers(date_hour=self.date_hour),
            "products": CleanProducts(date_hour=self.date_hour),
        }

    def output(self) -> dict[str, luigi.Target]:
        return {
            "carts": target(self.partition.cleaned("carts")),
            "exact": target(self.partition.exact("cart_lines")),  # what the insights sum
            "stats": self.stats_target(),
        }

    def produce(self) -> dict[str, Any]:
        from pipeline.rules import cleaning, quality
        from pipeline.storage import formats

        inputs = self.input()
        with local_copy(inputs["users"]["users"]) as path:
            users = formats.read_csv(path)
        with local_copy(inputs["products"]["catalogue"]) as path:
            catalogue = formats.read_csv(path)
        with local_copy(inputs["carts"]["raw"]) as path:
            carts, lines = formats.read_carts(path)
        checked = quality.check_carts(carts, lines, users["user_id"], catalogue["product_id"])
        self.write_rejected(checked.findings)
        warnings = quality.enforce(checked.findings, config.quality().max_bad_rows)
        rows = self.write_frame(
            checked.lines, self.partition.cleaned("carts"), cleaning.CART_MONEY_COLUMNS
        )
        self.write_exact(checked.lines, self.partition.exact("cart_lines"))
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
                delete(path)
