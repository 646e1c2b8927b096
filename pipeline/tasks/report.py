"""Report: the hour's history rows, then its report, both before the manifest and ``latest``.

``HistoryHour`` writes ``<data root>/history/date_hour=<hour>/part-0.parquet`` and applies the
history's retention; ``HourReport`` writes ``P/report/findings.md`` and ``P/report/index.html``
from the three insight files, the previous complete hour and the history.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import luigi

from pipeline import clock, config
from pipeline.storage.atomic import atomic_path, read_json, target
from pipeline.storage.fs import exists, local_copy, location_of
from pipeline.storage.layout import PARTITION_FORMAT, Partition, history_file
from pipeline.tasks.base import PartitionTask, log
from pipeline.tasks.clean import CleanCarts
from pipeline.tasks.insights import INSIGHT_TASKS

if TYPE_CHECKING:  # pandas, pyarrow and matplotlib load when a task runs, not at import
    import pandas as pd

    from pipeline.rules import findings
    from pipeline.storage.fs import Location

REPORT_HTML = "index.html"
REPORT_MARKDOWN = "findings.md"


def _insights(date_hour: datetime) -> dict[str, luigi.Task]:
    return {name: cls(date_hour=date_hour) for name, cls in INSIGHT_TASKS.items()}


def _read_csv(
    source: luigi.Target | Location, columns: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """A CSV of this or another partition, on local disk or an object store."""
    from pipeline.storage import formats

    with local_copy(source) as path:
        return formats.read_csv(path, columns)


def _cart_ids(exact: luigi.Target | Location, details: luigi.Target | Location) -> pd.Series:
    """An hour's cart ids, one per cart line, from the cleaned lines CleanCarts keeps in Arrow
    (``exact``): a read of one column, where parsing them out of cart_details.csv took most of
    the report's time at ten million carts. An hour written before that file existed: from
    cart_details.csv (``details``).
    """
    from pipeline.storage import formats

    if not exists(location_of(exact)):
        return _read_csv(details, ("cart_id",))["cart_id"]
    with local_copy(exact) as path:
        return formats.read_exact(path, ["cart_id"])["cart_id"]


class HistoryHour(PartitionTask):
    """history/date_hour=<hour>/part-0.parquet: the hour's totals, categories and customers."""

    def requires(self) -> dict[str, luigi.Task]:
        return _insights(self.date_hour)

    def output(self) -> dict[str, luigi.Target]:
        path = history_file(self.partition.root, self.partition.name)
        return {"history": target(path), "stats": self.stats_target()}

    def produce(self) -> dict[str, Any]:
        from pipeline.rules import history as history_rules
        from pipeline.storage.history import prune_history, write_hour

        days = config.history().retention_days
        if days < 1:  # checked before anything is written
            raise config.ConfigError(f"[history] retention_days must be >= 1, got {days}")
        inputs = self.input()
        details = read_json(location_of(inputs["cart_details"]["stats"]))
        rows = history_rules.hour_rows(
            _read_csv(inputs["user_summary"]["insight"]),
            _read_csv(inputs["category_summary"]["insight"]),
            details["rows"]["cart_details.csv"],
        )
        root, name = self.partition.root, self.partition.name
        write_hour(root, name, rows)
        prune_history(root, days, clock.now(), keep=name)
        self.report(f"history: {len(rows)} rows", 100)
        return {"rows": {"history.parquet": len(rows)}}


class HourReport(PartitionTask):
    """report/index.html and report/findings.md: findings, charts, changes and trends."""

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "lines": CleanCarts(date_hour=self.date_hour),  # the cart ids, read from its lines
            **_insights(self.date_hour),
            "history": HistoryHour(date_hour=self.date_hour),
        }

    def output(self) -> dict[str, luigi.Target]:
        folder = self.partition.report_dir
        return {
            "html": target(folder / REPORT_HTML),
            "markdown": target(folder / REPORT_MARKDOWN),
            "stats": self.stats_target(),
        }

    def previous(self, notes: dict[str, str]) -> findings.Snapshot | None:
        """The previous complete hour's figures; a problem reading them is only a note."""
        from pipeline.rules import findings
        from pipeline.storage.history import previous_complete

        root = config.paths().earlier_root()
        name = previous_complete(root, self.partition.name)
        if name is None:
            return None
        try:
            part = Partition(root, datetime.strptime(name, PARTITION_FORMAT))
            return findings.snapshot(
                name,
                _read_csv(part.insight("category_summary")),
                _cart_ids(part.exact("cart_lines"), part.insight("cart_details")),
            )
        except Exception as exc:  # e.g. pruned meanwhile, or unreadable: cosmetic
            log.warning("report: previous snapshot %s unreadable: %s", name, exc)
            notes["previous"] = (
                f"The previous complete snapshot, {name}, could not be read ({exc}), so this "
                "hour is not compared with it."
            )
            return None

    def history(self, days: int, notes: dict[str, str]) -> pd.DataFrame | None:
        from pipeline.rules import history as history_rules
        from pipeline.storage.history import read_history

        first, last = history_rules.window(self.partition.name, days)
        levels, root = ("hour", "category"), self.partition.root
        earlier = config.paths().earlier_root()
        try:
            rows = read_history(earlier, first, last, levels)
            if earlier != root:  # a rebuild: the earlier hours' rows, and this hour's own
                import pandas as pd

                this = read_history(root, last, last, levels)
                before = rows[rows[history_rules.PARTITION_KEY] < last]
                rows = pd.concat([before, this], ignore_index=True)
            return rows
        except Exception as exc:  # cosmetic: the trends are left out
            log.warning("report: history unreadable: %s", exc)
            notes["history"] = f"The history could not be read ({exc}), so trends are left out."
            return None

    def produce(self) -> dict[str, Any]:
        from pipeline.report import build, charts, render

        cfg = config.report()
        settings = build.Settings(cfg.top_customers, cfg.top_cities, cfg.trend_days)
        inputs = self.input()
        notes: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=2) as pool:
            # The cart ids of this hour and of the previous one are read meanwhile this thread
            # reads the small files and loads matplotlib.
            cart_ids = pool.submit(
                _cart_ids, inputs["lines"]["exact"], inputs["cart_details"]["insight"]
            )
            previous = pool.submit(self.previous, notes)
            user_summary = _read_csv(inputs["user_summary"]["insight"])
            category_summary = _read_csv(inputs["category_summary"]["insight"])
            history = self.history(settings.trend_days, notes)
            charts.warm_up()
            report = build.build(
                build.Inputs(
                    partition=self.partition.name,
                    user_summary=user_summary,
                    category_summary=category_summary,
                    cart_ids=cart_ids.result(),
                    previous=previous.result(),
                    history=history,
                    notes=notes,
                    settings=settings,
                )
            )
        out = self.output()
        for key, text in (("markdown", render.markdown(report)), ("html", render.html(report))):
            with atomic_path(location_of(out[key])) as tmp:
                Path(tmp).write_text(text, encoding="utf-8")
        drawn = sum(c.svg is not None for c in report.charts + report.trend_charts)
        log.info(
            "report: %s (%d findings, %d charts)", out["html"].path, len(report.findings), drawn
        )
        self.report(f"report: {len(report.findings)} findings, {drawn} charts", 100)
        return {"rows": {REPORT_MARKDOWN: len(report.findings)}, "warnings": report.warnings}
