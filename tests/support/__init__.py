"""Helpers shared by the tests: paths, and running the CLI as a user would.

Test modules import from here, never from each other or from conftest.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "api"
PARTITION = "2026-11-25T17"
#: The time every test runs at (``PIPELINE_NOW``, set by tests/conftest.py): two and a half
#: hours after the fixture hour, so that it and the next hour are past and inside every retention.
NOW = "2026-11-25T19:30:00+00:00"
LUIGI = str(Path(sys.executable).with_name("luigi"))


def fixture_records() -> dict[str, list[dict[str, Any]]]:
    """The fixture data set's records by endpoint, fresh copies a test may change."""
    return {
        name: [orjson.loads(line) for line in (FIXTURES / f"{name}.jsonl").open("rb")]
        for name in ("carts", "products", "users")
    }


def documented_settings() -> dict[tuple[str, str], tuple[str, str]]:
    """(section, option) -> (default, allowed) cells of the settings table (docs/settings.md),
    luigi's own ``[retcode]`` row left out: what the docs promise, read as a user reads it."""
    text = (REPO / "docs" / "settings.md").read_text()
    header = "| section | option | default | allowed | meaning |"
    table = text.split(header, 1)[1].split("\n\n", 1)[0]
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    section = ""
    for line in table.strip().splitlines()[1:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        section = cells[0].strip("`[]") or section
        if section != "retcode":
            rows[(section, cells[1].strip("`"))] = (cells[2].strip("`"), cells[3])
    return rows


def next_hour_records() -> dict[str, list[dict[str, Any]]]:
    """The fixture shop an hour later: cart 6 is gone and cart 7, a copy of cart 2, is new."""
    data = fixture_records()
    carts = [c for c in data["carts"] if c["id"] != 6]
    seventh = copy.deepcopy(next(c for c in carts if c["id"] == 2))
    seventh["id"] = 7
    return {**data, "carts": [*carts, seventh]}


@dataclass
class Run:
    returncode: int
    output: str  # the console (stdout, then stderr), then the run log
    log: str = ""  # the run log alone


def run_log_of(logs: Path, pid: int) -> str:
    """The text of the run log that process ``pid`` wrote in ``logs``, or '' if it wrote none
    (a run refused before luigi set up logging)."""
    found = list(logs.glob(f"run-*-{pid}.log"))
    return found[0].read_text() if found else ""


def pipeline_env(api_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LUIGI_CONFIG_PATH", None)
    env.update(PIPELINE_API_URL=api_url, PIPELINE_DATA_DIR=str(data_dir), **extra)
    return env


def luigi_command(date_hour: str, pid_dir: Path, *args: str, task: str = "Insights") -> list[str]:
    """The command line a user types, with luigi's pid lock kept in ``pid_dir``."""
    return [LUIGI, "--module", "pipeline", task, "--local-scheduler", "--date-hour", date_hour,
            "--lock-pid-dir", str(pid_dir), *args]  # fmt: skip


def crashpoint_command(date_hour: str, pid_dir: Path, *args: str) -> list[str]:
    """``luigi_command`` through ``tests.support.crashpoint``, which dies at chosen points."""
    return [sys.executable, "-m", "tests.support.crashpoint",
            *luigi_command(date_hour, pid_dir, *args)[1:]]  # fmt: skip


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
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env or pipeline_env(api_url, data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    log = run_log_of(data_dir / "logs", proc.pid)
    return Run(proc.returncode, out + err + log, log)


def partition_files(root: Path) -> list[str]:
    """Every file under ``root`` as a sorted relative path (the tree a user would see)."""
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()
    )


#: Keys of stats and manifest files that differ between runs of the same data.
VOLATILE = {"started", "finished", "seconds", "written", "tasks", "requests", "url", "source"}


def comparable(part: Path, ignore: frozenset[str] | set[str] = VOLATILE) -> dict[str, Any]:
    """Every file of a partition: bytes, or for JSON facts the parsed value minus volatile keys."""
    out: dict[str, Any] = {}
    for path in sorted(part.rglob("*")):
        rel = str(path.relative_to(part))
        if not path.is_file() or rel == ".lock":
            continue
        if path.suffix == ".json":
            facts = orjson.loads(path.read_bytes())
            out[rel] = {k: v for k, v in facts.items() if k not in ignore}
        else:
            out[rel] = path.read_bytes()
    return out


def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp") or "-luigi-tmp-" in p.name]


def fingerprint(root: Path) -> dict[str, tuple[bytes, int]]:
    """Content and mtime of every file, to prove a failed run did not touch them (the runs'
    own logs, in ``logs/``, aside)."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and p.name != ".lock"
        and p.relative_to(root).parts[0] != "logs"
    }
