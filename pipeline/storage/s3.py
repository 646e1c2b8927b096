"""The object-store backend of the data root, on boto3 (imported only for an ``s3://`` root).

Guarantees, the same as on local disk:

- A key exists only once its whole object is there: every object is written to a local
  temporary file first and then uploaded in one PUT, or as one multipart upload that S3 makes
  visible only when it is completed. A failed upload is aborted; one cut short by a killed
  process stays invisible (a bucket lifecycle rule removes its parts).
- ``latest`` is a small object holding a partition name, moved only forwards with conditional
  writes (``If-Match``/``If-None-Match``), so two hosts finishing together cannot move it back.
- Reads stream to a temporary file, so memory stays what reading a local file takes.

Endpoint, region and credentials come from boto3's standard settings; retries (503 SlowDown,
5xx, throttling, dropped connections) from ``[storage]``.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import boto3
import luigi
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
)

from pipeline import config
from pipeline.storage.layout import LATEST, PARTITION_RE
from pipeline.storage.location import ObjectPath, StoreError, StoreUnreachable
from pipeline.storage.locks import alive

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What runs before a key is written: the hour's claim (``lease.check``), raising if it is lost.
Guard = Callable[[ObjectPath], None]

#: Local temporary files of uploads and downloads: ``etl-stage-<pid>-...`` in $TMPDIR.
STAGING = "etl-stage-"
MIB = 1 << 20
#: Error codes of a conditional write that lost a race: retry after reading again.
CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
MISSING = {"404", "NoSuchKey", "NotFound"}

_clients: dict[int, Any] = {}


def client() -> Any:
    """One S3 client per process (boto3 clients are thread-safe but must not cross a fork)."""
    pid = os.getpid()
    if pid not in _clients:
        settings = config.storage()
        _clients.clear()
        _clients[pid] = boto3.session.Session().client(
            "s3",
            config=Config(
                retries={"mode": "standard", "max_attempts": settings.retries + 1},
                connect_timeout=settings.connect_timeout,
                read_timeout=settings.read_timeout,
            ),
        )
    return _clients[pid]


def endpoint() -> str:
    return str(client().meta.endpoint_url)


def transfer_config() -> TransferConfig:
    settings = config.storage()
    return TransferConfig(
        multipart_threshold=settings.multipart_threshold_mb * MIB,
        multipart_chunksize=settings.multipart_chunk_mb * MIB,
        max_concurrency=settings.transfer_concurrency,
        use_threads=settings.transfer_concurrency > 1,
    )


def code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def call(what: str, location: ObjectPath, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` (boto3 has retried already); failures become a StoreError that
    names the request, the object and the store. ClientErrors the caller handles pass through.
    """
    try:
        return fn(*args, **kwargs)
    except ClientError:
        raise
    except NoCredentialsError:
        raise StoreError(
            f"{what} {location}: no AWS credentials (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or ~/.aws/credentials)"
        ) from None
    except (ConnectionError, HTTPClientError) as exc:
        raise StoreUnreachable(
            f"{what} {location}: object store {endpoint()} unreachable "
            f"({config.storage().retries + 1} attempts): {exc}"
        ) from None
    except BotoCoreError as exc:
        raise StoreError(f"{what} {location}: {exc}") from None


def failed(what: str, location: ObjectPath, exc: ClientError) -> StoreError:
    error = exc.response.get("Error", {})
    return StoreError(
        f"{what} {location}: {error.get('Code', '?')} {error.get('Message', '')}".rstrip()
    )


def exists(location: ObjectPath) -> bool:
    try:
        call("HEAD", location, client().head_object, Bucket=location.bucket, Key=location.key)
    except ClientError as exc:
        if code(exc) in MISSING:
            return False
        raise failed("HEAD", location, exc) from None
    return True


