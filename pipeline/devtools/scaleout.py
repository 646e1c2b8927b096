"""Measure scale-out: ``python -m pipeline.devtools.scaleout`` (needs the ``test`` extra: moto).

Wall time of one hour and of a six-hour backfill with 1 worker against 3, each worker a process
in its own directory (cwd, $TMPDIR, luigi.cfg) standing in for a host, all driven by one luigid
and writing to an S3-compatible store (``moto_server`` on 127.0.0.1). The API is the local
``fakeapi`` server in this process with a generated shop, latency on every request and the real
API's limit of 100 requests per 10 s enforced; each host's client-side budget is
``[api] rate_limit_requests`` / workers, as docs/scaling-out.md says to set it. Every host runs
``luigi --module pipeline InsightsRange`` over the hours (one for one hour). Wall
time runs from starting the workers to the last one exiting; every hour is then checked to be
published.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import boto3

from pipeline.devtools.datagen import write_dataset
from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from pipeline.schema import ENDPOINTS
from pipeline.storage.layout import PARTITION_FORMAT

REPO = Path(__file__).resolve().parents[2]
BUCKET = "scaleout"
START = datetime(2026, 11, 25, 0)
AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    import urllib.error
    import urllib.request

    for _ in range(300):
        assert proc.poll() is None, f"{what} exited"
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # answering
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer at {url}")


def start(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with (cwd / "server.log").open("ab") as log:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)


def host_dir(work: Path, name: str) -> Path:
    home = work / name
    (home / "tmp").mkdir(parents=True)
    config = (REPO / "luigi.cfg").read_text()
    config = config.replace("config/logging.conf", str(REPO / "config" / "logging.conf"))
    (home / "luigi.cfg").write_text(config)
    return home


def scenario(
    work: Path, store: str, api: DummyJSONServer, workers: int, hours: int, jitter: float, run: int
) -> tuple[float, int]:
    """Run one scenario into a prefix of its own; its wall time and the API requests it made."""
    name = f"{hours}h-{workers}w-{run}"
    shutil.rmtree(work / name, ignore_errors=True)
    (work / name).mkdir(parents=True)
    port = free_port()
    luigid = start(
        [str(Path(sys.executable).with_name("luigid")), "--address", "127.0.0.1",
         "--port", str(port)], work / name,
        {**os.environ, "LUIGI_CONFIG_PATH": str(REPO / "config" / "luigid.cfg")},
    )  # fmt: skip
    scheduler = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{scheduler}/api/task_list?data={{}}", luigid, "luigid")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LUIGI_"))}
        env.update(AWS, AWS_ENDPOINT_URL=store, PIPELINE_API_URL=api.url)
        env["PIPELINE_DATA_DIR"] = f"s3://{BUCKET}/{name}"
        budget = str(90 // workers)  # the real API's 100 per 10 s, shared by the hosts
        before, procs = api.request_count, []
        t0 = time.perf_counter()
        for n in range(workers):
            home = host_dir(work / name, f"host-{n + 1}")
            cmd = [
                sys.executable, "-m", "luigi", "--module", "pipeline",
                "InsightsRange", "--start", START.strftime(PARTITION_FORMAT),
                "--stop", (START + timedelta(hours=hours)).strftime(PARTITION_FORMAT),
                "--scheduler-url", scheduler, "--worker-keep-alive",
                "--worker-wait-jitter", str(jitter), "--api-rate-limit-requests", budget,
                "--lock-pid-dir", str(home / "pids"),
            ]  # fmt: skip
            log = (home / "worker.log").open("wb")
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=home,
                    env={**env, "TMPDIR": str(home / "tmp")},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        codes = [proc.wait() for proc in procs]
        seconds = time.perf_counter() - t0
    finally:
        luigid.terminate()
        luigid.wait()
    check_published(store, name, hours, codes)
    return seconds, api.request_count - before


def check_published(store: str, prefix: str, hours: int, codes: list[int]) -> None:
    s3 = boto3.client("s3", endpoint_url=store, **_creds())
    last = (START + timedelta(hours=hours - 1)).strftime(PARTITION_FORMAT)
    latest = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/latest")["Body"].read().decode().strip()
    if latest != last:
        raise RuntimeError(f"{prefix}: latest is {latest}, not {last} (exit codes {codes})")
    for h in range(hours):
        hour = (START + timedelta(hours=h)).strftime(PARTITION_FORMAT)
        s3.head_object(Bucket=BUCKET, Key=f"{prefix}/{hour}/manifest.json")


def _creds() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS["AWS_DEFAULT_REGION"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.devtools.scaleout", description=__doc__
    )
    parser.add_argument("--carts", type=int, default=10_000, help="carts in the generated shop")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per request")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--hours", type=int, nargs="+", default=[1, 6])
    parser.add_argument("--jitter", type=float, default=0.5, help="[worker] wait_jitter, seconds")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario; median shown")
    parser.add_argument("--work", type=Path, default=REPO / "bench-data" / "scaleout")
    args = parser.parse_args(argv)

    work = args.work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"src-{args.carts}"
    if not all((source / f"{e}.jsonl").exists() for e in ENDPOINTS):
        write_dataset(source, args.carts, args.carts // 2, max(1, args.carts // 50))
    port = free_port()
    store = f"http://127.0.0.1:{port}"
    moto = start(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        work,
    )
    try:
        wait_for(store, moto, "moto_server")
        boto3.client("s3", endpoint_url=store, **_creds()).create_bucket(Bucket=BUCKET)
        dataset = Dataset.load(source)
        with DummyJSONServer(dataset, latency=args.latency, rate_limit=(100, 10.0)) as api:
            print(f"shop: {args.carts:,} carts, {args.carts // 2:,} users, "
                  f"{max(1, args.carts // 50):,} products; {args.latency * 1000:g} ms/request; "
                  f"API limit 100 requests/10 s; [worker] wait_jitter {args.jitter:g} s; "
                  f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
            print("| hours | workers | wall time (median) | runs | API requests |", flush=True)
            print("|---|---|---|---|---|", flush=True)
            for hours in args.hours:
                for workers in args.workers:
                    runs = [
                        scenario(work, store, api, workers, hours, args.jitter, run)
                        for run in range(args.runs)
                    ]
                    wall = statistics.median(seconds for seconds, _ in runs)
                    each = ", ".join(f"{seconds:.1f}" for seconds, _ in runs)
                    requests = max(count for _, count in runs)
                    if min(count for _, count in runs) != requests:
                        raise RuntimeError(f"runs made different requests: {runs}")
                    print(
                        f"| {hours} | {workers} | {wall:.1f} s | {each} | {requests} |", flush=True
                    )
    finally:
        moto.terminate()
        moto.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
