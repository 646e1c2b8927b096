"""Insights: the three insight files, each checked against the cart lines before it is written.

Each reads the cleaned cart lines (money unrounded, ``_exact/cart_lines.arrow``) batch by batch:
the summaries add up each batch's totals, the cart details write each batch as it comes, so
memory holds the users and the catalogue and a few batches, never every line. Batches are worked
on by several threads (``concurrency.ordered_map``) and used in their order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import luigi

from pipeline.concurrency import ordered_map
from pipeline.schema import INSIGHTS
from pipeline.storage.atomic import atomic_path, read_json, target
from pipeline.storage.fs import local_copy, location_of
from pipeline.tasks.base import Lazy, PartitionTask, log
from pipeline.tasks.clean import CleanCarts, CleanProducts, CleanUsers

if TYPE_CHECKING:
    import pandas as pd

#: The cleaned inputs an insight may read besides the cart lines, and the task writing each.
SOURCES: dict[str, type[PartitionTask]] = {"users": CleanUsers, "catalogue": CleanProducts}


class InsightTask(PartitionTask):
    """Base of the three insight files: read cleaned inputs, compute, check, write."""

    name: ClassVar[str]
    reads: ClassVar[tuple[str, ...]] = ()  # of SOURCES: what compute() reads besides the lines
    money: ClassVar[tuple[str, ...]] = ()  # columns rounded to cents when written
    line_columns: ClassVar[tuple[str, ...] | None] = None  # of the cart lines; None: all
    #: (money column, units column) that must add up to the cart lines; None: no total
    totals: ClassVar[tuple[str, str] | None] = None

    def requires(self) -> dict[str, luigi.Task]:
        deps: dict[str, luigi.Task] = {"carts": CleanCarts(date_hour=self.date_hour)}
        deps.update({key: SOURCES[key](date_hour=self.date_hour) for key in self.reads})
        return deps

    def output(self) -> dict[str, luigi.Target]:
        return {"insight": target(self.partition.insight(self.name)), "stats": self.stats_target()}

    def read(self, source: str, output: str, columns: Sequence[str]) -> pd.DataFrame:
        from pipeline.storage import formats

        with local_copy(self.input()[source][output]) as path:
            return formats.read_csv(path, columns)

    def lines(self) -> Iterator[pd.DataFrame]:
        """The cleaned cart lines batch by batch, money unrounded: summaries round the sum, not
        each line."""
        from pipeline.storage import formats

        with local_copy(self.input()["carts"]["exact"]) as path:
            yield from formats.exact_batches(path, self.line_columns)

    def users(self) -> pd.DataFrame:
        """The users' columns an insight shows, from CleanUsers' copy of them (not a parse); from
        cleaned_users.csv if the copy was made by a version that copied other columns."""
        from pipeline.rules import insights
        from pipeline.storage import formats

        columns = insights.USER_COLUMNS_READ
        try:
            with local_copy(self.input()["users"]["copy"]) as path:
                return formats.read_copy(path, columns)
        except formats.CopyLacksColumns as exc:
            log.info("%s: reading cleaned_users.csv instead", exc)
        return self.read("users", "users", columns)

    def catalogue(self) -> pd.DataFrame:
        from pipeline.rules import insights

        return self.read("catalogue", "catalogue", ["product_id", *insights.PRODUCT_COLUMNS])

    def compute(self) -> pd.DataFrame:
        """Call the insight's pure functions on the inputs it needs."""
        raise NotImplementedError

    def produce(self) -> dict[str, Any]:
        from pipeline.rules import insights

        frame = self.compute()
        facts: dict[str, Any] = {}
        if self.totals:
            lines = read_json(location_of(self.input()["carts"]["stats"]))
            facts = insights.check_against_lines(
                frame, self.name, *self.totals, lines["line_total"], lines["units"]
            )
        rows = self.write_frame(frame, self.partition.insight(self.name), self.money)
        self.report(f"{self.name}.csv: {rows} rows", 100)
        return {"rows": {f"{self.name}.csv": rows}, **facts}


class UserSummary(InsightTask):
    """user_summary.csv: carts, units and spend per user who has a cart."""

    name = "user_summary"
    reads = ("users",)
    money = Lazy("pipeline.rules.insights:USER_SUMMARY_MONEY")
    line_columns = Lazy("pipeline.rules.insights:USER_SUMMARY_LINE_COLUMNS")
    totals = ("total_spent", "total_items")

    def compute(self) -> pd.DataFrame:
        from pipeline.rules import cleaning, insights

        totals = insights.RunningTotals(insights.user_totals(cleaning.empty_lines()))
        for batch_totals in ordered_map(insights.user_totals, self.lines()):
            totals.add(batch_totals)
        return insights.user_summary(totals.result(), self.users())


class CategorySummary(InsightTask):
    """category_summary.csv: sales and units per category over every cart line."""

    name = "category_summary"
    reads = ("catalogue",)
    money = Lazy("pipeline.rules.insights:CATEGORY_SUMMARY_MONEY")
    line_columns = Lazy("pipeline.rules.insights:CATEGORY_SUMMARY_LINE_COLUMNS")
    totals = ("total_sales", "total_items_sold")

    def compute(self) -> pd.DataFrame:
        from pipeline.rules import cleaning, insights

        totals = insights.RunningTotals(insights.product_totals(cleaning.empty_lines()))
        for batch_totals in ordered_map(insights.product_totals, self.lines()):
            totals.add(batch_totals)
        return insights.category_summary(totals.result(), self.catalogue())


class CartDetails(InsightTask):
    """cart_details.csv: every cart line with buyer and product attributes, written batch by
    batch as the lines are read."""

    name = "cart_details"
    reads = ("users", "catalogue")
    money = Lazy("pipeline.rules.insights:CART_DETAIL_MONEY")

    def produce(self) -> dict[str, Any]:
        from pipeline.rules import insights
        from pipeline.storage import formats

        buyers, products = insights.buyers(self.users()), insights.products(self.catalogue())
        path = self.partition.insight(self.name)
        columns = insights.CART_DETAIL_COLUMNS
        with atomic_path(path) as tmp, formats.CsvWriter(tmp, columns, self.money) as out:

            def detail(lines: pd.DataFrame) -> formats.Encoded:
                return out.encode(insights.cart_details(lines, buyers, products))

            for details in ordered_map(detail, self.lines()):
                out.write(details)
                self.report(f"{self.name}.csv: {out.rows} rows")
        self.report(f"{self.name}.csv: {out.rows} rows", 100)
        return {"rows": {f"{self.name}.csv": out.rows}}


INSIGHT_TASKS: dict[str, type[InsightTask]] = {
    t.name: t for t in (UserSummary, CategorySummary, CartDetails)
}
assert tuple(INSIGHT_TASKS) == INSIGHTS
