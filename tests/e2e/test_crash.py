"""Crash safety: SIGKILL the pipeline at chosen points in every stage, then rerun.

The kills are deterministic. The real luigi command runs through ``tests/support/crashpoint.py``,
which kills it at a named point: mid-stream in each extract; just before each file is renamed
into place (every extract, clean and insight output, each task's stats, the manifest and
``latest``) and, in a second partition, just after outputs of every stage; while a run sweeps a
killed run's temporary files; and while retention renames or deletes an old partition. The
rename points are listed by an uninterrupted run first, so an output added later is covered
without editing this test.

After every kill, each file at a target path is complete (it parses, and equals what an
uninterrupted run writes), and ``latest`` points to a complete partition. After the reruns, the
outputs equal an uninterrupted run's byte for byte (timing facts aside), finished partitions are
untouched and no temporary file is left.

Randomly timed kills are not needed: the files on disk change only at these points, so a kill at
any other moment leaves one of the states tested here (plus, at most, a temporary file).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet
import pytest

from pipeline import clock
from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import (
    PARTITION,
    REPO,
    VOLATILE,
    comparable,
    crashpoint_command,
    pipeline_env,
    run_luigi,
    temporaries,
)

pytestmark = pytest.mark.slow

#: Pages of 2 records fetched one at a time: every endpoint of the fixture data spans 3 or more
#: pages, so a kill at the second request always leaves the first page streamed and no more.
ARGS = ("--api-page-size", "2", "--api-concurrency", "1", "--api-rate-limit-requests", "1000000")
#: The same data in differently named partitions; "previous" (and "refreshed"): the hour the
#: report compared with, recorded in its stats, differs between hours as the report does, and so
#: does "anomaly_window", the hours on record before each (HistoryHour's stats).
IGNORE = VOLATILE | {"partition", "task", "previous", "refreshed", "anomaly_window"}
#: A report names its hour and compares it with the previous one: its content differs between
#: hours, so only its presence is compared.
REPORT_FILES = ("report/findings.md", "report/index.html")
REFERENCE = "2026-11-24T23"
FIRST, SECOND = "2026-11-25T00", "2026-11-25T01"
#: Partitions older than the retention window the runs use: pruned by the next publish.
STALE = ("1999-12-31T22", "1999-12-31T23")
DATA_FILES = {
    "jsons/carts.jsonl", "jsons/products.jsonl", "jsons/users.jsonl",
    "cleaned/cleaned_users.csv", "cleaned/product_catalogue.csv", "cleaned/cleaned_products.csv",
    "cleaned/cleaned_carts.csv", "insights/user_summary.csv", "insights/category_summary.csv",
    "insights/cart_details.csv",
}  # fmt: skip
#: Killed just after these moved into place: each extract's, and one of every later stage.
AFTER = (
    "jsons/carts.jsonl", "jsons/products.jsonl", "jsons/users.jsonl", "cleaned/cleaned_carts.csv",
    "insights/user_summary.csv", "manifest.json",
)  # fmt: skip
ENDPOINTS = ("carts", "products", "users")


def retention_hours() -> str:
    """A window that keeps every hour of 2026 and drops the STALE hours of 1999."""
    now = clock.current_hour()
    return str(int((now - datetime(2000, 1, 1)).total_seconds() // 3600))


@pytest.fixture(scope="module")
def shop(fixture_dataset: Dataset) -> Iterator[DummyJSONServer]:
    """The fixture data without a server-side rate limit: the runs make a few hundred requests."""
    with DummyJSONServer(fixture_dataset) as server:
        yield server


class Runs:
    """The luigi command through the crash-point wrapper, against one data root."""

    def __init__(self, server: DummyJSONServer, root: Path):
        self.server, self.root = server, root
        self.report = root.parent / "reached"
        self.args = (*ARGS, "--housekeeping-retention-hours", retention_hours())

    def run(
        self, hour: str, points: Iterable[str] = (), trace: Path | None = None
    ) -> tuple[int, str | None, str]:
        """Run ``hour``; return the exit code, the point it was killed at (if any), its output."""
        self.report.unlink(missing_ok=True)
        env = pipeline_env(
            self.server.url, self.root, CRASH_POINTS=",".join(sorted(points)),
            CRASH_REPORT=str(self.report), CRASH_TRACE=str(trace or ""),
        )  # fmt: skip
        proc = subprocess.run(
            crashpoint_command(hour, self.root.parent / "pids", *self.args),
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,  # its own process group: the kill takes nothing else
        )
        reached = self.report.read_text() if self.report.exists() else None
        return proc.returncode, reached, proc.stdout + proc.stderr

    def kill_at_each(self, hour: str, points: set[str], reference: dict[str, Any]) -> list[str]:
        """Run ``hour`` again and again, each run killed at the first pending point it meets.

        A task cannot complete without passing its own points, so while any is pending the
        next run reaches one: every point is hit exactly once, whatever order luigi picks.
        """
        pending, reached = set(points), []
        while pending:
            self.server.reset_log()
            code, point, output = self.run(hour, pending)
            assert code == -signal.SIGKILL and point in pending, (
                f"run of {hour} reached none of {sorted(pending)} (exit {code})\n{output[-3000:]}"
            )
            pending.discard(point)
            reached.append(point)
            check_invariants(self.root, reference)
            if point.startswith("request:"):  # died mid-stream: one page read, the next not
                endpoint = point.split(":")[1]
                assert [q["skip"] for p, q in self.server.requests if p == f"/{endpoint}"] == [
                    "0"
                ], point
                assert not (self.root / hour / f"jsons/{endpoint}.jsonl").exists(), point
        return reached

    def finish(self, hour: str) -> None:
        code, point, output = self.run(hour)
        assert (code, point) == (0, None), output


def plant_stale(root: Path, reference_part: Path, name: str) -> None:
    """A complete partition from long ago (a copy of the reference): retention prunes it."""
    shutil.copytree(reference_part, root / name, symlinks=True)


def parse(path: Path) -> None:
    """Raise unless the file is a complete document of its format."""
    if path.suffix == ".jsonl":
        body = path.read_bytes()
        assert body == b"" or body.endswith(b"\n"), path
        assert all(isinstance(orjson.loads(line), dict) for line in body.splitlines()), path
    elif path.suffix == ".csv":
        assert pa_csv.read_csv(path).num_columns > 0, path
    elif path.suffix == ".json":
        orjson.loads(path.read_bytes())


def same_data(part: Path) -> dict[str, Any]:
    """``comparable`` with the report's content left out (its presence still counts)."""
    return {k: (k if k in REPORT_FILES else v) for k, v in comparable(part, IGNORE).items()}


