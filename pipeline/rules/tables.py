"""The hour's small tables, worked out from its insight tables: the findings, the charts and
the report's tables are all made from these. Pure pandas, money in cents (``numbers``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.rules.numbers import cents, div_half_up, plural

#: Age bands of the spending-by-age finding: (label, lowest age, highest age).
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("under 25", 0, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55-64", 55, 64),
    ("65 and over", 65, 10_000),
)


UNKNOWN_AGE = "age unknown"


UNKNOWN = "(unknown)"


MAX_CART_GROUP = 6  # customers with this many carts or more form one frequency group


def category_table(category_summary: pd.DataFrame) -> pd.DataFrame:
    """Per category, revenue first: revenue, units, discounted revenue and discount, in cents."""
    out = pd.DataFrame(
        {
            "category": category_summary["category"].astype(str),
            "revenue": cents(category_summary["total_sales"]),
            "units": category_summary["total_items_sold"].astype("int64"),
            "discounted": cents(category_summary["total_sales_discounted"]),
        }
    )
    out["discount"] = out["revenue"] - out["discounted"]
    return out.sort_values(["revenue", "category"], ascending=[False, True], ignore_index=True)


def people(user_summary: pd.DataFrame) -> pd.DataFrame:
    """user_summary.csv as the findings use it: spend in cents, missing names and cities shown."""
    return pd.DataFrame(
        {
            "user_id": user_summary["user_id"].astype("int64"),
            "first_name": user_summary["first_name"].fillna(UNKNOWN).astype(str),
            "age": user_summary["age"],
            "city": user_summary["city"].fillna(UNKNOWN).astype(str),
            "carts": user_summary["carts"].astype("int64"),
            "spend": cents(user_summary["total_spent"]),
        }
    )


def customer_table(people: pd.DataFrame) -> pd.DataFrame:
    """Customers by spend, largest first (ties: lower user id first)."""
    return people.sort_values(["spend", "user_id"], ascending=[False, True], ignore_index=True)


def city_table(people: pd.DataFrame) -> pd.DataFrame:
    """Per city: customers, carts and spend in cents, largest spend first."""
    out = (
        people.groupby("city", sort=True)
        .agg(customers=("user_id", "size"), carts=("carts", "sum"), spend=("spend", "sum"))
        .reset_index()
    )
    return out.sort_values(["spend", "city"], ascending=[False, True], ignore_index=True)


def age_band(ages: pd.Series) -> pd.Series:
    """The ``AGE_BANDS`` label of each age; ``UNKNOWN_AGE`` where the age is missing."""
    edges = [low for _, low, _ in AGE_BANDS] + [AGE_BANDS[-1][2] + 1]
    labels = [label for label, _, _ in AGE_BANDS]
    bands = pd.cut(ages, bins=edges, right=False, labels=labels)
    return bands.astype(object).where(bands.notna(), UNKNOWN_AGE)


def age_table(people: pd.DataFrame) -> pd.DataFrame:
    """Per age band in age order (unknown last): customers, spend in cents; empty bands kept."""
    bands = age_band(people["age"])
    grouped = people.groupby(bands).agg(customers=("user_id", "size"), spend=("spend", "sum"))
    order = [label for label, _, _ in AGE_BANDS]
    if UNKNOWN_AGE in grouped.index:
        order.append(UNKNOWN_AGE)
    out = grouped.reindex(order, fill_value=0).rename_axis("band").reset_index()
    return out.astype({"customers": "int64", "spend": "int64"})


def frequency_table(people: pd.DataFrame) -> pd.DataFrame:
    """Customers grouped by their number of carts (``MAX_CART_GROUP`` or more as one group):
    customers, carts, spend in cents and the average cart value in cents."""
    out = (
        people.assign(group=people["carts"].clip(upper=MAX_CART_GROUP))
        .groupby("group", sort=True)
        .agg(customers=("user_id", "size"), carts=("carts", "sum"), spend=("spend", "sum"))
        .reset_index()
    )
    out["avg_cart"] = [div_half_up(s, c) for s, c in zip(out["spend"], out["carts"], strict=True)]
    return out.astype({"avg_cart": "int64"})


def unique_ids(ids: pd.Series) -> np.ndarray:
    """The distinct ids, sorted. cart_details.csv lists carts in id order, so one pass over
    neighbours finds them (a hash of 3M ids costs 0.5 s); any other order is sorted."""
    values = ids.to_numpy(dtype="int64")
    if len(values) and bool(np.all(values[1:] >= values[:-1])):
        return values[np.concatenate(([True], values[1:] != values[:-1]))]
    return np.unique(values)


def group_label(group: int) -> str:
    return f"{MAX_CART_GROUP} or more carts" if group >= MAX_CART_GROUP else plural(group, "cart")


@dataclass(frozen=True)
class Tables:
    """The hour's small tables that findings, charts and the report's tables are made from."""

    categories: pd.DataFrame
    customers: pd.DataFrame  # every customer, by spend
    cities: pd.DataFrame
    ages: pd.DataFrame
    frequency: pd.DataFrame
    lines: int
    carts: int

    @property
    def revenue(self) -> int:
        return int(self.categories["revenue"].sum())

    @property
    def discounted(self) -> int:
        return int(self.categories["discounted"].sum())

    @property
    def units(self) -> int:
        return int(self.categories["units"].sum())


def tables(
    user_summary: pd.DataFrame, category_summary: pd.DataFrame, cart_ids: pd.Series
) -> Tables:
    """Every table of the report from the three insights (of cart_details, only its cart ids)."""
    who = people(user_summary)
    return Tables(
        categories=category_table(category_summary),
        customers=customer_table(who),
        cities=city_table(who),
        ages=age_table(who),
        frequency=frequency_table(who),
        lines=len(cart_ids),
        carts=len(unique_ids(cart_ids)),
    )
