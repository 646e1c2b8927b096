"""Scale out on luigi's own model: one luigid, three worker processes (each its own cwd, $TMPDIR
and luigi.cfg, standing in for three hosts) and an S3-compatible store (moto) as the data root.

The workers are started together on the same hour, as three hosts' timers fire. luigid is held
(paused) until all three have scheduled the hour, so the test does not depend on how fast each
process starts on a loaded machine; then every task runs exactly once, the extracts side by
side on different workers. A worker SIGKILLed mid-extract is replaced by another worker on a
later scheduling pass, and nothing half-written appears at a target key.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import FIXTURES, PARTITION, comparable, run_luigi
from tests.support.expected import CART_DETAILS, CATEGORY_SUMMARY, USER_SUMMARY
from tests.support.hosts import Host, Luigid, worker_env
from tests.support.s3 import ObjectStore, object_store

pytestmark = pytest.mark.slow

FAMILIES = [
    "CartDetails", "CategorySummary", "CleanCarts", "CleanProducts", "CleanUsers",
    "ExtractCarts", "ExtractProducts", "ExtractUsers", "HistoryHour", "HourReport", "Insights",
    "UserSummary",
]  # fmt: skip
EXTRACTS = ("ExtractCarts", "ExtractProducts", "ExtractUsers")
#: One record per page, one page at a time, 0.5 s per request: each extract takes 3-4 s.
SLOW = ("--api-page-size", "1", "--api-concurrency", "1")
RECORDS = {"carts": 6, "products": 8, "users": 6}
#: Exit codes of a worker whose part of the hour was run by others: 0, or luigi's
#: [retcode] already_running (a task still running elsewhere at its end) or not_run.
DONE_ELSEWHERE = {0, 10, 25}


@pytest.fixture
def store() -> Iterator[ObjectStore]:
    with object_store() as server:
        yield server


@pytest.fixture
def luigid(tmp_path: Path) -> Iterator[Luigid]:
    server = Luigid(tmp_path / "luigid")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    data = tmp_path / "local" / "data"
    data.parent.mkdir()
    with DummyJSONServer(Dataset.load(FIXTURES)) as api:
        assert run_luigi(api.url, data, *SLOW).returncode == 0  # same paging: same stats
    return data / PARTITION


def start_three(
    luigid: Luigid, store: ObjectStore, api: DummyJSONServer, tmp_path: Path, prefix: str
) -> list[Host]:
    """Three hosts' workers on one hour; luigid hands out work once all three have scheduled."""
    luigid.call("pause")
    hosts = [Host(tmp_path, f"host-{n}") for n in (1, 2, 3)]
    env = worker_env(store.url, api.url, store.root(prefix))
    for host in hosts:
        host.start(luigid.url, PARTITION, env, *SLOW)
    deadline = time.monotonic() + 120
    while len(luigid.call("worker_list")) < 3 or len(luigid.tasks("PENDING")) < len(FAMILIES):
        assert all(h.proc is not None and h.proc.poll() is None for h in hosts), [
            h.wait() and h.output for h in hosts
        ]
        assert time.monotonic() < deadline, "three workers did not schedule within 120 s"
        time.sleep(0.2)
    assert api.request_count == 0  # scheduled, nothing run yet
    luigid.call("unpause")
    return hosts


