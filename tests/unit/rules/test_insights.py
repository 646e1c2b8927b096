"""Insight formulas and reconciliation on small frames with exact expected results."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

from pipeline.rules import insights
from pipeline.rules.insights import ReconciliationError
from pipeline.storage import formats


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
    got = insights.user_summary(insights.user_totals(lines()), users())
    pdt.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("cart_ids", "user_ids", "carts"),
    [
        ([1, 1, 2, 3, 3], [1, 1, 2, 1, 1], {1: 2, 2: 1}),  # ordered by cart: the usual case
        ([3, 1, 2, 3, 1], [1, 1, 2, 1, 1], {1: 2, 2: 1}),  # not ordered: counted id by id
        ([1, 1, 2, 2, 2], [1, 2, 2, 1, 2], {1: 2, 2: 2}),  # carts 1 and 2 each held by 2 users
        ([1, 2, 2, 3, 3], [1, 1, 1, 1, 1], {1: 3}),  # a duplicate cart 2 of one user: once
    ],
)
def test_user_totals_count_each_users_distinct_carts(
    cart_ids: list[int], user_ids: list[int], carts: dict[int, int]
) -> None:
    """Carts are counted at their first line where lines are ordered by cart, id by id
    otherwise; either way, the number of distinct cart ids of each user."""
    batch = lines().assign(cart_id=cart_ids, user_id=user_ids)
    got = insights.user_totals(batch)["carts"]
    assert got.to_dict() == carts == batch.groupby("user_id")["cart_id"].nunique().to_dict()
    assert got.dtype == "int64"


def test_category_summary_counts_products_under_the_price_minimum() -> None:
    expected = pd.DataFrame(
        {
            "category": ["furniture", "groceries", "tops"],
            "total_sales": [799.99, 5.97 + 3.98 + 1.99, 100.0],  # groceries are under $50
            "total_items_sold": [1, 6, 2],
            "total_sales_discounted": [729.59, 5.22 + 3.48 + 1.74, 87.87],
        }
    )
    got = insights.category_summary(insights.product_totals(lines()), catalogue())
    pdt.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-9)
    assert got["total_sales"].sum() == pytest.approx(lines()["line_total"].sum())


def test_category_summary_labels_a_product_missing_from_the_catalogue() -> None:
    known = catalogue()[catalogue()["product_id"] != 162]
    got = insights.category_summary(insights.product_totals(lines()), known)
    assert got["category"].tolist() == ["(unknown)", "furniture", "groceries"]
    assert got["total_sales"].sum() == pytest.approx(lines()["line_total"].sum())


def test_cart_details_names_cheap_products_and_keeps_line_order() -> None:
    got = insights.cart_details(lines(), insights.buyers(users()), insights.products(catalogue()))
    assert list(got.columns) == [
        "cart_id", "user_id", "first_name", "age", "city", "product_id", "name", "category",
        "quantity", "price", "line_total", "discounted_line_total",
    ]  # fmt: skip
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


def running(
    batches: list[pd.DataFrame], totals: Callable[[pd.DataFrame], pd.DataFrame]
) -> pd.DataFrame:
    """``totals`` of each batch added up as ``CleanCarts`` adds them."""
    added = insights.RunningTotals(totals(lines().iloc[:0]))
    for batch in batches:
        added.add(totals(batch))
    return added.result()


@pytest.mark.parametrize("cuts", [[], [2], [3], [2, 3]])
def test_summaries_of_batches_added_up_are_the_summaries_of_all_lines(cuts: list[int]) -> None:
    """Wherever batches are cut between carts (cart 1 is lines 0-1, cart 2 line 2, cart 3 lines
    3-4), their totals add up to the same summaries; user 1's carts may be in two batches."""
    whole = [0, *cuts, len(lines())]
    batches = [lines().iloc[a:b] for a, b in pairwise(whole)]
    pdt.assert_frame_equal(
        insights.user_summary(running(batches, insights.user_totals), users()),
        insights.user_summary(insights.user_totals(lines()), users()),
    )
    pdt.assert_frame_equal(
        insights.category_summary(running(batches, insights.product_totals), catalogue()),
        insights.category_summary(insights.product_totals(lines()), catalogue()),
    )


