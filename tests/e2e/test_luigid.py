"""A run through luigid (config/luigid.cfg) shows every task DONE, the extracts' progress, and a
dependency graph in which each task points only at what it reads.

Starts a real luigid on a free local port with a temporary state folder, runs the pipeline
through run_pipeline.sh against the in-process fake API, then asks luigid what it saw.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import REPO

STATE_PATH = "/var/lib/etl-pipeline/luigi-state.pickle"
NOT_DONE = ("PENDING", "RUNNING", "BATCH_RUNNING", "FAILED", "DISABLED", "UNKNOWN")

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Insights' dependency graph, as the visualiser draws it: (task, what it requires).
EDGES = {
    ("Insights", "HourReport"),
    ("HourReport", "UserSummary"), ("HourReport", "CategorySummary"), ("HourReport", "CartDetails"),
    ("HourReport", "HistoryHour"), ("HourReport", "CleanCarts"),
    ("HistoryHour", "UserSummary"), ("HistoryHour", "CategorySummary"),
    ("HistoryHour", "CartDetails"),
    ("UserSummary", "CleanCarts"), ("UserSummary", "CleanUsers"),
    ("CategorySummary", "CleanCarts"), ("CategorySummary", "CleanProducts"),
    ("CartDetails", "CleanCarts"), ("CartDetails", "CleanUsers"), ("CartDetails", "CleanProducts"),
    ("CleanCarts", "ExtractCarts"), ("CleanCarts", "CleanUsers"), ("CleanCarts", "CleanProducts"),
    ("CleanUsers", "ExtractUsers"),
    ("CleanProducts", "ExtractProducts"),
}  # fmt: skip


def api_call(url: str, method: str, **data: Any) -> Any:
    """One call of luigid's JSON API (what the visualiser itself asks)."""
    query = urllib.parse.quote(json.dumps(data))
    with urllib.request.urlopen(f"{url}/api/{method}?data={query}") as resp:
        return json.load(resp)["response"]


def task_list(url: str, status: str) -> dict[str, dict[str, Any]]:
    return api_call(url, "task_list", status=status, upstream_status="", search="")


