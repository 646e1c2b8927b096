"""Exact figures and how the report's sentences write them.

Money is handled in whole cents (int64) taken from the insight CSVs' two-decimal values, so every
sum is exact and every share or average rounds half a cent (or half a tenth of a percent) away
from zero, as the CSVs do: each figure in a sentence matches the CSVs to the cent.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

TOP = 3  # entries a sentence names; the charts and tables show more


def cents(values: pd.Series) -> pd.Series:
    """Two-decimal dollar values as int64 cents (missing values count as 0)."""
    return pd.Series(
        np.rint(values.astype("float64").fillna(0.0).to_numpy() * 100).astype("int64"),
        index=values.index,
    )


def div_half_up(num: int, den: int) -> int:
    """``num / den`` rounded to an integer, halves away from zero, exactly (``den`` > 0)."""
    q, r = divmod(abs(int(num)), int(den))
    q += 2 * r >= den
    return q if num >= 0 else -q


def dollars(c: int) -> Decimal:
    return Decimal(int(c)).scaleb(-2)


def tenths_percent(part: int, whole: int) -> Decimal:
    """``part / whole`` as a percentage with one decimal (0 when ``whole`` is 0)."""
    return Decimal(div_half_up(1000 * int(part), int(whole)) if whole else 0).scaleb(-1)


def money(c: int, sign: bool = False) -> str:
    """Cents as ``$1,234.56``; with ``sign``, ``+$1.00`` / ``-$1.00``."""
    text = f"${abs(int(c)) // 100:,}.{abs(int(c)) % 100:02d}"
    if c < 0:
        return "-" + text
    return ("+" + text) if sign else text


def percent(value: Decimal, sign: bool = False) -> str:
    text = f"{value:.1f}%"
    return f"+{text}" if sign and value >= 0 else text


def count(n: int, sign: bool = False) -> str:
    return f"{int(n):+,}" if sign else f"{int(n):,}"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{count(n)} {word if n == 1 else (words or word + 's')}"


def listing(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