def check_invariants(root: Path, reference: dict[str, Any]) -> None:
    """Every file at a target path is complete and a clean run's; ``latest`` is complete."""
    for path in (root / "history").rglob("*.parquet"):  # each hour's rows: whole or absent
        if path not in temporaries(root / "history"):
            assert pa_parquet.read_table(path).num_rows > 0, path
    for part in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if part.name.startswith(".") or part.name in ("logs", "pids", "history"):
            continue  # a partition being deleted by retention is no target path
        present = {}
        for path in part.rglob("*"):
            if path.is_file() and path.name != ".lock" and path not in temporaries(part):
                parse(path)
                present[str(path.relative_to(part))] = path
        now = same_data(part)
        for rel in present:
            assert rel in reference, f"unexpected file {part.name}/{rel}"
            assert now[rel] == reference[rel], f"{part.name}/{rel} differs from a clean run"
        if (part / "manifest.json").exists():
            assert set(present) == set(reference), f"{part.name} has a manifest but is incomplete"
    latest = root / "latest"
    if latest.is_symlink():
        target = root / os.readlink(latest)
        assert same_data(target) == reference, f"latest -> incomplete {target.name}"


def test_sigkill_at_chosen_points_in_every_stage_never_leaves_a_partial_output(
    shop: DummyJSONServer, tmp_path: Path
) -> None:
    # An uninterrupted run: the reference outputs, and every rename in the order it happens.
    (tmp_path / "clean").mkdir()
    reference_runs = Runs(shop, tmp_path / "clean" / "data")
    trace = tmp_path / "trace"
    assert reference_runs.run(REFERENCE, trace=trace)[:2] == (0, None)
    reference_part = reference_runs.root / REFERENCE
    reference = same_data(reference_part)
    renames = [line.removeprefix("replace ") for line in trace.read_text().splitlines()]
    assert renames[-1] == "logs/etl_pipeline.prom"  # the run's metrics, once it is over
    renames = renames[:-1]
    assert renames[-2:] == [f"{REFERENCE}/manifest.json", "latest"]  # manifest first, then latest
    history = [r for r in renames if r.startswith("history/")]
    assert history == [f"history/date_hour={REFERENCE}/part-0.parquet"]  # the hour's rows, once
    files = [r.removeprefix(f"{REFERENCE}/") for r in renames[:-1] if r not in history]
    assert len(files) == len(set(files)) and set(files) == set(reference)
    assert set(files) >= DATA_FILES

    (tmp_path / "crash").mkdir()
    root = tmp_path / "crash" / "data"
    runs = Runs(shop, root)
    root.mkdir()
    plant_stale(root, reference_part, STALE[0])

    # 1. Killed just before every rename, mid-stream in every extract, while sweeping, while
    #    retention deletes the stale partition; then finished by an uninterrupted run.
    points = {f"before:{FIRST}/{f}" for f in files} | {"before:latest"}
    points |= {f"before:history/date_hour={FIRST}/part-0.parquet"}
    points |= {f"request:{e}:2" for e in ENDPOINTS} | {"unlink:tmp", "unlink:rmtree"}
    reached = runs.kill_at_each(FIRST, points, reference)
    assert reached[-1] == "unlink:rmtree"  # retention runs last, after `latest` moved
    assert not (root / STALE[0]).exists()  # renamed away before its deletion began
    runs.finish(FIRST)
    assert same_data(root / FIRST) == reference
    assert not temporaries(root / FIRST)
    first = comparable(root / FIRST, VOLATILE - {"tasks"})

    # 2. Killed just after outputs of every stage moved into place, and as retention renames a
    #    stale partition away: right after `latest` moved, and after this run's retention
    #    removed the half-deleted partition the last kill of step 1 left.
    plant_stale(root, reference_part, STALE[1])
    after = {f"after:{SECOND}/{f}" for f in AFTER} | {f"before:.{STALE[1]}.deleting"}
    reached = runs.kill_at_each(SECOND, after, reference)
    assert reached[-1] == f"before:.{STALE[1]}.deleting"
    assert os.readlink(root / "latest") == SECOND
    assert not list(root.glob(".*.deleting"))
    assert same_data(root / STALE[1]) == reference  # still whole: pruned next time
    runs.finish(SECOND)
    assert same_data(root / SECOND) == reference

    assert comparable(root / FIRST, VOLATILE - {"tasks"}) == first, f"{FIRST} was touched"
    assert not temporaries(root)


