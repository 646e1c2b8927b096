"""``python -m pipeline backfill``: the hours a backfill covers, and how luigi is asked for them.

The work itself is ``InsightsRange`` (luigi's ``RangeHourly --of Insights``, in
``tasks/backfill.py``): the window's missing hours, found in bulk, each an ordinary run of its
hour. This module holds the
arithmetic the command line needs around it: the window, luigi's arguments, and which hours are
missing before and after, so the console can say what the backfill did.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timedelta

from pipeline import clock, interrupts, runner
from pipeline.console import CliError, say
from pipeline.runlog import new_log, run_logged
from pipeline.runner import (
    UMASK,
    as_luigi_reads,
    flag_given,
    prepare,
    unusable_store,
)
from pipeline.storage.fs import Location
from pipeline.storage.layout import PARTITION_FORMAT
from pipeline.suggested import command, resume_backfill


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


# -- the backfill command ----------------------------------------------------------------------


def backfill_pipeline(
    days: int,
    newest_first: bool,
    task_limit: int | None,
    extra: Sequence[str],
    scheduler_url: str | None = None,
) -> int:
    """The missing hours of the last ``days`` days, by ``InsightsRange`` (luigi's RangeHourly)."""
    from pipeline.config import housekeeping
    from pipeline.ops.status import ranges
    from pipeline.storage.fs import StoreError
    from pipeline.storage.locks import remove_unused

    os.umask(UMASK)
    if flag_given(extra, "--date-hour"):
        raise CliError(
            f"backfill takes --days, not --date-hour (one hour: {command('run', in_checkout=True)})"
        )
    if days < 1:
        raise CliError(f"--days {days}: must be 1 or more")
    now = clock.now()
    start, stop = window(now, days)
    limit = days * 24 if task_limit is None else task_limit
    if limit < 1:
        raise CliError(f"--task-limit {limit}: must be 1 or more")
    task = range_args(start, stop, newest_first=newest_first, task_limit=limit)
    prepared = prepare(extra, scheduler_url, task)
    if isinstance(prepared, int):
        return prepared
    luigi_args, scheduler, _, root = prepared
    span = f"{start:%Y-%m-%dT%H}..{stop - timedelta(hours=1):%Y-%m-%dT%H}"
    with as_luigi_reads(luigi_args):
        retention = housekeeping().retention_hours
    if days * 24 > retention:
        raise CliError(
            f"--days {days} reaches past [housekeeping] retention_hours ({retention}): those hours "
            f"would be pruned as soon as they were built; at most --days {retention // 24}"
        )
    try:
        with as_luigi_reads(luigi_args):
            todo = missing(root, start, stop)
    except StoreError as exc:
        return unusable_store(exc)
    if not todo:
        say(f"nothing to do (exit 0): every hour of {span} is complete")
        return 0
    log = new_log(root)  # first: a root refusing it is refused before anything is announced
    order = "newest first" if newest_first else "oldest first"
    say(f"backfill {span}: {len(todo)} hour(s) missing ({ranges(todo)}); {min(limit, len(todo))} "
        f"in this run, {order}")  # fmt: skip
    began = runner.run_began()
    try:
        rc = run_logged(luigi_args, log, scheduler, runner.run_luigi)
    except interrupts.Interrupted as exc:
        runner.write_metrics(luigi_args, root, None, exc.exit_code, began, log, interrupted=True)
        resume = resume_backfill(days, newest_first, task_limit, extra, scheduler_url)
        say(f"interrupted (exit {exc.exit_code}): {exc.name} stopped the backfill {exc.during}; "
            f"the hours it completed stay. To go on: {resume}")  # fmt: skip
        return exc.exit_code
    remove_unused()
    runner.write_metrics(luigi_args, root, None, rc, began, log)
    try:
        with as_luigi_reads(luigi_args):
            left = missing(root, start, stop)
    except StoreError as exc:  # the store went away after the run: what it built stays
        say(f"error: {exc}")
        say(f"{'done' if rc == 0 else 'failed'} (exit {rc}): the hours built cannot be counted "
            f"now (the data root does not answer); {command('status', in_checkout=True)} tells "
            "once it does")  # fmt: skip
        return rc
    built = len([h for h in todo if h not in left])
    still = f"{len(left)} still missing ({ranges(left)})" if left else "none missing"
    if rc == 0:
        say(f"done (exit 0): {built} hour(s) built; {still}")
    else:
        say(f"failed (exit {rc}): {built} hour(s) built; {still}; the causes are above. "
            f"Details and tracebacks: {log}")  # fmt: skip
    return rc
