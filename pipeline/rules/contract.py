"""The data contract on raw API records: required fields, their types and ranges.

Checked on every record as it arrives, so a record that breaks the contract stops the extract
with a message naming endpoint, record id and field, before anything is written. The checks are
derived from ``pipeline.schema``; fields not declared there pass unchecked (the extract then
drops them, see ``rules.allowlist``).

It runs on every record (a million carts is ~15 million field checks), so the schema is
compiled once into tuples of plain predicates, and a message is only built for a violation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from pipeline import schema

Check = Callable[[Any], bool]


class ContractError(ValueError):
    """A record does not match the contract of its endpoint."""


class _Rule(NamedTuple):
    name: str
    check: Check
    expected: str
    optional: bool


class _Nested(NamedTuple):
    name: str
    shape: _Shape
    is_list: bool


class _Shape(NamedTuple):
    """A record's checks in the order they run: required fields, optional ones, nested ones."""

    rules: tuple[_Rule, ...]
    nested: tuple[_Nested, ...]


_MISSING = object()


def _predicate(f: schema.Field) -> Check:
    # JSON yields exactly int, float, str, bool, list and dict: ``type(v) is int`` keeps bool
    # out and is the cheapest test. NaN fails every comparison, so a minimum also rejects it.
    lo = f.minimum
    if f.kind == "int":
        return (lambda v: type(v) is int) if lo is None else (lambda v: type(v) is int and v >= lo)
    if f.kind == "number":
        if lo is None:
            return lambda v: (type(v) is float and v == v) or type(v) is int
        return lambda v: (type(v) is float or type(v) is int) and v >= lo
    if f.kind == "text":
        if f.nonempty:
            return lambda v: type(v) is str and v.strip() != ""
        return lambda v: type(v) is str
    if f.kind == "list":
        return lambda v: isinstance(v, list)
    return lambda v: isinstance(v, dict)


def _compile(record: schema.Record) -> _Shape:
    ordered = sorted(record.fields, key=lambda f: f.optional)  # stable: required ones first
    return _Shape(
        rules=tuple(_Rule(f.name, _predicate(f), f.expected, f.optional) for f in ordered),
        nested=tuple(
            _Nested(f.name, _compile(f.items), f.kind == "list")
            for f in record.fields
            if f.items is not None
        ),
    )


#: endpoint -> its compiled contract
SHAPES: dict[str, _Shape] = {name: _compile(e.record) for name, e in schema.RAW.items()}


def _violation(record: dict[str, Any], shape: _Shape) -> tuple[str, str] | None:
    """(where below the record, what is wrong) of the first violation, or None."""
    for name, check, expected, optional in shape.rules:
        value = record.get(name, _MISSING)
        if value is _MISSING:
            if not optional:
                return "", f"field {name!r} is missing (expected {expected})"
        elif not check(value):
            return "", f"field {name!r} = {value!r:.60} is not {expected}"
    for name, inner, is_list in shape.nested:
        value = record.get(name, _MISSING)
        if value is _MISSING:
            continue  # optional and absent: a required one was reported above
        if is_list:
            for i, item in enumerate(value):
                found = _item_violation(item, inner)
                if found is not None:
                    return f" {name}[{i}]{found[0]}", found[1]
        else:
            found = _item_violation(value, inner)
            if found is not None:
                return f" {name}{found[0]}", found[1]
    return None


def _item_violation(item: Any, shape: _Shape) -> tuple[str, str] | None:
    if not isinstance(item, dict):
        return "", "is not an object"
    return _violation(item, shape)


def validate_record(endpoint: str, record: Any) -> None:
    """Raise ContractError naming endpoint, record id and field unless ``record`` conforms."""
    if not isinstance(record, dict):
        raise ContractError(f"{endpoint}: record is not an object: {type(record).__name__}")
    found = _violation(record, SHAPES[endpoint])
    if found is not None:
        where, what = found
        raise ContractError(f"{endpoint} record id={record.get('id')!r}{where}: {what}")