def get(location: ObjectPath) -> tuple[bytes, str] | None:
    """Body and ETag of a small object, or None when there is none."""
    try:
        response = call(
            "GET", location, client().get_object, Bucket=location.bucket, Key=location.key
        )
        return response["Body"].read(), response["ETag"]
    except ClientError as exc:
        if code(exc) in MISSING:
            return None
        raise failed("GET", location, exc) from None


def read_bytes(location: ObjectPath) -> bytes:
    found = get(location)
    if found is None:
        raise FileNotFoundError(str(location))
    return found[0]


def put_if(location: ObjectPath, body: bytes, etag: str | None) -> str | None:
    """Write a small object only if it is still as read: ``etag`` None means absent.

    Returns the new ETag, or None when another writer got there first (read it again).
    """
    condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    try:
        response = call(
            "PUT",
            location,
            client().put_object,
            Bucket=location.bucket,
            Key=location.key,
            Body=body,
            **condition,
        )
    except ClientError as exc:
        if code(exc) in CONFLICT or (etag and code(exc) in MISSING):
            return None
        raise failed("PUT", location, exc) from None
    return str(response["ETag"])


def delete(location: ObjectPath) -> None:
    try:
        call("DELETE", location, client().delete_object, Bucket=location.bucket, Key=location.key)
    except ClientError as exc:
        raise failed("DELETE", location, exc) from None


def _staging(name: str) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f"{STAGING}{os.getpid()}-", suffix=f"-{name}")
    os.close(fd)  # created 0600: the data may hold personal fields
    return tmp


@contextmanager
def upload_on_success(location: ObjectPath, check: Guard) -> Iterator[str]:
    """A local temporary path, uploaded to ``location`` only if the block succeeds.

    The upload is one PUT, or above ``[storage] multipart_threshold_mb`` one multipart upload
    streamed from the file: either way the key appears whole or not at all. ``check`` runs just
    before (the hour's claim, ``lease.check``), so a run that lost its claim writes nothing more.
    """
    tmp = _staging(location.name)
    try:
        yield tmp
        check(location)
        try:
            call(
                "upload",
                location,
                client().upload_file,
                tmp,
                location.bucket,
                location.key,
                Config=transfer_config(),
            )
        except ClientError as exc:
            raise failed("upload", location, exc) from None
        except S3UploadFailedError as exc:
            raise StoreError(f"upload {location}: {exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def downloaded(location: ObjectPath) -> Iterator[Path]:
    """The object streamed to a local temporary file (ranged GETs when large), removed after."""
    tmp = _staging(location.name)
    try:
        try:
            call(
                "download",
                location,
                client().download_file,
                location.bucket,
                location.key,
                tmp,
                Config=transfer_config(),
            )
        except ClientError as exc:
            if code(exc) in MISSING:
                raise FileNotFoundError(str(location)) from None
            raise failed("download", location, exc) from None
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def remove_orphaned_staging() -> list[Path]:
    """Delete staging files in $TMPDIR whose process is gone (a SIGKILLed worker's)."""
    orphans = []
    for path in Path(tempfile.gettempdir()).glob(f"{STAGING}*"):
        pid = path.name[len(STAGING) :].split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            path.unlink(missing_ok=True)
            orphans.append(path)
    return orphans


class ObjectTarget(luigi.Target):
    """A luigi target that is one object: it exists once the whole object is there."""

    def __init__(self, location: ObjectPath) -> None:
        self.location = location
        self.path = str(location)

    def exists(self) -> bool:
        return exists(self.location)


def children(root: ObjectPath) -> list[str]:
    """Names of the "folders" directly under ``root`` (partitions, logs ...), sorted."""
    names = []
    paginator = client().get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=root.bucket, Prefix=root.prefix, Delimiter="/")
    try:
        listed: list[dict[str, Any]] = call("LIST", root, list, pages)
        for page in listed:
            prefixes = page.get("CommonPrefixes", [])
            names += [p["Prefix"][len(root.prefix) :].rstrip("/") for p in prefixes]
    except ClientError as exc:
        raise failed("LIST", root, exc) from None
    return sorted(names)


