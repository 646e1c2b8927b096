"""One hour's report on its data root: written, and brought up to date when an earlier hour
completes after it.

An hour's report compares it with the newest earlier complete hour. Hours may complete out of
order (two run side by side, a backfill, a resumed failure), so the hour a report compared with
may no longer be the newest earlier one. The hour compared with is recorded in the report's
stats file (``_stats/HourReport.json``, key ``previous``); the console summary and
``python -m pipeline report`` compare with that same hour, so all three agree. Every run that
publishes an hour then calls ``refresh_around``: the hour's own report and the next complete
hour's are re-rendered (atomically, file by file, the record last) if a newer earlier hour has
completed since they were written. A report is re-rendered under a lock (``report_lock``: an
``flock`` on its partition's folder, on an object store a lease object), with the hour to compare
with looked up inside the lock, so of two runs completing hours side by side the last one to
look sees both.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pipeline import clock
from pipeline.storage.atomic import atomic_path, read_json, write_json
from pipeline.storage.fs import Location, ObjectPath, exists, local_copy
from pipeline.storage.layout import PARTITION_FORMAT, Partition

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.lineage import Lineage
    from pipeline.report.build import Report, Settings
    from pipeline.rules.changes import Snapshot
    from pipeline.rules.checks import HourChecks

log = logging.getLogger("luigi-interface.pipeline")
T = TypeVar("T")

HTML = "index.html"
MARKDOWN = "findings.md"
#: The key of the report's stats file naming the hour it compared with (None: none).
PREVIOUS = "previous"
#: The key of the report's stats file naming the run, code and source the report names.
LINEAGE = "lineage"


def read_csv(source: Any, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """A CSV of this or another partition (a luigi target or a location, local or remote)."""
    from pipeline.storage import formats

    with local_copy(source) as path:
        return formats.read_csv(path, columns)


def cart_ids(exact: Any, details: Any) -> pd.Series:
    """An hour's cart ids, one per cart line, from the cleaned lines CleanCarts keeps in Arrow
    (``exact``): a read of one column, where parsing them out of cart_details.csv took most of
    the report's time at ten million carts. An hour written before that file existed: from
    cart_details.csv (``details``).
    """
    from pipeline.storage import formats
    from pipeline.storage.fs import location_of

    if not exists(location_of(exact)):
        return read_csv(details, ("cart_id",))["cart_id"]
    with local_copy(exact) as path:
        return formats.read_exact(path, ["cart_id"])["cart_id"]


def partition(root: Location, name: str) -> Partition:
    return Partition(root, datetime.strptime(name, PARTITION_FORMAT))


def previous_snapshot(root: Location, name: str | None, notes: dict[str, str]) -> Snapshot | None:
    """The figures of complete hour ``name`` (None: no earlier hour); a problem reading them is
    only a note (``notes["previous"]``)."""
    from pipeline.rules import changes

    if name is None:
        return None
    try:
        part = partition(root, name)
        return changes.snapshot(
            name,
            read_csv(part.insight("category_summary")),
            cart_ids(part.exact("cart_lines"), part.insight("cart_details")),
        )
    except Exception as exc:  # e.g. pruned meanwhile, or unreadable: cosmetic
        log.warning("report: previous snapshot %s unreadable: %s", name, exc)
        notes["previous"] = (
            f"The previous complete snapshot, {name}, could not be read ({exc}), so this "
            "hour is not compared with it."
        )
        return None


def history(root: Location, name: str, days: int, notes: dict[str, str]) -> pd.DataFrame | None:
    """The history rows of the trend window ending at hour ``name``; unreadable: a note."""
    from pipeline.rules import history as history_rules
    from pipeline.storage.history import read_history

    first, last = history_rules.window(name, days)
    try:
        return read_history(root, first, last, ("hour", "category", "drift"))
    except Exception as exc:  # cosmetic: the trends are left out
        log.warning("report: history unreadable: %s", exc)
        notes["history"] = f"The history could not be read ({exc}), so trends are left out."
        return None


def hour_checks(part: Partition, previous: str | None) -> HourChecks:
    """Hour ``part``'s checks from its tasks' stats (gates, anomalies, schema drift), each with
    its change since the checks complete hour ``previous`` recorded in its manifest."""
    from pipeline.rules import checks
    from pipeline.rules.manifest import schema_drift
    from pipeline.schema import ENDPOINTS

    def stats(key: str) -> dict[str, Any]:  # an hour built by an older version lacks some
        try:
            return read_json(part.stats(key))
        except (OSError, ValueError):
            return {}

    rows = stats("history_hour")
    found = checks.anomaly_checks(rows.get("anomalies", []))
    for key in ("clean_users", "clean_products", "clean_carts"):
        found += checks.gate_checks(stats(key).get("gates", {}))
    before = None
    if previous is not None:
        try:
            before = read_json(partition(part.root, previous).manifest).get("checks")
        except (OSError, ValueError) as exc:  # pruned meanwhile: every anomaly counts as new
            log.warning("report: checks of %s unreadable: %s", previous, exc)
    extracts = [stats(f"extract_{e}") for e in ENDPOINTS]
    drift = schema_drift([s for s in extracts if "endpoint" in s])
    return checks.HourChecks(
        checks.with_changes(found, before),
        rows.get("anomaly_window", {}),
        drift,
        checks.resolved_since(found, before),
    )


def settings() -> Settings:
    from pipeline import config
    from pipeline.report import build

    cfg = config.report()
    return build.Settings(cfg.top_customers, cfg.top_cities, cfg.trend_days)


def write(
    part: Partition, previous: str | None, cfg: Settings, made: Lineage | None = None
) -> Report:
    """Build hour ``part``'s report, compared with complete hour ``previous``, from its insight
    files and the history, and write its HTML and Markdown (each atomically). It names the run
    that ``made`` the hour (default: this one, from the source its extracts recorded)."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline import lineage
    from pipeline.report import build, render

    if made is None:
        made = lineage.current(lineage.hour_source(part))

    notes: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        # The cart ids of this hour and of the previous one are read meanwhile this thread
        # reads the small files.
        ids = pool.submit(cart_ids, part.exact("cart_lines"), part.insight("cart_details"))
        before = pool.submit(previous_snapshot, part.root, previous, notes)
        user_summary = read_csv(part.insight("user_summary"))
        category_summary = read_csv(part.insight("category_summary"))
        trend = history(part.root, part.name, cfg.trend_days, notes)
        checked = hour_checks(part, previous)
        report = build.build(
            build.Inputs(
                partition=part.name,
                user_summary=user_summary,
                category_summary=category_summary,
                cart_ids=ids.result(),
                previous=before.result(),
                history=trend,
                notes=notes,
                settings=cfg,
                checks=checked,
                lineage=made,
            )
        )
    for name, text in ((MARKDOWN, render.markdown(report)), (HTML, render.html(report))):
        with atomic_path(part.report_dir / name) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    return report


