"""The report's cart ids: from CleanCarts' Arrow lines, or from cart_details.csv for an hour
written before those existed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandas.testing as pdt

from pipeline.report.hour import cart_ids as _cart_ids
from pipeline.rules import cleaning
from pipeline.storage import formats

LINES = pd.DataFrame(
    {"cart_id": [3, 3, 8], "user_id": [1, 1, 2], "product_id": [5, 6, 5], "quantity": [1, 2, 1],
     "price": [1.5, 2.0, 1.5], "line_total": [1.5, 4.0, 1.5],
     "discounted_line_total": [1.0, 3.5, 1.5]}
)  # fmt: skip


def test_cart_ids_come_from_the_exact_lines(tmp_path: Path) -> None:
    exact = tmp_path / "cart_lines.arrow"
    with formats.ExactWriter(exact, cleaning.empty_lines()) as out:
        out.write(LINES)
    got = _cart_ids(exact, tmp_path / "missing.csv")  # the CSV is not read
    pdt.assert_series_equal(got, LINES["cart_id"])


def test_an_hour_without_exact_lines_gives_them_from_cart_details(tmp_path: Path) -> None:
    details = tmp_path / "cart_details.csv"
    details.write_text('"cart_id","user_id"\n3,1\n3,1\n8,2\n')
    got = _cart_ids(tmp_path / "cart_lines.arrow", details)
    pdt.assert_series_equal(got, LINES["cart_id"])
