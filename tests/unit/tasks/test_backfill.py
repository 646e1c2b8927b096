"""Backfill with luigi's RangeHourly: the gaps found in bulk, oldest or newest first, limited."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.tasks.backfill import RangeHourly
from pipeline.tasks.publish import Insights

START = datetime(2026, 11, 25, 10)
NOW = int(datetime(2026, 11, 25, 19, 30, tzinfo=UTC).timestamp())  # the suite's pinned time


def hour(n: int) -> datetime:
    return START + timedelta(hours=n)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hours 10..16: 10, 11, 13 and 16 complete, 14 failed (a folder without a manifest), 12 and
    15 never started; `latest` at 16."""
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    for n in (0, 1, 3, 6):
        (tmp_path / f"{hour(n):%Y-%m-%dT%H}").mkdir()
        (tmp_path / f"{hour(n):%Y-%m-%dT%H}" / "manifest.json").write_text("{}")
    (tmp_path / f"{hour(4):%Y-%m-%dT%H}").mkdir()
    os.symlink(f"{hour(6):%Y-%m-%dT%H}", tmp_path / "latest")
    return tmp_path


def test_bulk_complete_is_the_hours_with_a_manifest_that_latest_has_reached(root: Path) -> None:
    asked = [hour(n) for n in range(9)]
    assert Insights.bulk_complete(asked) == [hour(0), hour(1), hour(3), hour(6)]
    os.remove(root / "latest")  # a manifest whose `latest` never moved: not published
    os.symlink(f"{hour(3):%Y-%m-%dT%H}", root / "latest")
    assert Insights.bulk_complete(asked) == [hour(0), hour(1), hour(3)]


def required(**kwargs: object) -> list[datetime]:
    task = RangeHourly(of=Insights, start=hour(0), stop=hour(7), now=NOW, **kwargs)
    return [t.date_hour for t in task.requires()]


def test_range_hourly_requires_only_the_missing_hours(root: Path) -> None:
    assert required() == [hour(2), hour(4), hour(5)]  # oldest first
    assert required(reverse=True) == [hour(5), hour(4), hour(2)]  # newest first
    assert required(task_limit=2) == [hour(2), hour(4)]  # the limit: the oldest two
    assert required(task_limit=2, reverse=True) == [hour(5), hour(4)]
    assert required(task_limit=1) == [hour(2)]


def test_the_range_stops_at_now(root: Path) -> None:
    """Hours after the clock's are not required: stop is clipped to ``now``."""
    task = RangeHourly(of=Insights, start=hour(0), stop=hour(20), now=NOW)
    assert [t.date_hour for t in task.requires()] == [hour(2), hour(4), hour(5), hour(7), hour(8),
                                                       hour(9)]  # fmt: skip


@pytest.mark.slow
def test_bulk_complete_on_an_object_store_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same answer from a bucket: one listing of the hours, then their manifests."""
    from pipeline.storage import s3
    from tests.support.s3 import BUCKET, object_store, s3_env

    with object_store() as store:
        for key, value in s3_env(store.url).items():
            if key.startswith("AWS_"):
                monkeypatch.setenv(key, value)
        monkeypatch.setenv("PIPELINE_DATA_DIR", f"s3://{BUCKET}/etl")
        s3._clients.clear()
        for n in (0, 1, 3, 6):
            key = f"etl/{hour(n):%Y-%m-%dT%H}/manifest.json"
            store.client.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
        store.client.put_object(Bucket=BUCKET, Key=f"etl/{hour(4):%Y-%m-%dT%H}/.lock", Body=b"{}")
        store.client.put_object(
            Bucket=BUCKET, Key="etl/latest", Body=f"{hour(6):%Y-%m-%dT%H}\n".encode()
        )
        try:
            assert Insights.bulk_complete([hour(n) for n in range(9)]) == [
                hour(0), hour(1), hour(3), hour(6),
            ]  # fmt: skip
        finally:
            s3._clients.clear()
