"""The metrics of a plain ``luigi --module pipeline ...`` run, as ``python -m pipeline`` writes.

Why this hook. luigi's command line (``luigi.retcodes.run_with_retcodes``) runs the tasks, turns
the worker's summary into the exit code ([retcode]) and calls ``sys.exit`` at once: it offers
no hook after the run, and an ``atexit`` function cannot see the exit code. Task events do not
see all of it either: a task that luigid gave another worker (10) or did not let this one run
(25) has no event, and with ``--workers`` above 1 failures happen in forked processes. So
``install`` wraps ``luigi.interface._schedule_and_run``, the run itself, which luigi looks up
when it calls it, after ``--module pipeline`` has been imported. Its result holds the worker,
from which ``exit_code`` derives [retcode] as ``run_with_retcodes`` does next; what it raises is
mapped as luigi maps it (a ``SystemExit``'s code, ``PidLockAlreadyTakenExit``: already_running,
any other error: unhandled_exception, Ctrl-C: interrupted, 130).

The wrapper writes only when this process is plain luigi and claimed an hour during the call
(its run log went to a file: ``logs.plain_run_log``), so luigid, ``luigi.build`` and ``python
-m pipeline`` (which writes its own) are untouched, and a plain run that found everything
complete, claiming nothing, writes no metrics, as it writes no run log. The hour is the one it
claimed; a range run that claimed several has none, as a backfill. Under a central scheduler,
exit 10 or 25 from a worker that left only what other workers ran or were running is a success
(``left_to_others``: it may end before they publish the hour); the exit code stays luigi's.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pipeline import clock
from pipeline.storage.fs import Location

log = logging.getLogger("luigi-interface.pipeline")


#: (data root, hour) of every partition this process claimed (``PartitionTask.claim``).
_claimed: set[tuple[Location, datetime]] = set()


def claimed(root: Location, hour: datetime) -> None:
    _claimed.add((root, hour))


def exit_code(worker: Any) -> int:
    """The exit code luigi's ``run_with_retcodes`` gives the run of ``worker`` ([retcode])."""
    from luigi import execution_summary
    from luigi.retcodes import retcode

    codes = retcode()
    sets = execution_summary._summary_dict(worker)
    root = execution_summary._root_task(worker)
    found = {name for name, tasks in sets.items() if tasks}
    code = max(
        (codes.missing_data if "still_pending_ext" in found else 0),
        (codes.task_failed if "failed" in found else 0),
        (codes.already_running if "run_by_other_worker" in found else 0),
        (codes.scheduling_error if "scheduling_error" in found else 0),
        (codes.not_run if "not_run" in found else 0),
    )
    if code == 0 and root not in sets["completed"] and root not in sets["already_done"]:
        return codes.not_run
    return code


def _raised(exc: BaseException) -> tuple[int, str]:
    """luigi's exit code (and the result) of a run that ``exc`` ended."""
    import luigi.interface
    from luigi.retcodes import retcode

    from pipeline import interrupts

    if isinstance(exc, interrupts.Interrupted):
        return exc.exit_code, "interrupted"
    if isinstance(exc, KeyboardInterrupt):
        return 128 + signal.SIGINT, "interrupted"  # as ``python -m pipeline`` exits on Ctrl-C
    if isinstance(exc, luigi.interface.PidLockAlreadyTakenExit):
        return retcode().already_running, "failed"
    if isinstance(exc, SystemExit):
        code = (exc.code or 0) if isinstance(exc.code, int | None) else 1  # a message: 1
        return code, "success" if code == 0 else "failed"
    return retcode().unhandled_exception, "failed"


#: What in luigi's summary of a worker means that its part of the run went wrong.
WENT_WRONG = (
    "failed", "scheduling_error", "still_pending_ext", "upstream_failure",
    "upstream_missing_dependency", "upstream_scheduling_error",
)  # fmt: skip


def left_to_others(rc: int, worker: Any) -> bool:
    """Did this worker of a central scheduler do its part and leave the rest to other workers?
    luigi then exits with [retcode] already_running or not_run although nothing went wrong:
    scaling-out.md says 0, 10 and 25 all mean the hour was done. Not so when a task failed,
    could not be scheduled or lacks input (then the exit code says so, or missing_data was
    outranked by not_run)."""
    import luigi.interface
    from luigi import execution_summary
    from luigi.retcodes import retcode

    codes = retcode()
    if rc not in (codes.already_running, codes.not_run) or luigi.interface.core().local_scheduler:
        return False
    sets = execution_summary._summary_dict(worker)
    return not any(sets.get(name) for name in WENT_WRONG)


def record(rc: int, result: str, began: tuple[datetime, float]) -> None:
    """Write the run's metrics (``pipeline.metrics``); a problem is a warning line only."""
    from pipeline import lineage, metrics

    hours = {hour for _, hour in _claimed}
    root = next(iter({root for root, _ in _claimed}))
    hour = next(iter(hours)) if len(hours) == 1 else None
    run = metrics.Run(root, hour, rc, result, began[0], clock.now(),
                      time.monotonic() - began[1], lineage.run_id())  # fmt: skip
    for problem in metrics.write_run(run):
        log.warning("%s", problem)


def _with_metrics(run: Callable[..., Any]) -> Callable[..., Any]:
    """luigi's ``_schedule_and_run`` (``run``), then the metrics of a plain run that claimed an
    hour in it; luigi's result and exceptions pass through unchanged."""

    def schedule_and_run(*args: Any, **kwargs: Any) -> Any:
        from pipeline.logs import plain_run_log

        before = plain_run_log()
        _claimed.clear()
        began = clock.now(), time.monotonic()
        ended: tuple[int, str] | None = None
        try:
            outcome = run(*args, **kwargs)
        except BaseException as exc:
            ended = _raised(exc)
            raise
        else:
            try:
                rc = exit_code(outcome.worker)
                ok = rc == 0 or left_to_others(rc, outcome.worker)
                ended = rc, "success" if ok else "failed"
            except Exception as exc:  # luigi's own summary will say more; the run stands
                log.warning("metrics not written: %s: %s", type(exc).__name__, exc)
            return outcome
        finally:
            if ended and before is None and plain_run_log() is not None and _claimed:
                record(*ended, began)

    schedule_and_run.__wrapped__ = run  # type: ignore[attr-defined]
    return schedule_and_run


def install() -> None:
    """Wrap luigi's run once per process (see the top for why there)."""
    import luigi.interface

    current = luigi.interface._schedule_and_run
    if not hasattr(current, "__wrapped__"):
        luigi.interface._schedule_and_run = _with_metrics(current)
