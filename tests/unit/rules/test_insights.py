"""Insight formulas and reconciliation on small frames with exact expected results."""

from __future__ import annotations

import pandas as pd
import pandas.testing as pdt
import pytest

from pipeline.rules import insights
from pipeline.rules.insights import ReconciliationError


def lines() -> pd.DataFrame:
    """Cleaned cart lines: user 1 has carts 1 and 3, product 16 twice in cart 3."""
    return pd.DataFrame(
        {
            "cart_id": [1, 1, 2, 3, 3],
            "user_id": [1, 1, 2, 1, 1],
            "product_id": [15, 16, 162, 16, 16],
            "quantity": [1, 3, 2, 2, 1],
            "price": [799.99, 1.99, 50.0, 1.99, 1.99],
            "line_total": [799.99, 5.97, 100.0, 3.98, 1.99],
            "discounted_line_total": [729.59, 5.22, 87.87, 3.48, 1.74],
        }
    )


def users() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [1, 2, 3],
            "first_name": ["Emily", "Michael", "Sophia"],
            "last_name": ["Johnson", "Williams", "Brown"],
            "age": [29, 36, 42],
            "city": ["Phoenix", "Houston", "Washington"],
        }
    )


def catalogue() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": [15, 16, 162],
            "name": ["Wooden Sink", "Apple", "Blue Frock"],
            "category": ["furniture", "groceries", "tops"],
            "brand": ["Bath Trends", "", "Fashion Vogue"],
            "price": [799.99, 1.99, 50.0],
        }
    )


def test_user_summary_counts_carts_and_units_not_rows() -> None:
    expected = pd.DataFrame(
        {
            "user_id": [1, 2],  # user 3 has no cart: no row
            "first_name": ["Emily", "Michael"],
            "age": [29, 36],
            "city": ["Phoenix", "Houston"],
            "carts": [2, 1],
            "total_items": [7, 2],  # units: 1 + 3 + 2 + 1, not 4 rows
            "total_spent": [799.99 + 5.97 + 3.98 + 1.99, 100.0],
            "total_spent_discounted": [729.59 + 5.22 + 3.48 + 1.74, 87.87],
        }
    )
    got = insights.user_summary(lines(), users())
    pdt.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-9)


def test_category_summary_counts_products_under_the_price_minimum() -> None:
    expected = pd.DataFrame(
        {
            "category": ["furniture", "groceries", "tops"],
            "total_sales": [799.99, 5.97 + 3.98 + 1.99, 100.0],  # groceries are under $50
            "total_items_sold": [1, 6, 2],
            "total_sales_discounted": [729.59, 5.22 + 3.48 + 1.74, 87.87],
        }
    )
    got = insights.category_summary(lines(), catalogue())
    pdt.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-9)
    assert got["total_sales"].sum() == pytest.approx(lines()["line_total"].sum())


def test_category_summary_labels_a_product_missing_from_the_catalogue() -> None:
    got = insights.category_summary(lines(), catalogue()[catalogue()["product_id"] != 162])
    assert got["category"].tolist() == ["(unknown)", "furniture", "groceries"]
    assert got["total_sales"].sum() == pytest.approx(lines()["line_total"].sum())


def test_cart_details_names_cheap_products_and_keeps_line_order() -> None:
    got = insights.cart_details(lines(), users(), catalogue())
    assert list(got.columns) == insights.CART_DETAIL_COLUMNS
    expected = pd.DataFrame(
        {
            "cart_id": [1, 1, 2, 3, 3],
            "user_id": [1, 1, 2, 1, 1],
            "first_name": ["Emily", "Emily", "Michael", "Emily", "Emily"],
            "age": [29, 29, 36, 29, 29],
            "city": ["Phoenix", "Phoenix", "Houston", "Phoenix", "Phoenix"],
            "product_id": [15, 16, 162, 16, 16],
            "name": ["Wooden Sink", "Apple", "Blue Frock", "Apple", "Apple"],
            "category": ["furniture", "groceries", "tops", "groceries", "groceries"],
        }
    )
    pdt.assert_frame_equal(got[expected.columns], expected)
    pdt.assert_frame_equal(
        got[["quantity", "price", "line_total"]], lines()[["quantity", "price", "line_total"]]
    )


def test_reconcile_returns_the_figures_when_everything_agrees() -> None:
    got = insights.reconcile(
        api_cart_total=911.93, line_total=911.9300000001, user_total_spent=911.93,
        category_total_sales=911.93, carts=3,
    )  # fmt: skip
    assert got == {
        "carts": 3,
        "api_cart_total": 911.93,
        "line_total": 911.93,
        "user_total_spent": 911.93,
        "category_total_sales": 911.93,
        "difference_lines_vs_api": 0.0,
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("user_total_spent", 900.0, "user_summary.total_spent"),
        ("category_total_sales", 911.90, "category_summary.total_sales"),
        ("api_cart_total", 911.0, "API cart totals"),
    ],
)
def test_reconcile_fails_naming_the_figure_that_disagrees(
    field: str, value: float, message: str
) -> None:
    figures = dict(
        api_cart_total=911.93, line_total=911.93, user_total_spent=911.93,
        category_total_sales=911.93, carts=3,
    )  # fmt: skip
    figures[field] = value
    with pytest.raises(ReconciliationError, match=message):
        insights.reconcile(**figures)


def test_check_agrees_allows_exactly_the_tolerance() -> None:
    insights.check_agrees("x", 10.01, 10.00)
    with pytest.raises(ReconciliationError, match=r"x: 10\.02 != 10\.00"):
        insights.check_agrees("x", 10.02, 10.00)
    with pytest.raises(ReconciliationError):
        insights.check_agrees("units", 11, 10, 0)


def test_check_against_lines_returns_totals_or_names_the_lost_money() -> None:
    summary = insights.user_summary(lines(), users())
    total = float(lines()["line_total"].sum())
    assert insights.check_against_lines(summary, "user_summary", "total_spent", "total_items",
                                        total, 9) == {"money_total": pytest.approx(total),
                                                      "units_total": 9}  # fmt: skip
    with pytest.raises(ReconciliationError, match=r"user_summary\.total_items vs sum of cart"):
        insights.check_against_lines(
            summary, "user_summary", "total_spent", "total_items", total, 10
        )
    with pytest.raises(ReconciliationError, match=r"user_summary\.total_spent vs sum of cart"):
        insights.check_against_lines(summary, "user_summary", "total_spent", "total_items", 1.0, 9)
