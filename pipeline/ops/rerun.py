"""Rebuild an hour on purpose, beside the old one, and swap it in only when it is complete.

``python -m pipeline rerun --date-hour H`` runs the pipeline into a staging data root inside
the data root, ``.H.rerun-<pid>/``, while it holds the hour's lock, so the hourly run of H is
refused meanwhile and readers keep the old partition. Only a complete rebuild is swapped in, in
one step (``storage.atomic.exchange``); the old partition is then deleted. A failed rebuild
leaves the old partition untouched and stays in its staging folder for a look (the next rerun
of the data root removes it).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pipeline.storage.atomic import alive, exchange

_STAGING = re.compile(r"^\.(?P<hour>\d{4}-\d\d-\d\dT\d\d)\.rerun-(?P<pid>\d+)$")


def staging_root(root: Path, name: str, pid: int) -> Path:
    """The data root a rerun of partition ``name`` by process ``pid`` builds in."""
    return root / f".{name}.rerun-{pid}"


def is_staging(root: object) -> bool:
    """Is ``root`` a rerun's staging data root (whose paths go away at the swap)?"""
    return isinstance(root, Path) and _STAGING.match(root.name) is not None


def stale_stagings(root: Path) -> list[Path]:
    """Staging roots left by reruns whose process is gone (failed or killed)."""
    found = []
    for path in root.glob(".*.rerun-*"):
        match = _STAGING.match(path.name)
        if match and path.is_dir() and not alive(int(match["pid"])):
            found.append(path)
    return sorted(found)


def remove_stale_stagings(root: Path) -> list[Path]:
    removed = stale_stagings(root)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def swap_in(root: Path, staging: Path, name: str) -> bool:
    """Put the rebuilt partition ``staging/name`` in place of ``root/name`` in one step, then
    delete the old one (now in ``staging``). Returns whether the swap was atomic."""
    atomic = exchange(staging / name, root / name)
    shutil.rmtree(staging)
    return atomic
