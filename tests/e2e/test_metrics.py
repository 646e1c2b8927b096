"""The metrics of real runs, read as Prometheus reads them, and the lineage those runs record.

A good run of the fixture hour, pushed to a stand-in Pushgateway on 127.0.0.1, then a failed
run of the next hour an hour later (the API is down): ``etl_pipeline.prom`` parsed with
prometheus_client's own parser after each. Then luigid with its prometheus collector
(config/luigid.cfg), started as ``./run_pipeline.sh luigid`` starts it, scraped after an hour ran
through it.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline import lineage
from pipeline.devtools.fakeapi import DummyJSONServer
from tests.support import LUIGI, NOW, PARTITION, REPO, fixture_records, pipeline_env

pytestmark = pytest.mark.slow

LATER = "2026-11-25T20:30:00+00:00"  # an hour after NOW, when the next hour fails
NEXT = "2026-11-25T18"
TASKS = {"extract_carts", "extract_products", "extract_users", "clean_users", "clean_products",
         "clean_carts", "user_summary", "category_summary", "cart_details", "history_hour",
         "hour_report"}  # fmt: skip
ENDPOINTS = ("carts", "products", "users")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> tuple[Samples, dict[str, str]]:
    """Every sample of a text exposition, and each family's type, by prometheus_client."""
    found: Samples = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, f"sample twice: {key}"
            found[key] = sample.value
    return found, types


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def by_label(found: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(k[1])[label]: v for k, v in found.items() if k[0] == name}


def stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class Gateway(http.server.BaseHTTPRequestHandler):
    """A Pushgateway's push API, recording what it is sent."""

    received: list[tuple[str, str, bytes]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (Gateway,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def run(data: Path, api_url: str, hour: str, *args: str, now: str = NOW) -> tuple[int, str, int]:
    """``python -m pipeline`` as a user runs it: exit code, console, pid."""
    env = pipeline_env(api_url, data, PIPELINE_NOW=now)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--date-hour", hour,
         "--lock-pid-dir", str(data.parent / "pids"), *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out, proc.pid


def test_a_good_run_then_a_failed_one(
    api: DummyJSONServer, tmp_path: Path, gateway: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    data = tmp_path / "data"
    prom = data / "logs" / "etl_pipeline.prom"
    url, pushed = gateway
    rc, out, pid = run(data, api.url, PARTITION, "--metrics-pushgateway-url", url)
    assert rc == 0, out

    text = prom.read_text()
    found, types = samples(text)
    served = fixture_records()
    manifest = orjson.loads((data / PARTITION / "manifest.json").read_bytes())
    assert value(found, "etl_pipeline_last_run_success") == 1
    assert value(found, "etl_pipeline_last_run_exit_code") == 0
    assert value(found, "etl_pipeline_last_success_timestamp_seconds") == stamp(NOW)
    assert value(found, "etl_pipeline_last_run_timestamp_seconds") == stamp(NOW)
    assert by_label(found, "etl_pipeline_runs_total", "result") == {
        "success": 1, "failed": 0, "interrupted": 0,
    }  # fmt: skip
    assert by_label(found, "etl_pipeline_records", "endpoint") == {
        e: len(served[e]) for e in ENDPOINTS
    }
    assert by_label(found, "etl_pipeline_api_requests", "endpoint") == dict.fromkeys(ENDPOINTS, 1)
    assert by_label(found, "etl_pipeline_api_retries", "endpoint") == dict.fromkeys(ENDPOINTS, 0)
    assert by_label(found, "etl_pipeline_api_throttled_responses", "endpoint") == dict.fromkeys(
        ENDPOINTS, 0
    )
    assert value(found, "etl_pipeline_hour_carts") == len(served["carts"])
    assert (
        value(found, "etl_pipeline_hour_revenue_dollars")
        == (manifest["reconciliation"]["line_total"])
    )
    assert set(by_label(found, "etl_pipeline_task_duration_seconds", "task")) == TASKS
    sizes: dict[str, int] = {}
    for path in (data / PARTITION).rglob("*"):
        rel = path.relative_to(data / PARTITION)
        if path.is_file() and not rel.parts[0].startswith("."):
            sizes[rel.parts[0]] = sizes.get(rel.parts[0], 0) + path.stat().st_size
    assert by_label(found, "etl_pipeline_hour_bytes", "folder") == sizes
    assert "etl_pipeline_rejected_rows" not in types  # the fixture shop is clean
    assert value(found, "etl_pipeline_newest_complete_hour_timestamp_seconds") == stamp(
        "2026-11-25T17:00:00+00:00"
    )
    assert value(found, "etl_pipeline_newest_complete_hour_age_seconds") == 2.5 * 3600
    assert value(found, "etl_pipeline_build_info", version=lineage.code_version()) == 1
    assert types["etl_pipeline_runs"] == "counter"  # the only counter; its samples end _total
    assert {t for n, t in types.items() if n != "etl_pipeline_runs"} == {"gauge"}
    assert prom.stat().st_mode & 0o777 == 0o644  # node_exporter's user reads it
    assert sorted(p.name for p in prom.parent.iterdir() if not p.name.startswith("run-")) == [
        "etl_pipeline.prom"
    ]  # no temporary file left beside it

    # The same samples pushed, to this host's group of job etl_pipeline, replacing it (PUT).
    ((method, path, body),) = pushed
    assert (method, path) == ("PUT", f"/metrics/job/etl_pipeline/instance/{socket.gethostname()}")
    assert samples(body.decode())[0] == found

    # Lineage: the run log's name is the run's id, in the manifest, the history and the report.
    (log,) = (data / "logs").glob(f"run-*-{pid}.log")
    run_id = log.name.removesuffix(".log")
    assert manifest["run_id"] == run_id
    assert manifest["code_version"] == lineage.code_version() != "unknown"
    history = pd.read_parquet(data / "history")
    assert set(history["run_id"]) == {run_id}
    line = (
        f"Run {run_id}, code {lineage.code_version()}, source {api.url} (a local server on this "
        "machine, e.g. the demo: not production data)."
    )
    assert line in (data / PARTITION / "report" / "findings.md").read_text().splitlines()
    assert (
        f'<p class="lineage">{line}</p>' in (data / PARTITION / "report" / "index.html").read_text()
    )

    # An hour later the API is down: the next hour fails; the last success is kept.
    rc, out, _ = run(data, refused_url(), NEXT, now=LATER)
    assert rc == 30, out
    failed = failed_an_hour_later(prom)
    # products: the first request and its two retries ([api] refused_retries); the circuit then
    # kept the other extracts from asking at all.
    assert by_label(failed, "etl_pipeline_api_requests", "endpoint") == {
        "carts": 0, "products": 3, "users": 0,
    }  # fmt: skip
    assert by_label(failed, "etl_pipeline_api_retries", "endpoint") == {
        "carts": 0, "products": 2, "users": 0,
    }  # fmt: skip
    assert by_label(failed, "etl_pipeline_records", "endpoint") == {}
    assert by_label(failed, "etl_pipeline_task_duration_seconds", "task") == {}
    assert value(failed, "etl_pipeline_run_hour_timestamp_seconds") == stamp(
        "2026-11-25T18:00:00+00:00"
    )
    assert value(failed, "etl_pipeline_newest_complete_hour_age_seconds") == 3.5 * 3600
    assert "warning" not in out  # no Pushgateway configured for this one: nothing pushed


def failed_an_hour_later(prom: Path) -> Samples:
    """The metrics of the run an hour after a good one, with the API down: a failure (exit 30)
    that keeps the good run's time as the last success."""
    failed, _ = samples(prom.read_text())
    assert value(failed, "etl_pipeline_last_run_success") == 0
    assert value(failed, "etl_pipeline_last_run_exit_code") == 30
    assert value(failed, "etl_pipeline_last_success_timestamp_seconds") == stamp(NOW)
    assert value(failed, "etl_pipeline_last_run_timestamp_seconds") == stamp(LATER)
    assert by_label(failed, "etl_pipeline_runs_total", "result") == {
        "success": 1, "failed": 1, "interrupted": 0,
    }  # fmt: skip
    return failed


# -- a plain luigi run -----------------------------------------------------------------------------


def plain(data: Path, api_url: str, *args: str, now: str = NOW) -> tuple[int, str]:
    """``luigi --module pipeline ...`` as a user runs it: exit code, console."""
    result = subprocess.run(
        [LUIGI, "--module", "pipeline", *args, "--local-scheduler",
         "--lock-pid-dir", str(data.parent / "pids")],
        cwd=REPO, env=pipeline_env(api_url, data, PIPELINE_NOW=now),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_plain_luigi_runs_write_the_metrics_too(api: DummyJSONServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    prom = data / "logs" / "etl_pipeline.prom"
    rc, out = plain(data, api.url, "Insights", "--date-hour", PARTITION)
    assert rc == 0, out
    found, _ = samples(prom.read_text())
    served = fixture_records()
    assert value(found, "etl_pipeline_last_run_success") == 1
    assert value(found, "etl_pipeline_last_run_exit_code") == 0
    assert value(found, "etl_pipeline_last_success_timestamp_seconds") == stamp(NOW)
    assert value(found, "etl_pipeline_last_run_timestamp_seconds") == stamp(NOW)
    assert by_label(found, "etl_pipeline_runs_total", "result") == {
        "success": 1, "failed": 0, "interrupted": 0,
    }  # fmt: skip
    assert value(found, "etl_pipeline_run_hour_timestamp_seconds") == stamp(
        "2026-11-25T17:00:00+00:00"
    )
    assert 0 < value(found, "etl_pipeline_run_duration_seconds") < 300
    assert by_label(found, "etl_pipeline_records", "endpoint") == {
        e: len(served[e]) for e in ENDPOINTS
    }
    assert by_label(found, "etl_pipeline_api_requests", "endpoint") == dict.fromkeys(ENDPOINTS, 1)
    assert set(by_label(found, "etl_pipeline_task_duration_seconds", "task")) == TASKS
    assert value(found, "etl_pipeline_hour_carts") == len(served["carts"])
    assert value(found, "etl_pipeline_newest_complete_hour_age_seconds") == 2.5 * 3600

    # The same hour again: complete, nothing claimed, so no run log and the file is untouched.
    before, logs = prom.read_bytes(), sorted((data / "logs").glob("run-*.log"))
    rc, out = plain(data, api.url, "Insights", "--date-hour", PARTITION)
    assert rc == 0, out
    assert prom.read_bytes() == before
    assert sorted((data / "logs").glob("run-*.log")) == logs

    # An hour later the API is down: exit 30 as luigi.cfg's [retcode] says; last success kept.
    rc, out = plain(data, refused_url(), "Insights", "--date-hour", NEXT, now=LATER)
    assert rc == 30, out
    failed = failed_an_hour_later(prom)
    assert value(failed, "etl_pipeline_run_hour_timestamp_seconds") == stamp(
        "2026-11-25T18:00:00+00:00"
    )
    assert by_label(failed, "etl_pipeline_api_requests", "endpoint") == {
        "carts": 0, "products": 3, "users": 0,
    }  # fmt: skip
    assert by_label(failed, "etl_pipeline_records", "endpoint") == {}

    # The API is back: a range run writes the two missing hours, 18 and 19; no single hour.
    rc, out = plain(
        data, api.url, "InsightsRange", "--start", NEXT, "--stop", "2026-11-25T20", now=LATER
    )
    assert rc == 0, out
    ranged, types = samples(prom.read_text())
    assert value(ranged, "etl_pipeline_last_run_success") == 1
    assert value(ranged, "etl_pipeline_last_run_exit_code") == 0
    assert value(ranged, "etl_pipeline_last_success_timestamp_seconds") == stamp(LATER)
    assert by_label(ranged, "etl_pipeline_runs_total", "result") == {
        "success": 2, "failed": 1, "interrupted": 0,
    }  # fmt: skip
    assert "etl_pipeline_run_hour_timestamp_seconds" not in types
    assert by_label(ranged, "etl_pipeline_api_requests", "endpoint") == dict.fromkeys(ENDPOINTS, 2)
    assert value(ranged, "etl_pipeline_newest_complete_hour_timestamp_seconds") == stamp(
        "2026-11-25T19:00:00+00:00"
    )


# -- luigid's own metrics -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
                return resp.read().decode()
        except OSError:
            assert time.monotonic() < deadline, "luigid did not answer"
            time.sleep(0.1)


FAMILIES = {"ExtractCarts", "ExtractProducts", "ExtractUsers", "CleanCarts", "CleanProducts",
            "CleanUsers", "UserSummary", "CategorySummary", "CartDetails", "HistoryHour",
            "HourReport", "Insights"}  # fmt: skip


def test_luigid_started_by_run_pipeline_sh_serves_luigis_task_metrics(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "LUIGI_"))}
    env["PIPELINE_NOW"] = NOW
    with (tmp_path / "luigid.out").open("w") as out:
        luigid = subprocess.Popen(
            [str(REPO / "run_pipeline.sh"), "luigid", "--port", str(port),
             "--state-path", str(tmp_path / "state.pickle")],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        before, _ = samples(scrape(url, time.monotonic() + 60))
        assert not [k for k in before if k[0].startswith("luigi_task")], before
        result = subprocess.run(
            [str(REPO / "run_pipeline.sh"), "--scheduler-url", url, "--date-hour", PARTITION],
            env={**env, "PIPELINE_API_URL": api.url, "PIPELINE_DATA_DIR": str(tmp_path / "data")},
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        found, types = samples(scrape(url, time.monotonic() + 30))
    finally:
        luigid.terminate()
        luigid.wait(timeout=30)
    assert types["luigi_task_done"] == "counter"
    assert by_label(found, "luigi_task_started_total", "family") == dict.fromkeys(FAMILIES, 1)
    assert by_label(found, "luigi_task_done_total", "family") == dict.fromkeys(FAMILIES, 1)
    assert by_label(found, "luigi_task_failed_total", "family") == {}
    times = by_label(found, "luigi_task_execution_time_seconds", "family")
    assert set(times) == FAMILIES and all(t >= 0 for t in times.values())
