"""The whole pipeline with an object store as the data root: a real S3-compatible server (moto)
on 127.0.0.1, reached by boto3 over HTTP as AWS would be; nothing is mocked.

Outputs are byte-identical to a local run, a rerun makes no request, two runs of one hour on two
hosts never both write it, a store answering 503 SlowDown is waited out, and an unreachable or
failing store ends the run non-zero with nothing published. A data root of any other scheme is
refused at once.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pandas as pd
import pytest

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from pipeline.storage import lease
from tests.support import (
    FIXTURES,
    PARTITION,
    REPO,
    comparable,
    luigi_command,
    pipeline_env,
    run_luigi,
)
from tests.support.expected import CART_DETAILS, CATEGORY_SUMMARY, USER_SUMMARY
from tests.support.s3 import BUCKET, FaultyProxy, ObjectStore, Request, object_store, s3_env

pytestmark = pytest.mark.slow

SCRIPT = REPO / "run_pipeline.sh"
SCHEDULING_ERROR = 35
CONFIG_ERROR = 78  # python -m pipeline's exit for unusable settings (sysexits EX_CONFIG)
TASK_FAILED = 30
ALREADY_RUNNING = 10
#: Every object of a complete partition on the store (the claim object included).
PARTITION_KEYS = [
    f"{PARTITION}/{name}"
    for name in (
        ".lock", "_exact/cart_lines.arrow", "_exact/users.arrow",
        "_stats/CartDetails.json", "_stats/CategorySummary.json", "_stats/CleanCarts.json",
        "_stats/CleanProducts.json", "_stats/CleanUsers.json", "_stats/Extract-carts.json",
        "_stats/Extract-products.json", "_stats/Extract-users.json", "_stats/HistoryHour.json",
        "_stats/HourReport.json", "_stats/UserSummary.json",
        "cleaned/cleaned_carts.csv", "cleaned/cleaned_products.csv", "cleaned/cleaned_users.csv",
        "cleaned/product_catalogue.csv", "insights/cart_details.csv",
        "insights/category_summary.csv", "insights/user_summary.csv", "jsons/carts.jsonl",
        "jsons/products.jsonl", "jsons/users.jsonl", "manifest.json",
        "report/findings.md", "report/index.html",
    )
]  # fmt: skip
#: The hour's history rows, beside the partitions (outside the partition's prefix).
HISTORY_KEY = f"history/date_hour={PARTITION}/part-0.parquet"


@pytest.fixture(scope="module")
def store() -> Iterator[ObjectStore]:
    with object_store() as server:
        yield server


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The partition a local run writes from the fixtures: what the store must hold."""
    data = tmp_path_factory.mktemp("local") / "data"
    with DummyJSONServer(Dataset.load(FIXTURES)) as api:
        result = run_luigi(api.url, data)
    assert result.returncode == 0, result.output
    return data / PARTITION


