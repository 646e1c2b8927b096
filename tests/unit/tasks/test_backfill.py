"""Backfill with InsightsRange (luigi's RangeHourly of Insights): the gaps found in bulk, oldest
or newest first, limited, on the pipeline's clock, however old the range."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from luigi.task_register import Register

from pipeline.tasks.backfill import InsightsRange
from pipeline.tasks.publish import Insights

START = datetime(2026, 11, 25, 10)
NOW = int(datetime(2026, 11, 25, 19, 30, tzinfo=UTC).timestamp())  # the suite's pinned time


def hour(n: int) -> datetime:
    return START + timedelta(hours=n)


@pytest.fixture(autouse=True)
def fresh_tasks() -> Iterator[None]:
    """luigi keeps one instance per parameters, and a range caches what it requires."""
    Register.clear_instance_cache()
    yield
    Register.clear_instance_cache()


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
    task = InsightsRange(start=hour(0), stop=hour(7), **kwargs)
    return [t.date_hour for t in task.requires()]


def test_range_hourly_requires_only_the_missing_hours(root: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # luigi's param_name default (None) warned each time
        assert required() == [hour(2), hour(4), hour(5)]  # oldest first
    assert required(reverse=True) == [hour(5), hour(4), hour(2)]  # newest first
    assert required(task_limit=2) == [hour(2), hour(4)]  # the limit: the oldest two
    assert required(task_limit=2, reverse=True) == [hour(5), hour(4)]
    assert required(task_limit=1) == [hour(2)]


def test_the_hours_carry_the_order_asked_as_priorities(root: Path) -> None:
    """luigi keeps no order within a batch; the scheduler runs higher priorities first and
    passes them on to what each hour requires."""
    oldest_first = InsightsRange(start=hour(0), stop=hour(7)).requires()
    assert [(t.date_hour, t.priority) for t in oldest_first] == [
        (hour(2), 3), (hour(4), 2), (hour(5), 1),
    ]  # fmt: skip
    newest_first = InsightsRange(start=hour(0), stop=hour(7), reverse=True).requires()
    assert [(t.date_hour, t.priority) for t in newest_first] == [
        (hour(5), 3), (hour(4), 2), (hour(2), 1),
    ]  # fmt: skip


def test_the_range_stops_at_the_pipelines_now_and_starts_however_long_ago(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hours after the pipeline's clock are not required (stop is clipped to it, PIPELINE_NOW
    included); a start a year before it is not clipped away (luigi's own stops at 100 days)."""
    task = InsightsRange(start=hour(0), stop=hour(20))
    assert [t.date_hour for t in task.requires()] == [hour(2), hour(4), hour(5), hour(7), hour(8),
                                                       hour(9)]  # fmt: skip
    monkeypatch.setenv("PIPELINE_NOW", "2027-11-25T19:30:00+00:00")  # a year on
    Register.clear_instance_cache()  # a new process, as far as luigi is concerned
    task = InsightsRange(start=hour(0), stop=hour(20))
    assert [t.date_hour for t in task.requires()] == [hour(n) for n in (2, 4, 5, *range(7, 20))]


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
