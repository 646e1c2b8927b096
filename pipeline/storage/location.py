"""Where data lives: a local ``Path`` or an ``ObjectPath`` in an S3-compatible store, and the
errors a store raises.

Values and parsing only, no I/O: ``config`` (which resolves the data root), ``layout`` and the
object-store backend ``s3`` all build on these without importing one another. ``fs`` is the
facade that reads and writes either kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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
