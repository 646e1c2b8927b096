"""``import pipeline`` registers every task for ``luigi --module pipeline`` without loading pandas
or pyarrow: luigi's start-up and housekeeping stay light; a task loads them when it runs."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

from pipeline.tasks.base import Lazy
from pipeline.tasks.insights import CartDetails, CategorySummary, UserSummary
from tests.support import REPO

PROBE = """
import sys
import pipeline
from luigi.task_register import Register
heavy = sorted(m for m in ("pandas", "pyarrow", "numpy") if m in sys.modules)
families = sorted(Register.get_task_cls(name).task_family for name in sys.argv[1:])
print(heavy, families)
"""
FAMILIES = [
    "CartDetails", "CategorySummary", "CleanCarts", "CleanProducts", "CleanUsers",
    "ExtractCarts", "ExtractProducts", "ExtractUsers", "Insights", "UserSummary",
]  # fmt: skip


def test_import_pipeline_registers_the_tasks_without_pandas_or_pyarrow() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *FAMILIES], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"[] {FAMILIES}\n"


def test_an_insight_reads_its_columns_from_the_rules_when_it_runs() -> None:
    hour = datetime(2026, 11, 25, 17)
    assert isinstance(UserSummary.__dict__["money"], Lazy)  # on the class: a placeholder
    user, category = UserSummary(date_hour=hour), CategorySummary(date_hour=hour)
    assert user.money == ("total_spent", "total_spent_discounted")
    assert user.line_columns == (
        "cart_id", "user_id", "quantity", "line_total", "discounted_line_total",
    )  # fmt: skip
    assert category.money == ("total_sales", "total_sales_discounted")
    assert category.line_columns == (
        "product_id", "quantity", "line_total", "discounted_line_total",
    )  # fmt: skip
    assert CartDetails(date_hour=hour).money == ("price", "line_total", "discounted_line_total")
    assert CartDetails(date_hour=hour).line_columns is None  # every column
