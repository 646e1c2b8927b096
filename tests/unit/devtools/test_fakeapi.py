"""The fake DummyJSON server: paging exactly as API.md, rate limit, and every fault kind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import orjson
import pytest
import requests

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer, parse_rate_limit
from tests.support import FIXTURES

N_CARTS = 65


def _records() -> dict[str, list[dict]]:
    return {
        "carts": [{"id": i, "products": [], "userId": i} for i in range(1, N_CARTS + 1)],
        "products": [
            {"id": 1, "title": "Apple", "category": "groceries", "price": 1.99},
            {"id": 2, "title": "Rim", "category": "sports", "price": 39.99, "brand": "ProGear"},
        ],
        "users": [{"id": i, "firstName": f"U{i}", "password": "x"} for i in range(1, 4)],
    }


@pytest.fixture
def server() -> Iterator[DummyJSONServer]:
    with DummyJSONServer(Dataset.from_records(_records())) as srv:
        yield srv


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def get(http: requests.Session, server: DummyJSONServer, path: str, **params) -> requests.Response:
    return http.get(server.url + path, params=params, timeout=5)


def ids(body: dict, key: str = "carts") -> list[int]:
    return [r["id"] for r in body[key]]


# -- paging -------------------------------------------------------------------------------------
def test_default_page_is_30_records_with_envelope_in_api_order(http, server):
    r = get(http, server, "/carts")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["carts", "total", "skip", "limit"]
    assert ids(body) == list(range(1, 31))
    assert (body["total"], body["skip"], body["limit"]) == (N_CARTS, 0, 30)


def test_limit_zero_returns_everything_from_skip(http, server):
    assert ids(get(http, server, "/carts", limit=0).json()) == list(range(1, N_CARTS + 1))
    body = get(http, server, "/carts", limit=0, skip=60).json()
    assert ids(body) == [61, 62, 63, 64, 65]
    assert body["limit"] == 5


def test_last_page_is_short_and_limit_is_the_returned_count(http, server):
    body = get(http, server, "/carts", limit=10, skip=60).json()
    assert body == {
        "carts": [{"id": i, "products": [], "userId": i} for i in range(61, 66)],
        "total": N_CARTS,
        "skip": 60,
        "limit": 5,
    }


def test_page_past_the_end_is_200_and_empty(http, server):
    r = get(http, server, "/carts", limit=10, skip=1000)
    assert r.status_code == 200
    assert r.json() == {"carts": [], "total": N_CARTS, "skip": 1000, "limit": 0}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "ten"}, "Invalid 'limit' - must be a number"),
        ({"skip": "x"}, "Invalid 'skip' - must be a number"),
        ({"limit": "1.5"}, "Invalid 'limit' - must be a number"),
        ({"limit": "-1"}, "Invalid 'limit' - must be a non-negative number"),
        ({"skip": "-10"}, "Invalid 'skip' - must be a non-negative number"),
    ],
)
def test_bad_numbers_are_400(http, server, params, message):
    r = get(http, server, "/carts", **params)
    assert r.status_code == 400
    assert r.json() == {"message": message}


def test_trailing_slash_redirects_to_the_path_without_it(http, server):
    r = http.get(server.url + "/carts/?limit=2", allow_redirects=False, timeout=5)
    assert r.status_code == 301
    assert r.headers["Location"] == "/carts?limit=2"
    followed = http.get(server.url + "/carts/?limit=2", timeout=5)
    assert followed.status_code == 200
    assert ids(followed.json()) == [1, 2]


def test_unknown_path_is_404_json(http, server):
    r = get(http, server, "/orders")
    assert r.status_code == 404
    assert "message" in r.json()


def test_select_keeps_id_and_listed_fields_on_products_and_users(http, server):
    products = get(http, server, "/products", select="title,brand").json()["products"]
    assert products == [{"id": 1, "title": "Apple"}, {"id": 2, "title": "Rim", "brand": "ProGear"}]
    users = get(http, server, "/users", select="firstName", limit=1).json()["users"]
    assert users == [{"id": 1, "firstName": "U1"}]


def test_carts_ignore_select(http, server):
    body = get(http, server, "/carts", select="userId", limit=1).json()
    assert body["carts"] == [{"id": 1, "products": [], "userId": 1}]


def test_responses_are_http11_keep_alive_with_exact_content_length(http, server):
    for skip in (0, 30, 60):
        r = get(http, server, "/carts", skip=skip)
        assert r.raw.version == 11
        assert int(r.headers["Content-Length"]) == len(r.content)
        assert r.headers.get("Connection", "").lower() != "close"


def test_request_log_records_path_and_query_in_order(http, server):
    get(http, server, "/carts", limit=5)
    get(http, server, "/users")
    assert server.requests == [("/carts", {"limit": "5"}), ("/users", {})]
    assert server.request_count == 2
    server.reset_log()
    assert server.requests == []


def test_latency_delays_every_request():
    with DummyJSONServer(Dataset.from_records(_records()), latency=0.2) as srv:
        started = time.perf_counter()
        requests.get(srv.url + "/users", timeout=5)
        assert time.perf_counter() - started >= 0.2


def test_load_reads_jsonl_fixtures_verbatim():
    dataset = Dataset.load(FIXTURES)
    assert [dataset.count(e) for e in ("carts", "products", "users")] == [6, 8, 6]
    lines = (FIXTURES / "carts.jsonl").read_bytes().splitlines()
    assert dataset.records("carts") == lines
    with DummyJSONServer(dataset) as srv:
        body = requests.get(srv.url + "/carts", params={"limit": 2, "skip": 5}, timeout=5).json()
    assert body["carts"] == [orjson.loads(lines[5])]
    assert (body["total"], body["skip"], body["limit"]) == (6, 5, 1)


# -- rate limit ---------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after_when_the_window_is_used_up(http):
    with DummyJSONServer(Dataset.from_records(_records()), rate_limit=(3, 60)) as srv:
        remaining = []
        for _ in range(3):
            r = http.get(srv.url + "/carts", timeout=5)
            assert r.status_code == 200
            assert r.headers["X-RateLimit-Limit"] == "3"
            assert int(r.headers["X-RateLimit-Reset"]) >= time.time()
            remaining.append(r.headers["X-RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]
        r = http.get(srv.url + "/carts", timeout=5)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "60"
        assert r.headers["X-RateLimit-Remaining"] == "0"
        assert r.json() == {"message": "request limit exceeded, please wait a few seconds"}


def test_rate_limit_window_is_fixed_and_resets(http):
    with DummyJSONServer(Dataset.from_records(_records()), rate_limit=(1, 0.3)) as srv:
        assert http.get(srv.url + "/users", timeout=5).status_code == 200
        assert http.get(srv.url + "/users", timeout=5).status_code == 429
        time.sleep(0.35)
        assert http.get(srv.url + "/users", timeout=5).status_code == 200


def test_parse_rate_limit():
    assert parse_rate_limit("100/10") == (100, 10.0)
    with pytest.raises(ValueError):
        parse_rate_limit("100")


# -- faults -------------------------------------------------------------------------------------
def test_status_fault_hits_only_the_matching_page_and_only_n_times(http, server):
    fault = server.add_fault(
        "status", endpoint="carts", skip=30, times=2, status=503, headers={"Retry-After": "1"}
    )
    assert get(http, server, "/carts").status_code == 200
    assert get(http, server, "/users", skip=30).status_code == 200
    for _ in range(2):
        r = get(http, server, "/carts", skip=30)
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "1"
        assert "message" in r.json()
    assert fault.times == 0
    assert get(http, server, "/carts", skip=30).status_code == 200


def test_fault_with_times_none_applies_forever_until_cleared(http, server):
    server.add_fault("status", times=None, status=500)
    assert [get(http, server, "/products").status_code for _ in range(3)] == [500] * 3
    server.clear_faults()
    assert get(http, server, "/products").status_code == 200


def test_unknown_fault_kind_is_rejected(server):
    with pytest.raises(ValueError):
        server.add_fault("explode")
    with pytest.raises(ValueError):
        server.add_fault("status", endpoint="orders")


def test_close_fault_drops_the_connection_without_a_response(http, server):
    server.add_fault("close", endpoint="carts")
    with pytest.raises(requests.ConnectionError):
        get(http, server, "/carts")
    assert get(http, server, "/carts").status_code == 200


def test_truncate_fault_sends_less_than_content_length(http, server):
    server.add_fault("truncate")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(http, server, "/carts")
    assert get(http, server, "/carts").status_code == 200


def test_stall_fault_exceeds_a_short_read_timeout_without_blocking_others(server):
    server.add_fault("stall", skip=30, seconds=3)
    with pytest.raises(requests.ReadTimeout):
        requests.get(server.url + "/carts?skip=30", timeout=(2, 0.3))
    # Other requests are served meanwhile (the stalled one is still sleeping).
    assert requests.get(server.url + "/carts", timeout=1).status_code == 200


def test_stop_interrupts_a_stalled_request():
    srv = DummyJSONServer(Dataset.from_records(_records())).start()
    srv.add_fault("stall", seconds=30)
    errors: list[Exception] = []

    def client() -> None:
        try:
            requests.get(srv.url + "/carts", timeout=10)
        except requests.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    time.sleep(0.2)
    srv.stop()
    thread.join(5)  # the stall is 30 s: only stop() can end it this soon
    assert not thread.is_alive()
    assert errors  # the client saw the connection go away instead of a page


def test_body_fault_serves_non_json(http, server):
    server.add_fault("body", body=b"<html>not json</html>", content_type="text/html")
    r = get(http, server, "/users")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html"
    assert r.content == b"<html>not json</html>"
    with pytest.raises(requests.JSONDecodeError):
        r.json()


def test_drop_key_and_drop_total_faults(http, server):
    server.add_fault("drop_key")
    assert get(http, server, "/carts").json() == {"total": N_CARTS, "skip": 0, "limit": 30}
    server.add_fault("drop_total")
    body = get(http, server, "/carts", limit=2).json()
    assert list(body) == ["carts", "skip", "limit"]


def test_total_delta_fault_changes_total_between_pages(http, server):
    server.add_fault("total_delta", skip=30, delta=7)
    assert get(http, server, "/carts").json()["total"] == N_CARTS
    assert get(http, server, "/carts", skip=30).json()["total"] == N_CARTS + 7


def test_bad_record_fault_replaces_one_record(http, server):
    server.add_fault("bad_record", index=1)
    server.add_fault("bad_record", value=None)
    body = get(http, server, "/carts", limit=3).json()
    assert body["carts"][0] is None
    assert body["carts"][1] == "oops"
    assert body["carts"][2]["id"] == 3


def test_duplicate_fault_repeats_the_previous_pages_last_record(http, server):
    server.add_fault("duplicate", skip=10)
    body = get(http, server, "/carts", limit=10, skip=10).json()
    assert ids(body) == [10, 12, 13, 14, 15, 16, 17, 18, 19, 20]


def test_short_and_empty_faults_return_fewer_records_than_remain(http, server):
    server.add_fault("short", skip=0, count=3)
    body = get(http, server, "/carts", limit=10).json()
    assert ids(body) == list(range(1, 8))
    assert (body["total"], body["limit"]) == (N_CARTS, 7)
    server.add_fault("empty", skip=10)
    assert get(http, server, "/carts", limit=10, skip=10).json() == {
        "carts": [],
        "total": N_CARTS,
        "skip": 10,
        "limit": 0,
    }


def test_mutate_fault_rewrites_the_envelope(http, server):
    def stringify_ids(envelope: dict) -> dict:
        for cart in envelope["carts"]:
            cart["id"] = str(cart["id"])
        return envelope

    server.add_fault("mutate", endpoint="carts", fn=stringify_ids)
    assert ids(get(http, server, "/carts", limit=2).json()) == ["1", "2"]
    with pytest.raises(ValueError):
        server.add_fault("mutate")


def test_the_server_starts_without_asking_a_resolver_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """http.server looks the address up (``socket.getfqdn``) when it binds; a resolver that
    does not answer would hold the demo's start for minutes."""
    import socket

    def no_resolver(name: str = "") -> str:
        raise AssertionError(f"getfqdn({name!r}) asked")

    monkeypatch.setattr(socket, "getfqdn", no_resolver)
    with DummyJSONServer(Dataset.load(FIXTURES)) as server:
        assert requests.get(f"{server.url}/carts?limit=1", timeout=10).json()["limit"] == 1
