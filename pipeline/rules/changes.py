"""What changed since the previous complete hour: totals, categories and cart ids, and the
sentences that say so. Pure functions, no I/O; figures exact as in ``numbers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from pipeline.rules.numbers import TOP, count, listing, money, percent, plural, tenths_percent
from pipeline.rules.tables import category_table, unique_ids

IDS_SHOWN = 10  # cart ids a what-changed sentence lists


@dataclass(frozen=True)
class Snapshot:
    """The figures of one hour that the what-changed section compares."""

    name: str
    carts: int
    lines: int
    units: int
    revenue: int  # cents
    categories: pd.DataFrame  # category, revenue (cents), units
    cart_ids: np.ndarray  # sorted, unique


def snapshot(name: str, category_summary: pd.DataFrame, cart_ids: pd.Series) -> Snapshot:
    cats = category_table(category_summary)[["category", "revenue", "units"]]
    ids = unique_ids(cart_ids)
    return Snapshot(
        name=name,
        carts=len(ids),
        lines=len(cart_ids),
        units=int(cats["units"].sum()),
        revenue=int(cats["revenue"].sum()),
        categories=cats,
        cart_ids=ids,
    )


@dataclass(frozen=True)
class Changes:
    """This hour against the previous complete one (``previous`` None: there is none)."""

    previous: str | None
    totals: pd.DataFrame  # measure, before, now, change (revenue in cents)
    categories: pd.DataFrame  # category, revenue_before/_now/_change, units_before/_now/_change
    appeared: np.ndarray
    vanished: np.ndarray
    sentences: list[str]


def _hours_between(earlier: str, later: str) -> int:
    fmt = "%Y-%m-%dT%H"
    delta = datetime.strptime(later, fmt) - datetime.strptime(earlier, fmt)
    return int(delta.total_seconds() // 3600)


def _ids(ids: np.ndarray) -> str:
    shown = ", ".join(str(i) for i in ids[:IDS_SHOWN])
    more = f" and {len(ids) - IDS_SHOWN:,} more" if len(ids) > IDS_SHOWN else ""
    return f"{'id' if len(ids) == 1 else 'ids'} {shown}{more}"


def _delta(change: int, is_money: bool) -> str:
    if change == 0:
        return "no change"
    return money(change, sign=True) if is_money else count(change, sign=True)


def changes(current: Snapshot, previous: Snapshot | None) -> Changes:
    """Totals, categories and cart ids of ``current`` against ``previous``."""
    measures = ("carts", "lines", "units", "revenue")
    if previous is None:
        empty = np.array([], dtype="int64")
        return Changes(
            previous=None,
            totals=pd.DataFrame(
                {"measure": measures, "now": [getattr(current, m) for m in measures]}
            ),
            categories=pd.DataFrame(),
            appeared=empty,
            vanished=empty,
            sentences=[
                "There is no earlier complete snapshot, so there is nothing to compare this "
                "hour with."
            ],
        )
    before = [getattr(previous, m) for m in measures]
    now = [getattr(current, m) for m in measures]
    totals = pd.DataFrame({"measure": measures, "before": before, "now": now})
    totals["change"] = totals["now"] - totals["before"]

    cats = previous.categories.merge(
        current.categories, on="category", how="outer", suffixes=("_before", "_now")
    ).fillna(0)
    for column in ("revenue", "units"):
        cats[[f"{column}_before", f"{column}_now"]] = cats[
            [f"{column}_before", f"{column}_now"]
        ].astype("int64")
        cats[f"{column}_change"] = cats[f"{column}_now"] - cats[f"{column}_before"]
    cats = cats.assign(_size=cats["revenue_change"].abs())
    cats = cats.sort_values(["_size", "category"], ascending=[False, True], ignore_index=True)
    cats = cats.drop(columns="_size")[
        ["category", "revenue_before", "revenue_now", "revenue_change",
         "units_before", "units_now", "units_change"]
    ]  # fmt: skip

    appeared = np.setdiff1d(current.cart_ids, previous.cart_ids, assume_unique=True)
    vanished = np.setdiff1d(previous.cart_ids, current.cart_ids, assume_unique=True)

    hours = _hours_between(previous.name, current.name)
    rev = totals.iloc[3]
    rate = (
        f", {percent(tenths_percent(int(rev['change']), int(rev['before'])), sign=True)}"
        if rev["before"] and rev["change"]
        else ""
    )
    parts = [
        f"{m} {count(n)} ({_delta(c, False)})"
        for m, n, c in zip(measures[:3], now[:3], totals["change"][:3], strict=True)
    ]
    parts.append(f"revenue {money(now[3])} ({_delta(int(rev['change']), True)}{rate})")
    sentences = [f"Against {previous.name} ({plural(hours, 'hour')} earlier): {', '.join(parts)}."]
    bits = []
    if len(appeared):
        bits.append(f"{plural(len(appeared), 'cart')} appeared ({_ids(appeared)})")
    if len(vanished):
        who = count(len(vanished)) if bits else plural(len(vanished), "cart")
        bits.append(f"{who} vanished ({_ids(vanished)})")
    sentences.append(f"{' and '.join(bits)}." if bits else "No cart appeared or vanished.")
    moved = cats[(cats["revenue_change"] != 0) | (cats["units_change"] != 0)]
    if moved.empty:
        sentences.append("Revenue and units by category are unchanged.")
    else:
        shown = [
            f"{r.category} {money(r.revenue_change, sign=True)} "
            f"({money(r.revenue_before)} to {money(r.revenue_now)}, "
            f"units {count(r.units_change, sign=True)})"
            for r in moved.head(TOP).itertuples()
        ]
        rest = len(moved) - len(shown)
        tail = (
            f"; {plural(rest, 'other category', 'other categories')} changed less" if rest else ""
        )
        sentences.append(f"By category: {listing(shown)}{tail}.")
    return Changes(previous.name, totals, cats, appeared, vanished, sentences)
