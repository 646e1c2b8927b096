"""Benchmark of the pipeline at scale: ``python -m pipeline.devtools.bench`` (not in the tests).

Every scenario runs the real command line (``python -m luigi --module ...``; the DuckDB script as a
file) as a subprocess against a local ``fakeapi`` server in this process, so figures include
luigi's start-up and the HTTP stack. Wall time is the median of ``--runs`` runs, with their spread
(largest minus smallest, over the median), their CPU time (user + system, which the load of other
processes on a shared machine changes less) and the load average when each started; peak RSS is the
OS's ``ru_maxrss`` of the measured process (``os.wait4``), the largest of the runs. Data sets are
generated once by ``datagen`` and cached under ``./bench-data`` (gitignored); raw extracts used as
the input of the clean scenarios are cached there too (``--fresh`` rebuilds both). The server maps
the generated files into memory rather than loading them (``MappedDataset``).

Scenarios (the issue's numbering):

- ``real``: one whole hour of DummyJSON's real size (208 carts, 208 users, 194 products) through
  ``python -m pipeline`` into a fresh data root, with ``python -c 'import pandas'`` in turns as a
  yardstick (issue 20: at most 1.2 s wall); start-up is most of it.

1. ``extract``: the three extracts only, 10k carts / 5k users / 200 products, 20 ms added to
   every request, *default* settings (so the real API's rate limit is respected).
2. ``clean``: clean + insights from raw ``jsons/*.jsonl`` already in place, at each ``--scales``
   (``CleanAndInsights``: the three insight files and what they need).
   ``hour``: the same as a whole hour (``Insights``: + history, report, manifest, ``latest``).
   ``duckdb-sql``: the same raw files through ``duckdb_sql``, a user's one-script alternative
   (run as a file, as the user's script would be). The three run in turns, ``--runs`` rounds.
   DuckDB is no dependency of the pipeline: ``pip install -e '.[bench]'`` (``duckdb_sql.INSTALL``).
3. ``rerun``: ``Insights`` again on the complete partition; must make zero requests.
4. ``extract-rss``: the extracts of the largest scale without latency; the client-side rate
   limit is raised for the local server with ``--api-rate-limit-requests``.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import mmap
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import luigi
import numpy as np
import orjson

from pipeline.devtools.datagen import write_dataset
from pipeline.devtools.duckdb_sql import INSTALL
from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from pipeline.schema import ENDPOINTS
from pipeline.tasks.extract import EXTRACTS, ExtractTask
from pipeline.tasks.insights import INSIGHT_TASKS

REPO = Path(__file__).resolve().parents[2]
PARTITION = "2026-11-25T17"
SCENARIOS = ("startup", "real", "extract", "clean", "hour", "duckdb-sql", "rerun", "extract-rss")
#: Lifts the client-side limit for the local server only (scenario 4 and the clean set-up).
LOCAL_LIMIT = ("--api-rate-limit-requests", "1000000")


class ExtractOnly(luigi.WrapperTask):
    """The extract tasks of one partition (ExtractCarts ...) and nothing downstream."""

    date_hour = luigi.DateHourParameter()

    def requires(self) -> list[ExtractTask]:
        return [extract(date_hour=self.date_hour) for extract in EXTRACTS.values()]


class CleanAndInsights(luigi.WrapperTask):
    """Clean and the three insight files of one partition, without the hour's history, report
    and manifest: what issue 12's time targets are about."""

    date_hour = luigi.DateHourParameter()

    def requires(self) -> list[luigi.Task]:
        return [task(date_hour=self.date_hour) for task in INSIGHT_TASKS.values()]


class Lines(Sequence[bytes]):
    """The lines of a memory-mapped JSON Lines file, found by an index of their offsets."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self._starts = np.concatenate([[0], _newlines(self._map) + 1])  # one more: the end
        if len(self._starts) > 1 and self._starts[-1] != size:  # no newline after the last
            self._starts = np.append(self._starts, size + 1)

    def __len__(self) -> int:
        return len(self._starts) - 1

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._map[int(self._starts[i]) : int(self._starts[i + 1]) - 1]

    def __iter__(self) -> Iterator[bytes]:
        return (self[i] for i in range(len(self)))


def _newlines(data: Any, block: int = 1 << 26) -> np.ndarray:
    """Offsets of every ``\\n`` in ``data``, found a block at a time (bounded memory)."""
    found = [
        np.flatnonzero(np.frombuffer(data[start : start + block], np.uint8) == 10) + start
        for start in range(0, len(data), block)
    ]
    return np.concatenate(found) if found else np.zeros(0, np.int64)


class MappedDataset(Dataset):
    """A generated data set served from its files, memory-mapped: the server holds an index of
    8 bytes per record instead of every record (10M carts are 15 GB of JSON)."""

    def __init__(self, directory: Path) -> None:  # no super(): it would copy the records
        # Lines reads like the list of records Dataset declares: a duck, not a list.
        self._records = {e: Lines(directory / f"{e}.jsonl") for e in ENDPOINTS}  # type: ignore[misc]


class BenchError(RuntimeError):
    """A benchmarked command failed or broke a scenario's invariant."""