def metrics_of(host: Host) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (host.home / "logs" / "etl_pipeline.prom").read_text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labelled(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> dict:
    return {labels[0][1]: v for (n, labels), v in found.items() if n == name}


def assert_hour_published(store: ObjectStore, prefix: str, reference: Path, tmp: Path) -> None:
    assert store.read("latest", prefix) == f"{PARTITION}\n".encode()
    copy = store.download(tmp / f"copy-{prefix}", prefix)
    assert comparable(copy / PARTITION) == comparable(reference)  # every object whole
    assert (copy / PARTITION / "insights/user_summary.csv").read_text() == USER_SUMMARY
    assert (copy / PARTITION / "insights/category_summary.csv").read_text() == CATEGORY_SUMMARY
    assert (copy / PARTITION / "insights/cart_details.csv").read_text() == CART_DETAILS
    assert store.multipart_uploads() == []


def test_three_workers_one_luigid_run_every_task_once_extracts_side_by_side(
    luigid: Luigid, store: ObjectStore, api: DummyJSONServer, reference: Path, tmp_path: Path
) -> None:
    api.latency = 0.5
    hosts = start_three(luigid, store, api, tmp_path, "three")
    codes = [host.wait() for host in hosts]

    ran = {host.name: host.ran() for host in hosts}
    everything = sorted(family for families in ran.values() for family in families)
    assert everything == FAMILIES, ran  # each task ran once, on one of the hosts
    assert sorted(luigid.tasks("DONE")[t]["name"] for t in luigid.tasks("DONE")) == FAMILIES
    for status in ("PENDING", "RUNNING", "FAILED", "DISABLED"):
        assert luigid.tasks(status) == {}, status
    # luigi's summary counts what a worker scheduled but saw others run as run elsewhere
    # ([retcode] already_running) or not run (not_run): the hour is done all the same.
    for host, code in zip(hosts, codes, strict=True):
        assert code in DONE_ELSEWHERE, (host.name, code, host.output[-2000:])

    # Each host's metrics (plain luigi): the hour done, luigi's exit code, and the API requests
    # and tasks of that host alone (the stats files name the run that wrote them).
    hour = datetime.fromisoformat(f"{PARTITION}:00:00+00:00").timestamp()
    sent: dict[str, float] = dict.fromkeys(RECORDS, 0)
    timed: list[str] = []
    for host, code in zip(hosts, codes, strict=True):
        found = metrics_of(host)
        assert found[("etl_pipeline_last_run_success", ())] == 1, host.name
        assert found[("etl_pipeline_last_run_exit_code", ())] == code, host.name
        assert found[("etl_pipeline_run_hour_timestamp_seconds", ())] == hour
        requests = labelled(found, "etl_pipeline_api_requests")
        assert {e for e, n in requests.items() if n} == {
            f.removeprefix("Extract").lower() for f in ran[host.name] if f in EXTRACTS
        }, (host.name, requests)
        sent = {e: sent[e] + requests[e] for e in RECORDS}
        assert labelled(found, "etl_pipeline_records") == RECORDS
        timed += labelled(found, "etl_pipeline_task_duration_seconds")
    assert sent == RECORDS  # one record a page
    assert len(timed) == len(set(timed)) == len(FAMILIES) - 1  # Insights writes no stats

    # Every page of every endpoint was asked for exactly once.
    pages = [(path, query["skip"]) for path, query in api.requests]
    assert len(pages) == len(set(pages)) == sum(RECORDS.values())

    # The three extracts ran on three different hosts, at the same time.
    runners = {f: host.name for host in hosts for f in ran[host.name] if f in EXTRACTS}
    assert len(set(runners.values())) == 3, runners
    windows = api.windows()  # the API's clock: the pinned one stands still (pipeline.clock)
    assert max(s for s, _ in windows.values()) < min(f for _, f in windows.values()), windows

    assert_hour_published(store, "three", reference, tmp_path)


def test_a_worker_killed_mid_extract_is_replaced_and_nothing_half_written_appears(
    luigid: Luigid, store: ObjectStore, api: DummyJSONServer, reference: Path, tmp_path: Path
) -> None:
    api.latency = 0.5
    hosts = start_three(luigid, store, api, tmp_path, "killed")
    deadline = time.monotonic() + 60
    while not (running := luigid.tasks("RUNNING")) or api.request_count < 2:
        assert time.monotonic() < deadline, "no task started within 60 s"
        time.sleep(0.1)
    task = next(t for t in running.values() if t["name"] in EXTRACTS)
    pid = next(w["pid"] for w in luigid.call("worker_list") if w["name"] == task["worker_running"])
    (victim,) = [host for host in hosts if host.pid == pid]
    os.killpg(victim.pid, signal.SIGKILL)  # mid-extract: pages fetched, nothing uploaded yet
    assert victim.wait() == -signal.SIGKILL

    survivors = [host for host in hosts if host is not victim]
    codes = [host.wait() for host in survivors]
    ran = {host.name: host.ran() for host in survivors}
    everything = sorted(family for families in ran.values() for family in families)
    assert everything == FAMILIES, ran  # the killed task was run again, on another host
    assert task["name"] not in victim.ran()
    assert any("Insights" in families for families in ran.values())
    assert all(code in DONE_ELSEWHERE for code in codes), codes
    assert sorted(luigid.tasks("DONE")[t]["name"] for t in luigid.tasks("DONE")) == FAMILIES

    endpoint = task["name"].removeprefix("Extract").lower()
    pages = [(path, query["skip"]) for path, query in api.requests]
    for name, count in RECORDS.items():  # the killed extract's pages were asked again
        asked = [p for p in pages if p[0] == f"/{name}"]
        if name == endpoint:
            assert len(set(asked)) == count < len(asked)
        else:
            assert len(asked) == len(set(asked)) == count

    assert_hour_published(store, "killed", reference, tmp_path)
    # What the killed worker had fetched stayed in a staging file on its own disk (the next
    # run on that host sweeps it); it never reached the store.
    staged = [p.name for p in victim.tmp.iterdir()]
    assert len(staged) == 1 and staged[0].startswith(f"etl-stage-{victim.pid}-"), staged
    assert staged[0].endswith(f"-{endpoint}.jsonl")
