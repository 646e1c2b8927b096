"""HTTP client against the local server: retries, Retry-After, timeouts, clear errors."""

from __future__ import annotations

import dataclasses
import os
import socket
import time

import pytest

from pipeline.api.client import RATE_LIMIT, ApiClient, ClientSettings, Wait
from pipeline.api.errors import ApiError
from pipeline.api.limits import CircuitBreaker, RateLimiter
from pipeline.devtools.fakeapi import DummyJSONServer

FAST = ClientSettings(
    connect_timeout=1.0, read_timeout=0.5, retries=2, dns_retries=1, refused_retries=2,
    backoff_factor=0.01, backoff_max=2.0, rate_limit_requests=1000, rate_limit_window=1.0,
    pool_size=4,
)  # fmt: skip


def get(api: DummyJSONServer, settings: ClientSettings = FAST) -> dict:
    with ApiClient(api.url, settings) as client:
        return client.get_json("/carts", {"limit": 2, "skip": 0})


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("status", {"status": 500}),
        ("status", {"status": 502}),
        ("status", {"status": 503}),
        ("status", {"status": 504}),
        ("close", {}),
        ("truncate", {}),
        ("stall", {"seconds": 2.0}),
        ("body", {"body": b"<html>busy</html>", "content_type": "text/html"}),
    ],
)
def test_transient_faults_are_retried_to_success(
    api: DummyJSONServer, kind: str, options: dict
) -> None:
    api.add_fault(kind, endpoint="carts", times=1, **options)
    body = get(api)
    assert [c["id"] for c in body["carts"]] == [1, 2]
    assert api.request_count == 2  # the failed attempt and the retry


def test_429_waits_what_retry_after_says(api: DummyJSONServer) -> None:
    api.add_fault("status", endpoint="carts", times=1, status=429, headers={"Retry-After": "1"})
    t0 = time.monotonic()
    get(api)
    assert time.monotonic() - t0 >= 1.0
    assert api.request_count == 2


class FakeTime:
    """A clock that a sleep moves on; each sleep notes the wait the client says is under way."""

    def __init__(self, client: ApiClient) -> None:
        self.now, self.client = 1000.0, client
        self.waits: list[tuple[float, Wait | None]] = []
        client.clock, client.sleep = self.clock, self.sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append((seconds, self.client.waiting()))
        self.now += seconds


def test_a_wait_on_the_rate_limit_is_told_as_one_while_it_lasts(api: DummyJSONServer) -> None:
    with ApiClient(api.url, FAST) as client:
        fake = FakeTime(client)
        client.limiter = RateLimiter(1, 10.0, clock=fake.clock)
        client.get_json("/carts", {"limit": 2})
        fake.now += 2.0
        assert client.waiting() is None
        client.get_json("/carts", {"limit": 2})
        assert fake.waits == [(8.0, Wait(1010.0, RATE_LIMIT))]
        assert client.waiting() is None  # over with the sleep


@pytest.mark.parametrize(
    ("status", "headers", "seconds", "reason"),
    [
        (429, {"Retry-After": "9"}, 9.0, "for the API's rate limit (it answered HTTP 429)"),
        (503, {"Retry-After": "9"}, 9.0, "as the API asked (HTTP 503, Retry-After)"),
        (500, {}, 0.01, "before retrying a failed request"),  # backoff_factor
    ],
)
def test_a_wait_before_a_retry_is_told_with_its_reason(
    api: DummyJSONServer, status: int, headers: dict[str, str], seconds: float, reason: str
) -> None:
    api.add_fault("status", endpoint="carts", times=1, status=status, headers=headers)
    with ApiClient(api.url, dataclasses.replace(FAST, backoff_max=30.0)) as client:
        fake = FakeTime(client)
        client.get_json("/carts", {"limit": 2})
    assert fake.waits == [(seconds, Wait(1000.0 + seconds, reason))]
    assert api.request_count == 2


def test_persistent_failure_gives_up_after_the_retries_naming_url_and_status(
    api: DummyJSONServer,
) -> None:
    api.add_fault("status", endpoint="carts", times=None, status=503)
    with pytest.raises(ApiError) as err:
        get(api)
    assert api.request_count == 3  # 1 + retries
    assert f"GET {api.url}/carts?limit=2&skip=0: HTTP 503" in str(err.value)


def test_stalled_server_fails_within_the_timeouts(api: DummyJSONServer) -> None:
    api.add_fault("stall", endpoint="carts", times=None, seconds=30)
    with pytest.raises(ApiError, match="timed out"):
        get(api)  # would hang for the 30 s stall without the read timeout
    assert api.request_count == 3  # 1 + retries, each cut off by the read timeout


def test_other_4xx_fail_at_once(api: DummyJSONServer) -> None:
    api.add_fault("status", endpoint="carts", times=None, status=404)
    with pytest.raises(ApiError, match=r"HTTP 404 .*\(not retried\)"):
        get(api)
    assert api.request_count == 1


