"""Each task requires only what it reads, and names its outputs as partitions always have."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from luigi.task import flatten

from pipeline.tasks.extract import EXTRACTS
from pipeline.tasks.publish import Insights, upstream

HOUR = datetime(2026, 11, 25, 17)


def test_each_task_requires_only_the_tasks_whose_outputs_it_reads() -> None:
    root = Insights(date_hour=HOUR)
    graph = {
        task.task_family: sorted(dep.task_family for dep in flatten(task.requires()))
        for task in [root, *upstream(root)]
    }
    assert graph == {
        "Insights": ["HourReport"],
        "HourReport": [
            "CartDetails",
            "CategorySummary",
            "CleanCarts",
            "HistoryHour",
            "UserSummary",
        ],
        "HistoryHour": ["CartDetails", "CategorySummary", "UserSummary"],
        "UserSummary": ["CleanCarts", "CleanUsers"],
        "CategorySummary": ["CleanCarts", "CleanProducts"],
        "CartDetails": ["CleanCarts", "CleanProducts", "CleanUsers"],
        "CleanCarts": ["CleanProducts", "CleanUsers", "ExtractCarts"],
        "CleanUsers": ["ExtractUsers"],
        "CleanProducts": ["ExtractProducts"],
        "ExtractCarts": [],
        "ExtractProducts": [],
        "ExtractUsers": [],
    }


def test_one_extract_family_per_endpoint() -> None:
    assert {e: cls.task_family for e, cls in EXTRACTS.items()} == {
        "carts": "ExtractCarts",
        "products": "ExtractProducts",
        "users": "ExtractUsers",
    }
    assert [cls.endpoint for cls in EXTRACTS.values()] == ["carts", "products", "users"]
    from pipeline.tasks.extract import ExtractCarts  # generated, and importable by name

    assert ExtractCarts is EXTRACTS["carts"]


def test_every_task_keeps_its_stats_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    names = {
        task.task_family: str(task.stats_path().relative_to(tmp_path / "2026-11-25T17"))
        for task in upstream(Insights(date_hour=HOUR))
    }
    assert names == {
        "ExtractCarts": "_stats/Extract-carts.json",
        "ExtractProducts": "_stats/Extract-products.json",
        "ExtractUsers": "_stats/Extract-users.json",
        "CleanUsers": "_stats/CleanUsers.json",
        "CleanProducts": "_stats/CleanProducts.json",
        "CleanCarts": "_stats/CleanCarts.json",
        "UserSummary": "_stats/UserSummary.json",
        "CategorySummary": "_stats/CategorySummary.json",
        "CartDetails": "_stats/CartDetails.json",
        "HistoryHour": "_stats/HistoryHour.json",
        "HourReport": "_stats/HourReport.json",
    }
    assert not tmp_path.joinpath("2026-11-25T17").exists()
