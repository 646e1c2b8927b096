"""What the insights read of the users: CleanUsers' copy of the columns they show, or
cleaned_users.csv when the copy was made by a version that copied other columns."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from pipeline.rules import insights
from pipeline.storage import formats
from pipeline.tasks.insights import CartDetails, UserSummary

HOUR = datetime(2026, 11, 25, 17)
CSV_USERS = pd.DataFrame(
    {"user_id": [1, 2], "first_name": ["Ann", "Bo"], "age": [30, 40], "city": ["Rome", "Oslo"]}
)


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UserSummary:
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    task = UserSummary(date_hour=HOUR)
    csv = task.partition.cleaned("users")
    csv.parent.mkdir(parents=True)
    formats.write_csv(CSV_USERS, csv)
    task.partition.exact("users").parent.mkdir(parents=True)
    return task


def test_the_users_come_from_the_copy(task: UserSummary) -> None:
    copied = CSV_USERS.assign(first_name=["Copy", "Copy"])  # to tell the two apart
    formats.write_copy(copied, task.partition.exact("users"), insights.USER_COLUMNS_READ)
    for reader in (task, CartDetails(date_hour=HOUR)):
        assert reader.users()["first_name"].tolist() == ["Copy", "Copy"]


def test_a_copy_without_a_column_shown_gives_way_to_the_csv(task: UserSummary) -> None:
    formats.write_copy(CSV_USERS, task.partition.exact("users"), ["user_id", "first_name"])
    got = task.users()
    assert got.columns.tolist() == insights.USER_COLUMNS_READ
    assert got["city"].tolist() == ["Rome", "Oslo"]
