"""Findings of one hour, worked out from its insight tables, and what changed since the last one.

Pure functions, no I/O. Money is handled in whole cents (int64) taken from the insight CSVs'
two-decimal values, so every sum is exact and every share or average rounds half a cent (or half
a tenth of a percent) away from zero, as the CSVs do: each figure in a sentence matches the CSVs
to the cent. Each finding carries its figures as exact values (``Decimal`` dollars, ``Decimal``
percentages, ints) so a test can recompute them one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd

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
TOP = 3  # entries a sentence names; the charts and tables show more
MAX_CART_GROUP = 6  # customers with this many carts or more form one frequency group
IDS_SHOWN = 10  # cart ids a what-changed sentence lists


# --- exact arithmetic and formatting -------------------------------------------------------------


def cents(values: pd.Series) -> pd.Series:
    """Two-decimal dollar values as int64 cents (missing values count as 0)."""
    return pd.Series(
        np.rint(values.astype("float64").fillna(0.0).to_numpy() * 100).astype("int64"),
        index=values.index,
    )


def div_half_up(num: int, den: int) -> int:
    """``num / den`` rounded to an integer, halves away from zero, exactly (``den`` > 0)."""
    q, r = divmod(abs(int(num)), int(den))
    q += 2 * r >= den
    return q if num >= 0 else -q


def dollars(c: int) -> Decimal:
    return Decimal(int(c)).scaleb(-2)


def tenths_percent(part: int, whole: int) -> Decimal:
    """``part / whole`` as a percentage with one decimal (0 when ``whole`` is 0)."""
    return Decimal(div_half_up(1000 * int(part), int(whole)) if whole else 0).scaleb(-1)


def money(c: int, sign: bool = False) -> str:
    """Cents as ``$1,234.56``; with ``sign``, ``+$1.00`` / ``-$1.00``."""
    text = f"${abs(int(c)) // 100:,}.{abs(int(c)) % 100:02d}"
    if c < 0:
        return "-" + text
    return ("+" + text) if sign else text


def percent(value: Decimal, sign: bool = False) -> str:
    text = f"{value:.1f}%"
    return f"+{text}" if sign and value >= 0 else text


def count(n: int, sign: bool = False) -> str:
    return f"{int(n):+,}" if sign else f"{int(n):,}"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{count(n)} {word if n == 1 else (words or word + 's')}"


def _listing(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --- tables --------------------------------------------------------------------------------------


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


def _group_label(group: int) -> str:
    return f"{MAX_CART_GROUP} or more carts" if group >= MAX_CART_GROUP else plural(group, "cart")


# --- findings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One sentence of the report with the exact figures it states."""

    topic: str
    text: str
    figures: dict[str, Decimal | int | str] = field(default_factory=dict)


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


def _sales(t: Tables) -> Finding:
    customers, avg = len(t.customers), div_half_up(t.revenue, t.carts)
    text = (
        f"Sales: {plural(t.carts, 'cart')} from {plural(customers, 'customer')}, "
        f"{plural(t.lines, 'line')}, {plural(t.units, 'unit')}; {money(t.revenue)} at list "
        f"prices and {money(t.discounted)} after discounts, {money(avg)} per cart on average."
    )
    figures = {
        "carts": t.carts, "customers": customers, "lines": t.lines, "units": t.units,
        "revenue": dollars(t.revenue), "discounted": dollars(t.discounted),
        "avg_cart": dollars(avg),
    }  # fmt: skip
    return Finding("sales", text, figures)


def _categories(t: Tables) -> Finding:
    cats, total = t.categories, t.revenue
    top = cats.head(TOP)
    figures: dict[str, Decimal | int | str] = {"categories": len(cats)}
    parts = []
    for i, row in enumerate(top.itertuples(), 1):
        share = tenths_percent(row.revenue, total)
        avg = div_half_up(row.revenue, row.units)
        parts.append(
            f"{row.category} {money(row.revenue)} ({percent(share)}; "
            f"{plural(row.units, 'unit')} at {money(avg)}{' on average' if i == 1 else ''})"
        )
        figures.update(
            {f"top{i}": row.category, f"top{i}_revenue": dollars(row.revenue),
             f"top{i}_share": share, f"top{i}_units": int(row.units),
             f"top{i}_avg_price": dollars(avg)}
        )  # fmt: skip
    top_share = tenths_percent(int(top["revenue"].sum()), total)
    figures["top_share"] = top_share
    if len(top) < len(cats):
        lead = f"the top {len(top)} of {len(cats)} take {percent(top_share)} of revenue"
    else:
        lead = f"all {plural(len(cats), 'category', 'categories')} by revenue"
    return Finding("categories", f"Categories: {lead}: {', '.join(parts)}.", figures)


