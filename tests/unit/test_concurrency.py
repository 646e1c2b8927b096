"""concurrency.ordered_map: map on threads, results in order, a bounded number ahead."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from pipeline.concurrency import ordered_map


def slow_square(x: int) -> int:
    time.sleep(0.001 * (x % 3))  # later items often finish first
    return x * x


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_results_come_in_the_order_of_the_items(threads: int) -> None:
    assert list(ordered_map(slow_square, range(50), threads)) == [x * x for x in range(50)]


def test_at_most_threads_plus_one_items_are_taken_ahead() -> None:
    taken: list[int] = []

    def items() -> Iterator[int]:
        for i in range(100):
            taken.append(i)
            yield i

    results = ordered_map(slow_square, items(), threads=2)
    assert next(results) == 0
    assert len(taken) == 3  # the one used and two more in flight
    assert next(results) == 1 and len(taken) == 4
    results.close()


def test_an_error_is_raised_where_its_result_would_have_been() -> None:
    def fail_at_3(x: int) -> int:
        if x == 3:
            raise ValueError("bad batch 3")
        return x

    got: list[int] = []
    with pytest.raises(ValueError, match="bad batch 3"):
        for value in ordered_map(fail_at_3, range(10), threads=2):
            got.append(value)
    assert got == [0, 1, 2]


def test_the_threads_are_gone_once_the_results_are() -> None:
    before = threading.active_count()
    assert sum(ordered_map(slow_square, range(20), threads=3)) == sum(x * x for x in range(20))
    assert threading.active_count() == before


def test_an_error_of_the_items_comes_after_the_results_read_before_it() -> None:
    def items() -> Iterator[int]:
        yield from (0, 1, 2)
        raise OSError("file cut short")

    got: list[int] = []
    with pytest.raises(OSError, match="cut short"):
        for value in ordered_map(slow_square, items(), threads=2):
            got.append(value)
    assert got == [0, 1, 4]  # as map() would give them


def test_the_items_are_closed_when_the_results_are_abandoned() -> None:
    closed: list[bool] = []

    def items() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            closed.append(True)

    source = items()  # still referenced here: only an explicit close ends it
    results = ordered_map(slow_square, source, threads=2)
    assert next(results) == 0
    results.close()
    assert closed == [True]
