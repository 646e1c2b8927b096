"""The hour's checks as the report's Checks section and the manifest list them. Pure, no I/O.

Two kinds: the quality gates (rows each found, against ``[quality] max_bad_rows``: a gate over
its threshold failed the run before any report) and the anomalies against past hours
(``rules.anomalies``). Every check is one record, the manifest's shape::

    {"name": str, "value": float, "low": float | None, "high": float | None,
     "status": "ok" | "anomaly" | "no verdict",
     "change": "new" | "still failing" | "resolved" | None}

``change`` compares with the checks the previous complete hour recorded: an anomaly is new, or
still failing; a check that was an anomaly and is ok now is resolved.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline.rules import anomalies
from pipeline.rules.anomalies import ANOMALY, OK, SHARE
from pipeline.rules.history import ADDED, drift_entries
from pipeline.rules.numbers import count, money, plural

Check = dict[str, Any]
NEW, STILL, RESOLVED = "new", "still failing", "resolved"


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def gate_checks(gates: Mapping[str, Mapping[str, int]]) -> list[Check]:
    """Checks of the quality gates from ``{check: {"rows": n, "allowed": threshold}}``."""
    return [
        {
            "name": name,
            "value": float(g["rows"]),
            "low": 0.0,
            "high": float(g["allowed"]),
            "status": OK if g["rows"] <= g["allowed"] else ANOMALY,
        }
        for name, g in gates.items()
    ]


def anomaly_checks(frame: pd.DataFrame | Iterable[Mapping[str, Any]]) -> list[Check]:
    """Checks of the anomalies (``anomalies.check``'s frame, or its records)."""
    rows = frame.to_dict("records") if isinstance(frame, pd.DataFrame) else frame
    return [
        {
            "name": str(r["name"]),
            "value": float(r["value"]),
            "low": _number(r["low"]),
            "high": _number(r["high"]),
            "status": str(r["status"]),
        }
        for r in rows
    ]


def change(status: str, before: str | None) -> str | None:
    """An anomaly is new, or still failing since the previous hour; a check back to ok after an
    anomaly is resolved; anything else is no change worth saying."""
    if status == ANOMALY:
        return STILL if before == ANOMALY else NEW
    if status == OK and before == ANOMALY:
        return RESOLVED
    return None


def with_changes(checks: Sequence[Check], previous: Sequence[Check] | None) -> list[Check]:
    """``checks`` each with its ``change`` against the previous hour's (None: none recorded)."""
    before = {c["name"]: c.get("status") for c in previous or ()}
    return [{**c, "change": change(c["status"], before.get(c["name"]))} for c in checks]


def resolved_since(checks: Sequence[Check], previous: Sequence[Check] | None) -> list[str]:
    """Names of the previous hour's anomalies that are no check of this hour at all (e.g. a
    category that sells nothing now): they are resolved too, and listed so."""
    names = {c["name"] for c in checks}
    return [
        c["name"] for c in previous or () if c.get("status") == ANOMALY and c["name"] not in names
    ]


def is_anomaly_check(name: str) -> bool:
    return name in ("carts", "lines", "units", "revenue") or name.startswith(SHARE)


def label(name: str) -> str:
    """How a check is named to people: ``share:beauty`` -> ``share of beauty``."""
    return f"share of {name.removeprefix(SHARE)}" if name.startswith(SHARE) else name


def shown(name: str, value: float | None) -> str:
    """A value in its check's unit: dollars, percent of revenue, or a count."""
    if value is None:
        return "n/a"
    if name == "revenue":
        return money(round(value * 100))
    if name.startswith(SHARE):
        return f"{value:.2f}%"
    return count(int(value)) if float(value).is_integer() else f"{value:,.2f}"


def expected(check: Check) -> str:
    """The band as the report says it."""
    name, low, high = check["name"], check["low"], check["high"]
    if low is None or high is None:
        return "no verdict"
    if not is_anomaly_check(name):
        return f"at most {shown(name, high)}"
    return f"{shown(name, low)} to {shown(name, high)}"


def sentence(check: Check) -> str:
    """``carts 40 (expected 95 to 105)``."""
    name = check["name"]
    return f"{label(name)} {shown(name, check['value'])} (expected {expected(check)})"


def anomaly_finding(checks: Sequence[Check], hours: int) -> str | None:
    """The findings' sentence on what is anomalous, or None when nothing is."""
    found = [c for c in checks if c["status"] == ANOMALY and is_anomaly_check(c["name"])]
    if not found:
        return None
    return (
        f"Anomalies against the {plural(hours, 'complete hour')} before this one: "
        + "; ".join(sentence(c) for c in found)
        + "."
    )


def window_sentence(hours: int, window: int, needed: int, k: float, anomalies: int) -> str:
    """What the anomaly checks were measured against, or why they give no verdict."""
    if hours < needed:
        return (
            f"No verdict on anomalies yet: {plural(hours, 'complete hour')} on record of the "
            f"{window} before this one, {needed} needed."
        )
    found = plural(anomalies, "anomaly", "anomalies") if anomalies else "no anomaly"
    return (
        f"Each figure against its {plural(hours, 'complete hour')} on record of the {window} "
        f"before this one (median ± {k:g} × 1.4826 × MAD, at least 5 % of the median): "  # noqa: RUF001
        f"{found}."
    )


def failure_message(checks: Sequence[Check], hour: str) -> str:
    """The one line a run stopped by ``[quality] anomalies = fail`` prints."""
    found = [c for c in checks if c["status"] == ANOMALY]
    return f"{hour}: anomaly against past hours: " + "; ".join(
        f"{label(c['name'])} = {shown(c['name'], c['value'])} outside its band "
        f"{shown(c['name'], c['low'])} to {shown(c['name'], c['high'])}"
        for c in found
    )


def hour_verdict(
    history: pd.DataFrame, hour: str, settings: anomalies.Settings, fail: bool
) -> dict[str, Any]:
    """Hour ``hour``'s anomaly checks against the complete hours before it (``history``: rows of
    the trailing window and of the hour, with ``date_hour``), as the hour's stats keep them.

    With ``fail`` (``[quality] anomalies = fail``) an anomaly raises AnomalyError naming each
    check, its value and its band, before anything of the hour is written.
    """
    found = anomalies.check(history, hour, settings)
    records = anomaly_checks(found)
    if fail and any(c["status"] == ANOMALY for c in records):
        raise anomalies.AnomalyError(failure_message(records, hour))
    window = {"hours": int(found["hours"].iloc[0]) if len(found) else 0,
              "window": settings.window, "needed": settings.min_hours, "k": settings.k}  # fmt: skip
    return {"anomalies": records, "anomaly_window": window}


# --- schema drift ---------------------------------------------------------------------------------


def first_seen(
    drift: Mapping[str, Mapping[str, Sequence[str]]], history: pd.DataFrame | None, hour: str
) -> list[tuple[str, str, str, str]]:
    """Each drift of the hour with the first hour the history records it (rows of level
    ``drift`` with ``endpoint``, ``drift`` and ``field``; this hour when it has none earlier)."""
    seen: dict[tuple[str, str, str], str] = {}
    if history is not None and "drift" in history.columns:
        rows = history[(history["level"] == "drift") & (history["date_hour"] <= hour)]
        for r in rows.itertuples():
            key = (str(r.endpoint), str(r.drift), str(r.field))
            when = str(r.date_hour)
            if key not in seen or when < seen[key]:
                seen[key] = when
    return [(e, k, f, seen.get((e, k, f), hour)) for e, k, f in drift_entries(drift)]


def drift_sentences(entries: Sequence[tuple[str, str, str, str]]) -> list[str]:
    if not entries:
        return ["No schema drift: the API sent every declared field and no field the schema "
                "does not know."]  # fmt: skip
    out = []
    for endpoint, kind, name, when in entries:
        what = (
            "sent, not declared in pipeline/schema.py: dropped, not stored"
            if kind == ADDED
            else "declared, not sent in any record"
        )
        out.append(f"{endpoint}: {name} {kind} ({what}); first seen {when}.")
    return out


@dataclass(frozen=True)
class HourChecks:
    """What the report's Checks section shows of one hour."""

    checks: list[Check]  # with their change since the previous hour
    window: dict[str, Any]  # hours on record, window, needed, k (empty: not recorded)
    drift: dict[str, dict[str, list[str]]]  # the manifest's schema_drift
    resolved: list[str] = field(default_factory=list)  # ``resolved_since``

    @property
    def anomalies(self) -> list[Check]:
        return [c for c in self.checks if c["status"] == ANOMALY]

    def summary(self) -> str:
        """The sentence above the table: the window, or why there is no verdict yet."""
        w = self.window
        if not w:
            return "This hour's anomaly checks were not recorded (built by an older version)."
        found = [c for c in self.anomalies if is_anomaly_check(c["name"])]
        return window_sentence(w["hours"], w["window"], w["needed"], w["k"], len(found))

    def finding(self) -> str | None:
        return anomaly_finding(self.checks, self.window.get("hours", 0))