def keys_under(folder: ObjectPath) -> list[str]:
    paginator = client().get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=folder.bucket, Prefix=folder.prefix)
    try:
        listed: list[dict[str, Any]] = call("LIST", folder, list, pages)
        return [o["Key"] for page in listed for o in page.get("Contents", [])]
    except ClientError as exc:
        raise failed("LIST", folder, exc) from None


def any_under(folder: ObjectPath) -> bool:
    """Whether at least one object lies under ``folder`` (one LIST of one key)."""
    try:
        response = call(
            "LIST",
            folder,
            client().list_objects_v2,
            Bucket=folder.bucket,
            Prefix=folder.prefix,
            MaxKeys=1,
        )
    except ClientError as exc:
        raise failed("LIST", folder, exc) from None
    return bool(response.get("Contents"))


def copy(source: ObjectPath, dest: ObjectPath, check: Guard) -> None:
    """Copy an object within the store (server side: nothing passes through this host); the
    destination key appears whole or not at all, as an upload's does. ``check(dest)`` runs
    first (the claim on ``dest``'s hour, ``lease.check``), as before an upload."""
    check(dest)
    try:
        call(
            "copy",
            dest,
            client().copy,
            {"Bucket": source.bucket, "Key": source.key},
            dest.bucket,
            dest.key,
            Config=transfer_config(),
        )
    except ClientError as exc:
        raise failed("copy", dest, exc) from None


def delete_keys(bucket: str, keys: list[str]) -> None:
    """Delete ``keys`` of ``bucket``, up to 1000 a request, in the order given."""
    for i in range(0, len(keys), 1000):
        batch = keys[i : i + 1000]
        where = ObjectPath(bucket, batch[0])
        try:
            response = call(
                "DELETE",
                where,
                client().delete_objects,
                Bucket=bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
        except ClientError as exc:
            raise failed("DELETE", where, exc) from None
        if response.get("Errors"):
            error = response["Errors"][0]
            raise StoreError(f"DELETE s3://{bucket}/{error['Key']}: {error['Code']}")


def delete_tree(folder: ObjectPath, first: str) -> int:
    """Delete every object under ``folder``, the one named ``first`` (the manifest) before the
    rest, so a prune cut short leaves a partition that no longer looks complete."""
    keys = keys_under(folder)
    head = [k for k in keys if k == f"{folder.prefix}{first}"]
    delete_keys(folder.bucket, head)  # a request of its own, answered before the rest go
    delete_keys(folder.bucket, [k for k in keys if k not in head])
    return len(keys)


# --- latest: a pointer object ------------------------------------------------------------


def latest_object(root: ObjectPath) -> tuple[str | None, str | None]:
    """(partition ``latest`` names, its ETag); (None, None) when there is none."""
    found = get(root / LATEST)
    if found is None:
        return None, None
    name = found[0].decode("utf-8", "replace").strip()
    return (name if PARTITION_RE.match(name) else None), found[1]


def advance_latest(root: ObjectPath, name: str, not_after: str | None = None) -> bool:
    """Point ``latest`` at ``name`` unless it points at a newer partition; True if it moved.

    Read, compare, then write on the condition that ``latest`` is still what was read: a
    concurrent move makes the write fail, and the comparison is made again. A ``latest`` later
    than ``not_after`` (the current hour) counts as none.
    """
    if not PARTITION_RE.match(name):
        raise ValueError(f"not a partition name: {name!r}")
    for _ in range(100):
        current, etag = latest_object(root)
        if not_after is not None and current is not None and current > not_after:
            current = None  # a future hour, published before hours were checked
        if current is not None and current >= name:
            return False
        if put_if(root / LATEST, f"{name}\n".encode(), etag) is not None:
            return True
    raise StoreError(f"PUT {root / LATEST}: kept changing under this run (100 attempts)")


def partition_names(root: ObjectPath) -> list[str]:
    return [n for n in children(root) if re.match(PARTITION_RE, n)]
