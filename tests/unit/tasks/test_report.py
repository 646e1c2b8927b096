"""The report's cart ids: from CleanCarts' Arrow lines, or from cart_details.csv for an hour
written before those existed; the history a rebuild's report reads."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

from pipeline.rules import cleaning
from pipeline.rules.history import COLUMNS
from pipeline.storage import formats
from pipeline.storage.history import write_hour
from pipeline.tasks.report import HourReport, _cart_ids

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


def history_rows(revenue: float) -> pd.DataFrame:
    rows = [{"level": "hour", "carts": 1, "lines": 1, "users": 1, "units": 1,
             "revenue": revenue, "revenue_discounted": revenue}]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=list(COLUMNS)).astype(COLUMNS)


def test_a_rebuild_reads_the_earlier_hours_of_the_data_root_and_its_own_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rerun`` builds in a staging root that holds only the hour it rebuilds: the trends take
    the earlier hours from the data root (``PIPELINE_RERUN_OF``) and this hour from the
    rebuild, never the data root's old rows of it."""
    data, staging = tmp_path / "data", tmp_path / "data" / ".2026-11-25T17.rerun-1"
    for name, revenue in (("2026-11-25T15", 1.0), ("2026-11-25T16", 2.0), ("2026-11-25T17", 3.0)):
        write_hour(data, name, history_rows(revenue))  # 17: the old build's rows
    write_hour(staging, "2026-11-25T17", history_rows(30.0))  # the rebuild's
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(staging))
    task = HourReport(date_hour=datetime(2026, 11, 25, 17))
    alone = task.history(1, {})
    assert alone is not None and alone["revenue"].tolist() == [30.0]  # a plain run of staging
    monkeypatch.setenv("PIPELINE_RERUN_OF", str(data))
    rows = task.history(1, {})
    assert rows is not None
    assert list(zip(rows["date_hour"], rows["revenue"], strict=True)) == [
        ("2026-11-25T15", 1.0), ("2026-11-25T16", 2.0), ("2026-11-25T17", 30.0),
    ]  # fmt: skip
