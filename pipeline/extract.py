"""Extraction: page through one endpoint and stream its records to a JSON Lines file.

``Paginator`` reads the first page to learn ``total`` and the page length the server really
serves (``limit`` in the envelope is the number *returned*), then fetches the remaining pages
concurrently and yields them in order. Memory is bounded by the pages in flight, not by the size
of the data. Any anomaly (a page shorter than it must be, ``total`` changing mid-run, a record
seen twice) fails the extract: a snapshot that mixes two states of the shop is worse than none.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from pipeline.client import BREAKER, ApiClient, ApiError, CircuitBreaker
from pipeline.contract import ContractError, validate_record
from pipeline.targets import atomic_path

log = logging.getLogger(__name__)


class ExtractError(RuntimeError):
    """The endpoint's data cannot be trusted; the message names endpoint and cause."""


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    skip: int
    total: int
    records: list[dict[str, Any]]


@dataclass
class ExtractStats:
    endpoint: str
    total: int = 0
    records: int = 0
    pages: int = 0
    page_length: int = 0
    bytes: int = 0
    dropped_fields: list[str] = field(default_factory=list)


Progress = Callable[[int, int, int, int], None]  # records done, total, page, pages


class Paginator:
    """Pages of one endpoint as a generator, in ``skip`` order."""

    def __init__(
        self,
        client: ApiClient,
        endpoint: str,
        page_size: int,
        concurrency: int = 1,
        max_pages: int = 10_000,
    ):
        if page_size < 1:
            raise ValueError("page_size must be >= 1 (limit=0 would ask for everything at once)")
        self.client, self.endpoint = client, endpoint
        self.page_size, self.concurrency, self.max_pages = page_size, max(1, concurrency), max_pages
        self.pages_expected = 0

    def _fail(self, message: str) -> ExtractError:
        return ExtractError(f"{self.endpoint}: {message}")

    def fetch(self, skip: int, limit: int) -> Page:
        body = self.client.get_json(f"/{self.endpoint}", {"limit": limit, "skip": skip})
        url = f"{self.client.base_url}/{self.endpoint}?limit={limit}&skip={skip}"
        if not isinstance(body, dict):
            raise self._fail(f"GET {url}: response is not a JSON object")
        records, total = body.get(self.endpoint), body.get("total")
        if not isinstance(records, list):
            raise self._fail(f"GET {url}: envelope has no {self.endpoint!r} list")
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise self._fail(f"GET {url}: envelope has no valid 'total' (got {total!r})")
        return Page(number=0, skip=skip, total=total, records=records)

    def pages(self) -> Iterator[Page]:
        first = self.fetch(0, self.page_size)
        total, step = first.total, len(first.records)
        if total == 0:
            self.pages_expected = 1
            yield Page(1, 0, 0, first.records)
            return
        if step == 0:
            raise self._fail(f"first page is empty but total is {total}")
        if step > self.page_size or (step < self.page_size and step < total):
            # The server serves fewer than asked: follow its page length, as `limit` tells us.
            log.info(
                "%s: server pages by %d records (asked for %d)", self.endpoint, step, self.page_size
            )
        skips = range(step, total, step)
        self.pages_expected = 1 + len(skips)
        if self.pages_expected > self.max_pages:
            raise self._fail(
                f"{self.pages_expected} pages of {step} needed for total={total}; "
                f"refusing more than max_pages={self.max_pages}"
            )
        yield Page(1, 0, total, first.records)
        for number, page in enumerate(self._fetch_all(skips, step), start=2):
            if page.total != total:
                raise self._fail(
                    f"total changed from {total} to {page.total} at skip={page.skip}; "
                    "the data changed while it was read (the next run takes a fresh snapshot)"
                )
            expected = min(step, total - page.skip)
            if len(page.records) != expected:
                raise self._fail(
                    f"page at skip={page.skip} has {len(page.records)} records, expected "
                    f"{expected} of total={total}"
                )
            yield Page(number, page.skip, total, page.records)

    def _fetch_all(self, skips: Iterable[int], limit: int) -> Iterator[Page]:
        """Fetch pages on a thread pool, at most 2xconcurrency in flight, yielded in order."""
        if self.concurrency == 1:
            for skip in skips:
                yield self.fetch(skip, limit)
            return
        todo = iter(skips)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"extract-{self.endpoint}")
        pending: deque[Future[Page]] = deque()
        try:
            for skip in todo:
                pending.append(pool.submit(self.fetch, skip, limit))
                if len(pending) >= 2 * self.concurrency:
                    break
            while pending:
                page = pending.popleft().result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(self.fetch, nxt, limit))
                yield page
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def strip_fields(record: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """Drop secret/personal top-level fields so they never reach disk."""
    if fields.isdisjoint(record):
        return record
    return {k: v for k, v in record.items() if k not in fields}


def extract_to(
    paginator: Paginator,
    out: IO[bytes],
    drop_fields: frozenset[str] = frozenset(),
    progress: Progress | None = None,
) -> ExtractStats:
    """Stream every record of the paginator's endpoint to ``out`` as JSON Lines.

    Each record is checked against the contract; ids must be unique and the count must equal
    ``total``. The caller writes ``out`` to a temporary path and renames it only on success.
    """
    endpoint = paginator.endpoint
    stats = ExtractStats(endpoint=endpoint, dropped_fields=sorted(drop_fields))
    seen: set[int] = set()
    for page in paginator.pages():
        lines = []
        for record in page.records:
            try:
                validate_record(endpoint, record)
            except ContractError as exc:
                raise ExtractError(f"{exc} (page at skip={page.skip})") from None
            rid = record["id"]
            if rid in seen:
                raise ExtractError(
                    f"{endpoint}: record id={rid} appears twice (again on page at skip={page.skip})"
                )
            seen.add(rid)
            lines.append(orjson.dumps(strip_fields(record, drop_fields)))
        if lines:
            chunk = b"\n".join(lines) + b"\n"
            out.write(chunk)
            stats.bytes += len(chunk)
        stats.records += len(page.records)
        stats.pages, stats.total = page.number, page.total
        stats.page_length = stats.page_length or len(page.records)
        if progress:
            progress(stats.records, stats.total, page.number, paginator.pages_expected)
    if stats.records != stats.total:
        raise ExtractError(f"{endpoint}: read {stats.records} records but total is {stats.total}")
    return stats


def snapshot_endpoint(
    client: ApiClient,
    endpoint: str,
    path: Path,
    *,
    page_size: int,
    concurrency: int = 1,
    max_pages: int = 10_000,
    drop_fields: frozenset[str] = frozenset(),
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
            f"this run ({opened})"
        )
    for read in range(1, rereads + 2):
        paginator = Paginator(client, endpoint, page_size, concurrency, max_pages)
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as out:
                return extract_to(paginator, out, drop_fields, progress)
        except ExtractError as exc:
            if read > rereads:
                raise ExtractError(f"{exc} ({where}; failed on {read} read(s))") from None
            log.warning("%s (%s); reading it again from the first page", exc, where)
        except ApiError as exc:
            attempts = client.settings.retries + 1
            gave_up = f" (gave up after {attempts} attempts)" if exc.retryable else ""
            if CircuitBreaker.opens_on(exc):
                breaker.trip(client.base_url, f"{endpoint}: {exc}{gave_up}")
            raise ApiError(
                f"{endpoint}: {exc}{gave_up}", cause=exc.cause, status=exc.status
            ) from None
    raise AssertionError("unreachable: the last read returns or raises")