@dataclass(frozen=True)
class Scale:
    carts: int
    users: int
    products: int

    @classmethod
    def for_carts(cls, carts: int) -> Scale:
        """The issue's proportions: half as many users as carts, one product per 50 carts."""
        return cls(carts, max(1, carts // 2), max(1, carts // 50))

    @property
    def label(self) -> str:
        return f"{self.carts:,} carts / {self.users:,} users / {self.products:,} products"

    @property
    def key(self) -> str:
        return f"{self.carts}-{self.users}-{self.products}"


EXTRACT_SCALE = Scale(10_000, 5_000, 200)
#: DummyJSON's own size (the ``total`` of /carts, /products and /users in its samples).
REAL_SCALE = Scale(208, 208, 194)
#: The yardstick of the ``real`` scenario: what the same machine takes just to load pandas.
YARDSTICK = (sys.executable, "-c", "import pandas")


@dataclass
class Run:
    seconds: float
    max_rss_mb: float
    requests: int
    cpu_seconds: float = 0.0  # user + system time of the command and its children
    load: float = 0.0  # the machine's 1-minute load average when the command started


@dataclass
class Result:
    scenario: str
    carts: int
    data: str
    command: str
    runs: list[Run] = field(default_factory=list)
    target: str = ""
    reference: str = ""
    reference_seconds: float | None = None
    tasks: dict[str, float] = field(default_factory=dict)  # median seconds per task
    yardstick: Result | None = None  # ``python -c 'import pandas'`` in turns with the runs

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(r.max_rss_mb for r in self.runs)

    @property
    def cpu_median(self) -> float:
        return statistics.median(r.cpu_seconds for r in self.runs)

    @property
    def spread(self) -> float:
        """Largest minus smallest wall time, as a share of the median."""
        times = [r.seconds for r in self.runs]
        return (max(times) - min(times)) / self.median if self.median else 0.0

    @property
    def requests(self) -> int:
        return max(r.requests for r in self.runs)


class Bench:
    """Owns the cache folder, the local server and the luigi subprocesses."""

    def __init__(self, root: Path, runs: int, fresh: bool, log: Callable[[str], None]):
        self.root, self.runs, self.fresh, self.log = root, runs, fresh, log
        self.work = root / "work"

    # -- data ------------------------------------------------------------------------------
    def source(self, scale: Scale) -> Path:
        """Generated raw API data (``{endpoint}.jsonl``), made once per scale; how long that
        took is kept beside it (``generated.json``) for the report."""
        path = self.root / f"src-{scale.key}"
        if self.fresh or not all((path / f"{e}.jsonl").exists() for e in ENDPOINTS):
            self.log(f"generating {scale.label} into {path}")
            started = time.perf_counter()
            write_dataset(path, scale.carts, scale.users, scale.products)
            seconds = round(time.perf_counter() - started, 1)
            (path / "generated.json").write_bytes(orjson.dumps({"seconds": seconds}))
        return path

    def data_sizes(self, scale: Scale) -> dict[str, Any]:
        """Disk taken by a scale's generated data and its cached extract, and generation time."""
        src, extracted = self.root / f"src-{scale.key}", self.root / f"extracted-{scale.key}"
        generated = src / "generated.json"
        return {
            "carts": scale.carts,
            "generated_gb": round(_size(src) / 1e9, 2),
            "extracted_gb": round(_size(extracted) / 1e9, 2),
            "generation_seconds": (
                orjson.loads(generated.read_bytes())["seconds"] if generated.exists() else None
            ),
        }

    def serve(self, scale: Scale, latency: float = 0.0) -> DummyJSONServer:
        self.log(f"loading {scale.label} into the local server (latency {latency * 1000:g} ms)")
        return DummyJSONServer(MappedDataset(self.source(scale)), latency=latency)

    def data_dir(self, name: str) -> Path:
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    # -- one command -----------------------------------------------------------------------
    def command(self, module: str, task: str, extra: Sequence[str] = ()) -> list[str]:
        return [
            sys.executable, "-m", "luigi", "--module", module, task,
            "--local-scheduler", "--date-hour", PARTITION, *extra,
        ]  # fmt: skip

    def luigi(self, server: DummyJSONServer, data_dir: Path, cmd: list[str], log_name: str) -> Run:
        """Run one luigi command; its wall time, peak RSS and the requests it made."""
        env = {k: v for k, v in os.environ.items() if k != "LUIGI_CONFIG_PATH"}
        env.update(PIPELINE_API_URL=server.url, PIPELINE_DATA_DIR=str(data_dir))
        before = server.request_count
        log_path, usage_path = self.work / f"{log_name}.log", self.work / f"{log_name}.usage"
        with log_path.open("wb") as out:
            returncode = subprocess.call(
                [sys.executable, "-S", "-c", _SHIM, str(usage_path), *cmd],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        if returncode != 0:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise BenchError(f"{' '.join(cmd)} exited {returncode}; log {log_path}:\n{tail}")
        seconds, max_rss_kb, cpu, load = usage_path.read_text().split()
        run = Run(float(seconds), round(int(max_rss_kb) / 1024, 1), server.request_count - before,
                  float(cpu), float(load))  # fmt: skip
        self.log(f"  {log_name}: {run.seconds:.2f} s, CPU {run.cpu_seconds:.2f} s, peak RSS "
                 f"{run.max_rss_mb:.0f} MB, {run.requests} requests, "
                 f"load {run.load:.1f}")  # fmt: skip
        return run

    # -- scenarios -------------------------------------------------------------------------
    def startup(self) -> Result:
        cmd = self.command("pipeline.devtools.startup", "Nothing")
        result = Result("startup", 0, "none (luigi + imports only)", _show(cmd))
        with DummyJSONServer(Dataset({})) as server:
            data = self.data_dir("startup")
            result.runs = [self.luigi(server, data, cmd, f"startup-{i}") for i in range(self.runs)]
        return result

    def real(self) -> Result:
        """An hour of DummyJSON's real size end to end, as a user runs it: ``python -m pipeline
        --date-hour ...`` against the local API into a fresh data root (start-up, extract,
        clean, insights, history, report, publish). ``python -c 'import pandas'`` runs in turns
        with it as a yardstick: the ratio moves less than the seconds on a shared machine."""
        # Every hourly run but the first finds the package's bytecode cached; a shell with
        # PYTHONDONTWRITEBYTECODE set would otherwise compile it in every measured run.
        compileall.compile_dir(REPO / "pipeline", quiet=1)
        cmd = [sys.executable, "-m", "pipeline", "--date-hour", PARTITION]
        result = Result("real", REAL_SCALE.carts, f"{REAL_SCALE.label}, whole hour", _show(cmd))
        result.yardstick = Result("import pandas", 0, "none", _show(YARDSTICK))
        with self.serve(REAL_SCALE) as server:
            for i in range(self.runs):
                data = self.data_dir("real")
                result.runs.append(self.luigi(server, data, cmd, f"real-{i}"))
                yard = self.luigi(server, data, list(YARDSTICK), f"import-pandas-{i}")
                result.yardstick.runs.append(yard)
        _expect_records(data, REAL_SCALE)
        result.tasks = _task_seconds(data)
        return result

    def extract(self, scale: Scale, latency: float, extra: Sequence[str], name: str) -> Result:
        cmd = self.command("pipeline.devtools.bench", "ExtractOnly", extra)
        data_label = f"{scale.label}, {latency * 1000:g} ms/request"
        result = Result(name, scale.carts, data_label, _show(cmd))
        with self.serve(scale, latency) as server:
            for i in range(self.runs):
                data = self.data_dir(name)
                result.runs.append(self.luigi(server, data, cmd, f"{name}-{i}"))
        _expect_records(data, scale)
        result.tasks = _task_seconds(data)
        if name == "extract-rss":
            self.keep_extract(data, scale)
        return result

    def extracted(self, scale: Scale) -> Path:
        """A partition holding only the extract targets of ``scale`` (cached)."""
        path = self.root / f"extracted-{scale.key}"
        if self.fresh or not (path / PARTITION / "_stats").is_dir():
            self.log(f"extracting {scale.label} once as the input of the clean runs")
            with self.serve(scale) as server:
                data = self.data_dir("extract-setup")
                cmd = self.command("pipeline.devtools.bench", "ExtractOnly", LOCAL_LIMIT)
                self.luigi(server, data, cmd, f"extract-setup-{scale.carts}")
            self.keep_extract(data, scale)
        return path

    def keep_extract(self, data: Path, scale: Scale) -> None:
        path = self.root / f"extracted-{scale.key}"
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(data, path, ignore=shutil.ignore_patterns(".lock"))

    def clean(self, scale: Scale, scenarios: Sequence[str]) -> list[Result]:
        """The scenarios on raw data already extracted, each ``--runs`` times, in turns; then, if
        asked, the no-op rerun on the last run's complete hour.

        In turns (clean, duckdb-sql, hour, clean, ...): a shared machine's speed drifts by up
        to 40% within an hour, and one scenario's runs all together would take its drift into
        the comparison. Each run's outputs are removed once its figures are read, but the last
        run's (10M carts write some 7 GB), which the rerun runs on.
        """
        source = self.extracted(scale)
        commands = {  # the hour last: the rerun runs on its last run's outputs
            "clean": self.command("pipeline.devtools.bench", "CleanAndInsights"),
            # Run as a file, as a user's script would be: it loads DuckDB alone, where ``-m``
            # would load the pipeline package (and luigi) first, a quarter of a second.
            "duckdb-sql": [sys.executable, str(Path(__file__).with_name("duckdb_sql.py"))],
            "hour": self.command("pipeline", "Insights"),
        }
        chosen = [s for s in commands if s in scenarios]
        label = f"{scale.label} (raw JSON in place)"
        measured = {s: Result(s, scale.carts, label, _show(commands[s])) for s in chosen}
        tasks: dict[str, list[dict[str, float]]] = {s: [] for s in chosen}
        results: list[Result] = []
        data = None
        # An idle server: any request at all would be a bug (the extract targets exist).
        with DummyJSONServer(Dataset({})) as server:
            for i in range(self.runs):
                for scenario in chosen:
                    if data is not None:
                        shutil.rmtree(data, ignore_errors=True)
                    data = self.data_dir(f"{scenario}-{scale.carts}-{i}")
                    _link_tree(source, data)
                    cmd = commands[scenario]
                    run_cmd = [*cmd, str(data / PARTITION)] if scenario == "duckdb-sql" else cmd
                    name = f"{scenario}-{scale.carts}-{i}"
                    measured[scenario].runs.append(self.luigi(server, data, run_cmd, name))
                    tasks[scenario].append(_task_seconds(data))
            for scenario, result in measured.items():
                _forbid_requests(result)
                result.tasks = {
                    k: round(statistics.median(t[k] for t in tasks[scenario]), 2)
                    for k in tasks[scenario][0]
                    if not k.startswith("Extract-")
                }
                results.append(result)
            if "rerun" in scenarios and data is not None:
                if "hour" not in scenarios:  # the rerun needs a complete hour
                    cmd = commands["hour"]
                    self.luigi(server, data, cmd, f"hour-for-rerun-{scale.carts}")
                label = f"{scale.label} (complete partition)"
                cmd = commands["hour"]
                again = Result("rerun", scale.carts, label, _show(cmd))
                for i in range(self.runs):
                    again.runs.append(self.luigi(server, data, cmd, f"rerun-{i}"))
                _forbid_requests(again)
                results.append(again)
        return results


#: Runs the measured command as its own child. Measuring a direct child of this process would be
#: wrong: Linux carries the parent's peak RSS (here: the server's whole data set) across fork+exec
#: into the child's ``ru_maxrss``. This tiny interpreter (``-S``) is the parent instead.
_SHIM = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
load = os.getloadavg()[0]
_, status, usage = os.wait4(pid, 0)
cpu = usage.ru_utime + usage.ru_stime
with open(sys.argv[1], "w") as f:
    f.write(f"{time.perf_counter() - started:.3f} {usage.ru_maxrss} {cpu:.3f} {load:.2f}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _show(cmd: Sequence[str]) -> str:
    shown = ["luigi", *cmd[3:]] if cmd[1:3] == ["-m", "luigi"] else list(cmd)
    return " ".join(shown)


def _link_tree(source: Path, dest: Path) -> None:
    """Hard-link the cached extract into a fresh data dir: the pipeline never writes in place."""
    shutil.copytree(source, dest, copy_function=os.link, dirs_exist_ok=True)


def _expect_records(data: Path, scale: Scale) -> None:
    want = {"carts": scale.carts, "users": scale.users, "products": scale.products}
    for endpoint, n in want.items():
        path = data / PARTITION / "_stats" / f"Extract-{endpoint}.json"
        stats = orjson.loads(path.read_bytes())
        if stats["records"] != n:
            raise BenchError(f"{endpoint}: extracted {stats['records']} records, expected {n}")


def _forbid_requests(result: Result) -> None:
    if result.requests:
        raise BenchError(f"{result.scenario}: made {result.requests} requests, expected none")


def _task_seconds(data: Path) -> dict[str, float]:
    """Seconds per task of one run, from the stats files the tasks wrote."""
    return {
        path.stem: orjson.loads(path.read_bytes())["seconds"]
        for path in sorted((data / PARTITION / "_stats").glob("*.json"))
    }


def _size(path: Path) -> int:
    """Bytes of the files under ``path`` (0 if it is not there)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


# -- reporting ------------------------------------------------------------------------------
REFERENCE = {  # the old system on the same kind of machine (issue 5)
    ("extract", 10_000): (35.7, "35.7 s"),
    ("clean", 100_000): (9.0, "9 s"),
    ("clean", 1_000_000): (93.0, "93 s, 7.8 GB"),
}
TARGET = {  # issue 12 for clean + insights, issue 5 for the rest
    ("extract", 0): "<= 1.5 s",
    ("real", REAL_SCALE.carts): "<= 1.2 s",
    ("clean", 1_000_000): "<= 4 s, <= 1 GB",
    ("clean", 10_000_000): "<= 60 s, <= 3 GB",
    ("hour", 1_000_000): "<= 1.15x duckdb-sql, <= 700 MB",  # issue 20
    ("hour", 10_000_000): "<= 50 s, <= 2 GB",  # issue 20
    ("rerun", 0): "<= 2 s, 0 requests",
    ("extract-rss", 0): "<= 400 MB",
}


def target(scenario: str, carts: int) -> str:
    return TARGET.get((scenario, carts)) or TARGET.get((scenario, 0), "")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for name in ("luigi", "pandas", "pyarrow", "orjson", "requests", "duckdb"):
        try:
            versions[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            versions[name] = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        **versions,
    }


def table(results: Sequence[Result]) -> str:
    rows = [
        "| # | scenario | data | median s | runs s | spread | CPU s | peak RSS MB | requests "
        "| load | target | old system | speed-up |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---|---|---|---:|",
    ]
    number = {"startup": "-", "real": "-", "extract": "1", "clean": "2", "hour": "2b",
              "duckdb-sql": "2c", "rerun": "3", "extract-rss": "4"}  # fmt: skip
    for r in results:
        runs = ", ".join(f"{x.seconds:.2f}" for x in r.runs)
        loads = "-".join(f"{x.load:.1f}" for x in (min(r.runs, key=_load), max(r.runs, key=_load)))
        speedup = f"{r.reference_seconds / r.median:.1f}x" if r.reference_seconds else ""
        rows.append(
            f"| {number[r.scenario]} | {r.scenario} | {r.data} | {r.median:.2f} | {runs} | "
            f"{r.spread:.0%} | {r.cpu_median:.2f} | {r.peak_rss_mb:,.0f} | {r.requests:,} | "
            f"{loads} | {r.target} | {r.reference} | {speedup} |"
        )
    return "\n".join(rows)


def _load(run: Run) -> float:
    return run.load


def scaling_table(results: Sequence[Result], sizes: Sequence[dict[str, Any]]) -> str:
    """The issue's scaling table: each scenario on raw data at each scale, and clean + insights
    against the DuckDB SQL script on the same data (time and peak RSS, as ratios)."""
    size = {s["carts"]: s for s in sizes}
    by = {(r.scenario, r.carts): r for r in results}
    rows = [
        "| carts | raw JSON (extracted) | scenario | median s | runs s | CPU s | peak RSS MB "
        "| target | vs DuckDB SQL |",
        "|---:|---:|---|---:|---|---:|---:|---|---|",
    ]
    for r in results:
        if r.scenario not in ("clean", "hour", "duckdb-sql"):
            continue
        runs = ", ".join(f"{x.seconds:.2f}" for x in r.runs)
        gb = size.get(r.carts, {}).get("extracted_gb")
        sql = by.get(("duckdb-sql", r.carts))
        versus = ""
        if sql is not None and r is not sql:
            versus = (f"{r.median / sql.median:.2f}x the time, "
                      f"{r.peak_rss_mb / sql.peak_rss_mb:.2f}x the memory")  # fmt: skip
        rows.append(
            f"| {r.carts:,} | {gb} GB | {r.scenario} | {r.median:.2f} | {runs} | "
            f"{r.cpu_median:.2f} | {r.peak_rss_mb:,.0f} | {r.target} | {versus} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.devtools.bench", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (median reported)")
    parser.add_argument(
        "--scales",
        default="100000,1000000",
        help="cart counts of the clean scenario, e.g. 100000,1000000,10000000 for the scaling "
        "table (10M: 15.6 GB generated once, 4.4 GB extracted, 5 GB of outputs while it runs)",
    )
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {SCENARIOS}"
    )
    parser.add_argument("--root", type=Path, default=REPO / "bench-data", help="cache folder")
    parser.add_argument("--fresh", action="store_true", help="regenerate cached data sets")
    parser.add_argument(
        "--extract-args",
        default="",
        help="luigi options for scenario 1 instead of the defaults, to measure what each "
        "setting is worth, e.g. '--api-page-size 10 --api-concurrency 1'",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SCENARIOS)
    if unknown or args.runs < 1:
        parser.error(f"unknown scenario(s) {sorted(unknown)}" if unknown else "--runs must be >= 1")
    if "duckdb-sql" in only and importlib.util.find_spec("duckdb") is None:
        parser.error(f"scenario duckdb-sql: {INSTALL}, or leave it out of --only")
    scales = [Scale.for_carts(int(n)) for n in args.scales.split(",") if n.strip()]

    def log(message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    bench = Bench(args.root.absolute(), args.runs, args.fresh, log)
    bench.work.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    if "startup" in only:
        results.append(bench.startup())
    if "real" in only:
        results.append(bench.real())
    if "extract" in only:
        extra = shlex.split(args.extract_args)
        results.append(bench.extract(EXTRACT_SCALE, 0.02, extra, "extract"))
    if "extract-rss" in only and scales:
        results.append(bench.extract(scales[-1], 0.0, LOCAL_LIMIT, "extract-rss"))
    on_raw = [s for s in ("clean", "hour", "duckdb-sql", "rerun") if s in only]
    for i, scale in enumerate(scales if on_raw else []):
        last = i == len(scales) - 1
        results.extend(bench.clean(scale, [s for s in on_raw if s != "rerun" or last]))
    for r in results:
        r.target = target(r.scenario, r.carts)
        r.reference_seconds, r.reference = REFERENCE.get((r.scenario, r.carts), (None, ""))
    sizes = [bench.data_sizes(scale) for scale in scales]

    info = machine()
    print(f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB; {info['os']}; "
          f"Python {info['python']}, luigi {info['luigi']}, pandas {info['pandas']}, "
          f"pyarrow {info['pyarrow']}, orjson {info['orjson']}, "
          f"DuckDB {info['duckdb']} (duckdb-sql)")  # fmt: skip
    print(f"Command: python -m pipeline.devtools.bench {' '.join(argv or sys.argv[1:])}".rstrip())
    print()
    print(table(results))
    if any(r.scenario in ("clean", "hour", "duckdb-sql") for r in results):
        print("\nScaling, on raw data in place (hour: clean + insights + history + report):\n")
        print(scaling_table(results, sizes))
    for s in sizes:
        print(f"\ndata at {s['carts']:,} carts: generated {s['generated_gb']} GB "
              f"(in {s['generation_seconds']} s), extracted {s['extracted_gb']} GB")  # fmt: skip
    for r in results:
        if r.yardstick is not None:
            y = r.yardstick
            print(f"\n{r.scenario}: {r.median / y.median:.1f}x the wall time and "
                  f"{r.cpu_median / y.cpu_median:.1f}x the CPU time of {y.command} "
                  f"({y.median:.2f} s wall, {y.cpu_median:.2f} s CPU, peak RSS "
                  f"{y.peak_rss_mb:.0f} MB; medians of the same turns)")  # fmt: skip
    for r in results:
        if r.tasks:
            tasks = ", ".join(f"{k} {v:.2f}" for k, v in r.tasks.items())
            print(f"\n{r.scenario} ({r.data}): median task seconds: {tasks}")
    if args.json:
        payload = {
            "machine": info,
            "data": sizes,
            "results": [
                asdict(r) | {"median": r.median, "cpu_median": r.cpu_median} for r in results
            ],
        }
        args.json.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
