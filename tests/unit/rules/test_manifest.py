"""The manifest is assembled from the tasks' stats and carries the reconciliation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline import lineage
from pipeline.rules import manifest
from pipeline.rules.insights import ReconciliationError
from pipeline.storage.layout import Partition

#: The stats file each task leaves in the partition folder, by the key the manifest uses.
FILES = {
    "extract_carts": "Extract-carts", "extract_products": "Extract-products",
    "extract_users": "Extract-users", "clean_users": "CleanUsers",
    "clean_products": "CleanProducts", "clean_carts": "CleanCarts",
    "user_summary": "UserSummary", "category_summary": "CategorySummary",
    "cart_details": "CartDetails", "history_hour": "HistoryHour", "hour_report": "HourReport",
}  # fmt: skip


def stats(user_money: float = 30.0, source_b: str = "http://api") -> dict[str, dict[str, Any]]:
    timing = {"task": "T", "started": "s", "finished": "f", "seconds": 0.1}
    extract = {
        e: {"endpoint": e, "source": "http://api", "api_total": n, "records": n, "requests": 1,
            **timing}
        for e, n in (("carts", 2), ("products", 3), ("users", 4))
    }  # fmt: skip
    extract["users"]["source"] = source_b
    return {
        **{f"extract_{e}": s for e, s in extract.items()},
        "clean_users": {"rows": {"cleaned_users.csv": 4}, **timing},
        "clean_products": {"rows": {"cleaned_products.csv": 1}, "min_product_price": 50.0,
                           **timing},
        "clean_carts": {"rows": {"cleaned_carts.csv": 5}, "carts": 2, "api_cart_total": 30.0,
                        "line_total": 30.0, "quality_warnings": ["w"], **timing},
        "user_summary": {"rows": {"user_summary.csv": 2}, "money_total": user_money, **timing},
        "category_summary": {"rows": {"category_summary.csv": 3}, "money_total": 30.0,
                             **timing},
        "cart_details": {"rows": {"cart_details.csv": 5}, **timing},
        "history_hour": {"rows": {"history.parquet": 6}, **timing},
        "hour_report": {"rows": {"findings.md": 8}, "warnings": [], **timing},
    }  # fmt: skip


def test_manifest_lists_sources_totals_rows_and_reconciliation() -> None:
    got = manifest.assemble("2026-11-25T17", stats())
    got.pop("written")
    assert got == {
        "partition": "2026-11-25T17",
        "source": "http://api",
        "api_totals": {"carts": 2, "products": 3, "users": 4},
        "requests": 3,
        "rows": {"cart_details.csv": 5, "carts.jsonl": 2, "category_summary.csv": 3,
                 "cleaned_carts.csv": 5,
                 "cleaned_products.csv": 1, "cleaned_users.csv": 4, "findings.md": 8,
                 "history.parquet": 6, "products.jsonl": 3, "user_summary.csv": 2,
                 "users.jsonl": 4},
        "reconciliation": {"carts": 2, "api_cart_total": 30.0, "line_total": 30.0,
                           "user_total_spent": 30.0, "category_total_sales": 30.0,
                           "difference_lines_vs_api": 0.0},
        "quality_warnings": ["w"],
        "checks": [],  # stats of a report written before checks were recorded
        "schema_drift": {e: {"added": [], "missing": []} for e in ("carts", "products", "users")},
        "min_product_price": 50.0,
        "tasks": {key: {"task": "T", "started": "s", "finished": "f", "seconds": 0.1}
                  for key in stats()},
    }  # fmt: skip


def test_manifest_records_the_reports_checks_and_the_extracts_schema_drift() -> None:
    facts = stats()
    check = {"name": "carts", "value": 40.0, "low": 95.0, "high": 105.0, "status": "anomaly",
             "change": "new"}  # fmt: skip
    facts["hour_report"]["checks"] = [check]
    facts["extract_products"].update(
        dropped_fields=["color", "rating"], new_fields=["color"], missing_fields=["brand"]
    )
    # an extract's stats from before new_fields: the added fields are the dropped unknown ones
    facts["extract_carts"]["dropped_fields"] = ["products.thumbnail", "products.size", "weight"]
    got = manifest.assemble("2026-11-25T17", facts)
    assert got["checks"] == [check]
    assert got["schema_drift"] == {
        "carts": {"added": ["products.size", "weight"], "missing": []},
        "products": {"added": ["color"], "missing": ["brand"]},
        "users": {"added": [], "missing": []},
    }


def test_a_partition_extracted_from_two_sources_says_so() -> None:
    assert manifest.assemble("P", stats(source_b="http://other"))["source"] == [
        "http://api", "http://other",
    ]  # fmt: skip


def test_stats_from_before_source_was_recorded_still_give_the_source() -> None:
    old = stats()
    for e in ("carts", "products", "users"):
        old[f"extract_{e}"]["url"] = f"http://api/{e}"
        del old[f"extract_{e}"]["source"]
    assert manifest.assemble("P", old)["source"] == "http://api"


def test_no_manifest_when_the_money_does_not_add_up() -> None:
    with pytest.raises(ReconciliationError, match=r"user_summary\.total_spent"):
        manifest.assemble("P", stats(user_money=29.0))


def test_the_manifest_of_a_partition_is_built_from_the_stats_files_in_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_RUN_LOG", "/var/log/x/run-20261125T193000Z-4242.log")
    part = tmp_path / "2026-11-25T17" / "_stats"
    part.mkdir(parents=True)
    for key, facts in stats().items():
        (part / f"{FILES[key]}.json").write_bytes(orjson.dumps(facts))
    got = manifest.build(Partition(tmp_path, datetime(2026, 11, 25, 17)))
    want = manifest.assemble("2026-11-25T17", stats())
    got.pop("written"), want.pop("written")
    assert got.pop("run_id") == "run-20261125T193000Z-4242"  # the run log's name
    assert got.pop("code_version") == lineage.code_version()
    assert got == want
    assert got["api_totals"] == {"carts": 2, "products": 3, "users": 4}
    assert sorted(got["tasks"]) == sorted(FILES)


def test_no_manifest_while_a_task_has_left_no_stats(tmp_path: Path) -> None:
    part = tmp_path / "2026-11-25T17" / "_stats"
    part.mkdir(parents=True)
    for key, facts in stats().items():
        if key != "clean_users":
            (part / f"{FILES[key]}.json").write_bytes(orjson.dumps(facts))
    with pytest.raises(FileNotFoundError, match=r"_stats/CleanUsers\.json"):
        manifest.build(Partition(tmp_path, datetime(2026, 11, 25, 17)))
