"""The projection keeps exactly the declared fields, nested ones included, and notes the rest."""

from __future__ import annotations

import copy

from pipeline import schema
from pipeline.rules.allowlist import Projection

PRODUCT = {
    "id": 16, "description": "Fresh", "title": "Apple", "category": "groceries", "price": 1.99,
    "reviews": [{"rating": 5, "comment": "ok", "date": "2025-04-30",
                 "reviewerName": "Sophia Brown", "reviewerEmail": "sophia.brown@x.dummyjson.com"}],
}  # fmt: skip


def test_keeps_declared_fields_in_schema_order_and_leaves_an_absent_optional_absent() -> None:
    keep = Projection(schema.PRODUCT)
    before = copy.deepcopy(PRODUCT)
    assert keep.project(PRODUCT) == {
        "id": 16,
        "title": "Apple",
        "category": "groceries",
        "price": 1.99,
    }
    assert list(keep.project({**PRODUCT, "brand": "B"})) == [
        "id",
        "title",
        "category",
        "brand",
        "price",
    ]
    assert before == PRODUCT  # the input is not changed
    assert keep.dropped == {"description", "reviews"}
    assert keep.unknown() == []  # both are known to the schema as ignored


def test_nested_objects_and_lists_are_cut_down_and_new_fields_reported_by_path() -> None:
    keep = Projection(schema.USER)
    user = {"id": 1, "firstName": "E", "lastName": "J", "gender": "f", "age": 3,
            "email": "e@x.dummyjson.com", "shoeSize": 38,
            "address": {"address": "a", "city": "c", "state": "s", "stateCode": "S",
                        "postalCode": "p", "country": "u", "coordinates": {"lat": 1},
                        "floor": 2}}  # fmt: skip
    assert keep.project(user) == {
        "id": 1, "firstName": "E", "lastName": "J", "gender": "f", "age": 3,
        "address": {"address": "a", "city": "c", "state": "s", "postalCode": "p", "country": "u"},
    }  # fmt: skip
    assert keep.dropped == {
        "email", "shoeSize", "address.stateCode", "address.coordinates", "address.floor",
    }  # fmt: skip
    assert keep.unknown() == ["address.floor", "shoeSize"]

    carts = Projection(schema.CART)
    line = {"id": 3, "title": "T", "price": 1.0, "quantity": 2, "total": 2.0,
            "discountedTotal": 1.5, "giftNote": "hi"}  # fmt: skip
    cart = {"id": 9, "userId": 1, "total": 4.0, "discountedTotal": 3.0,
            "products": [line, {**line, "giftNote": "x", "id": 4}], "totalQuantity": 4}  # fmt: skip
    assert carts.project(cart)["products"] == [
        {"id": 3, "price": 1.0, "quantity": 2, "total": 2.0, "discountedTotal": 1.5},
        {"id": 4, "price": 1.0, "quantity": 2, "total": 2.0, "discountedTotal": 1.5},
    ]
    assert carts.unknown() == ["products.giftNote"]
    assert sorted(carts.dropped) == ["products.giftNote", "products.title", "totalQuantity"]


def test_an_optional_field_no_record_carried_is_missing_until_one_does() -> None:
    keep = Projection(schema.PRODUCT)
    assert keep.missing() == ["brand"]  # before any record
    keep.project(PRODUCT)  # groceries: no brand
    assert keep.missing() == ["brand"]
    keep.project({**PRODUCT, "id": 17, "brand": "B"})
    keep.project(PRODUCT)
    assert keep.missing() == []  # one record carried it: not missing
    assert Projection(schema.USER).missing() == []  # users declare no optional field