def _units(t: Tables) -> Finding:
    by_units = t.categories.sort_values(["units", "category"], ascending=[False, True])
    row = by_units.iloc[0]
    units, revenue = int(row["units"]), int(row["revenue"])
    unit_share, revenue_share = tenths_percent(units, t.units), tenths_percent(revenue, t.revenue)
    avg = div_half_up(revenue, units)
    text = (
        f"Units: {row['category']} sells the most units, {count(units)} of {count(t.units)} "
        f"({percent(unit_share)}), for {money(revenue)} ({percent(revenue_share)} of revenue) "
        f"at {money(avg)} a unit on average."
    )
    figures = {
        "category": str(row["category"]), "units": units, "total_units": t.units,
        "unit_share": unit_share, "revenue": dollars(revenue), "revenue_share": revenue_share,
        "avg_price": dollars(avg),
    }  # fmt: skip
    return Finding("units", text, figures)


def _who(row: pd.Series | tuple) -> str:
    age = "" if pd.isna(row.age) else f", age {int(row.age)}"
    return f"{row.first_name} (user {row.user_id}, {row.city}{age})"


def _customers(t: Tables) -> Finding:
    parts, figures = [], {}
    for i, row in enumerate(t.customers.head(TOP).itertuples(), 1):
        share = tenths_percent(row.spend, t.revenue)
        spent = "spent " if i == 1 else ""
        of = " of revenue" if i == 1 else ""
        parts.append(
            f"{_who(row)} {spent}{money(row.spend)} in {plural(row.carts, 'cart')} "
            f"({percent(share)}{of})"
        )
        figures.update(
            {f"top{i}_user_id": int(row.user_id), f"top{i}_name": row.first_name,
             f"top{i}_city": row.city, f"top{i}_spend": dollars(row.spend),
             f"top{i}_carts": int(row.carts), f"top{i}_share": share}
        )  # fmt: skip
        if not pd.isna(row.age):
            figures[f"top{i}_age"] = int(row.age)
    return Finding("customers", f"Top customers: {'; '.join(parts)}.", figures)


def _cities(t: Tables) -> Finding:
    rows = list(t.cities.head(TOP).itertuples())
    figures: dict[str, Decimal | int | str] = {"cities": len(t.cities)}
    for i, row in enumerate(rows, 1):
        figures.update(
            {f"top{i}": row.city, f"top{i}_spend": dollars(row.spend),
             f"top{i}_share": tenths_percent(row.spend, t.revenue),
             f"top{i}_customers": int(row.customers)}
        )  # fmt: skip
    first = rows[0]
    text = (
        f"Cities: {first.city} spends the most, {money(first.spend)} "
        f"({percent(figures['top1_share'])}) from {plural(first.customers, 'customer')}"
    )
    rest = [
        f"{row.city} {money(row.spend)} ({percent(figures[f'top{i}_share'])}, "
        f"{plural(row.customers, 'customer')})"
        for i, row in enumerate(rows[1:], 2)
    ]
    if rest:
        text += f"; then {_listing(rest)}"
    return Finding("cities", f"{text}; {plural(len(t.cities), 'city', 'cities')} in all.", figures)


