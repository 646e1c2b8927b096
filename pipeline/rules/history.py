"""The history dataset's rows for one hour, and the trends the report draws from many hours.

Pure functions, no I/O. The dataset is one long table, so pandas, pyarrow and DuckDB read every
hour as one table: ``level`` says what a row describes, ``hour`` (the whole hour), ``category``
(one category) or ``user`` (one customer, by id only: the history outlives the partitions, so it
keeps no name or city). The hour itself is the Hive partition key ``date_hour``, not a column of
the files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.rules.numbers import cents, div_half_up, money, plural

#: Columns of the history files and their pandas types, declared once (storage maps them to
#: Parquet). Figures that do not apply to a level are null.
COLUMNS: dict[str, str] = {
    "level": "string",  # "hour" | "category" | "user" | "drift"
    "category": "string",  # level "category" only
    "user_id": "Int64",  # level "user" only
    "carts": "Int64",  # hour, user
    "lines": "Int64",  # hour
    "users": "Int64",  # hour: customers with at least one cart
    "units": "Int64",
    "revenue": "float64",  # dollars at list price, to the cent
    "revenue_discounted": "float64",  # dollars after discounts, to the cent
    # level "drift" only: a field the API added (sent, not declared) or a declared one it did
    # not send (absent from history written before: read as null)
    "endpoint": "string",
    "field": "string",  # dotted path, e.g. products.thumbnail
    "drift": "string",  # "added" | "missing"
    "run_id": "string",  # the run that wrote the hour (``lineage.run_id``); null in older files
}
PARTITION_KEY = "date_hour"
LEVELS = ("hour", "category", "user", "drift")
HOUR_FORMAT = "%Y-%m-%dT%H"
TOP_CATEGORIES = 5  # categories drawn in the trend of the top categories


def _dollars(c: pd.Series) -> pd.Series:
    return c.astype("float64") / 100  # cents / 100: the nearest double to the cent value


#: The columns of user_summary.csv that ``hour_rows`` reads: not the text ones, whose parsing was
#: most of the cost of reading the file (5M customers at 10M carts).
USER_COLUMNS = ("user_id", "carts", "total_items", "total_spent", "total_spent_discounted")


def hour_rows(
    user_summary: pd.DataFrame,
    category_summary: pd.DataFrame,
    lines: int,
    run_id: str | None = None,
) -> pd.DataFrame:
    """One hour's history rows: the hour's totals, then one row per category and per customer.

    Every figure is taken from the insight tables, so the history agrees with them to the cent.
    ``lines`` is the number of cart lines (rows of cart_details.csv); the carts are counted from
    user_summary.csv, where each cart counts once, for its one customer. Every row names the
    run that wrote it (``run_id``).
    """
    cat_revenue = cents(category_summary["total_sales"])
    cat_discounted = cents(category_summary["total_sales_discounted"])
    total = _rows(
        "hour",
        run_id,
        carts=[int(user_summary["carts"].sum())],
        lines=[int(lines)],
        users=[len(user_summary)],
        units=[int(category_summary["total_items_sold"].sum())],
        revenue=[int(cat_revenue.sum()) / 100],
        revenue_discounted=[int(cat_discounted.sum()) / 100],
    )
    by_category = category_summary.assign(
        revenue=_dollars(cat_revenue), revenue_discounted=_dollars(cat_discounted)
    ).sort_values("category")
    categories = _rows(
        "category",
        run_id,
        category=by_category["category"],
        units=by_category["total_items_sold"],
        revenue=by_category["revenue"],
        revenue_discounted=by_category["revenue_discounted"],
    )
    by_user = user_summary.sort_values("user_id")
    users = _rows(
        "user",
        run_id,
        user_id=by_user["user_id"],
        carts=by_user["carts"],
        units=by_user["total_items"],
        revenue=_dollars(cents(by_user["total_spent"])),
        revenue_discounted=_dollars(cents(by_user["total_spent_discounted"])),
    )
    return pd.concat([total, categories, users], ignore_index=True)


def _rows(level: str, run_id: str | None, **values: Sequence[Any]) -> pd.DataFrame:
    """History rows of one ``level``: ``values`` by column, every other column null, each column
    of its ``COLUMNS`` type as it is built (converting the repeated level and run id from Python
    strings took most of the time for 500k customers)."""
    n = len(next(iter(values.values())))
    repeated = {"level": level, "run_id": run_id}
    columns: dict[str, Any] = {}
    for name, dtype in COLUMNS.items():
        if name in values:
            columns[name] = pd.array(values[name], dtype=dtype)
        elif dtype == "string":
            text = repeated.get(name)
            one = pa.array([text], pa.large_string())
            columns[name] = pd.array(one.take(np.zeros(n, np.intp)), dtype=dtype)
        elif dtype == "Int64":
            columns[name] = pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, bool))
        else:
            columns[name] = np.full(n, np.nan)
    return pd.DataFrame(columns)


ADDED, MISSING = "added", "missing"


def drift_entries(drift: Mapping[str, Mapping[str, Sequence[str]]]) -> list[tuple[str, str, str]]:
    """(endpoint, "added" | "missing", field) of an hour's schema drift, in a stable order."""
    return [
        (endpoint, kind, name)
        for endpoint in sorted(drift)
        for kind in (ADDED, MISSING)
        for name in sorted(drift[endpoint].get(kind, ()))
    ]


