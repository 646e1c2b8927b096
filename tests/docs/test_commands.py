"""Every command block of the user docs, run as written.

Each block of README.md and docs/ that a reader is told to type (``tests/docs/blocks.py``) is
written out again here, verbatim, with the test that runs it; the first test fails when the docs
and this file disagree, so a command cannot change in the docs without its test changing too.
Commands run through bash from the checkout, against a local API, a local S3-compatible server
and a local luigid. What stands for another machine (luigid's host name, a path under /srv) is
replaced by its local stand-in, and each replacement must still find its text. The environment a
block assumes but does not show (which API, where the data goes) is given as a user's shell
would have it. A few commands cannot run inside a test; ``NOT_RUN`` says which and why.
"""

from __future__ import annotations

import getpass
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from pipeline import clock
from pipeline.devtools.duckdb_sql import INSTALL
from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.docs.blocks import command_blocks, run_command, substitute, user_env
from tests.support import PARTITION, REPO, fixture_records, next_hour_records, run_luigi
from tests.support.expected import USER_SUMMARY
from tests.support.hosts import Luigid, free_port, luigid_call, wait_for_luigid
from tests.support.s3 import ObjectStore, object_store, s3_env

QUICKSTART = """\
./run_pipeline.sh          # bootstrap .venv on first use, then the pipeline for the current UTC hour
./run_pipeline.sh demo     # the same, offline: against a generated shop served on 127.0.0.1
./run_pipeline.sh test     # adds the test tools, then ruff, mypy and the whole test suite
"""  # noqa: E501

PLAIN_LUIGI = """\
.venv/bin/python -m pipeline --date-hour 2026-11-25T17                 # = ./run_pipeline.sh --date-hour …
.venv/bin/luigi --module pipeline Insights --local-scheduler           # the current UTC hour, same console
PIPELINE_API_URL=http://127.0.0.1:8000 PIPELINE_DATA_DIR=/srv/shop .venv/bin/python -m pipeline
"""  # noqa: E501

REPORT = """\
./run_pipeline.sh report                            # the summary of the newest complete hour again
./run_pipeline.sh report --date-hour 2026-11-25T17  # of another hour
"""

RERUN = """\
./run_pipeline.sh rerun --date-hour 2026-11-25T17                               # from scratch
./run_pipeline.sh rerun --date-hour 2026-11-25T17 --clean-min-product-price 25  # with other options
"""

HISTORY_QUERIES = """\
$ .venv/bin/python -c 'import pandas as pd; print(pd.read_parquet("data/history", filters=[("level", "==", "hour")])[["date_hour", "carts", "lines", "users", "units", "revenue", "revenue_discounted"]])'
       date_hour  carts  lines  users  units  revenue  revenue_discounted
0  2026-11-25T17      6     14      5     38  2163.64             1951.28
1  2026-11-25T18      6     15      4     42  2108.60             1909.06
$ .venv/bin/python -c "import duckdb; duckdb.sql(\\"SELECT date_hour, carts, lines, units, revenue FROM read_parquet('data/history/*/*.parquet', hive_partitioning = true) WHERE level = 'hour' ORDER BY date_hour\\").show()"
┌───────────────┬───────┬───────┬───────┬─────────┐
│   date_hour   │ carts │ lines │ units │ revenue │
│    varchar    │ int64 │ int64 │ int64 │ double  │
├───────────────┼───────┼───────┼───────┼─────────┤
│ 2026-11-25T17 │     6 │    14 │    38 │ 2163.64 │
│ 2026-11-25T18 │     6 │    15 │    42 │  2108.6 │
└───────────────┴───────┴───────┴───────┴─────────┘
"""  # noqa: E501

DEVELOPMENT = """\
./run_pipeline.sh test                 # ruff, mypy, then the whole suite (what CI runs: .ci/run)
./run_pipeline.sh test --fast          # the same without the slow end-to-end tests (-m "not slow"), < 30 s
./run_pipeline.sh test -k cli -x       # arguments go to pytest
"""  # noqa: E501

#: docs/performance.md: DuckDB for the benchmark's yardstick.
BENCH_INSTALL = """\
.venv/bin/pip install -c requirements-test.lock -e '.[bench]'
"""