@pytest.fixture
def done(api: DummyJSONServer, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    assert run_luigi(api.url, data).returncode == 0
    return data


def test_a_crash_between_manifest_and_latest_is_finished_without_requests(
    api: DummyJSONServer, done: Path
) -> None:
    (done / "latest").unlink()  # what a kill after writing manifest.json leaves behind
    api.reset_log()
    result = run_luigi(api.url, done)
    assert result.returncode == 0, result.output
    assert os.readlink(done / "latest") == PARTITION
    assert api.request_count == 0


def test_a_crash_between_two_outputs_of_a_task_is_redone_over_the_first(
    api: DummyJSONServer, done: Path
) -> None:
    part = done / PARTITION
    before = comparable(part)
    # Kills after the data files were renamed into place but before the stats files (so before
    # any manifest): those tasks are incomplete, and their rerun must replace what exists.
    for name in ("manifest.json", "_stats/CleanProducts.json", "_stats/Extract-users.json"):
        (part / name).unlink()
    (done / "latest").unlink()
    api.reset_log()
    result = run_luigi(api.url, done)
    assert result.returncode == 0, result.output
    assert comparable(part) == before
    assert [path for path, _ in api.requests] == ["/users"]


def test_temporary_files_of_killed_runs_are_swept_by_the_next_run(
    api: DummyJSONServer, done: Path
) -> None:
    part = done / PARTITION
    (part / "_stats/CartDetails.json").unlink()
    (part / "manifest.json").unlink()  # incomplete: a run that only checks it sweeps nothing
    litter = [
        part / "insights/.cart_details.csv.4242.tmp",
        part / "jsons/.carts.jsonl.4243.tmp",
        part / "cleaned/cleaned_users.csv-luigi-tmp-0123456789",
    ]
    for path in litter:
        path.write_bytes(b"half a fi")
    os.symlink(PARTITION, done / ".latest.999999999.tmp")  # no such pid
    result = run_luigi(api.url, done)
    assert result.returncode == 0, result.output
    assert not temporaries(done)
    assert not any(path.exists() for path in litter)
