"""Quality gates run before any insight is written. Pure functions, no I/O.

Each check returns the offending rows. ``enforce`` turns them into a verdict: a check over its
threshold (default 0: strict) fails the task with a message naming the check, the number of
offending rows and up to ten example ids; the task writes the rows to ``rejected/<check>.csv``.

Carts are checked batch by batch (``check_carts``): a cart and all its lines are in one batch,
duplicates of its id included (``storage.formats.cart_batches``), so every check is complete
within its batch, and a ``Tally`` per check adds up what the batches found.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.rules import cleaning
from pipeline.rules.insights import MONEY_TOLERANCE
from pipeline.rules.keys import IdIndex

log = logging.getLogger(__name__)

#: One cent (the API's rounding step) plus float noise: what "agrees" means for money.
CENT = MONEY_TOLERANCE + 1e-6


class QualityError(ValueError):
    """Data failed a quality check beyond its threshold."""


@dataclass(frozen=True)
class Finding:
    check: str
    id_column: str
    rows: pd.DataFrame

    @property
    def count(self) -> int:
        return len(self.rows)

    def example_ids(self, n: int = 10) -> list[int]:
        return [int(i) for i in self.rows[self.id_column].drop_duplicates().head(n)]


@dataclass
class Tally:
    """One check over every batch: the rows it found, and the first ten ids in data order."""

    check: str
    id_column: str
    count: int = 0
    examples: list[int] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.count += finding.count
        for i in finding.example_ids():
            if len(self.examples) < 10 and i not in self.examples:
                self.examples.append(i)

    def example_ids(self, n: int = 10) -> list[int]:
        return self.examples[:n]


def duplicated_ids(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    return frame[frame[id_column].duplicated(keep=False)]


def null_keys(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame[frame[keys].isna().any(axis=1)]


def cart_differences(carts: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Per cart: the API's totals next to the sums of its lines (``lines`` as cleaned)."""
    money = ["line_total", "discounted_line_total"]
    sums = lines.groupby("cart_id", sort=False)[money].sum()  # a named ``agg``: twice the CPU
    out = carts.set_index("cart_id")[["user_id", "total", "discounted_total"]].join(sums)
    out = out.fillna({"line_total": 0.0, "discounted_line_total": 0.0})
    out["difference"] = out["line_total"] - out["total"]
    out["discounted_difference"] = out["discounted_line_total"] - out["discounted_total"]
    return out.reset_index()


def known(values: pd.Series, ids: IdIndex | pd.Index | pd.Series) -> np.ndarray:
    """Whether each of ``values`` is one of ``ids``.

    Given as an ``id_index``, ``ids`` are indexed once for every batch, so a batch costs its own
    rows, not all the users' again (``Series.isin`` would rebuild a hash table each time).
    """
    index = ids if isinstance(ids, IdIndex) else id_index(ids)
    return index.contains(values)


def id_index(ids: pd.Series | pd.Index) -> IdIndex:
    """The distinct ``ids`` indexed, for ``known``."""
    return IdIndex(pd.unique(ids.dropna()))


def cart_findings(
    carts: pd.DataFrame,
    lines: pd.DataFrame,
    api_line_totals: pd.Series,
    user_ids: IdIndex,
    product_ids: IdIndex,
) -> list[Finding]:
    """Every check on carts and their lines against users and the product catalogue.

    ``carts``: cart_id, user_id, total, discounted_total (the API's). ``lines``: cleaned cart
    lines; ``api_line_totals``: the API's own ``total`` of each line, aligned with ``lines``.
    ``user_ids``, ``product_ids``: the users' and the catalogue's ids, best as ``id_index``.
    """
    diffs = cart_differences(carts, lines)
    off_total = (diffs["difference"].abs() > CENT) | (diffs["discounted_difference"].abs() > CENT)
    bad_line_total = (api_line_totals - lines["line_total"]).abs() > CENT
    return [
        Finding("cart_ids_unique", "cart_id", duplicated_ids(carts, "cart_id")),
        Finding("cart_keys_not_null", "cart_id", null_keys(carts, ["cart_id", "user_id"])),
        Finding("line_keys_not_null", "cart_id", null_keys(lines, ["cart_id", "product_id"])),
        Finding("cart_user_exists", "cart_id", carts[~known(carts["user_id"], user_ids)]),
        Finding("line_product_exists", "cart_id", lines[~known(lines["product_id"], product_ids)]),
        Finding(
            "line_total_matches",
            "cart_id",
            lines[bad_line_total].assign(api_line_total=api_line_totals[bad_line_total]),
        ),
        Finding("cart_total_matches", "cart_id", diffs[off_total]),
    ]


