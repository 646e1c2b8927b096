"""Findings of one hour: the report's sentences, each with the exact figures it states.

Pure functions, no I/O, worked out from the hour's tables (``tables``). Each finding carries its
figures as exact values (``Decimal`` dollars, ``Decimal`` percentages, ints, as ``numbers``
computes them) so a test can recompute them one by one. What changed since the previous hour is
``changes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

import pandas as pd

from pipeline.rules.numbers import (
    TOP,
    count,
    div_half_up,
    dollars,
    listing,
    money,
    percent,
    plural,
    tenths_percent,
)
from pipeline.rules.tables import Tables, group_label

#: The exact figures a sentence states, by name.
Figures = dict[str, Decimal | int | str]


@dataclass(frozen=True)
class Finding:
    """One sentence of the report with the exact figures it states."""

    topic: str
    text: str
    figures: Figures = field(default_factory=dict)


def _sales(t: Tables) -> Finding:
    customers, avg = len(t.customers), div_half_up(t.revenue, t.carts)
    text = (
        f"Sales: {plural(t.carts, 'cart')} from {plural(customers, 'customer')}, "
        f"{plural(t.lines, 'line')}, {plural(t.units, 'unit')}; {money(t.revenue)} at list "
        f"prices and {money(t.discounted)} after discounts, {money(avg)} per cart on average."
    )
    figures: Figures = {
        "carts": t.carts, "customers": customers, "lines": t.lines, "units": t.units,
        "revenue": dollars(t.revenue), "discounted": dollars(t.discounted),
        "avg_cart": dollars(avg),
    }  # fmt: skip
    return Finding("sales", text, figures)


def _categories(t: Tables) -> Finding:
    cats, total = t.categories, t.revenue
    top = cats.head(TOP)
    figures: Figures = {"categories": len(cats)}
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
    figures: Figures = {
        "category": str(row["category"]), "units": units, "total_units": t.units,
        "unit_share": unit_share, "revenue": dollars(revenue), "revenue_share": revenue_share,
        "avg_price": dollars(avg),
    }  # fmt: skip
    return Finding("units", text, figures)


class Customer(Protocol):
    """A row of the customers table (``itertuples()`` or a Series): what ``_who`` names."""

    age: float  # NaN when unknown
    first_name: str
    user_id: int
    city: str


def _who(row: Customer) -> str:
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
    figures: Figures = {"cities": len(t.cities)}
    shares = [tenths_percent(row.spend, t.revenue) for row in rows]
    for i, (row, share) in enumerate(zip(rows, shares, strict=True), 1):
        figures.update(
            {f"top{i}": row.city, f"top{i}_spend": dollars(row.spend),
             f"top{i}_share": share, f"top{i}_customers": int(row.customers)}
        )  # fmt: skip
    first = rows[0]
    text = (
        f"Cities: {first.city} spends the most, {money(first.spend)} "
        f"({percent(shares[0])}) from {plural(first.customers, 'customer')}"
    )
    rest = [
        f"{row.city} {money(row.spend)} ({percent(share)}, {plural(row.customers, 'customer')})"
        for row, share in zip(rows[1:], shares[1:], strict=True)
    ]
    if rest:
        text += f"; then {listing(rest)}"
    return Finding("cities", f"{text}; {plural(len(t.cities), 'city', 'cities')} in all.", figures)


def _ages(t: Tables) -> Finding:
    bands = t.ages[t.ages["customers"] > 0].sort_values("spend", ascending=False, kind="stable")
    rows = list(bands.head(TOP).itertuples())
    figures: Figures = {}
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
    text = f"Age: {parts[0]}" + (f"; then {listing(parts[1:])}" if parts[1:] else "") + "."
    return Finding("ages", text, figures)


def _frequency(t: Tables) -> Finding:
    customers = len(t.customers)
    per_customer = Decimal(div_half_up(10 * t.carts, customers)).scaleb(-1)
    avg = div_half_up(t.revenue, t.carts)
    figures: Figures = {
        "carts_per_customer": per_customer,
        "avg_cart": dollars(avg),
    }
    parts = []
    for i, row in enumerate(t.frequency.itertuples()):
        label, n = group_label(row.group), int(row.customers)
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
        f"{listing(parts)}."
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
    rate = tenths_percent(total, t.revenue)
    most_rate = tenths_percent(int(most["discount"]), int(most["revenue"]))
    figures: Figures = {
        "discount": dollars(total), "rate": rate,
        "list": dollars(t.revenue), "paid": dollars(t.discounted),
        "most": str(most["category"]), "most_discount": dollars(int(most["discount"])),
        "most_rate": most_rate,
    }  # fmt: skip
    text = (
        f"Discounts: {money(total)} off list prices ({percent(rate)}), "
        f"{money(t.revenue)} list against {money(t.discounted)} paid; the most in dollars on "
        f"{most['category']} ({money(int(most['discount']))}, {percent(most_rate)})"
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
