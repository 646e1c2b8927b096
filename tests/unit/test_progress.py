"""Progress lines: what a finished task produced, and a line every interval while one runs."""

from __future__ import annotations

import logging
import threading

import pytest

from pipeline.progress import Ticker, extract_status, summary


def test_extract_status_says_records_pages_rate_and_time_left() -> None:
    assert extract_status(4000, 10000, 4, 10, 5.0) == (
        "4000/10000 records, page 4/10, 800 records/s, about 8 s left"
    )
    assert extract_status(0, 10000, 0, 10, 0.0) == "0/10000 records, page 0/10"


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
            ticker.update("4000/10000 records, page 4/10")
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
