"""``python -m pipeline backfill``: the hours a backfill covers, and how luigi is asked for them.

The work itself is ``InsightsRange`` (luigi's ``RangeHourly --of Insights``, in
``tasks/backfill.py``): the window's missing hours, found in bulk, each an ordinary run of its
hour. This module holds the
arithmetic the command line needs around it: the window, luigi's arguments, and which hours are
missing before and after, so the console can say what the backfill did.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.storage.fs import Location
from pipeline.storage.layout import PARTITION_FORMAT


def window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """The first hour and the hour after the last (RangeHourly's ``stop`` is exclusive) of the
    ``days`` days that end with ``now``'s hour (naive UTC)."""
    current = now.replace(tzinfo=None, minute=0, second=0, microsecond=0)
    return current - timedelta(days=days) + timedelta(hours=1), current + timedelta(hours=1)


def range_args(
    start: datetime, stop: datetime, *, newest_first: bool, task_limit: int
) -> list[str]:
    """``InsightsRange``'s options for the window (its clock is the pipeline's, ``now``)."""
    args = [
        "InsightsRange",
        "--start", start.strftime(PARTITION_FORMAT), "--stop", stop.strftime(PARTITION_FORMAT),
        "--task-limit", str(task_limit),
    ]  # fmt: skip
    return [*args, "--reverse"] if newest_first else args


def missing(root: Location, start: datetime, stop: datetime) -> list[str]:
    """The hours of ``[start, stop)`` that are not complete under ``root``, oldest first, as the
    range tool finds them (``Insights.bulk_complete``: one listing)."""
    from pipeline.tasks.publish import Insights

    count = int((stop - start) / timedelta(hours=1))
    hours = [start + timedelta(hours=i) for i in range(count)]
    done = set(Insights.bulk_complete(hours))
    return [h.strftime(PARTITION_FORMAT) for h in hours if h not in done]
