"""Rebuild an hour on purpose, beside the old one, and swap it in only when it is complete.

``python -m pipeline rerun --date-hour H`` runs the pipeline into a staging data root inside
the data root, ``.H.rerun-<pid>/``, while it holds the hour's lock, so the hourly run of H is
refused meanwhile and readers keep the old partition. Only a complete rebuild is swapped in; the
old partition is then deleted. A failed rebuild leaves the old partition untouched and stays in
its staging folder for a look (the next rerun of the data root removes it).

On local disk the swap is one step (``storage.atomic.exchange``). An object store has no rename:
the rebuilt objects are copied over the old ones, server side: the hour's ``.swapping`` marker
first, then the old manifest deleted, the data files, their ``_stats/`` (from which a manifest
could be assembled) after them, the new manifest last and the marker removed. A swap cut short
(the store went away) leaves the hour marked, without a manifest, part old and part rebuilt: a
plain run of it is refused (it would publish the mix), the same rerun, run again, redoes it.
Either way the hour's history rows are replaced with the rebuilt ones, before the marker goes.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from pipeline.storage.atomic import exchange
from pipeline.storage.fs import Location, ObjectPath
from pipeline.storage.layout import LOCK, SWAPPING, history_file
from pipeline.storage.locks import alive

_STAGING = re.compile(r"^\.(?P<hour>\d{4}-\d\d-\d\dT\d\d)\.rerun-(?P<pid>\d+)$")
MANIFEST = "manifest.json"


class HalfSwapped(Exception):
    """A rerun's swap of the hour was cut short (its ``.swapping`` mark is there): publishing
    it would pair files the swap had not reached with the rebuild's stats."""


def staging_root(root: Location, name: str, pid: int) -> Location:
    """The data root a rerun of partition ``name`` by process ``pid`` builds in."""
    return root / f".{name}.rerun-{pid}"


def is_staging(root: object) -> bool:
    """Is ``root`` a rerun's staging data root (whose paths go away at the swap)?"""
    return isinstance(root, Path | ObjectPath) and _STAGING.match(root.name) is not None


def stale_stagings(root: Path) -> list[Path]:
    """Staging roots left by reruns whose process is gone (failed or killed)."""
    found = []
    for path in root.glob(".*.rerun-*"):
        match = _STAGING.match(path.name)
        if match and path.is_dir() and not alive(int(match["pid"])):
            found.append(path)
    return sorted(found)


def remove_stale_stagings(root: Location, name: str) -> list[Location]:
    """Remove what earlier reruns left: on local disk every staging root of a dead rerun; on an
    object store, whose hosts cannot see each other's processes, the staging roots of hour
    ``name`` only (call holding its claim: no other rerun of it is under way)."""
    if isinstance(root, ObjectPath):
        from pipeline.storage import s3

        found: list[Location] = []
        for child in s3.children(root):
            match = _STAGING.match(child)
            if match and match["hour"] == name:
                s3.delete_tree(root / child, first=f"{name}/{MANIFEST}")
                found.append(root / child)
        return found
    removed = stale_stagings(root)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return list(removed)


def swap_in(root: Location, staging: Location, name: str) -> bool:
    """Put the rebuilt partition ``staging/name`` and its history rows in place of ``root``'s,
    then delete the staging root. Returns whether the partition was swapped in one step."""
    if isinstance(root, ObjectPath) and isinstance(staging, ObjectPath):
        _swap_objects(root, staging, name)
        return False
    assert isinstance(root, Path) and isinstance(staging, Path)
    (staging / name / SWAPPING).touch()  # swapped in with the rebuild: marked until the rows are
    atomic = exchange(staging / name, root / name)
    rows = history_file(staging, name)
    if rows.exists():
        history_file(root, name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(rows, history_file(root, name))
    (root / name / SWAPPING).unlink()
    shutil.rmtree(staging)
    return atomic


def _swap_objects(root: ObjectPath, staging: ObjectPath, name: str) -> None:
    """Copy the rebuilt hour over the old one: the hour marked first, then its old manifest
    deleted; the data files, then ``_stats/``, then the history rows; objects the rebuild no
    longer has deleted; the new manifest last and the mark removed; then the staging root is
    deleted."""
    from pipeline.storage import lease, s3

    old, new = root / name, staging / name

    def relative(folder: ObjectPath) -> set[str]:
        """The data's keys under ``folder``: not the mark, not a lock (the hour's claim, or a
        report's being re-rendered by another run), which are no data to swap."""
        keys = {k.removeprefix(folder.prefix) for k in s3.keys_under(folder)}
        return {k for k in keys if k.rsplit("/", 1)[-1] != LOCK} - {SWAPPING}

    rebuilt, before = relative(new), relative(old)
    s3.put_if(old / SWAPPING, b"", None)  # first: a plain run is refused (kept if already there)
    s3.delete(old / MANIFEST)  # then the hour does not look complete
    # The data before the stats a manifest is assembled from: never stats of an old file.
    for rel in sorted(rebuilt - {MANIFEST}, key=lambda rel: (rel.startswith("_stats/"), rel)):
        s3.copy(new / rel, old / rel, check=lease.check)
    s3.delete_keys(root.bucket, [(old / rel).key for rel in sorted(before - rebuilt - {MANIFEST})])
    rows = history_file(staging, name)
    if s3.exists(rows):
        s3.copy(rows, history_file(root, name), check=lease.check)
    s3.copy(
        new / MANIFEST, old / MANIFEST, check=lease.check
    )  # last: the hour is complete again, rebuilt
    s3.delete(old / SWAPPING)
    s3.delete_tree(staging, first=f"{name}/{MANIFEST}")