def _ages(t: Tables) -> Finding:
    bands = t.ages[t.ages["customers"] > 0].sort_values("spend", ascending=False, kind="stable")
    rows = list(bands.head(TOP).itertuples())
    figures: dict[str, Decimal | int | str] = {}
    parts = []
    for i, row in enumerate(rows, 1):
        share, each = tenths_percent(row.spend, t.revenue), div_half_up(row.spend, row.customers)
        figures.update(
            {f"top{i}": row.band, f"top{i}_spend": dollars(row.spend), f"top{i}_share": share,
             f"top{i}_customers": int(row.customers), f"top{i}_each": dollars(each)}
        )  # fmt: skip
        who = plural(row.customers, "customer")
        if i == 1:
            parts.append(
                f"the {row.band} band spends the most, {money(row.spend)} ({percent(share)}) "
                f"from {who}, {money(each)} each"
            )
        else:
            parts.append(
                f"{row.band} {money(row.spend)} ({percent(share)}, {who}, {money(each)} each)"
            )
    text = f"Age: {parts[0]}" + (f"; then {_listing(parts[1:])}" if parts[1:] else "") + "."
    return Finding("ages", text, figures)


def _frequency(t: Tables) -> Finding:
    customers = len(t.customers)
    per_customer = Decimal(div_half_up(10 * t.carts, customers)).scaleb(-1)
    avg = div_half_up(t.revenue, t.carts)
    figures: dict[str, Decimal | int | str] = {
        "carts_per_customer": per_customer,
        "avg_cart": dollars(avg),
    }
    parts = []
    for i, row in enumerate(t.frequency.itertuples()):
        label, n = _group_label(row.group), int(row.customers)
        if i == 0:
            verb = "spends" if n == 1 else "spend"
            who = f"the {plural(n, 'customer')} with {label} {verb}"
        else:
            who = f"the {count(n)} with {label}"
        parts.append(f"{who} {money(row.avg_cart)} a cart")
        figures[f"carts{row.group}_customers"] = n
        figures[f"carts{row.group}_avg_cart"] = dollars(row.avg_cart)
    text = (
        f"Frequency and basket size: {per_customer} carts per customer at {money(avg)} a cart; "
        f"{_listing(parts)}."
    )
    return Finding("frequency", text, figures)


def _discounts(t: Tables) -> Finding:
    cats = t.categories
    total = t.revenue - t.discounted
    most = cats.sort_values(["discount", "category"], ascending=[False, True]).iloc[0]
    # the deepest rate, compared exactly (a fraction of integers); ties: first by name
    rated = sorted(
        (r for r in cats.itertuples() if r.revenue > 0),
        key=lambda r: (-Fraction(int(r.discount), int(r.revenue)), r.category),
    )
    deepest = rated[0] if rated else None
    figures: dict[str, Decimal | int | str] = {
        "discount": dollars(total), "rate": tenths_percent(total, t.revenue),
        "list": dollars(t.revenue), "paid": dollars(t.discounted),
        "most": str(most["category"]), "most_discount": dollars(int(most["discount"])),
        "most_rate": tenths_percent(int(most["discount"]), int(most["revenue"])),
    }  # fmt: skip
    text = (
        f"Discounts: {money(total)} off list prices ({percent(figures['rate'])}), "
        f"{money(t.revenue)} list against {money(t.discounted)} paid; the most in dollars on "
        f"{most['category']} ({money(int(most['discount']))}, {percent(figures['most_rate'])})"
    )
    if deepest is not None and deepest.category != most["category"]:
        rate = tenths_percent(deepest.discount, deepest.revenue)
        figures.update(
            deepest=deepest.category, deepest_rate=rate, deepest_discount=dollars(deepest.discount)
        )
        text += (
            f", the deepest rate on {deepest.category} ({percent(rate)}, {money(deepest.discount)})"
        )
    elif deepest is not None:
        text += ", also the deepest rate"
    return Finding("discounts", text + ".", figures)


def findings(t: Tables) -> list[Finding]:
    """The hour's findings, most important first: sales, categories, units, top customers,
    cities, age bands, purchase frequency against basket size, discounts."""
    if t.carts == 0 or t.revenue == 0:
        return [
            Finding(
                "sales",
                f"Sales: no sales in this snapshot ({plural(t.carts, 'cart')}, $0.00).",
                {"carts": t.carts, "revenue": dollars(t.revenue)},
            )
        ]
    makers = (_sales, _categories, _units, _customers, _cities, _ages, _frequency, _discounts)
    return [make(t) for make in makers]


# --- what changed since the previous complete hour -----------------------------------------------


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
        sentences.append(f"By category: {_listing(shown)}{tail}.")
    return Changes(previous.name, totals, cats, appeared, vanished, sentences)