@pytest.mark.parametrize(
    ("dense_ids", "fold_rows"),
    [
        (1 << 24, 1 << 20),  # every id in the arrays
        (0, 1),  # no id fits: added up as batches come
        (0, 1 << 20),  # ... or at the end
        (2, 1),  # user 1 fits, user 2 does not: from the arrays to adding up frames
    ],
)
def test_running_totals_add_up_batches_and_keep_the_types_when_there_are_none(
    dense_ids: int, fold_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(insights.RunningTotals, "DENSE_IDS", dense_ids)
    monkeypatch.setattr(insights.RunningTotals, "FOLD_ROWS", fold_rows)
    added = insights.RunningTotals(insights.user_totals(lines().iloc[:0]))
    assert added.result().dtypes.astype(str).to_dict() == {
        "carts": "int64", "total_items": "int64", "total_spent": "float64",
        "total_spent_discounted": "float64",
    }  # fmt: skip
    for i in range(len(lines())):  # one line a batch: cart 1 and cart 3 are cut in two
        added.add(insights.user_totals(lines().iloc[i : i + 1]))
    got = added.result().sort_index()
    assert got.index.tolist() == [1, 2] and got.index.name == "user_id"
    assert got["total_items"].tolist() == [7, 2]
    assert got["total_spent"].tolist() == pytest.approx([811.93, 100.0], abs=1e-9)


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
    summary = pd.DataFrame({"total_spent": [811.93, 100.0], "total_items": [7, 2]})
    check = insights.check_against_lines
    assert check(summary, "user_summary", "total_spent", "total_items", 911.93, 9) == {
        "money_total": pytest.approx(911.93, abs=1e-9),
        "units_total": 9,
    }
    with pytest.raises(ReconciliationError, match=r"user_summary\.total_items vs sum of cart"):
        check(summary, "user_summary", "total_spent", "total_items", 911.93, 10)
    with pytest.raises(ReconciliationError, match=r"user_summary\.total_spent vs sum of cart"):
        check(summary, "user_summary", "total_spent", "total_items", 911.91, 9)


# -- sub-cent money: summed unrounded, rounded once when written ---------------------------------
def sub_cent_lines() -> pd.DataFrame:
    """User 3 bought three apples at $0.3333 (carts 7 and 8), discounted to half a cent each.

    The exact sums are $0.9999 and $0.015, written as 1.00 and 0.02. Rounding each line first
    would give 0.33 x 3 = 0.99, and 0.00 x 3 (half to even) or 0.01 x 3 = 0.03 (half up).
    """
    return pd.DataFrame(
        {
            "cart_id": [7, 7, 8],
            "user_id": [3, 3, 3],
            "product_id": [16, 16, 16],
            "quantity": [1, 1, 1],
            "price": [0.3333, 0.3333, 0.3333],
            "line_total": [0.3333, 0.3333, 0.3333],
            "discounted_line_total": [0.005, 0.005, 0.005],
        }
    )


def test_user_summary_sums_sub_cent_lines_unrounded() -> None:
    expected = pd.DataFrame(
        {
            "user_id": [3], "first_name": ["Sophia"], "age": [42], "city": ["Washington"],
            "carts": [2], "total_items": [3], "total_spent": [0.9999],
            "total_spent_discounted": [0.015],
        }
    )  # fmt: skip
    got = insights.user_summary(insights.user_totals(sub_cent_lines()), users())
    pdt.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-12)


def test_category_summary_sums_sub_cent_lines_unrounded() -> None:
    expected = pd.DataFrame(
        {
            "category": ["groceries"],
            "total_sales": [0.9999],
            "total_items_sold": [3],
            "total_sales_discounted": [0.015],
        }
    )
    got = insights.category_summary(insights.product_totals(sub_cent_lines()), catalogue())
    pdt.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-12)


def test_a_written_summary_rounds_the_sum_not_each_line(tmp_path: Path) -> None:
    path = tmp_path / "user_summary.csv"
    summary = insights.user_summary(insights.user_totals(sub_cent_lines()), users())
    formats.write_csv(summary, path, ("total_spent", "total_spent_discounted"))
    assert path.read_text().splitlines()[1] == '3,"Sophia",42,"Washington",2,3,1.00,0.02'
    categories = insights.category_summary(insights.product_totals(sub_cent_lines()), catalogue())
    formats.write_csv(categories, path, ("total_sales", "total_sales_discounted"))
    assert path.read_text().splitlines()[1] == '"groceries",1.00,3,0.02'


def test_sub_cent_summaries_reconcile_with_the_exact_line_total() -> None:
    summary = insights.user_summary(insights.user_totals(sub_cent_lines()), users())
    got = insights.check_against_lines(
        summary, "user_summary", "total_spent", "total_items", 0.9999, 3
    )
    assert got == {"money_total": pytest.approx(0.9999, abs=1e-12), "units_total": 3}