#: docs/dependencies.md: refreshing the two locks.
LOCKS_REFRESH = """\
.venv/bin/pip install pip-tools
.venv/bin/pip-compile -U -o requirements.lock setup.cfg
.venv/bin/pip-compile -U --extra test -c requirements.lock -o requirements-test.lock setup.cfg
"""

BENCHMARK = """\
python -m pipeline.devtools.bench --only clean,hour,duckdb-sql,rerun \\
    --scales 100000,1000000,10000000 --runs 3 --json bench-data/results-scaling.json
"""

SYSTEMD_INSTALL = """\
sudo useradd --system --create-home --home-dir /srv/etl-pipeline etl  # or reuse an account
sudo -u etl git clone … /srv/etl-pipeline/app && cd /srv/etl-pipeline/app
sudo -u etl ./run_pipeline.sh test                            # bootstraps .venv, runs the suite
sudo install -d -o etl -g etl /srv/etl-pipeline/data          # must exist: the sandbox's only writable path
sudo ./run_pipeline.sh units /etc/systemd/system --user etl --data-dir /srv/etl-pipeline/data
#   add --with-luigid to run through the central scheduler (luigid.service, 127.0.0.1:8082)
sudo systemctl daemon-reload
sudo systemctl enable --now etl-pipeline.timer                # (+ luigid.service with --with-luigid)
"""  # noqa: E501

TRY_SHOP = """\
.venv/bin/python -m pipeline.devtools.demo_api --port 8000   # serving http://127.0.0.1:8000; Ctrl-C stops it
"""  # noqa: E501

TRY_COMMANDS = """\
export PIPELINE_API_URL=http://127.0.0.1:8000 PIPELINE_DATA_DIR=/tmp/shop-try
./run_pipeline.sh backfill --days 1   # the last 24 hours, oldest first, each compared with the one before
./run_pipeline.sh status              # OK: fresh, nothing missing since the first hour
./run_pipeline.sh report              # the newest hour's summary again
"""  # noqa: E501

BACKFILL = """\
./run_pipeline.sh backfill --days 3                                # the missing hours of the last 3 days
./run_pipeline.sh backfill --days 3 --newest-first --task-limit 6  # the 6 most recent gaps first
"""  # noqa: E501

STATUS = """\
./run_pipeline.sh status          # OK / WARNING / CRITICAL, exit 0 / 1 / 2 (3: UNKNOWN, see below)
./run_pipeline.sh status --json   # the same facts for a monitoring system
"""

LUIGID = """\
./run_pipeline.sh luigid                                 # http://127.0.0.1:8082; Ctrl-C stops it
./run_pipeline.sh --scheduler-url http://127.0.0.1:8082  # in another terminal: open the URL, watch
"""

SYSTEMD_WATCH = """\
systemctl list-timers etl-pipeline.timer      # last/next run
systemctl status etl-pipeline.service         # result and exit code of the last run
journalctl -u etl-pipeline -S today           # the console of each run: tasks, progress, causes
ls -l /srv/etl-pipeline/data/latest           # newest complete partition
"""

SCALE_OUT = """\
export PIPELINE_DATA_DIR=s3://shop-data/etl        # same on every host
export AWS_REGION=eu-west-1                        # credentials: instance role, AWS_PROFILE or
                                                   # AWS_ACCESS_KEY_ID/..; AWS_ENDPOINT_URL for
                                                   # MinIO & co; all boto3's standard settings
./run_pipeline.sh --scheduler-url http://luigid.internal:8082 --worker-keep-alive \\
    --api-rate-limit-requests 30                   # 90 / number of hosts (see below)
# a backfill: the range's missing hours, scheduled together, so hosts take different hours
.venv/bin/luigi --module pipeline InsightsRange \\
    --start 2026-11-25T00 --stop 2026-11-25T06 \\
    --scheduler-url http://luigid.internal:8082 --worker-keep-alive --api-rate-limit-requests 30
"""

METRICS_RUN = """\
./run_pipeline.sh --metrics-directory /var/lib/node_exporter/textfile_collector
"""

METRICS_FILE = """\
$ grep -E '^etl_pipeline_(last_run_success|records)' /var/lib/node_exporter/textfile_collector/etl_pipeline.prom
etl_pipeline_last_run_success 1
etl_pipeline_records{endpoint="carts"} 6
etl_pipeline_records{endpoint="products"} 8
etl_pipeline_records{endpoint="users"} 6
"""  # noqa: E501