def unrecorded(part: Partition) -> Lineage:
    """The lineage of an hour whose report recorded none: its source only."""
    from pipeline import lineage

    source = lineage.hour_source(part)
    return lineage.Lineage(lineage.UNKNOWN, lineage.UNKNOWN, ", ".join(source) or lineage.UNKNOWN)


def facts(report: Report, previous: str | None) -> dict[str, Any]:
    """What the report's stats file records of it: findings, warnings, the hour compared with."""
    checks = report.checks.checks if report.checks is not None else []
    made = report.lineage.as_dict() if report.lineage is not None else None
    return {"rows": {MARKDOWN: len(report.findings)}, "warnings": report.warnings,
            PREVIOUS: previous, "checks": checks, LINEAGE: made}  # fmt: skip


_UNRECORDED = object()


def recorded(part: Partition) -> Any:
    """The hour ``part``'s report compared with (None: none), or ``_UNRECORDED`` when its stats
    do not say (no report yet, or one written before the hour was recorded)."""
    path = part.stats("hour_report")
    try:
        return read_json(path).get(PREVIOUS, _UNRECORDED) if exists(path) else _UNRECORDED
    except (OSError, ValueError):
        return _UNRECORDED


def compared_with(root: Location, name: str) -> str | None:
    """The earlier hour that hour ``name`` is compared with: the one its report recorded, else
    (a report written before that was recorded) the newest earlier complete hour."""
    from pipeline.storage.history import previous_complete

    found = recorded(partition(root, name))
    return previous_complete(root, name) if found is _UNRECORDED else found


#: How long a run waits for another run re-rendering the same report (it takes seconds), and how
#: often it looks. Publishing holds signals back (``interrupts.deferred``) and a report is
#: cosmetic: a run gives up at once when told to stop, and after the wait.
REPORT_LOCK_WAIT = 30.0
REPORT_LOCK_POLL = 0.5


