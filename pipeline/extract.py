"""Extraction: stream every record of one endpoint to a JSON Lines file, or fail saying why.

The pages come from ``pipeline.api.paging``; here each record is checked against the contract,
ids must be unique and the count must equal ``total``. A snapshot that mixes two states of the
shop is worse than none, so an anomaly re-reads the endpoint from its first page, then fails.
Only the fields ``pipeline.schema`` declares are written (``rules.allowlist``): personal data is
kept by allowlist, and a field the API adds later is dropped and logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from pipeline import schema
from pipeline.api.client import ApiClient
from pipeline.api.errors import ApiError, PagingError
from pipeline.api.limits import BREAKER, CircuitBreaker
from pipeline.api.paging import Page, Paginator
from pipeline.rules.allowlist import Projection
from pipeline.rules.contract import ContractError, validate_record
from pipeline.storage.atomic import atomic_path

log = logging.getLogger(__name__)


class ExtractError(RuntimeError):
    """The endpoint's data cannot be trusted; the message names endpoint and cause."""


@dataclass
class ExtractStats:
    endpoint: str
    total: int = 0
    records: int = 0
    pages: int = 0
    page_length: int = 0
    bytes: int = 0
    #: Every field dropped because the schema does not declare it, as dotted paths.
    dropped_fields: list[str] = field(default_factory=list)
    #: Of those, the ones the schema does not know as ignored either: added by the API.
    new_fields: list[str] = field(default_factory=list)
    #: Declared (optional) fields that no record carried.
    missing_fields: list[str] = field(default_factory=list)


Progress = Callable[[int, int, int, int], None]  # records done, total, page, pages


class SeenIds:
    """The ids read so far, one bit per possible id: 10M carts take about 1 MB here, where a set
    of Python ints takes some 500 MB. An id that is not a small positive int goes to a set."""

    BITMAP_IDS = 1 << 30  # at most 128 MB of bits

    def __init__(self) -> None:
        self._bits = bytearray()
        self._others: set[Any] = set()

    def add(self, rid: Any) -> bool:
        """Note ``rid``; False if it was noted before."""
        if type(rid) is not int or not 0 <= rid < self.BITMAP_IDS:
            if rid in self._others:
                return False
            self._others.add(rid)
            return True
        byte, bit = rid >> 3, 1 << (rid & 7)
        if byte >= len(self._bits):  # grow by doubling, so appends stay cheap
            self._bits.extend(bytes(max(byte + 1, 2 * len(self._bits)) - len(self._bits)))
        if self._bits[byte] & bit:
            return False
        self._bits[byte] |= bit
        return True


def _checked(page: Page, endpoint: str, seen: SeenIds) -> Iterator[dict[str, Any]]:
    """The page's records, each checked against the contract and for an id seen before."""
    for record in page.records:
        try:
            validate_record(endpoint, record)
        except ContractError as exc:
            raise ExtractError(f"{exc} (page at skip={page.skip})") from None
        rid = record["id"]
        if not seen.add(rid):
            raise ExtractError(
                f"{endpoint}: record id={rid} appears twice (again on page at skip={page.skip})"
            )
        yield record


def extract_to(
    paginator: Paginator,
    out: IO[bytes],
    progress: Progress | None = None,
) -> ExtractStats:
    """Stream every record of the paginator's endpoint to ``out`` as JSON Lines.

    Each record is checked against the contract and cut down to the fields the schema
    declares; ids must be unique and the count must equal ``total``. The caller writes ``out``
    to a temporary path and renames it only on success.
    """
    endpoint = paginator.endpoint
    stats = ExtractStats(endpoint=endpoint)
    keep = Projection(schema.RAW[endpoint].record)
    project, dumps = keep.project, orjson.dumps
    seen = SeenIds()
    try:
        for page in paginator.pages():
            lines = [dumps(project(r)) for r in _checked(page, endpoint, seen)]
            if lines:
                chunk = b"\n".join(lines) + b"\n"
                out.write(chunk)
                stats.bytes += len(chunk)
            stats.records += len(page.records)
            stats.pages, stats.total = page.number, page.total
            stats.page_length = stats.page_length or len(page.records)
            if progress:
                progress(stats.records, stats.total, page.number, paginator.pages_expected)
    except PagingError as exc:
        raise ExtractError(str(exc)) from None
    if stats.records != stats.total:
        raise ExtractError(f"{endpoint}: read {stats.records} records but total is {stats.total}")
    stats.dropped_fields = sorted(keep.dropped)
    new = stats.new_fields = keep.unknown()
    stats.missing_fields = keep.missing()
    if new:  # once per extract: only the read that succeeds gets here
        log.warning(
            "%s: the API sent field(s) that pipeline/schema.py does not declare: %s; "
            "dropped, not stored",
            endpoint,
            ", ".join(new),
        )
    return stats


def snapshot_endpoint(
    client: ApiClient,
    endpoint: str,
    path: Path,
    *,
    page_size: int,
    concurrency: int = 1,
    max_pages: int = 10_000,
    rereads: int = 1,
    progress: Progress | None = None,
    breaker: CircuitBreaker = BREAKER,
) -> ExtractStats:
    """Write every record of ``endpoint`` to ``path`` atomically, or fail saying why.

    A paging anomaly, malformed envelope or contract break is re-read from the first page up to
    ``rereads`` times: a snapshot taken while the shop changed may succeed on the next read.
    When the API has stopped answering (timeouts, refused connections, exhausted 429s) the
    breaker opens, so the run's other extracts fail at once instead of each waiting out its own
    retry budget.
    """
    where = f"GET {client.base_url}/{endpoint}"
    opened = breaker.reason(client.base_url)
    if opened is not None:
        raise ApiError(
            f"{endpoint}: not attempted, circuit open: the API stopped answering earlier in "
            f"this run ({opened})",
            cause="circuit",
        )
    for read in range(1, rereads + 2):
        paginator = Paginator(client, endpoint, page_size, concurrency, max_pages)
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as out:
                return extract_to(paginator, out, progress)
        except ExtractError as exc:
            if read > rereads:
                raise ExtractError(f"{exc} ({where}; failed on {read} read(s))") from None
            log.warning("%s (%s); reading it again from the first page", exc, where)
        except ApiError as exc:
            tries = f"{exc.attempts} attempt{'s' if exc.attempts != 1 else ''}"
            gave_up = f" (gave up after {tries})" if exc.retryable else ""
            if CircuitBreaker.opens_on(exc):
                breaker.trip(client.base_url, f"{endpoint}: {exc}{gave_up}")
            raise ApiError(
                f"{endpoint}: {exc}{gave_up}",
                cause=exc.cause,
                status=exc.status,
                detail=exc.detail,
                attempts=exc.attempts,
            ) from None
    raise AssertionError("unreachable: the last read returns or raises")
