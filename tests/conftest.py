"""Shared fixtures: the local DummyJSON server and a way to run the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.fakeapi import Dataset, DummyJSONServer

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "api"
PARTITION = "2026-11-25T17"
LUIGI = str(Path(sys.executable).with_name("luigi"))


@pytest.fixture(scope="session")
def fixture_dataset() -> Dataset:
    return Dataset.load(FIXTURES)


@pytest.fixture
def api(fixture_dataset: Dataset) -> Iterator[DummyJSONServer]:
    """The fixture data set served on 127.0.0.1 with the real API's rate limit."""
    with DummyJSONServer(fixture_dataset, rate_limit=(100, 10.0)) as server:
        yield server


@dataclass
class Run:
    returncode: int
    output: str


def pipeline_env(api_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LUIGI_CONFIG_PATH", None)
    env.update(PIPELINE_API_URL=api_url, PIPELINE_DATA_DIR=str(data_dir), **extra)
    return env


def luigi_command(date_hour: str, pid_dir: Path, *args: str, task: str = "Insights") -> list[str]:
    """The command line a user types, with luigi's pid lock kept in ``pid_dir``."""
    return [LUIGI, "--module", "pipeline", task, "--local-scheduler", "--date-hour", date_hour,
            "--lock-pid-dir", str(pid_dir), *args]  # fmt: skip


def run_luigi(
    api_url: str,
    data_dir: Path,
    *args: str,
    task: str = "Insights",
    date_hour: str = PARTITION,
    timeout: float = 180,
    env: dict[str, str] | None = None,
) -> Run:
    """``luigi --module pipeline <task> --local-scheduler`` from the checkout, as a user runs it."""
    # luigi refuses a second identical command line on the host (exit 10); keep that real but
    # scoped to this test, so parallel test sessions do not trip over each other.
    cmd = luigi_command(date_hour, data_dir.parent / "luigi-pids", *args, task=task)
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=env or pipeline_env(api_url, data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout + proc.stderr)


def partition_files(root: Path) -> list[str]:
    """Every file under ``root`` as a sorted relative path (the tree a user would see)."""
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()
    )