def id_findings(frame: pd.DataFrame, name: str, id_column: str) -> list[Finding]:
    return [
        Finding(f"{name}_ids_unique", id_column, duplicated_ids(frame, id_column)),
        Finding(f"{name}_ids_not_null", id_column, null_keys(frame, [id_column])),
    ]


def enforce(findings: Sequence[Finding | Tally], thresholds: Mapping[str, int]) -> list[str]:
    """Raise QualityError for the checks over threshold; return warnings for tolerated ones."""
    failures, warnings = [], []
    for f in findings:
        if not f.count:
            continue
        ids = ", ".join(map(str, f.example_ids()))
        message = f"check {f.check}: {f.count} offending row(s), e.g. {f.id_column} {ids}"
        limit = int(thresholds.get(f.check, 0))
        if f.count > limit:
            failures.append(message)
        else:
            warnings.append(f"{message} (tolerated: threshold {limit})")
            log.warning("%s (tolerated: threshold %d)", message, limit)
    if failures:
        raise QualityError("; ".join(failures))
    return warnings


def gate_counts(
    findings: Sequence[Finding | Tally], thresholds: Mapping[str, int]
) -> dict[str, dict[str, int]]:
    """Each check's offending rows and the rows it tolerates, for the Checks section."""
    return {
        f.check: {"rows": f.count, "allowed": int(thresholds.get(f.check, 0))} for f in findings
    }


@dataclass(frozen=True)
class CheckedCarts:
    """Cleaned cart lines, the API's cart totals and what the quality gates found in them."""

    carts: pd.DataFrame
    lines: pd.DataFrame
    findings: list[Finding]

    def figures(self) -> dict[str, Any]:
        """The totals the insights are later reconciled against, of this batch: money summed in
        extended precision (``add_figures`` adds the batches' and rounds once)."""
        carts, lines = self.carts, self.lines

        def money(values: pd.Series) -> np.longdouble:
            return np.sum(values.to_numpy(), dtype=np.longdouble)

        return {
            "carts": len(carts),
            "units": int(lines["quantity"].sum()),
            "api_cart_total": money(carts["total"]),
            "api_cart_discounted_total": money(carts["discounted_total"]),
            "line_total": money(lines["line_total"]),
            "discounted_line_total": money(lines["discounted_line_total"]),
        }


def add_figures(batches: Sequence[Mapping[str, Any]]) -> dict[str, float | int]:
    """The figures of all batches from each batch's (``CheckedCarts.figures``).

    Money is added in extended precision and rounded to a float once, so a total does not
    depend on where the batches were cut (unless it lies within a two-thousandth of a float's
    last bit of a tie), and is what one sum of every line gives.
    """
    return {
        key: int(sum(b[key] for b in batches))
        if key in ("carts", "units")
        else float(sum((b[key] for b in batches), np.longdouble(0)))
        for key in batches[0]
    }


def check_carts(
    raw_carts: pd.DataFrame,
    raw_lines: pd.DataFrame,
    user_ids: IdIndex,
    product_ids: IdIndex,
) -> CheckedCarts:
    """Clean a batch of raw carts (``storage.formats.cart_batches``) and run every cart check
    on it; ``user_ids``, ``product_ids`` as ``cart_findings`` takes them."""
    carts = cleaning.cart_totals(raw_carts)
    lines = cleaning.clean_cart_lines(raw_lines)
    api_line_totals = cleaning.api_line_totals(raw_lines)
    findings = cart_findings(carts, lines, api_line_totals, user_ids, product_ids)
    return CheckedCarts(carts, lines, findings)
