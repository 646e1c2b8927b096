"""The benchmark's yardstick computes the same figures as the pipeline (on the fixture)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pandas.testing as pdt

from pipeline.devtools import duckdb_sql
from tests.support import FIXTURES, expected


def test_the_duckdb_script_gives_the_pipelines_summaries(tmp_path: Path) -> None:
    partition = tmp_path / "2026-11-25T17"
    shutil.copytree(FIXTURES, partition / "jsons")
    out = duckdb_sql.run(partition)
    assert sorted(p.name for p in out.iterdir()) == [
        "cart_details.csv", "category_summary.csv", "cleaned_carts.csv", "cleaned_products.csv",
        "cleaned_users.csv", "product_catalogue.csv", "user_summary.csv",
    ]  # fmt: skip
    for name, want in (
        ("user_summary", expected.USER_SUMMARY),
        ("category_summary", expected.CATEGORY_SUMMARY),
    ):
        got = pd.read_csv(out / f"{name}.csv")
        pdt.assert_frame_equal(got, pd.read_csv(io.StringIO(want)), check_dtype=False)
    details = pd.read_csv(out / "cart_details.csv")  # in no particular order
    want = pd.read_csv(io.StringIO(expected.CART_DETAILS))
    key = ["cart_id", "product_id", "quantity"]
    pdt.assert_frame_equal(
        details.sort_values(key, ignore_index=True),
        want.sort_values(key, ignore_index=True),
        check_dtype=False,
    )