@contextlib.contextmanager
def report_lock(part: Partition) -> Iterator[None]:
    """Hold an exclusive lock on re-rendering the partition's report: an ``flock`` on its folder
    on local disk; on an object store a lease object (``storage.lease``) at ``report/.lock``.
    Waited for while another run holds it (``REPORT_LOCK_WAIT``); raises PartitionBusy naming
    the holder when it gives up. A rerun holds it across its swap and the refresh after it;
    taken again inside, it does not wait for itself: the lease is this process's already, and
    on disk the folder then locked is the rebuilt one, not the one the rerun locked."""
    if isinstance(part.dir, Path):
        fd = os.open(part.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _waited(lambda: _flock(fd, part))
            yield
        finally:
            os.close(fd)
        return
    import socket

    from pipeline import config
    from pipeline.storage import lease

    location = part.report_lock
    owner = f"{socket.gethostname()} pid {os.getpid()} report"
    seconds = config.storage().lease_seconds
    fresh = _waited(lambda: lease.acquire(location, owner, seconds, release_at_exit=True))
    try:
        yield
    finally:
        if fresh:
            lease.release(location)


def _flock(fd: int, part: Partition) -> None:
    from pipeline.storage.locks import PartitionBusy, lock_holder

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = lock_holder(part.dir)
        raise PartitionBusy(
            f"the report of {part.name} is being re-rendered by another run"
            + (f" (pid {pid})" if pid else "")
        ) from None


def _waited(take: Callable[[], T]) -> T:
    """``take()``, tried again while it raises PartitionBusy, for ``REPORT_LOCK_WAIT`` seconds
    at most and not once the run is told to stop."""
    from pipeline import interrupts
    from pipeline.storage.locks import PartitionBusy

    deadline, said = time.monotonic() + REPORT_LOCK_WAIT, False
    while True:
        try:
            return take()
        except PartitionBusy as busy:
            if interrupts.received() is not None or time.monotonic() > deadline:
                why = "the run is stopping" if interrupts.received() else "waited too long"
                raise PartitionBusy(f"{busy}; {why}") from None
            if not said:
                _notice(f"waiting up to {REPORT_LOCK_WAIT:g} s: {busy}")
                said = True
        time.sleep(REPORT_LOCK_POLL)


def _notice(text: str) -> None:
    """A line for the console: through the run's log records while a run shows them, else
    (a rerun's swap, after its run) as the command line's own."""
    from pipeline import logs

    if logs.console_active():
        log.info("%s", text, extra={"console": True})
    else:
        from pipeline.console import say

        say(text)


def refresh(root: Location, name: str, rebuilt: str | None = None) -> str | None:
    """Re-render complete hour ``name``'s report if an earlier hour newer than the one it compared
    with has completed since, or if the hour it compares with is ``rebuilt`` (its figures may
    have changed); return the hour it now compares with (None: nothing was done).

    Whether to is decided before taking the lock (most runs find the report up to date, and
    take no lock) and again inside it, as another run may have re-rendered it meanwhile."""
    part = partition(root, name)
    if not exists(part.manifest):
        return None  # its own run is not done: it refreshes itself when it is
    if _compare_with(part, rebuilt) is None:
        return None
    with report_lock(part):
        now = _compare_with(part, rebuilt)
        if now is None:
            return None
        from pipeline.lineage import Lineage

        stats = read_json(part.stats("hour_report"))  # the run that made the hour, not this one
        made = Lineage.from_dict(stats.get(LINEAGE))
        if made is None:  # written before runs were recorded: say so, not this run's id
            made = unrecorded(part)
        report = write(part, now, settings(), made)
        stats.update(facts(report, now), refreshed=clock.now().isoformat(timespec="seconds"))
        if isinstance(part.report_lock, ObjectPath):  # the record is outside the lease's folder
            from pipeline.storage import lease

            lease.check(part.report_lock)  # still this run's, or ClaimLost
        write_json(part.stats("hour_report"), stats)  # last: the record names what is written
    return now


def _compare_with(part: Partition, rebuilt: str | None) -> str | None:
    """The hour ``part``'s report should now compare with, if it must be re-rendered for it;
    None when it is up to date, or the newer hour it compared with was pruned since."""
    from pipeline.storage.history import previous_complete

    was = recorded(part)
    now = previous_complete(part.root, part.name)
    newer = was is None or (was is not _UNRECORDED and now is not None and was < now)
    if now is None or was is _UNRECORDED or not (newer or now == rebuilt):
        return None
    return now


def next_complete(root: Location, name: str) -> str | None:
    """The oldest complete hour after ``name``, or None."""
    from pipeline.storage.fs import partition_names

    for candidate in sorted(n for n in partition_names(root) if n > name):
        if exists(partition(root, candidate).manifest):
            return candidate
    return None


def refresh_around(root: Location, name: str, rebuilt: bool = False) -> list[str]:
    """After hour ``name`` is published (``rebuilt``: rebuilt and swapped in by ``rerun``): bring
    its report and the next complete hour's up to date. Returns what was done, one line each; a
    failure is a warning (the report is cosmetic, and its record still names what it shows, so
    the next refresh tries again)."""
    done = []
    for hour in (name, next_complete(root, name)):
        if hour is None:
            continue
        try:
            now = refresh(root, hour, name if rebuilt else None)
        except Exception as exc:
            log.warning("report of %s not brought up to date: %s: %s", hour, type(exc).__name__,
                        exc)  # fmt: skip
            continue
        if now is not None:
            done.append(f"report of {hour} brought up to date: it now compares with {now}")
    return done
