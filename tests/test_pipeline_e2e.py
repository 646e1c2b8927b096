"""The whole pipeline as a user runs it: ``luigi --module pipeline Insights`` in a subprocess
against the local DummyJSON server, checked by exit code and file contents."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson
import pytest

from pipeline.fakeapi import Dataset, DummyJSONServer

from .conftest import PARTITION, partition_files, run_luigi

pytestmark = pytest.mark.slow

FAST_FAIL = ("--api-retries", "1", "--api-backoff-factor", "0.01")

USER_SUMMARY = """\
"user_id","first_name","age","city","carts","total_items","total_spent","total_spent_discounted"
1,"Emily",29,"Phoenix",2,11,1365.91,1250.18
2,"Michael",36,"Houston",1,6,204.94,177.36
3,"Sophia",42,"Washington",1,6,22.94,20.44
4,"James",45,"Seattle",1,13,309.87,283.72
5,"Emma",30,"Jacksonville",1,2,259.98,219.58
"""
CATEGORY_SUMMARY = """\
"category","total_sales","total_items_sold","total_sales_discounted"
"beauty",119.92,8,108.11
"furniture",799.99,1,729.59
"groceries",93.86,14,84.37
"mobile-accessories",389.97,3,329.37
"smartphones",299.99,1,279.92
"sports-accessories",359.91,9,332.05
"tops",100.00,2,87.87
"""
CART_DETAILS = """\
"cart_id","user_id","first_name","age","city","product_id","name","category","quantity","price","line_total","discounted_line_total"
1,1,"Emily",29,"Phoenix",162,"Blue Frock","tops",2,50.00,100.00,87.87
1,1,"Emily",29,"Phoenix",122,"iPhone 6","smartphones",1,299.99,299.99,279.92
1,1,"Emily",29,"Phoenix",16,"Apple","groceries",3,1.99,5.97,5.22
2,2,"Michael",36,"Houston",3,"Powder Canister","beauty",5,14.99,74.95,67.57
2,2,"Michael",36,"Houston",100,"Apple Airpods","mobile-accessories",1,129.99,129.99,109.79
3,3,"Sophia",42,"Washington",16,"Apple","groceries",2,1.99,3.98,3.48
3,3,"Sophia",42,"Washington",17,"Beef Steak","groceries",1,12.99,12.99,11.74
3,3,"Sophia",42,"Washington",16,"Apple","groceries",3,1.99,5.97,5.22
4,1,"Emily",29,"Phoenix",15,"Wooden Bathroom Sink With Mirror","furniture",1,799.99,799.99,729.59
4,1,"Emily",29,"Phoenix",141,"Basketball Rim","sports-accessories",4,39.99,159.96,147.58
5,4,"James",45,"Seattle",141,"Basketball Rim","sports-accessories",5,39.99,199.95,184.47
5,4,"James",45,"Seattle",3,"Powder Canister","beauty",3,14.99,44.97,40.54
5,4,"James",45,"Seattle",17,"Beef Steak","groceries",5,12.99,64.95,58.71
6,5,"Emma",30,"Jacksonville",100,"Apple Airpods","mobile-accessories",2,129.99,259.98,219.58
"""
CLEANED_PRODUCTS = """\
"product_id","name","category","brand","price"
15,"Wooden Bathroom Sink With Mirror","furniture","Bath Trends",799.99
100,"Apple Airpods","mobile-accessories","Apple",129.99
122,"iPhone 6","smartphones","Apple",299.99
"""
EXPECTED_TREE = (
    [".latest.lock"]
    + [
        f"{PARTITION}/{name}"
        for name in (
            ".lock",
            "_stats/CartDetails.json",
            "_stats/CategorySummary.json",
            "_stats/CleanCarts.json",
            "_stats/CleanProducts.json",
            "_stats/CleanUsers.json",
            "_stats/Extract-carts.json",
            "_stats/Extract-products.json",
            "_stats/Extract-users.json",
            "_stats/UserSummary.json",
            "cleaned/cleaned_carts.csv",
            "cleaned/cleaned_products.csv",
            "cleaned/cleaned_users.csv",
            "cleaned/product_catalogue.csv",
            "insights/cart_details.csv",
            "insights/category_summary.csv",
            "insights/user_summary.csv",
            "jsons/carts.jsonl",
            "jsons/products.jsonl",
            "jsons/users.jsonl",
            "manifest.json",
        )
    ]
    + ["latest"]
)
SECRETS = {"password", "ssn", "ein", "bank", "crypto", "ip", "macAddress", "userAgent"}


def test_full_run_writes_exact_outputs_manifest_and_latest(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    result = run_luigi(api.url, data)
    assert result.returncode == 0, result.output
    assert partition_files(data) == EXPECTED_TREE
    assert os.readlink(data / "latest") == PARTITION
    assert f"INFO    [Insights] luigi-interface.pipeline: latest -> {PARTITION}" in result.output
    latest = data / "latest"
    assert (latest / "insights/user_summary.csv").read_text() == USER_SUMMARY
    assert (latest / "insights/category_summary.csv").read_text() == CATEGORY_SUMMARY
    assert (latest / "insights/cart_details.csv").read_text() == CART_DETAILS
    assert (latest / "cleaned/cleaned_products.csv").read_text() == CLEANED_PRODUCTS

    manifest = orjson.loads((latest / "manifest.json").read_bytes())
    assert manifest["partition"] == PARTITION
    assert manifest["source"] == api.url
    assert manifest["api_totals"] == {"carts": 6, "products": 8, "users": 6}
    assert manifest["requests"] == 3  # one page per endpoint at the default page size
    assert manifest["rows"] == {
        "cart_details.csv": 14, "carts.jsonl": 6, "category_summary.csv": 7,
        "cleaned_carts.csv": 14, "cleaned_products.csv": 3, "cleaned_users.csv": 6,
        "product_catalogue.csv": 8, "products.jsonl": 8, "user_summary.csv": 5,
        "users.jsonl": 6,
    }  # fmt: skip
    assert manifest["reconciliation"] == {
        "carts": 6, "api_cart_total": 2163.64, "line_total": 2163.64,
        "user_total_spent": 2163.64, "category_total_sales": 2163.64,
        "difference_lines_vs_api": 0.0,
    }  # fmt: skip
    assert set(manifest["tasks"]) == {
        "extract_carts", "extract_products", "extract_users", "clean_users", "clean_products",
        "clean_carts", "user_summary", "category_summary", "cart_details",
    }  # fmt: skip
    for timing in manifest["tasks"].values():
        assert timing["started"] <= timing["finished"] and timing["seconds"] >= 0


def test_raw_users_hold_no_secrets_and_files_are_not_world_readable(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert run_luigi(api.url, data).returncode == 0
    users = [orjson.loads(line) for line in (data / PARTITION / "jsons/users.jsonl").open("rb")]
    assert [u["id"] for u in users] == [1, 2, 3, 4, 5, 6]
    assert all(SECRETS.isdisjoint(u) for u in users)
    raw = (data / PARTITION / "jsons/users.jsonl").read_text()
    assert "emilyspass" not in raw and "900-590-289" not in raw
    for path in [data, *data.rglob("*")]:
        if not path.is_symlink():
            assert not path.stat().st_mode & stat.S_IROTH, path


def test_a_second_run_of_a_complete_partition_makes_no_request(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert run_luigi(api.url, data).returncode == 0
    before = {p: p.read_bytes() for p in (data / PARTITION).rglob("*") if p.is_file()}
    api.reset_log()
    again = run_luigi(api.url, data)
    assert again.returncode == 0, again.output
    assert api.request_count == 0
    assert {p: p.read_bytes() for p in (data / PARTITION).rglob("*") if p.is_file()} == before


def test_unreachable_api_exits_non_zero_and_writes_no_insights(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_luigi("http://127.0.0.1:9", data, *FAST_FAIL)
    assert result.returncode == 30  # [retcode] task_failed
    assert "GET http://127.0.0.1:9/" in result.output and "connection failed" in result.output
    assert not (data / PARTITION / "insights").exists()
    assert not (data / PARTITION / "manifest.json").exists()
    assert not (data / "latest").exists()
    assert not list((data / PARTITION).rglob("*.jsonl"))


def test_a_rerun_after_a_failed_extract_resumes_and_finishes(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    api.add_fault("status", endpoint="carts", times=None, status=503)
    failed = run_luigi(api.url, data, *FAST_FAIL)
    assert failed.returncode == 30
    assert f"carts: GET {api.url}/carts?limit=1000&skip=0: HTTP 503" in failed.output
    part = data / PARTITION
    assert (part / "jsons/users.jsonl").exists() and (part / "jsons/products.jsonl").exists()
    assert not (part / "jsons/carts.jsonl").exists()
    assert not (part / "cleaned/cleaned_carts.csv").exists()
    assert not (part / "insights").exists()
    users_before = (part / "jsons/users.jsonl").stat().st_mtime_ns

    api.clear_faults()
    api.reset_log()
    resumed = run_luigi(api.url, data)
    assert resumed.returncode == 0, resumed.output
    assert [path for path, _ in api.requests] == ["/carts"]  # only the missing extract
    assert (part / "jsons/users.jsonl").stat().st_mtime_ns == users_before
    assert (part / "insights/user_summary.csv").read_text() == USER_SUMMARY
    assert os.readlink(data / "latest") == PARTITION


def test_a_partial_run_is_completed_by_the_next_without_requests(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert run_luigi(api.url, data, task="CleanCarts").returncode == 0
    assert not (data / PARTITION / "insights").exists() and not (data / "latest").exists()
    api.reset_log()
    assert run_luigi(api.url, data).returncode == 0
    assert api.request_count == 0
    assert (data / "latest/insights/category_summary.csv").read_text() == CATEGORY_SUMMARY


def test_latest_only_moves_forward(api: DummyJSONServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_luigi(api.url, data, date_hour="2026-11-25T18").returncode == 0
    assert run_luigi(api.url, data, date_hour="2026-11-25T16").returncode == 0  # a backfill
    assert os.readlink(data / "latest") == "2026-11-25T18"
    assert (data / "2026-11-25T16/manifest.json").exists()


def test_a_successful_run_prunes_partitions_past_retention(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    stale = data / "2020-01-01T00"
    (stale / "insights").mkdir(parents=True)
    keep = ("--housekeeping-retention-hours", "100000")
    assert run_luigi(api.url, data, *keep, date_hour="2020-01-01T05").returncode == 0
    assert stale.exists() and os.readlink(data / "latest") == "2020-01-01T05"

    # Backfill an old hour with a 1-hour retention: everything is "old" by the wall clock,
    # yet `latest`'s partition and the one this run is writing (its lock is held) survive.
    result = run_luigi(
        api.url, data, "--housekeeping-retention-hours", "1", date_hour="2020-01-01T03"
    )
    assert result.returncode == 0, result.output
    assert sorted(p.name for p in data.iterdir()) == [
        ".latest.lock", "2020-01-01T03", "2020-01-01T05", "latest",
    ]  # fmt: skip
    assert f"pruned partition {stale}" in result.output


def test_an_endpoint_with_no_records_gives_empty_but_complete_outputs(tmp_path: Path) -> None:
    fixtures = Path(__file__).parent / "fixtures" / "api"
    records = {
        name: [orjson.loads(line) for line in (fixtures / f"{name}.jsonl").open("rb")]
        for name in ("products", "users")
    }
    with DummyJSONServer(Dataset.from_records({**records, "carts": []})) as server:
        result = run_luigi(server.url, tmp_path / "data")
    assert result.returncode == 0, result.output
    latest = tmp_path / "data" / "latest"
    assert (latest / "jsons/carts.jsonl").read_bytes() == b""
    assert (latest / "insights/user_summary.csv").read_text() == USER_SUMMARY.splitlines()[0] + "\n"
    assert (latest / "insights/category_summary.csv").read_text().count("\n") == 1
    manifest = orjson.loads((latest / "manifest.json").read_bytes())
    assert manifest["api_totals"]["carts"] == 0
    assert manifest["reconciliation"]["line_total"] == 0.0
