"""What to tell an operator about a failure: one line of cause, one of what to do.

luigi logs each failure's traceback into the run log; the console gets this instead. Exception
classes are recognised without importing their modules (some import pandas): an exception of a
class whose module is not loaded cannot have been raised.
"""

from __future__ import annotations

import errno
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.api.errors import ApiError
from pipeline.config import ConfigError, ConfigExit
from pipeline.suggested import RERUN_ENV, command, run_again, try_the_demo

__all__ = ["RERUN_ENV", "Explanation", "explain"]

REPORT = "unexpected: the traceback is in the run log; please report it with that log"


@dataclass(frozen=True)
class Explanation:
    cause: str  # one line: what failed and why
    todo: str  # one line: what to do about it ("" when the cause says it all)


def _is(exc: BaseException, module: str, name: str) -> bool:
    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and isinstance(exc, cls)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _api(exc: ApiError, rerun: str) -> str:
    """What to do about an API failure, by its cause."""
    url = next((w for w in str(exc).split() if w.startswith(("http://", "https://"))), "")
    parts = urlsplit(url)
    host = parts.hostname or "the API's host"
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address, as a URL writes it
    where = f"{shown}:{parts.port}" if parts.hostname and parts.port else host  # no credentials
    if exc.cause == "dns":
        return (
            f"check the network and DNS (can this machine resolve {host}?); or try {try_the_demo()}"
        )
    if exc.cause == "refused":
        return (
            f"is the API running and listening at {where}? Check PIPELINE_API_URL / [api] "
            f"base_url; or try {try_the_demo()}"
        )
    if exc.cause in ("timeout", "connection"):
        return f"check the network and the API's status, then {rerun}"
    if exc.cause == "circuit":
        return ""  # the first failure above says what to do
    if exc.cause == "tls":
        return (
            "the API's certificate does not verify: never turn verification off; an internal "
            "CA goes in REQUESTS_CA_BUNDLE"
        )
    if exc.cause == "request":
        return "fix PIPELINE_API_URL / [api] base_url"
    if exc.status == 429:
        return (
            "the API keeps asking this host to slow down: lower [api] rate_limit_requests, "
            f"then {rerun}"
        )
    if (exc.status is not None and exc.status >= 500) or exc.cause == "body":
        return f"the API is failing; {rerun} once it is healthy"
    if exc.status is not None:
        return f"the API answered HTTP {exc.status}: check PIPELINE_API_URL / [api] base_url"
    return rerun


def _os(exc: OSError) -> Explanation | None:
    where = exc.filename or "the data root"
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM):
        todo = "give this user write access to the data root, or point PIPELINE_DATA_DIR elsewhere"
    elif exc.errno == errno.EROFS:
        todo = "the data root is on a read-only filesystem: point PIPELINE_DATA_DIR elsewhere"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = "free space on the data root's filesystem (or lower [housekeeping] retention_hours)"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        todo = "something that is not a directory is in the way under the data root: move it"
    else:
        return None
    return Explanation(f"cannot write {where}: {reason}", todo)


def explain(exc: BaseException, partition: Path | None = None) -> Explanation:
    """The cause of ``exc`` in one line and what to do about it, for the console and e-mails.

    ``partition`` is the failed task's partition folder: the hints name it and the command that
    reruns it.
    """
    hour = partition.name if partition is not None else "<hour>"
    rerun = f"rerun the hour: {run_again(hour)}"
    cause = _first_line(exc)
    if isinstance(exc, ApiError):
        if exc.cause == "circuit":
            cause = cause.split(" (", 1)[0]  # the first failure, shown above, is the reason
        return Explanation(cause, _api(exc, rerun))
    if isinstance(exc, ConfigExit):  # found by a worker that did not schedule the task
        return Explanation(exc.message, "fix the setting (docs/settings.md), then run again")
    if isinstance(exc, ConfigError):
        return Explanation(cause, "fix the setting (docs/settings.md), then run again")
    if _is(exc, "pipeline.extract", "ExtractError"):
        return Explanation(
            cause,
            f"{rerun} (it takes a fresh snapshot); if it fails the same way the API changed: "
            "compare with pipeline/rules/contract.py",
        )
    if _is(exc, "pipeline.ops.rerun", "HalfSwapped"):
        finish = command("rerun", "--date-hour", hour, in_checkout=True)
        return Explanation(cause, f"nothing was published; finish the swap: {finish}")
    if _is(exc, "pipeline.rules.quality", "QualityError"):
        return Explanation(
            cause,
            f"the offending rows are in {partition or hour}/rejected/<check>.csv; to accept N of "
            "them: --quality-max-bad-rows '{\"<check>\": N}' or [quality] max_bad_rows",
        )
    if _is(exc, "pipeline.rules.anomalies", "AnomalyError"):
        return Explanation(
            cause,
            f"nothing of the hour was published ([quality] anomalies = fail); if the figures "
            f"are right (a sale, an outage of the shop), publish it: {run_again(hour)} "
            "--quality-anomalies warn",
        )
    if _is(exc, "pipeline.rules.insights", "ReconciliationError"):
        return Explanation(
            cause, "the figures do not add up: a bug or inconsistent API data; " + REPORT
        )
    if isinstance(exc, OSError) and (explained := _os(exc)) is not None:
        return explained
    return Explanation(f"{type(exc).__name__}: {cause}", REPORT)
