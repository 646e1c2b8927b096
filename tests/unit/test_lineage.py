"""``pipeline.lineage``: the run's id is its log's name, the code version is said honestly, a
local source is called one, and history written before runs were recorded still reads."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import lineage
from pipeline.rules.history import COLUMNS
from pipeline.storage.history import read_history
from pipeline.storage.layout import history_file


@pytest.fixture
def fresh_version() -> Iterator[None]:
    lineage.code_version.cache_clear()
    yield
    lineage.code_version.cache_clear()


def test_the_run_id_is_the_run_logs_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_RUN_LOG", "/data/logs/run-20261207T142406Z-29620.log")
    assert lineage.run_id() == "run-20261207T142406Z-29620"


def test_without_a_run_log_the_process_has_an_id_of_the_same_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PIPELINE_RUN_LOG", raising=False)
    # tests/conftest.py pins the clock at 2026-11-25T19:30:00Z
    assert lineage.run_id() == f"run-20261125T193000Z-{os.getpid()}"
    monkeypatch.setenv("PIPELINE_RUN_LOG", "/tmp/something-else.log")  # not a run log's name
    assert lineage.run_id() == f"run-20261125T193000Z-{os.getpid()}"


def test_the_code_version_is_the_checkouts_commit(fresh_version: None) -> None:
    head = subprocess.run(["git", "-C", str(lineage.CHECKOUT), "rev-parse", "--short=7", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert lineage.code_version() in (head, f"{head}-dirty")


def test_outside_a_git_checkout_it_is_the_package_version_else_unknown(
    fresh_version: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lineage, "CHECKOUT", tmp_path)  # no .git here
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert lineage.code_version() == "package 0.1.0"  # setup.cfg's version, installed
    lineage.code_version.cache_clear()
    monkeypatch.setattr(lineage, "PACKAGE", "no-such-package-installed")
    assert lineage.code_version() == "unknown"


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.8.9.10", True),
        ("http://localhost:1234/api", True),
        ("http://[::1]:80", True),
        ("https://dummyjson.com", False),
        ("http://10.0.0.5", False),
        ("http://127.0.0.1.example.com", False),
    ],
)
def test_a_source_on_this_machine_is_called_local(url: str, local: bool) -> None:
    assert lineage.is_local(url) is local
    sentence = lineage.Lineage("run-20261125T193000Z-1", "abc1234", url).sentence()
    assert ("not production data" in sentence) is local


def test_history_written_before_runs_were_recorded_still_reads(tmp_path: Path) -> None:
    old = {name: kind for name, kind in COLUMNS.items() if name != "run_id"}
    arrow = {"string": pa.string(), "Int64": pa.int64(), "float64": pa.float64()}
    schema = pa.schema([(name, arrow[kind]) for name, kind in old.items()])
    path = history_file(tmp_path, "2026-11-25T16")
    path.parent.mkdir(parents=True)
    row = {"level": ["hour"], "carts": [3], "revenue": [12.5]}
    pq.write_table(pa.table({n: row.get(n, [None]) for n in old}, schema=schema), path)
    got = read_history(tmp_path)
    assert got["carts"].tolist() == [3]
    assert got["run_id"].isna().tolist() == [True]
    assert got["run_id"].dtype == pd.StringDtype()
