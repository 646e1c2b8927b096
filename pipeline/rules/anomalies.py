"""Anomalies: each hour's figures against the same figures of the hours before it.

Pure pandas, no I/O. The history (``rules.history``: rows of levels ``hour`` and ``category``
with their ``date_hour``) goes in, one check per figure comes out: the hour's carts, lines, units
and revenue, and each category's share of the revenue. The expected band of a figure is made
from its values in the trailing window: the ``window`` clock hours before the hour, of which only
those on record count (a missing or failed hour is no hour without sales). A robust band, so one
odd hour in the window does not widen it for a day:

    median ± max(k · 1.4826 · MAD, 5 % of |median|, one unit of the figure)

MAD is the median absolute deviation from the median; times 1.4826 it estimates the standard
deviation of normally distributed values, so ``k`` reads like a number of standard deviations
(3.5 by default, Iglewicz and Hoaglin's cut-off for modified z-scores). The floor keeps a flat
series (MAD 0) from flagging a one-cent change: the band is never narrower than 5 % of the median
either side, nor than one cart, line or unit, one dollar or one percentage point of share.
Both edges are rounded to hundredths and belong to the band (the value's own precision: cents,
hundredths of a percentage point); the low edge is never below 0. With fewer than
``min_hours`` hours in the window a figure gets no verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from pipeline.rules.history import HOUR_FORMAT, PARTITION_KEY
from pipeline.rules.numbers import cents, div_half_up

MEASURES = ("carts", "lines", "units", "revenue")
SHARE = "share:"  # a category's share check is named ``share:<category>``
MAD_SCALE = 1.4826
RELATIVE_FLOOR = 0.05
#: The smallest half-width of a band, in the figure's unit: counts 1, dollars 1, share 1 point.
UNIT_FLOOR = 1.0
OK, ANOMALY, NO_VERDICT = "ok", "anomaly", "no verdict"
#: The columns of a checks frame, in order.
COLUMNS = ("name", "value", "low", "high", "status", "median", "hours")


class AnomalyError(ValueError):
    """An hour's figure is outside its band and ``[quality] anomalies = fail``."""


@dataclass(frozen=True)
class Settings:
    window: int = 24  # clock hours before the hour
    k: float = 3.5
    min_hours: int = 12


def band(values: Sequence[float] | np.ndarray, k: float) -> tuple[float, float, float]:
    """(low, high, median) of the band of ``values`` (at least one), edges to hundredths; never
    below 0, as no figure checked can be (counts, dollars, shares)."""
    series = np.asarray(values, dtype="float64")
    median = float(np.median(series))
    mad = float(np.median(np.abs(series - median)))
    half = max(k * MAD_SCALE * mad, RELATIVE_FLOOR * abs(median), UNIT_FLOOR)
    return max(round(median - half, 2), 0.0), round(median + half, 2), median


def verdict(value: float, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return NO_VERDICT
    return OK if low <= value <= high else ANOMALY


def figures(history: pd.DataFrame) -> pd.DataFrame:
    """One row per hour on record (index ``date_hour``): carts, lines, units, revenue (dollars)
    and ``share:<category>`` (percent of the hour's revenue to hundredths; 0 where the category
    sold nothing). Shares come from whole cents, so they are exact to the hundredth."""
    hours = history[history["level"] == "hour"].set_index(PARTITION_KEY)
    out = pd.DataFrame(
        {m: hours[m].astype("float64") for m in MEASURES}, index=hours.index.astype(str)
    )
    revenue_cents = cents(hours["revenue"])
    revenue_cents.index = out.index
    cats = history[history["level"] == "category"]
    per_hour = (
        cats.assign(cents=cents(cats["revenue"]), hour=cats[PARTITION_KEY].astype(str))
        .pivot_table(index="hour", columns="category", values="cents", aggfunc="sum")
        .reindex(index=out.index)
        .fillna(0)
        .astype("int64")
    )
    for category in sorted(per_hour.columns):
        out[f"{SHARE}{category}"] = [
            div_half_up(10_000 * int(c), int(total)) / 100 if total else 0.0
            for c, total in zip(per_hour[category], revenue_cents, strict=True)
        ]
    return out.sort_index()


def window_hours(hour: str, window: int) -> tuple[str, str]:
    """First and last hour of the trailing window of ``hour`` (the hour itself not in it)."""
    end = datetime.strptime(hour, HOUR_FORMAT)
    first, last = end - timedelta(hours=window), end - timedelta(hours=1)
    return first.strftime(HOUR_FORMAT), last.strftime(HOUR_FORMAT)


def check(history: pd.DataFrame, hour: str, settings: Settings) -> pd.DataFrame:
    """The checks of ``hour`` (its rows must be in ``history``) against its trailing window:
    one row per figure (``COLUMNS``), the totals first, then the shares by category name.

    ``hours`` is how many hours of the window are on record; ``low``/``high``/``median`` are
    NaN without a verdict. A category sold in the window but not in the hour has share 0, one
    new in the hour has a window of zeros: both are checked.
    """
    table = figures(history)
    if hour not in table.index:
        raise ValueError(f"no history rows of hour {hour}")
    first, last = window_hours(hour, settings.window)
    past = table[(table.index >= first) & (table.index <= last)]
    now = table.loc[hour]
    rows = []
    for name in table.columns:
        value = float(now[name])
        if name.startswith(SHARE) and value == 0 and not past[name].any():
            continue  # a category sold neither in the hour nor in its window
        low = high = median = None
        if len(past) >= settings.min_hours:
            low, high, median = band(past[name].to_numpy(), settings.k)
        rows.append((name, value, low, high, verdict(value, low, high), median, len(past)))
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype(
        {"value": "float64", "low": "float64", "high": "float64", "median": "float64"}
    )


def anomalies(checks: pd.DataFrame) -> pd.DataFrame:
    return checks[checks["status"] == ANOMALY]