HELP = (REPO / "tests/docs/help.txt").read_text()

#: Blocks run by a test of this module: block -> the test.
RUN = {
    QUICKSTART: "test_quickstart_and_status",
    STATUS: "test_quickstart_and_status",
    PLAIN_LUIGI: "test_plain_python_and_luigi_then_report_and_rerun",
    REPORT: "test_plain_python_and_luigi_then_report_and_rerun",
    RERUN: "test_plain_python_and_luigi_then_report_and_rerun",
    HISTORY_QUERIES: "test_history_queries_print_what_the_docs_show",
    HELP: "test_help_prints_what_the_docs_show",
    SYSTEMD_INSTALL: "test_systemd_recipe_as_far_as_a_test_can_go",
    SCALE_OUT: "test_scale_out_three_hosts_on_one_luigid_and_a_backfill",
    LUIGID: "test_watch_a_run_in_a_local_luigid",
    BACKFILL: "test_backfill_fills_the_gaps_only",
    TRY_SHOP: "test_every_command_offline_against_the_demo_shop",
    TRY_COMMANDS: "test_every_command_offline_against_the_demo_shop",
    METRICS_RUN: "test_a_runs_metrics_file_where_node_exporter_reads_it",
    METRICS_FILE: "test_a_runs_metrics_file_where_node_exporter_reads_it",
}
#: Commands no test here can run: (block, command) -> why. A block not in ``RUN`` has every
#: command here.
ROOT = "needs root and systemd as PID 1, which a test's sandbox has not"
NOT_RUN = {
    (QUICKSTART, "./run_pipeline.sh test"): "the suite itself: .ci/run runs it, as written",
    (DEVELOPMENT, "./run_pipeline.sh test"): "the suite itself: .ci/run runs it, as written",
    (DEVELOPMENT, "./run_pipeline.sh test --fast"): "the suite's fast half, from inside the suite",
    (DEVELOPMENT, "./run_pipeline.sh test -k cli -x"): "a part of the suite, from inside the suite",
    (BENCH_INSTALL, BENCH_INSTALL.strip()): "needs a package index; no test reaches the network",
    **{
        (LOCKS_REFRESH, command): "needs a package index; no test reaches the network"
        for command in LOCKS_REFRESH.splitlines()
    },
    (
        BENCHMARK,
        " ".join(BENCHMARK.replace("\\\n", " ").split()).replace("rerun ", "rerun      "),
    ): ("millions of carts for tens of minutes: a benchmark, never a test"),
    (SYSTEMD_INSTALL, "sudo useradd --system --create-home --home-dir /srv/etl-pipeline etl"): ROOT,
    (
        SYSTEMD_INSTALL,
        "sudo -u etl git clone … /srv/etl-pipeline/app && cd /srv/etl-pipeline/app",
    ): ("a clone of this repository's remote: no test reaches the network"),
    (SYSTEMD_INSTALL, "sudo -u etl ./run_pipeline.sh test"): "the suite itself (.ci/run)",
    (SYSTEMD_INSTALL, "sudo install -d -o etl -g etl /srv/etl-pipeline/data"): ROOT,
    (SYSTEMD_INSTALL, "sudo systemctl daemon-reload"): ROOT,
    (SYSTEMD_INSTALL, "sudo systemctl enable --now etl-pipeline.timer"): ROOT,
    (SYSTEMD_WATCH, "systemctl list-timers etl-pipeline.timer"): ROOT,
    (SYSTEMD_WATCH, "systemctl status etl-pipeline.service"): ROOT,
    (SYSTEMD_WATCH, "journalctl -u etl-pipeline -S today"): ROOT,
    (SYSTEMD_WATCH, "ls -l /srv/etl-pipeline/data/latest"): (
        "the service's data root; test_quickstart_and_status reads a run's own `latest`"
    ),
}


