"""Ctrl-C (SIGINT) and ``systemctl stop`` (SIGTERM) during a run: one line, exit 130 / 143.

A run is stopped at a known point by ``tests/support/crashpoint.py`` in pause mode (it waits
there for the signal) in each stage in turn, each run resuming the one before: mid-extract,
before a cleaned file, before the report, and before the manifest. Each run must say in exactly
one console line what stopped, whether anything was published and the command that resumes,
with no traceback; its log must end saying where it stopped; nothing may be published half-way
and no temporary file may be left; and the next run must skip the tasks already finished.
``./run_pipeline.sh`` gets SIGTERM while a request hangs; the demo gets a terminal's Ctrl-C
(SIGINT to its whole process group, its API server included).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import PARTITION, REPO, pipeline_env, temporaries

pytestmark = pytest.mark.slow

SCRIPT = REPO / "run_pipeline.sh"
#: Pages of 2 records fetched one at a time: the carts' second request is mid-extract.
ARGS = ("--api-page-size", "2", "--api-concurrency", "1", "--api-rate-limit-requests", "1000000")
STARTED = re.compile(r"^\d\d:\d\d:\d\d (\w+) started$", re.M)
DONE = re.compile(r"^\d\d:\d\d:\d\d (\w+) done in ", re.M)


@pytest.fixture(scope="module")
def shop(fixture_dataset: Dataset) -> Iterator[DummyJSONServer]:
    with DummyJSONServer(fixture_dataset) as server:
        yield server


def default_sigint() -> None:
    """As at a terminal: a shell that started the tests in the background ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Stopped:
    """One run of ``python -m pipeline`` paused at ``point`` and sent ``signum`` there."""

    def __init__(self, root: Path, env: dict[str, str], point: str, signum: int) -> None:
        report, resume = root.parent / "reached", root.parent / "resume"
        report.unlink(missing_ok=True)
        resume.unlink(missing_ok=True)
        env = {**env, "CRASH_POINTS": point, "CRASH_ACTION": "pause",
               "CRASH_REPORT": str(report), "CRASH_RESUME": str(resume)}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.crashpoint", "pipeline", "--date-hour",
             PARTITION, "--lock-pid-dir", str(root.parent / "pids"), *ARGS],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=default_sigint,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not report.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if report.exists():
            proc.send_signal(signum)
        resume.touch()  # a signal held back (while publishing) lets the pause end instead
        self.output = proc.communicate(timeout=120)[0]
        self.returncode, self.pid = proc.returncode, proc.pid
        assert report.exists(), f"{point} not reached (exit {proc.returncode}):\n{self.output}"

    def log(self, root: Path) -> list[str]:
        (log,) = (root / "logs").glob(f"run-*-{self.pid}.log")
        return log.read_text().splitlines()


