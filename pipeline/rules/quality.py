"""Quality gates run before any insight is written. Pure functions, no I/O.

Each check returns the offending rows. ``enforce`` turns them into a verdict: a check over its
threshold (default 0: strict) fails the task with a message naming the check, the number of
offending rows and up to ten example ids; the task writes the rows to ``rejected/<check>.csv``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from pipeline.rules import cleaning
from pipeline.rules.insights import MONEY_TOLERANCE

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


def duplicated_ids(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    return frame[frame[id_column].duplicated(keep=False)]


def null_keys(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame[frame[keys].isna().any(axis=1)]


def cart_differences(carts: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Per cart: the API's totals next to the sums of its lines (``lines`` as cleaned)."""
    sums = lines.groupby("cart_id").agg(
        line_total=("line_total", "sum"), discounted_line_total=("discounted_line_total", "sum")
    )
    out = carts.set_index("cart_id")[["user_id", "total", "discounted_total"]].join(sums)
    out = out.fillna({"line_total": 0.0, "discounted_line_total": 0.0})
    out["difference"] = out["line_total"] - out["total"]
    out["discounted_difference"] = out["discounted_line_total"] - out["discounted_total"]
    return out.reset_index()


def cart_findings(
    carts: pd.DataFrame,
    lines: pd.DataFrame,
    api_line_totals: pd.Series,
    user_ids: pd.Series,
    product_ids: pd.Series,
) -> list[Finding]:
    """Every check on carts and their lines against users and the product catalogue.

    ``carts``: cart_id, user_id, total, discounted_total (the API's). ``lines``: cleaned cart
    lines; ``api_line_totals``: the API's own ``total`` of each line, aligned with ``lines``.
    """
    diffs = cart_differences(carts, lines)
    off_total = (diffs["difference"].abs() > CENT) | (diffs["discounted_difference"].abs() > CENT)
    bad_line_total = (api_line_totals - lines["line_total"]).abs() > CENT
    return [
        Finding("cart_ids_unique", "cart_id", duplicated_ids(carts, "cart_id")),
        Finding("cart_keys_not_null", "cart_id", null_keys(carts, ["cart_id", "user_id"])),
        Finding("line_keys_not_null", "cart_id", null_keys(lines, ["cart_id", "product_id"])),
        Finding("cart_user_exists", "cart_id", carts[~carts["user_id"].isin(user_ids)]),
        Finding("line_product_exists", "cart_id", lines[~lines["product_id"].isin(product_ids)]),
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


def enforce(findings: list[Finding], thresholds: Mapping[str, int]) -> list[str]:
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


@dataclass(frozen=True)
class CheckedCarts:
    """Cleaned cart lines, the API's cart totals and what the quality gates found in them."""

    carts: pd.DataFrame
    lines: pd.DataFrame
    findings: list[Finding]

    def figures(self) -> dict[str, float | int]:
        """The totals the insights are later reconciled against."""
        carts, lines = self.carts, self.lines
        return {
            "carts": len(carts),
            "units": int(lines["quantity"].sum()),
            "api_cart_total": float(carts["total"].sum()),
            "api_cart_discounted_total": float(carts["discounted_total"].sum()),
            "line_total": float(lines["line_total"].sum()),
            "discounted_line_total": float(lines["discounted_line_total"].sum()),
        }


def check_carts(
    raw_carts: pd.DataFrame,
    raw_lines: pd.DataFrame,
    user_ids: pd.Series,
    product_ids: pd.Series,
) -> CheckedCarts:
    """Clean the raw carts (``storage.read_carts``) and run every cart check on them."""
    carts = cleaning.cart_totals(raw_carts)
    lines = cleaning.clean_cart_lines(raw_lines)
    api_line_totals = cleaning.api_line_totals(raw_lines)
    findings = cart_findings(carts, lines, api_line_totals, user_ids, product_ids)
    return CheckedCarts(carts, lines, findings)
