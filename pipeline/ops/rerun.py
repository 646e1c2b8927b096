"""Rebuild an hour on purpose, beside the old one, and swap it in only when it is complete.

``python -m pipeline rerun --date-hour H`` runs the pipeline into a staging data root inside
the data root, ``.H.rerun-<pid>/``, while it holds the hour's lock, so the hourly run of H is
refused meanwhile and readers keep the old partition. Only a complete rebuild is swapped in; the
old partition is then deleted. A failed rebuild leaves the old partition untouched and stays in
its staging folder for a look (the next rerun of the data root removes it).

On local disk the swap is one step (``storage.atomic.exchange``). An object store has no rename:
the rebuilt objects are copied over the old ones, server side, with the old manifest deleted
first and the new one copied last, so the hour never looks complete while it is half swapped
(a run of it meanwhile is refused: the rerun holds the hour's claim). A swap cut short (the
store went away) leaves the hour without a manifest, part old and part rebuilt: the same rerun,
run again, finishes it. Either way the hour's history rows are replaced with the rebuilt ones.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from pipeline.storage.atomic import alive, exchange
from pipeline.storage.fs import Location, ObjectPath
from pipeline.storage.layout import LOCK, history_file

_STAGING = re.compile(r"^\.(?P<hour>\d{4}-\d\d-\d\dT\d\d)\.rerun-(?P<pid>\d+)$")
MANIFEST = "manifest.json"


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
    atomic = exchange(staging / name, root / name)
    rows = history_file(staging, name)
    if rows.exists():
        history_file(root, name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(rows, history_file(root, name))
    shutil.rmtree(staging)
    return atomic


def _swap_objects(root: ObjectPath, staging: ObjectPath, name: str) -> None:
    """Copy the rebuilt hour over the old one: old manifest deleted first, objects the rebuild
    no longer has deleted, new manifest copied last; then the staging root is deleted."""
    from pipeline.storage import s3

    old, new = root / name, staging / name

    def relative(folder: ObjectPath) -> set[str]:
        return {k.removeprefix(folder.prefix) for k in s3.keys_under(folder)} - {LOCK}

    rebuilt, before = relative(new), relative(old)
    s3.delete(old / MANIFEST)  # first: from now on the hour does not look complete
    for rel in sorted(rebuilt - {MANIFEST}):
        s3.copy(new / rel, old / rel)
    s3.delete_keys(root.bucket, [(old / rel).key for rel in sorted(before - rebuilt - {MANIFEST})])
    rows = history_file(staging, name)
    if s3.exists(rows):
        s3.copy(rows, history_file(root, name))
    s3.copy(new / MANIFEST, old / MANIFEST)  # last: the hour is complete again, rebuilt
    s3.delete_tree(staging, first=f"{name}/{MANIFEST}")
