"""The one place the pipeline asks what time it is.

Everything that depends on the calendar (the current hour, how old an hour or a run log is,
what retention prunes, the timestamps a manifest records) reads ``now()``. ``PIPELINE_NOW``
pins it, for tests and their subprocesses, or to replay a past hour as it ran then; unset, it is
the machine's UTC clock. Intervals (timeouts, rate limits, claims' leases) are not calendar
questions and keep using ``time.monotonic`` and ``time.time``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

#: ISO 8601 with a UTC offset, e.g. ``2026-11-25T17:30:00Z``: the time ``now()`` returns.
NOW_ENV = "PIPELINE_NOW"


class ClockError(ValueError):
    """``PIPELINE_NOW`` holds no time: every calendar decision would be wrong, so none is made."""


def now() -> datetime:
    """The current time, timezone-aware in UTC (pinned by ``PIPELINE_NOW`` when set)."""
    text = os.environ.get(NOW_ENV, "").strip()
    if not text:
        return datetime.now(UTC)
    try:
        pinned = datetime.fromisoformat(text)
    except ValueError:
        pinned = None
    if pinned is None or pinned.tzinfo is None:
        raise ClockError(
            f"{NOW_ENV}={text!r} is not a time with a UTC offset like 2026-11-25T17:30:00Z; "
            f"unset it to use this machine's clock"
        )
    return pinned.astimezone(UTC)


def current_hour() -> datetime:
    """The current UTC hour, naive (as ``--date-hour`` values and partition names are)."""
    return now().replace(tzinfo=None, minute=0, second=0, microsecond=0)
