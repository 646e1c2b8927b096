"""Insight formulas and the reconciliation that proves them. Pure functions, no I/O.

Every figure is computed from all cart lines. Product attributes come from the full catalogue,
never from the price-filtered ``cleaned_products``: the old system joined on the filtered list and
silently lost every sale of a cheap product.
"""

from __future__ import annotations

import pandas as pd

from pipeline.schema import INSIGHT_TABLES

MONEY_TOLERANCE = 0.01  # one cent, the API's own rounding step
_EPS = 1e-6  # float noise around exact-cent comparisons
UNKNOWN = "(unknown)"  # product missing from the catalogue (only when a quality threshold allows)

USER_SUMMARY_COLUMNS = INSIGHT_TABLES["user_summary"].names
CATEGORY_SUMMARY_COLUMNS = INSIGHT_TABLES["category_summary"].names
CART_DETAIL_COLUMNS = INSIGHT_TABLES["cart_details"].names
#: The cleaned cart-line columns each summary uses: its task reads no others from the CSV.
USER_SUMMARY_LINE_COLUMNS = (
    "cart_id", "user_id", "quantity", "line_total", "discounted_line_total",
)  # fmt: skip
CATEGORY_SUMMARY_LINE_COLUMNS = (
    "product_id", "quantity", "line_total", "discounted_line_total",
)  # fmt: skip
USER_SUMMARY_MONEY = INSIGHT_TABLES["user_summary"].money
CATEGORY_SUMMARY_MONEY = INSIGHT_TABLES["category_summary"].money
CART_DETAIL_MONEY = INSIGHT_TABLES["cart_details"].money


class ReconciliationError(ValueError):
    """Figures that must agree do not; the output would mislead, so none is written."""


def user_summary(lines: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Per user with a cart: carts, units bought (sum of quantity), money spent."""
    per_user = lines.groupby("user_id", sort=True).agg(
        carts=("cart_id", "nunique"),
        total_items=("quantity", "sum"),
        total_spent=("line_total", "sum"),
        total_spent_discounted=("discounted_line_total", "sum"),
    )
    attrs = users.set_index("user_id")[["first_name", "age", "city"]]
    out = per_user.join(attrs, how="left").reset_index()
    return out[USER_SUMMARY_COLUMNS]


def category_summary(lines: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """Per category over every cart line: sales, units sold, discounted sales."""
    category = lines["product_id"].map(catalogue.set_index("product_id")["category"])
    category = category.fillna(UNKNOWN)  # a sale is never dropped for want of a category
    out = (
        lines.assign(category=category)
        .groupby("category", sort=True)
        .agg(
            total_sales=("line_total", "sum"),
            total_items_sold=("quantity", "sum"),
            total_sales_discounted=("discounted_line_total", "sum"),
        )
        .reset_index()
    )
    return out[CATEGORY_SUMMARY_COLUMNS]


def _attributes(keys: pd.Series, table: pd.DataFrame, key: str, columns: list[str]) -> pd.DataFrame:
    """``columns`` of the ``table`` row whose ``key`` equals each of ``keys`` (NaN if none).

    One hash lookup serves every column, where a ``Series.map`` per column would repeat it.
    """
    found = table.set_index(key)[columns].reindex(keys.to_numpy())
    return found.set_axis(keys.index, axis=0)


def cart_details(lines: pd.DataFrame, users: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """Every cart line with the buyer's and the product's attributes, in cart/line order."""
    buyer = _attributes(lines["user_id"], users, "user_id", ["first_name", "age", "city"])
    product = _attributes(lines["product_id"], catalogue, "product_id", ["name", "category"])
    product = product.fillna(UNKNOWN)
    columns = {**dict(lines.items()), **dict(buyer.items()), **dict(product.items())}
    return pd.DataFrame({c: columns[c] for c in CART_DETAIL_COLUMNS}, copy=False)


def check_agrees(what: str, got: float, want: float, tolerance: float = MONEY_TOLERANCE) -> None:
    """Raise ReconciliationError unless two figures agree within ``tolerance``."""
    if not abs(got - want) <= tolerance + _EPS:
        raise ReconciliationError(f"{what}: {got:.2f} != {want:.2f} (tolerance {tolerance:.2f})")


def check_against_lines(
    frame: pd.DataFrame, what: str, money: str, units: str, line_total: float, line_units: int
) -> dict[str, float | int]:
    """A summary must hold every cent and unit of the cart lines; return its two totals."""
    money_total, units_total = float(frame[money].sum()), int(frame[units].sum())
    check_agrees(f"{what}.{money} vs sum of cart line totals", money_total, line_total)
    check_agrees(f"{what}.{units} vs sum of cart line units", units_total, line_units, 0)
    return {"money_total": money_total, "units_total": units_total}


def reconcile(
    *,
    api_cart_total: float,
    line_total: float,
    user_total_spent: float,
    category_total_sales: float,
    carts: int,
) -> dict[str, float | int]:
    """Prove that every view of the money agrees; the figures go into the manifest.

    Each cart's lines are already within a cent of its API total (a quality check), so the grand
    totals may differ by at most a cent per cart; the summaries must equal the lines to a cent.
    """
    check_agrees(
        "sum of user_summary.total_spent vs sum of line totals", user_total_spent, line_total
    )
    check_agrees(
        "sum of category_summary.total_sales vs sum of line totals",
        category_total_sales,
        line_total,
    )
    check_agrees("sum of line totals vs sum of API cart totals",
                 line_total, api_cart_total, MONEY_TOLERANCE * max(1, carts))  # fmt: skip
    return {
        "carts": carts,
        "api_cart_total": round(api_cart_total, 2),
        "line_total": round(line_total, 2),
        "user_total_spent": round(user_total_spent, 2),
        "category_total_sales": round(category_total_sales, 2),
        "difference_lines_vs_api": round(line_total - api_cart_total, 6),
    }
