"""The fault matrix, end to end: ``luigi --module pipeline Insights`` against a misbehaving API.

A fault that goes away must leave no trace: the run succeeds and its outputs are byte-identical
to a clean run. A fault that persists must fail the run with exit code 30 and a message naming
endpoint, URL and cause, leave no target of the failed step or a later one, leave everything
earlier untouched, and let a rerun finish once the API is healthy. Pages are 2 records, so every
fault can hit a middle page (``skip=2``) after a page has already been streamed to disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import PARTITION, REPO, comparable, fingerprint, run_luigi, temporaries

pytestmark = pytest.mark.slow

EARLIER = "2026-11-25T16"
READ_TIMEOUT, RETRIES = 1.0, 2
FAST = (
    "--api-page-size", "2", "--api-read-timeout", str(READ_TIMEOUT),
    "--api-retries", str(RETRIES), "--api-backoff-factor", "0.01", "--api-backoff-max", "1",
)  # fmt: skip
#: Outputs of carts extraction and every step after it.
CARTS_AND_LATER = (
    "jsons/carts.jsonl", "_stats/Extract-carts.json", "cleaned/cleaned_carts.csv",
    "_stats/CleanCarts.json", "insights/user_summary.csv", "insights/category_summary.csv",
    "insights/cart_details.csv", "_stats/UserSummary.json", "_stats/CategorySummary.json",
    "_stats/CartDetails.json", "manifest.json",
)  # fmt: skip


@pytest.fixture(scope="module")
def clean(fixture_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Outputs of an undisturbed run, with the same settings the fault runs use."""
    data = tmp_path_factory.mktemp("clean") / "data"
    with DummyJSONServer(fixture_dataset) as server:
        result = run_luigi(server.url, data, *FAST)
    assert result.returncode == 0, result.output
    return comparable(data / PARTITION)


