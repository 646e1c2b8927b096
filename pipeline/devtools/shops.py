"""A generated shop as it changes from hour to hour, for the fake API (tests, demos).

Hour ``i`` of a steady shop is the datagen shop with one cart in 25 left out, a different one
each hour, so its figures move a little from hour to hour as a real shop's do. Changes that the
anomaly and schema-drift checks must notice are applied on top: fewer carts, one category
selling more, a field added or removed. Every change keeps the records consistent the way the
API computes them (line and cart totals), so only the change itself stands out.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pipeline.devtools import datagen

Records = dict[str, list[dict[str, Any]]]
LEFT_OUT = 25  # one cart in this many is left out of each hour, a different one each hour


class HourlyShop:
    """The datagen shop of ``carts``, ``users`` and ``products`` records, hour by hour."""

    def __init__(self, carts: int = 200, users: int = 40, products: int = 60, seed: int = 0):
        self.base: Records = {
            name: list(rows)
            for name, rows in datagen.generate(carts, users, products, seed).items()
        }

    def hour(self, i: int) -> Records:
        """The steady shop in hour ``i``: fresh copies a caller may change."""
        carts = [c for c in self.base["carts"] if (c["id"] + i) % LEFT_OUT]
        return copy.deepcopy({**self.base, "carts": carts})

    def categories(self) -> dict[int, str]:
        """Each product's category, by product id."""
        return {p["id"]: p["category"] for p in self.base["products"]}


def drop_carts(records: Records, fraction: float) -> Records:
    """The hour with ``fraction`` of its carts gone (0.6: a drop of 60 %), spread evenly over
    them, so what is left sells the same mix of categories."""
    keep = 1 - fraction
    carts = records["carts"]
    kept = [c for i, c in enumerate(carts) if int((i + 1) * keep) > int(i * keep)]
    return {**records, "carts": kept}


def _retotal(cart: dict[str, Any], percents: dict[int, float]) -> None:
    """Recompute a cart's line and cart totals as the API does (see ``datagen``)."""
    total = discounted = 0.0
    quantity = 0
    for line in cart["products"]:
        line["total"] = line["price"] * line["quantity"]
        pct = percents[line["id"]]
        line["discountedTotal"] = round(line["total"] * (1 - pct / 100), 2)
        total += line["total"]
        discounted += line["discountedTotal"]
        quantity += line["quantity"]
    cart.update(total=round(total, 2), discountedTotal=round(discounted, 2),
                totalQuantity=quantity)  # fmt: skip


def sell_more(records: Records, category: str, factor: int) -> Records:
    """The hour with every line of ``category`` sold ``factor`` times over (its quantity)."""
    of = {p["id"]: p["category"] for p in records["products"]}
    percents = {p["id"]: p["discountPercentage"] for p in records["products"]}
    for cart in records["carts"]:
        if any(of[line["id"]] == category for line in cart["products"]):
            for line in cart["products"]:
                if of[line["id"]] == category:
                    line["quantity"] *= factor
            _retotal(cart, percents)
    return records


def add_field(records: Records, endpoint: str, name: str, value: Any) -> Records:
    """Every record of ``endpoint`` with a field ``name`` the schema does not know."""
    for record in records[endpoint]:
        record[name] = value
    return records


def remove_field(records: Records, endpoint: str, names: Iterable[str]) -> Records:
    """Every record of ``endpoint`` without the fields ``names``."""
    for record in records[endpoint]:
        for name in names:
            record.pop(name, None)
    return records
