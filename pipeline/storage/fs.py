"""The data root: a local folder (the default) or a prefix in an S3-compatible object store.

``PIPELINE_DATA_DIR=s3://bucket/prefix`` keeps the same layout as a local folder: every path of
``layout.Partition`` becomes an :class:`ObjectPath` under the prefix. Tasks and housekeeping use
the functions here (and ``atomic.atomic_path``/``target``), which do the local thing for a
``Path`` and ask ``storage.s3`` (boto3, imported only then) for an ``ObjectPath`` (both kinds,
and the root's parsing, are ``storage.location``). A data root with any other scheme
(``gs://``, ``hdfs://``, ``file://``...) is refused at once rather than taken as a local folder
named ``gs:``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.storage.location import (
    SUPPORTED,
    DataRootError,
    Location,
    ObjectPath,
    StoreError,
    StoreUnreachable,
    parse_root,
)

if TYPE_CHECKING:
    import luigi

#: Re-exported: most modules take the data root's types from the facade they use.
__all__ = [
    "SUPPORTED",
    "DataRootError",
    "Location",
    "ObjectPath",
    "StoreError",
    "StoreUnreachable",
    "delete",
    "exists",
    "local_copy",
    "location_of",
    "parse_root",
    "partition_names",
    "read_bytes",
]


def exists(location: Location) -> bool:
    if isinstance(location, ObjectPath):
        from pipeline.storage import s3

        return s3.exists(location)
    return location.exists()


def read_bytes(location: Location) -> bytes:
    if isinstance(location, ObjectPath):
        from pipeline.storage import s3

        return s3.read_bytes(location)
    return Path(location).read_bytes()


def delete(location: Location) -> None:
    """Remove one file or object; absent is fine."""
    if isinstance(location, ObjectPath):
        from pipeline.storage import s3

        s3.delete(location)
    else:
        location.unlink(missing_ok=True)


def partition_names(root: Location) -> list[str]:
    """The names of the hourly partitions under ``root``, sorted (oldest first): one listing."""
    from pipeline.storage.layout import PARTITION_RE

    if isinstance(root, ObjectPath):
        from pipeline.storage import s3

        return s3.partition_names(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if PARTITION_RE.match(p.name) and p.is_dir())


def location_of(target: luigi.Target | Location) -> Location:
    """Where a task's input lives: the location behind a target (or a location itself)."""
    if isinstance(target, (Path, ObjectPath)):
        return target
    found = getattr(target, "location", None)
    return found if isinstance(found, ObjectPath) else Path(target.path)  # type: ignore[attr-defined]  # LocalTarget


@contextmanager
def local_copy(source: luigi.Target | Location) -> Iterator[Path]:
    """A local file with the contents of ``source``, for readers that want a path (pyarrow).

    A local file is itself; an object is streamed to a temporary file (ranged GETs, retried)
    that is removed after the block, so memory stays what reading a local file takes.
    """
    location = location_of(source)
    if isinstance(location, ObjectPath):
        from pipeline.storage import s3

        with s3.downloaded(location) as path:
            yield path
    else:
        yield location