def run_s3(
    api_url: str, endpoint: str, root: str, tmp: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``luigi --module pipeline Insights --local-scheduler`` with an s3:// data root."""
    return subprocess.run(
        luigi_command(PARTITION, tmp / "pids", *args),
        cwd=REPO,
        env=s3_env(
            endpoint,
            PIPELINE_API_URL=api_url,
            PIPELINE_DATA_DIR=root,
            PIPELINE_LOG_DIR=str(tmp / "logs"),
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("gs://shop/etl", "data root 'gs://shop/etl': unsupported scheme 'gs://'; use a local "
         "path or s3://bucket/prefix"),
        ("hdfs://namenode/etl", "data root 'hdfs://namenode/etl': unsupported scheme 'hdfs://'; "
         "use a local path or s3://bucket/prefix"),
        ("s3://Shop_Data/etl", "data root 's3://Shop_Data/etl': 'Shop_Data' is not a valid S3 "
         "bucket name"),
    ],
)  # fmt: skip
def test_a_data_root_of_another_scheme_is_refused_at_once(
    root: str, message: str, api: DummyJSONServer, tmp_path: Path
) -> None:
    before = sorted(p.name for p in REPO.iterdir())
    env = {**pipeline_env(api.url, tmp_path), "PIPELINE_DATA_DIR": root}  # not via Path()
    result = run_luigi(api.url, tmp_path / "data", env=env)
    assert result.returncode == SCHEDULING_ERROR, result.output
    assert result.output == f"ERROR: PIPELINE_DATA_DIR: {message}\n"  # that, and nothing else
    assert api.request_count == 0
    assert sorted(p.name for p in REPO.iterdir()) == before  # no folder named 'gs:'

    # The same through run_pipeline.sh, which once turned it into "$PWD/gs://...".
    script = subprocess.run(
        [str(REPO / "run_pipeline.sh"), "--date-hour", PARTITION, "--local-scheduler",
         "--lock-pid-dir", str(tmp_path / "pids")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # python -m pipeline checks every setting before luigi starts: one more unusable setting.
    assert script.returncode == CONFIG_ERROR, script.stderr
    assert f"  PIPELINE_DATA_DIR: {message} (from environment PIPELINE_DATA_DIR)\n" in script.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # refused before even a run log
    assert sorted(p.name for p in REPO.iterdir()) == before


def test_an_s3_root_holds_what_local_disk_holds_and_a_rerun_asks_nothing(
    api: DummyJSONServer, store: ObjectStore, reference: Path, tmp_path: Path
) -> None:
    root = store.root("byte-identical")
    result = run_s3(api.url, store.url, root, tmp_path)
    assert result.returncode == 0, output(result)
    assert f"latest -> {PARTITION}" in output(result)
    assert store.keys("byte-identical") == [*PARTITION_KEYS, HISTORY_KEY, "latest"]
    assert store.read("latest", "byte-identical") == f"{PARTITION}\n".encode()
    copy = store.download(tmp_path / "copy", "byte-identical")
    assert comparable(copy / PARTITION) == comparable(reference)  # every CSV/JSONL/report byte
    # The same rows, each naming the run that wrote it (lineage): the one of its manifest.
    stored, local = (
        pd.read_parquet(copy / HISTORY_KEY),
        pd.read_parquet(reference.parent / HISTORY_KEY),
    )
    run_id = orjson.loads((copy / PARTITION / "manifest.json").read_bytes())["run_id"]
    assert set(stored.pop("run_id")) == {run_id} != set(local.pop("run_id"))
    pd.testing.assert_frame_equal(stored, local)
    assert (copy / PARTITION / "insights/user_summary.csv").read_text() == USER_SUMMARY
    summary = output(result)
    assert f"Report: {root}/{PARTITION}/report/index.html\n" in summary
    assert f"Latest: {root}/latest -> {PARTITION}\n" in summary
    assert not list(Path(tmp_path).rglob("etl-stage-*"))

    objects = store.etags("byte-identical")
    api.reset_log()
    again = run_s3(api.url, store.url, root, tmp_path)
    assert again.returncode == 0, output(again)
    assert "complete ones were encountered" in output(again)
    assert api.request_count == 0
    assert store.etags("byte-identical") == objects  # nothing rewritten, not even the claim


def test_two_hosts_starting_one_hour_one_writes_it_the_other_exits_10(
    api: DummyJSONServer, store: ObjectStore, tmp_path: Path
) -> None:
    """Two hosts' timers without a common luigid: the claim object decides."""
    api.latency = 0.5
    root = store.root("two-hosts")
    runs = []
    for host in ("host-a", "host-b"):
        home = tmp_path / host
        (home / "tmp").mkdir(parents=True)
        env = s3_env(store.url, PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR=root)
        env.update(TMPDIR=str(home / "tmp"), PIPELINE_LOG_DIR=str(home / "logs"))
        runs.append(
            subprocess.Popen(
                luigi_command(PARTITION, home / "pids", "--api-page-size", "2"),
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outs = [run.communicate(timeout=300)[0] for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes == [0, ALREADY_RUNNING], outs
    loser = outs[0] if runs[0].returncode else outs[1]
    assert f"partition {PARTITION} is being written by another run (" in loser
    assert "this run leaves it alone" in loser and "Informed scheduler" not in loser
    pages = [(path, query["skip"]) for path, query in api.requests]
    assert len(pages) == len(set(pages)) == 3 + 4 + 3  # every page fetched once
    assert store.read("latest", "two-hosts") == f"{PARTITION}\n".encode()
    assert (
        store.read(f"{PARTITION}/insights/cart_details.csv", "two-hosts") == CART_DETAILS.encode()
    )


def test_a_store_answering_503_slowdown_is_waited_out_with_the_same_outputs(
    api: DummyJSONServer, store: ObjectStore, reference: Path, tmp_path: Path
) -> None:
    proxy = FaultyProxy(store.url)
    try:
        proxy.slowdown(every=2, count=40)  # every other request of the first 40: 503 SlowDown
        result = run_s3(api.url, proxy.url, store.root("slowdown"), tmp_path)
    finally:
        proxy.stop()
    assert result.returncode == 0, output(result)
    assert proxy.refused == 20 and proxy.seen > 40
    copy = store.download(tmp_path / "copy", "slowdown")
    assert comparable(copy / PARTITION) == comparable(reference)
    assert store.read("latest", "slowdown") == f"{PARTITION}\n".encode()


def test_an_unreachable_store_ends_the_run_at_once_with_one_message(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    result = run_s3(
        api.url, "http://127.0.0.1:9", "s3://shop-data/etl", tmp_path, "--storage-retries", "1"
    )
    assert result.returncode == SCHEDULING_ERROR, output(result)
    assert (
        f"ERROR: HEAD s3://shop-data/etl/{PARTITION}/manifest.json: object store "
        "http://127.0.0.1:9 unreachable (2 attempts): Could not connect to the endpoint URL"
    ) in output(result)
    assert "Traceback" not in output(result)
    assert api.request_count == 0

    # The same through run_pipeline.sh, for run and rerun: two lines, at once (its own
    # --storage-retries applies to the CLI's first look too), no run log, exit 35.
    env = s3_env(
        "http://127.0.0.1:9",
        PIPELINE_API_URL=api.url,
        PIPELINE_DATA_DIR="s3://shop-data/etl",
        PIPELINE_LOG_DIR=str(tmp_path / "logs"),
    )
    for command, request, what in (
        ([], "HEAD", f"{PARTITION}/.swapping"),  # its first look: was a swap cut short?
        (["rerun"], "LIST", PARTITION),
    ):  # fmt: skip
        cli = subprocess.run(
            [str(SCRIPT), *command, "--date-hour", PARTITION, "--storage-retries", "1"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert cli.returncode == SCHEDULING_ERROR, cli.stderr
        said = cli.stderr.splitlines()
        assert said[0].startswith(
            f"pipeline: error: {request} s3://shop-data/etl/{what}: object store "
            "http://127.0.0.1:9 unreachable (2 attempts): Could not connect to the endpoint URL"
        )
        assert said[1:] == [
            "pipeline: failed (exit 35): the data root cannot be used now; nothing was written"
        ]
    assert not (tmp_path / "logs").exists()


def test_a_store_failing_mid_run_leaves_nothing_published_and_no_partial_object(
    api: DummyJSONServer, store: ObjectStore, reference: Path, tmp_path: Path
) -> None:
    proxy = FaultyProxy(store.url)
    try:
        proxy.drop_after(30)  # past scheduling, into the extracts and cleans: then silence
        result = run_s3(
            api.url, proxy.url, store.root("dropped"), tmp_path,
            "--storage-retries", "1", "--storage-lease-seconds", "2",
        )  # fmt: skip
    finally:
        proxy.stop()
    assert result.returncode == TASK_FAILED, output(result)
    assert "unreachable (2 attempts)" in output(result)
    keys = store.keys("dropped")
    assert "latest" not in keys and f"{PARTITION}/manifest.json" not in keys
    written = [k for k in keys if not k.endswith(".lock")]
    assert written  # the run got somewhere before the store went away
    for key in written:  # and each object it left is whole, as a local run writes it
        rel = key.removeprefix(f"{PARTITION}/")
        if not rel.endswith(".json"):
            assert store.read(key, "dropped") == (reference / rel).read_bytes(), key

    # The run could not release its claim (the store was gone): it lapses after its lease,
    # and then a rerun finishes the hour.
    time.sleep(2.5)
    resumed = run_s3(api.url, store.url, store.root("dropped"), tmp_path)
    assert resumed.returncode == 0, output(resumed)
    assert store.read("insights/category_summary.csv", f"dropped/{PARTITION}") == (
        CATEGORY_SUMMARY.encode()
    )


def test_a_failed_run_frees_its_hour_at_once_and_the_rerun_resumes(
    api: DummyJSONServer, store: ObjectStore, tmp_path: Path
) -> None:
    api.add_fault("status", endpoint="carts", times=None, status=503)
    failed = run_s3(
        api.url, store.url, store.root("resume"), tmp_path,
        "--api-retries", "1", "--api-backoff-factor", "0.01",
    )  # fmt: skip
    assert failed.returncode == TASK_FAILED, output(failed)
    keys = store.keys("resume")
    assert f"{PARTITION}/jsons/users.jsonl" in keys and f"{PARTITION}/jsons/carts.jsonl" not in keys
    assert "latest" not in keys

    api.clear_faults()
    api.reset_log()
    resumed = run_s3(api.url, store.url, store.root("resume"), tmp_path)  # no wait: released
    assert resumed.returncode == 0, output(resumed)
    assert [path for path, _ in api.requests] == ["/carts"]  # only the missing extract
    assert store.read(f"{PARTITION}/insights/user_summary.csv", "resume") == USER_SUMMARY.encode()


# -- the documented commands on an s3:// root: run, report, prune, rerun -----------------------

WRITES = ("PUT", "COPY", "COMPLETE_MPU", "DELETE", "DELETE_MANY")
PYTHON_M = (sys.executable, "-m", "pipeline")


def changes(requests: list[Request], prefix: str) -> list[tuple[str, str]]:
    """(operation, key) of every request that changed an object under ``prefix``, in the order
    the store answered them; the hour's claim (renewed at any time) left out. A DELETE_MANY
    counts as one change per key, in the request's order."""
    found = []
    for req in requests:
        if req.op not in WRITES:
            continue
        for key in req.keys or (req.key,):
            if key.startswith(prefix) and not key.endswith("/.lock"):
                found.append((req.op, key.removeprefix(prefix)))
    return found


def test_run_report_prune_and_rerun_through_the_cli_on_an_s3_root(
    api: DummyJSONServer, store: ObjectStore, tmp_path: Path
) -> None:
    """``./run_pipeline.sh`` and ``python -m pipeline`` on ``s3://``, as docs/scaling-out.md gives
    them, through a proxy that logs what the store answered, in order: the manifest
    is written last and ``latest`` after it; ``report`` and ``prune --dry-run`` only read; a
    rerun changes nothing of the old hour until its rebuild is complete, then marks the hour,
    deletes the old manifest, copies the data before their stats and the new manifest last,
    and removes the mark; a prune deletes a manifest first. Per-host
    files (run logs, failed-run.env) stay on this host, in $PIPELINE_LOG_DIR."""
    proxy = FaultyProxy(store.url)
    root, logs, caller = store.root("entry"), tmp_path / "logs", tmp_path / "caller"
    caller.mkdir()
    env = s3_env(
        proxy.url, PIPELINE_API_URL=api.url, PIPELINE_DATA_DIR=root, PIPELINE_LOG_DIR=str(logs)
    )

    def cli(*args: str, entry: tuple[str, ...] = (str(SCRIPT),)) -> tuple[str, str, int]:
        """Run ``entry args`` from ``caller``: its stdout, stderr and how many requests the
        store has answered since the test began."""
        proc = subprocess.run([*entry, *args], cwd=caller, env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout, proc.stderr, len(proxy.requests)

    pids = ("--lock-pid-dir", str(tmp_path / "pids"))
    part, manifest = f"{PARTITION}/", f"{PARTITION}/manifest.json"
    try:
        out, err, ran = cli("--date-hour", PARTITION, *pids)
        assert err.splitlines()[-1] == (
            f"pipeline: done (exit 0): {PARTITION} is complete; latest -> {PARTITION}"
        )
        written = changes(proxy.requests, "entry/")
        # Deleted: only rejected rows an earlier failed run could have left (there are none).
        assert all(op == "PUT" or key.startswith(f"{part}rejected/") for op, key in written)
        files = [key for op, key in written if op == "PUT"]
        assert files[-2:] == [manifest, "latest"]  # the manifest last, then `latest`
        assert sorted(files) == [*(k for k in PARTITION_KEYS if k != f"{part}.lock"),
                                 HISTORY_KEY, "latest"]  # each object written once  # fmt: skip
        (log,) = logs.glob("run-*.log")  # on this host; no failed-run.env: the run succeeded
        metrics = (logs / "etl_pipeline.prom").read_text().splitlines()  # on this host too
        stored = store.client.get_object(Bucket=BUCKET, Key=f"entry/{manifest}")["Body"].read()
        assert {
            "etl_pipeline_last_run_success 1",
            'etl_pipeline_records{endpoint="carts"} 6',
            f'etl_pipeline_hour_bytes{{folder="manifest.json"}} {len(stored)}',
        } <= set(metrics)
        assert not [line for line in metrics if "metrics_errors" in line]
        assert err.splitlines()[1] == f"pipeline: log file: {log}"
        assert log.read_text().endswith("\n# exit code: 0\n")

        shown, _, read = cli("report", entry=PYTHON_M)
        assert shown == out  # the run's own summary
        said, err, read = cli("prune", "--dry-run", "--retention-hours", "1")  # 17 is old
        assert said == f"would prune 0 item(s) under {root}\n"
        kept = f"pipeline: keeping old partition {root}/{PARTITION}: `latest` points to it"
        assert err.splitlines() == [kept]  # that alone: no botocore chatter
        assert changes(proxy.requests[ran:], "") == []  # report and prune only read

        # An earlier complete hour (a copy of this one), which the rebuild compares with.
        older = "2026-11-25T16"
        for key in PARTITION_KEYS:
            store.client.copy_object(Bucket=BUCKET, CopySource=f"{BUCKET}/entry/{key}",
                                     Key=f"entry/{older}/{key.removeprefix(part)}")  # fmt: skip
        # What failed reruns left: of this hour (removed by this rerun) and of another (kept:
        # hosts cannot tell whether another host's rerun of it is under way).
        left = {f".{PARTITION}.rerun-1/{manifest}", f".{older}.rerun-1/{older}/manifest.json"}
        for key in left:
            store.client.put_object(Bucket=BUCKET, Key=f"entry/{key}", Body=b"{}")
        said, err, _ = cli(
            "rerun", "--date-hour", PARTITION, *pids, "--clean-min-product-price", "25"
        )
        assert f"pipeline: removed {root}/.{PARTITION}.rerun-1, left by an earlier rerun" in err
        assert said == out.replace(  # the hour as readers see it once swapped in
            "Change: no earlier complete snapshot to compare with",
            f"Change since {older}: carts +0, revenue +$0.00 (+0.0%)",
        )
        assert f"Against {older} (1 hour earlier): carts 6 (no change)" in (
            store.read(f"{part}report/findings.md", "entry").decode()
        )  # the rebuilt report too: it read the earlier hours in the data root
        assert err.splitlines()[-1] == (
            f"pipeline: done (exit 0): {PARTITION} rebuilt and swapped in (object by object, "
            f"its manifest last); latest -> {PARTITION}"
        )
        staging = re.search(rf"^pipeline: rebuilding {PARTITION} in {root}/(\S+);", err, re.M)
        assert staging, err
        rerun = changes(proxy.requests[read:], "entry/")
        built = rerun.index(("PUT", f"{staging[1]}/{manifest}"))  # the rebuild is complete
        assert all(not key.startswith(part) for _, key in rerun[:built])  # old hour untouched
        assert all(key != "latest" for _, key in rerun)  # it named the hour already
        swap = [(op, key) for op, key in rerun[built:] if key.startswith((part, "history/"))]
        copied = [k for k in PARTITION_KEYS if k not in (f"{part}.lock", manifest)]
        stats = [k for k in copied if k.startswith(f"{part}_stats/")]  # a manifest's source
        marker = f"{part}.swapping"  # a plain run of the hour is refused while it is there
        assert stats and swap == [("PUT", marker), ("DELETE", manifest),
                        *(("COPY", k) for k in copied if k not in stats),  # the data first,
                        *(("COPY", k) for k in stats),  # then their stats
                        ("COPY", HISTORY_KEY), ("COPY", manifest), ("DELETE", marker),
                        # then its report is brought up to date: it now has an earlier hour
                        *(("PUT", f"{part}{k}") for k in ("report/findings.md",
                          "report/index.html", "_stats/HourReport.json"))]  # fmt: skip
        # The report's lease is taken before the mark and let go after the re-rendered report's
        # record (copied with the hour, then written by the refresh): a run re-rendering the old
        # report cannot write over the rebuilt one.
        report_lock, record = f"{part}report/.lock", f"{part}_stats/HourReport.json"
        written = [key.removeprefix("entry/") for req in proxy.requests[read:] if req.op in WRITES
                   for key in req.keys or (req.key,)]  # fmt: skip
        assert [k for k in written if k in (report_lock, marker, record)] == [
            report_lock, marker, record, marker, record, report_lock,
        ]  # fmt: skip
        gone = rerun[rerun.index(("DELETE", marker)) + 1 :]  # the staging root, manifest first
        assert gone[0] == ("DELETE_MANY", f"{staging[1]}/{manifest}")
        assert f".{older}.rerun-1/{older}/manifest.json" in store.keys("entry")
        assert [k for k in store.keys("entry") if older not in k] == [
            *sorted([*PARTITION_KEYS, report_lock]), HISTORY_KEY, "latest",
        ]  # fmt: skip
        assert not lease.live(orjson.loads(store.read(report_lock, "entry")))  # and let go
        assert orjson.loads(store.read(manifest, "entry"))["min_product_price"] == 25
        assert sorted(p.name for p in logs.iterdir()) == sorted(
            [
                *re.findall(r"^pipeline: log file: \S+/(\S+)$", err, re.M),
                log.name,
                "etl_pipeline.prom",
            ]
        )  # two run logs and the metrics, nothing else; and nothing where the commands ran:
        assert list(caller.iterdir()) == []

        # The older hour, not `latest`: pruned, its manifest deleted first.
        before = len(proxy.requests)
        said, _, _ = cli("prune", "--retention-hours", "1", entry=PYTHON_M)
        assert said == f"pruned 1 item(s) under {root}\n"
        deleted = changes(proxy.requests[before:], "entry/")
        assert deleted[0] == ("DELETE_MANY", f"{older}/manifest.json")  # first, on its own
        assert sorted(key for _, key in deleted) == [
            f"{older}/{k.removeprefix(part)}" for k in PARTITION_KEYS if k != f"{part}.lock"
        ]
        assert store.keys("entry") == [  # .lock too; the other hour's staging is no partition
            f".{older}.rerun-1/{older}/manifest.json",
            *sorted([*PARTITION_KEYS, report_lock]), HISTORY_KEY, "latest",
        ]  # fmt: skip
    finally:
        proxy.stop()


def test_a_swap_the_store_cut_short_is_refused_by_a_plain_run_and_redone_by_the_rerun(
    api: DummyJSONServer, store: ObjectStore, tmp_path: Path
) -> None:
    """The store goes away at the rerun's first copy of a data file (then comes back): the
    hour is left marked, without a manifest and with none of the rebuild's stats, so a plain
    run, which would assemble a manifest from the stats, is refused with the command that
    finishes it; that rerun does."""
    proxy = FaultyProxy(store.url)
    root, part = store.root("halfswap"), f"{PARTITION}/"
    env = s3_env(
        proxy.url,
        PIPELINE_API_URL=api.url,
        PIPELINE_DATA_DIR=root,
        PIPELINE_LOG_DIR=str(tmp_path / "logs"),
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(SCRIPT), *args, "--date-hour", PARTITION]
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip

    try:
        first = cli()
        assert first.returncode == 0, output(first)
        old_stats = {k: store.read(k, "halfswap") for k in store.keys("halfswap") if "_stats/" in k}
        start = len(proxy.requests)
        # Gone at the first cleaned/ file: botocore's two attempts (--storage-retries 1) and
        # the one retry a reused connection gets are dropped; then the store answers again.
        proxy.drop_at(
            lambda req: req.op == "COPY" and req.key.startswith(f"halfswap/{part}cleaned/"), 3
        )
        cut = cli("rerun", "--storage-retries", "1", "--clean-min-product-price", "25")
        assert cut.returncode == 1, output(cut)
        finish = (
            f"PIPELINE_DATA_DIR={root} PIPELINE_API_URL={api.url} ./run_pipeline.sh rerun "
            f"--storage-retries 1 --clean-min-product-price 25 --date-hour {PARTITION}"
        )
        assert cut.stderr.splitlines()[-1].startswith(
            f"pipeline: failed (exit 1): the swap of {PARTITION} was cut short, so it does not "
            f"look complete and a plain run of it is refused; to finish it: {finish} "
        )
        swap = changes(proxy.requests[start:], f"halfswap/{part}")
        assert swap[:2] == [("PUT", ".swapping"), ("DELETE", "manifest.json")]
        assert swap[2:] and all(op == "COPY" and k.startswith("_exact/") for op, k in swap[2:])
        keys = store.keys("halfswap")
        assert f"{part}.swapping" in keys and f"{part}manifest.json" not in keys
        assert {k: store.read(k, "halfswap") for k in old_stats} == old_stats  # no stats copied

        plain = cli()
        assert plain.returncode == ALREADY_RUNNING, output(plain)
        assert plain.stderr.splitlines() == [
            f"pipeline: refused (exit 10): a rerun's swap of {PARTITION} was cut short, so it is "
            f"part old, part rebuilt ({root}/{part}.swapping is there); to finish it: "
            f"PIPELINE_DATA_DIR={root} PIPELINE_API_URL={api.url} ./run_pipeline.sh rerun "
            f"--date-hour {PARTITION}"
        ]
        assert f"{part}manifest.json" not in store.keys("halfswap")  # nothing published

        redone = cli("rerun", "--clean-min-product-price", "25")
        assert redone.returncode == 0, output(redone)
        assert (
            f"pipeline: {PARTITION} was left half swapped by an earlier rerun: this one redoes it"
            in redone.stderr
        )
        keys = store.keys("halfswap")
        assert f"{part}.swapping" not in keys
        assert [k for k in keys if k.startswith(".")] == []  # both staging roots removed
        assert (
            orjson.loads(store.read(f"{part}manifest.json", "halfswap"))["min_product_price"] == 25
        )
    finally:
        proxy.stop()
