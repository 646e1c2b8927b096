"""The data contract names endpoint, record id and field of the first violation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pipeline.rules.contract import ContractError, validate_record

CART: dict[str, Any] = {
    "id": 7, "userId": 3, "total": 3.98, "discountedTotal": 3.5, "extra": "allowed",
    "products": [{"id": 16, "title": "Apple", "price": 1.99, "quantity": 2, "total": 3.98,
                  "discountedTotal": 3.5}],
}  # fmt: skip
PRODUCT: dict[str, Any] = {"id": 16, "title": "Apple", "category": "groceries", "price": 1.99}
USER: dict[str, Any] = {
    "id": 1, "firstName": "Emily", "lastName": "Johnson", "gender": "female", "age": 29,
    "address": {"address": "626 Main Street", "city": "Phoenix", "state": "Mississippi",
                "postalCode": "29112", "country": "United States"},
}  # fmt: skip


def test_valid_records_pass_and_extra_fields_are_allowed() -> None:
    validate_record("carts", CART)
    validate_record("products", PRODUCT)
    validate_record("products", {**PRODUCT, "brand": "Acme"})
    validate_record("users", USER)


@pytest.mark.parametrize(
    ("endpoint", "record", "change", "message"),
    [
        ("carts", CART, lambda r: r["products"][0].update(quantity=0),
         "carts record id=7 products[0]: field 'quantity' = 0 is not integer >= 1"),
        ("carts", CART, lambda r: r["products"][0].update(quantity=1.5),
         "field 'quantity' = 1.5 is not integer >= 1"),
        ("carts", CART, lambda r: r["products"][0].update(price=-1),
         "field 'price' = -1 is not number >= 0"),
        ("carts", CART, lambda r: r.pop("userId"),
         "carts record id=7: field 'userId' is missing (expected integer >= 1)"),
        ("carts", CART, lambda r: r["products"].append("oops"),
         "carts record id=7 products[1]: is not an object"),
        ("products", PRODUCT, lambda r: r.update(category=""),
         "products record id=16: field 'category' = '' is not non-empty string"),
        ("products", PRODUCT, lambda r: r.update(brand=None),
         "field 'brand' = None is not string when present"),
        ("products", PRODUCT, lambda r: r.update(price=True),
         "field 'price' = True is not number >= 0"),
        ("users", USER, lambda r: r.update(id="1"),
         "users record id='1': field 'id' = '1' is not integer >= 1"),
        ("users", USER, lambda r: r["address"].pop("city"),
         "users record id=1 address: field 'city' is missing"),
    ],
)  # fmt: skip
def test_violations_name_endpoint_record_and_field(
    endpoint: str, record: dict[str, Any], change: Any, message: str
) -> None:
    broken = copy.deepcopy(record)
    change(broken)
    with pytest.raises(ContractError) as err:
        validate_record(endpoint, broken)
    assert message in str(err.value)


def test_the_first_violation_is_reported_required_fields_before_optional_and_nested() -> None:
    broken = {**PRODUCT, "brand": 7, "price": -1}
    with pytest.raises(ContractError) as err:
        validate_record("products", broken)
    assert str(err.value) == "products record id=16: field 'price' = -1 is not number >= 0"
    cart = copy.deepcopy(CART)
    cart["products"][0]["quantity"] = 0
    cart["discountedTotal"] = "3.5"
    with pytest.raises(ContractError) as err:
        validate_record("carts", cart)
    assert str(err.value) == (
        "carts record id=7: field 'discountedTotal' = '3.5' is not number >= 0"
    )


def test_fields_outside_the_schema_are_not_checked() -> None:
    # The extract drops them (rules.allowlist), so they cannot fail a run.
    cart = copy.deepcopy(CART)
    cart["products"][0].update(title=None, thumbnail=3)
    validate_record("carts", cart)
    validate_record("products", {**PRODUCT, "reviews": "not a list"})


def test_nan_and_booleans_are_not_numbers() -> None:
    for bad in (float("nan"), False):
        with pytest.raises(ContractError, match=r"field 'total' = (nan|False) is not number >= 0"):
            validate_record("carts", {**CART, "total": bad})
    with pytest.raises(ContractError, match="field 'age' = True is not integer >= 0"):
        validate_record("users", {**USER, "age": True})


def test_a_record_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(ContractError, match="carts: record is not an object: str"):
        validate_record("carts", "oops")
