"""``latest``: switched atomically, only ever forwards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pipeline.storage.latest import (
    advance_latest,
    latest_partition,
    latest_reached,
    point_latest_to,
)


def test_latest_only_moves_forward(tmp_path: Path) -> None:
    assert advance_latest(tmp_path, "2026-11-25T07") is True
    assert advance_latest(tmp_path, "2026-11-25T05") is False
    assert os.readlink(tmp_path / "latest") == "2026-11-25T07"
    assert advance_latest(tmp_path, "2026-11-25T08") is True
    assert os.readlink(tmp_path / "latest") == "2026-11-25T08"


def test_a_reader_sees_the_old_or_the_new_partition_never_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new link is renamed over the old one: ``latest`` is never deleted first."""
    assert advance_latest(tmp_path, "2026-11-25T07") is True
    seen: list[str] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        seen.append(os.readlink(tmp_path / "latest"))  # raises if `latest` is missing
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    assert advance_latest(tmp_path, "2026-11-25T08") is True
    assert seen == ["2026-11-25T07"]
    assert os.readlink(tmp_path / "latest") == "2026-11-25T08"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".latest.lock", "latest"]


def test_latest_is_a_relative_link_to_a_partition_name(tmp_path: Path) -> None:
    assert latest_partition(tmp_path) is None
    point_latest_to(tmp_path, "2026-11-25T07")
    assert os.readlink(tmp_path / "latest") == "2026-11-25T07"
    assert latest_partition(tmp_path) == "2026-11-25T07"
    (tmp_path / "latest").unlink()
    (tmp_path / "latest").symlink_to("elsewhere")
    assert latest_partition(tmp_path) is None  # not a partition name


def test_latest_never_moves_past_the_current_hour_and_leaves_a_future_one(tmp_path: Path) -> None:
    now = "2026-11-25T08"
    assert advance_latest(tmp_path, "2030-01-01T00", not_after=now) is False
    assert not (tmp_path / "latest").exists()
    point_latest_to(tmp_path, "2030-01-01T00")  # published before hours were checked
    assert latest_reached(tmp_path, "2026-11-25T07") is True  # unbounded, as before
    assert latest_reached(tmp_path, "2026-11-25T07", not_after=now) is False
    assert advance_latest(tmp_path, "2026-11-25T07", not_after=now) is True
    assert os.readlink(tmp_path / "latest") == "2026-11-25T07"
    assert latest_reached(tmp_path, "2026-11-25T07", not_after=now) is True
    assert advance_latest(tmp_path, "2026-11-25T06", not_after=now) is False  # still forwards