def test_every_command_block_of_the_docs_is_run_here_as_written() -> None:
    """The docs' blocks and this module's are the same texts, each run or said not to be."""
    found = {block.text: block.where for block in command_blocks()}
    known = set(RUN) | {block for block, _ in NOT_RUN}
    assert sorted(found.values()) == sorted(w for t, w in found.items() if t in known), (
        "a block of the docs that no test runs (add it to tests/docs/test_commands.py): "
        + ", ".join(w for t, w in found.items() if t not in known)
    )
    assert known <= set(found), "a block here that the docs no longer have"
    for block in known:
        said = {c for b, c in NOT_RUN if b == block}
        assert said <= set(commands(block)), said - set(commands(block))
        if block not in RUN:
            assert said == set(commands(block)), set(commands(block)) - said
    for name in RUN.values():
        assert callable(globals()[name]), name


def commands(block: str) -> list[str]:
    (found,) = [b for b in command_blocks() if b.text == block]
    return found.commands()


def transcript(block: str) -> list[tuple[str, str]]:
    (found,) = [b for b in command_blocks() if b.text == block]
    return found.transcript()


def runnable(block: str) -> list[str]:
    return [c for c in commands(block) if (block, c) not in NOT_RUN]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stderr


NOW_HOUR = f"{clock.current_hour():%Y-%m-%dT%H}"
#: The tasks of one hour, as luigid lists them.
FAMILIES = [
    "CartDetails", "CategorySummary", "CleanCarts", "CleanProducts", "CleanUsers",
    "ExtractCarts", "ExtractProducts", "ExtractUsers", "HistoryHour", "HourReport", "Insights",
    "UserSummary",
]  # fmt: skip


@pytest.mark.slow
def test_quickstart_and_status(api: DummyJSONServer, tmp_path: Path) -> None:
    """The first run, then `status` on its data root: fresh, and nothing missing (no hour before
    the first one was ever due)."""
    first, demo = runnable(QUICKSTART)
    data = tmp_path / "data"
    env = user_env(PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR=str(data))
    said = ok(run_command(first, env))
    assert said.splitlines()[-1] == (
        f"pipeline: done (exit 0): {NOW_HOUR} is complete; latest -> {NOW_HOUR}"
    )
    assert os.readlink(data / "latest") == NOW_HOUR
    human, machine = (run_command(c, env) for c in runnable(STATUS))
    assert (human.returncode, human.stdout.splitlines()[0]) == (0, (
        f"OK: newest complete hour {NOW_HOUR} (0 h old); 0 hour(s) missing and 0 failed since "
        f"{NOW_HOUR}, the first hour on record"
    ))  # fmt: skip
    facts = orjson.loads(machine.stdout)
    assert (machine.returncode, facts["status"], facts["newest_report"]) == (
        0, "OK", str(data / NOW_HOUR / "report" / "index.html"),
    )  # fmt: skip
    usage = run_command("./run_pipeline.sh status --days 367", env)  # through the wrapper too
    assert (usage.returncode, usage.stdout.splitlines()) == (3, [
        "UNKNOWN: usage: argument --days: 367 must be 1 to 366, as [monitoring] days "
        "(see python -m pipeline status --help)",
    ])  # fmt: skip
    demo_dir = REPO / "data-demo"  # the demo's folder: a developer's own is put aside meanwhile
    aside = tmp_path / "data-demo-aside"
    if demo_dir.exists():
        shutil.move(demo_dir, aside)
    try:
        result = run_command(demo, user_env())
        ok(result)
        assert f"Demo outputs (latest -> {NOW_HOUR}):" in result.stdout
        assert (demo_dir / "latest" / "insights" / "user_summary.csv").is_file()
    finally:
        shutil.rmtree(demo_dir, ignore_errors=True)
        if aside.exists():
            shutil.move(aside, demo_dir)


