"""Personal data by allowlist: keep the fields ``pipeline.schema`` declares, drop all others.

Applied to every raw record after the contract check and before it is written, so a field the
schema does not declare never reaches disk, however deeply nested. Along the way it notes every
field it dropped (the extract's stats list them) and which of those the schema does not even
know as deliberately ignored: fields the API added since, which the extract logs once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline import schema

Record = dict[str, Any]


def ignored_paths(record: schema.Record, prefix: str = "") -> set[str]:
    """Dotted paths of the fields the schema knows and deliberately drops, nested ones too."""
    paths = {prefix + name for name in record.ignored}
    for f in record.fields:
        if f.items is not None:
            paths |= ignored_paths(f.items, f"{prefix}{f.name}.")
    return paths


class Projection:
    """Keeps the declared fields of one endpoint's records, in the schema's order.

    Records must have passed the contract (required fields present). It runs on every record,
    so per object it costs one subset test of the keys against the names met so far at that
    level (only a name never met before costs more) and one dict comprehension.
    """

    def __init__(self, record: schema.Record) -> None:
        #: Dotted paths of every field dropped so far, e.g. ``products.thumbnail``.
        self.dropped: set[str] = set()
        #: Dotted paths of the optional declared fields no record has carried so far (a
        #: required one missing stops the extract at the contract).
        self.absent: set[str] = set()
        self._ignored = ignored_paths(record)
        #: ``project(record)``: the record with only its declared fields, as a new dict (the
        #: input is not changed). A plain function, so a call costs no method lookup.
        self.project = self._compile(record, "")

    def unknown(self) -> list[str]:
        """Fields dropped that the schema neither keeps nor ignores: new in the API."""
        return sorted(self.dropped - self._ignored)

    def missing(self) -> list[str]:
        """Declared fields that no record carried (optional ones: the contract stops a record
        without a required one)."""
        return sorted(self.absent)

    def _compile(self, record: schema.Record, prefix: str) -> Callable[[Record], Record]:
        names = tuple(f.name for f in record.fields)
        has_optional = any(f.optional for f in record.fields)
        nested = tuple(
            (f.name, self._compile(f.items, f"{prefix}{f.name}."), f.kind == "list")
            for f in record.fields
            if f.items is not None
        )
        met = set(names)  # kept names, plus every other name met at this level so far
        dropped, absent = self.dropped, self.absent
        unseen = {f.name for f in record.fields if f.optional}  # optional, in no record yet
        absent.update(prefix + k for k in unseen)

        def project(r: Record) -> Record:
            if not r.keys() <= met:
                extra = r.keys() - met
                met.update(extra)
                dropped.update(prefix + k for k in extra)
            if has_optional:  # only objects with optional fields pay for the tests
                if unseen and not unseen.isdisjoint(r.keys()):
                    came = unseen & r.keys()
                    unseen.difference_update(came)
                    absent.difference_update(prefix + k for k in came)
                out = {k: r[k] for k in names if k in r}
            else:  # required fields are there (the contract saw to it): no test per name
                out = {k: r[k] for k in names}
            for name, inner, is_list in nested:
                value = out.get(name)
                if value is not None:
                    out[name] = [inner(v) for v in value] if is_list else inner(value)
            return out

        return project


def new_fields(endpoint: str, dropped: list[str]) -> list[str]:
    """Of the fields an extract of ``endpoint`` dropped, those the schema does not know: what
    the API added (for extract stats written before they said so themselves)."""
    return sorted(set(dropped) - ignored_paths(schema.RAW[endpoint].record))
