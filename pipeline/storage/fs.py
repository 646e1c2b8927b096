"""The data root: a local folder (the default) or a prefix in an S3-compatible object store.

``PIPELINE_DATA_DIR=s3://bucket/prefix`` keeps the same layout as a local folder: every path of
``layout.Partition`` becomes an :class:`ObjectPath` under the prefix. Tasks and housekeeping use
the functions here (and ``atomic.atomic_path``/``target``), which do the local thing for a
``Path`` and ask ``storage.s3`` (boto3, imported only then) for an ``ObjectPath``. A data root
with any other scheme (``gs://``, ``hdfs://``, ``file://``...) is refused at once rather than
taken as a local folder named ``gs:``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import luigi

#: ``scheme://`` at the start of a data root: anything but a local path.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: S3 bucket names (the rules for new buckets): 3-63 of a-z 0-9 . -, starting and ending alnum.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
SUPPORTED = "a local path or s3://bucket/prefix"


class DataRootError(ValueError):
    """The data root names a store this pipeline cannot write to."""


class StoreError(RuntimeError):
    """The object store refused or failed a request after its retries; says which and why."""


class StoreUnreachable(StoreError):
    """The object store did not answer at all (connection refused, timed out, DNS)."""


@dataclass(frozen=True)
class ObjectPath:
    """``s3://bucket/key``: the object-store twin of a ``Path``, with the parts layout uses.

    Deliberately not ``os.PathLike``: handing one to ``open()`` by mistake fails loudly instead
    of creating a local folder named ``s3:``.
    """

    bucket: str
    key: str = ""  # no leading or trailing slash; "" is the bucket's root

    def __truediv__(self, part: str) -> ObjectPath:
        part = str(part).strip("/")
        return ObjectPath(self.bucket, f"{self.key}/{part}" if self.key else part)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0] if "." in self.name[1:] else self.name

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.bucket, self.key.rsplit("/", 1)[0] if "/" in self.key else "")

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    @property
    def prefix(self) -> str:
        """The key as a folder: every object below it starts with this."""
        return f"{self.key}/" if self.key else ""


Location = Path | ObjectPath


def parse_root(text: str) -> Location:
    """The data root named by ``text``: an absolute local ``Path`` or an ``ObjectPath``.

    Raises DataRootError for any other scheme, and for an ``s3://`` URL without a valid bucket.
    """
    match = _SCHEME.match(text)
    if match is None:
        return Path(text).absolute()
    scheme = match.group(1)
    if scheme.lower() != "s3":
        raise DataRootError(
            f"data root {text!r}: unsupported scheme {scheme + '://'!r}; use {SUPPORTED}"
        )
    bucket, _, key = text[match.end() :].partition("/")
    if not _BUCKET.match(bucket):
        raise DataRootError(f"data root {text!r}: {bucket!r} is not a valid S3 bucket name")
    key = "/".join(part for part in key.split("/") if part)
    if any(part in (".", "..") for part in key.split("/")):
        raise DataRootError(f"data root {text!r}: '.' and '..' are not allowed in the prefix")
    return ObjectPath(bucket, key)


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
    return found if isinstance(found, ObjectPath) else Path(target.path)  # type: ignore[attr-defined]


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
