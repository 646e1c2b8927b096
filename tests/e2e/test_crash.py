"""Crash safety: SIGKILL the pipeline at random moments in every stage, then rerun.

After every kill, each file at a target path is complete (it parses, and equals what an
uninterrupted run writes), and ``latest`` points to a complete partition. After the reruns, the
outputs equal an uninterrupted run's byte for byte (timing facts aside), and no temporary file
is left. The moments are drawn from a seeded RNG around stage boundaries observed on disk, so
every stage is hit whatever the machine's speed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow.csv as pa_csv
import pytest

from pipeline.devtools.datagen import generate
from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import (
    PARTITION,
    REPO,
    VOLATILE,
    comparable,
    luigi_command,
    pipeline_env,
    run_luigi,
    temporaries,
)

pytestmark = pytest.mark.slow

SEED = 20261125
KILLS = 25
ARGS = (
    "--api-page-size", "250", "--api-rate-limit-requests", "100000",
    "--housekeeping-retention-hours", "1000000",  # keep every partition, whatever the clock
)  # fmt: skip
IGNORE = VOLATILE | {"partition", "task"}  # the same data in differently named partitions
EXTRACTS = {"Extract-carts", "Extract-products", "Extract-users"}
CLEANS = {"CleanUsers", "CleanProducts", "CleanCarts"}
SUMMARIES = {"UserSummary", "CategorySummary", "CartDetails"}
REPORTS = {"HistoryHour", "HourReport"}
#: A report names its hour and compares it with the previous one: it differs between hours.
REPORT_FILES = ("report/findings.md", "report/index.html")
PHASES = ("scheduling", "extract", "clean", "insights", "publish")


@pytest.fixture(scope="module")
def shop() -> Iterator[DummyJSONServer]:
    """A few thousand carts, 80 pages, a little latency: every stage takes measurable time."""
    dataset = Dataset.from_records(generate(carts=20_000, users=2_000, products=150, seed=7))
    with DummyJSONServer(dataset, latency=0.01) as server:
        yield server


def stats_done(part: Path) -> set[str]:
    return {p.stem for p in (part / "_stats").glob("*.json")}


def published(root: Path, part: Path) -> bool:
    latest = root / "latest"
    return (
        (part / "manifest.json").exists()
        and latest.is_symlink()
        and (os.readlink(latest) >= part.name)
    )


def phase(root: Path, part: Path) -> str:
    """The stage a run of ``part`` is in (or would start with), judged from its outputs."""
    done = stats_done(part)
    for name, needed in (("extract", EXTRACTS), ("clean", CLEANS), ("insights", SUMMARIES)):
        if not needed <= done:
            return name
    return "done" if published(root, part) else "publish"


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
    if not root.is_dir():  # killed while still importing, before it made anything
        return
    for part in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if part.name in ("logs", "pids", "history"):
            continue
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


def start(api_url: str, data: Path, hour: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        luigi_command(hour, data.parent / "pids", *ARGS),
        cwd=REPO,
        env=pipeline_env(api_url, data),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, killed as a whole
    )


def trigger(target: str, part: Path, server: DummyJSONServer) -> Callable[[], bool]:
    """When a run has reached ``target``: its first request, or the stats its stage waits for."""
    if target == "scheduling":
        return lambda: True
    if target == "extract":
        seen = server.request_count
        return lambda: server.request_count > seen
    needed = {"clean": EXTRACTS, "insights": CLEANS, "publish": SUMMARIES}[target]
    return lambda: stats_done(part) >= needed


def wait_for(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float) -> bool:
    """Poll until ``ready()``; False if the run ended first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if ready():
            return True
        assert time.monotonic() < deadline, "run made no progress"
        time.sleep(0.003)
    return False


def test_sigkill_at_random_moments_in_every_stage_never_leaves_a_partial_output(
    shop: DummyJSONServer, tmp_path: Path
) -> None:
    reference_root = tmp_path / "clean" / "data"
    reference_root.parent.mkdir()
    result = run_luigi(shop.url, reference_root, *ARGS, date_hour="2026-11-24T23")
    assert result.returncode == 0, result.output
    reference = same_data(reference_root / "2026-11-24T23")
    seconds = {
        name: orjson.loads(p.read_bytes())["seconds"]
        for name, p in ((p.stem, p) for p in (reference_root / "2026-11-24T23/_stats").iterdir())
    }
    window = {  # how long after its trigger a phase may still be running
        "scheduling": 0.8,
        "extract": sum(seconds[n] for n in EXTRACTS),
        "clean": sum(seconds[n] for n in CLEANS) + 0.05,
        "insights": sum(seconds[n] for n in SUMMARIES) + 0.05,
        "publish": sum(seconds[n] for n in REPORTS) + 0.05,
    }

    rng = random.Random(SEED)
    root = tmp_path / "crash" / "data"
    root.parent.mkdir()
    kills: Counter[str] = Counter()
    finished: dict[str, Any] = {}
    hour = 0
    while sum(kills.values()) < KILLS:
        name = f"2026-11-25T{hour:02d}"
        part = root / name
        for target in PHASES:
            if phase(root, part) == "done" or (
                target != "scheduling" and PHASES.index(phase(root, part)) > PHASES.index(target)
            ):
                continue
            reached = trigger(target, part, shop)
            proc = start(shop.url, root, name)
            if wait_for(proc, reached, timeout=60):
                try:
                    proc.wait(timeout=rng.uniform(0, window[target]))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    kills[phase(root, part)] += 1
            if proc.returncode != -signal.SIGKILL:
                assert proc.returncode == 0, f"run of {name} failed: {proc.returncode}"
            check_invariants(root, reference)
        # Finish the partition without interruption; keep its files to prove nobody touches them.
        final = run_luigi(shop.url, root, *ARGS, date_hour=name)
        assert final.returncode == 0, final.output
        assert same_data(part) == reference
        assert not temporaries(part)
        finished[name] = comparable(part, VOLATILE - {"tasks"})
        hour += 1

    print(f"{sum(kills.values())} kills over {hour} partitions, by stage: {dict(kills)}")
    assert sum(kills.values()) >= 20
    # Every stage was hit ("publish": manifest written, `latest` not yet moved, or pruning).
    assert {"extract", "clean", "insights"} <= set(kills), kills
    assert os.readlink(root / "latest") == f"2026-11-25T{hour - 1:02d}"
    for name, files in finished.items():
        assert comparable(root / name, VOLATILE - {"tasks"}) == files, f"{name} was touched"
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