class Luigid:
    """A luigid process on a free port, with its own config and state file."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = tmp_path / "state" / "luigi-state.pickle"
        self.state.parent.mkdir()
        config = (REPO / "config" / "luigid.cfg").read_text()
        assert STATE_PATH in config
        self.cfg = tmp_path / "luigid.cfg"
        self.cfg.write_text(config.replace(STATE_PATH, str(self.state)))
        self.cwd, self.log = tmp_path, tmp_path / "luigid.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "LUIGI_CONFIG_PATH": str(self.cfg)}
        with self.log.open("a") as out:  # cwd without luigi.cfg: only our config is read
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("luigid")), "--address", "127.0.0.1",
                 "--port", str(self.port)],
                cwd=self.cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                task_list(self.url, "DONE")
                return
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "luigid did not answer in 30 s"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


@pytest.fixture
def luigid(tmp_path: Path) -> Iterator[Luigid]:
    server = Luigid(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_pipeline_through_luigid(luigid: Luigid, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "LUIGI_"))}
    with DummyJSONServer(Dataset.load(REPO / "tests" / "fixtures" / "api")) as api:
        result = subprocess.run(
            [str(REPO / "run_pipeline.sh"), "--scheduler-url", luigid.url,
             "--date-hour", "2026-11-25T10"],
            env={**env, "PIPELINE_API_URL": api.url, "PIPELINE_DATA_DIR": str(tmp_path / "data")},
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "scheduler: central (from the command line)" in result.stderr

    done = task_list(luigid.url, "DONE")
    families = sorted(task["name"] for task in done.values())
    assert families == [
        "CartDetails", "CategorySummary", "CleanCarts", "CleanProducts", "CleanUsers",
        "ExtractCarts", "ExtractProducts", "ExtractUsers", "HistoryHour", "HourReport",
        "Insights", "UserSummary",
    ]  # fmt: skip
    for status in NOT_DONE:
        assert task_list(luigid.url, status) == {}, status
    assert all(task["params"]["date_hour"] == "2026-11-25T10" for task in done.values())

    extracts = [task for task in done.values() if task["name"].startswith("Extract")]
    assert extracts, families
    messages = sorted(task["status_message"] for task in extracts)
    assert messages == [
        "carts: 6/6 records, page 1/1",
        "products: 8/8 records, page 1/1",
        "users: 6/6 records, page 1/1",
    ]
    assert [task["progress_percentage"] for task in extracts] == [100, 100, 100]
    cleans = {
        t["name"]: t["status_message"] for t in done.values() if t["name"].startswith("Clean")
    }
    assert cleans == {
        "CleanCarts": "cleaned_carts.csv: 14 rows",
        "CleanProducts": "cleaned_products.csv: 3 rows",
        "CleanUsers": "cleaned_users.csv: 6 rows",
    }

    # The graph luigid draws for Insights: each node labelled by its family, one edge per
    # requirement, every task of the run in it.
    (root,) = [task_id for task_id, task in done.items() if task["name"] == "Insights"]
    graph = api_call(luigid.url, "dep_graph", task_id=root)
    assert set(graph) == set(done)
    edges = {(node["name"], graph[dep]["name"]) for node in graph.values() for dep in node["deps"]}
    assert edges == EDGES
    assert sum(len(node["deps"]) for node in graph.values()) == len(EDGES) == 21
    assert len(graph[root]["deps"]) == 1  # the report, which requires the rest

    # state_path from config/luigid.cfg: written on SIGTERM, read back at start.
    luigid.stop()
    assert luigid.state.is_file()
    luigid.start()
    assert set(task_list(luigid.url, "DONE")) == set(done)
    graph = api_call(luigid.url, "dep_graph", task_id=root)
    assert {(n["name"], graph[d]["name"]) for n in graph.values() for d in n["deps"]} == EDGES


def test_a_demo_is_watched_in_luigid(tmp_path: Path) -> None:
    """`demo --scheduler-url URL`, then `LUIGI_SCHEDULER_URL=URL demo` (which rebuilds the hour):
    both run through luigid, with luigi's options passed on.

    luigid ignores a worker's claim that a task it saw done less than [scheduler]
    stable_done_cooldown_secs (10 s) ago is pending again, so the rebuild right after the first
    demo would not be let run (exit 25): this luigid has no cooldown.
    """
    luigid = Luigid(tmp_path)
    luigid.cfg.write_text(
        luigid.cfg.read_text().replace(
            "[scheduler]\n", "[scheduler]\nstable_done_cooldown_secs = 0\n"
        )
    )
    assert "stable_done_cooldown_secs = 0" in luigid.cfg.read_text()
    luigid.start()
    try:
        check_demos(luigid, tmp_path)
    finally:
        luigid.stop()


def check_demos(luigid: Luigid, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "LUIGI_"))}
    env["PIPELINE_NOW"] = os.environ["PIPELINE_NOW"]  # the suite's clock: 2026-11-25T19:30Z
    demo = [str(REPO / "run_pipeline.sh"), "demo", str(tmp_path / "out"), "--date-hour",
            "2026-11-25T10", "--workers", "2"]  # fmt: skip
    runs = []
    for cmd, extra_env in (
        ([*demo, "--scheduler-url", luigid.url], {}),
        (demo, {"LUIGI_SCHEDULER_URL": luigid.url}),
    ):
        proc = subprocess.Popen(cmd, env={**env, **extra_env}, cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:] + err[-3000:]
        runs.append((proc.pid, err))
    assert "pipeline: scheduler: central (from the command line)\n" in runs[0][1]
    assert f"pipeline: scheduler: central {luigid.url} (LUIGI_SCHEDULER_URL)\n" in runs[1][1]
    assert "rebuilt and swapped in" in runs[1][1].splitlines()[-1]
    done = task_list(luigid.url, "DONE")
    assert len(done) == 12
    assert all(task["params"]["date_hour"] == "2026-11-25T10" for task in done.values())
    for status in NOT_DONE:
        assert task_list(luigid.url, status) == {}, status
    workers = {w["pid"] for w in api_call(luigid.url, "worker_list")}
    assert {pid for pid, _ in runs} <= workers  # each demo was a worker of this luigid
