"""Rerun: the staging root beside the partition, the swap, and what a dead rerun left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.ops.rerun import remove_stale_stagings, staging_root, stale_stagings, swap_in
from pipeline.storage.layout import SWAPPING, history_file


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_the_staging_root_is_hidden_beside_the_partitions(tmp_path: Path) -> None:
    assert staging_root(tmp_path, "2026-11-25T17", 42) == tmp_path / ".2026-11-25T17.rerun-42"


def test_only_stagings_of_dead_reruns_are_removed(tmp_path: Path) -> None:
    dead = staging_root(tmp_path, "2026-11-25T17", dead_pid())
    alive = staging_root(tmp_path, "2026-11-25T16", os.getpid())
    for path in (dead / "2026-11-25T17", alive / "2026-11-25T16", tmp_path / ".latest.1.tmp"):
        path.mkdir(parents=True)
    (tmp_path / ".x.rerun-1").mkdir()  # not a partition's: left alone
    assert stale_stagings(tmp_path) == [dead]
    assert remove_stale_stagings(tmp_path, "2026-11-25T16") == [dead]  # any hour's, on disk
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".2026-11-25T16.rerun-" + str(os.getpid()), ".latest.1.tmp", ".x.rerun-1",
    ]  # fmt: skip


def test_the_rebuilt_partition_takes_the_old_ones_place_and_the_old_one_goes(
    tmp_path: Path,
) -> None:
    old = tmp_path / "2026-11-25T17"
    old.mkdir()
    (old / "manifest.json").write_text("old")
    (tmp_path / "latest").symlink_to("2026-11-25T17")
    staging = staging_root(tmp_path, "2026-11-25T17", os.getpid())
    (staging / "2026-11-25T17").mkdir(parents=True)
    (staging / "2026-11-25T17" / "manifest.json").write_text("new")
    rows = "history/date_hour=2026-11-25T17/part-0.parquet"
    for where, text in ((tmp_path, "old rows"), (staging, "rebuilt rows")):
        (where / rows).parent.mkdir(parents=True)
        (where / rows).write_text(text)
    assert swap_in(tmp_path, staging, "2026-11-25T17") is True  # ext4, tmpfs, xfs, btrfs
    assert (tmp_path / "latest" / "manifest.json").read_text() == "new"
    assert (tmp_path / rows).read_text() == "rebuilt rows"  # the hour's history: the rebuild's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-25T17", "history", "latest"]


def test_the_hour_stays_marked_swapping_until_its_history_rows_are_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.ops import rerun

    name = "2026-11-25T17"
    staging = staging_root(tmp_path, name, os.getpid())
    for where in (tmp_path, staging):
        (where / name).mkdir(parents=True)
        (where / history_file(Path(), name)).parent.mkdir(parents=True)
        (where / history_file(Path(), name)).write_text(str(where))

    def no_room(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rerun.os, "replace", no_room)
    with pytest.raises(OSError, match="No space left"):
        swap_in(tmp_path, staging, name)
    assert (tmp_path / name / SWAPPING).exists()  # the rebuild is in, its rows are not: marked
    monkeypatch.undo()
    shutil.rmtree(staging)  # as the next rerun does with a dead rerun's staging root
    (staging / name).mkdir(parents=True)
    (staging / history_file(Path(), name)).parent.mkdir(parents=True)
    (staging / history_file(Path(), name)).write_text("rebuilt")
    swap_in(tmp_path, staging, name)  # the rerun again: done, no mark left
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == []
    assert history_file(tmp_path, name).read_text() == "rebuilt"