def interrupt_line(output: str) -> str:
    """The one line about the interruption; no traceback anywhere."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if "interrupt" in line.lower()]
    assert len(lines) == 1, output
    return lines[0]


def test_each_signal_in_each_stage_stops_the_run_and_the_next_run_resumes(
    shop: DummyJSONServer, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    env = pipeline_env(shop.url, root)
    part = root / PARTITION
    resume = (
        f"To resume (finished tasks are kept): PIPELINE_DATA_DIR={root} PIPELINE_API_URL="
        f"{shop.url} ./run_pipeline.sh --lock-pid-dir {tmp_path / 'pids'} {' '.join(ARGS)} "
        f"--date-hour {PARTITION}"
    )
    stops = [  # (point, signal, the task it stops)
        ("request:carts:2", signal.SIGINT, "ExtractCarts"),
        (f"before:{PARTITION}/cleaned/cleaned_carts.csv", signal.SIGTERM, "CleanCarts"),
        (f"before:{PARTITION}/report/index.html", signal.SIGINT, "HourReport"),
    ]
    finished: set[str] = set()
    for point, signum, task in stops:
        run = Stopped(root, env, point, signum)
        code, name = 128 + signum, signal.Signals(signum).name
        assert run.returncode == code, run.output
        assert interrupt_line(run.output) == (
            f"pipeline: interrupted (exit {code}): {name} stopped the run of {PARTITION} during "
            f"{task}; nothing was published. {resume}"
        )
        assert run.log(root)[-2:] == [f"# interrupted by {name} during {task}",
                                      f"# exit code: {code}"]  # fmt: skip
        assert not (part / "manifest.json").exists() and not (root / "latest").exists()
        assert temporaries(root) == [], point
        # Resumed: nothing finished before runs again; the stopped task did not finish.
        assert finished.isdisjoint(STARTED.findall(run.output)), run.output
        assert task in STARTED.findall(run.output) and task not in DONE.findall(run.output)
        finished |= set(DONE.findall(run.output))

    # Stopped while it writes the manifest: the signal waits until `latest` is moved too.
    run = Stopped(root, env, f"before:{PARTITION}/manifest.json", signal.SIGTERM)
    assert run.returncode == 143, run.output
    assert interrupt_line(run.output) == (
        f"pipeline: interrupted (exit 143): SIGTERM stopped the run of {PARTITION} during "
        f"Insights, once {PARTITION} was published (latest -> {PARTITION})"
    )
    assert run.log(root)[-2:] == ["# interrupted by SIGTERM during Insights", "# exit code: 143"]
    assert os.readlink(root / "latest") == PARTITION and (part / "manifest.json").exists()
    assert finished.isdisjoint(STARTED.findall(run.output)), run.output
    assert temporaries(root) == []

    # The command the third run gave, as written, with stdout and stderr in one file.
    console = tmp_path / "console"
    command = resume.split(": ", 1)[1]
    with console.open("wb") as out:
        done = subprocess.run(["bash", "-c", command], cwd=REPO, stdout=out,
                              stderr=subprocess.STDOUT, timeout=120)  # fmt: skip
    lines = console.read_text().splitlines()
    assert done.returncode == 0, lines
    assert lines[-1] == (
        f"pipeline: nothing to do (exit 0): {PARTITION} was already complete; latest -> {PARTITION}"
    )
    whole = re.compile(
        r"pipeline: (scheduler|log file): .+|pipeline: nothing to do .+"
        r"|Snapshot .+|Sales: .+|Top category: .+|Change: .+|Report: .+|Latest: .+"
    )
    assert all(whole.fullmatch(line) for line in lines), lines  # no line ran into another


def test_sigterm_to_run_pipeline_sh_during_a_request_says_so_in_one_line(
    fixture_dataset: Dataset, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    with DummyJSONServer(fixture_dataset) as api:
        api.add_fault("stall", endpoint="products", skip=2, seconds=300)  # until the server stops
        proc = subprocess.Popen(
            [str(SCRIPT), "--date-hour", PARTITION, "--lock-pid-dir", str(tmp_path / "pids"),
             *ARGS, "--api-read-timeout", "300"],
            cwd=tmp_path, env=pipeline_env(api.url, root), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while ("/products", {"limit": "2", "skip": "2"}) not in api.requests:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)  # run_pipeline.sh execs Python: the pipeline's pid
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, out + err
    assert out == ""
    assert interrupt_line(err) == (
        f"pipeline: interrupted (exit 143): SIGTERM stopped the run of {PARTITION} during "
        f"ExtractProducts; nothing was published. To resume (finished tasks are kept): "
        f"PIPELINE_DATA_DIR={root} PIPELINE_API_URL={api.url} {SCRIPT} --lock-pid-dir "
        f"{tmp_path / 'pids'} {' '.join(ARGS)} --api-read-timeout 300 --date-hour {PARTITION}"
    )
    assert err.splitlines()[-1] == interrupt_line(err)  # the last line
    (log,) = (root / "logs").glob(f"run-*-{proc.pid}.log")
    assert log.read_text().splitlines()[-2:] == [
        "# interrupted by SIGTERM during ExtractProducts", "# exit code: 143",
    ]  # fmt: skip
    assert not (root / PARTITION).exists()  # it wrote nothing there: no folder holding a lock


def test_ctrl_c_during_the_demo_stops_it_and_its_api_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(SCRIPT), "demo", "out"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True, preexec_fn=default_sigint,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "LUIGI_"))}
        | {"PIPELINE_NOW": os.environ["PIPELINE_NOW"]},
    )  # fmt: skip
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # until the first task starts
        seen.append(line)
        if line.endswith(" started\n"):
            break
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole foreground group
    output = "".join(seen) + proc.stdout.read()
    assert proc.wait(timeout=60) == 130, output
    line = interrupt_line(output)
    assert re.fullmatch(
        r"pipeline: interrupted \(exit 130\): SIGINT stopped the run of \d{4}-\d\d-\d\dT\d\d "
        r"(during|after) \w+; nothing was published\. To resume \(finished tasks are kept\): "
        rf"{re.escape(str(SCRIPT))} demo out",  # as typed from here
        line,
    ), line
    assert output.splitlines()[-1] == line
    assert not (tmp_path / "out" / "latest").exists()
    url = re.search(r"^pipeline: demo API at (\S+);", output, re.M)
    assert url
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url[1]}/carts", timeout=5)  # the demo API stopped too
