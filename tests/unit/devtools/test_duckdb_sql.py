"""The benchmark's yardstick computes the same figures as the pipeline (on the fixture)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
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


def test_run_as_a_file_the_script_loads_duckdb_alone(tmp_path: Path) -> None:
    """As the benchmark runs it: a user's script pays for DuckDB, not for luigi and the pipeline."""
    partition = tmp_path / "2026-11-25T17"
    shutil.copytree(FIXTURES, partition / "jsons")
    script = Path(duckdb_sql.__file__)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(script), str(partition)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(partition / "duckdb-sql")
    assert len(list((partition / "duckdb-sql").glob("*.csv"))) == 7
    loaded = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "duckdb" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("luigi", "pipeline", "pandas")}
