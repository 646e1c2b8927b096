"""Report: the hour's history rows, then its report, both before the manifest and ``latest``.

``HistoryHour`` writes ``<data root>/history/date_hour=<hour>/part-0.parquet`` and applies the
history's retention; ``HourReport`` writes ``P/report/findings.md`` and ``P/report/index.html``
from the three insight files, the previous complete hour (recorded in its stats) and the history
(``report.hour``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import luigi

from pipeline import clock, config
from pipeline.lineage import run_id
from pipeline.report import hour
from pipeline.schema import ENDPOINTS
from pipeline.storage.atomic import read_json, target
from pipeline.storage.fs import location_of
from pipeline.storage.layout import history_file
from pipeline.tasks.base import PartitionTask, log
from pipeline.tasks.clean import CleanCarts
from pipeline.tasks.insights import INSIGHT_TASKS

if TYPE_CHECKING:
    import pandas as pd

REPORT_HTML = hour.HTML
REPORT_MARKDOWN = hour.MARKDOWN


def _insights(date_hour: datetime) -> dict[str, luigi.Task]:
    return {name: cls(date_hour=date_hour) for name, cls in INSIGHT_TASKS.items()}


_read_csv = hour.read_csv
_cart_ids = hour.cart_ids


class HistoryHour(PartitionTask):
    """history/date_hour=<hour>/part-0.parquet: the hour's totals, categories and customers."""

    def requires(self) -> dict[str, luigi.Task]:
        return _insights(self.date_hour)

    def output(self) -> dict[str, luigi.Target]:
        path = history_file(self.partition.root, self.partition.name)
        return {"history": target(path), "stats": self.stats_target()}

    def produce(self) -> dict[str, Any]:
        import pandas as pd

        from pipeline.rules import history as history_rules
        from pipeline.rules.manifest import schema_drift
        from pipeline.storage.history import prune_history, write_hour

        days = config.history().retention_days
        if days < 1:  # checked before anything is written
            raise config.ConfigError(f"[history] retention_days must be >= 1, got {days}")
        inputs = self.input()
        details = read_json(location_of(inputs["cart_details"]["stats"]))
        rows = history_rules.hour_rows(
            _read_csv(inputs["user_summary"]["insight"], history_rules.USER_COLUMNS),
            _read_csv(inputs["category_summary"]["insight"]),
            details["rows"]["cart_details.csv"],
            run_id(),
        )
        root, name = self.partition.root, self.partition.name
        drift = schema_drift([read_json(self.partition.stats(f"extract_{e}")) for e in ENDPOINTS])
        rows = pd.concat([rows, history_rules.drift_rows(drift, run_id())], ignore_index=True)
        checked = hour_anomalies(root, name, rows)  # raises AnomalyError with anomalies = fail
        write_hour(root, name, rows)
        prune_history(root, days, clock.now(), keep=name)
        self.report(f"history: {len(rows)} rows", 100)
        return {"rows": {"history.parquet": len(rows)}, **checked}


def hour_anomalies(root: Any, name: str, rows: pd.DataFrame) -> dict[str, Any]:
    """Hour ``name``'s figures (its history ``rows``) against its trailing window of complete
    hours: the checks and the window, for the stats. With ``[quality] anomalies = fail`` an
    anomaly raises AnomalyError before anything of the hour is written."""
    import pandas as pd

    from pipeline.ops.rerun import is_staging
    from pipeline.rules import anomalies, checks
    from pipeline.storage.history import trailing

    cfg = config.quality()
    settings = anomalies.Settings(cfg.anomaly_window_hours, cfg.anomaly_k, cfg.anomaly_min_hours)
    past_root = root.parent if is_staging(root) else root  # a rerun: the data root's history
    past = trailing(past_root, name, settings.window)
    history = pd.concat([past, rows.assign(date_hour=name)])
    return checks.hour_verdict(history, name, settings, fail=cfg.anomalies == "fail")


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

    def produce(self) -> dict[str, Any]:
        from pipeline.storage.history import previous_complete

        previous = previous_complete(self.partition.root, self.partition.name)
        report = hour.write(self.partition, previous, hour.settings())
        drawn = sum(c.svg is not None for c in report.charts + report.trend_charts)
        log.info(
            "report: %s (%d findings, %d charts)",
            self.partition.report_dir / REPORT_HTML, len(report.findings), drawn,
        )  # fmt: skip
        self.report(f"report: {len(report.findings)} findings, {drawn} charts", 100)
        return hour.facts(report, previous)
