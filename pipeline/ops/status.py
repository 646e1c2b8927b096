"""``python -m pipeline status``: is the data fresh, and which hours are missing or failed?

One look at the data root, local or ``s3://``, answered the way monitoring systems read it (the
Nagios / monitoring-plugins convention): a first line ``OK|WARNING|CRITICAL: ...``, details
after it, and the exit code 0, 1 or 2. Whatever keeps it from judging (bad usage, an unusable
``[monitoring]`` or ``[paths]`` setting, a bad ``PIPELINE_NOW``, an unreadable root) is one line
``UNKNOWN: ...`` and exit 3, never argparse's 2, which a monitoring system reads as CRITICAL.
``--json`` prints the same facts for machines. Reads only; runs nothing.

The newest complete hour's manifest is read too: its anomalies against past hours make a
WARNING, named in the first line; its schema drift is a line of detail (docs/checks.md).

An hour of the window is *complete* (its manifest is there), *running* (a run holds its lock or
claim), *failed* (a folder without a manifest that no run holds: a run stopped or failed there)
or *missing* (never started). The current hour is *due*, not missing, until it is complete: the
timer starts it a few minutes in. A run that fails before writing anything leaves no folder; its
hour is failed all the same when ``failed-run.env`` (``runlog.note_run``) names it with a non-zero
exit code and it has no manifest.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import NoReturn

import orjson

from pipeline import clock
from pipeline.config import monitoring, paths
from pipeline.config_check import settings_problems
from pipeline.storage.fs import (
    Location,
    ObjectPath,
    StoreError,
    exists,
    parse_root,
    partition_names,
)
from pipeline.storage.layout import FAILED_RUN, LOCK, PARTITION_FORMAT, Partition, logs_dir

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
#: The sections ``status`` reads: a bad option elsewhere is the runs' problem, seen in their hours.
SECTIONS = ("monitoring", "paths")


@dataclass(frozen=True)
class FailedRun:
    """What ``failed-run.env`` says of the last run that ended badly (or the one under way)."""

    hour: str
    exit_code: str  # empty while the run is under way
    run_log: str


@dataclass(frozen=True)
class Health:
    """What ``status`` found and concluded: the facts first, then the verdict."""

    checked_at: str
    root: str
    window: tuple[str, str]  # first and last hour looked at
    newest_complete: str | None
    age_hours: int | None  # hours from the newest complete hour to the current one
    newest_report: str | None
    missing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    failed_run: FailedRun | None = None  # the run that made an hour of ``failed`` fail, if known
    #: Of the newest complete hour's manifest: its anomalous checks, its schema drift
    anomalies: list[str] = field(default_factory=list)
    schema_drift: list[str] = field(default_factory=list)
    exit_code: int = OK
    reasons: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return NAMES[self.exit_code]


def hours(first: datetime, last: datetime) -> list[str]:
    count = int((last - first) / timedelta(hours=1)) + 1
    return [(first + timedelta(hours=i)).strftime(PARTITION_FORMAT) for i in range(count)]


def assess(
    states: dict[str, str],
    newest_report: str | None,
    now: datetime,
    *,
    days: int,
    warn_after_hours: int,
    critical_after_hours: int,
    root: str = "",
    failed_run: FailedRun | None = None,
    anomalies: list[str] | None = None,
    schema_drift: list[str] | None = None,
    first_on_record: str | None = None,
) -> Health:
    """The verdict on ``states`` (hour -> complete | running | failed, for the hours present
    under the root) at ``now``: pure, so every threshold is tested without a data root.

    ``failed_run`` (from ``failed-run.env``) makes its hour failed when the run ended with a
    non-zero exit code and the hour has no manifest and no run holds it: a run that fails before
    writing anything leaves no folder behind. No hour before the first on record (the oldest
    partition or run log, ``first_on_record``, or a failed run's hour) counts as missing: on a
    new install the hours before its first run were never due, and pruned ones were done."""
    current = now.replace(tzinfo=None, minute=0, second=0, microsecond=0)
    window = hours(current - timedelta(days=days) + timedelta(hours=1), current)
    if (
        failed_run is not None
        and failed_run.exit_code not in ("", "0")
        and failed_run.hour in window
        and states.get(failed_run.hour) in (None, "failed")
    ):
        states = states | {failed_run.hour: "failed"}
    else:
        failed_run = None
    span = f"in the last {days} day(s)"
    on_record = [h for h in (first_on_record, *states) if h is not None]
    if on_record and (first := min(on_record)) > window[0]:
        window = [h for h in window if h >= first] or window[-1:]  # (or ahead of this clock)
        span = f"since {first}, the first hour on record"
    complete = sorted(h for h, s in states.items() if s == "complete")
    newest = complete[-1] if complete else None
    age = None
    if newest is not None:
        age = int((current - datetime.strptime(newest, PARTITION_FORMAT)) / timedelta(hours=1))
    missing = [h for h in window[:-1] if h not in states]
    failed = [h for h in window if states.get(h) == "failed"]
    running = [h for h in window if states.get(h) == "running"]
    code, fresh = OK, ""
    if newest is None:
        code, fresh = CRITICAL, "no complete hour"
    elif age is not None and age >= critical_after_hours:
        code, fresh = CRITICAL, f", critical from {critical_after_hours} h"
    elif age is not None and age >= warn_after_hours:
        code, fresh = WARNING, f", warning from {warn_after_hours} h"
    if newest is not None:
        fresh = f"newest complete hour {newest} ({age} h old{fresh})"
    if missing or failed:
        code = max(code, WARNING)
    gaps = f"{len(missing)} hour(s) missing and {len(failed)} failed {span}"
    reasons = [fresh, gaps]
    if anomalies and newest is not None:  # the newest hour's figures are out of their bands
        code = max(code, WARNING)
        reasons.append(f"{len(anomalies)} anomaly(ies) in {newest}: {', '.join(anomalies)}")
    return Health(
        checked_at=now.isoformat(timespec="seconds"),
        root=root,
        window=(window[0], window[-1]),
        newest_complete=newest,
        age_hours=age,
        newest_report=newest_report,
        missing=missing,
        failed=failed,
        running=running,
        failed_run=failed_run,
        anomalies=list(anomalies or []) if newest is not None else [],
        schema_drift=list(schema_drift or []) if newest is not None else [],
        exit_code=code,
        reasons=reasons,
    )


def _held_locally(lock: Path) -> bool:
    from pipeline.storage.locks import lock_holder

    return lock.exists() and lock_holder(lock) is not None


def _partition(root: Location, name: str) -> Partition:
    return Partition(root, datetime.strptime(name, PARTITION_FORMAT))


def observe(root: Location, names: list[str]) -> dict[str, str]:
    """State of each partition folder in ``names`` under ``root``: complete, running or failed."""
    found = {}
    for name in names:
        part = _partition(root, name)
        if exists(part.manifest):
            found[name] = "complete"
        elif isinstance(root, ObjectPath):
            from pipeline.storage import lease

            claim = lease.read(root / name / LOCK)
            found[name] = "running" if claim is not None and lease.live(claim[0]) else "failed"
        else:
            found[name] = "running" if _held_locally(part.lock) else "failed"
    return found


def newest_report(root: Location, states: dict[str, str]) -> str | None:
    for name in sorted(states, reverse=True):
        report = _partition(root, name).report_dir / "index.html"
        if states[name] == "complete" and exists(report):
            return str(report)
    return None


def last_failed_run(root: Location) -> FailedRun | None:
    """``failed-run.env`` as ``runlog.note_run`` wrote it (on this host: ``layout.logs_dir``), or
    None when there is none (the last run succeeded) or it names no hour."""
    try:
        text = (logs_dir(root) / FAILED_RUN).read_text()
    except FileNotFoundError:
        return None
    values = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
    hour = values.get("PIPELINE_HOUR", "").strip()
    if not hour:
        return None
    return FailedRun(
        hour,
        values.get("PIPELINE_EXIT_CODE", "").strip(),
        values.get("PIPELINE_RUN_LOG", "").strip(),
    )


def first_run_hour(root: Location) -> str | None:
    """The hour the oldest run log on this host was started in (``run-<UTC time>-<pid>.log``):
    runs that failed before writing anything leave no folder, but their logs."""
    stamps = sorted(
        found[1] for path in logs_dir(root).glob("run-*.log")
        if (found := re.match(r"run-(\d{8}T\d{2})\d{4}Z-\d+\.log$", path.name))
    )  # fmt: skip
    return f"{datetime.strptime(stamps[0], '%Y%m%dT%H'):{PARTITION_FORMAT}}" if stamps else None


def checked(root: Location, states: dict[str, str]) -> tuple[list[str], list[str]]:
    """The anomalous checks and the schema drift the newest complete hour's manifest records
    (none for a manifest written before they were recorded)."""
    from pipeline.storage.atomic import read_json

    complete = sorted(n for n, s in states.items() if s == "complete")
    if not complete:
        return [], []
    try:
        facts = read_json(_partition(root, complete[-1]).manifest)
    except ValueError:  # not JSON: the hour's own problem, not a reason to stop judging
        return [], []
    anomalies = [c["name"] for c in facts.get("checks", []) if c.get("status") == "anomaly"]
    drift = [
        f"{endpoint}: {name} {kind}"
        for endpoint, found in sorted(facts.get("schema_drift", {}).items())
        for kind in ("added", "missing")
        for name in found.get(kind, [])
    ]
    return anomalies, drift


def check(root: Location, now: datetime, days: int, warn: int, critical: int) -> Health:
    """Look at ``root`` (the hours of the window and any later one) and its host's
    ``failed-run.env``, and assess them."""
    current = now.replace(tzinfo=None, minute=0, second=0, microsecond=0)
    first = (current - timedelta(days=days) + timedelta(hours=1)).strftime(PARTITION_FORMAT)
    names = partition_names(root)
    states = observe(root, [n for n in names if n >= first])
    anomalies, drift = checked(root, states)
    on_record = [h for h in (names[0] if names else None, first_run_hour(root)) if h is not None]
    return assess(states, newest_report(root, states), now, days=days, warn_after_hours=warn,
                  critical_after_hours=critical, root=str(root),
                  failed_run=last_failed_run(root), anomalies=anomalies,
                  schema_drift=drift, first_on_record=min(on_record, default=None))  # fmt: skip


def ranges(names: list[str]) -> str:
    """``2026-11-25T03..2026-11-25T05, 2026-11-25T09``: consecutive hours folded."""
    out: list[list[str]] = []
    for name in names:
        hour = datetime.strptime(name, PARTITION_FORMAT)
        if out and datetime.strptime(out[-1][-1], PARTITION_FORMAT) + timedelta(hours=1) == hour:
            out[-1].append(name)
        else:
            out.append([name])
    return ", ".join(r[0] if len(r) == 1 else f"{r[0]}..{r[-1]} ({len(r)} h)" for r in out)


def text(health: Health) -> str:
    """The first line for a monitoring system, then a line per fact for a person."""
    lines = [f"{health.status}: {'; '.join(health.reasons)}"]
    lines.append(f"  data root: {health.root}")
    lines.append(
        f"  window: {health.window[0]} to {health.window[1]} (UTC), checked at {health.checked_at}"
    )
    for label, names in (
        ("missing", health.missing),
        ("failed", health.failed),
        ("running", health.running),
    ):
        if names:
            lines.append(f"  {label}: {ranges(names)}")
        if label == "failed" and (run := health.failed_run) is not None:
            lines.append(f"  failed run: {run.hour} exited {run.exit_code}; run log: {run.run_log}")
    if health.anomalies:
        lines.append(f"  anomalies in {health.newest_complete}: {', '.join(health.anomalies)}")
    if health.schema_drift:
        drift = "; ".join(health.schema_drift)
        lines.append(f"  schema drift in {health.newest_complete}: {drift}")
    lines.append(f"  newest report: {health.newest_report or 'none'}")
    return "\n".join(lines)


class UsageError(Exception):
    """A command line ``status`` cannot use: UNKNOWN, not argparse's exit 2 (CRITICAL)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _days(text: str) -> int:
    """``--days``: a whole number that ``[monitoring] days`` also accepts (1 to 366)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if (why := monitoring.days.allowed.problem(value)) is not None:
        raise argparse.ArgumentTypeError(f"{value} {why}, as [monitoring] days")
    return value


def parser() -> argparse.ArgumentParser:
    out = _Parser(
        prog="python -m pipeline status",
        description="Say whether the data is fresh and which hours are missing or failed; exit "
        "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the monitoring-plugins convention; also bad "
        "usage or settings).",
    )
    out.add_argument(
        "--data-dir", help="data root, a path or s3://bucket/prefix (default: as the pipeline's)"
    )
    out.add_argument(
        "--days",
        type=_days,
        help="days looked at, ending with the current hour, 1 to 366 (default: [monitoring] days)",
    )
    out.add_argument("--json", action="store_true", help="print the facts as one JSON object")
    return out


def unknown(message: str, as_json: bool) -> int:
    """Print why ``status`` cannot judge, as one line (or one JSON object), and say UNKNOWN."""
    line = f"UNKNOWN: {message}"
    print(
        orjson.dumps({"status": "UNKNOWN", "exit_code": UNKNOWN, "reasons": [line]}).decode()
        if as_json
        else line
    )
    return UNKNOWN


def main(argv: list[str]) -> int:
    try:
        args = parser().parse_args(argv)
    except UsageError as exc:
        return unknown(f"usage: {exc} (see python -m pipeline status --help)", "--json" in argv)
    sections = SECTIONS if args.data_dir is None else ("monitoring",)
    problems = [p for p in settings_problems() if p.setting.split("]")[0][1:] in sections]
    if problems:
        said = "; ".join(map(str, problems))
        return unknown(f"{len(problems)} setting(s) unusable: {said}", args.json)
    settings = monitoring()
    days = settings.days if args.days is None else args.days
    try:
        now = clock.now()
    except clock.ClockError as exc:
        return unknown(f"cannot tell the time: {exc}", args.json)
    try:
        root = parse_root(args.data_dir) if args.data_dir else paths().root()
        health = check(root, now, days, settings.warn_after_hours, settings.critical_after_hours)
    except (ValueError, StoreError, OSError) as exc:
        return unknown(f"cannot read the data root: {exc}", args.json)
    if args.json:
        print(
            orjson.dumps(
                {"status": health.status, **asdict(health)}, option=orjson.OPT_INDENT_2
            ).decode()
        )
    else:
        print(text(health))
    return health.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
