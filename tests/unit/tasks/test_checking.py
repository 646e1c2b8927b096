"""Checking is not writing: asking a task whether it is complete creates no folder and no file;
only scheduling an incomplete task to run claims the partition."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.tasks.publish import Insights, upstream
from tests.support import REPO

HOUR = datetime(2026, 11, 25, 17)
PARTITION = "2026-11-25T17"
#: Every output of a complete partition (the stats files under their kept names).
OUTPUTS = [
    "jsons/carts.jsonl", "jsons/products.jsonl", "jsons/users.jsonl",
    "cleaned/cleaned_users.csv", "cleaned/cleaned_products.csv", "cleaned/product_catalogue.csv",
    "cleaned/cleaned_carts.csv", "_exact/cart_lines.arrow", "_exact/users.arrow",
    "insights/user_summary.csv",
    "insights/category_summary.csv", "insights/cart_details.csv", "manifest.json",
    "_stats/Extract-carts.json", "_stats/Extract-products.json", "_stats/Extract-users.json",
    "_stats/CleanUsers.json", "_stats/CleanProducts.json", "_stats/CleanCarts.json",
    "_stats/UserSummary.json", "_stats/CategorySummary.json", "_stats/CartDetails.json",
    "report/index.html", "report/findings.md", "_stats/HistoryHour.json", "_stats/HourReport.json",
]  # fmt: skip
#: The hour's rows in the history dataset, beside the partitions.
HISTORY = f"history/date_hour={PARTITION}/part-0.parquet"


def tree(root: Path) -> dict[str, int]:
    """Every path under ``root`` (folders too) with its mtime: a new file changes its folder's."""
    return {str(p.relative_to(root)): p.lstat().st_mtime_ns for p in [root, *root.rglob("*")]}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(data))
    return data


def test_checking_an_hour_never_run_creates_nothing(root: Path) -> None:
    tasks = [Insights(date_hour=HOUR), *upstream(Insights(date_hour=HOUR))]
    assert [task.complete() for task in tasks] == [False] * 12
    assert not root.exists()


def test_checking_a_complete_hour_writes_nothing(root: Path) -> None:
    for name in OUTPUTS:
        (root / PARTITION / name).parent.mkdir(parents=True, exist_ok=True)
        (root / PARTITION / name).write_text("x")
    (root / HISTORY).parent.mkdir(parents=True)
    (root / HISTORY).write_text("x")
    (root / "latest").symlink_to(PARTITION)
    before = tree(root)
    tasks = [Insights(date_hour=HOUR), *upstream(Insights(date_hour=HOUR))]
    assert [task.complete() for task in tasks] == [True] * 12
    assert tree(root) == before
    assert not (root / PARTITION / ".lock").exists()


def test_a_published_hour_is_complete_only_while_latest_is_at_it_or_newer(root: Path) -> None:
    (root / PARTITION).mkdir(parents=True)
    (root / PARTITION / "manifest.json").write_text("{}")
    assert not Insights(date_hour=HOUR).complete()  # crash between the manifest and `latest`
    (root / "latest").symlink_to("2026-11-25T16")
    assert not Insights(date_hour=HOUR).complete()
    os.replace(root / "latest", root / "old")
    (root / "latest").symlink_to("2026-11-25T18")
    assert Insights(date_hour=HOUR).complete()


def test_an_hour_a_rerun_left_half_swapped_is_not_published(root: Path) -> None:
    from pipeline.failures import explain
    from pipeline.ops.rerun import HalfSwapped

    for name in OUTPUTS:
        if name != "manifest.json":  # the swap deleted it first
            (root / PARTITION / name).parent.mkdir(parents=True, exist_ok=True)
            (root / PARTITION / name).write_text("x")
    (root / PARTITION / ".swapping").touch()
    with pytest.raises(HalfSwapped) as caught:
        Insights(date_hour=HOUR).publish()  # as plain `luigi --module pipeline Insights` would
    assert not (root / PARTITION / "manifest.json").exists()
    assert not (root / "latest").exists()
    said = explain(caught.value, root / PARTITION)
    assert (said.cause, said.todo) == (
        f"{PARTITION}: a rerun's swap of it was cut short ({root / PARTITION / '.swapping'} is "
        "there); it is part old, part rebuilt",
        f"nothing was published; finish the swap: ./run_pipeline.sh rerun --date-hour {PARTITION}",
    )


CLAIM = """
import os, sys
from datetime import datetime
from pipeline.storage.locks import lock_holder
from pipeline.tasks.publish import Insights
task = Insights(date_hour=datetime(2026, 11, 25, 17))
lock = task.partition.lock
assert not task.complete() and not lock.exists()
stale = task.partition.dir / "jsons" / ".carts.jsonl.4242.tmp"  # left by a killed run
stale.parent.mkdir(parents=True)
stale.write_text("half")
deps = sorted(dep.task_family for dep in task.deps())  # what luigi asks while scheduling
print(deps, lock_holder(lock) == os.getpid(), stale.exists())
"""


def test_scheduling_an_incomplete_task_claims_its_partition_and_sweeps_it(root: Path) -> None:
    env = {**os.environ, "PIPELINE_DATA_DIR": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", CLAIM], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "['HourReport'] True False\n"
