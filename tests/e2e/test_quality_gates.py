"""Quality gates end to end: bad data fails CleanCarts with a message naming check, count and ids,
the offending rows land in ``rejected/<check>.csv``, and ``[quality] max_bad_rows`` tolerates
what an operator allows (with a warning in the log and the manifest)."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import orjson
import pytest

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import PARTITION, fixture_records, run_luigi
from tests.support.expected import USER_SUMMARY

pytestmark = pytest.mark.slow

CARTS_AND_LATER = (
    "cleaned/cleaned_carts.csv", "_stats/CleanCarts.json", "insights", "manifest.json",
)  # fmt: skip


def rejected(part: Path, check: str) -> list[dict[str, str]]:
    with (part / "rejected" / f"{check}.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_each_failing_check_is_named_counted_and_its_rows_rejected(tmp_path: Path) -> None:
    records = fixture_records()
    carts = {c["id"]: c for c in records["carts"]}
    carts[6]["userId"] = 77  # no such user
    carts[2]["products"][0]["id"] = 999  # no such product
    carts[5]["products"][1]["total"] = 45.97  # the API's line total is not price x quantity
    carts[3]["total"] = 27.94  # the cart's total is not the sum of its lines
    carts[4]["discountedTotal"] = 878.17  # nor its discounted total (its total agrees)
    data = tmp_path / "data"
    with DummyJSONServer(Dataset.from_records(records)) as server:
        result = run_luigi(server.url, data)
    assert result.returncode == 30, result.output
    assert (
        "QualityError: check cart_user_exists: 1 offending row(s), e.g. cart_id 6; "
        "check line_product_exists: 1 offending row(s), e.g. cart_id 2; "
        "check line_total_matches: 1 offending row(s), e.g. cart_id 5; "
        "check cart_total_matches: 2 offending row(s), e.g. cart_id 3, 4"
    ) in result.output

    part = data / PARTITION
    assert sorted(p.name for p in (part / "rejected").iterdir()) == [
        "cart_total_matches.csv", "cart_user_exists.csv", "line_product_exists.csv",
        "line_total_matches.csv",
    ]  # fmt: skip
    assert rejected(part, "cart_user_exists") == [
        {"cart_id": "6", "user_id": "77", "total": "259.98", "discounted_total": "219.58"}
    ]
    orphan = rejected(part, "line_product_exists")
    assert [(r["cart_id"], r["product_id"], r["quantity"]) for r in orphan] == [("2", "999", "5")]
    bad_line = rejected(part, "line_total_matches")
    assert [(r["cart_id"], r["product_id"], r["line_total"], r["api_line_total"])
            for r in bad_line] == [("5", "3", "44.97", "45.97")]  # fmt: skip
    bad_cart = rejected(part, "cart_total_matches")
    assert [(r["cart_id"], r["total"], r["line_total"], r["difference"]) for r in bad_cart] == [
        ("3", "27.94", "22.94", "-5"),
        ("4", "959.95", "959.95", "0"),
    ]  # a negative number stays a number: only text cells are neutralised
    discounted = [
        [
            float(r[c])
            for c in ("discounted_total", "discounted_line_total", "discounted_difference")
        ]
        for r in bad_cart
    ]  # unrounded sums, as the check compared them
    assert discounted == [
        pytest.approx([20.44, 20.44, 0.0], abs=1e-9),
        pytest.approx([878.17, 877.17, -1.0], abs=1e-9),
    ]
    for name in CARTS_AND_LATER:
        assert not (part / name).exists(), name
    assert not (data / "latest").exists()
    # Steps before the gate are complete and stay so.
    assert (part / "cleaned/cleaned_users.csv").exists()
    assert (part / "_stats/CleanProducts.json").exists()


def test_the_message_lists_at_most_ten_example_ids(tmp_path: Path) -> None:
    records = fixture_records()
    template = records["carts"][5]  # one line of product 100, consistent totals
    records["carts"] = [
        {**copy.deepcopy(template), "id": i, "userId": 100 + i} for i in range(1, 13)
    ]
    data = tmp_path / "data"
    with DummyJSONServer(Dataset.from_records(records)) as server:
        result = run_luigi(server.url, data)
    assert result.returncode == 30, result.output
    assert (
        "check cart_user_exists: 12 offending row(s), e.g. cart_id 1, 2, 3, 4, 5, 6, 7, 8, 9, 10\n"
    ) in result.output
    assert len(rejected(data / PARTITION, "cart_user_exists")) == 12


def test_a_threshold_tolerates_orphans_with_a_warning_and_the_default_stays_strict(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    records = fixture_records()
    carts = {c["id"]: c for c in records["carts"]}
    carts[2]["products"][0]["id"] = 999
    carts[3]["products"][1]["id"] = 998
    clean_dataset = api.dataset
    api.dataset = Dataset.from_records(records)
    data = tmp_path / "data"
    part = data / PARTITION

    strict = run_luigi(api.url, data, "--quality-max-bad-rows", '{"line_product_exists": 1}')
    assert strict.returncode == 30, strict.output
    assert "check line_product_exists: 2 offending row(s), e.g. cart_id 2, 3" in strict.output
    assert len(rejected(part, "line_product_exists")) == 2

    tolerant = run_luigi(api.url, data, "--quality-max-bad-rows", '{"line_product_exists": 2}')
    assert tolerant.returncode == 0, tolerant.output
    warning = (
        "check line_product_exists: 2 offending row(s), e.g. cart_id 2, 3 (tolerated: threshold 2)"
    )
    logged = " ".join(tolerant.output.split())
    assert f"WARNING [CleanCarts] pipeline.rules.quality: {warning}" in logged
    manifest = orjson.loads((part / "manifest.json").read_bytes())
    assert manifest["quality_warnings"] == [warning]
    assert len(rejected(part, "line_product_exists")) == 2  # kept for the operator to inspect
    categories = (part / "insights/category_summary.csv").read_text()
    assert '"(unknown)"' in categories  # the orphans' sales are kept, not silently dropped

    # Next hour the API is consistent again: strict default, no warnings, no rejected file.
    api.dataset = clean_dataset
    nxt = run_luigi(api.url, data, date_hour="2026-11-25T18")
    assert nxt.returncode == 0, nxt.output
    later = data / "2026-11-25T18"
    assert not (later / "rejected").exists()
    assert orjson.loads((later / "manifest.json").read_bytes())["quality_warnings"] == []
    assert (later / "insights/user_summary.csv").read_text() == USER_SUMMARY
