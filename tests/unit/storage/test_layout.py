"""Every path comes from the data root and the partition."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipeline.storage.layout import Partition


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
