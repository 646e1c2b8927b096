"""The report benchmark runs end to end (on a tiny shop): a dev tool no test walks breaks."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.devtools import bench_report


@pytest.mark.slow
def test_the_report_benchmark_times_history_and_report_of_the_later_hour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench_report.main(["--root", str(tmp_path), "--carts", "100", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith(("History", "Hour"))] == [
        "HistoryHour", "HourReport",
    ]  # fmt: skip
    part = tmp_path / "work" / "report" / "data" / bench_report.HOUR
    history = tmp_path / "work" / "report" / "data" / "history"
    rows = pq.read_metadata(history / f"date_hour={bench_report.HOUR}" / "part-0.parquet").num_rows
    assert f"history rows for the hour: {rows:,}" in lines
    page = (part / "report" / "index.html").read_text()
    assert bench_report.EARLIER in page  # compared with the earlier hour
    assert f"{bench_report.STUB_SOURCE}" in page
