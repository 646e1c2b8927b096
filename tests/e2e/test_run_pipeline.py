"""run_pipeline.sh: bootstrap, scheduler choice, exit codes, per-run logs, demo, subcommands.

Most tests run a copy of the script in a temporary checkout whose .venv holds fakes (luigi,
pip, the demo API) that record how they were called, so every branch is checked in
milliseconds; the `slow` ones run the real pipeline.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

SCRIPT = REPO / "run_pipeline.sh"

FAKE_PYTHON = f"""#!/usr/bin/env bash
echo "python $*" >>"$FAKE_LOG"
case "$1 ${{2:-}}" in
    "-m pip" | "-m pipeline.ops.units") exit 0 ;;
    "-m venv") mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0 ;;
    "-m pipeline.devtools.demo_api")
        [[ -n "${{FAKE_DEMO_DIES:-}}" ]] && {{ echo "boom" >&2; exit 1; }}
        trap 'echo stopped >"$FAKE_DIR/demo.stopped"; exit 0' TERM
        echo "serving http://127.0.0.1:4242"
        while :; do sleep 0.05; done ;;
esac
exec {sys.executable} "$@"
"""

FAKE_LUIGI = """#!/usr/bin/env bash
echo "luigi $*" >>"$FAKE_LOG"
echo "cwd=$PWD api=${PIPELINE_API_URL:-} data=${PIPELINE_DATA_DIR:-}"
echo "this went to stderr" >&2
if [[ -n "${FAKE_MAKE_OUTPUT:-}" ]]; then
    mkdir -p "$PIPELINE_DATA_DIR/2026-11-25T17/insights"
    touch "$PIPELINE_DATA_DIR/2026-11-25T17/insights/user_summary.csv"
    ln -sfn 2026-11-25T17 "$PIPELINE_DATA_DIR/latest"
fi
exit "${FAKE_RC:-0}"
"""

FAKE_TOOL = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >>"$FAKE_LOG"
exit "${FAKE_RUFF_RC:-0}"
"""


def deps_hash(checkout: Path) -> str:
    """The script's stamp: sha256 of setup.cfg followed by pyproject.toml."""
    data = (checkout / "setup.cfg").read_bytes() + (checkout / "pyproject.toml").read_bytes()
    return hashlib.sha256(data).hexdigest()


def write_exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


class Checkout:
    """A copy of the script with a fake .venv, and a way to run it and read what it did."""

    def __init__(self, root: Path) -> None:
        self.root = root / "checkout"
        self.fake_dir = root / "fake"
        self.fake_dir.mkdir()
        self.log = self.fake_dir / "calls.log"
        self.root.mkdir()
        for name in ("run_pipeline.sh", "setup.cfg", "pyproject.toml"):
            shutil.copy2(REPO / name, self.root / name)
        (self.root / "luigi.cfg").write_text("[core]\n")
        bin_ = self.root / ".venv" / "bin"
        write_exe(bin_ / "python", FAKE_PYTHON)
        write_exe(bin_ / "luigi", FAKE_LUIGI)
        write_exe(bin_ / "ruff", FAKE_TOOL)
        write_exe(bin_ / "pytest", FAKE_TOOL.replace("FAKE_RUFF_RC", "FAKE_PYTEST_RC"))
        (self.root / ".venv" / ".deps-sha256").write_text(deps_hash(self.root) + "\n")

    def run(self, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "LUIGI_"))}
        return subprocess.run(
            [str(self.root / "run_pipeline.sh"), *args],
            cwd=cwd or self.fake_dir, capture_output=True, text=True, timeout=60, check=False,
            env={**base, "FAKE_LOG": str(self.log), "FAKE_DIR": str(self.fake_dir), **env},
        )  # fmt: skip

    def calls(self, tool: str = "") -> list[str]:
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        return [line for line in lines if line.startswith(tool)]

    def run_logs(self, data_root: Path | None = None) -> list[Path]:
        return sorted(((data_root or self.root / "data") / "logs").glob("run-*.log"))


@pytest.fixture
def co(tmp_path: Path) -> Checkout:
    return Checkout(tmp_path)


def test_help_explains_every_subcommand_without_bootstrapping(co: Checkout) -> None:
    result = co.run("help")
    assert result.returncode == 0
    for word in ("test", "demo [DIR]", "units DEST", "bootstrap", "--local-scheduler"):
        assert word in result.stdout
    assert co.calls() == []