def drift_rows(drift: dict[str, dict[str, list[str]]], run_id: str | None = None) -> pd.DataFrame:
    """One history row per field of the hour's schema drift (the manifest's ``schema_drift``)."""
    endpoint, kind, field = ([entry[i] for entry in drift_entries(drift)] for i in range(3))
    return _rows("drift", run_id, endpoint=endpoint, field=field, drift=kind)


@dataclass(frozen=True)
class Trends:
    """The last days of history up to one hour: the hours on record and the top categories."""

    first: str  # first hour of the window
    last: str  # the report's hour
    days: int  # the window's length
    hours: pd.DataFrame  # date_hour, hour (datetime), carts, revenue (cents)
    categories: pd.DataFrame  # hour (datetime) x top categories: revenue in cents
    sentence: str


def window(last: str, days: int) -> tuple[str, str]:
    """First and last hour of the ``days`` days ending with hour ``last`` (both included)."""
    end = datetime.strptime(last, HOUR_FORMAT)
    return (end - timedelta(days=days) + timedelta(hours=1)).strftime(HOUR_FORMAT), last


def trends(history: pd.DataFrame, last: str, days: int) -> Trends:
    """Revenue and carts per hour and the top categories' revenue per hour, from ``history``
    rows of levels ``hour`` and ``category`` (with their ``date_hour``) within the window.

    Hours without a record stay absent (a missing run is not an hour without sales).
    """
    first, last = window(last, days)
    inside = history[(history[PARTITION_KEY] >= first) & (history[PARTITION_KEY] <= last)]
    hours = inside[inside["level"] == "hour"].sort_values(PARTITION_KEY)
    hours = pd.DataFrame(
        {
            PARTITION_KEY: hours[PARTITION_KEY].astype(str).to_numpy(),
            "hour": pd.to_datetime(hours[PARTITION_KEY].astype(str), format=HOUR_FORMAT).to_numpy(),
            "carts": hours["carts"].astype("int64").to_numpy(),
            "revenue": cents(hours["revenue"]).to_numpy(),
        }
    )
    cats = inside[inside["level"] == "category"].assign(revenue=lambda f: cents(f["revenue"]))
    totals = cats.groupby("category")["revenue"].sum()
    top = (
        totals.reset_index()
        .sort_values(["revenue", "category"], ascending=[False, True])["category"]
        .head(TOP_CATEGORIES)
        .tolist()
    )
    per_hour = (
        cats[cats["category"].isin(top)]
        .pivot_table(index=PARTITION_KEY, columns="category", values="revenue", aggfunc="sum")
        .reindex(columns=top)
        .fillna(0)
        .astype("int64")
    )
    per_hour.index = pd.to_datetime(per_hour.index.astype(str), format=HOUR_FORMAT)
    per_hour.index.name = "hour"
    return Trends(first, last, days, hours, per_hour, _sentence(hours, last, days))


def _sentence(hours: pd.DataFrame, last: str, days: int) -> str:
    span = plural(days, "day")
    if len(hours) <= 1:
        return f"This is the only hour on record in the last {span}: no trend yet."
    total = int(hours["revenue"].sum())
    avg = div_half_up(total, len(hours))
    avg_carts = div_half_up(10 * int(hours["carts"].sum()), len(hours))
    this = hours[hours[PARTITION_KEY] == last]
    text = (
        f"Over the last {span}, {plural(len(hours), 'hour')} are on record: {money(total)} of "
        f"revenue, {money(avg)} and {avg_carts // 10:,}.{avg_carts % 10} carts an hour on average"
    )
    if len(this):
        now = int(this["revenue"].iloc[0])
        text += f"; this hour {money(now)} ({money(now - avg, sign=True)} against the average)"
    return text + "."
