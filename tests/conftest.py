"""Shared fixtures: the local DummyJSON server on 127.0.0.1 with the real API's semantics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import FIXTURES


@pytest.fixture(scope="session")
def fixture_dataset() -> Dataset:
    return Dataset.load(FIXTURES)


@pytest.fixture
def api(fixture_dataset: Dataset) -> Iterator[DummyJSONServer]:
    """The fixture data set served on 127.0.0.1 with the real API's rate limit."""
    with DummyJSONServer(fixture_dataset, rate_limit=(100, 10.0)) as server:
        yield server