def test_unknown_subcommand_fails_without_running_anything(co: Checkout) -> None:
    result = co.run("tets")
    assert result.returncode == 2
    assert "unknown subcommand: tets" in result.stderr
    assert co.calls("luigi") == []


def test_runs_luigi_from_the_checkout_with_local_scheduler(co: Checkout) -> None:
    result = co.run("--date-hour", "2026-11-25T17", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert co.calls("luigi") == [
        "luigi --module pipeline Insights --local-scheduler --date-hour 2026-11-25T17 --workers 2"
    ]
    assert f"cwd={co.root}" in result.stdout  # cd'ed even though started elsewhere
    assert "scheduler: local (no central scheduler configured)" in result.stderr


@pytest.mark.parametrize("flag", [["--scheduler-url", "http://sched:8082"], ["--local-scheduler"]])
def test_explicit_scheduler_flag_is_passed_through_alone(co: Checkout, flag: list[str]) -> None:
    result = co.run(*flag, LUIGI_SCHEDULER_URL="http://ignored:1")
    assert result.returncode == 0, result.stderr
    assert co.calls("luigi") == [" ".join(["luigi --module pipeline Insights", *flag])]
    assert "given" in result.stderr or "from the command line" in result.stderr


def test_scheduler_from_environment(co: Checkout) -> None:
    result = co.run(LUIGI_SCHEDULER_URL="http://127.0.0.1:8082")
    assert co.calls("luigi") == [
        "luigi --module pipeline Insights --scheduler-url http://127.0.0.1:8082"
    ]
    assert "scheduler: central http://127.0.0.1:8082 (LUIGI_SCHEDULER_URL)" in result.stderr


@pytest.mark.parametrize("key", ["default_scheduler_url", "default-scheduler-url"])
def test_scheduler_from_luigi_cfg(co: Checkout, key: str) -> None:
    (co.root / "luigi.cfg").write_text(f"[core]\n{key} = http://10.0.0.5:8082/\n")
    result = co.run()
    assert result.returncode == 0, result.stderr
    assert co.calls("luigi") == ["luigi --module pipeline Insights"]  # luigi reads it itself
    assert "scheduler: central http://10.0.0.5:8082/ (luigi config)" in result.stderr


def test_exit_code_and_output_reach_the_per_run_log(co: Checkout, tmp_path: Path) -> None:
    data = tmp_path / "somewhere" / "data"
    result = co.run("--date-hour", "2026-11-25T17", FAKE_RC="30", PIPELINE_DATA_DIR=str(data))
    assert result.returncode == 30
    assert "this went to stderr" in result.stdout  # merged, in order, and teed
    (log,) = co.run_logs(data)
    assert log.name.startswith("run-") and log.name.endswith(f"-{log.name.split('-')[-1]}")
    text = log.read_text()
    assert "--date-hour 2026-11-25T17" in text.splitlines()[0]
    assert "this went to stderr" in text and f"data={data}" in text
    assert text.rstrip().endswith("# exit code: 30")
    assert f"luigi exited with 30; see {log}" in result.stderr


def test_log_goes_under_the_configured_data_dir(co: Checkout) -> None:
    assert co.run().returncode == 0
    assert len(co.run_logs()) == 1  # default: <checkout>/data/logs
    (co.root / "luigi.cfg").write_text("[paths]\ndata_dir = elsewhere\n")
    assert co.run().returncode == 0
    assert len(co.run_logs(co.root / "elsewhere")) == 1


def test_bootstrap_installs_only_when_packaging_changes_and_is_fast(co: Checkout) -> None:
    assert co.run("bootstrap").returncode == 0
    assert co.calls("python -m pip") == []
    with (co.root / "setup.cfg").open("a") as fh:
        fh.write("\n# changed\n")
    result = co.run("bootstrap")
    assert result.returncode == 0, result.stderr
    (install,) = co.calls("python -m pip")
    assert install.endswith("install --quiet --disable-pip-version-check -e .[test]")
    assert (co.root / ".venv" / ".deps-sha256").read_text().strip() == deps_hash(co.root)
    assert co.run("bootstrap").returncode == 0
    assert len(co.calls("python -m pip")) == 1  # nothing changed: no install, no network


def test_bootstrap_creates_missing_venv(co: Checkout, tmp_path: Path) -> None:
    fake_python = co.root / ".venv" / "bin" / "python"
    shim = tmp_path / "shim"
    write_exe(shim / "python3.11", fake_python.read_text())
    shutil.rmtree(co.root / ".venv")
    result = co.run("bootstrap", PATH=f"{shim}:{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    assert f"creating {co.root}/.venv with python3.11" in result.stderr
    assert co.calls("python -m venv") == [f"python -m venv {co.root}/.venv"]
    assert len(co.calls("python -m pip install")) == 1


def test_no_bootstrap_mode_refuses_to_install(co: Checkout) -> None:
    (co.root / ".venv" / ".deps-sha256").write_text("stale\n")
    result = co.run(PIPELINE_NO_BOOTSTRAP="1")
    assert result.returncode == 2
    assert "run_pipeline.sh bootstrap' as the service user" in result.stderr
    assert co.calls("python -m pip") == co.calls("luigi") == []


def test_test_subcommand_runs_ruff_then_pytest(co: Checkout) -> None:
    assert co.run("test", "-k", "units", "-x").returncode == 0
    assert co.calls("ruff") + co.calls("pytest") == ["ruff check .", "pytest -k units -x"]
    co.log.unlink()
    assert co.run("test", FAKE_RUFF_RC="1").returncode == 1
    assert co.calls("pytest") == []


def test_units_subcommand_delegates(co: Checkout) -> None:
    assert co.run("units", "/tmp/x", "--user", "etl").returncode == 0
    assert co.run("units", "rel/units").returncode == 0  # relative to the caller's cwd
    assert co.run("units", "--help").returncode == 0
    assert co.calls("python -m pipeline.ops.units") == [
        "python -m pipeline.ops.units /tmp/x --user etl",
        f"python -m pipeline.ops.units {co.fake_dir}/rel/units",
        "python -m pipeline.ops.units --help",
    ]
    assert co.run("units").returncode == 2


def test_relative_data_dir_is_from_the_callers_cwd(co: Checkout) -> None:
    result = co.run(PIPELINE_DATA_DIR="mine")
    assert result.returncode == 0, result.stderr
    assert f"data={co.fake_dir}/mine" in result.stdout
    assert len(co.run_logs(co.fake_dir / "mine")) == 1


def test_demo_runs_against_its_own_api_and_stops_it(co: Checkout, tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    result = co.run("demo", str(out), FAKE_MAKE_OUTPUT="1")
    assert result.returncode == 0, result.stderr
    assert co.calls("luigi") == ["luigi --module pipeline Insights --local-scheduler --no-lock"]
    assert f"api=http://127.0.0.1:4242 data={out}" in result.stdout
    assert (co.fake_dir / "demo.stopped").exists()
    assert "latest -> 2026-11-25T17" in result.stdout
    assert f"{out}/latest/insights/user_summary.csv" in result.stdout


def test_demo_relative_dir_is_from_the_callers_cwd(co: Checkout) -> None:
    result = co.run("demo", "out", FAKE_MAKE_OUTPUT="1")
    assert result.returncode == 0, result.stderr
    assert (co.fake_dir / "out" / "latest").is_symlink()


def test_demo_failure_keeps_exit_code_and_still_stops_the_api(co: Checkout) -> None:
    result = co.run("demo", FAKE_RC="30")
    assert result.returncode == 30
    assert (co.fake_dir / "demo.stopped").exists()
    assert (co.root / "data-demo" / "logs").is_dir()  # default DIR is ./data-demo


def test_demo_reports_an_api_that_dies(co: Checkout) -> None:
    result = co.run("demo", FAKE_DEMO_DIES="1")
    assert result.returncode == 2
    assert "boom" in result.stderr and "demo API exited early" in result.stderr
    assert co.calls("luigi") == []


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    result = subprocess.run(
        [shellcheck, str(SCRIPT), str(REPO / ".ci" / "run")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
def test_real_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "LUIGI_"))}
    result = subprocess.run(
        [str(SCRIPT), "demo", str(out)], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    latest = out / "latest"
    assert latest.is_symlink() and (latest / "manifest.json").is_file()
    insights = sorted(p.name for p in (latest / "insights").glob("*.csv"))
    assert insights == ["cart_details.csv", "category_summary.csv", "user_summary.csv"]
    assert str(latest / "insights" / "user_summary.csv") in result.stdout
    assert "scheduler: local" in result.stderr
    (log,) = (out / "logs").glob("run-*.log")
    assert "Luigi Execution Summary" in log.read_text()
