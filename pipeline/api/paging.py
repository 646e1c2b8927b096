"""Paging through one endpoint: ``limit``/``skip`` pages, ``total`` from the envelope.

``Paginator`` reads the first page to learn ``total`` and the page length the server really
serves (``limit`` in the envelope is the number *returned*), then fetches the remaining pages
concurrently and yields them in order. Memory is bounded by the pages in flight, not by the size
of the data. Any anomaly (a page shorter than it must be, ``total`` changing mid-run) raises
``PagingError``: a snapshot that mixes two states of the shop is worse than none.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pipeline.api.client import ApiClient
from pipeline.api.errors import PagingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    skip: int
    total: int
    records: list[dict[str, Any]]


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

    def _fail(self, message: str) -> PagingError:
        return PagingError(f"{self.endpoint}: {message}")

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
