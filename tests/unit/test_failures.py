"""What the console says about a failure: the cause in one line and what to do."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from pipeline.api.errors import ApiError
from pipeline.config import ConfigError, ConfigExit
from pipeline.extract import ExtractError
from pipeline.failures import REPORT, Explanation, explain
from pipeline.rules.insights import ReconciliationError
from pipeline.rules.quality import QualityError

PART = Path("/srv/shop/2026-11-25T17")
DEMO = "`./run_pipeline.sh demo` (the whole pipeline offline, against a local demo API)"
RERUN = "rerun the hour: ./run_pipeline.sh --date-hour 2026-11-25T17"
URL = "https://dummyjson.com/carts?limit=1000&skip=0"


def api_error(message: str, **kwargs: object) -> ApiError:
    return ApiError(message, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "todo"),
    [
        (api_error(f"carts: GET {URL}: connection failed: the name dummyjson.com does not "
                   "resolve (gave up after 2 attempts)", retryable=True, cause="dns"),
         f"check the network and DNS (can this machine resolve dummyjson.com?); or try {DEMO}"),
        (api_error("carts: GET http://127.0.0.1:9/carts: connection failed: 127.0.0.1:9 refused "
                   "the connection", retryable=True, cause="refused"),
         "is the API running and listening at 127.0.0.1:9? Check PIPELINE_API_URL / [api] "
         f"base_url; or try {DEMO}"),
        (api_error("carts: GET http://[::1]:8000/carts: connection failed: [::1]:8000 refused "
                   "the connection", retryable=True, cause="refused"),
         "is the API running and listening at [::1]:8000? Check PIPELINE_API_URL / [api] "
         f"base_url; or try {DEMO}"),
        (api_error(f"carts: GET {URL}: timed out (ReadTimeout)", retryable=True, cause="timeout"),
         f"check the network and the API's status, then {RERUN}"),
        (api_error(f"carts: GET {URL}: HTTP 503 Service Unavailable: b''", status=503),
         f"the API is failing; {RERUN} once it is healthy"),
        (api_error(f"carts: GET {URL}: HTTP 429 Too Many Requests", status=429),
         f"the API keeps asking this host to slow down: lower [api] rate_limit_requests, then "
         f"{RERUN}"),
        (api_error(f"carts: GET {URL}: HTTP 404 Not Found (not retried): b''", status=404),
         "the API answered HTTP 404: check PIPELINE_API_URL / [api] base_url"),
        (api_error(f"carts: GET {URL}: TLS failed (CERTIFICATE_VERIFY_FAILED)", cause="tls"),
         "the API's certificate does not verify: never turn verification off; an internal CA "
         "goes in REQUESTS_CA_BUNDLE"),
    ],
    ids=["dns", "refused", "refused-ipv6", "timeout", "5xx", "429", "404", "tls"],
)  # fmt: skip
def test_an_api_failure_says_what_to_do_by_its_cause(exc: ApiError, todo: str) -> None:
    assert explain(exc, PART) == Explanation(str(exc), todo)


def test_an_extract_not_attempted_points_at_the_first_failure_only() -> None:
    exc = api_error(
        "users: not attempted, circuit open: the API stopped answering earlier in this run "
        f"(products: GET {URL}: connection failed: the name dummyjson.com does not resolve)",
        cause="circuit",
    )
    assert explain(exc, PART) == Explanation(
        "users: not attempted, circuit open: the API stopped answering earlier in this run", ""
    )


def test_data_and_setting_failures() -> None:
    contract = ExtractError("users record id=2: field 'age' = 'thirty' is not integer >= 0")
    assert explain(contract, PART) == Explanation(
        str(contract),
        f"{RERUN} (it takes a fresh snapshot); if it fails the same way the API changed: "
        "compare with pipeline/rules/contract.py",
    )
    quality = QualityError("check line_product_exists: 2 offending row(s), e.g. cart_id 2, 3")
    assert explain(quality, PART) == Explanation(
        str(quality),
        f"the offending rows are in {PART}/rejected/<check>.csv; to accept N of them: "
        "--quality-max-bad-rows '{\"<check>\": N}' or [quality] max_bad_rows",
    )
    sums = ReconciliationError("user_summary total_spent: 10.00 != 12.00 (tolerance 0.01)")
    assert explain(sums, PART).todo.startswith("the figures do not add up: a bug or inconsistent")
    assert explain(ConfigError("[api] base_url must be http(s)"), PART).cause == (
        "[api] base_url must be http(s)"
    )
    assert explain(ConfigExit("data root /srv is not a directory"), PART).cause == (
        "data root /srv is not a directory"
    )


@pytest.mark.parametrize(
    ("code", "todo"),
    [
        (errno.EACCES, "give this user write access to the data root, or point "
                       "PIPELINE_DATA_DIR elsewhere"),
        (errno.EROFS, "the data root is on a read-only filesystem: point PIPELINE_DATA_DIR "
                      "elsewhere"),
        (errno.ENOSPC, "free space on the data root's filesystem (or lower [housekeeping] "
                       "retention_hours)"),
    ],
)  # fmt: skip
def test_a_data_root_that_cannot_be_written(code: int, todo: str) -> None:
    exc = OSError(code, "reason", str(PART / "jsons"))
    assert explain(exc, PART) == Explanation(f"cannot write {PART}/jsons: reason", todo)


def test_anything_else_is_reported_as_unexpected() -> None:
    assert explain(KeyError("user_id"), PART) == Explanation("KeyError: 'user_id'", REPORT)
    assert explain(RuntimeError("first\nsecond"), None).cause == "RuntimeError: first"


def test_a_demo_says_how_to_run_the_demo_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its hour is in the demo's data root, from the demo's API: not `--date-hour H`'s."""
    monkeypatch.setenv("PIPELINE_RERUN_COMMAND", "./run_pipeline.sh demo out --workers 2")
    exc = api_error(f"carts: GET {URL}: timed out (ReadTimeout)", retryable=True, cause="timeout")
    assert explain(exc, PART).todo == (
        "check the network and the API's status, then rerun the hour: "
        "./run_pipeline.sh demo out --workers 2"
    )