@pytest.mark.slow
def test_plain_python_and_luigi_then_report_and_rerun(api: DummyJSONServer, tmp_path: Path) -> None:
    by_hour, plain, elsewhere = runnable(PLAIN_LUIGI)
    data, srv = tmp_path / "data", tmp_path / "srv-shop"
    env = user_env(PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR=str(data))
    said = ok(run_command(by_hour, env))
    assert said.splitlines()[-1].startswith(f"pipeline: done (exit 0): {PARTITION} is complete")
    assert (data / PARTITION / "insights/user_summary.csv").read_text() == USER_SUMMARY
    shown = ok(run_command(plain, env))  # the same console: its log named, no luigi lines
    assert shown.startswith(f"pipeline: log file: {data}/logs/run-"), shown
    assert "luigi-interface" not in shown
    assert (data / NOW_HOUR / "manifest.json").is_file()
    assert os.readlink(data / "latest") == NOW_HOUR
    subs = {"http://127.0.0.1:8000": api.url, "/srv/shop": str(srv)}
    ok(run_command(substitute(elsewhere, subs), user_env()))
    manifest = orjson.loads((srv / NOW_HOUR / "manifest.json").read_bytes())
    assert manifest["source"] == api.url and os.readlink(srv / "latest") == NOW_HOUR

    newest, older = (run_command(c, env) for c in runnable(REPORT))  # runs nothing
    assert (newest.returncode, newest.stdout.splitlines()[0]) == (
        0, f"Snapshot {NOW_HOUR}: 6 carts, 14 lines, 6 users, 8 products",
    )  # fmt: skip
    assert (older.returncode, older.stdout.splitlines()[0]) == (
        0, f"Snapshot {PARTITION}: 6 carts, 14 lines, 6 users, 8 products",
    )  # fmt: skip
    for command, price in zip(runnable(RERUN), (50, 25), strict=True):
        said = ok(run_command(command, env)).splitlines()
        assert said[-1] == (
            f"pipeline: done (exit 0): {PARTITION} rebuilt and swapped in; latest -> {NOW_HOUR}"
        )
        manifest = orjson.loads((data / PARTITION / "manifest.json").read_bytes())
        assert manifest["min_product_price"] == price
    assert not list(data.glob(".*rerun*"))  # no staging left behind


def test_help_prints_what_the_docs_show() -> None:
    for command, shown in transcript(HELP):
        result = run_command(command, user_env(COLUMNS="80"))
        assert (result.returncode, result.stdout + result.stderr) == (0, shown), command


def test_the_yardstick_install_is_the_one_the_benchmark_prints() -> None:
    """docs/performance.md gives the command the benchmark and the DuckDB script print."""
    assert f"Install it with: {BENCH_INSTALL.strip()} (" in INSTALL


@pytest.mark.slow
def test_history_queries_print_what_the_docs_show(tmp_path: Path) -> None:
    """From a folder standing in for the checkout: its data/ holds the fixture hour and the
    next, as the example shows, and .venv is the checkout's."""
    data = tmp_path / "data"
    for hour, records in ((PARTITION, fixture_records()), ("2026-11-25T18", next_hour_records())):
        with DummyJSONServer(Dataset.from_records(records)) as server:
            assert run_luigi(server.url, data, date_hour=hour).returncode == 0
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    for command, shown in transcript(HISTORY_QUERIES):
        result = run_command(command, user_env(), cwd=tmp_path)
        printed = result.stdout.rstrip("\n") + "\n"  # a transcript shows no trailing blank line
        assert (result.returncode, printed) == (0, shown), result.stderr[-2000:]


def test_ci_runs_the_docs_test_command_as_written() -> None:
    """What the NOT_RUN entries of ``./run_pipeline.sh test`` rely on: .ci/run ends in it."""
    assert (REPO / ".ci/run").read_text().splitlines()[-1] == 'exec ./run_pipeline.sh test "$@"'


@pytest.mark.slow
def test_systemd_recipe_as_far_as_a_test_can_go(tmp_path: Path) -> None:
    """The units are rendered as the recipe says, for this user, into a folder standing in for
    /etc/systemd/system; the rest of the recipe needs root and systemd as PID 1."""
    units = [c for c in runnable(SYSTEMD_INSTALL) if " units " in c]
    assert units == [
        "sudo ./run_pipeline.sh units /etc/systemd/system --user etl --data-dir "
        "/srv/etl-pipeline/data"
    ]
    dest, data = tmp_path / "system", tmp_path / "srv-data"
    data.mkdir()
    here = {"sudo ./": "./", "/etc/systemd/system": str(dest), "/srv/etl-pipeline/data": str(data)}
    command = substitute(units[0], {**here, "--user etl": f"--user {getpass.getuser()}"})
    ok(run_command(command, user_env()))
    service = (dest / "etl-pipeline.service").read_text()
    assert f"ReadWritePaths={data}" in service and f"WorkingDirectory={REPO}" in service
    assert (dest / "etl-pipeline.timer").is_file()


