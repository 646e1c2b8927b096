"""The history dataset on disk: atomic replacement per hour, one table for every reader,
retention, and finding the previous complete partition."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pandas.testing as pdt
import pyarrow.dataset as ds
import pytest

from pipeline.rules.history import COLUMNS
from pipeline.storage import history


def hour(revenue: float, users: tuple[int, ...] = (1, 2)) -> pd.DataFrame:
    """Rows of one hour: its total, one category and ``users``."""
    rows = [
        {"level": "hour", "carts": len(users), "lines": 3, "users": len(users), "units": 4,
         "revenue": revenue, "revenue_discounted": revenue - 1},
        {"level": "category", "category": "a-cat", "units": 4, "revenue": revenue,
         "revenue_discounted": revenue - 1},
    ] + [
        {"level": "user", "user_id": u, "carts": 1, "units": 2, "revenue": revenue / len(users),
         "revenue_discounted": (revenue - 1) / len(users)}
        for u in users
    ]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=list(COLUMNS)).astype(COLUMNS)


def test_an_hour_reads_back_with_its_date_hour(tmp_path: Path) -> None:
    written = hour(10.5)
    path = history.write_hour(tmp_path, "2026-11-25T17", written)
    assert path == tmp_path / "history" / "date_hour=2026-11-25T17" / "part-0.parquet"
    got = history.read_history(tmp_path)
    want = written.assign(date_hour="2026-11-25T17").astype({"date_hour": "string"})
    pdt.assert_frame_equal(got, want)


def test_rerunning_an_hour_replaces_its_rows(tmp_path: Path) -> None:
    history.write_hour(tmp_path, "2026-11-25T16", hour(1.0))
    history.write_hour(tmp_path, "2026-11-25T17", hour(2.0, users=(1, 2, 3)))
    history.write_hour(tmp_path, "2026-11-25T17", hour(3.0))
    got = history.read_history(tmp_path, levels=["hour"])
    assert got[["date_hour", "revenue"]].values.tolist() == [
        ["2026-11-25T16", 1.0], ["2026-11-25T17", 3.0],
    ]  # fmt: skip
    assert len(history.read_history(tmp_path, "2026-11-25T17", "2026-11-25T17")) == 4
    assert sorted(os.listdir(tmp_path / "history" / "date_hour=2026-11-25T17")) == [
        "part-0.parquet"
    ]


def test_every_reader_sees_one_table_and_skips_temporary_files(tmp_path: Path) -> None:
    history.write_hour(tmp_path, "2026-11-25T16", hour(1.0))
    history.write_hour(tmp_path, "2026-11-25T17", hour(2.0))
    # a killed writer's temporary file is invisible to readers, and swept by the next write
    stray = tmp_path / "history" / "date_hour=2026-11-25T17" / ".part-0.parquet.999.tmp"
    stray.write_bytes(b"half a file")
    base = tmp_path / "history"

    by_pandas = pd.read_parquet(base)
    assert len(by_pandas) == 8
    assert by_pandas.query("level == 'hour'")["revenue"].tolist() == [1.0, 2.0]
    by_arrow = ds.dataset(base, format="parquet", partitioning="hive").to_table()
    assert by_arrow.num_rows == 8
    by_duck = duckdb.sql(
        f"SELECT date_hour, revenue FROM read_parquet('{base}/*/*.parquet', "
        "hive_partitioning = true) WHERE level = 'hour' ORDER BY date_hour"
    ).fetchall()
    assert by_duck == [("2026-11-25T16", 1.0), ("2026-11-25T17", 2.0)]

    history.write_hour(tmp_path, "2026-11-25T17", hour(2.0))
    assert not stray.exists()


def test_reading_filters_hours_and_levels(tmp_path: Path) -> None:
    for h, r in (("2026-11-25T15", 1.0), ("2026-11-25T16", 2.0), ("2026-11-25T17", 3.0)):
        history.write_hour(tmp_path, h, hour(r))
    got = history.read_history(tmp_path, "2026-11-25T16", "2026-11-25T17", ("hour", "category"))
    assert got[["date_hour", "level", "revenue"]].values.tolist() == [
        ["2026-11-25T16", "hour", 2.0], ["2026-11-25T16", "category", 2.0],
        ["2026-11-25T17", "hour", 3.0], ["2026-11-25T17", "category", 3.0],
    ]  # fmt: skip


def test_no_history_reads_as_an_empty_table_with_every_column(tmp_path: Path) -> None:
    got = history.read_history(tmp_path)
    assert got.empty and list(got.columns) == [*COLUMNS, "date_hour"]


def test_retention_deletes_old_hours_but_never_the_one_written(tmp_path: Path) -> None:
    for name in ("2026-08-27T17", "2026-08-27T18", "2026-08-27T19", "2026-11-25T17"):
        history.write_hour(tmp_path, name, hour(1.0))
    (tmp_path / "history" / "notes").mkdir()  # not an hour: left alone
    (tmp_path / "history" / "date_hour=2026-13-45T99").mkdir()  # not a real hour either
    now = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)  # cutoff: 90 days before 18:00 = 08-27T18
    gone = history.prune_history(tmp_path, 90, now, keep="2026-08-27T17")
    assert [p.name for p in gone] == ["date_hour=2026-08-27T18"]
    assert sorted(os.listdir(tmp_path / "history")) == [
        "date_hour=2026-08-27T17", "date_hour=2026-08-27T19", "date_hour=2026-11-25T17",
        "date_hour=2026-13-45T99", "notes",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="retention_days must be >= 1, got 0"):
        history.prune_history(tmp_path, 0, now, keep="2026-11-25T17")


def test_previous_complete_is_the_newest_earlier_partition_with_a_manifest(
    tmp_path: Path,
) -> None:
    for name, complete in (
        ("2026-11-25T12", True), ("2026-11-25T14", True), ("2026-11-25T15", False),
        ("2026-11-25T17", False), ("2026-11-25T18", True),
    ):  # fmt: skip
        (tmp_path / name).mkdir()
        if complete:
            (tmp_path / name / "manifest.json").write_text("{}")
    (tmp_path / "history").mkdir()
    os.symlink("2026-11-25T18", tmp_path / "latest")
    assert history.previous_complete(tmp_path, "2026-11-25T17") == "2026-11-25T14"
    assert history.previous_complete(tmp_path, "2026-11-25T14") == "2026-11-25T12"
    assert history.previous_complete(tmp_path, "2026-11-25T12") is None
