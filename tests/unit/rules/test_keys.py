"""keys.IdIndex: the array indexed by id gives what pandas' hash index gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.rules import keys


def _by_hash(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    return pd.Index(ids).get_indexer(values)


@pytest.mark.parametrize("seed", range(5))
def test_dense_ids_are_looked_up_as_pandas_would(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(1, 5001))[: rng.integers(1, 5000)]  # dense, any order
    values = rng.integers(-10, 5100, size=20_000)  # some absent, some out of range either way
    index = keys.IdIndex(ids)
    assert index._rows is not None  # the array, not the hash table
    np.testing.assert_array_equal(index.rows(values), _by_hash(ids, values))
    np.testing.assert_array_equal(index.contains(pd.Series(values)), np.isin(values, ids))


@pytest.mark.parametrize(
    ("ids", "values"),
    [
        (np.array([10**12, 5, 7]), np.array([5, 10**12, 6, -1])),  # sparse: hash table
        (np.array([-3, 1, 2]), np.array([-3, 2, 0])),  # negative ids
        (np.array([1.0, 2.0, 4.0]), np.array([2.0, 3.0, np.nan])),  # not whole numbers
        (np.array([], dtype=np.int64), np.array([1, 2])),  # no ids at all
    ],
)
def test_other_ids_fall_back_to_pandas_index(ids: np.ndarray, values: np.ndarray) -> None:
    index = keys.IdIndex(ids)
    assert index._rows is None
    np.testing.assert_array_equal(index.rows(values), _by_hash(ids, values))


def test_float_values_with_gaps_against_dense_ids() -> None:
    """Line ids read as floats (a null among them) are looked up by the index, not the array."""
    index = keys.IdIndex(np.array([1, 2, 3]))
    got = index.rows(pd.Series([1.0, np.nan, 3.0, 9.0]))
    assert got.tolist() == [0, -1, 2, -1]


def test_repeated_ids_are_not_indexed_by_array() -> None:
    """A repeated id has no single row: pandas decides (it refuses), as before the array."""
    index = keys.IdIndex(np.array([1, 2, 2]))
    assert index._rows is None
    with pytest.raises(pd.errors.InvalidIndexError):
        index.rows(np.array([2]))
