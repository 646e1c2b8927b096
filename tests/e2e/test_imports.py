"""What a run loads: only what its tasks use (issue 20, "quick to start").

Each run is the real command line in a subprocess (``python -m pipeline`` or plain ``luigi``),
started through a few lines that write the names in ``sys.modules`` when the process exits. What
is checked is which modules were imported, never how long anything took.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline.devtools.fakeapi import DummyJSONServer
from tests.support import PARTITION, REPO, pipeline_env
from tests.support.s3 import s3_env

pytestmark = pytest.mark.slow

#: Runs ``python -m pipeline ARGS`` (or plain ``luigi ARGS`` after ``--luigi``) as they run from
#: a shell, then writes every imported module's name to the file named first.
RUNNER = """
import atexit, runpy, sys
out = sys.argv.pop(1)
def dump():
    with open(out, "w") as fh:
        fh.write("\\n".join(sorted(sys.modules)))
atexit.register(dump)
if sys.argv[1:2] == ["--luigi"]:
    del sys.argv[1]
    from luigi.cmdline import luigi_run
    luigi_run(sys.argv[1:])
else:
    runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
"""

#: Never loaded by a run: the object store's client (local data roots), luigi's contrib
#: integrations, the old drawing library, the dev tools and the tests.
NEVER = ("matplotlib", "luigi.contrib", "pipeline.devtools", "tests", "pytest", "moto")
CLOUD = ("boto3", "botocore", "s3transfer", "pipeline.storage.s3")
CHARTS = (
    "pipeline.report.charts", "pipeline.report.trend_charts", "pipeline.report.plot",
    "pipeline.report.svg",
)  # fmt: skip


def loaded(tmp_path: Path, env: dict[str, str], *args: str) -> set[str]:
    out = tmp_path / f"modules-{len(list(tmp_path.glob('modules-*')))}.txt"
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(out), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return set(out.read_text().split())


def under(modules: set[str], packages: Sequence[str]) -> list[str]:
    """The modules that are one of ``packages`` or inside one."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_an_hour_on_a_local_data_root_loads_no_cloud_client(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    env = pipeline_env(api.url, tmp_path / "data")
    modules = loaded(tmp_path, env, "--date-hour", PARTITION)
    assert (tmp_path / "data" / PARTITION / "manifest.json").exists()  # the whole hour ran
    assert set(CHARTS) <= modules  # and drew its report
    assert under(modules, CLOUD) == []
    assert under(modules, NEVER) == []


def test_a_run_that_writes_no_report_loads_no_chart_code(
    api: DummyJSONServer, tmp_path: Path
) -> None:
    """Clean and insights only (plain luigi), then the console summary of a complete hour and a
    run that finds its hour complete: none draws a chart."""
    data = tmp_path / "data"
    env = pipeline_env(api.url, data)
    insights = loaded(tmp_path, env, "--luigi", "--module", "pipeline", "CategorySummary",
                      "--local-scheduler", "--date-hour", PARTITION, "--no-lock")  # fmt: skip
    assert (data / PARTITION / "insights" / "category_summary.csv").exists()
    assert not (data / PARTITION / "report").exists()
    assert under(insights, CHARTS) == []
    assert under(insights, CLOUD + NEVER) == []

    assert "pipeline.report.charts" in loaded(tmp_path, env, "--date-hour", PARTITION)
    for args in (("--date-hour", PARTITION), ("report", "--date-hour", PARTITION)):
        again = loaded(tmp_path, env, *args)
        assert under(again, CHARTS + CLOUD + NEVER) == [], args


def test_an_s3_data_root_loads_the_cloud_client(tmp_path: Path) -> None:
    """The other side of the first test: the client is loaded when the data root needs it (an
    unreachable store: the run stops at its first request)."""
    env = s3_env("http://127.0.0.1:9", PIPELINE_API_URL="http://127.0.0.1:9",
                 PIPELINE_DATA_DIR="s3://shop-data/etl")  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path / "modules.txt"), "--date-hour", PARTITION,
         "--storage-retries", "0"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode != 0 and "unreachable" in proc.stderr, proc.stderr
    modules = set((tmp_path / "modules.txt").read_text().split())
    assert {"boto3", "botocore", "pipeline.storage.s3"} <= modules
