"""Every path comes from the data root and the partition."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipeline.storage.layout import STATS, Partition


def test_partition_layout(tmp_path: Path) -> None:
    p = Partition(tmp_path, datetime(2026, 11, 25, 7))
    assert p.name == "2026-11-25T07"
    assert p.raw("carts") == tmp_path / "2026-11-25T07/jsons/carts.jsonl"
    assert p.cleaned("users") == tmp_path / "2026-11-25T07/cleaned/cleaned_users.csv"
    assert p.catalogue == tmp_path / "2026-11-25T07/cleaned/product_catalogue.csv"
    assert p.exact("cart_lines") == tmp_path / "2026-11-25T07/_exact/cart_lines.arrow"
    assert p.insight("user_summary") == tmp_path / "2026-11-25T07/insights/user_summary.csv"
    assert (
        p.rejected("cart_user_exists") == tmp_path / "2026-11-25T07/rejected/cart_user_exists.csv"
    )
    assert p.manifest == tmp_path / "2026-11-25T07/manifest.json"
    assert p.lock == tmp_path / "2026-11-25T07/.lock"
    assert p.stats("extract_carts") == tmp_path / "2026-11-25T07/_stats/Extract-carts.json"
    assert p.stats("clean_carts") == tmp_path / "2026-11-25T07/_stats/CleanCarts.json"


def test_every_task_has_a_stats_file_named_as_partitions_always_had() -> None:
    assert STATS == {
        "extract_carts": "Extract-carts",
        "extract_products": "Extract-products",
        "extract_users": "Extract-users",
        "clean_users": "CleanUsers",
        "clean_products": "CleanProducts",
        "clean_carts": "CleanCarts",
        "user_summary": "UserSummary",
        "category_summary": "CategorySummary",
        "cart_details": "CartDetails",
        "history_hour": "HistoryHour",
        "hour_report": "HourReport",
    }