def test_a_refused_connection_gets_refused_retries_and_says_so() -> None:
    settings = dataclasses.replace(FAST, retries=4, refused_retries=2)
    with ApiClient("http://127.0.0.1:9", settings) as client, pytest.raises(ApiError) as err:
        client.get_json("/carts")
    assert str(err.value) == (
        "GET http://127.0.0.1:9/carts: connection failed: 127.0.0.1:9 refused the connection"
    )
    assert (err.value.cause, err.value.attempts) == ("refused", 3)
    assert "Connection refused" in err.value.detail  # requests' own words, for the run log
    assert CircuitBreaker.opens_on(err.value)


def test_a_name_that_does_not_resolve_gets_dns_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def no_such_name(host: str, *args: object, **kwargs: object) -> list:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    settings = dataclasses.replace(FAST, retries=4, dns_retries=1)
    with ApiClient("https://shop.invalid", settings) as client, pytest.raises(ApiError) as err:
        client.get_json("/carts", {"limit": 5})
    assert str(err.value) == (
        "GET https://shop.invalid/carts?limit=5: connection failed: "
        "the name shop.invalid does not resolve"
    )
    assert (err.value.cause, err.value.attempts) == ("dns", 2)
    assert asked == ["shop.invalid", "shop.invalid"]


def test_the_cause_specific_retries_never_exceed_retries() -> None:
    settings = dataclasses.replace(FAST, retries=1, refused_retries=5)
    with ApiClient("http://127.0.0.1:9", settings) as client, pytest.raises(ApiError) as err:
        client.get_json("/carts")
    assert err.value.attempts == 2


def test_a_server_that_closes_the_connection_keeps_the_full_retries(api: DummyJSONServer) -> None:
    api.add_fault("close", endpoint="carts", times=None)
    with pytest.raises(ApiError) as err:
        get(api)
    assert (err.value.cause, err.value.attempts, api.request_count) == ("connection", 3, 3)
    assert "connection failed (ConnectionError: " in str(err.value)


def test_rate_limiter_spaces_requests_beyond_the_window() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 10.0, clock=lambda: now[0])
    assert [limiter.try_acquire(), limiter.try_acquire()] == [0.0, 0.0]
    now[0] = 4.0
    assert limiter.try_acquire() == 6.0  # the oldest of the last 2 starts leaves at t=10
    now[0] = 10.0  # both starts of t=0 have left the window
    assert [limiter.try_acquire(), limiter.try_acquire()] == [0.0, 0.0]
    assert limiter.try_acquire() == 10.0


def test_a_shared_limiter_is_one_budget_across_forked_workers() -> None:
    limiter = RateLimiter(3, 60.0, shared=True)
    assert [limiter.try_acquire(), limiter.try_acquire()] == [0.0, 0.0]
    pid = os.fork()  # as luigi starts a worker process per task with --workers N
    if pid == 0:
        os._exit(0 if limiter.try_acquire() == 0.0 else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert limiter.try_acquire() > 59  # the child used the third start of the window


def test_clients_share_the_run_rate_limit_budget() -> None:
    settings = dataclasses.replace(FAST, rate_limit_requests=7, rate_limit_window=3.0)
    with (
        ApiClient("http://127.0.0.1:1", settings) as a,
        ApiClient("http://127.0.0.1:2", settings) as b,
    ):
        assert a.limiter is b.limiter
        assert (a.limiter.requests, a.limiter.window) == (7, 3.0)


def test_the_breaker_opens_only_on_an_unanswering_api_and_per_base_url() -> None:
    breaker = CircuitBreaker()
    assert breaker.reason("http://api") is None
    pid = os.fork()  # as luigi starts a worker process per task with --workers N
    if pid == 0:
        breaker.trip("http://api", "carts: GET http://api/carts: timed out")
        os._exit(0)
    os.waitpid(pid, 0)
    assert breaker.reason("http://api") == "carts: GET http://api/carts: timed out"
    assert breaker.reason("http://elsewhere") is None
    breaker.trip("http://api", "a later failure does not overwrite the first cause")
    assert breaker.reason("http://api") == "carts: GET http://api/carts: timed out"
    breaker.reset()
    assert breaker.reason("http://api") is None

    def error(cause: str, status: int | None = None) -> ApiError:
        return ApiError("x", retryable=True, cause=cause, status=status)

    assert CircuitBreaker.opens_on(error("timeout"))
    assert CircuitBreaker.opens_on(error("connection"))
    assert CircuitBreaker.opens_on(error("dns"))
    assert CircuitBreaker.opens_on(error("refused"))
    assert CircuitBreaker.opens_on(error("status", 429))
    assert not CircuitBreaker.opens_on(error("status", 503))
    assert not CircuitBreaker.opens_on(error("body", 200))


def test_a_limit_beyond_the_ring_means_no_limit() -> None:
    limiter = RateLimiter(10**6, 10.0, shared=True)
    assert limiter.unlimited
    assert [limiter.try_acquire() for _ in range(5)] == [0.0] * 5
    with pytest.raises(ValueError, match="requests >= 1"):
        limiter.configure(0, 10.0)


def test_the_run_limiter_has_no_limit_of_its_own_until_configured() -> None:
    limiter = RateLimiter(None, None, shared=True)  # as made at import, before [api] is read
    with pytest.raises(RuntimeError, match="before configure"):
        limiter.try_acquire()
    limiter.configure(5, 1.0)
    assert limiter.try_acquire() == 0.0