@pytest.fixture(scope="module")
def clean_after_earlier(
    fixture_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The same after an earlier complete hour, which the hour's report compares it with."""
    data = tmp_path_factory.mktemp("clean-after-earlier") / "data"
    with DummyJSONServer(fixture_dataset) as server:
        for hour in (EARLIER, PARTITION):
            result = run_luigi(server.url, data, *FAST, date_hour=hour)
            assert result.returncode == 0, result.output
    return comparable(data / PARTITION)


@pytest.fixture(scope="module")
def baseline(fixture_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An earlier complete partition, and this hour with users and products already done."""
    data = tmp_path_factory.mktemp("baseline") / "data"
    with DummyJSONServer(fixture_dataset) as server:
        for task, hour in (("Insights", EARLIER), ("CleanUsers", PARTITION),
                           ("CleanProducts", PARTITION)):  # fmt: skip
            result = run_luigi(server.url, data, *FAST, task=task, date_hour=hour)
            assert result.returncode == 0, result.output
    return data


@pytest.fixture
def data(baseline: Path, tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "data"
    shutil.copytree(baseline, copy, symlinks=True)  # copy2: mtimes are kept
    yield copy


TRANSIENT = [
    ("status", {"status": 500}),
    ("status", {"status": 502}),
    ("status", {"status": 503}),
    ("status", {"status": 504}),
    ("status", {"status": 429, "headers": {"Retry-After": "1"}}),
    ("close", {}),
    ("truncate", {}),
    ("stall", {"seconds": READ_TIMEOUT + 2}),
    ("body", {"body": b"<html>502 Bad Gateway</html>"}),
    # Not retried by the client, but the whole endpoint is read again once:
    ("drop_key", {}),
    ("drop_total", {}),
    ("bad_record", {"value": "oops"}),
    ("total_delta", {"delta": 1}),
    ("duplicate", {}),
    ("short", {"count": 1}),
    ("empty", {}),
]
REREAD = {"drop_key", "drop_total", "bad_record", "total_delta", "duplicate", "short", "empty"}


def fault_id(case: tuple[str, dict]) -> str:
    kind, options = case
    return f"{kind}-{options['status']}" if "status" in options else kind


@pytest.mark.parametrize("case", TRANSIENT, ids=fault_id)
@pytest.mark.parametrize("endpoint", ["carts"])
def test_a_fault_that_goes_away_leaves_outputs_identical_to_a_clean_run(
    api: DummyJSONServer, tmp_path: Path, clean: dict[str, Any], endpoint: str, case: tuple
) -> None:
    kind, options = case
    fault = api.add_fault(kind, endpoint=endpoint, skip=2, times=1, **options)
    data = tmp_path / "data"
    started = time.monotonic()
    result = run_luigi(api.url, data, *FAST)
    assert result.returncode == 0, result.output
    assert fault.times == 0, "the fault was never served"
    assert comparable(data / PARTITION) == clean
    assert os.readlink(data / "latest") == PARTITION
    assert not temporaries(data)
    if kind in REREAD:
        assert "reading it again from the first page" in result.output
    else:
        assert "retrying in" in result.output  # the client's retry, logged
    if options.get("status") == 429:
        assert time.monotonic() - started >= 1.0  # Retry-After was honoured


PERSISTENT = [
    ("status", {"status": 500}, 'HTTP 500 Internal Server Error: b\'{"message"'),
    ("status", {"status": 502}, "HTTP 502 Bad Gateway"),
    ("status", {"status": 503}, "HTTP 503 Service Unavailable"),
    ("status", {"status": 504}, "HTTP 504 Gateway Timeout"),
    ("status", {"status": 429, "headers": {"Retry-After": "1"}}, "HTTP 429 Too Many Requests"),
    ("close", {}, "connection failed (ConnectionError"),
    ("truncate", {}, "body cut short (ChunkedEncodingError"),
    ("stall", {"seconds": 30}, "timed out (ReadTimeout)"),
    ("body", {"body": b"<html>maintenance</html>"}, "HTTP 200 but the body is not JSON"),
    ("drop_key", {}, "envelope has no 'carts' list"),
    ("drop_total", {}, "envelope has no valid 'total' (got None)"),
    ("bad_record", {"value": "oops"}, "carts: record is not an object: str (page at skip=2)"),
    ("total_delta", {"delta": 1}, "carts: total changed from 6 to 7 at skip=2"),
    ("duplicate", {}, "carts: record id=2 appears twice (again on page at skip=2)"),
    ("short", {"count": 1}, "carts: page at skip=2 has 1 records, expected 2 of total=6"),
    ("empty", {}, "carts: page at skip=2 has 0 records, expected 2 of total=6"),
]
#: Failures the client raises after its retries name the page's URL and the attempts; the others
#: are read again from the first page once, then name the endpoint's URL and the reads.
CLIENT_FAILURES = {"status", "close", "truncate", "stall", "body"}


@pytest.mark.parametrize(
    ("kind", "options", "message"), PERSISTENT, ids=[fault_id(c[:2]) for c in PERSISTENT]
)
def test_a_persisting_fault_fails_the_step_touches_nothing_earlier_and_a_rerun_finishes(
    api: DummyJSONServer,
    data: Path,
    clean_after_earlier: dict[str, Any],
    kind: str,
    options: dict,
    message: str,
) -> None:
    api.add_fault(kind, endpoint="carts", skip=2, times=None, **options)
    part = data / PARTITION
    before = fingerprint(data)
    assert os.readlink(data / "latest") == EARLIER

    failed = run_luigi(api.url, data, *FAST)
    assert failed.returncode == 30, failed.output  # [retcode] task_failed
    assert message in failed.output
    if kind in CLIENT_FAILURES:
        assert f"carts: GET {api.url}/carts?limit=2&skip=2: " in failed.output
        assert "(gave up after 3 attempts)" in failed.output
    else:
        assert f"(GET {api.url}/carts; failed on 2 read(s))" in failed.output
    for name in CARTS_AND_LATER:
        assert not (part / name).exists(), name
    assert not temporaries(data)
    assert fingerprint(data) == before  # the earlier partition and this hour's done steps
    assert os.readlink(data / "latest") == EARLIER

    api.clear_faults()
    api.reset_log()
    rerun = run_luigi(api.url, data, *FAST)
    assert rerun.returncode == 0, rerun.output
    assert {path for path, _ in api.requests} == {"/carts"}  # only the failed step is redone
    assert comparable(part) == clean_after_earlier
    assert os.readlink(data / "latest") == PARTITION


def test_a_stalled_api_fails_the_run_after_one_endpoint_s_retry_budget(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    """Scaled-down proof of the stall bound: the first extract to give up opens the circuit."""
    api.add_fault("stall", times=None, seconds=60)
    data = tmp_path / "data"
    args = ("--api-read-timeout", "2", "--api-retries", "1", "--api-backoff-factor", "0.01")
    budget = 2 * 2.0 + 0.01  # (retries + 1) x read timeout + backoff, for ONE endpoint
    started = time.monotonic()
    result = run_luigi(api.url, data, *args)
    elapsed = time.monotonic() - started
    assert result.returncode == 30, result.output
    assert api.request_count == 2  # one endpoint's attempts; the other two made no request
    assert result.log.count("not attempted, circuit open: the API stopped answering") == 2
    assert "timed out (ReadTimeout) (gave up after 2 attempts)" in result.output
    assert elapsed >= budget  # the first extract really waited out its retries
    assert not list(data.rglob("*.jsonl")) and not (data / "latest").exists()


def test_with_default_settings_a_stalled_api_fails_the_run_within_two_minutes() -> None:
    """The documented calculation, with the settings a run really gets (the shipped luigi.cfg
    over the defaults, wherever either lives): one endpoint's retry budget.

    Measured once with these defaults against a server that never answers: exit 30 after 83 s
    (5 requests; docs/failures.md). The scaled-down test above shows the run costs one
    budget, not three.
    """
    probe = (
        "import json, luigi.interface; from pipeline.config import api; "
        "print(json.dumps([api().give_up_seconds(), luigi.interface.core().workers]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "LUIGI_CONFIG_PATH"}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    budget, workers = json.loads(out.stdout.splitlines()[-1])
    # 5 attempts x (5 s connect + 15 s read) + 0.5 + 1 + 2 + 4 s of backoff
    assert budget == 107.5
    assert budget + 10 < 120  # 10 s for luigi's start-up and the other extracts failing at once
    assert workers == 1


def test_a_5xx_on_one_endpoint_does_not_stop_the_others(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    """The breaker opens only when the API stops answering, not on one endpoint's errors."""
    api.add_fault("status", endpoint="carts", times=None, status=503)
    data = tmp_path / "data"
    result = run_luigi(api.url, data, *FAST)
    assert result.returncode == 30
    assert "circuit open" not in result.output
    assert (data / PARTITION / "cleaned/cleaned_users.csv").exists()
    assert (data / PARTITION / "cleaned/product_catalogue.csv").exists()
    assert not (data / PARTITION / "jsons/carts.jsonl").exists()


def test_forked_workers_share_the_breaker(api: DummyJSONServer, tmp_path: Path) -> None:
    """With --workers 2 two extracts stall side by side; the third sees their trip at once."""
    api.add_fault("stall", times=None, seconds=60)
    args = ("--workers", "2", "--api-read-timeout", "0.5", "--api-retries", "2",
            "--api-backoff-factor", "0.01")  # fmt: skip
    result = run_luigi(api.url, tmp_path / "data", *args)
    assert result.returncode == 30, result.output
    assert api.request_count == 2 * 3  # two endpoints' attempts, none from the third
    assert result.log.count("not attempted, circuit open") == 1
