"""The benchmark's yardstick computes the same figures as the pipeline (on the fixture)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

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


#: Runs a script as a file in an interpreter where ``import duckdb`` fails, as where the pipeline
#: alone is installed.
WITHOUT_DUCKDB = """
import runpy, sys
sys.modules["duckdb"] = None  # import duckdb: ImportError
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_without_duckdb_the_script_says_how_to_install_it(tmp_path: Path) -> None:
    partition = tmp_path / "2026-11-25T17"
    shutil.copytree(FIXTURES, partition / "jsons")
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_DUCKDB, duckdb_sql.__file__, str(partition)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"duckdb_sql.py: {duckdb_sql.INSTALL}\n"
    assert "pip install -c requirements-test.lock -e '.[bench]'" in done.stderr
    assert not (partition / "duckdb-sql").exists()


def test_without_duckdb_the_benchmark_refuses_its_scenario_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.devtools import bench

    real = bench.importlib.util.find_spec
    monkeypatch.setattr(
        bench.importlib.util, "find_spec", lambda name: None if name == "duckdb" else real(name)
    )
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--only", "clean,duckdb-sql", "--root", str(tmp_path / "bench")])
    assert exit_.value.code == 2
    assert f"scenario duckdb-sql: {duckdb_sql.INSTALL}, or leave it out" in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()
