"""Shared fixtures: the local DummyJSON server on 127.0.0.1 with the real API's semantics.

The whole suite runs at one pinned time (``tests.support.NOW``, through ``PIPELINE_NOW``, which
every subprocess inherits), set before the pipeline is imported: no test depends on the day it
runs (``pipeline.clock``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from tests.support import FIXTURES, NOW

os.environ["PIPELINE_NOW"] = NOW

import luigi.configuration
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


@pytest.fixture
def cfg_file(tmp_path: Path) -> Iterator[Path]:
    """A luigi configuration file read after the checkout's, removed again after the test."""
    path = tmp_path / "site.cfg"
    path.write_text("")
    parser = luigi.configuration.LuigiConfigParser
    instance = parser.instance()
    saved = {name: dict(instance._sections[name]) for name in instance.sections()}
    parser.add_config_path(str(path))
    yield path
    parser._config_paths.remove(str(path))
    for name in instance.sections():  # reading again would only add: restore what was there
        instance.remove_section(name)
    instance.read_dict(saved)
