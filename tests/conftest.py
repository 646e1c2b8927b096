"""Shared fixtures: the local DummyJSON server on 127.0.0.1 with the real API's semantics.

The whole suite runs at one pinned time (``tests.support.NOW``, through ``PIPELINE_NOW``, which
every subprocess inherits), set before the pipeline is imported: no test depends on the day it
runs (``pipeline.clock``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from tests.support import FIXTURES, NOW

os.environ["PIPELINE_NOW"] = NOW

import pytest

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer


@pytest.fixture(scope="session")
def fixture_dataset() -> Dataset:
    return Dataset.load(FIXTURES)


@pytest.fixture
def api(fixture_dataset: Dataset) -> Iterator[DummyJSONServer]:
    """The fixture data set served on 127.0.0.1 with the real API's rate limit."""
    with DummyJSONServer(fixture_dataset, rate_limit=(100, 10.0)) as server:
        yield server
