"""The extract's record of ids read so far: one bit per id, so 10M carts do not take 500 MB."""

from __future__ import annotations

from pipeline.extract import SeenIds


def test_an_id_is_new_once_whatever_its_kind() -> None:
    seen = SeenIds()
    ids = [1, 8, 9, 0, 1_000_003, 2**40, -3, "x"]
    assert [seen.add(i) for i in ids] == [True] * len(ids)
    assert [seen.add(i) for i in ids] == [False] * len(ids)
    assert seen.add(2) and seen.add(1_000_002)  # neighbours in the same byte are other ids


def test_a_million_ids_take_bits_not_objects() -> None:
    seen = SeenIds()
    assert all(seen.add(i) for i in range(1, 1_000_001))
    assert not any(seen.add(i) for i in (1, 500_000, 1_000_000))
    assert len(seen._bits) <= 2 * 1_000_001 // 8 + 1  # the point of the class
