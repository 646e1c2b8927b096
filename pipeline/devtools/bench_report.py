"""Benchmark of the hourly report and history at scale: ``python -m pipeline.devtools.bench_report``
(a test walks it on a tiny shop; its figures are not tested).

Two hours of the same generated shop (default 1M carts / 500k users / 20k products, the raw
extract hard-linked into both partitions) are cleaned and summarised once; the earlier hour gets a
stub manifest so the later one is compared with it and has two hours of history, as in steady
operation. Then ``HistoryHour`` and ``HourReport`` of the later hour are each rerun ``--runs``
times as the real command line (``python -m luigi --module pipeline <task>``), their outputs and
stats deleted first. Reported: the task's own seconds (from its stats file), the whole command's
wall time (luigi's start-up included), its peak RSS, and the size of what it wrote; medians of the
runs. The generated data is cached in ``--root`` (``./bench-data``, shared with ``bench``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from pipeline.devtools.bench import REPO, Scale
from pipeline.devtools.datagen import write_dataset
from pipeline.schema import ENDPOINTS

EARLIER, HOUR = "2026-11-25T16", "2026-11-25T17"
#: Where the staged extracts say they came from (the report names the source of its data).
STUB_SOURCE = "http://127.0.0.1:9/bench-report"
KEEP = ("--history-retention-days", "100000")  # the fixed hours stay, whatever the clock
#: Runs a command as its child and writes its wall seconds, CPU seconds (user + system, all its
#: threads) and peak RSS in kB: CPU time shows the cost even when other jobs share the machine.
#: (A tiny parent, as in ``bench``: Linux carries a parent's peak RSS into a forked child.)
_SHIM = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, use = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{time.perf_counter() - started} {use.ru_utime + use.ru_stime} {use.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _run(data: Path, task: str, hour: str, log: Path) -> tuple[float, float, float]:
    """One luigi command: wall seconds, CPU seconds and peak RSS in MB."""
    env = {k: v for k, v in os.environ.items() if k != "LUIGI_CONFIG_PATH"}
    env.update(PIPELINE_API_URL="http://127.0.0.1:9", PIPELINE_DATA_DIR=str(data))
    usage = log.with_suffix(".usage")
    cmd = [sys.executable, "-m", "luigi", "--module", "pipeline", task, "--local-scheduler",
           "--date-hour", hour, *KEEP]  # fmt: skip
    with log.open("wb") as out:
        code = subprocess.call([sys.executable, "-S", "-c", _SHIM, str(usage), *cmd], cwd=REPO,
                               env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {code}; see {log}")
    wall, cpu, rss_kb = usage.read_text().split()
    return float(wall), float(cpu), int(rss_kb) / 1024


def _stage(source: Path, data: Path, hour: str, scale: Scale) -> None:
    """A partition whose extracts are done: the generated JSON Lines, hard-linked, and stats."""
    part = data / hour
    (part / "jsons").mkdir(parents=True)
    (part / "_stats").mkdir()
    counts = {"carts": scale.carts, "users": scale.users, "products": scale.products}
    for endpoint in ENDPOINTS:
        os.link(source / f"{endpoint}.jsonl", part / "jsons" / f"{endpoint}.jsonl")
        stats = {"endpoint": endpoint, "records": counts[endpoint], "seconds": 0.0,
                 "url": f"{STUB_SOURCE}/{endpoint}"}  # fmt: skip
        (part / "_stats" / f"Extract-{endpoint}.json").write_bytes(orjson.dumps(stats))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.devtools.bench_report",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--root", type=Path, default=REPO / "bench-data", help="cache folder")
    parser.add_argument("--carts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    scale = Scale.for_carts(args.carts)
    source = args.root / f"src-{scale.key}"
    if not all((source / f"{e}.jsonl").exists() for e in ENDPOINTS):
        print(f"generating {scale.label} into {source}", flush=True)
        write_dataset(source, scale.carts, scale.users, scale.products)
    work = args.root / "work" / "report"
    shutil.rmtree(work, ignore_errors=True)
    data = work / "data"
    for hour in (EARLIER, HOUR):
        _stage(source, data, hour, scale)
        started = time.perf_counter()
        _run(data, "HourReport", hour, work / f"setup-{hour}.log")
        print(f"set up {hour} (clean, insights, history, report): "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
        if hour == EARLIER:  # complete, as far as the later hour's report is concerned
            (data / hour / "manifest.json").write_text('{"bench": "stub"}')

    part = data / HOUR
    history_file = data / "history" / f"date_hour={HOUR}" / "part-0.parquet"
    outputs = {
        "HistoryHour": [history_file],
        "HourReport": [part / "report" / "index.html", part / "report" / "findings.md"],
    }
    print(f"\n{scale.label}, {args.runs} runs each, medians (runs in brackets); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip

    def shown(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})"

    for task, files in outputs.items():
        task_s, wall_s, cpu_s, rss = [], [], [], []
        for i in range(args.runs):
            for path in [*files, part / "_stats" / f"{task}.json"]:
                path.unlink()
            wall, cpu, peak = _run(data, task, HOUR, work / f"{task}-{i}.log")
            task_s.append(orjson.loads((part / "_stats" / f"{task}.json").read_bytes())["seconds"])
            wall_s.append(wall)
            cpu_s.append(cpu)
            rss.append(peak)
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e3:,.0f} kB" for p in files)
        print(f"{task}: task {shown(task_s)}; command {shown(wall_s)}, CPU {shown(cpu_s)}; "
              f"peak RSS {max(rss):.0f} MB; {sizes}")  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    rows = pq.read_metadata(history_file).num_rows
    print(f"history rows for the hour: {rows:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