@pytest.mark.slow
def test_backfill_fills_the_gaps_only(api: DummyJSONServer, tmp_path: Path) -> None:
    """Three days whose hours are all there but two: the first command builds those two (three
    requests each, one page per endpoint), the second finds nothing left to do."""
    every, newest = runnable(BACKFILL)
    data = tmp_path / "data"
    env = user_env(PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR=str(data))
    ok(run_command(f"./run_pipeline.sh --date-hour {NOW_HOUR}", env))
    gaps = ["2026-11-23T05", "2026-11-25T11"]
    for i in range(1, 72):  # copies of the real hour
        name = f"{clock.current_hour() - timedelta(hours=i):%Y-%m-%dT%H}"
        if name not in gaps:
            shutil.copytree(data / NOW_HOUR, data / name, symlinks=True)
    api.reset_log()
    said = ok(run_command(every, env)).splitlines()
    assert said[0] == (
        f"pipeline: backfill 2026-11-22T20..{NOW_HOUR}: 2 hour(s) missing (2026-11-23T05, "
        "2026-11-25T11); 2 in this run, oldest first"
    )
    assert said[-1] == "pipeline: done (exit 0): 2 hour(s) built; none missing"
    assert api.request_count == 6 and all((data / g / "manifest.json").is_file() for g in gaps)
    assert ok(run_command(newest, env)).splitlines()[-1] == (
        f"pipeline: nothing to do (exit 0): every hour of 2026-11-22T20..{NOW_HOUR} is complete"
    )
    assert api.request_count == 6


