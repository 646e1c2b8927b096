"""Paginator and extract against the local server, with exact page requests asserted."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.api.client import ApiClient, ClientSettings
from pipeline.api.errors import ApiError, PagingError
from pipeline.api.limits import CircuitBreaker
from pipeline.api.paging import Paginator
from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from pipeline.extract import ExtractError, extract_to, snapshot_endpoint

SETTINGS = ClientSettings(
    connect_timeout=5.0, read_timeout=2.0, retries=1, dns_retries=1, refused_retries=1,
    backoff_factor=0.01, backoff_max=10.0, rate_limit_requests=1000, rate_limit_window=10.0,
    pool_size=4,
)  # fmt: skip


def carts(n: int) -> list[dict[str, Any]]:
    line = {"id": 1, "title": "A", "price": 2.5, "quantity": 2, "total": 5.0,
            "discountedTotal": 4.5, "thumbnail": "https://cdn/a.webp"}  # fmt: skip
    return [
        {"id": i, "userId": 1, "total": 5.0, "discountedTotal": 4.5, "products": [line]}
        for i in range(1, n + 1)
    ]


@pytest.fixture
def server() -> Any:
    users = [{"id": 1, "firstName": "E", "lastName": "J", "gender": "f", "age": 3,
              "password": "pw", "ssn": "1", "bank": {"iban": "x"},
              "address": {"address": "a", "city": "c", "state": "s", "postalCode": "p",
                          "coordinates": {"lat": 1.5, "lng": 2.5}, "country": "u"}}]  # fmt: skip
    with DummyJSONServer(Dataset.from_records({"carts": carts(23), "users": users})) as s:
        yield s


def run(
    server: DummyJSONServer,
    endpoint: str = "carts",
    page_size: int = 10,
    concurrency: int = 3,
) -> tuple[Any, list[dict]]:
    out = io.BytesIO()
    progress: list[tuple[int, int, int, int]] = []
    with ApiClient(server.url, SETTINGS) as client:
        pager = Paginator(client, endpoint, page_size, concurrency)
        stats = extract_to(pager, out, lambda *a: progress.append(a))
    records = [orjson.loads(line) for line in out.getvalue().splitlines()]
    return (stats, progress), records


def pages_requested(server: DummyJSONServer) -> list[tuple[str, str]]:
    return sorted((q["skip"], q["limit"]) for _, q in server.requests)


def test_pages_until_total_and_writes_every_record_in_order(server: DummyJSONServer) -> None:
    (stats, progress), records = run(server)
    assert [r["id"] for r in records] == list(range(1, 24))
    assert sorted(pages_requested(server), key=lambda p: int(p[0])) == [
        ("0", "10"),
        ("10", "10"),
        ("20", "10"),
    ]  # the last page is short: 3 records; no request past the end
    assert (stats.total, stats.records, stats.pages) == (23, 23, 3)
    assert progress == [(10, 23, 1, 3), (20, 23, 2, 3), (23, 23, 3, 3)]


def test_follows_the_page_length_the_server_serves(server: DummyJSONServer) -> None:
    # Ask for 23 but be served 10 (a server-side cap): skip by what `limit` says came back.
    server.add_fault("short", endpoint="carts", skip=0, count=13)
    _, records = run(server, page_size=23, concurrency=1)
    assert [r["id"] for r in records] == list(range(1, 24))
    assert [q["skip"] for _, q in server.requests] == ["0", "10", "20"]


def test_only_declared_fields_are_written_nested_ones_too(server: DummyJSONServer) -> None:
    (stats, _), records = run(server, "users")
    assert records == [{"id": 1, "firstName": "E", "lastName": "J", "gender": "f", "age": 3,
                        "address": {"address": "a", "city": "c", "state": "s",
                                    "postalCode": "p", "country": "u"}}]  # fmt: skip
    assert stats.dropped_fields == ["address.coordinates", "bank", "password", "ssn"]
    (stats, _), records = run(server, "carts")
    assert records[0] == {"id": 1, "userId": 1, "total": 5.0, "discountedTotal": 4.5,
                          "products": [{"id": 1, "price": 2.5, "quantity": 2, "total": 5.0,
                                        "discountedTotal": 4.5}]}  # fmt: skip
    assert stats.dropped_fields == ["products.thumbnail", "products.title"]


def test_a_field_the_api_adds_is_dropped_and_logged_once(
    server: DummyJSONServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def add_fields(envelope: dict) -> dict:
        for cart in envelope["carts"]:
            cart["loyaltyCard"] = "LC-0001"
            cart["products"][0]["giftNote"] = "for Emily"
        return envelope

    server.add_fault("mutate", endpoint="carts", times=None, fn=add_fields)
    server.add_fault("total_delta", endpoint="carts", skip=10, times=1, delta=1)  # one re-read
    path = tmp_path / "carts.jsonl"
    with ApiClient(server.url, SETTINGS) as client:
        stats = snapshot_endpoint(
            client, "carts", path, page_size=10, rereads=1, breaker=CircuitBreaker()
        )
    text = path.read_text()
    assert stats.records == 23 and "loyaltyCard" not in text and "LC-0001" not in text
    assert "giftNote" not in text and "for Emily" not in text
    assert stats.dropped_fields == [
        "loyaltyCard", "products.giftNote", "products.thumbnail", "products.title",
    ]  # fmt: skip
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    new = [m for m in warnings if "does not declare" in m]
    assert new == [
        "carts: the API sent field(s) that pipeline/schema.py does not declare: "
        "loyaltyCard, products.giftNote; dropped, not stored"
    ]
    assert len(warnings) == 2  # and the re-read's


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("total_delta", {"skip": 10, "delta": 1},
         "carts: total changed from 23 to 24 at skip=10"),
        ("short", {"skip": 10, "count": 1},
         "carts: page at skip=10 has 9 records, expected 10 of total=23"),
        ("empty", {"skip": 10}, "carts: page at skip=10 has 0 records, expected 10"),
        ("duplicate", {"skip": 10}, "carts: record id=10 appears twice"),
        ("bad_record", {"skip": 20, "index": 1},
         "carts: record is not an object: str (page at skip=20)"),
        ("drop_key", {"skip": 0}, "envelope has no 'carts' list"),
        ("drop_total", {"skip": 0}, "envelope has no valid 'total'"),
        ("empty", {"skip": 0}, "carts: first page is empty but total is 23"),
    ],
)  # fmt: skip
def test_paging_anomalies_fail_naming_the_endpoint(
    server: DummyJSONServer, kind: str, options: dict, message: str
) -> None:
    skip = options.pop("skip")
    server.add_fault(kind, endpoint="carts", skip=skip, times=None, **options)
    with pytest.raises(ExtractError) as err:
        run(server)
    assert message in str(err.value)


def test_a_contract_violation_names_record_and_field(server: DummyJSONServer) -> None:
    def bad_quantity(envelope: dict) -> dict:
        envelope["carts"][2]["products"][0]["quantity"] = "2"
        return envelope

    server.add_fault("mutate", endpoint="carts", skip=10, times=None, fn=bad_quantity)
    with pytest.raises(ExtractError) as err:
        run(server)
    assert str(err.value) == (
        "carts record id=13 products[0]: field 'quantity' = '2' is not integer >= 1 "
        "(page at skip=10)"
    )


def test_endless_paging_is_refused(server: DummyJSONServer) -> None:
    with ApiClient(server.url, SETTINGS) as client:
        pager = Paginator(client, "carts", page_size=1, max_pages=5)
        with pytest.raises(PagingError, match=r"23 pages of 1 needed .* max_pages=5"):
            list(pager.pages())
    assert server.request_count == 1


def test_empty_endpoint_is_one_request_and_no_records() -> None:
    with DummyJSONServer(Dataset.from_records({"carts": []})) as server:
        (stats, _), records = run(server)
    assert (stats.total, stats.records, records) == (0, 0, [])
    assert server.request_count == 1


def test_snapshot_rereads_after_an_anomaly_and_writes_atomically(
    server: DummyJSONServer, tmp_path: Path
) -> None:
    server.add_fault("total_delta", endpoint="carts", skip=10, times=1, delta=1)
    path = tmp_path / "carts.jsonl"
    with ApiClient(server.url, SETTINGS) as client:
        stats = snapshot_endpoint(
            client, "carts", path, page_size=10, rereads=1, breaker=CircuitBreaker()
        )
    assert stats.records == 23
    assert [orjson.loads(line)["id"] for line in path.read_bytes().splitlines()] == list(
        range(1, 24)
    )
    assert [q["skip"] for _, q in server.requests] == ["0", "10", "0", "10", "20"]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_snapshot_without_rereads_fails_and_leaves_no_file(
    server: DummyJSONServer, tmp_path: Path
) -> None:
    server.add_fault("empty", endpoint="carts", skip=20, times=1)
    path = tmp_path / "carts.jsonl"
    with ApiClient(server.url, SETTINGS) as client, pytest.raises(ExtractError) as err:
        snapshot_endpoint(client, "carts", path, page_size=10, rereads=0, breaker=CircuitBreaker())
    assert str(err.value) == (
        f"carts: page at skip=20 has 0 records, expected 3 of total=23 "
        f"(GET {server.url}/carts; failed on 1 read(s))"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_open_breaker_stops_the_extract_before_any_request(
    server: DummyJSONServer, tmp_path: Path
) -> None:
    breaker = CircuitBreaker()
    breaker.trip(server.url, "users: timed out")
    with ApiClient(server.url, SETTINGS) as client, pytest.raises(ApiError) as err:
        snapshot_endpoint(client, "carts", tmp_path / "c.jsonl", page_size=10, breaker=breaker)
    assert "carts: not attempted, circuit open" in str(err.value)
    assert "(users: timed out)" in str(err.value)
    assert server.request_count == 0
