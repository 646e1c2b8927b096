"""The whole pipeline as a user runs it: ``luigi --module pipeline Insights`` in a subprocess
against the local DummyJSON server, checked by exit code and file contents."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson
import pytest

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import PARTITION, fixture_records, partition_files, run_luigi
from tests.support.expected import CART_DETAILS, CATEGORY_SUMMARY, CLEANED_PRODUCTS, USER_SUMMARY

pytestmark = pytest.mark.slow

FAST_FAIL = ("--api-retries", "1", "--api-backoff-factor", "0.01")

EXPECTED_TREE = (
    [".latest.lock"]
    + [
        f"{PARTITION}/{name}"
        for name in (
            ".lock",
            "_exact/cart_lines.arrow",
            "_exact/users.arrow",
            "_stats/CartDetails.json",
            "_stats/CategorySummary.json",
            "_stats/CleanCarts.json",
            "_stats/CleanProducts.json",
            "_stats/CleanUsers.json",
            "_stats/Extract-carts.json",
            "_stats/Extract-products.json",
            "_stats/Extract-users.json",
            "_stats/HistoryHour.json",
            "_stats/HourReport.json",
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
            "report/findings.md",
            "report/index.html",
        )
    ]
    + [f"history/date_hour={PARTITION}/part-0.parquet", "latest"]
)
SECRETS = {"password", "ssn", "ein", "bank", "crypto", "ip", "macAddress", "userAgent"}


def test_full_run_writes_exact_outputs_manifest_and_latest(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    result = run_luigi(api.url, data)
    assert result.returncode == 0, result.output
    files = partition_files(data)
    assert [f for f in files if not f.startswith("logs/")] == EXPECTED_TREE
    assert len([f for f in files if f.startswith("logs/run-")]) == 1  # the run's log
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
        "findings.md": 8, "history.parquet": 13, "product_catalogue.csv": 8,
        "products.jsonl": 8, "user_summary.csv": 5, "users.jsonl": 6,
    }  # fmt: skip
    assert manifest["reconciliation"] == {
        "carts": 6, "api_cart_total": 2163.64, "line_total": 2163.64,
        "user_total_spent": 2163.64, "category_total_sales": 2163.64,
        "difference_lines_vs_api": 0.0,
    }  # fmt: skip
    assert set(manifest["tasks"]) == {
        "extract_carts", "extract_products", "extract_users", "clean_users", "clean_products",
        "clean_carts", "user_summary", "category_summary", "cart_details", "history_hour",
        "hour_report",
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
    prom = data / "logs" / "etl_pipeline.prom"  # 0644 for node_exporter: no personal data
    assert prom.stat().st_mode & 0o777 == 0o644
    assert not (data / "logs").stat().st_mode & stat.S_IXOTH  # in a folder others cannot enter
    for path in [data, *data.rglob("*")]:
        if not path.is_symlink() and path != prom:
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
        ".latest.lock", "2020-01-01T03", "2020-01-01T05", "history", "latest", "logs",
    ]  # fmt: skip
    assert f"pruned partition {stale}" in result.output


def test_an_endpoint_with_no_records_gives_empty_but_complete_outputs(tmp_path: Path) -> None:
    records = fixture_records()
    with DummyJSONServer(Dataset.from_records({**records, "carts": []})) as server:
        result = run_luigi(server.url, tmp_path / "data")
    assert result.returncode == 0, result.output
    latest = tmp_path / "data" / "latest"
    assert (latest / "jsons/carts.jsonl").read_bytes() == b""
    assert (latest / "insights/user_summary.csv").read_text() == USER_SUMMARY.splitlines()[0] + "\n"
    assert (latest / "insights/category_summary.csv").read_text() == (
        '"category","total_sales","total_items_sold","total_sales_discounted"\n'
    )
    manifest = orjson.loads((latest / "manifest.json").read_bytes())
    assert manifest["api_totals"]["carts"] == 0
    assert manifest["reconciliation"]["line_total"] == 0.0


def test_sub_cent_prices_are_summed_exactly_and_rounded_once(tmp_path: Path) -> None:
    """Olivia (user 6) buys three stickers at $0.3333 (discounted to $0.33 each, as the API
    rounds): she spent $0.9999, written 1.00. Rounding each line first would give 3 x 0.33 =
    0.99: cleaned_carts.csv shows the lines rounded, the summaries the rounded sum."""
    records = fixture_records()
    sticker = {**records["products"][0], "id": 200, "title": "Sticker", "category": "stationery",
               "brand": "Stick", "price": 0.3333}  # fmt: skip
    line = {"id": 200, "title": "Sticker", "price": 0.3333, "quantity": 1, "total": 0.3333,
            "discountPercentage": 1.0, "discountedTotal": 0.33, "thumbnail": "s.webp"}  # fmt: skip
    cart = {"id": 7, "products": [line, line, line], "total": 1.0, "discountedTotal": 0.99,
            "userId": 6, "totalProducts": 3, "totalQuantity": 3}  # fmt: skip
    records["products"].append(sticker)
    records["carts"].append(cart)
    data = tmp_path / "data"
    with DummyJSONServer(Dataset.from_records(records)) as server:
        result = run_luigi(server.url, data)
    assert result.returncode == 0, result.output
    latest = data / "latest"

    def rows(name: str, first: str) -> list[str]:
        return [r for r in (latest / name).read_text().splitlines() if r.startswith(first)]

    assert rows("cleaned/cleaned_carts.csv", "7,") == ["7,6,200,1,0.33,0.33,0.33"] * 3
    assert rows("insights/user_summary.csv", "6,") == ['6,"Olivia",22,"Fort Worth",1,3,1.00,0.99']
    assert (latest / "insights/category_summary.csv").read_text() == (
        CATEGORY_SUMMARY.replace('"tops"', '"stationery",1.00,3,0.99\n"tops"')
    )
    assert (
        rows("insights/cart_details.csv", "7,")
        == ['7,6,"Olivia",22,"Fort Worth",200,"Sticker","stationery",1,0.33,0.33,0.33'] * 3
    )
    reconciliation = orjson.loads((latest / "manifest.json").read_bytes())["reconciliation"]
    assert reconciliation == {
        "carts": 7, "api_cart_total": 2164.64, "line_total": 2164.64,
        "user_total_spent": 2164.64, "category_total_sales": 2164.64,
        "difference_lines_vs_api": -0.0001,
    }  # fmt: skip
