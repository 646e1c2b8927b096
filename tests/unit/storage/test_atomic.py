"""Atomic targets: the whole file at its path or nothing, durable before it is renamed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.storage import atomic
from pipeline.storage.atomic import atomic_path, exchange, remove_stale_temporaries


def test_atomic_path_replaces_the_target_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.csv"
    with atomic_path(target) as tmp:
        Path(tmp).write_text("first")
        assert not target.exists()
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        Path(tmp).write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "first"  # nothing already written is lost
    with atomic_path(target) as tmp:
        Path(tmp).write_text("second")  # a complete file may be replaced
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]


@pytest.fixture
def disk_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every fsync (path of the descriptor, file bytes at that moment) and rename, in order."""
    calls: list[tuple[Any, ...]] = []

    def syncing(real: Callable[[int], None]) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
            calls.append(("fsync", path, path.read_bytes() if path.is_file() else None))
            real(fd)

        return sync

    def renaming(real: Callable[..., None]) -> Callable[..., None]:
        def rename(src: Any, dst: Any, **kwargs: Any) -> None:
            calls.append(("rename", Path(src).resolve(), Path(dst).resolve()))
            real(src, dst, **kwargs)

        return rename

    for name in ("fsync", "fdatasync"):
        monkeypatch.setattr(os, name, syncing(getattr(os, name)))
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, renaming(getattr(os, name)))
    return calls


def test_the_complete_temporary_file_is_fsynced_before_the_rename_and_the_directory_after(
    tmp_path: Path, disk_calls: list[tuple[Any, ...]]
) -> None:
    """Without the first fsync a power cut after the rename can leave an empty file at the
    target path; without the last the rename itself can be lost."""
    folder = tmp_path.resolve()
    target = folder / "out.csv"
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(b'"a"\n1\n')
    temporary = Path(tmp).resolve()
    assert temporary.parent == folder and temporary != target
    assert disk_calls == [
        ("fsync", temporary, b'"a"\n1\n'),
        ("rename", temporary, target),
        ("fsync", folder, None),
    ]


def test_a_failed_block_renames_and_syncs_nothing(
    tmp_path: Path, disk_calls: list[tuple[Any, ...]]
) -> None:
    with pytest.raises(ValueError), atomic_path(tmp_path / "out.csv") as tmp:
        Path(tmp).write_bytes(b"half")
        raise ValueError("bad input")
    assert disk_calls == []
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_swept(tmp_path: Path) -> None:
    (tmp_path / "jsons").mkdir()
    stale = tmp_path / "jsons" / ".carts.jsonl.123.tmp"
    stale.write_text("half")
    keep = tmp_path / "jsons" / "carts.jsonl"
    keep.write_text("whole")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert list((tmp_path / "jsons").iterdir()) == [keep]


def test_exchange_swaps_two_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for path in (a, b):
        path.mkdir()
        (path / "name").write_text(path.name)
    assert exchange(a, b) is True
    assert ((a / "name").read_text(), (b / "name").read_text()) == ("b", "a")

    class NoRenameat2:  # an old C library: two renames instead
        pass

    monkeypatch.setattr(atomic.ctypes, "CDLL", lambda *args, **kwargs: NoRenameat2())
    assert exchange(a, b) is False
    assert ((a / "name").read_text(), (b / "name").read_text()) == ("a", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
