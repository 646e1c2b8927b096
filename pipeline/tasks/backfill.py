"""Backfill: luigi's own range tool over ``Insights``, on the pipeline's clock.

``InsightsRange`` is ``RangeHourly --of Insights``: it asks ``Insights.bulk_complete`` which hours
of ``[start, stop)`` are complete (one listing of the data root, local or ``s3://``, one read of
``latest``, then the listed hours' manifests) and requires the missing ones only: oldest first,
or newest first with ``--reverse``, at most ``--task-limit``; they run in that order (as
priorities). They are scheduled together, so the
workers of one luigid take different hours at once; each is an ordinary ``Insights``.

What it adds to ``RangeHourly``, and why it is a subclass: its ``now`` is the pipeline's clock
(``pipeline.clock``, so ``PIPELINE_NOW`` moves it too; luigi's reads ``time.time()``), and an
explicit ``--start`` is honoured however old (luigi's clips it to ``hours_back``, 100 days by
default, so an old range would silently do nothing).
"""

from __future__ import annotations

from datetime import datetime

import luigi
from luigi.tools.range import RangeHourly

from pipeline import clock
from pipeline.tasks.publish import Insights


class InsightsRange(RangeHourly):
    """The complete snapshots of the hours ``[start, stop)``: only the missing ones run."""

    of = luigi.TaskParameter(default=Insights, description="The hourly task: Insights.")
    # luigi's default, None, warns on every run that it is not a string (its typing says None)
    param_name = luigi.Parameter(  # type: ignore[assignment]
        default="date_hour",
        description="Insights' parameter the range sets: its hour.",
        positional=False,
    )

    def moving_stop(self, now: datetime) -> datetime:
        if self.now is None:  # the range ends at the pipeline's current hour, not the machine's
            now = clock.now().replace(tzinfo=None)
        return super().moving_stop(now)

    def moving_start(self, now: datetime) -> datetime:
        return self.start if self.start is not None else super().moving_start(now)

    def requires(self) -> list[luigi.Task]:
        """The missing hours, in the order asked, as priorities: luigi promises no order within
        one batch (a TODO of its own) and ran the newest first. The scheduler passes a task's
        priority on to what it requires, so each hour's extracts come before the next hour's
        (an hour then compares with the one before it the first time its report is made).
        With several workers it is the order hours start in, not the one they finish in; a
        luigid keeps the highest priority a task was given (two backfills of one range in
        opposite orders mix)."""
        hours = super().requires()
        for rank, task in enumerate(hours):
            task.priority = len(hours) - rank
        return hours


__all__ = ["InsightsRange"]
