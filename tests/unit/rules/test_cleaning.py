"""Cleaning rules on small frames with exact expected results."""

from __future__ import annotations

import pandas as pd
import pandas.testing as pdt
import pytest

from pipeline.rules import cleaning


def raw_users() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [2, 1],
            "firstName": ["Michael", "Emily"],
            "lastName": ["Williams", "Johnson"],
            "gender": ["male", "female"],
            "age": [36, 29],
            "address.address": ["385 Fifth Street", "626 Main Street"],
            "address.city": ["Houston", "Phoenix"],
            "address.state": ["Alabama", "Mississippi"],
            "address.postalCode": ["08807", "29112"],
            "address.country": ["United States", "United States"],
        }
    )


def raw_products() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [16, 15, 162],
            "title": ["Apple", "Wooden Sink", "Blue Frock"],
            "category": ["groceries", "furniture", "tops"],
            "brand": [None, "Bath Trends", "Fashion Vogue"],  # groceries have no brand
            "price": [1.99, 799.99, 50.0],
        }
    )


def test_clean_users_flattens_address_and_sorts_by_id() -> None:
    expected = pd.DataFrame(
        {
            "user_id": [1, 2],
            "first_name": ["Emily", "Michael"],
            "last_name": ["Johnson", "Williams"],
            "gender": ["female", "male"],
            "age": [29, 36],
            "street": ["626 Main Street", "385 Fifth Street"],
            "city": ["Phoenix", "Houston"],
            "state": ["Mississippi", "Alabama"],
            "postal_code": ["29112", "08807"],
            "country": ["United States", "United States"],
        }
    )
    got = cleaning.clean_users(raw_users())
    pdt.assert_frame_equal(got, expected)


def test_catalogue_keeps_every_product_and_blanks_missing_brand() -> None:
    expected = pd.DataFrame(
        {
            "product_id": [15, 16, 162],
            "name": ["Wooden Sink", "Apple", "Blue Frock"],
            "category": ["furniture", "groceries", "tops"],
            "brand": ["Bath Trends", "", "Fashion Vogue"],
            "price": [799.99, 1.99, 50.0],
        }
    )
    got = cleaning.product_catalogue(raw_products())
    pdt.assert_frame_equal(got, expected)


def test_clean_products_keeps_only_prices_strictly_above_minimum() -> None:
    catalogue = cleaning.product_catalogue(raw_products())
    got = cleaning.clean_products(catalogue, 50.0)
    assert got["product_id"].tolist() == [15]  # 50.00 is not above 50; 1.99 is under
    assert cleaning.clean_products(catalogue, 1.0)["product_id"].tolist() == [15, 16, 162]


def test_clean_cart_lines_one_row_per_line_with_recomputed_totals() -> None:
    lines = pd.DataFrame(
        {
            "cart_id": [7, 7, 7, 3],
            "user_id": [1, 1, 1, 2],
            "line_no": [1, 2, 3, 1],
            "id": [16, 17, 16, 100],  # product 16 twice in cart 7
            "price": [1.99, 19.99, 1.99, 129.99],
            "quantity": [2, 5, 3, 1],
            "total": [3.98, 99.94999999999999, 5.97, 129.99],
            "discountedTotal": [3.48, 93.12, 5.22, 109.79],
        }
    )
    expected = pd.DataFrame(
        {
            "cart_id": [3, 7, 7, 7],
            "user_id": [2, 1, 1, 1],
            "product_id": [100, 16, 17, 16],
            "quantity": [1, 2, 5, 3],
            "price": [129.99, 1.99, 19.99, 1.99],
            "line_total": [129.99, 1.99 * 2, 19.99 * 5, 1.99 * 3],
            "discounted_line_total": [109.79, 3.48, 93.12, 5.22],
        }
    )
    got = cleaning.clean_cart_lines(lines)
    pdt.assert_frame_equal(got, expected)
    # the API's own line totals, row for row with the cleaned lines (for the quality gate)
    assert cleaning.api_line_totals(lines).tolist() == [129.99, 3.98, 99.94999999999999, 5.97]


def test_cart_totals_renames_the_api_figures() -> None:
    carts = pd.DataFrame(
        {"id": [2, 1], "userId": [5, 4], "total": [10.5, 3.0], "discountedTotal": [9.0, 2.5]}
    )
    expected = pd.DataFrame(
        {
            "cart_id": [1, 2],
            "user_id": [4, 5],
            "total": [3.0, 10.5],
            "discounted_total": [2.5, 9.0],
        }
    )
    pdt.assert_frame_equal(cleaning.cart_totals(carts), expected)


def test_cleaning_fails_when_the_schema_and_the_function_disagree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Column order comes from pipeline.schema; a declared column the function does not make
    # must fail loudly, not become an empty column in the CSV.
    monkeypatch.setattr(cleaning, "USER_COLUMNS", [*cleaning.USER_COLUMNS, "email"])
    with pytest.raises(ValueError, match=r"do not match the schema's \['user_id', .*'email'\]"):
        cleaning.clean_users(raw_users())


def test_lines_already_in_cart_order_stay_and_duplicate_carts_interleave_by_line() -> None:
    """Sorted input is kept as it is; two carts with one id are ordered by line number, the
    first cart's line before the second's, exactly as a sort of everything would order them."""
    raw = pd.DataFrame(
        {"cart_id": [1, 1, 2, 2, 2, 2], "user_id": [1, 1, 2, 2, 3, 3],
         "line_no": [1, 2, 1, 2, 1, 2], "id": [11, 12, 21, 22, 31, 32],
         "price": [1.0] * 6, "quantity": [1] * 6, "total": [1.0] * 6,
         "discountedTotal": [1.0] * 6}
    )  # fmt: skip
    assert cleaning.clean_cart_lines(raw)["product_id"].tolist() == [11, 12, 21, 31, 22, 32]
    in_order = raw.iloc[[0, 1, 2, 4, 3, 5]].reset_index(drop=True)
    assert cleaning.clean_cart_lines(in_order)["product_id"].tolist() == [11, 12, 21, 31, 22, 32]


def test_empty_lines_have_the_cleaned_columns_and_types() -> None:
    empty = cleaning.empty_lines()
    assert list(empty.columns) == cleaning.CART_COLUMNS and len(empty) == 0
    assert empty.dtypes.astype(str).tolist() == ["int64"] * 4 + ["float64"] * 3
