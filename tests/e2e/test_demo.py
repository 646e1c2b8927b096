"""``./run_pipeline.sh demo`` as a user runs it, again and again: every demo builds its hour from
scratch (a demo of an hour already there rebuilds it and swaps it in), and every command it
suggests works when typed as printed.

The suite's clock is pinned (``PIPELINE_NOW``, tests/conftest.py): the demo's hour, the
current one, is ``HOUR``; the earlier hour is given with ``--date-hour``, a luigi option the demo
passes on.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.support import NOW, REPO

pytestmark = pytest.mark.slow

SCRIPT = REPO / "run_pipeline.sh"
HOUR = NOW[:13]  # the current hour at the suite's time: 2026-11-25T19
EARLIER = "2026-11-25T18"
assert HOUR == "2026-11-25T19"


def clean_env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "LUIGI_"))}
    return {**base, "PIPELINE_NOW": NOW}


@dataclass
class Demo:
    returncode: int
    stdout: str
    stderr: str
    pid: int

    @property
    def api_url(self) -> str:
        found = re.search(r"^pipeline: demo API at (\S+); data in ", self.stderr, re.M)
        assert found, self.stderr
        return found[1]


def run(cmd: list[str] | str, cwd: Path) -> Demo:
    """``cmd`` as a user types it (a string: through the shell); run_pipeline.sh execs Python,
    so the pid is the pipeline's."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=clean_env(), shell=isinstance(cmd, str),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    out, err = proc.communicate(timeout=300)
    return Demo(proc.returncode, out, err, proc.pid)


def summary(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Snapshot "))
    return lines[start : start + 6]


@dataclass
class Demos:
    caller: Path
    out: Path
    earlier: Demo
    first: Demo
    second: Demo


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Demos:
    """An earlier hour, then two demos of the same hour in a row, from a folder outside the
    checkout, into ``out``."""
    caller = tmp_path_factory.mktemp("caller")
    demo = [str(SCRIPT), "demo", "out"]
    earlier = run([*demo, "--date-hour", EARLIER], caller)
    first = run(demo, caller)
    second = run(demo, caller)
    return Demos(caller, caller / "out", earlier, first, second)


def test_two_demos_in_a_row_both_build_the_hour(demos: Demos) -> None:
    out = demos.out
    for demo in (demos.earlier, demos.first, demos.second):
        assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
        assert "nothing ran" not in demo.stderr + demo.stdout
    assert demos.first.stderr.splitlines()[-1] == (
        f"pipeline: done (exit 0): {HOUR} is complete; latest -> {HOUR}"
    )
    staging = out / f".{HOUR}.rerun-{demos.second.pid}"
    second = demos.second.stderr.splitlines()
    assert second[1] == (
        f"pipeline: rebuilding {HOUR} in {staging}; {out / HOUR} stays as it is until then"
    )
    assert second[-1] == (
        f"pipeline: done (exit 0): {HOUR} rebuilt and swapped in; latest -> {HOUR}"
    )
    tasks = [line.split(" ", 1)[1] for line in second if line.endswith(" started")]
    assert len(tasks) == 12  # every task ran again
    # rebuilt from the second demo's shop, and nothing of the rebuild is left beside it
    manifest = orjson.loads((out / HOUR / "manifest.json").read_bytes())
    assert manifest["source"] == demos.second.api_url != demos.first.api_url
    assert sorted(p.name for p in out.iterdir()) == [
        ".latest.lock", EARLIER, HOUR, "history", "latest", "logs",
    ]  # fmt: skip
    assert os.readlink(out / "latest") == HOUR


def test_the_rebuilt_hour_is_compared_with_the_earlier_one_by_report_and_summary(
    demos: Demos,
) -> None:
    out = demos.out
    # the same generated shop each time: no change, and the summary names the same hour
    assert summary(demos.second.stdout) == summary(demos.first.stdout)
    assert summary(demos.second.stdout)[3:] == [
        f"Change since {EARLIER}: carts +0, revenue +$0.00 (+0.0%)",
        f"Report: {out}/{HOUR}/report/index.html",
        f"Latest: {out}/latest -> {HOUR}",
    ]
    text = (out / HOUR / "report/findings.md").read_text()
    changes = text.split("## What changed\n\n", 1)[1].split("\n## ", 1)[0]
    assert changes.startswith(f"Against {EARLIER} (1 hour earlier): carts 60 (no change), ")
    assert changes.endswith(
        "No cart appeared or vanished.\n\nRevenue and units by category are unchanged.\n"
    )


def test_the_demo_ends_with_its_outputs_and_the_commands_to_see_them_again(demos: Demos) -> None:
    latest = demos.out / "latest"
    insights = ["cart_details.csv", "category_summary.csv", "user_summary.csv"]
    assert demos.second.stdout.endswith(
        f"\nDemo outputs (latest -> {HOUR}):\n  {latest}/\n"
        + "".join(f"  {latest}/insights/{name}\n" for name in insights)
        + f"The summary again: {SCRIPT} report --data-dir out\n"
        f"Run the demo again (it rebuilds the hour): {SCRIPT} demo out\n"
    )


def test_every_command_the_demo_suggests_works_as_printed(demos: Demos) -> None:
    suggested = dict(
        line.split(": ", 1)
        for line in demos.second.stdout.splitlines()
        if line.startswith(("The summary again: ", "Run the demo again "))
    )
    assert len(suggested) == 2
    shown = run(suggested["The summary again"], demos.caller)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout.splitlines() == summary(demos.second.stdout)
    again = run(suggested["Run the demo again (it rebuilds the hour)"], demos.caller)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.splitlines()[-1] == (
        f"pipeline: done (exit 0): {HOUR} rebuilt and swapped in; latest -> {HOUR}"
    )


def test_a_demo_keeps_its_metrics_with_its_data_not_the_hosts(tmp_path: Path) -> None:
    """On a host whose configuration sends metrics elsewhere (a node_exporter folder, a
    Pushgateway), the demo's run neither replaces that file nor pushes: its figures are not
    production's. Its metrics file is beside its own data."""
    host_metrics = tmp_path / "node-exporter"
    config = (
        (REPO / "luigi.cfg")
        .read_text()
        .replace("= config/logging.conf", f"= {REPO / 'config' / 'logging.conf'}")
    )
    (tmp_path / "luigi.cfg").write_text(  # luigi reads the working directory's luigi.cfg
        f"{config}\n[metrics]\ndirectory = {host_metrics}\n"
        "pushgateway_url = http://127.0.0.1:9\n"  # nothing listens: a push would warn
    )
    demo = run([str(SCRIPT), "demo", "out"], tmp_path)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "warning" not in demo.stderr  # no push tried (nothing listens: it would warn)
    assert not host_metrics.exists()
    text = (tmp_path / "out" / "logs" / "etl_pipeline.prom").read_text()
    assert "etl_pipeline_last_run_success 1\n" in text
