"""Progress lines: what a finished task produced, and a line every interval while one runs."""

from __future__ import annotations

import logging
import threading

import pytest

from pipeline.api.client import RATE_LIMIT, Wait
from pipeline.progress import ExtractProgress, Ticker, extract_status, summary


def test_extract_status_says_records_pages_rate_and_time_left() -> None:
    assert extract_status(4000, 10000, 4, 10, 5.0) == (
        "4000/10000 records, page 4/10, 800 records/s, about 8 s left"
    )
    assert extract_status(0, 10000, 0, 10, 0.0) == "0/10000 records, page 0/10"
    assert extract_status(0, 0, 0, 0, 3.0) == "no page yet"


def test_a_wait_is_shown_as_a_wait_and_the_rate_counts_the_time_waited() -> None:
    """The issue's case: 2 pages of 2 records came in 0.03 s, then the client waits 10 s on the
    rate limit; before, the console said "134 records/s, about 2 s left" all along."""
    now = [100.0]
    wait: list[Wait | None] = [None]
    shown = ExtractProgress(lambda: wait[0], clock=lambda: now[0])
    now[0] = 100.03
    shown.update(4, 208, 2, 104)
    wait[0] = Wait(110.03, RATE_LIMIT)
    now[0] = 101.0
    assert shown.status() == "4/208 records, page 2/104, waiting 10 s for the API's rate limit"
    now[0] = 109.5  # 0.53 s left: rounded up, never "waiting 0 s"
    assert shown.status() == "4/208 records, page 2/104, waiting 1 s for the API's rate limit"
    now[0] = 110.03  # the wait is over though the client has not yet said so
    assert shown.status() == "4/208 records, page 2/104, 0.4 records/s, about 512 s left"
    wait[0] = None
    now[0] = 120.0
    shown.update(104, 208, 52, 104)
    assert shown.status() == "104/208 records, page 52/104, 5.2 records/s, about 20 s left"
    wait[0] = Wait(129.0, "as the API asked (HTTP 503, Retry-After)")
    assert shown.status() == (
        "104/208 records, page 52/104, waiting 9 s as the API asked (HTTP 503, Retry-After)"
    )


def test_a_wait_before_the_first_page_says_so() -> None:
    shown = ExtractProgress(lambda: Wait(9.0, RATE_LIMIT), clock=lambda: 0.0)
    assert shown.status() == "no page yet, waiting 9 s for the API's rate limit"


def test_summary_of_what_a_task_produced() -> None:
    assert summary({"records": 208, "pages": 1}) == "208 records, 1 page"
    assert summary({"records": 0, "pages": 2}) == "0 records, 2 pages"
    assert summary({"rows": {"cleaned_products.csv": 3, "product_catalogue.csv": 7}}) == (
        "cleaned_products.csv 3 rows, product_catalogue.csv 7 rows"
    )
    assert summary({}) == ""


def test_a_ticker_logs_the_latest_status_for_the_console_until_its_block_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    seen = threading.Event()

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if sum(r.name == "pipeline.progress" for r in caplog.records) >= 2:
                seen.set()

    spy = Spy()
    logging.getLogger("pipeline.progress").addHandler(spy)
    try:
        with Ticker("ExtractCarts", 0.01, clock=lambda: 20.0) as ticker:
            ticker.update(lambda: "4000/10000 records, page 4/10")  # asked when a line is due
            assert seen.wait(10)
        count = len(caplog.records)
    finally:
        logging.getLogger("pipeline.progress").removeHandler(spy)
    assert caplog.records[0].getMessage() == "ExtractCarts: 4000/10000 records, page 4/10 (0 s)"
    assert all(r.console for r in caplog.records)  # type: ignore[attr-defined]
    assert len(caplog.records) == count  # nothing after the block


def test_a_task_done_within_the_interval_prints_no_progress(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    with Ticker("CleanUsers", 60):
        pass
    assert caplog.records == []
