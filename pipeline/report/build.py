"""One hour's report, from its insight tables, the previous snapshot and the history.

The report is a view of figures that are already right, so a cosmetic problem never fails the
run: a chart that cannot be drawn, or an earlier hour or a history that cannot be read, becomes
a note in the report and a warning in the log. Errors in the figures themselves are not caught.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from pipeline.lineage import Lineage
from pipeline.report import charts, trend_charts
from pipeline.report.charts import Chart
from pipeline.rules import changes, checks, findings, history
from pipeline.rules.changes import Changes, Snapshot
from pipeline.rules.checks import HourChecks
from pipeline.rules.findings import Finding
from pipeline.rules.history import Trends
from pipeline.rules.tables import Tables
from pipeline.rules.tables import tables as hour_tables

log = logging.getLogger("luigi-interface.pipeline")


@dataclass(frozen=True)
class Settings:
    top_customers: int = 10
    top_cities: int = 15
    trend_days: int = 7


@dataclass(frozen=True)
class Inputs:
    """Everything one hour's report is made from, read by the caller."""

    partition: str
    user_summary: pd.DataFrame
    category_summary: pd.DataFrame
    cart_ids: pd.Series  # cart_details.csv's cart_id column: one entry per cart line
    previous: Snapshot | None = None  # the previous complete hour, if there is one
    history: pd.DataFrame | None = None  # history rows of levels hour and category
    notes: dict[str, str] = field(default_factory=dict)  # "previous"/"history": why missing
    settings: Settings = Settings()
    checks: HourChecks | None = None  # the Checks section (None: leave it out)
    lineage: Lineage | None = None  # the run, code and source that made the hour


@dataclass(frozen=True)
class Report:
    """The content of the report, ready to render as HTML or Markdown."""

    partition: str
    tables: Tables
    findings: list[Finding]
    changes: Changes
    trends: Trends | None
    charts: list[Chart]
    trend_charts: list[Chart]
    notes: dict[str, str]
    settings: Settings
    checks: HourChecks | None = None
    #: (endpoint, "added" | "missing", field, hour first seen) of the hour's schema drift
    drift: list[tuple[str, str, str, str]] = field(default_factory=list)
    lineage: Lineage | None = None

    @property
    def warnings(self) -> list[str]:
        """Every cosmetic problem, for the log and the task's stats."""
        failed = [f"chart {c.key}: {c.note}" for c in self.charts + self.trend_charts if c.note]
        return [f"{k}: {v}" for k, v in self.notes.items()] + failed


def _chart(key: str, title: str, draw: Callable[[], Chart]) -> Chart:
    try:
        return draw()
    except Exception as exc:  # cosmetic: the figures are in the text and tables anyway
        log.warning("report: chart %r could not be drawn: %s: %s", key, type(exc).__name__, exc)
        return Chart(key, title, title, note=f"This chart could not be drawn ({exc}).")


def build(inputs: Inputs) -> Report:
    """Findings, changes, trends and charts of one hour."""
    cfg = inputs.settings
    tables = hour_tables(inputs.user_summary, inputs.category_summary, inputs.cart_ids)
    current = changes.snapshot(inputs.partition, inputs.category_summary, inputs.cart_ids)
    notes = dict(inputs.notes)
    trends = None
    if inputs.history is not None:
        trends = history.trends(inputs.history, inputs.partition, cfg.trend_days)

    drawn: list[Chart] = []
    if tables.carts:
        drawn = [
            _chart("categories", "Revenue by category", lambda: charts.category_revenue(tables)),
            _chart("customers", "Top customers by spend",
                   lambda: charts.top_customers(tables, cfg.top_customers)),
            _chart("cities", "Revenue by city",
                   lambda: charts.city_revenue(tables, cfg.top_cities)),
            _chart("ages", "Revenue by age band", lambda: charts.age_bands(tables)),
            _chart("units", "Units against revenue by category",
                   lambda: charts.units_vs_revenue(tables)),
            _chart("frequency", "Purchase frequency against basket size",
                   lambda: charts.frequency(tables)),
            _chart("discounts", "List against discounted revenue by category",
                   lambda: charts.discounts(tables)),
        ]  # fmt: skip
    over_time: list[Chart] = []
    if trends is not None and len(trends.hours):
        over_time = [
            _chart("trend_revenue", "Revenue per hour", lambda: trend_charts.trend_revenue(trends)),
            _chart("trend_carts", "Carts per hour", lambda: trend_charts.trend_carts(trends)),
            _chart("trend_categories", "Revenue per hour of the top categories",
                   lambda: trend_charts.trend_categories(trends)),
        ]  # fmt: skip
    found = findings.findings(tables)
    drift: list[tuple[str, str, str, str]] = []
    if inputs.checks is not None:
        drift = checks.first_seen(inputs.checks.drift, inputs.history, inputs.partition)
        if (anomalous := inputs.checks.finding()) is not None:  # most important: first
            names = ", ".join(c["name"] for c in inputs.checks.anomalies)
            found.insert(0, Finding("anomalies", anomalous, {"checks": names}))
    report = Report(
        partition=inputs.partition,
        tables=tables,
        findings=found,
        changes=changes.changes(current, inputs.previous),
        trends=trends,
        charts=drawn,
        trend_charts=over_time,
        notes=notes,
        settings=cfg,
        checks=inputs.checks,
        drift=drift,
        lineage=inputs.lineage,
    )
    return report
