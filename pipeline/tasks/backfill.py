"""Backfill: several hours scheduled together, so the workers of one luigid take different
hours at once (``luigi --module pipeline Backfill --start 2026-11-25T00 --hours 6``)."""

from __future__ import annotations

from datetime import timedelta

import luigi

from pipeline.tasks.publish import Insights


class Backfill(luigi.WrapperTask):
    """``hours`` consecutive hourly snapshots from ``start``; complete when each one is."""

    start = luigi.DateHourParameter(description="The first UTC hour, e.g. 2026-11-25T00.")
    hours = luigi.IntParameter(default=6, description="How many hours, the first included.")

    def requires(self) -> list[Insights]:
        return [Insights(date_hour=self.start + timedelta(hours=h)) for h in range(self.hours)]
