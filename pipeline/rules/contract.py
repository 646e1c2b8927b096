"""The data contract on raw API records: required fields and their types.

Checked on every record as it arrives, so a record that breaks the contract stops the extract
with a message naming endpoint, record id and field, before anything is written. Fields not
named here are allowed and passed through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]


class ContractError(ValueError):
    """A record does not match the contract of its endpoint."""


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v  # no NaN


def _str(v: Any) -> bool:
    return isinstance(v, str)


def id_(v: Any) -> bool:
    return _int(v) and v >= 1


def int_ge0(v: Any) -> bool:
    return _int(v) and v >= 0


def int_ge1(v: Any) -> bool:
    return _int(v) and v >= 1


def num_ge0(v: Any) -> bool:
    return _num(v) and v >= 0


def text(v: Any) -> bool:
    return _str(v)


def nonempty_text(v: Any) -> bool:
    return _str(v) and v.strip() != ""


#: field -> (check, description) per record kind. ``None`` marks an optional field.
Spec = Mapping[str, tuple[Check, str]]

CART_LINE: Spec = {
    "id": (id_, "integer >= 1"),
    "title": (text, "string"),
    "price": (num_ge0, "number >= 0"),
    "quantity": (int_ge1, "integer >= 1"),
    "total": (num_ge0, "number >= 0"),
    "discountedTotal": (num_ge0, "number >= 0"),
}
ADDRESS: Spec = {
    "address": (text, "string"),
    "city": (text, "string"),
    "state": (text, "string"),
    "postalCode": (text, "string"),
    "country": (text, "string"),
}
RECORDS: dict[str, Spec] = {
    "carts": {
        "id": (id_, "integer >= 1"),
        "userId": (id_, "integer >= 1"),
        "total": (num_ge0, "number >= 0"),
        "discountedTotal": (num_ge0, "number >= 0"),
        "products": (lambda v: isinstance(v, list), "list of cart lines"),
    },
    "products": {
        "id": (id_, "integer >= 1"),
        "title": (nonempty_text, "non-empty string"),
        "category": (nonempty_text, "non-empty string"),
        "price": (num_ge0, "number >= 0"),
    },
    "users": {
        "id": (id_, "integer >= 1"),
        "firstName": (text, "string"),
        "lastName": (text, "string"),
        "gender": (text, "string"),
        "age": (int_ge0, "integer >= 0"),
        "address": (lambda v: isinstance(v, dict), "object"),
    },
}
OPTIONAL: dict[str, Spec] = {
    "products": {"brand": (text, "string when present")},
}
NESTED: dict[str, tuple[str, Spec, bool]] = {
    # endpoint -> (field, spec of its items, is a list)
    "carts": ("products", CART_LINE, True),
    "users": ("address", ADDRESS, False),
}


def _check_fields(record: Mapping[str, Any], spec: Spec, where: str, optional: bool) -> None:
    for field, (check, expected) in spec.items():
        if field not in record:
            if optional:
                continue
            raise ContractError(f"{where}: field {field!r} is missing (expected {expected})")
        value = record[field]
        if not check(value):
            raise ContractError(f"{where}: field {field!r} = {value!r:.60} is not {expected}")


def validate_record(endpoint: str, record: Any) -> None:
    """Raise ContractError naming endpoint, record id and field unless ``record`` conforms."""
    if not isinstance(record, dict):
        raise ContractError(f"{endpoint}: record is not an object: {type(record).__name__}")
    where = f"{endpoint} record id={record.get('id')!r}"
    _check_fields(record, RECORDS[endpoint], where, optional=False)
    _check_fields(record, OPTIONAL.get(endpoint, {}), where, optional=True)
    nested = NESTED.get(endpoint)
    if nested:
        field, spec, is_list = nested
        items = record[field] if is_list else [record[field]]
        for i, item in enumerate(items):
            inner = f"{where} {field}[{i}]" if is_list else f"{where} {field}"
            if not isinstance(item, dict):
                raise ContractError(f"{inner}: is not an object")
            _check_fields(item, spec, inner, optional=False)
