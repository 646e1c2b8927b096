"""The history's schema-drift rows, history written before they existed, and the trailing window
the anomaly checks read: only complete hours count."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.rules.history import COLUMNS, drift_rows
from pipeline.storage import history

NEW = ("endpoint", "field", "drift")


def hour_total(carts: int) -> pd.DataFrame:
    rows = pd.DataFrame([{"level": "hour", "carts": carts, "lines": 1, "users": 1, "units": 1,
                          "revenue": 1.0, "revenue_discounted": 1.0}])  # fmt: skip
    return rows.reindex(columns=list(COLUMNS)).astype(COLUMNS)


def write_old(root: Path, name: str, carts: int) -> None:
    """An hour's file as written before the drift columns existed."""
    old = pa.schema([f for f in history.SCHEMA if f.name not in NEW])
    folder = root / "history" / f"date_hour={name}"
    folder.mkdir(parents=True)
    table = pa.Table.from_pandas(hour_total(carts).drop(columns=list(NEW)), schema=old,
                                 preserve_index=False)  # fmt: skip
    pq.write_table(table, folder / "part-0.parquet")


def test_drift_rows_are_one_per_field_added_first() -> None:
    got = drift_rows({"users": {"added": [], "missing": []},
                      "products": {"added": ["color", "a.b"], "missing": ["brand"]}})  # fmt: skip
    assert got[["level", *NEW]].values.tolist() == [
        ["drift", "products", "a.b", "added"],
        ["drift", "products", "color", "added"],
        ["drift", "products", "brand", "missing"],
    ]
    assert got["carts"].isna().all() and list(got.columns) == list(COLUMNS)
    assert drift_rows({}).empty and list(drift_rows({}).columns) == list(COLUMNS)


def test_history_written_before_the_drift_columns_still_reads(tmp_path: Path) -> None:
    write_old(tmp_path, "2026-11-25T16", 5)
    rows = pd.concat([hour_total(6), drift_rows({"products": {"added": ["color"]}})])
    history.write_hour(tmp_path, "2026-11-25T17", rows)
    got = history.read_history(tmp_path)
    assert got[["date_hour", "level", "carts", *NEW]].astype(object).where(
        got[["date_hour", "level", "carts", *NEW]].notna(), None
    ).values.tolist() == [
        ["2026-11-25T16", "hour", 5, None, None, None],
        ["2026-11-25T17", "hour", 6, None, None, None],
        ["2026-11-25T17", "drift", None, "products", "color", "added"],
    ]  # fmt: skip


def test_the_trailing_window_leaves_out_hours_that_are_not_complete(tmp_path: Path) -> None:
    for name, carts in (("2026-11-25T14", 4), ("2026-11-25T15", 5), ("2026-11-25T16", 6),
                        ("2026-11-25T17", 7)):  # fmt: skip
        history.write_hour(tmp_path, name, hour_total(carts))
    (tmp_path / "2026-11-25T15").mkdir()  # a run failed here after writing its history rows
    (tmp_path / "2026-11-25T16").mkdir()
    (tmp_path / "2026-11-25T16" / "manifest.json").write_text("{}")  # complete
    # 14: its partition pruned since: its rows were written just before its manifest, it counts
    got = history.trailing(tmp_path, "2026-11-25T17", 3)
    assert got[["date_hour", "carts"]].values.tolist() == [["2026-11-25T14", 4],
                                                           ["2026-11-25T16", 6]]  # fmt: skip
    assert history.trailing(tmp_path, "2026-11-25T17", 1)["date_hour"].tolist() == ["2026-11-25T16"]