@pytest.mark.slow
def test_a_runs_metrics_file_where_node_exporter_reads_it(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    """docs/metrics.md: a run with --metrics-directory, then its file grepped, printing what
    the page shows (the folder is a stand-in for node_exporter's)."""
    here = {"/var/lib/node_exporter/textfile_collector": str(tmp_path / "textfiles")}
    env = user_env(PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR=str(tmp_path / "data"))
    (run,) = runnable(METRICS_RUN)
    ok(run_command(substitute(run, here), env))
    ((grep, shown),) = transcript(METRICS_FILE)
    result = run_command(substitute(grep, here), env)
    assert (result.returncode, result.stdout) == (0, shown)
    assert not (tmp_path / "data" / "logs" / "etl_pipeline.prom").exists()


@pytest.mark.slow
def test_watch_a_run_in_a_local_luigid(api: DummyJSONServer, tmp_path: Path) -> None:
    """luigid started as the docs say (on a free port: 8082 may be taken here) shows the run of
    the second command: every task of the hour DONE; Ctrl-C (SIGINT) stops it."""
    start, run = runnable(LUIGID)
    port = str(free_port())
    url = f"http://127.0.0.1:{port}"
    state = tmp_path / "state.pickle"
    server = subprocess.Popen(
        ["bash", "-c", f"exec {substitute(start, {'luigid': f'luigid --port {port}'})} "
         f"--state-path {state}"],
        cwd=REPO, env=user_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        said = [server.stdout.readline() for _ in range(3)]
        first = f"pipeline: luigid at {url} (the visualiser: open it in a browser); Ctrl-C stops it"
        assert said[0] == first + "\n", said
        wait_for_luigid(url, server)
        env = user_env(PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR=str(tmp_path / "data"))
        ok(run_command(substitute(run, {"http://127.0.0.1:8082": url}), env))
        done = luigid_call(url, "task_list", status="DONE", upstream_status="", search="")
        assert sorted(t["name"] for t in done.values()) == sorted(FAMILIES)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)


@pytest.mark.slow
def test_every_command_offline_against_the_demo_shop(tmp_path: Path) -> None:
    """The shop in one 'terminal' (on a free port: 8000 may be taken here), the commands in
    another: a day backfilled oldest first, then status and report on it."""
    (serve,) = runnable(TRY_SHOP)
    export, *rest = runnable(TRY_COMMANDS)
    port = str(free_port())
    shop = subprocess.Popen(["bash", "-c", f"exec {substitute(serve, {'8000': port})}"],
                            cwd=REPO, env=user_env(), stdout=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        assert shop.stdout is not None
        assert select.select([shop.stdout], [], [], 120)[0], "the shop said nothing in 120 s"
        assert shop.stdout.readline() == f"serving http://127.0.0.1:{port}\n"
        export = substitute(export, {"8000": port, "/tmp/shop-try": str(tmp_path / "try")})
        backfill, status, report = (run_command(f"{export}; {c}", user_env()) for c in rest)
    finally:
        os.killpg(shop.pid, signal.SIGINT)  # Ctrl-C
        stopped = shop.wait(timeout=30)
    assert stopped == 0
    first = f"{clock.current_hour() - timedelta(hours=23):%Y-%m-%dT%H}"
    assert (
        ok(backfill).splitlines()[-1] == "pipeline: done (exit 0): 24 hour(s) built; none missing"
    )
    changes = [line for line in backfill.stdout.splitlines() if line.startswith("Change")]
    assert changes[0] == "Change: no earlier complete snapshot to compare with"
    assert changes[1:] == [
        f"Change since {clock.current_hour() - timedelta(hours=h):%Y-%m-%dT%H}: carts +0, "
        "revenue +$0.00 (+0.0%)"
        for h in range(23, 0, -1)
    ]
    assert (status.returncode, status.stdout.splitlines()[0]) == (0, (
        f"OK: newest complete hour {NOW_HOUR} (0 h old); 0 hour(s) missing and 0 failed since "
        f"{first}, the first hour on record"
    ))  # fmt: skip
    assert ok(report) == ""
    assert report.stdout.splitlines()[0] == (
        f"Snapshot {NOW_HOUR}: 60 carts, 185 lines, 40 users, 30 products"
    )


@pytest.fixture
def store() -> Iterator[ObjectStore]:
    with object_store() as server:
        yield server


@pytest.mark.slow
def test_scale_out_three_hosts_on_one_luigid_and_a_backfill(
    api: DummyJSONServer, store: ObjectStore, tmp_path: Path
) -> None:
    """The block, run by three 'hosts' at once (each its own $TMPDIR and run logs, as on three
    machines) against one luigid and one bucket, command by command: the current hour and six
    backfilled hours are published, each page fetched once. luigi ends a worker that left tasks
    to the others with 10 or 25; ``python -m pipeline`` says 0 once the hour is complete, so the
    host that finishes the hour exits 0 (all three did 10 or 25 before)."""
    luigid = Luigid(tmp_path / "luigid")
    results: dict[str, list[subprocess.CompletedProcess[str]]] = {}
    try:
        *exports, run, backfill = runnable(SCALE_OUT)
        assert [c.split()[0] for c in exports] == ["export", "export"]
        run, backfill = (substitute(c, {"http://luigid.internal:8082": luigid.url})
                         for c in (run, backfill))  # fmt: skip

        def host(name: str) -> None:
            home = tmp_path / name
            (home / "tmp").mkdir(parents=True)
            env = s3_env(store.url, PIPELINE_API_URL=api.url, TMPDIR=str(home / "tmp"),
                         PIPELINE_LOG_DIR=str(home / "logs"),
                         PIPELINE_NOW=os.environ["PIPELINE_NOW"])  # fmt: skip
            results[name] = [
                run_command("; ".join([*exports, c]), env, timeout=600) for c in (run, backfill)
            ]

        threads = [threading.Thread(target=host, args=(f"host-{n}",)) for n in (1, 2, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        luigid.stop()
    for name, (hour, past) in results.items():
        assert hour.returncode in (0, 10, 25), (name, hour.stderr[-3000:])
        assert past.returncode in (0, 10, 25), (name, past.stderr[-3000:])
    done = [r.stderr.splitlines()[-1] for r, _ in results.values() if r.returncode == 0]
    assert done and all(
        line.startswith(f"pipeline: done (exit 0): {NOW_HOUR} is complete") for line in done
    ), [r.stderr[-500:] for r, _ in results.values()]
    hours = [f"2026-11-25T{h:02d}" for h in range(6)] + [NOW_HOUR]
    keys = store.keys()
    assert [h for h in hours if f"{h}/manifest.json" in keys] == hours
    assert store.read("latest") == f"{NOW_HOUR}\n".encode()
    pages = [path for path, _ in api.requests]
    # One page per endpoint per hour, fetched once: the requests carry no hour, so count them.
    assert sorted(pages) == sorted(["/carts", "/products", "/users"] * len(hours))
