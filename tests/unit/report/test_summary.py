"""The console summary of a complete hour, and its command line."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson
import pytest

from pipeline.config import CHECKOUT
from pipeline.report import summary

HEADER = "category,total_sales,total_items_sold,total_sales_discounted\n"


def partition(root: Path, name: str, carts: int, categories: str, report: bool = False) -> None:
    part = root / name
    (part / "insights").mkdir(parents=True)
    (part / "insights/category_summary.csv").write_text(HEADER + categories)
    rows = {"cleaned_carts.csv": 14, "cleaned_users.csv": 6, "product_catalogue.csv": 1208}
    manifest = {"reconciliation": {"carts": carts}, "rows": rows}
    (part / "manifest.json").write_bytes(orjson.dumps(manifest))
    if report:
        (part / "report").mkdir()
        (part / "report/index.html").write_text("<html></html>")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    partition(tmp_path, "2026-11-25T14", 4, "x,100.00,1,90.00\n")
    (tmp_path / "2026-11-25T16").mkdir()  # incomplete: no manifest
    partition(
        tmp_path, "2026-11-25T17", 6, "beauty,1200.01,3,1000.00\nfurniture,799.99,1,729.59\n",
        report=True,
    )  # fmt: skip
    os.symlink("2026-11-25T17", tmp_path / "latest")
    return tmp_path


def test_summary_of_an_hour_with_a_previous_one(root: Path) -> None:
    assert summary.summary_lines(root, "2026-11-25T17") == [
        "Snapshot 2026-11-25T17: 6 carts, 14 lines, 6 users, 1,208 products",
        "Sales: $2,000.00 at list prices, $1,729.59 after discounts",
        "Top category: beauty, $1,200.01 (60.0% of sales)",
        "Change since 2026-11-25T14: carts +2, revenue +$1,900.00 (+1900.0%)",
        f"Report: {root}/2026-11-25T17/report/index.html",
        f"Latest: {root}/latest -> 2026-11-25T17",
    ]


def test_summary_of_the_first_hour(root: Path) -> None:
    lines = summary.summary_lines(root, "2026-11-25T14")
    assert lines[3] == "Change: no earlier complete snapshot to compare with"
    assert lines[4] == "Report: none for this hour"
    assert len(lines) <= 8


def test_an_incomplete_or_malformed_hour_has_no_summary(root: Path) -> None:
    with pytest.raises(summary.NoSummary, match=r"2026-11-25T16 under .* is not complete"):
        summary.summary_lines(root, "2026-11-25T16")
    with pytest.raises(summary.NoSummary, match="'yesterday' is not an hour"):
        summary.summary_lines(root, "yesterday")


def test_the_command_prints_latest_or_the_given_hour(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert summary.main(["--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert out == "\n".join(summary.summary_lines(root, "2026-11-25T17")) + "\n"
    assert summary.main(["--data-dir", str(root), "--date-hour", "2026-11-25T14"]) == 0
    assert capsys.readouterr().out.startswith("Snapshot 2026-11-25T14: 4 carts")


def test_the_command_fails_with_one_message(
    root: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(summary, "DEMO_DIR", root / "no-demo-here")
    assert summary.main(["--data-dir", str(root), "--date-hour", "2026-11-25T16"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"report: partition 2026-11-25T16 under {root} is not complete (no manifest.json)\n"
    )
    empty = root / "empty"
    empty.mkdir()
    assert summary.main(["--data-dir", str(empty)]) == 1
    assert (
        capsys.readouterr().err == f"report: no complete snapshot under {empty} yet (no `latest`)\n"
    )


def test_with_no_snapshot_but_the_demos_the_command_says_where_the_demo_writes(
    root: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(summary, "DEMO_DIR", root)  # a demo's folder, with `latest`
    empty = root / "empty"
    empty.mkdir()
    monkeypatch.chdir(root.parent)
    assert summary.main(["--data-dir", str(empty)]) == 1
    assert capsys.readouterr().err == (
        f"report: no complete snapshot under {empty} yet (no `latest`); the demo writes to "
        f"{root}: {CHECKOUT}/run_pipeline.sh report --data-dir {root.name}\n"
    )
    assert summary.main(["--data-dir", root.name]) == 0  # the command it gives works
    assert capsys.readouterr().out.startswith("Snapshot 2026-11-25T17: 6 carts")


def test_printing_never_fails_a_run(
    root: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    (root / "2026-11-25T17/insights/category_summary.csv").write_text("not,a\ncsv")
    with caplog.at_level(logging.WARNING):
        summary.print_summary(root, "2026-11-25T17")
    assert capsys.readouterr().out == ""
    assert "no summary of 2026-11-25T17" in caplog.text
